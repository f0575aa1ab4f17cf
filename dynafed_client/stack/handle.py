"""``Stack``: a handle on a local stack, usable as a context manager.

Used by the tests (tests/integration/stackfixture.py), the demo, bench and
load tests::

    with Stack.up(tmp_path) as st:
        st.s3_client("default").put_object(Bucket="demo", Key="k", Body=b"v")
        requests.post(st.url("checksum"), json={...})
"""
from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from . import processes
from . import state as _state
from .errors import StackError
from .s3 import client_for_store
from .stack import down, status, up
from .state import StackState


class Stack:
    """Handle on a local stack; a context manager that stops it on exit (if it started it)."""

    def __init__(self, state: StackState, *, owned: bool = True) -> None:
        self.state = state
        self.owned = owned

    @classmethod
    def up(cls, state_dir: Path | str, **kwargs: Any) -> Stack:
        """Start a stack (see :func:`up` for the keyword arguments)."""
        return cls(up(state_dir, **kwargs), owned=True)

    @classmethod
    def attach(cls, state_dir: Path | str | None = None) -> Stack:
        """Use a stack started elsewhere (``stack up``); leaving the context does not stop it."""
        root = Path(state_dir) if state_dir is not None else _state.default_state_dir()
        st = _state.load(root)
        if st is None:
            raise StackError(f"no local stack in {root.absolute()} (run: dynafed-fn stack up)")
        return cls(st, owned=False)

    @property
    def state_dir(self) -> Path:
        """The state directory."""
        return Path(self.state.state_dir)

    @property
    def functions(self) -> dict[str, str]:
        """function name -> base URL."""
        return self.state.functions

    def url(self, function: str) -> str:
        """Base URL of a running function; StackError says why if it is not running."""
        if function in self.functions:
            return self.functions[function]
        reason = self.skipped.get(function, "not requested at startup")
        raise StackError(f"function {function!r} is not running in this stack: {reason}")

    @property
    def stores(self) -> dict[str, dict[str, str]]:
        """store name -> store entry (with credentials)."""
        return self.state.stores

    @property
    def stores_file(self) -> Path:
        """The stores JSON file the functions read."""
        return Path(self.state.stores_file)

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint."""
        return self.state.s3["endpoint_url"]

    @property
    def buckets(self) -> list[str]:
        """Buckets created at startup."""
        return self.state.buckets

    @property
    def events(self) -> str | None:
        """Event receiver URL (the functions' K_SINK), if running."""
        return self.state.events

    @property
    def events_log(self) -> Path:
        """NDJSON file the event receiver appends to."""
        return self.state_dir / "events.ndjson"

    @property
    def sources(self) -> dict[str, str]:
        """event source name -> base URL (the filer source of checksum on upload)."""
        return self.state.sources

    @property
    def gateway(self) -> str | None:
        """Gateway URL, if running."""
        return self.state.gateway

    @property
    def skipped(self) -> dict[str, str]:
        """Components not started, with the reason."""
        return self.state.skipped

    def s3_client(self, store_name: str = "default", **config: Any) -> Any:
        """boto3 S3 client for a store (checksums only when required, path style)."""
        try:
            store = self.stores[store_name]
        except KeyError:
            raise StackError(f"unknown store {store_name!r} (have: {', '.join(self.stores)})") from None
        return client_for_store(store, **config)

    def status(self) -> dict[str, Any] | None:
        """See :func:`status`."""
        return status(self.state_dir)

    def down(self, *, timeout: float = processes.DEFAULT_STOP_TIMEOUT) -> dict[str, str]:
        """Stop the stack (idempotent)."""
        return down(self.state_dir, timeout=timeout)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.owned:
            self.down()
