"""``state.json`` of the local stack (format: docs/internals.md): its one
model and its one reader, for the stack that writes it and every reader
(client configuration, gateway, hooks, legacy backend).

Besides the documented keys the file carries additive ones:
``commands`` (argv of each pid, checked before signalling), ``seaweedfs``
(ports, data dir, identities file), ``skipped`` (components not started,
with the reason), ``sources`` and ``upload_watch`` (checksum on upload: the
filer source's URL and what it watches) and ``reserved_ports``.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dynafed_client.errors import ConfigError

STATE_FILE = "state.json"
STATE_DIR_ENV = "DYNAFED_FN_STATE_DIR"


def default_state_dir() -> Path:
    """``$DYNAFED_FN_STATE_DIR`` or ``./.stack`` (absolute)."""
    return Path(os.environ.get(STATE_DIR_ENV) or ".stack").absolute()


def state_path(state_dir: str | os.PathLike[str]) -> Path:
    """Path of state.json inside ``state_dir``."""
    return Path(state_dir).absolute() / STATE_FILE


@dataclass
class StackState:
    """Everything a client needs to use (and stop) a running local stack."""

    state_dir: str
    s3: dict[str, str] = field(default_factory=dict)
    stores_file: str = ""
    stores: dict[str, dict[str, str]] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)
    functions: dict[str, str] = field(default_factory=dict)
    events: str | None = None
    gateway: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    seaweedfs: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    #: event sources (the filer source of checksum on upload) -> base URL
    sources: dict[str, str] = field(default_factory=dict)
    #: checksum on upload: the watched ``bucket/prefix`` list ("" when off)
    upload_watch: str = ""
    #: ports picked before their process starts (kept out of later picks)
    reserved_ports: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping written to state.json."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, origin: str = STATE_FILE) -> StackState:
        """Build from a state.json mapping; unknown keys are ignored, a known
        key of the wrong JSON type is a StateFileError naming it."""
        if not isinstance(data, dict):
            raise StateFileError(f"{origin} is not a stack state file (not a JSON object)")
        if not isinstance(data.get("state_dir"), str):
            raise StateFileError(f"{origin} is not a stack state file (no 'state_dir')")
        known = {f.name for f in fields(cls)}
        for key, value in data.items():
            expected = _JSON_TYPES.get(key)
            if expected is not None and not isinstance(value, expected):
                raise StateFileError(f"{origin}: '{key}' has the wrong type ({type(value).__name__})")
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def path(self) -> Path:
        """Path of this state's state.json."""
        return state_path(self.state_dir)

    def save(self) -> None:
        """Write state.json atomically, readable by the owner only (it holds keys)."""
        target = self.path
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".json", dir=target.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.to_dict(), fh, indent=2)
                fh.write("\n")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


#: the JSON type of each key (None allowed where the field is optional)
_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "state_dir": str, "s3": dict, "stores_file": str, "stores": dict, "buckets": list, "functions": dict,
    "events": (str, type(None)), "gateway": (str, type(None)), "pids": dict, "logs": dict, "commands": dict,
    "seaweedfs": dict, "skipped": dict, "sources": dict, "upload_watch": str, "reserved_ports": list,
}


class StateFileError(ConfigError):
    """state.json exists but cannot be read or is not a stack state file."""


def load(state_dir: str | os.PathLike[str]) -> StackState | None:
    """The state in ``state_dir``, or None if there is no state.json;
    StateFileError if it is unreadable or malformed."""
    path = state_path(state_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateFileError(f"cannot read {path}: {exc}") from None
    if isinstance(data, dict):
        data.setdefault("state_dir", str(Path(state_dir).absolute()))
    return StackState.from_dict(data, origin=str(path))


def require(state_dir: str | os.PathLike[str] | None = None) -> StackState:
    """The state in ``state_dir`` (default: :func:`default_state_dir`);
    ConfigError naming the directory if no stack runs there."""
    root = Path(state_dir) if state_dir is not None else default_state_dir()
    state = load(root)
    if state is None:
        raise ConfigError(f"no local stack state in {root.absolute()} (run: dynafed-fn stack up)")
    return state


def remove(state_dir: Path | str) -> None:
    """Delete state.json (logs and data are kept)."""
    state_path(state_dir).unlink(missing_ok=True)


def write_json_private(path: Path, data: Any) -> None:
    """Write JSON readable by the owner only (credentials files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.chmod(path, 0o600)
