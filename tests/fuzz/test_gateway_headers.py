"""hypothesis on the gateway's header parsing: ``Want-Digest`` (RFC 3230, as
davix reads the answer), ``Source``/``Destination``/``Overwrite`` of an HTTP-TPC
``COPY`` and the ``TransferHeader*`` pass-through. Hostile headers may only
yield a 400 (BadRequest) and what is accepted is safe to act on."""
from __future__ import annotations

import base64
from urllib.parse import urlsplit

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dynafed_client.gateway import digests, tpc
from dynafed_client.gateway.errors import BadRequest
from tests.seeding import examples

FUZZ = settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])

tokens = st.sampled_from([*digests.TOKENS, "ADLER32", "UNIXcksum", "crc32", "SHA-256", "MD5", "", " adler32 "])
params = st.sampled_from(["", ";q=0", ";q=0.5", ";q=1", ";q=1.5", ";q=-1", ";q=abc", ";Q=0.3", ";q=", ";x=1;q=0.2",
                          ";q=nan", ";q=inf"])
want_items = st.builds(lambda t, p: t + p, tokens, params) | st.text(max_size=12)
want_values = st.lists(want_items, max_size=40).map(",".join) | st.text(max_size=60)


@FUZZ
@given(st.lists(want_values, max_size=3))
@example([",".join(["md5"] * 100)])
@example(["adler32;q=nan,md5;q=inf"])
def test_want_digest_parsing(values: list[str]) -> None:
    wanted = digests.parse_want_digest(values)
    assert len(wanted) <= digests.MAX_TOKENS
    assert len({w.token for w in wanted}) == len(wanted)
    assert all(w.token in digests.TOKENS and w.algorithm == digests.TOKENS[w.token][0] for w in wanted)
    assert all(0.0 < w.q <= 1.0 for w in wanted)
    assert [w.q for w in wanted] == sorted((w.q for w in wanted), reverse=True)


#: what the checksum function answers (its schema: lowercase hex, fixed width per algorithm)
WIDTH = {"adler32": 4, "crc32c": 4, "md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}
function_checksums = st.fixed_dictionaries({}, optional={a: st.binary(min_size=n, max_size=n).map(bytes.hex)
                                                         for a, n in WIDTH.items()})
broken_checksums = st.dictionaries(st.sampled_from(list(WIDTH)),
                                   st.text(alphabet="0123456789abcdefXYZ ", max_size=20), min_size=1)


def _assert_davix_readable(header: str | None) -> None:
    if header is None:
        return
    assert " " not in header and "\r" not in header and "\n" not in header
    for part in header.split(","):  # davix splits on "," without trimming
        token, sep, value = part.partition("=")
        assert sep and token in digests.TOKENS and value
        algorithm, encoding = digests.TOKENS[token]
        if encoding == "hex":
            int(value, 16)
        else:
            assert base64.b64encode(base64.b64decode(value, validate=True)).decode() == value


@FUZZ
@given(st.lists(want_values, min_size=1, max_size=2), function_checksums)
def test_digest_header_is_what_davix_can_read(values: list[str], checksums: dict[str, str]) -> None:
    _assert_davix_readable(digests.format_digest(digests.parse_want_digest(values), checksums))


@FUZZ
@given(st.lists(want_values, min_size=1, max_size=2), broken_checksums)
def test_digest_header_drops_values_that_are_not_hex(values: list[str], checksums: dict[str, str]) -> None:
    _assert_davix_readable(digests.format_digest(digests.parse_want_digest(values), checksums))


url_hosts = st.sampled_from(["h", "127.0.0.1", "[::1]", "", "user:pw@h", "h:99999", "h:-1", "xn--d1acpjx3f.xn--p1ai"])
url_schemes = st.sampled_from(["http", "https", "HTTPS", "davs", "file", "ftp", "gopher", "", "javascript"])
urls = st.builds(lambda s, h, p: f"{s}://{h}/{p}", url_schemes, url_hosts, st.text(max_size=20)) | st.text(max_size=40)
header_names = st.sampled_from(["Source", "source", "Destination", "Overwrite", "TransferHeaderAuthorization",
                                "transferheaderx-custom", "TransferHeader", "TransferHeaderHost",
                                "TransferHeaderContent-Length", "TRANSFERHEADERProxy-Authorization",
                                "TransferHeaderConnection", "Credential", "X-Number-Of-Streams"]) | st.text(max_size=12)
header_values = urls | st.sampled_from(["T", "F", "f", " F ", "Bearer x", "a\r\nInjected: 1", "x\ny", ""])


@FUZZ
@given(st.lists(st.tuples(header_names, header_values), max_size=8))
@example([("Source", "http://h/x"), ("Destination", "http://h/y")])
@example([("Source", "file:///etc/passwd")])
@example([("Source", "http://h/" + "a" * 9000)])
@example([("Source", "http://h/x"), ("TransferHeaderAuthorization", "Bearer a\r\nX-Evil: 1")])
def test_copy_headers(headers: list[tuple[str, str]]) -> None:
    try:
        request = tpc.parse_copy(headers)
    except BadRequest as exc:
        assert exc.status == 400 and exc.reason
        return
    parts = urlsplit(request.remote_url)
    assert parts.scheme.lower() in ("http", "https") and parts.hostname
    assert len(request.remote_url) <= tpc.MAX_URL_LENGTH
    assert request.mode in ("pull", "push")
    assert isinstance(request.overwrite, bool)
    for name, value in request.transfer_headers.items():
        assert name and not name.lower().startswith(tpc.TRANSFER_HEADER_PREFIX) or name.lower() == "transferheader"
        assert name.lower() not in tpc._HOP_BY_HOP  # never Host, Content-Length, Connection, ...
        assert "\r" not in value and "\n" not in value  # no header injection on the outgoing request


@FUZZ
@given(st.lists(st.tuples(header_names, header_values), max_size=8))
def test_transfer_headers_only_come_from_the_prefix(headers: list[tuple[str, str]]) -> None:
    out = tpc.transfer_headers(headers)
    prefixed = {n[len(tpc.TRANSFER_HEADER_PREFIX):].lower() for n, _ in headers
                if n.lower().startswith(tpc.TRANSFER_HEADER_PREFIX)}
    assert {name.lower() for name in out} <= prefixed  # nothing but TransferHeader<Name> is forwarded
