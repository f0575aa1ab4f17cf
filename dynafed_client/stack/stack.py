"""up / down / status of the embedded local stack.

Layout of a state dir::

    state.json  stores.json  identities.json  events.ndjson
    seaweedfs/  (recreated on every up)
    logs/<component>.log  (kept across up/down)

Start order: SeaweedFS, event receiver, functions, filer source (checksum on
upload, when asked for), gateway; state.json is rewritten after every start so
that a failure midway (even a crash of the process running ``up``) can be torn
down with ``down``.
"""
from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import requests

from . import ports, processes, seaweedfs, services, uploads
from . import state as _state
from .errors import StackError, StackWarning
from .s3 import client_for_store
from .state import StackState
from .uploads import UploadChecksum

log = logging.getLogger(__name__)

FUNCTIONS: tuple[str, ...] = ("checksum", "copy")
# bucket -> store (identity) that creates it
BUCKETS: dict[str, str] = {"demo": "default", "demo-copy": "default", "archive": "archive"}
READY_TIMEOUT = 60.0
SEAWEEDFS = "seaweedfs"
EVENTS = "events"
GATEWAY = "gateway"


def _url(port: int) -> str:
    return f"http://{ports.LOOPBACK}:{port}"


def _skip(st: StackState, name: str, reason: str) -> None:
    st.skipped[name] = reason
    st.save()
    warnings.warn(f"local stack: not starting {name}: {reason}", StackWarning, stacklevel=3)


def _spawn(st: StackState, name: str, argv: list[str], *, env: Mapping[str, str] | None = None,
           cwd: Path | None = None) -> int:
    log_path = Path(st.state_dir) / "logs" / f"{name}.log"
    proc = processes.spawn(argv, log_path=log_path, env=env, cwd=cwd)
    st.pids[name] = proc.pid
    st.commands[name] = list(argv)
    st.logs[name] = str(log_path)
    st.save()
    return proc.pid


def _used_ports(st: StackState) -> set[int]:
    used = set(seaweedfs.SeaweedPorts(**st.seaweedfs["ports"]).all()) if st.seaweedfs else set()
    used.update(st.reserved_ports)
    for url in [*st.functions.values(), *st.sources.values(), st.events, st.gateway]:
        if url:
            used.add(int(url.rsplit(":", 1)[1]))
    return used


def _start_seaweedfs(st: StackState, timeout: float, upload: UploadChecksum | None = None) -> str | None:
    """Start SeaweedFS; with ``upload``, its filer's webhook points at the
    filer source's (reserved) port. Returns that webhook's bearer token."""
    root = Path(st.state_dir)
    data_dir = root / "seaweedfs"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    wports = seaweedfs.SeaweedPorts.pick(exclude=[upload.source_port] if upload and upload.source_port else [])
    endpoint = _url(wports.s3)
    stores = seaweedfs.generate_stores(endpoint)
    identities_file = root / "identities.json"
    stores_file = root / "stores.json"
    _state.write_json_private(identities_file, seaweedfs.identities_document(stores))
    _state.write_json_private(stores_file, {"stores": stores})
    st.s3 = {"endpoint_url": endpoint, "region": seaweedfs.REGION}
    st.stores_file = str(stores_file)
    st.stores = stores
    st.seaweedfs = {"ports": wports.to_dict(), "data_dir": str(data_dir),
                    "identities_file": str(identities_file)}
    config_dir = token = None
    if upload is not None:
        # the source starts after the functions; its port is fixed now
        # because the filer reads its webhook endpoint only at start-up
        source_port = upload.source_port or ports.free_port(exclude=set(wports.all()))
        st.reserved_ports.append(source_port)
        st.upload_watch = upload.watch
        token = uploads.new_token()
        config_dir = root / "seaweedfs-config"
        uploads.write_config_dir(config_dir, upload, upload.webhook_endpoint or f"{_url(source_port)}/", token)
    argv = seaweedfs.weed_command(seaweedfs.weed_binary(), data_dir, wports, identities_file, config_dir)
    pid = _spawn(st, SEAWEEDFS, argv)
    seaweedfs.wait_ready(stores, pid=pid, log_path=Path(st.logs[SEAWEEDFS]), timeout=timeout)
    clients = {name: client_for_store(stores[name]) for name in set(BUCKETS.values())}
    for bucket, owner in BUCKETS.items():
        processes.wait_until(partial(seaweedfs.create_bucket, clients[owner], bucket),
                             what=f"SeaweedFS bucket {bucket!r}", timeout=timeout, pid=pid,
                             log_path=Path(st.logs[SEAWEEDFS]), retry_on=seaweedfs.S3_ERRORS)
    st.buckets = list(BUCKETS)
    st.save()
    return token


