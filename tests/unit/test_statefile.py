"""state.json's one model and reader (dynafed_client/statefile.py), as every
reader sees it: the client configuration, the gateway, the hooks."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynafed_client import statefile
from dynafed_client.config import ClientConfig
from dynafed_client.errors import ConfigError
from dynafed_client.gateway.config import read_state
from dynafed_client.hooks.settings import HookSettings


def test_round_trip_through_save_and_load(tmp_path: Path) -> None:
    state = statefile.StackState(state_dir=str(tmp_path), stores_file="/s.json", gateway="http://127.0.0.1:9",
                                 functions={"checksum": "http://127.0.0.1:1"})
    state.save()
    assert statefile.load(tmp_path) == state
    assert state.path.stat().st_mode & 0o077 == 0  # it holds keys


def test_absent_is_none_and_require_says_how_to_start(tmp_path: Path) -> None:
    assert statefile.load(tmp_path) is None
    with pytest.raises(ConfigError, match="stack up"):
        statefile.require(tmp_path)


@pytest.mark.parametrize("content,match", [
    ("{not json", "cannot read"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"functions": ["http://127.0.0.1:1"]}), "'functions' has the wrong type"),
    (json.dumps({"gateway": 5}), "'gateway' has the wrong type"),
])
def test_malformed_is_one_clear_error_for_every_reader(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "state.json").write_text(content)
    with pytest.raises(statefile.StateFileError, match=match):
        statefile.load(tmp_path)
    with pytest.raises(ConfigError, match=match):
        ClientConfig.from_stack(tmp_path)
    with pytest.raises(ConfigError, match=match):
        read_state(tmp_path)
    with pytest.raises(ConfigError, match=match):
        HookSettings.from_env({"DYNAFED_FN_STATE_DIR": str(tmp_path)})


def test_state_dir_defaults_to_where_it_was_read(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({"gateway": "http://127.0.0.1:9", "extra": 1}))
    state = statefile.require(tmp_path)
    assert state.state_dir == str(tmp_path.absolute()) and state.gateway == "http://127.0.0.1:9"
    mapping = HookSettings.from_env({"DYNAFED_FN_STATE_DIR": str(tmp_path)}).mapping
    assert mapping.resolve("http://127.0.0.1:9/default/b/k") is not None
