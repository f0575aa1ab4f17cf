"""Parts: S3's part limits hold for every object size; the part scheduler
hands parts out in order, moves at least one new part per slice and stops
its threads together."""
from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynafed_runtime import errors
from functions.copy.multipart import WITNESS_PART
from functions.copy.parts import (
    MAX_DATA_PARTS,
    MAX_OBJECT,
    MAX_PART,
    MAX_PARTS,
    MIN_PART,
    Cancelled,
    MiB,
    PartPlan,
    PartScheduler,
    parts_in_flight,
    plan_parts,
)


@given(size=st.integers(min_value=1, max_value=MAX_OBJECT),
       preferred=st.integers(min_value=1, max_value=8 * MAX_PART))
def test_every_plan_respects_the_s3_limits(size, preferred):
    plan = plan_parts(size, preferred)
    assert MIN_PART <= plan.part_size <= MAX_PART
    assert 1 <= plan.count <= MAX_DATA_PARTS < MAX_PARTS
    parts = [plan.part(1), plan.part(plan.count)]
    assert parts[0].start == 0 and parts[-1].end == size
    assert all(p.size <= plan.part_size for p in parts)
    assert parts[-1].size >= 1


def test_parts_cover_the_object_exactly_once():
    plan = plan_parts(23 * MiB + 7, 5 * MiB)
    parts = list(plan.parts())
    assert [p.number for p in parts] == [1, 2, 3, 4, 5]
    assert all(a.end == b.start for a, b in zip(parts, parts[1:]))
    assert sum(p.size for p in parts) == plan.size
    assert parts[-1].size == 3 * MiB + 7
    assert plan.bytes_of({1, 5, 99}) == 5 * MiB + 3 * MiB + 7
    assert list(plan.parts(first=4)) == parts[3:]


@pytest.mark.parametrize(("size", "count"), [(1, 1), (5 * MiB - 1, 1), (5 * MiB, 1), (5 * MiB + 1, 2),
                                            (10 * MiB, 2), (10 * MiB + 1, 3)])
def test_boundaries(size, count):
    assert plan_parts(size, 5 * MiB).count == count


def test_preferred_size_is_clamped_to_the_s3_range():
    assert plan_parts(100 * MiB, 1).part_size == MIN_PART
    assert plan_parts(100 * MiB, 10 * MAX_PART).part_size == MAX_PART


def test_large_objects_grow_the_part_size_in_whole_mib():
    size = 1024 * 1024 * MiB  # 1 TiB: 16 MiB parts would need 65,536 parts
    plan = plan_parts(size, 16 * MiB)
    assert plan.count <= MAX_DATA_PARTS
    assert plan.part_size % MiB == 0
    assert plan_parts(size, plan.part_size - MiB).part_size == plan.part_size  # the smallest that fits


def test_the_largest_object_fits_and_beyond_is_refused():
    plan = plan_parts(MAX_OBJECT, 16 * MiB)
    assert plan.count <= MAX_DATA_PARTS and plan.part_size <= MAX_PART
    with pytest.raises(errors.ObjectTooLarge):
        plan_parts(MAX_OBJECT + 1, 16 * MiB)


def test_zero_bytes_has_no_multipart_plan():
    with pytest.raises(ValueError):
        plan_parts(0, 5 * MiB)


def test_part_numbers_outside_the_plan():
    plan = PartPlan(10, 5 * MiB)
    with pytest.raises(IndexError):
        plan.part(2)


def test_witness_part_number_is_never_a_data_part():
    assert WITNESS_PART == MAX_PARTS and MAX_DATA_PARTS < WITNESS_PART


@pytest.mark.parametrize(("part", "wanted", "budget", "expected"), [
    (16 * MiB, 4, 256 * MiB, 4),
    (128 * MiB, 4, 256 * MiB, 2),
    (1024 * MiB, 4, 256 * MiB, 1),  # huge parts: one at a time, never zero
])
def test_parts_in_flight_follow_the_memory_budget(part, wanted, budget, expected):
    assert parts_in_flight(part, wanted, budget) == expected


def _moved(scheduler: PartScheduler, threads: int = 1) -> list[int]:
    numbers: list[int] = []
    lock = threading.Lock()

    def work(part) -> None:
        with lock:
            numbers.append(part.number)

    scheduler.run(threads, work, "test-part")
    return numbers


def test_the_scheduler_hands_out_every_part_in_order():
    plan = PartPlan(10 * MiB, 5 * MiB)
    assert _moved(PartScheduler(plan.parts(), time_left=lambda: True)) == list(range(1, plan.count + 1))


def test_a_slice_without_time_still_moves_one_new_part():
    plan = PartPlan(20, 5)
    assert _moved(PartScheduler(plan.parts(), time_left=lambda: False)) == [1]


def test_parts_the_upload_held_do_not_count_as_progress():
    # a streamed resume re-reads parts 1 and 2 (to rebuild its digest): the first new part is 3
    plan = PartPlan(20, 5)
    assert _moved(PartScheduler(plan.parts(), uploaded={1, 2}, time_left=lambda: False)) == [1, 2, 3]


def test_the_slice_ends_between_parts():
    plan = PartPlan(40, 5)
    left = iter([True, True, False])
    assert _moved(PartScheduler(plan.parts(), time_left=lambda: next(left))) == [1, 2, 3]


def test_the_first_failure_halts_every_thread_and_is_kept():
    plan = PartPlan(100, 5)
    woken: list[bool] = []
    scheduler = PartScheduler(plan.parts(), time_left=lambda: True)
    scheduler.on_halt(lambda: woken.append(True))
    seen: list[int] = []

    def work(part) -> None:
        seen.append(part.number)
        if part.number == 2:
            raise ValueError("part 2")

    scheduler.run(1, work, "test-part")
    assert seen == [1, 2] and woken == [True]
    assert isinstance(scheduler.error, ValueError) and scheduler.stop.is_set()
    assert scheduler.claim() is None


def test_a_worker_woken_by_halt_is_no_failure():
    scheduler = PartScheduler(PartPlan(10, 5).parts(), time_left=lambda: True)

    def work(part) -> None:
        raise Cancelled()

    scheduler.run(2, work, "test-part")
    assert scheduler.error is None


def test_turns_pass_in_plan_order_whatever_the_threads_finish_first():
    plan = PartPlan(40, 5)
    scheduler = PartScheduler(plan.parts(3), time_left=lambda: True)
    assert scheduler.passed == 2
    order: list[int] = []

    def work(part) -> None:
        with scheduler.turn(part):
            order.append(part.number)

    scheduler.run(4, work, "test-part")
    assert order == list(range(3, plan.count + 1)) and scheduler.passed == plan.count


def test_a_turn_that_fails_does_not_pass_and_halting_frees_the_waiters():
    plan = PartPlan(40, 5)
    scheduler = PartScheduler(plan.parts(), time_left=lambda: True)

    def work(part) -> None:
        with scheduler.turn(part):
            if part.number == 1:
                raise ValueError("part 1")

    scheduler.run(4, work, "test-part")
    assert scheduler.passed == 0 and isinstance(scheduler.error, ValueError)
