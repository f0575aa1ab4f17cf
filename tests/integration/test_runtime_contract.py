"""The Knative runtime contract, with the real container command
(``gunicorn -c functions/checksum/gunicorn.conf.py functions.checksum.wsgi:app``)
started here against real SeaweedFS: ``$PORT``, ``K_SERVICE``/``K_REVISION``
in /healthz, event source and JSON logs, CloudEvents to ``$K_SINK`` (a real
receiver process) with ``$K_CE_OVERRIDES``, a store that is down, and SIGTERM
during a request."""
from __future__ import annotations

import base64
import hashlib
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cloudevents.core.bindings.http import HTTPMessage, from_http_event

from dynafed_client.stack import Stack
from tests.container_cmd import REPO, ContainerCmd

BUCKET = "demo"

# A CloudEvents sink in its own process: records every POST (headers and
# body) as one JSON line, answers 202. Prints its port once listening.
RECEIVER = r"""
import base64, json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

out = open(sys.argv[1], "a", buffering=1)

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        out.write(json.dumps({"path": self.path, "headers": dict(self.headers.items()),
                              "body": base64.b64encode(body).decode()}) + "\n")
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def wait_for(condition: Callable[[], Any], what: str, timeout: float, proc: subprocess.Popen | None = None,
             log: Path | None = None) -> Any:
    """Poll ``condition`` until truthy; fail (with the log tail) on timeout or process exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            value = condition()
        except (requests.ConnectionError, OSError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"{what} not ready (exit code {proc.poll() if proc else None}):\n{tail}", pytrace=False)


class Function(ContainerCmd):
    """One gunicorn process running the checksum function exactly like the container CMD."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        super().__init__("checksum", tmp, env)

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON lines of the log (gunicorn's own lines are not JSON)."""
        docs = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                docs.append(json.loads(line))
        return docs



@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    path = tmp_path_factory.mktemp("sink") / "events.ndjson"
    path.touch()
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}/", path
    finally:
        proc.terminate()
        proc.wait(10)


def received(path: Path) -> list[Any]:
    """Events the receiver got, parsed with the CloudEvents SDK."""
    events = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        headers = {k.lower(): v for k, v in doc["headers"].items()}
        events.append(from_http_event(HTTPMessage(headers, base64.b64decode(doc["body"]))))
    return events


@pytest.fixture(scope="module")
def function(seaweed: Stack, receiver: tuple[str, Path],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Function]:
    sink, _ = receiver
    fn = Function(tmp_path_factory.mktemp("fn"), {
        "K_SERVICE": "checksum-it", "K_REVISION": "checksum-it-00007", "K_CONFIGURATION": "checksum-it",
        "K_SINK": sink, "K_CE_OVERRIDES": json.dumps({"extensions": {"cluster": "itest", "zone": "b1"}}),
        "DYNAFED_FN_STORES_FILE": str(seaweed.stores_file), "THREADS": "4",
    })
    yield fn
    fn.stop()


def test_port_and_knative_identity(function: Function) -> None:
    health = requests.get(f"{function.url}/healthz", timeout=10).json()
    assert health["service"] == "checksum-it" and health["revision"] == "checksum-it-00007"
    assert health["function"] == "checksum"
    # it listens where $PORT says, on loopback only
    assert f"Listening at: http://127.0.0.1:{function.port}" in function.log.read_text()
    assert requests.get(f"{function.url}/readyz", timeout=10).json() == {"status": "ready",
                                                                         "stores": {"default": "ok", "archive": "ok"}}


