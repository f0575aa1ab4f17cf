"""A function under gunicorn exactly as its container CMD runs it
(``gunicorn -c functions/<name>/gunicorn.conf.py functions.<name>.wsgi:app``
from the repository root), with only the environment a test gives it: none
of the developer's ``DYNAFED_FN_*`` / ``K_*`` leaks in, and nothing the
local stack would add (tests/faults/processes.py's FunctionProcess is that
one). Bound to 127.0.0.1 on a free port, its own ``XDG_RUNTIME_DIR``."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ContainerCmd:
    """Started (and answering ``/healthz``) on construction; :meth:`stop` SIGTERMs it."""

    def __init__(self, function: str, tmp: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{function}-{self.port}.log"
        run_dir = tmp / f"run-{self.port}"
        run_dir.mkdir()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DYNAFED_FN_", "K_"))}
        self.env = {**base, "PYTHONUNBUFFERED": "1", "HOST": "127.0.0.1", "PORT": str(self.port),
                    "XDG_RUNTIME_DIR": str(run_dir), **env}
        self.argv = [str(Path(sys.executable).with_name("gunicorn")), "-c", f"functions/{function}/gunicorn.conf.py",
                     f"functions.{function}.wsgi:app"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        pytest.fail(f"gunicorn not ready (exit code {self.proc.poll()}):\n"
                    f"{self.log.read_text(errors='replace')[-3000:]}", pytrace=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