def _any_http_response(url: str) -> bool:
    requests.get(url, timeout=2)
    return True


def _ready_200(url: str) -> bool | None:
    return True if requests.get(url, timeout=2).status_code == 200 else None


def _wait_http(st: StackState, name: str, what: str, check: Callable[[], bool | None], pid: int,
               timeout: float) -> None:
    processes.wait_until(check, what=what, timeout=timeout, pid=pid, log_path=Path(st.logs[name]),
                         retry_on=(requests.RequestException,))


def _start_client_server(st: StackState, name: str, module: str, what: str, command: Callable[[int], list[str]],
                         ready: Callable[[str], Callable[[], bool | None]], timeout: float) -> str | None:
    """The event receiver or the gateway (``python -m <module>``) on a free port,
    waited for until ``ready(url)`` says so; its URL, or None when skipped."""
    reason = services.module_missing(module)
    if reason:
        _skip(st, name, reason)
        return None
    port = ports.free_port(exclude=_used_ports(st))
    pid = _spawn(st, name, command(port), env=services.base_env(), cwd=services.repo_root())
    url = _url(port)
    _wait_http(st, name, what, ready(url), pid, timeout)
    return url


def _start_events(st: StackState, timeout: float) -> None:
    # a 200 comes from the app in gunicorn's worker, not from the arbiter that bound the port
    url = _start_client_server(st, EVENTS, services.EVENTS_MODULE, "event receiver",
                               lambda port: services.events_command(port, Path(st.state_dir) / "events.ndjson"),
                               lambda url: partial(_ready_200, f"{url}/healthz"), timeout)
    if url:
        st.events = url
        st.save()


def _start_functions(st: StackState, names: Iterable[str], extra_env: Mapping[str, str] | None,
                     timeout: float) -> None:
    root = services.repo_root()
    started: dict[str, tuple[int, str]] = {}
    for name in names:
        reason = services.function_missing(name, root)
        if reason:
            _skip(st, name, reason)
            continue
        port = ports.free_port(exclude=_used_ports(st) | {int(u.rsplit(":", 1)[1])
                                                         for _, u in started.values()})
        env = services.function_env(name, port=port, stores_file=Path(st.stores_file),
                                    sink=st.events, extra=extra_env)
        # gunicorn's control socket defaults to $XDG_RUNTIME_DIR/gunicorn.ctl
        # (else ~/.gunicorn/gunicorn.ctl), shared by every gunicorn of the user
        run_dir = _run_dir(st, name)
        if "XDG_RUNTIME_DIR" not in (extra_env or {}):
            env["XDG_RUNTIME_DIR"] = run_dir
        pid = _spawn(st, name, services.function_command(name, root), env=env, cwd=root)
        started[name] = (pid, _url(port))
    # start all, then wait: their imports overlap
    for name, (pid, url) in started.items():
        _wait_http(st, name, f"function {name}", partial(_ready_200, f"{url}/readyz"), pid, timeout)
        st.functions[name] = url
        st.save()


def _run_dir(st: StackState, name: str) -> str:
    """A gunicorn's own ``XDG_RUNTIME_DIR`` (private, in the state dir)."""
    run_dir = Path(st.state_dir) / "run" / name
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(run_dir)


def _start_source(st: StackState, upload: UploadChecksum, token: str, timeout: float) -> None:
    """The filer source on its reserved port, sending to the checksum function."""
    name = uploads.SOURCE
    checksum_url = st.functions.get("checksum")
    reason = services.function_missing(name) or (None if checksum_url else "the checksum function is not running")
    if reason or not checksum_url:
        _skip(st, name, reason or "the checksum function is not running")
        return
    port = st.reserved_ports[-1]
    env = services.function_env(name, port=port, stores_file=None, sink=checksum_url,
                                extra=uploads.source_settings(upload, checksum_url=checksum_url, token=token,
                                                              reply_sink=st.events))
    env["XDG_RUNTIME_DIR"] = _run_dir(st, name)
    pid = _spawn(st, name, services.function_command(name), env=env, cwd=services.repo_root())
    url = _url(port)
    _wait_http(st, name, "filer source", partial(_ready_200, f"{url}/readyz"), pid, timeout)
    # Ready means the filer will post to it: its log says the webhook queue is set up.
    processes.wait_until(partial(uploads.webhook_configured, Path(st.logs[SEAWEEDFS])),
                         what="SeaweedFS filer webhook", timeout=timeout, pid=st.pids[SEAWEEDFS],
                         log_path=Path(st.logs[SEAWEEDFS]))
    st.sources[name] = url
    st.save()


