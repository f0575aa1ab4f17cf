"""Connection-level hostile input against the real container command
(``gunicorn -c functions/<fn>/gunicorn.conf.py functions.<fn>.wsgi:app``) and
real SeaweedFS (issue 13, class 7):

* gunicorn's own refusals — a bad request line, a request line over
  ``limit_request_line`` (414), too many header fields (431), a bad chunk —
  come back as problem+json with a stable code (``Worker.handle_error`` in
  gunicorn/workers/base.py writes them through ``util.write_error``, which
  dynafed_runtime/gunicorn_errors.py replaces in each worker);
* a chunked body over the 64 KiB limit is a 413, not cut at 64 KiB and parsed
  (Werkzeug's ``LimitedStream.readall`` stops at the limit silently);
* an http(s) source stating ``Content-Length: ²`` (``str.isdigit`` accepts it,
  ``int`` does not) is a clean UPSTREAM_ERROR, not a 500.

Requests are written on raw sockets where a client library would refuse to
send them. The servers listen on loopback only.
"""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dynafed_client.stack import Stack
from tests.container_cmd import ContainerCmd
from tests.faults.httpsource import StaticHttpSource
from tests.raw_http import read_response

BUCKET = "demo"


class Gunicorn(ContainerCmd):
    """One function under gunicorn, exactly as its container CMD runs it (2 threads unless told)."""

    def __init__(self, function: str, tmp: Path, env: dict[str, str]) -> None:
        super().__init__(function, tmp, {"THREADS": "2", **env})

    def raw(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send ``data`` as is; the response's status, headers and body (read to its length)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(data)
            response = read_response(sock)
        return response.status, response.headers, response.body



@pytest.fixture(scope="module")
def checksum(seaweed: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    seaweed.s3_client().put_object(Bucket=BUCKET, Key="hostile/k", Body=b"payload")
    fn = Gunicorn("checksum", tmp_path_factory.mktemp("checksum"), {"DYNAFED_FN_STORES_FILE": str(seaweed.stores_file)})
    yield fn
    fn.stop()


@pytest.fixture(scope="module")
def site() -> Iterator[StaticHttpSource]:
    with StaticHttpSource() as s:
        yield s


@pytest.fixture(scope="module")
def copy(seaweed: Stack, site: StaticHttpSource, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    fn = Gunicorn("copy", tmp_path_factory.mktemp("copy"), {
        "DYNAFED_FN_STORES_FILE": str(seaweed.stores_file), "DYNAFED_FN_HTTP_SOURCES": site.url,
        "DYNAFED_FN_ALLOW_PRIVATE_SOURCES": "1"})
    yield fn
    fn.stop()


def assert_problem(status: int, headers: dict[str, str], body: bytes, expected: int, code: str) -> dict[str, Any]:
    assert status == expected, (status, body[:300])
    assert headers.get("content-type") == "application/problem+json", (headers, body[:300])
    problem = json.loads(body)
    assert problem["status"] == expected and problem["code"] == code and problem["retryable"] is False, problem
    assert b"<html" not in body.lower()
    return problem


# --- gunicorn's own errors ---------------------------------------------------------------

@pytest.mark.parametrize(("request_bytes", "status", "code"), [
    (b"GARBAGE\r\n\r\n", 400, "INVALID_REQUEST"),                               # InvalidRequestLine
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 400, "INVALID_REQUEST"),             # InvalidHTTPVersion
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI_TOO_LONG"),  # limit_request_line 4094
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(120)) + b"\r\n",
     431, "HEADERS_TOO_LARGE"),                                                 # limit_request_fields 100
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n", 400, "INVALID_REQUEST"),  # InvalidHeaderName
])
def test_gunicorn_refusals_are_problem_json(checksum: Gunicorn, request_bytes: bytes, status: int,
                                            code: str) -> None:
    got, headers, body = checksum.raw(request_bytes)
    assert_problem(got, headers, body, status, code)
    assert headers.get("connection") == "close"


def test_a_broken_chunk_is_a_400_not_an_internal_error(checksum: Gunicorn) -> None:
    """gunicorn raises InvalidChunkSize from ``wsgi.input.read`` (gunicorn/http/body.py
    ChunkedReader): the app's body read maps it to 400 (dynafed_runtime/body.py)."""
    got, headers, body = checksum.raw(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\n{}\r\n0\r\n\r\n")
    assert_problem(got, headers, body, 400, "INVALID_REQUEST")


# --- chunked bodies over the limit ---------------------------------------------------------

def _chunked(payload: bytes, size: int = 8192) -> bytes:
    pieces = [payload[i:i + size] for i in range(0, len(payload), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def _post_chunked(fn: Gunicorn, payload: bytes) -> tuple[int, dict[str, str], bytes]:
    return fn.raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n" + _chunked(payload))


def test_a_chunked_body_over_the_limit_is_a_413_not_a_truncated_parse(checksum: Gunicorn) -> None:
    """A valid request whose first 64 KiB are themselves a valid JSON prefix would
    have been parsed from the cut: padded after the object, so the cut is still
    an object, and the rest is garbage."""
    request = json.dumps({"bucket": BUCKET, "key": "hostile/k", "algorithms": ["adler32"]}).encode()
    payload = request + b" " * (64 * 1024 - len(request)) + b"garbage that is not JSON"
    got, headers, body = _post_chunked(checksum, payload)
    assert_problem(got, headers, body, 413, "PAYLOAD_TOO_LARGE")


def test_a_chunked_body_within_the_limit_is_served(checksum: Gunicorn) -> None:
    request = json.dumps({"bucket": BUCKET, "key": "hostile/k", "algorithms": ["adler32"]}).encode()
    got, _, body = _post_chunked(checksum, request + b" " * (60 * 1024))
    assert got == 200, body[:300]
    assert json.loads(body)["checksums"]["adler32"] == "0bdd02eb"  # zlib.adler32(b"payload")


def test_a_huge_integer_literal_under_gunicorn_is_a_400(checksum: Gunicorn) -> None:
    data = b'{"bucket": "demo", "key": "hostile/k", "range": [0, ' + b"9" * 5000 + b"]}"
    answer = requests.post(checksum.url, data=data, headers={"Content-Type": "application/json"}, timeout=30)
    assert answer.status_code == 400 and answer.json()["code"] == "INVALID_REQUEST", answer.text
    assert "Traceback" not in checksum.log.read_text(errors="replace")


# --- an http source with an odd Content-Length -----------------------------------------------

@pytest.mark.parametrize("length", ["²", "1_000", "7x", "-7", "0x7", "+7"])
def test_an_http_source_with_a_non_ascii_digit_length_is_an_upstream_error(copy: Gunicorn, site: StaticHttpSource,
                                                                         length: str) -> None:
    site.put("/odd.bin", b"payload", length=length)
    answer = requests.post(copy.url, json={"source": {"url": f"{site.url}/odd.bin"},
                                           "destination": {"bucket": BUCKET, "key": "hostile/odd"}}, timeout=60)
    assert answer.status_code == 502, answer.text
    assert answer.json()["code"] == "UPSTREAM_ERROR"
    assert "Traceback" not in copy.log.read_text(errors="replace")
