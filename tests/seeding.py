"""One seed for every random choice the suite makes (issue 13: replayable fuzzing).

``FUZZ_SEED`` (default :data:`DEFAULT_SEED`, so ``make test`` is the same run
every time) seeds Hypothesis (``hypothesis.core.global_force_seed``: what
``--hypothesis-seed`` sets; that option wins when given) and, per test,
Python's ``random`` with ``"<seed>:<test id>"`` (string seeds are hashed with
SHA-512, not with ``hash()``, so PYTHONHASHSEED plays no part).
``FUZZ_EXAMPLES`` sets every fuzz test's number of examples
(:func:`examples`). The seed is printed in the report header and with every
failure, so a failing case replays with ``make fuzz FUZZ_SEED=<seed>``.
"""
from __future__ import annotations

import os
import zlib

DEFAULT_SEED = 13013
#: the Hypothesis settings profile the suite runs with (see :func:`seed_hypothesis`)
PROFILE = "dynafed-fn-seeded"


def seed() -> int:
    """The run's seed (``FUZZ_SEED``)."""
    raw = os.environ.get("FUZZ_SEED", "").strip()
    return int(raw) if raw else DEFAULT_SEED


def examples(default: int) -> int:
    """``max_examples`` of a fuzz test: ``FUZZ_EXAMPLES`` when set, else ``default``."""
    raw = os.environ.get("FUZZ_EXAMPLES", "").strip()
    return max(1, int(raw)) if raw else default


def coin(text: str) -> bool:
    """A stable half/half choice from a text (CRC-32, not ``hash()``: the same in every process)."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) % 2 == 0


def seed_hypothesis(given: int | str | None = None) -> int | str:
    """Seed every Hypothesis test of the process: ``given`` (``--hypothesis-seed``)
    or :func:`seed`; returns the seed used."""
    from hypothesis import core, settings

    chosen = seed() if given is None else given
    core.global_force_seed = chosen
    # Hypothesis loads its "ci" profile when $CI is set (as .ci/run sets it),
    # and that profile derandomizes: every seed would then draw the same cases,
    # so FUZZ_SEED would silently stop mattering in CI. The suite's profile keeps
    # the current one's settings but draws from the seed, and has no deadline
    # (a per-example time limit is a timed assertion: flaky on a shared machine).
    settings.register_profile(PROFILE, parent=settings.get_profile(settings.get_current_profile_name()),
                              derandomize=False, deadline=None)
    settings.load_profile(PROFILE)
    return chosen
