"""Config.from_env and the stores document: good input parses, each bad
variable gives a ConfigError that names it (and never echoes a secret)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynafed_runtime.config import Config, ConfigError
from dynafed_runtime.errors import UnknownStore
from dynafed_runtime.stores import Store, parse_stores

CANARY_SECRET = "CANARY-secret-9f2c1b7e"
STORE = {"endpoint_url": "http://127.0.0.1:8333", "region": "us-east-1", "access_key_id": "AKCANARY",
         "secret_access_key": CANARY_SECRET, "addressing_style": "path"}
STORES = json.dumps({"stores": {"default": STORE, "archive": {**STORE, "access_key_id": "AK2"}}})


def env(**overrides: str) -> dict[str, str]:
    base = {"DYNAFED_FN_STORES": STORES}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_defaults() -> None:
    config = Config.from_env(env(), function="checksum")
    assert config.service == "checksum" and config.configuration == "checksum"
    assert config.revision == "checksum-local"
    assert set(config.stores) == {"default", "archive"}
    assert config.stores["default"] == Store(name="default", **STORE)
    assert config.http_sources == () and config.allow_private_sources is False
    assert config.auth_token is None and config.sink is None and config.ce_extensions == {}
    assert config.log_level == "INFO" and config.max_inflight == 8
    assert config.s3_pool_size == 32 and config.s3_max_attempts == 5
    assert config.extra == {}


def test_everything_set() -> None:
    config = Config.from_env(env(
        K_SERVICE="checksum-svc", K_REVISION="checksum-svc-00042", K_CONFIGURATION="checksum-cfg",
        DYNAFED_FN_HTTP_SOURCES=" https://a.example/data/ , http://127.0.0.1:9000/ ,",
        DYNAFED_FN_ALLOW_PRIVATE_SOURCES="yes", DYNAFED_FN_AUTH_TOKEN="tok",
        K_SINK="http://broker-ingress.knative-eventing.svc/ns/default",
        K_CE_OVERRIDES='{"extensions": {"cluster": "lhc", "tier0": 1}}',
        DYNAFED_FN_LOG_LEVEL="debug", THREADS="3", DYNAFED_FN_S3_POOL_SIZE="64",
        DYNAFED_FN_S3_MAX_ATTEMPTS="2", DYNAFED_FN_CHECKSUM_CHUNK_BYTES="1048576",
        DYNAFED_FN_COPY_PART_BYTES="1",  # another function's setting: not ours
    ), function="checksum")
    assert (config.service, config.revision, config.configuration) == (
        "checksum-svc", "checksum-svc-00042", "checksum-cfg")
    assert config.http_sources == ("https://a.example/data/", "http://127.0.0.1:9000/")
    assert config.allow_private_sources is True and config.auth_token == "tok"
    assert config.sink == "http://broker-ingress.knative-eventing.svc/ns/default"
    assert config.ce_extensions == {"cluster": "lhc", "tier0": "1"}
    assert config.log_level == "DEBUG"
    assert config.max_inflight == 3  # follows THREADS unless set
    assert (config.s3_pool_size, config.s3_max_attempts) == (64, 2)
    assert config.extra == {"CHUNK_BYTES": "1048576"}
    assert config.setting("chunk_bytes", 8.0) == 1048576.0
    assert config.setting("missing", 2.5) == 2.5


def test_stores_file_is_preferred_over_inline(tmp_path: Path) -> None:
    path = tmp_path / "stores.json"
    path.write_text(json.dumps({"stores": {"filestore": STORE}}))
    config = Config.from_env(env(DYNAFED_FN_STORES_FILE=str(path)), function="copy")
    assert list(config.stores) == ["filestore"]


def test_unknown_store_lookup() -> None:
    config = Config.from_env(env(), function="checksum")
    assert config.store("archive").access_key_id == "AK2"
    with pytest.raises(UnknownStore):
        config.store("nope")


def test_secrets_are_not_in_reprs() -> None:
    config = Config.from_env(env(DYNAFED_FN_AUTH_TOKEN="CANARY-token-55"), function="checksum")
    text = repr(config) + str(config) + repr(config.stores) + repr(config.stores["default"])
    assert CANARY_SECRET not in text and "CANARY-token-55" not in text
    assert CANARY_SECRET not in json.dumps(config.stores["default"].public())


def test_same_backend() -> None:
    stores = parse_stores(STORES)
    assert stores["default"].same_backend(Store(name="x", **STORE))
    assert not stores["default"].same_backend(stores["archive"])


BAD_STORES = [
    ("not json", "{"),
    ("not an object", "[]"),
    ("no stores key", '{"store": {}}'),
    ("stores not an object", '{"stores": []}'),
    ("empty", '{"stores": {}}'),
    ("store not an object", '{"stores": {"default": "http://x"}}'),
    ("unknown field", json.dumps({"stores": {"default": {**STORE, "endpoint": "http://x"}}})),
    ("bad addressing", json.dumps({"stores": {"default": {**STORE, "addressing_style": "vhost"}}})),
    ("bad endpoint scheme", json.dumps({"stores": {"default": {**STORE, "endpoint_url": "ftp://x"}}})),
    ("key without secret", json.dumps({"stores": {"default": {**STORE, "secret_access_key": ""}}})),
    ("secret without key", json.dumps({"stores": {"default": {**STORE, "access_key_id": None}}})),
]


@pytest.mark.parametrize(("case", "document"), BAD_STORES, ids=[c for c, _ in BAD_STORES])
def test_bad_inline_stores_name_the_variable(case: str, document: str) -> None:
    with pytest.raises(ConfigError, match="DYNAFED_FN_STORES") as info:
        Config.from_env(env(DYNAFED_FN_STORES=document), function="checksum")
    assert CANARY_SECRET not in str(info.value)


@pytest.mark.parametrize(("case", "document"), BAD_STORES, ids=[c for c, _ in BAD_STORES])
def test_bad_stores_file_names_the_variable(tmp_path: Path, case: str, document: str) -> None:
    path = tmp_path / "stores.json"
    path.write_text(document)
    with pytest.raises(ConfigError, match="DYNAFED_FN_STORES_FILE") as info:
        Config.from_env({"DYNAFED_FN_STORES_FILE": str(path)}, function="checksum")
    assert CANARY_SECRET not in str(info.value)


def test_missing_stores_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DYNAFED_FN_STORES_FILE"):
        Config.from_env({"DYNAFED_FN_STORES_FILE": str(tmp_path / "absent.json")}, function="checksum")


def test_no_stores_at_all_names_both_variables() -> None:
    with pytest.raises(ConfigError, match="DYNAFED_FN_STORES_FILE.*DYNAFED_FN_STORES"):
        Config.from_env({}, function="checksum")


@pytest.mark.parametrize(("variable", "value"), [
    ("K_SINK", "broker.local:80"),
    ("K_SINK", "ftp://sink"),
    ("K_CE_OVERRIDES", "{not json"),
    ("K_CE_OVERRIDES", '["extensions"]'),
    ("K_CE_OVERRIDES", '{"extensions": ["a"]}'),
    ("K_CE_OVERRIDES", '{"extensions": {"Cluster": "x"}}'),
    ("K_CE_OVERRIDES", '{"extensions": {"my-ext": "x"}}'),
    ("K_CE_OVERRIDES", '{"extensions": {"clusterclusterclusterx": "x"}}'),  # 21 characters
    ("K_CE_OVERRIDES", '{"extensions": {"\\u00e9t\\u00e9": "x"}}'),  # non-ASCII lowercase letters
    ("K_CE_OVERRIDES", '{"extensions": {"": "x"}}'),
    ("K_CE_OVERRIDES", '{"extensions": {"id": "fixed"}}'),  # would break de-duplication
    ("K_CE_OVERRIDES", '{"extensions": {"specversion": "0.3"}}'),
    ("K_CE_OVERRIDES", '{"extensions": {"source": "/elsewhere"}}'),
    ("THREADS", "many"),
    ("THREADS", "0"),
    ("DYNAFED_FN_MAX_INFLIGHT", "-1"),
    ("DYNAFED_FN_MAX_INFLIGHT", "1.5"),
    ("DYNAFED_FN_S3_POOL_SIZE", "0"),
    ("DYNAFED_FN_S3_POOL_SIZE", "lots"),
    ("DYNAFED_FN_S3_MAX_ATTEMPTS", "0"),
    ("DYNAFED_FN_ALLOW_PRIVATE_SOURCES", "maybe"),
    ("DYNAFED_FN_LOG_LEVEL", "LOUD"),
    ("DYNAFED_FN_HTTP_SOURCES", "ftp://mirror.example/"),
    ("DYNAFED_FN_HTTP_SOURCES", "https://ok.example/,example.org"),
])
def test_each_bad_variable_is_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Config.from_env(env(**{variable: value}), function="checksum")


@pytest.mark.parametrize("name", ["cluster", "abc123", "123", "x"])
def test_valid_extension_names(name: str) -> None:
    config = Config.from_env(env(K_CE_OVERRIDES=json.dumps({"extensions": {name: "v"}})), function="checksum")
    assert config.ce_extensions == {name: "v"}


def test_empty_overrides_and_empty_values_mean_defaults() -> None:
    config = Config.from_env(env(K_CE_OVERRIDES="", K_SINK="", THREADS="", DYNAFED_FN_AUTH_TOKEN=""),
                             function="checksum")
    assert config.ce_extensions == {} and config.sink is None and config.auth_token is None
    assert Config.from_env(env(K_CE_OVERRIDES="{}"), function="checksum").ce_extensions == {}


def test_bad_function_setting_names_the_full_variable() -> None:
    config = Config.from_env(env(DYNAFED_FN_CHECKSUM_CHUNK_BYTES="8MiB"), function="checksum")
    with pytest.raises(ConfigError, match="DYNAFED_FN_CHECKSUM_CHUNK_BYTES"):
        config.setting("CHUNK_BYTES", 1.0)


@pytest.mark.parametrize("value", ["8MiB", "0", "-5"])
def test_checksum_app_validates_its_settings_at_start_up(value: str) -> None:
    from functions.checksum.app import create_app

    with pytest.raises(ConfigError, match="DYNAFED_FN_CHECKSUM_CHUNK_BYTES"):
        create_app(env=env(DYNAFED_FN_CHECKSUM_CHUNK_BYTES=value), s3=lambda store: None)


@pytest.mark.parametrize("value", ["four", "0", "-1"])
def test_checksum_app_refuses_a_bad_range_stream_count_at_start_up(value: str) -> None:
    from functions.checksum.app import create_app

    with pytest.raises(ConfigError, match="DYNAFED_FN_CHECKSUM_RANGE_STREAMS"):
        create_app(env=env(DYNAFED_FN_CHECKSUM_RANGE_STREAMS=value), s3=lambda store: None)
