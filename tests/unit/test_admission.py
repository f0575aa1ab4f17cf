"""Admission and request reading (issue 13, classes 2 and 3), without a server:

* the app takes its in-flight slot only after the body is read, and a body
  that does not arrive by the worker's deadline is 408 without taking one;
* ``request_framing.ready_to_dispatch`` decides when the worker's event loop
  holds a whole request (RFC 9112 section 6: Content-Length, chunked, none);
* ``config.Concurrency`` is the one source of threads, in-flight limit and
  spare threads for gunicorn and the app.

The same behaviours under real gunicorn: tests/integration/test_slow_clients.py.
"""
from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app
from werkzeug.wrappers import Response as WsgiResponse

from dynafed_runtime.app import FunctionSpec, create_function_app
from dynafed_runtime.config import SPARE_THREADS, Concurrency, Config, ConfigError, request_read_timeout
from dynafed_runtime.gunicorn import settings
from dynafed_runtime.request_framing import ready_to_dispatch

STORES = json.dumps({"stores": {"default": {"endpoint_url": None, "region": "us-east-1",
                                            "access_key_id": "AKID", "secret_access_key": "s"}}})
SPEC = FunctionSpec(name="probe", handler=lambda incoming, ctx: {"data": incoming.data},
                    openapi=lambda: {"openapi": "3.1.0"})


def app_with_one_slot() -> Any:
    config = Config.from_env({"DYNAFED_FN_STORES": STORES, "DYNAFED_FN_MAX_INFLIGHT": "1", "THREADS": "1"},
                             function="probe")
    return create_function_app(SPEC, config, s3=lambda store: None)


def post_streaming(app: Any, stream: io.RawIOBase, length: int) -> WsgiResponse:
    """POST / with ``stream`` as the WSGI input, read as a server would (not seekable)."""
    environ = EnvironBuilder(path="/", method="POST", content_type="application/json",
                             headers={"Content-Length": str(length)}).get_environ()
    environ["wsgi.input"] = io.BufferedReader(stream)
    environ["CONTENT_LENGTH"] = str(length)
    body, status, headers = run_wsgi_app(app, environ, buffered=True)
    return WsgiResponse(b"".join(body), status=status, headers=headers)


class GatedBody(io.RawIOBase):
    """A request body whose bytes arrive only when the test says so."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reading = threading.Event()
        self.release = threading.Event()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.reading.set()
        assert self.release.wait(30), "the test never released the body"
        count = min(len(buffer), len(self.data))
        buffer[:count] = self.data[:count]
        self.data = self.data[count:]
        return count


class DeadBody(io.RawIOBase):
    """A body whose read hits the worker's deadline (read_deadline.DeadlineSocket raises this)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise TimeoutError("the request did not arrive within DYNAFED_FN_REQUEST_READ_TIMEOUT")


def test_a_body_still_arriving_holds_no_slot() -> None:
    app = app_with_one_slot()
    payload = b'{"slow": true}'
    body = GatedBody(payload)
    answers: dict[str, Any] = {}
    slow = threading.Thread(target=lambda: answers.update(slow=post_streaming(app, body, len(payload))))
    slow.start()
    try:
        assert body.reading.wait(30), "the slow request never started reading its body"
        # the only slot is free while the slow body is still being read
        fast = app.test_client().post("/", json={"fast": True})
        assert fast.status_code == 200, fast.get_data(as_text=True)
    finally:
        body.release.set()
        slow.join(30)
    assert answers["slow"].status_code == 200 and json.loads(answers["slow"].get_data()) == {"data": {"slow": True}}


def test_a_body_past_the_deadline_is_408_and_frees_nothing_it_never_took() -> None:
    app = app_with_one_slot()
    response = post_streaming(app, DeadBody(), 100)
    assert response.status_code == 408 and response.mimetype == "application/problem+json"
    problem = json.loads(response.get_data())
    assert problem["code"] == "REQUEST_TIMEOUT" and problem["retryable"] is True
    assert response.headers["Connection"] == "close"
    assert app.test_client().post("/", json={}).status_code == 200  # the slot was never taken


# --- request framing -----------------------------------------------------------------------

HEAD = b"POST / HTTP/1.1\r\nHost: x\r\n"
LIMITS = {"max_head": 1024, "max_body": 4096}


@pytest.mark.parametrize(("buffered", "ready"), [
    (b"GET /healthz HTTP/1.1\r\nHost: x", False),                              # head not finished
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", True),                       # no body
    (HEAD + b"Content-Length: 100\r\n\r\n{", False),                          # the slow client
    (HEAD + b"Content-Length: 2\r\n\r\n{}", True),
    (HEAD + b"Content-Length: 2\r\n\r\n{}GET / HTTP/1.1\r\n", True),           # pipelined rest
    (HEAD + b"Content-Length: 99999\r\n\r\n{", True),                          # over the limit: 413 at once
    (HEAD + b"Content-Length: \xc2\xb2\r\n\r\n", True),                        # malformed: gunicorn's 400
    (HEAD + b"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n", True),     # waits for our 100 Continue
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n", False),     # trailers not ended
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2;ext=1\r\n{}\r\n0\r\nX-T: 1\r\n\r\n", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", True),                # malformed chunk size
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2000\r\n" + b"x" * 4097, True),  # over the body limit
    (HEAD + b"X-Pad: " + b"a" * 2000, True),                                   # head over the limit
    (HEAD + b"no colon here\r\n\r\n", True),                                   # malformed field
])
def test_ready_to_dispatch(buffered: bytes, ready: bool) -> None:
    assert ready_to_dispatch(buffered, **LIMITS) is ready


# --- one source of truth for concurrency -----------------------------------------------------

def test_threads_unset_gives_gunicorn_and_the_app_the_same_numbers() -> None:
    conf = settings({}, default_threads=4)
    assert conf["threads"] == 4 + SPARE_THREADS
    assert conf["worker_class"] == "dynafed_runtime.worker.BufferingThreadWorker"
    worker_env = dict(item.split("=", 1) for item in conf["raw_env"])
    assert worker_env["THREADS"] == "4" and worker_env["DYNAFED_FN_MAX_INFLIGHT"] == "4"
    # what the worker process then sees is what the app admits
    config = Config.from_env({"DYNAFED_FN_STORES": STORES, **worker_env}, function="copy")
    assert config.max_inflight == 4


def test_an_inflight_limit_over_threads_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="DYNAFED_FN_MAX_INFLIGHT"):
        settings({"THREADS": "2", "DYNAFED_FN_MAX_INFLIGHT": "3"}, default_threads=4)
    with pytest.raises(ConfigError, match="DYNAFED_FN_MAX_INFLIGHT"):
        Config.from_env({"DYNAFED_FN_STORES": STORES, "THREADS": "2", "DYNAFED_FN_MAX_INFLIGHT": "3"},
                        function="copy")
    lower = Concurrency.from_env({"THREADS": "4", "DYNAFED_FN_MAX_INFLIGHT": "2"}, default_threads=8)
    assert (lower.threads, lower.max_inflight, lower.gunicorn_threads) == (4, 2, 4 + SPARE_THREADS)


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "3601"])
def test_the_read_timeout_is_validated(raw: str) -> None:
    with pytest.raises(ConfigError, match="DYNAFED_FN_REQUEST_READ_TIMEOUT"):
        request_read_timeout({"DYNAFED_FN_REQUEST_READ_TIMEOUT": raw})
    assert request_read_timeout({}) == 10.0
