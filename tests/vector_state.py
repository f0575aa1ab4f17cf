"""Which parts of the x86 vector register state are in use on this thread.

``XGETBV`` with ``ECX=1`` returns ``XINUSE``: one bit per state component
that is not in its initial state (Intel SDM vol. 1, 13.6 "Processor tracking
of XSAVE-managed state"). Bit 2 is the upper halves of YMM0-15, bit 6 those
of ZMM0-15. Code that leaves them in use without ``vzeroupper`` makes every
later SSE-encoded instruction on the thread slower (OpenSSL's SHA-extension
sha256 ~35 % here: docs/performance.md). Reading the bits is exact where a
timing would be noise, so the suite checks the digest implementations with it.

Run as a script (``python -m tests.vector_state``) it prints, as JSON, the
bits in use after each of the engine's digests, each started from a clean
state; the test runs it in a subprocess because XGETBV(1) on a CPU without
it faults, which must cost a skipped test, not the test process.
"""
from __future__ import annotations

import ctypes
import json
import mmap
import os
import platform

YMM_UPPER = 1 << 2
ZMM_UPPER = 1 << 6
DIRTY_UPPER = YMM_UPPER | ZMM_UPPER

# mov ecx, 1; xgetbv; shl rdx, 32; or rax, rdx; ret
_XINUSE = bytes([0xB9, 1, 0, 0, 0, 0x0F, 0x01, 0xD0, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0xC3])
# vzeroupper; ret
_VZEROUPPER = bytes([0xC5, 0xF8, 0x77, 0xC3])
# vpcmpeqd ymm0, ymm0, ymm0 (all ones: the upper half of ymm0 in use); ret
_DIRTY = bytes([0xC5, 0xFD, 0x76, 0xC0, 0xC3])


def supported() -> bool:
    """x86-64 Linux with AVX (where the question arises at all)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx" in line.split()
    except OSError:
        pass
    return False


class _Routines:
    def __init__(self) -> None:
        self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._page.write(_XINUSE + _VZEROUPPER + _DIRTY)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        self.xinuse = ctypes.CFUNCTYPE(ctypes.c_uint64)(base)
        self.vzeroupper = ctypes.CFUNCTYPE(None)(base + len(_XINUSE))
        self.dirty = ctypes.CFUNCTYPE(None)(base + len(_XINUSE) + len(_VZEROUPPER))


def dirty_after_each(algorithms: list[str], size: int = 8 << 20) -> dict[str, int]:
    """``XINUSE & DIRTY_UPPER`` after one update of ``size`` bytes by each
    algorithm's engine digest, from a clean upper state each time. Two
    controls: "clean" right after the reset, "dirty" right after an AVX
    instruction that leaves the upper half of ymm0 in use (so nothing
    between the code and the reading of the bits hides what it left)."""
    from dynafed_runtime.digests import new_digest

    routines = _Routines()
    data = bytearray(os.urandom(size))
    routines.vzeroupper()
    out = {"clean": routines.xinuse() & DIRTY_UPPER}
    routines.dirty()
    out["dirty"] = routines.xinuse() & DIRTY_UPPER
    for algorithm in algorithms:
        digest = new_digest(algorithm)
        routines.vzeroupper()
        digest.update(memoryview(data))
        out[algorithm] = routines.xinuse() & DIRTY_UPPER
    return out


if __name__ == "__main__":
    from dynafed_contract.algorithms import ALGORITHMS

    print(json.dumps(dirty_after_each(list(ALGORITHMS))))
