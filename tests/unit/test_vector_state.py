"""No digest implementation leaves the AVX upper state in use.

ISA-L's crc32 returned with the upper halves of the YMM/ZMM registers in use;
every SSE-encoded instruction after it on the same thread then paid for them:
OpenSSL's SHA-extension sha256 cost 0.85 instead of 0.62 CPU-s/GiB, for the
rest of the thread's life (a gunicorn worker thread serves request after
request). The bench measures the cost (docs/performance.md); this test
checks the cause exactly, with XGETBV(1) (tests/vector_state.py), in a
subprocess because the instruction faults on a CPU without it.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dynafed_contract.algorithms import ALGORITHMS
from tests import vector_state

REPO = Path(__file__).resolve().parents[2]


def probe() -> dict[str, int]:
    if not vector_state.supported():
        pytest.skip("not x86-64 with AVX: the upper register state does not arise")
    run = subprocess.run([sys.executable, "-m", "tests.vector_state"], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=False)
    if run.returncode < 0:
        pytest.skip(f"XGETBV(1) is not available on this CPU (probe died of signal {-run.returncode})")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def test_every_engine_digest_returns_with_the_avx_upper_state_clean() -> None:
    bits = probe()
    # the probe sees the state: clean after the reset, dirty after an AVX write
    assert bits["clean"] == 0
    assert bits["dirty"] & vector_state.YMM_UPPER
    left_dirty = {algorithm: hex(bits[algorithm]) for algorithm in ALGORITHMS if bits[algorithm]}
    assert not left_dirty, f"these digests leave the AVX upper state in use: {left_dirty}"
