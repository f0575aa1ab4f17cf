from __future__ import annotations

import pathlib
import random
from collections.abc import Iterator

import pytest

from tests import seeding

pytest_plugins = ["tests.integration.stackfixture"]

# --- test tiers: the marker follows the directory ---------------------------
# tests/<tier>/... gets ``pytest.mark.<tier>`` automatically, so `-m unit`,
# `-m integration`, ... select by directory and a module need not repeat it
# (one that sets ``pytestmark`` explicitly does not get it twice).
TIERS = ("unit", "integration", "interop", "manifests", "fuzz")
_TESTS_ROOT = pathlib.Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            tier = pathlib.Path(str(item.path)).resolve().relative_to(_TESTS_ROOT).parts[0]
        except (ValueError, IndexError):
            continue
        if tier in TIERS and item.get_closest_marker(tier) is None:
            item.add_marker(getattr(pytest.mark, tier))


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
