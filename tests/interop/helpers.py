"""Helpers for the interop tests (and the gateway/hook integration tests).

* :func:`require` — skip loudly on a developer machine without the Debian
  packages, FAIL when ``DYNAFED_FN_REQUIRE_REAL_PARTS=1`` (CI).
* :func:`run_gfal2` — a gfal2 script under Debian's ``/usr/bin/python3``
  (the binding is built for it, not for the venv).
* :class:`HttpSource` — a small http server with a throttled, optionally
  truncated, Range-aware GET: a "remote storage" a copy pulls from, and
  :func:`stack_allowing` — a local stack whose copy function accepts it.
* :func:`gateway_process` — ``python -m dynafed_client.gateway`` against a
  stack's state, with test-friendly options.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.watching import run_watching

REQUIRE_ENV = "DYNAFED_FN_REQUIRE_REAL_PARTS"
DEBIAN_PYTHON = "/usr/bin/python3"
INSTALL_HINT = "apt-get install -y gfal2 gfal2-plugin-http python3-gfal2 davix"
REPO = Path(__file__).resolve().parents[2]


def require(missing: str | None) -> None:
    """Nothing if ``missing`` is None; else skip with a loud reason, or fail in CI."""
    if missing is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"real part missing: {missing} ({REQUIRE_ENV}=1 makes it required; {INSTALL_HINT})",
                    pytrace=False)
    pytest.skip(f"INTEROP TEST NOT RUN: {missing}. Install with: {INSTALL_HINT} "
                f"(CI sets {REQUIRE_ENV}=1 and fails instead)")


def gfal2_missing() -> str | None:
    """Why gfal2 (with its http plugin) cannot be driven, or None."""
    if not Path(DEBIAN_PYTHON).is_file():
        return f"{DEBIAN_PYTHON} not found"
    probe = "import gfal2; print(' '.join(gfal2.creat_context().get_plugin_names()))"
    try:
        done = subprocess.run([DEBIAN_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {DEBIAN_PYTHON}: {exc}"
    if done.returncode != 0:
        return f"python3-gfal2 not importable by {DEBIAN_PYTHON} ({done.stderr.strip().splitlines()[-1:]})"
    if "http" not in done.stdout:
        return f"gfal2 has no http plugin (plugins: {done.stdout.strip() or 'none'}); install gfal2-plugin-http"
    return None


def davix_missing() -> str | None:
    return None if shutil.which("davix-http") else "davix-http not on PATH (package davix)"


def run_gfal2(script: str, *args: str, timeout: float = 240) -> dict[str, Any]:
    """Run ``script`` with Debian's python; its last stdout line is JSON (returned)."""
    return _gfal2_result(subprocess.run([DEBIAN_PYTHON, "-c", script, *args], capture_output=True, text=True,
                                        timeout=timeout, env=_gfal2_env()))


def run_gfal2_watching(script: str, *args: str, on_line: Callable[[str], None],
                       timeout: float = 240) -> dict[str, Any]:
    """:func:`run_gfal2`, calling ``on_line`` with each stdout line as the
    script prints it (so a test can react to gfal2's monitor callbacks while
    the transfer runs)."""
    env = {**_gfal2_env(), "PYTHONUNBUFFERED": "1"}
    return _gfal2_result(run_watching([DEBIAN_PYTHON, "-c", script, *args], env, on_line, timeout))


def _gfal2_env() -> dict[str, str]:
    # Debian's python3 runs the script: none of this virtualenv's PYTHON* / VIRTUAL_ENV settings
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


def _gfal2_result(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The script's last stdout line as JSON, with its whole stdout and stderr; AssertionError when it failed."""
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        raise AssertionError(f"gfal2 script failed (exit {done.returncode}):\nstdout:\n{done.stdout[-3000:]}\n"
                             f"stderr:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["_stdout"] = done.stdout
    result["_stderr"] = done.stderr
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class Gate:
    """Holds GET bodies of one blob at fixed byte offsets until the test
    releases them: progress tests are driven by events, not by a throttled
    rate (a rate makes "an intermediate value is seen" depend on how loaded
    the machine is).

    The server stops before byte ``holds[i]`` until :meth:`release` was
    called ``i + 1`` times. The test releases a hold once it has *observed*
    the progress the bytes before it allow (a monitor line, a perf marker).
    A hold that is never released ends the response after ``timeout``
    seconds (the transfer then fails, and so does the test)."""

    def __init__(self, holds: list[int], *, timeout: float = 240) -> None:
        self.holds = sorted(holds)
        self.timeout = timeout
        self._released = 0
        self._cond = threading.Condition()
        #: index of the hold a response is waiting at (None: none is waiting)
        self.waiting_at: int | None = None

    def next_hold_after(self, position: int) -> int | None:
        """The first unreleased hold at or after ``position`` (absolute byte offset)."""
        with self._cond:
            pending = [h for h in self.holds[self._released:] if h >= position]
            return pending[0] if pending else None

    def wait(self, offset: int) -> None:
        """Block the serving thread at ``offset`` until that hold is released."""
        index = self.holds.index(offset)
        with self._cond:
            self.waiting_at = index
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._released > index, timeout=self.timeout):
                raise TimeoutError(f"hold at byte {offset} was never released")
            self.waiting_at = None

    def release(self) -> None:
        """Let the body go on to the next hold (or to its end)."""
        with self._cond:
            self._released += 1
            self._cond.notify_all()

    @property
    def released(self) -> int:
        with self._cond:
            return self._released

    def release_all(self) -> None:
        with self._cond:
            self._released = len(self.holds)
            self._cond.notify_all()


@dataclasses.dataclass
class Blob:
    data: bytes
    #: bytes per second of GET bodies (None = as fast as possible)
    rate: float | None = None
    #: full GETs announce the whole length but end after this many bytes
    truncate_at: int | None = None
    #: GET bodies stop at these offsets until the test releases them
    gate: Gate | None = None

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.data).hexdigest() + '"'


