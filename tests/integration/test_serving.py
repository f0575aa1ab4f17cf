"""The one serving layer of the gateway and the receiver (dynafed_client/serving.py), on real gunicorn.

- SIGTERM drains: gunicorn's arbiter closes its listeners and signals the
  worker (gunicorn/arbiter.py ``Arbiter.stop``); the gthread worker stops
  accepting and waits up to ``graceful_timeout`` for the requests in flight
  (gunicorn/workers/gthread.py ``ThreadWorker.run``: ``futures.wait(...,
  timeout=self.cfg.graceful_timeout)``), so a request that started before
  SIGTERM is answered in full.
- A stalled connection is closed after ``--read-timeout`` under gunicorn too
  (TimedThreadWorker; gthread itself would block a thread on it for ever:
  ``TConn.init`` makes the socket blocking without a timeout).
- ``stop()`` of an in-process server that was never started returns
  (socketserver ``BaseServer.shutdown`` waits for a ``serve_forever`` that
  never ran).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import requests

from dynafed_client.events.server import EventReceiver
from dynafed_client.gateway.server import GatewayServer
from dynafed_contract.openapi import PROBLEM

GUARD_S = 60.0  # failure guard only

HOLDING_APP = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dynafed_client.serving import ServeOptions, serve

    started, release = Path(sys.argv[1]), Path(sys.argv[2])

    def app(environ, start_response):
        started.touch()
        while not release.exists():  # released by the test once the arbiter is stopping
            time.sleep(0.01)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"done"]

    sys.exit(serve(lambda: app, ServeOptions(threads=2, graceful_timeout=int(sys.argv[3]), log_level="info"),
                   on_ready=lambda url: print("ready at", url, file=sys.stderr, flush=True)))
""")


def _first_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    for line in proc.stderr:
        if "http://" in line:
            return "http://" + line.split("http://", 1)[1].split()[0]
    raise AssertionError("the server exited before printing its URL")


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    """Released only after the arbiter handled SIGTERM: with ``graceful_timeout`` 0 the arbiter
    SIGKILLs the worker at once (``Arbiter.stop``) and this request fails."""
    started, release = tmp_path / "started", tmp_path / "release"
    proc = subprocess.Popen([sys.executable, "-c", HOLDING_APP, str(started), str(release), "60"],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = _first_url(proc)
        answers: list[requests.Response] = []
        client = threading.Thread(target=lambda: answers.append(requests.get(f"{url}/hold", timeout=GUARD_S)))
        client.start()
        while not started.exists():  # the request is in the app
            assert proc.poll() is None, "the server exited before the request arrived"
            threading.Event().wait(0.01)
        os.killpg(proc.pid, signal.SIGTERM)  # what `dynafed-fn stack down` sends to the group
        assert proc.stderr is not None
        assert any("Handling signal: term" in line for line in proc.stderr), "the arbiter never handled SIGTERM"
        release.touch()
        client.join(timeout=GUARD_S)
        assert [(a.status_code, a.text) for a in answers] == [(200, "done")]
        assert proc.wait(timeout=GUARD_S) == 0
    finally:
        release.touch()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=GUARD_S)


def _stalled_head(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=GUARD_S)
    sock.sendall(f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode())
    return sock


def test_gunicorn_closes_a_stalled_connection_after_the_read_timeout(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dynafed_client.events", "serve", "--port", "0",
                             "--read-timeout", "0.5", "--threads", "1", "--log", str(tmp_path / "ev.ndjson")],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = _first_url(proc)
        stalled = _stalled_head(url)
        with stalled:
            while stalled.recv(65536):  # returns b"" once the server closed it (the guard would raise)
                pass
        # the one thread is free again: a real request is answered
        assert requests.get(f"{url}/healthz", timeout=GUARD_S).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=GUARD_S) == 0


@pytest.mark.parametrize("make", [lambda: GatewayServer(lambda e, s: []), lambda: EventReceiver()],
                         ids=["gateway", "receiver"])
def test_stopping_a_server_that_never_started_returns(make) -> None:
    server = make()
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=GUARD_S)
    assert not stopper.is_alive()
    server.stop()  # twice is harmless


def test_gunicorns_own_refusals_are_problem_json(tmp_path: Path) -> None:
    """A request line over gunicorn's ``limit_request_line`` (4094) is refused by gunicorn before
    the app (gunicorn/http/message.py ``Request.parse_request_line`` raises ``LimitRequestLine``,
    ``Worker.handle_error`` answers 414): the same problem+json as the apps'."""
    proc = subprocess.Popen([sys.executable, "-m", "dynafed_client.events", "serve", "--port", "0",
                             "--log", str(tmp_path / "ev.ndjson")],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        answer = requests.get(f"{_first_url(proc)}/{'x' * 5000}", timeout=GUARD_S)
        assert answer.status_code == 414 and answer.headers["Content-Type"] == "application/problem+json"
        body = answer.json()
        jsonschema.validate(body, PROBLEM)
        assert body["code"] == "URI_TOO_LONG" and body["status"] == 414 and len(body["detail"]) <= 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=GUARD_S) == 0
