"""The one stores-document parser (dynafed_contract/stores.py) and the
gateway's explicit extra requirement on top of it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynafed_contract.stores import StoreConfigError, parse_stores, require_fields

ENTRY = {"endpoint_url": "http://127.0.0.1:1", "access_key_id": "AKID", "secret_access_key": "s3cr3t-value"}


def test_credentials_are_optional_for_the_functions() -> None:
    stores = parse_stores(json.dumps({"stores": {"aws": {"region": "eu-west-1"}}}))
    assert stores["aws"].access_key_id is None and stores["aws"].endpoint_url is None
    assert stores["aws"].entry() == {"region": "eu-west-1", "addressing_style": "path"}


def test_entry_round_trips_through_the_parser() -> None:
    store = parse_stores({"stores": {"default": ENTRY}})["default"]
    assert parse_stores({"stores": {"default": store.entry()}})["default"] == store


def test_require_fields_names_store_field_and_reason_without_secrets() -> None:
    stores = parse_stores({"stores": {"ok": ENTRY, "ambient": {"endpoint_url": "http://127.0.0.1:1"}}})
    with pytest.raises(StoreConfigError, match=r"store 'ambient' lacks 'access_key_id' \(it signs\)") as info:
        require_fields(stores, ("endpoint_url", "access_key_id"), origin="stores.json", why="it signs")
    assert "s3cr3t" not in str(info.value)


def test_gateway_reader_requires_a_key_pair(tmp_path: Path) -> None:
    """Same document, two readers: the functions accept ambient credentials,
    the gateway refuses them with a ConfigError saying why."""
    from dynafed_client.errors import ConfigError
    from dynafed_client.storefile import read_stores_file

    path = tmp_path / "stores.json"
    path.write_text(json.dumps({"stores": {"default": {"endpoint_url": "http://127.0.0.1:1"}}}))
    parse_stores(path.read_text())
    with pytest.raises(ConfigError, match="lacks 'access_key_id' .*signs URLs"):
        read_stores_file(path)
    path.write_text(json.dumps({"stores": {"default": {**ENTRY, "bogus": 1}}}))
    with pytest.raises(ConfigError, match="unknown field"):
        read_stores_file(path)
    path.write_text(json.dumps({"stores": {"default": ENTRY}}))
    assert read_stores_file(path) == {"default": {**ENTRY, "region": "us-east-1", "addressing_style": "path"}}


def test_loadtest_reads_stores_the_gateway_way(tmp_path: Path) -> None:
    from loadtest.cli import _stores_file
    from loadtest.config import ConfigError as LoadtestConfigError

    path = tmp_path / "stores.json"
    path.write_text(json.dumps({"stores": {"default": {"endpoint_url": "ftp://127.0.0.1:1"}}}))
    with pytest.raises(LoadtestConfigError, match="--stores-file: .*endpoint_url must be http"):
        _stores_file(str(path))
    path.write_text(json.dumps({"stores": {"default": ENTRY}}))
    assert _stores_file(str(path))["default"]["secret_access_key"] == ENTRY["secret_access_key"]
