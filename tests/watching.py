"""Run a command and react to its stdout line by line while it runs (a hook's
or gfal2's ``monitor`` lines), as ``subprocess.run`` would otherwise collect
them at the end."""
from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence


def run_watching(argv: Sequence[str], env: Mapping[str, str], on_line: Callable[[str], None],
                 timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``argv`` run to its end, ``on_line`` called with each stdout line (no
    newline) as it is printed; stderr drained alongside. Killed after
    ``timeout`` seconds: a guard against a hang, not a measurement."""
    with subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=dict(env)) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        err_pipe = proc.stderr
        stderr: list[str] = []
        drain = threading.Thread(target=lambda: stderr.extend(err_pipe), daemon=True)
        drain.start()
        lines: list[str] = []
        guard = threading.Timer(timeout, proc.kill)
        guard.start()
        try:
            for line in proc.stdout:
                lines.append(line)
                on_line(line.rstrip("\n"))
            returncode = proc.wait()
        finally:
            guard.cancel()
        drain.join(timeout=30)
    return subprocess.CompletedProcess(proc.args, returncode, "".join(lines), "".join(stderr))
