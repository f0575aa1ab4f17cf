"""Spawn and stop process groups; poll for readiness.

Every process gets its own session (so its group id is its pid) and its
stdout/stderr go to a log file. Stopping checks ``/proc/<pid>/cmdline``
against the argv it was started with before any signal is sent, sends
SIGTERM to the group, waits a bounded time, then SIGKILLs the group.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from .errors import StackError

T = TypeVar("T")

DEFAULT_STOP_TIMEOUT = 10.0
# first characters of the line spawn() writes to a log before each start
START_MARKER = "\n--- "

# Popen objects of the children started by this process, so they can be
# reaped (no zombies, no "still running" ResourceWarning).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def last_run(log_path: Path) -> str | None:
    """What ``log_path`` holds since its latest :func:`spawn` (from the start
    line; all of it when it has none), or None when it cannot be read."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return None
    return text[max(text.rfind(START_MARKER), 0):]


def spawn(argv: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None,
          cwd: Path | str | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session with stdout+stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"{START_MARKER}{time.strftime('%Y-%m-%dT%H:%M:%S')} starting: "
                  f"{' '.join(argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True)
        except OSError as exc:
            raise StackError(f"cannot start {argv[0]}: {exc}") from exc
    _CHILDREN[proc.pid] = proc
    return proc


def read_cmdline(pid: int) -> list[str] | None:
    """The argv of ``pid`` from /proc, or None if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None  # zombie or kernel thread
    return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]


def _reap(pid: int) -> None:
    proc = _CHILDREN.get(pid)
    if proc is not None:
        proc.poll()  # reaps; the Popen keeps the exit code for exit_code()
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_running(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (our zombies are reaped)."""
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # state is the first field after the parenthesised command name
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def exit_code(pid: int) -> int | None:
    """Exit status of a child started here, if it has exited (else None)."""
    proc = _CHILDREN.get(pid)
    return proc.poll() if proc is not None else None


def matches(pid: int, argv: Sequence[str]) -> bool:
    """True if the live process ``pid`` is running ``argv``.

    A script started through its shebang shows up as
    ``[interpreter, script, *args]``, so the interpreter prefix is allowed.
    """
    actual = read_cmdline(pid)
    if not actual or not argv:
        return False
    args = list(argv[1:])
    if args and actual[-len(args):] != args:
        return False
    head = actual[: len(actual) - len(args)]
    program = argv[0]
    return any(part == program or os.path.basename(part) == os.path.basename(program)
               for part in head)


def _group_signal(pid: int, sig: signal.Signals) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_stragglers(pgid: int) -> None:
    """SIGKILL what is left of a group whose leader has exited."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop_processes(procs: Mapping[str, tuple[int, Sequence[str] | None]], *,
                   timeout: float = DEFAULT_STOP_TIMEOUT,
                   timeouts: Mapping[str, float] | None = None) -> dict[str, str]:
    """Stop several process groups concurrently.

    ``procs`` maps a name to ``(pid, argv)``; a pid whose command line does
    not match ``argv`` is left alone (``argv=None`` skips the check, only
    for children started by this very process). All groups get SIGTERM at
    once; each gets ``timeouts[name]`` (default ``timeout``) seconds before
    SIGKILL. Returns name -> outcome: ``stopped``, ``killed``,
    ``not running``, ``skipped (...)`` or ``still running``.
    """
    outcome: dict[str, str] = {}
    pending: dict[str, tuple[int, float]] = {}
    start = time.monotonic()
    for name, (pid, argv) in procs.items():
        if not is_running(pid):
            outcome[name] = "not running"
            continue
        if argv is not None and not matches(pid, argv):
            outcome[name] = f"skipped (pid {pid} runs {read_cmdline(pid)!r}, not ours)"
            continue
        _group_signal(pid, signal.SIGTERM)
        wait = (timeouts or {}).get(name, timeout)
        pending[name] = (pid, start + wait)
    killed: dict[str, float] = {}
    while pending:
        now = time.monotonic()
        for name, (pid, deadline) in list(pending.items()):
            if not is_running(pid):
                _kill_stragglers(pid)
                outcome[name] = "killed" if name in killed else "stopped"
                del pending[name]
            elif name not in killed and now >= deadline:
                _group_signal(pid, signal.SIGKILL)
                killed[name] = now
            elif name in killed and now - killed[name] > 5.0:
                outcome[name] = "still running"
                del pending[name]
        if pending:
            time.sleep(0.05)
    return {name: outcome[name] for name in procs}


def log_tail(path: Path | str | None, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file (empty string if unreadable)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def wait_until(check: Callable[[], T | None], *, what: str, timeout: float, pid: int | None = None,
               log_path: Path | None = None, interval: float = 0.2,
               retry_on: tuple[type[BaseException], ...] = (OSError,)) -> T:
    """Call ``check`` until it returns a non-None value; return that value.

    ``check`` may raise one of ``retry_on`` to mean "not yet" (the last one
    is reported); other exceptions propagate at once.
    Fails early if ``pid`` exits. Raises StackError with the log tail of
    ``log_path`` on timeout or exit.
    """
    deadline = time.monotonic() + timeout
    last: str = "no attempt"
    while True:
        try:
            result = check()
        except retry_on as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if result is not None:
                return result
            last = "not ready"
        if pid is not None and not is_running(pid):
            code = exit_code(pid)
            status = f"exited with code {code}" if code is not None else "exited"
            raise StackError(_with_log(f"{what} {status} before becoming ready (last check: {last})",
                                       log_path))
        if time.monotonic() >= deadline:
            raise StackError(_with_log(f"{what} not ready after {timeout:.0f} s (last check: {last})",
                                       log_path))
        time.sleep(interval)


def _with_log(message: str, log_path: Path | None) -> str:
    tail = log_tail(log_path)
    if not tail:
        return message
    return f"{message}\n--- last lines of {log_path} ---\n{tail}"
