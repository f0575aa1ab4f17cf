"""ClientConfig from the environment and from the local stack's state.json."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynafed_client import Client, ClientConfig, ConfigError, FunctionEndpoint
from dynafed_client.refs import display, parse_object_ref, parse_source
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import UrlSource


def write_state(root: Path, **extra: object) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    state = {"state_dir": str(root), "s3": {"endpoint_url": "http://127.0.0.1:1"},
             "functions": {"checksum": "http://127.0.0.1:1001", "copy": "http://127.0.0.1:1002/"},
             "events": "http://127.0.0.1:1003", "gateway": "http://127.0.0.1:1004", **extra}
    (root / "state.json").write_text(json.dumps(state))
    return root


def test_from_env() -> None:
    env = {"DYNAFED_FN_CHECKSUM_URL": "https://10.0.0.5", "DYNAFED_FN_HOST_CHECKSUM": "checksum.fn.example.org",
           "DYNAFED_FN_COPY_URL": "http://copy.local:8080/", "DYNAFED_FN_TOKEN": "t",
           "DYNAFED_FN_EVENTS_URL": "http://127.0.0.1:5", "DYNAFED_FN_STORES_FILE": "/x",
           "DYNAFED_FN_READ_TIMEOUT": "12.5", "DYNAFED_FN_RETRIES": "2", "DYNAFED_FN_CONCURRENCY": "16"}
    config = ClientConfig.from_env(env)
    assert config.functions == {"checksum": FunctionEndpoint("https://10.0.0.5", "checksum.fn.example.org"),
                                "copy": FunctionEndpoint("http://copy.local:8080")}
    assert config.token == "t" and config.events_url == "http://127.0.0.1:5"
    assert config.read_timeout == 12.5 and config.retry.attempts == 2 and config.concurrency == 16


@pytest.mark.parametrize("env,match", [
    ({"DYNAFED_FN_CHECKSUM_URL": "ftp://x"}, "DYNAFED_FN_CHECKSUM_URL"),
    ({"DYNAFED_FN_READ_TIMEOUT": "soon"}, "DYNAFED_FN_READ_TIMEOUT"),
    ({"DYNAFED_FN_CONCURRENCY": "0"}, "concurrency"),
])
def test_from_env_errors_name_the_problem(env: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ClientConfig.from_env(env)


def test_from_stack(tmp_path: Path) -> None:
    root = write_state(tmp_path / ".stack")
    config = ClientConfig.from_stack(root)
    assert config.endpoint("copy").url == "http://127.0.0.1:1002"
    assert config.events_url == "http://127.0.0.1:1003"
    client = Client.from_stack(root)
    assert client.config.endpoint("checksum").url == "http://127.0.0.1:1001"


def test_from_stack_uses_state_dir_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_state(tmp_path / "elsewhere")
    monkeypatch.setenv("DYNAFED_FN_STATE_DIR", str(root))
    assert ClientConfig.from_stack().endpoint("checksum").url == "http://127.0.0.1:1001"


def test_from_stack_missing_or_broken(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stack up"):
        ClientConfig.from_stack(tmp_path)
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        ClientConfig.from_stack(tmp_path)


def test_discover_env_wins_over_stack(tmp_path: Path) -> None:
    root = write_state(tmp_path)
    config = ClientConfig.discover({"DYNAFED_FN_CHECKSUM_URL": "http://127.0.0.1:2001"}, root)
    assert config.endpoint("checksum").url == "http://127.0.0.1:2001"
    assert config.endpoint("copy").url == "http://127.0.0.1:1002"


def test_discover_without_stack_is_env_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DYNAFED_FN_STATE_DIR", raising=False)
    assert ClientConfig.discover({}).functions == {}


def test_config_is_frozen() -> None:
    config = ClientConfig()
    with pytest.raises(AttributeError):
        config.token = "x"  # type: ignore[misc]


@pytest.mark.parametrize("text,ref", [
    ("demo/a/b c", ObjectRef("default", "demo", "a/b c")),
    ("archive:arch/k:with:colons", ObjectRef("archive", "arch", "k:with:colons")),
    ("demo/x:y/z", ObjectRef("default", "demo", "x:y/z")),
])
def test_parse_object_ref(text: str, ref: ObjectRef) -> None:
    assert parse_object_ref(text) == ref


def test_parse_source_url_and_display() -> None:
    src = parse_source("https://h.example/b/k?X-Amz-Signature=secret")
    assert src == UrlSource("https://h.example/b/k?X-Amz-Signature=secret")
    assert "secret" not in display(src)
    assert display(ObjectRef("archive", "b", "k")) == "archive:b/k"
    assert parse_object_ref("b/k", default_store="archive").store == "archive"