class HttpSource:
    """A "remote storage" on 127.0.0.1: serves blobs added with :meth:`add`
    at ``/<name>`` (GET with Range, HEAD), each throttled and/or cut short as
    asked. Requests are recorded as (method, path, headers)."""

    def __init__(self) -> None:
        self.blobs: dict[str, Blob] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True, request_handler=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def add(self, name: str, data: bytes, *, rate: float | None = None, truncate_at: int | None = None,
            gate: Gate | None = None) -> str:
        """Serve ``data`` at ``/<name>``; returns its URL."""
        self.blobs[name] = Blob(data, rate, truncate_at, gate)
        return f"{self.url}/{name}"

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.append((request.method, request.path, dict(request.headers)))
        blob = self.blobs.get(request.path.lstrip("/"))
        if blob is None:
            return Response("not found\n", status=404)(environ, start_response)
        data = blob.data
        if request.method == "HEAD":
            return Response(status=200, headers={"Content-Length": str(len(data)), "Accept-Ranges": "bytes",
                                                 "ETag": blob.etag})(environ, start_response)
        if request.method != "GET":
            return Response(status=405)(environ, start_response)
        status, start, end = 200, 0, len(data)
        if request.range is not None and request.range.ranges:
            begin, stop = request.range.range_for_length(len(data)) or (0, len(data))
            status, start, end = 206, begin, stop
        body = data[start:end]
        headers = {"Content-Length": str(len(body)), "Accept-Ranges": "bytes", "ETag": blob.etag,
                   "Last-Modified": "Fri, 27 Nov 2026 00:00:00 GMT"}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        # a cut source breaks every read that would go past the cut, ranged resumes included
        limit = len(body) if blob.truncate_at is None else max(0, min(len(body), blob.truncate_at - start))
        if blob.truncate_at is not None and status == 206 and end - start <= 1:
            limit = len(body)  # the one-byte probe of the gateway still works
        chunks = self._paced(body[:limit], blob.rate)
        if blob.gate is not None:
            chunks = self._gated(body[:limit], start, blob.gate)
        return Response(chunks, status=status, headers=headers,
                        direct_passthrough=True)(environ, start_response)

    @staticmethod
    def _paced(body: bytes, rate: float | None) -> Iterator[bytes]:
        step = 64 * 1024
        started = time.monotonic()
        for offset in range(0, len(body), step):
            if rate:
                delay = started + offset / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield body[offset:offset + step]

    @staticmethod
    def _gated(body: bytes, start: int, gate: Gate) -> Iterator[bytes]:
        """``body`` (the bytes from absolute offset ``start``), stopping at each hold of ``gate``."""
        step = 64 * 1024
        position = start
        end = start + len(body)
        while position < end:
            hold = gate.next_hold_after(position)
            stop = min(end, position + step) if hold is None or hold >= end else min(hold, position + step)
            if stop == position:  # at an unreleased hold
                gate.wait(position)
                continue
            yield body[position - start:stop - start]
            position = stop

    def __enter__(self) -> HttpSource:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()


#: the copy function counts progress in parts it has stored; S3's smallest part
#: size makes a few-seconds transfer show several steps
PROGRESS_PART_BYTES = 5 * 1024 * 1024


@contextlib.contextmanager
def stack_allowing(state_dir: Path, source: HttpSource, **kwargs: Any) -> Iterator[Any]:
    """A local stack whose copy function accepts ``source`` (the stack's default
    allow-list, ``http://127.0.0.1``, means port 80 to the copy function) and
    stores 5 MiB parts. Stopped on exit; events off unless asked."""
    from dynafed_client.stack import Stack, StackError

    kwargs.setdefault("with_events", False)
    env = {"DYNAFED_FN_HTTP_SOURCES": f"http://127.0.0.1,{source.url}",
           "DYNAFED_FN_COPY_PART_BYTES": str(PROGRESS_PART_BYTES)}
    try:
        st = Stack.up(state_dir, extra_env=env, **kwargs)
    except StackError as exc:
        pytest.fail(f"local stack failed to start:\n{exc}", pytrace=False)
    with st:
        yield st


@contextlib.contextmanager
def gateway_process(state_dir: Path, *args: str, env: Mapping[str, str] | None = None,
                    log: Path | None = None) -> Iterator[str]:
    """A gateway subprocess on a free loopback port for the stack in ``state_dir``; yields its URL."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DYNAFED_FN_", "K_"))}
    base.update(env or {})
    base["PYTHONUNBUFFERED"] = "1"
    log_path = log or (state_dir / f"test-gateway-{port}.log")
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "dynafed_client.gateway", "--port", str(port), "--state",
                                 str(state_dir), *args], stdout=log_file, stderr=subprocess.STDOUT, env=base,
                                cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"gateway exited {proc.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                requests.options(url + "/", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"gateway not answering:\n{log_path.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
