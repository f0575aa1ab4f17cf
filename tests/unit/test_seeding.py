"""Replayable fuzzing (issue 13): the same FUZZ_SEED generates the same cases
in any process, whatever PYTHONHASHSEED; another seed generates others."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import seeding

ROOT = Path(__file__).resolve().parents[2]
#: a Hypothesis test run the way the suite seeds it (tests/seeding.py), printing what it drew
SCRIPT = """
from hypothesis import given, settings, strategies as st
from tests import seeding
seeding.seed_hypothesis()
drawn = []
@settings(max_examples=seeding.examples(25), database=None)
@given(st.text(max_size=12), st.integers())
def case(text, number):
    drawn.append((text, number, seeding.coin(text)))
case()
print(repr(drawn))
"""


def draw(seed: int, hashseed: str) -> str:
    env = {**os.environ, "FUZZ_SEED": str(seed), "PYTHONHASHSEED": hashseed, "FUZZ_EXAMPLES": "25"}
    return subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize("ci", ["", "1"], ids=["local", "CI=1"])
def test_the_same_seed_draws_the_same_cases_in_any_process(ci: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also under CI=1, where Hypothesis's own "ci" profile would derandomize
    (every seed the same cases: the seed would not matter)."""
    monkeypatch.delenv("CI", raising=False)
    if ci:
        monkeypatch.setenv("CI", ci)
    first, second = draw(4242, "1"), draw(4242, "987654")
    assert first == second and first.count("(") >= 25
    assert draw(4243, "1") != first


def test_the_steering_coin_does_not_depend_on_pythonhashseed() -> None:
    code = "from tests.seeding import coin; print([coin(k) for k in ('a', 'src', 'k/é', '')])"
    answers = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": h},
                              capture_output=True, text=True, check=True).stdout for h in ("0", "1", "31337")}
    assert len(answers) == 1


def test_fuzz_examples_overrides_every_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUZZ_EXAMPLES", raising=False)
    assert seeding.examples(200) == 200
    monkeypatch.setenv("FUZZ_EXAMPLES", "5000")
    assert seeding.examples(200) == 5000


def test_no_fuzz_test_steers_by_hash() -> None:
    """``hash(str)`` is randomised per process (PYTHONHASHSEED): a case steered by it does not replay."""
    call = re.compile(r"(?<![\w.`])hash\(")  # the builtin called, not hashlib / x.hash( / ``hash()`` in prose
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")
                 if p.name != "test_seeding.py" and call.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
