"""COPY header parsing (dynafed_client.gateway.tpc)."""
from __future__ import annotations

import pytest

from dynafed_client.gateway.errors import BadRequest
from dynafed_client.gateway.tpc import parse_copy, transfer_headers


def test_pull_and_push() -> None:
    pull = parse_copy([("Source", "http://a.example/x"), ("Credential", "none")])
    assert (pull.mode, pull.remote_url, pull.overwrite) == ("pull", "http://a.example/x", True)
    push = parse_copy([("destination", "HTTPS://b.example/y"), ("Overwrite", "F")])
    assert (push.mode, push.remote_url, push.overwrite) == ("push", "HTTPS://b.example/y", False)


@pytest.mark.parametrize(("headers", "message"), [
    ([("Source", "http://a/x"), ("Destination", "http://b/y")], "both"),
    ([("Credential", "none")], "needs a Source"),
    ([("Source", "ftp://a/x")], "must be http"),
    ([("Source", "davs://a/x")], "must be http"),
    ([("Destination", "/relative/path")], "must be http"),
    ([("Source", "http:///nohost")], "no host"),
    ([("Source", "http://a/" + "x" * 9000)], "too long"),
])
def test_rejections(headers: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_copy(headers)


def test_transfer_headers_strip_prefix_any_case() -> None:
    got = transfer_headers([
        ("TransferHeaderAuthorization", "Bearer x"),
        ("transferheaderX-Custom", "1"),
        ("TRANSFERHEADERHost", "evil.example"),      # hop-by-hop / routing: never forwarded
        ("TransferHeader", "empty name"),
        ("TransferHeaderX-Split", "a\r\nInjected: 1"),  # header injection refused
        ("Authorization", "Bearer for-us"),          # ours, not the remote's
    ])
    assert got == {"Authorization": "Bearer x", "X-Custom": "1"}
