"""The one bearer check (dynafed_contract/bearer.py) the functions and the
gateway share; each door's own tests (tests/security/test_auth.py,
tests/unit/test_gateway_wlcg.py) check it through HTTP."""
from __future__ import annotations

import pytest

from dynafed_contract.bearer import bearer_matches, presented_bearer
from dynafed_contract.fields import is_job_id


@pytest.mark.parametrize("header,token", [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"),
    ("Basic abc", None), ("Bearer", None), ("Bearer   ", None), ("", None), (None, None), ("abc", None),
])
def test_presented_bearer(header: str | None, token: str | None) -> None:
    assert presented_bearer(header) == token


def test_bearer_matches_only_the_exact_token() -> None:
    assert bearer_matches("s3cret", "s3cret")
    assert not bearer_matches("s3cre", "s3cret") and not bearer_matches("s3cret ", "s3cret")
    assert not bearer_matches(None, "s3cret") and not bearer_matches("é", "e")


@pytest.mark.parametrize("value,ok", [("job-1", True), ("a" * 128, True), ("a" * 129, False), ("-x", False),
                                      ("job\n", False), ("a:b.c_d", True), ("", False)])
def test_is_job_id(value: str, ok: bool) -> None:
    assert is_job_id(value) is ok
