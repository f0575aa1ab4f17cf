"""The interop tests' gate: skip loudly on a developer machine, fail in CI."""
from __future__ import annotations

import pytest

from tests.interop.helpers import REQUIRE_ENV, require


def test_present_part_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    require(None)


def test_missing_part_skips_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="INTEROP TEST NOT RUN: gfal2 gone.*apt-get install"):
        require("gfal2 gone")


def test_missing_part_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="real part missing: gfal2 gone"):
        require("gfal2 gone")
