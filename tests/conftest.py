from __future__ import annotations

import os
import pathlib
import random
from collections.abc import Iterator

import pytest

from tests import seeding

pytest_plugins = ["tests.integration.stackfixture"]

# --- test tiers: the marker follows the directory ---------------------------
# The one way a test gets its tier: tests/<directory>/... is marked with
# ``TIERS[directory]``, so `-m unit`, `-m integration`, ... select by directory.
# security/ and faults/ run in-process against fakes (moto, loopback servers):
# they are unit tests. A module never marks its own tier (collection stops with
# the module named), and a test outside these directories has no tier (the same).
TIERS = {
    "unit": "unit", "security": "unit", "faults": "unit",
    "integration": "integration", "interop": "interop", "manifests": "manifests", "fuzz": "fuzz",
}
_TESTS_ROOT = pathlib.Path(__file__).resolve().parent


def tier_of(path: pathlib.Path) -> str | None:
    """The tier marker of a test file by its directory below tests/ (None outside the tiers)."""
    try:
        directory = path.resolve().relative_to(_TESTS_ROOT).parts[0]
    except (ValueError, IndexError):
        return None
    return TIERS.get(directory)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong: set[str] = set()
    for item in items:
        path = pathlib.Path(str(item.path))
        tier = tier_of(path)
        if tier is None or any(item.get_closest_marker(t) for t in set(TIERS.values())):
            wrong.add(os.path.relpath(path, _TESTS_ROOT.parent))
            continue
        item.add_marker(getattr(pytest.mark, tier))
    if wrong:
        raise pytest.UsageError(
            "the tier of a test is its directory (tests/conftest.py TIERS): put these files in a tier's "
            "directory and drop any tier marker they set themselves:\n  " + "\n  ".join(sorted(wrong)))


# --- one seed for the run (tests/seeding.py) ---------------------------------

def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("hypothesis_seed", None) is None:
        seeding.seed_hypothesis()


def pytest_report_header(config: pytest.Config) -> str:
    given = config.getoption("hypothesis_seed", None)
    return (f"seed: {given if given is not None else seeding.seed()} (FUZZ_SEED; replay: make fuzz FUZZ_SEED=<seed>)"
            f", fuzz examples: {seeding.examples(0) or 'per test'} (FUZZ_EXAMPLES)")


@pytest.fixture(autouse=True)
def _seeded_random(request: pytest.FixtureRequest) -> Iterator[None]:
    """Python's ``random`` seeded per test from the run's seed and the test's id."""
    state = random.getstate()
    random.seed(f"{seeding.seed()}:{request.node.nodeid}")
    yield
    random.setstate(state)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        report.sections.append(("seed", f"FUZZ_SEED={seeding.seed()} (replay: make fuzz FUZZ_SEED={seeding.seed()})"))
