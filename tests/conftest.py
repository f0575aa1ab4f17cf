from __future__ import annotations

import pathlib

import pytest

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
