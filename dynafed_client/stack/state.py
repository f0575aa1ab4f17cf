"""The stack's view of ``state.json``: the one model and reader live in
:mod:`dynafed_client.statefile` (the client library reads it too, without
importing the stack)."""
from __future__ import annotations

from dynafed_client.statefile import (
    STATE_DIR_ENV,
    STATE_FILE,
    StackState,
    StateFileError,
    default_state_dir,
    load,
    remove,
    require,
    state_path,
    write_json_private,
)

__all__ = ["STATE_DIR_ENV", "STATE_FILE", "StackState", "StateFileError", "default_state_dir", "load", "remove",
           "require", "state_path", "write_json_private"]
