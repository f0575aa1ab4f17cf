"""A function under gunicorn, exactly as its container runs it, on a free
loopback port — with the hooks fault tests need: SIGKILL the worker process
(the master starts a new one), read the log.

    with FunctionProcess("copy", stores_file=..., state_dir=tmp, env={...}) as fn:
        requests.post(fn.url, json=...)
        fn.kill_worker()            # SIGKILL mid-request; waits for the replacement
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from dynafed_client.stack import ports, processes, services


class FunctionProcess:
    def __init__(self, name: str, *, stores_file: Path | str, state_dir: Path, sink: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.state_dir = Path(state_dir)
        self.port = ports.free_port()
        self.log_path = self.state_dir / "logs" / f"{name}-{self.port}.log"
        self.env = services.function_env(name, port=self.port, stores_file=Path(stores_file), sink=sink,
                                          extra={"HOST": "127.0.0.1", **(env or {})})
        run_dir = self.state_dir / "run" / f"{name}-{self.port}"
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.env["XDG_RUNTIME_DIR"] = str(run_dir)  # gunicorn's control socket, per process
        self.argv = services.function_command(name)
        self.pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> FunctionProcess:
        proc = processes.spawn(self.argv, log_path=self.log_path, env=self.env, cwd=services.repo_root())
        self.pid = proc.pid
        try:
            processes.wait_until(self._ready, what=f"function {self.name}", timeout=timeout, pid=proc.pid,
                                 log_path=self.log_path)
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool | None:
        return True if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200 else None

    def worker_pids(self) -> list[int]:
        """PIDs of the gunicorn workers (children of the master)."""
        import psutil

        assert self.pid is not None
        return [child.pid for child in psutil.Process(self.pid).children()]

    def kill_worker(self, sig: signal.Signals = signal.SIGKILL, timeout: float = 30.0) -> int:
        """Signal the (single) worker; wait until a new worker serves; the old pid."""
        (victim,) = self.worker_pids()
        os.kill(victim, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if pids and victim not in pids:
                try:
                    if self._ready():
                        return victim
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"no new {self.name} worker after killing {victim}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.pid is not None:
            processes.stop_processes({self.name: (self.pid, self.argv)}, timeout=10)
            self.pid = None

    def __enter__(self) -> FunctionProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
