"""Process-level faults: a function under real gunicorn (as its container CMD
runs it) whose workers can be SIGKILLed and whose master can be SIGTERMed
mid-request, /proc probes for memory and file descriptors, and a CloudEvents
sink that can be slow, failing or dead.

::

    with FunctionProcess("checksum", stores_file, tmp_path, env={"THREADS": "2"}) as fn:
        requests.post(fn.url, json=...)
        fn.kill_worker()                  # SIGKILL the (first) worker; gunicorn forks a new one
        fn.terminate()                    # SIGTERM the master: graceful drain
        fn.wait_exit(timeout=30)

Everything binds 127.0.0.1 only; every process is stopped on exit.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from dynafed_client.stack import ports, processes, services

__all__ = ["EventSink", "FunctionProcess", "children", "fd_count", "rss_kb", "write_stores"]


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<n>/stat)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the comm field may contain spaces and parentheses: split after the last ')'
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return sorted(out)


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    """Open file descriptors of ``pid`` (0 if gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def write_stores(path: Path, stores: Mapping[str, Mapping[str, Any]], endpoint_url: str | None = None) -> Path:
    """A stores file like the stack's, optionally with every endpoint replaced
    (e.g. by a FaultProxy's URL)."""
    doc = {"stores": {name: {**dict(store), **({"endpoint_url": endpoint_url} if endpoint_url else {})}
                      for name, store in stores.items()}}
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return path


class FunctionProcess:
    """One function under gunicorn on a free loopback port."""

    def __init__(self, name: str, stores_file: Path, workdir: Path, *, env: Mapping[str, str] | None = None,
                 sink: str | None = None, ready_timeout: float = 60.0, port: int | None = None) -> None:
        self.name = name
        self.port = port or ports.free_port()  # a given port: a restart where clients expect it
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}-{self.port}.log"
        run_dir = workdir / f"run-{self.port}"
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.env = services.function_env(name, port=self.port, stores_file=stores_file, sink=sink,
                                         extra={"XDG_RUNTIME_DIR": str(run_dir), **(env or {})})
        self.argv = services.function_command(name)
        self.ready_timeout = ready_timeout
        self.proc: Any = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> FunctionProcess:
        self.proc = processes.spawn(self.argv, log_path=self.log_path, env=self.env, cwd=services.repo_root())
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        def ready() -> bool | None:
            return True if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200 else None

        processes.wait_until(ready, what=f"function {self.name}", timeout=timeout or self.ready_timeout,
                             pid=self.master_pid, log_path=self.log_path, retry_on=(requests.RequestException,))

    def stop(self, timeout: float = 10.0) -> str:
        if self.proc is None:
            return "not started"
        outcome = processes.stop_processes({self.name: (self.proc.pid, None)}, timeout=timeout)[self.name]
        return outcome

    def __enter__(self) -> FunctionProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------------

    @property
    def master_pid(self) -> int:
        assert self.proc is not None
        return int(self.proc.pid)

    def worker_pids(self) -> list[int]:
        return children(self.master_pid)

    def wait_workers(self, count: int = 1, timeout: float = 30.0, exclude: tuple[int, ...] = ()) -> list[int]:
        """Wait until ``count`` workers (not in ``exclude``) run and answer /healthz."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workers = [p for p in self.worker_pids() if p not in exclude]
            if len(workers) >= count:
                try:
                    if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return workers
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name}: {count} worker(s) not up within {timeout}s\n"
                           + processes.log_tail(self.log_path))

    def kill_worker(self, sig: signal.Signals = signal.SIGKILL) -> int:
        """Send ``sig`` to the first worker; returns its pid."""
        workers = self.worker_pids()
        if not workers:
            raise RuntimeError(f"{self.name}: no worker to kill")
        os.kill(workers[0], sig)
        return workers[0]

    def kill(self) -> None:
        """SIGKILL master and workers at once (a node lost, an OOM kill): no drain, no cleanup."""
        try:
            os.killpg(self.master_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait_exit(10)

    def terminate(self) -> None:
        """SIGTERM the master (what Knative does on scale-down): graceful drain."""
        os.kill(self.master_pid, signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int | None:
        """The master's exit code, or None if it is still running after ``timeout``."""
        assert self.proc is not None
        try:
            return int(self.proc.wait(timeout=timeout))
        except Exception:
            return None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines of the function (gunicorn's own lines skipped)."""
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    # -- resources --------------------------------------------------------------------

    def rss_kb(self) -> dict[int, int]:
        return {pid: rss_kb(pid) for pid in [self.master_pid, *self.worker_pids()]}

    def fd_count(self) -> dict[int, int]:
        return {pid: fd_count(pid) for pid in [self.master_pid, *self.worker_pids()]}


class _SinkHandler(BaseHTTPRequestHandler):
    server: _SinkServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        sink = self.server.sink
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with sink.lock:
            sink.attempts += 1
        if sink.delay_s:
            time.sleep(sink.delay_s)
        status = sink.status
        if 200 <= status < 300:
            event = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("ce-")}
            event["data"] = body.decode("utf-8", "replace")
            with sink.lock:
                sink.events.append(event)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    sink: EventSink


class EventSink:
    """A CloudEvents sink (binary mode) on loopback that records what it
    accepts. ``status`` (e.g. 500) and ``delay_s`` model a failing or slow
    sink; ``kill()`` closes its port (connection refused from then on)."""

    def __init__(self, *, status: int = 202, delay_s: float = 0.0) -> None:
        self.status = status
        self.delay_s = delay_s
        self.events: list[dict[str, str]] = []
        self.attempts = 0
        self.lock = threading.Lock()
        self._server = _SinkServer(("127.0.0.1", 0), _SinkHandler)
        self._server.sink = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()
        self.alive = True

    def kill(self) -> None:
        if self.alive:
            self.alive = False
            self._server.shutdown()
            self._server.server_close()

    def types(self) -> list[str]:
        with self.lock:
            return [e.get("ce-type", "") for e in self.events]

    def __enter__(self) -> EventSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