def test_events_reach_a_real_receiver(function: Function, seaweed: Stack, receiver: tuple[str, Path]) -> None:
    _, path = receiver
    seaweed.s3_client().put_object(Bucket=BUCKET, Key="events/one two", Body=b"123456789")
    response = requests.post(function.url, json={"bucket": BUCKET, "key": "events/one two",
                                                 "algorithms": ["adler32", "crc32c"]}, timeout=30)
    assert response.status_code == 200, response.text
    event = wait_for(lambda: next((e for e in received(path)
                                   if e.get_attributes().get("subject") == "default/demo/events/one two"), None),
                     "the checksum.computed event", 30)
    attrs = event.get_attributes()
    assert attrs["type"] == "ch.cern.dynafed.checksum.computed"
    assert attrs["source"] == "/dynafed-fn/checksum-it"  # names the Knative service
    assert attrs["specversion"] == "1.0" and attrs["datacontenttype"] == "application/json"
    assert attrs["cluster"] == "itest" and attrs["zone"] == "b1"  # K_CE_OVERRIDES
    assert event.get_data() == response.json()
    assert event.get_data()["checksums"] == {"adler32": "091e01de", "crc32c": "e3069283"}


def test_logs_are_json_with_identity_and_request_id(function: Function, seaweed: Stack) -> None:
    seaweed.s3_client().put_object(Bucket=BUCKET, Key="logs/k", Body=b"x")
    response = requests.post(function.url, json={"bucket": BUCKET, "key": "logs/k"},
                             headers={"X-Request-Id": "it-req-0001"}, timeout=30)
    assert response.status_code == 200 and response.headers["X-Request-Id"] == "it-req-0001"
    requests.post(function.url, json={"bucket": BUCKET, "key": "logs/absent"},
                  headers={"X-Request-Id": "it-req-0002"}, timeout=30)
    docs = wait_for(lambda: [d for d in function.log_lines() if d.get("request_id") in ("it-req-0001", "it-req-0002")
                             and d.get("msg") == "request"] or None, "request log lines", 10)
    by_id = {d["request_id"]: d for d in docs}
    assert by_id["it-req-0001"]["status"] == 200 and by_id["it-req-0002"]["status"] == 404
    for doc in by_id.values():
        assert doc["service"] == "checksum-it" and doc["revision"] == "checksum-it-00007"
        assert doc["level"] == "INFO" and doc["path"] == "/"


def test_no_secret_in_logs(function: Function, seaweed: Stack) -> None:
    secrets = [store["secret_access_key"] for store in seaweed.stores.values()]
    text = function.log.read_text(errors="replace")
    assert text and not any(secret in text for secret in secrets)


# --- a store that is down -----------------------------------------------------------

@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A loopback port bound but never listening: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def store_down(seaweed: Stack, closed_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Function]:
    tmp = tmp_path_factory.mktemp("down")
    store = {**seaweed.stores["default"], "endpoint_url": f"http://127.0.0.1:{closed_port}"}
    stores_file = tmp / "stores.json"
    stores_file.write_text(json.dumps({"stores": {"default": store}}))
    fn = Function(tmp, {"DYNAFED_FN_STORES_FILE": str(stores_file), "DYNAFED_FN_S3_MAX_ATTEMPTS": "2"})
    yield fn
    fn.stop()


def test_store_down_is_503_retryable(store_down: Function, closed_port: int) -> None:
    response = requests.post(store_down.url, json={"bucket": BUCKET, "key": "k"}, timeout=60)
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "UPSTREAM_UNAVAILABLE" and body["retryable"] is True
    assert str(closed_port) not in response.text  # endpoints are not the caller's business


def test_store_down_readyz_is_503(store_down: Function) -> None:
    response = requests.get(f"{store_down.url}/readyz", timeout=30)
    assert response.status_code == 503
    assert response.json()["code"] == "UPSTREAM_UNAVAILABLE"
    assert response.json()["stores"]["default"].startswith("unreachable")
    assert requests.get(f"{store_down.url}/healthz", timeout=10).status_code == 200  # alive, just not ready


def test_unknown_algorithm_makes_no_s3_call(store_down: Function) -> None:
    # with the store down, any S3 call would turn this into a 503
    response = requests.post(store_down.url, json={"bucket": BUCKET, "key": "k", "algorithms": ["md4"]}, timeout=30)
    assert response.status_code == 400 and response.json()["code"] == "UNKNOWN_ALGORITHM"


