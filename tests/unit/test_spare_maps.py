"""Mapped read buffers are kept between requests, within a bound
(``dynafed_runtime.objects.SpareMaps``): the next pool of the same size gets
the same map back instead of faulting in fresh zeroed pages, a buffer still
out is never handed on, and what exceeds the bound is unmapped."""
from __future__ import annotations

import mmap

from dynafed_runtime.objects import BufferPool, SpareMaps

MiB = 1024 * 1024


def test_a_recycled_pool_hands_its_maps_to_the_next_pool(monkeypatch) -> None:
    spares = SpareMaps(4 * MiB)
    monkeypatch.setattr("dynafed_runtime.objects.SPARE_MAPS", spares)
    first = BufferPool(2, MiB, mapped=True)
    a, b = first.get(), first.get()
    first.put(a)
    first.put(b)
    first.recycle()
    assert spares.kept_bytes == 2 * MiB
    second = BufferPool(2, MiB, mapped=True)
    assert {id(second.get()), id(second.get())} == {id(a), id(b)}
    assert spares.kept_bytes == 0


def test_a_buffer_still_out_is_not_recycled(monkeypatch) -> None:
    spares = SpareMaps(4 * MiB)
    monkeypatch.setattr("dynafed_runtime.objects.SPARE_MAPS", spares)
    pool = BufferPool(2, MiB, mapped=True)
    returned, out = pool.get(), pool.get()
    pool.put(returned)
    pool.recycle()
    assert spares.take(MiB) is returned
    assert spares.take(MiB) is None  # ``out`` stays with whoever holds it
    assert not out.closed


def test_the_bound_unmaps_what_exceeds_it_and_sizes_do_not_mix(monkeypatch) -> None:
    spares = SpareMaps(2 * MiB)
    monkeypatch.setattr("dynafed_runtime.objects.SPARE_MAPS", spares)
    maps = [mmap.mmap(-1, MiB) for _ in range(3)]
    for m in maps:
        spares.give(m)
    assert spares.kept_bytes == 2 * MiB and maps[2].closed and not maps[0].closed
    assert spares.take(2 * MiB) is None
    view = memoryview(maps[0])
    spares.give(mmap.mmap(-1, 4 * MiB))  # over the bound: unmapped at once
    bigger = mmap.mmap(-1, 4 * MiB)
    held = memoryview(bigger)
    spares.give(bigger)  # over the bound but still viewed: left to the collector, no error
    assert not bigger.closed
    held.release()
    view.release()


def test_bytearray_pools_keep_nothing(monkeypatch) -> None:
    spares = SpareMaps(4 * MiB)
    monkeypatch.setattr("dynafed_runtime.objects.SPARE_MAPS", spares)
    pool = BufferPool(1, MiB)
    pool.put(pool.get())
    pool.recycle()
    assert spares.kept_bytes == 0