def _start_gateway(st: StackState, timeout: float) -> None:
    # any answer comes from the app in gunicorn's worker (the arbiter only binds the port)
    url = _start_client_server(st, GATEWAY, services.GATEWAY_MODULE, "gateway",
                               lambda port: services.gateway_command(port, Path(st.state_dir)),
                               lambda url: partial(_any_http_response, url), timeout)
    if url:
        st.gateway = url
        st.save()


def _stop(st: StackState, timeout: float) -> dict[str, str]:
    procs = {name: (pid, st.commands.get(name)) for name, pid in reversed(list(st.pids.items()))}
    # without a recorded command line nothing proves the pid is ours
    unchecked = {n for n, (_, argv) in procs.items() if not argv}
    outcome = {n: "skipped (no command line recorded)" for n in unchecked}
    outcome.update(processes.stop_processes(
        {n: p for n, p in procs.items() if n not in unchecked}, timeout=timeout,
        timeouts={SEAWEEDFS: min(timeout, seaweedfs.STOP_TIMEOUT)}))
    if st.seaweedfs and outcome.get(SEAWEEDFS) != "still running":
        seaweedfs.remove_sockets(seaweedfs.SeaweedPorts(**st.seaweedfs["ports"]))
    return outcome


def alive(st: StackState) -> dict[str, bool]:
    """name -> whether its pid is running the recorded command line."""
    return {name: processes.is_running(pid) and processes.matches(pid, st.commands.get(name) or [])
            for name, pid in st.pids.items()}


def up(state_dir: Path | str, *, functions: Iterable[str] = FUNCTIONS, with_events: bool = True,
       with_gateway: bool = True, extra_env: Mapping[str, str] | None = None,
       ready_timeout: float = READY_TIMEOUT,
       checksum_on_upload: UploadChecksum | str | None = None) -> StackState:
    """Start the local stack in ``state_dir`` and return its state.

    ``checksum_on_upload`` (an :class:`UploadChecksum` or its ``bucket/prefix``
    watch list, e.g. ``"demo/incoming/"``) wires SeaweedFS's filer webhook to
    the filer source, which asks the checksum function to compute and store
    ``x-amz-meta-adler32`` for every object written there (stack/uploads.py).

    Components whose code does not exist yet (a function's wsgi.py, the
    events or gateway module) are skipped with a StackWarning and listed in
    ``state.skipped``. ``extra_env`` is added to every function's
    environment. On any failure everything started so far is stopped and
    StackError is raised.
    """
    upload = UploadChecksum(checksum_on_upload) if isinstance(checksum_on_upload, str) else checksum_on_upload
    if upload is not None:
        upload.watches()  # refuse a bad watch list before starting anything
    root = Path(state_dir).absolute()
    existing = _state.load(root)
    if existing is not None:
        running = [name for name, ok in alive(existing).items() if ok]
        if running:
            raise StackError(f"a stack is already running in {root} ({', '.join(running)}); "
                             "stop it first (stack down)")
        _state.remove(root)
    root.mkdir(parents=True, exist_ok=True)
    st = StackState(state_dir=str(root))
    try:
        token = _start_seaweedfs(st, ready_timeout, upload)
        if with_events:
            _start_events(st, ready_timeout)
        _start_functions(st, functions, extra_env, ready_timeout)
        if upload is not None and token is not None:
            _start_source(st, upload, token, ready_timeout)
        if with_gateway:
            _start_gateway(st, ready_timeout)
    except BaseException as exc:
        outcome = _stop(st, processes.DEFAULT_STOP_TIMEOUT)
        if not any(v == "still running" for v in outcome.values()):
            _state.remove(root)
        if isinstance(exc, StackError):
            raise
        if isinstance(exc, Exception):
            raise StackError(f"local stack failed to start: {type(exc).__name__}: {exc}") from exc
        raise
    log.info("local stack up in %s", root)
    return st


def down(state_dir: Path | str, *, timeout: float = processes.DEFAULT_STOP_TIMEOUT) -> dict[str, str]:
    """Stop the processes recorded in ``state_dir``/state.json and remove it.

    Returns component -> outcome (``stopped``, ``killed``, ``not running``,
    ``skipped (...)``); empty if there is no state.json. Logs and data stay.
    Raises StackError (keeping state.json) if a process survives SIGKILL.
    """
    st = _state.load(state_dir)
    if st is None:
        return {}
    outcome = _stop(st, timeout)
    stuck = [name for name, what in outcome.items() if what == "still running"]
    if stuck:
        raise StackError(f"still running after SIGKILL: {', '.join(stuck)}; state.json kept")
    _state.remove(state_dir)
    return outcome


def status(state_dir: Path | str) -> dict[str, Any] | None:
    """state.json of ``state_dir`` plus ``alive`` (component -> bool), or None."""
    st = _state.load(state_dir)
    if st is None:
        return None
    data = st.to_dict()
    data["alive"] = alive(st)
    return data