# --- SIGTERM during a request ----------------------------------------------------------

class ThrottlingProxy:
    """A loopback TCP proxy to the S3 server that slows responses down
    (``delay`` per ``chunk`` bytes), so a request stays in flight long enough
    to be interrupted; ``bytes_down`` tells when the body is flowing."""

    def __init__(self, upstream_port: int, *, chunk: int = 64 * 1024, delay: float = 0.03) -> None:
        self.upstream_port, self.chunk, self.delay = upstream_port, chunk, delay
        self.bytes_down = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        try:
            while data := src.recv(self.chunk):
                dst.sendall(data)
                if slow:
                    self.bytes_down += len(data)
                    time.sleep(self.delay)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.closed = True
        for sock in [self.listener, *self.sockets]:
            sock.close()


def test_sigterm_lets_the_request_in_flight_finish(seaweed: Stack, tmp_path: Path) -> None:
    size = 6 * 1024 * 1024
    data = random.Random(15).randbytes(size)
    seaweed.s3_client().put_object(Bucket=BUCKET, Key="slow/object", Body=data)
    s3_port = int(seaweed.endpoint_url.rsplit(":", 1)[1])
    proxy = ThrottlingProxy(s3_port)  # ~2 MB/s: the read takes a few seconds
    stores_file = tmp_path / "stores.json"
    stores_file.write_text(json.dumps({"stores": {"default": {**seaweed.stores["default"],
                                                              "endpoint_url": f"http://127.0.0.1:{proxy.port}"}}}))
    graceful = 60
    fn = Function(tmp_path, {"DYNAFED_FN_STORES_FILE": str(stores_file), "GRACEFUL_TIMEOUT": str(graceful),
                             "K_SERVICE": "checksum-drain"})
    try:
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["response"] = requests.post(fn.url, json={"bucket": BUCKET, "key": "slow/object",
                                                                  "algorithms": ["adler32", "md5"]}, timeout=120)
            except Exception as exc:  # reported below
                outcome["error"] = exc

        caller = threading.Thread(target=call)
        caller.start()
        # the object's bytes are flowing, far from done: now the platform stops the pod
        wait_for(lambda: proxy.bytes_down > 512 * 1024, "the object read", 60, fn.proc, fn.log)
        assert proxy.bytes_down < size
        fn.proc.send_signal(signal.SIGTERM)
        caller.join(graceful + 30)
        assert "error" not in outcome, outcome.get("error")
        response = outcome["response"]
        assert response.status_code == 200, response.text
        assert response.json()["checksums"] == {"adler32": f"{zlib.adler32(data):08x}",
                                                "md5": hashlib.md5(data).hexdigest()}  # noqa: S324
        assert fn.proc.wait(graceful + 30) == 0  # then it exits, cleanly
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{fn.url}/healthz", timeout=5)
    finally:
        fn.stop()
        proxy.close()


# --- a broken environment fails the run, it is never skipped -----------------------------

def test_fixtures_fail_when_seaweedfs_cannot_start(tmp_path: Path) -> None:
    fake_weed = tmp_path / "weed"
    fake_weed.write_text("#!/bin/sh\necho 'weed: cannot start (simulated)' >&2\nexit 1\n")
    fake_weed.chmod(0o755)
    (tmp_path / "conftest.py").write_text(
        "import dynafed_client.stack.seaweedfs as seaweedfs\n"
        f"seaweedfs.weed_binary = lambda: {str(fake_weed)!r}\n"
        "pytest_plugins = ['tests.integration.stackfixture']\n")
    (tmp_path / "test_needs_s3.py").write_text(
        "def test_stack(stack):\n    pass\n\n"
        "def test_seaweed(seaweed):\n    pass\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
                          f"--rootdir={tmp_path}", str(tmp_path)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 1, run.stdout[-3000:]
    assert "2 errors" in summary and "skipped" not in summary, run.stdout[-3000:]
    assert "failed to start" in run.stdout
