"""Embedded local stack: SeaweedFS + functions (+ event receiver, gateway) on loopback.

Public API::

    up(state_dir, *, functions=("checksum", "copy"), with_events=True,
       with_gateway=True, extra_env=None, ready_timeout=60.0,
       checksum_on_upload=None) -> StackState   # e.g. "demo/incoming/" (stack/uploads.py)
    down(state_dir, *, timeout=10.0) -> dict[str, str]
    status(state_dir) -> dict | None
    Stack.up(state_dir, **kw) / Stack.attach(state_dir=None)   # context manager
    StackError, StackWarning, StackState
"""
from __future__ import annotations

from .errors import StackError, StackWarning
from .handle import Stack
from .stack import down, status, up
from .state import StackState, default_state_dir
from .uploads import UploadChecksum

__all__ = ["Stack", "StackError", "StackState", "StackWarning", "UploadChecksum", "default_state_dir", "down",
           "status", "up"]
