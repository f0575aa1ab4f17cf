"""What the stack runs besides SeaweedFS: functions, event receiver, gateway.

Functions run exactly as their container CMD
(``gunicorn -c functions/<name>/gunicorn.conf.py functions.<name>.wsgi:app``)
from the directory holding ``functions/``: the repository root in a
checkout, the site-packages of ``dynafed-functions`` when installed (the
client's ``stack`` extra brings it).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from .errors import StackError

EVENTS_MODULE = "dynafed_client.events"
GATEWAY_MODULE = "dynafed_client.gateway"
# inherited variables with these prefixes are dropped so a developer's
# shell (e.g. DYNAFED_FN_AUTH_TOKEN, K_SINK) cannot leak into the stack
_DROPPED_PREFIXES = ("DYNAFED_FN_", "K_")


#: what installs the server side the stack runs
STACK_EXTRA = "dynafed-client[stack]"


def repo_root() -> Path:
    """The directory holding ``functions/`` (the repository root in a checkout).

    Raises :class:`StackError` naming the extra when the server side is not installed.
    """
    try:
        spec = importlib.util.find_spec("functions")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise StackError(f"the local stack runs the functions, which are not installed: pip install '{STACK_EXTRA}'")
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


def function_missing(name: str, root: Path | None = None) -> str | None:
    """Why function ``name`` cannot be started, or None if its wsgi.py exists."""
    base = (root or repo_root()) / "functions" / name
    if not (base / "wsgi.py").is_file():
        return f"functions/{name}/wsgi.py does not exist"
    return None


def module_missing(module: str) -> str | None:
    """Why ``python -m module`` cannot run, or None if it can (module, or package with __main__)."""
    try:
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations is not None:
            if importlib.util.find_spec(f"{module}.__main__") is None:
                return f"package {module} has no __main__ module"
    except (ImportError, ValueError):
        spec = None
    return None if spec is not None else f"module {module} not found"


def gunicorn_binary() -> str:
    """The gunicorn next to the running interpreter (the venv), else on PATH."""
    found = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    if not found:
        raise StackError(f"gunicorn not found next to the interpreter nor on PATH: pip install '{STACK_EXTRA}'")
    return found


def function_command(name: str, root: Path | None = None) -> list[str]:
    """The container CMD of function ``name``."""
    conf = Path("functions") / name / "gunicorn.conf.py"
    if not ((root or repo_root()) / conf).is_file():
        raise StackError(f"{conf} does not exist (functions/{name}/wsgi.py does)")
    return [gunicorn_binary(), "-c", str(conf), f"functions.{name}.wsgi:app"]


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent environment without DYNAFED_FN_*/K_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def function_env(name: str, *, port: int, stores_file: Path | None, sink: str | None,
                 extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of function ``name`` as Knative + the stack would set it
    (``stores_file`` None: a deployable that never touches S3 gets no credentials)."""
    env = base_env()
    env.update({
        "PORT": str(port),
        # Loopback only: the container binds 0.0.0.0, a developer machine must not.
        "HOST": "127.0.0.1",
        "K_SERVICE": name,
        "K_REVISION": f"{name}-local",
        "K_CONFIGURATION": name,
        "DYNAFED_FN_HTTP_SOURCES": "http://127.0.0.1",
        "DYNAFED_FN_HTTP_DESTINATIONS": "http://127.0.0.1",
        "DYNAFED_FN_ALLOW_PRIVATE_SOURCES": "1",
    })
    if name == "copy":
        # as its image sets it (functions/copy/Dockerfile): fewer glibc arenas keep less freed memory
        env["MALLOC_ARENA_MAX"] = "2"
    if stores_file is not None:
        env["DYNAFED_FN_STORES_FILE"] = str(stores_file)
    if sink:
        env["K_SINK"] = sink
    env.update(extra or {})
    return env


def events_command(port: int, log_file: Path) -> list[str]:
    """argv of the CloudEvents receiver."""
    return [sys.executable, "-m", EVENTS_MODULE, "serve", "--port", str(port), "--log", str(log_file)]


def gateway_command(port: int, state_dir: Path) -> list[str]:
    """argv of the gateway."""
    return [sys.executable, "-m", GATEWAY_MODULE, "--port", str(port), "--state", str(state_dir)]
