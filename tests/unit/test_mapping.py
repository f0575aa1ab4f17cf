"""URL prefix -> store/bucket mapping (dynafed_client.mapping)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dynafed_client.mapping import MappingError, PrefixRule, StoreMapping, load_mapping
from dynafed_contract.checksum import ObjectRef

TOML = """
[[prefix]]
url = "https://s3.example.org/atlas/"
store = "default"
bucket = "atlas"

[[prefix]]
url = "https://s3.example.org/atlas/deep/"
store = "archive"
bucket = "deep"
key_prefix = "from-atlas/"

[[prefix]]
url = "/myfed/scratch"
store = "archive"
bucket = "scratch"

[[prefix]]
url = "davs://gw.example.org:443/"
"""


@pytest.fixture
def mapping(tmp_path: Path) -> StoreMapping:
    path = tmp_path / "mapping.toml"
    path.write_text(TOML)
    return StoreMapping.load(path)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://s3.example.org/atlas/a/b.root", ObjectRef("default", "atlas", "a/b.root")),
    # longest prefix wins, key_prefix prepended
    ("https://s3.example.org/atlas/deep/x", ObjectRef("archive", "deep", "from-atlas/x")),
    # default port and scheme aliases
    ("https://s3.example.org:443/atlas/f", ObjectRef("default", "atlas", "f")),
    ("s3s://S3.Example.org/atlas/f", ObjectRef("default", "atlas", "f")),
    # percent-decoding; the query (a presigned signature) is ignored
    ("https://s3.example.org/atlas/with%20space?X-Amz-Signature=abc", ObjectRef("default", "atlas", "with space")),
    # a bare path rule matches paths and any host
    ("/myfed/scratch/run1/f.dat", ObjectRef("archive", "scratch", "run1/f.dat")),
    ("http://dynafed.example.org/myfed/scratch/f", ObjectRef("archive", "scratch", "f")),
    # store and bucket from the path
    ("https://gw.example.org/archive/archive/k", ObjectRef("archive", "archive", "k")),
    ("davs://gw.example.org/default/demo/a/b", ObjectRef("default", "demo", "a/b")),
])
def test_resolves(mapping: StoreMapping, url: str, expected: ObjectRef) -> None:
    assert mapping.resolve(url) == expected


@pytest.mark.parametrize("url", [
    "https://s3.example.org/atlasx/f",          # not on a segment boundary
    "https://other.example.org/atlas/f",        # other host
    "http://s3.example.org/atlas/f",            # other scheme
    "https://s3.example.org:8443/atlas/f",      # other port
    "https://s3.example.org/atlas/",            # the bucket itself, no key
    "https://s3.example.org/atlas/dir/",        # a "directory"
    "https://gw.example.org/default",           # store without bucket/key
    "https://gw.example.org/default/demo",      # bucket without key
    "/elsewhere/f",
    "not a url",
])
def test_does_not_resolve(mapping: StoreMapping, url: str) -> None:
    assert mapping.resolve(url) is None


def test_json_and_toml_are_the_same_shape(tmp_path: Path, mapping: StoreMapping) -> None:
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(mapping.to_json()))
    again = StoreMapping.load(path)
    assert again.rules == mapping.rules


def test_matches_covers_roots(mapping: StoreMapping) -> None:
    assert mapping.matches("https://s3.example.org/atlas/")
    assert not mapping.matches("https://nowhere.example.org/")


def test_namespace_of_gateway_urls() -> None:
    ns = StoreMapping.namespace(["http://127.0.0.1:8080", "https://gw.example.org/fed/"])
    assert ns.resolve("http://127.0.0.1:8080/default/demo/k") == ObjectRef("default", "demo", "k")
    assert ns.resolve("https://gw.example.org/fed/default/demo/k") == ObjectRef("default", "demo", "k")
    assert ns.resolve("https://gw.example.org/default/demo/k") is None


@pytest.mark.parametrize(("text", "message"), [
    ('prefix = "x"', "'prefix' must be a list"),
    ('[[prefix]]\nstore = "a"', "'url' must be a non-empty string"),
    ('[[prefix]]\nurl = "/a"\nbucket = "b"', "a bucket needs a store"),
    ('[[prefix]]\nurl = "/a"\nstroe = "b"', "unknown key(s) stroe"),
    ('[[prefix]]\nurl = "relative/path"', "not a URL nor an absolute path"),
    ('[[prefix]]\nurl = "/a"\nstore = 3', "'store' must be a string"),
    ("[[prefix]\n", "not valid TOML"),
    ('other = 1', "unknown key(s) other"),
])
def test_bad_files_are_refused_with_a_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(MappingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        StoreMapping.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read mapping file"):
        StoreMapping.load(tmp_path / "absent.toml")


def test_load_mapping_from_env(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"prefix": [{"url": "/fed/", "store": "s", "bucket": "b"}]}))
    assert load_mapping(None, {}) is None
    loaded = load_mapping(None, {"DYNAFED_FN_MAPPING": str(path)})
    assert loaded is not None and loaded.resolve("/fed/k") == ObjectRef("s", "b", "k")


def test_rule_validation() -> None:
    with pytest.raises(MappingError):
        PrefixRule(url="http://host:notaport/")


def test_runs_of_slashes_are_one() -> None:
    """Dynafed's prefix translation keeps the remainder's leading ``/`` and the
    plugin appends it to the endpoint URL (indigo-dc/dynafed
    ``src/LocationPlugin.cc``, ``doNameXlation``): an endpoint URL ending in
    ``/`` sends ``//key``; it names the same object as ``/key``."""
    from dynafed_client.mapping import StoreMapping, collapse_slashes

    assert collapse_slashes("/a//b///c") == "/a/b/c"
    mapping = StoreMapping.from_dict({"prefix": [
        {"url": "https://s3.example.org/demo/", "store": "default", "bucket": "demo"},
        {"url": "/fed/archive/", "store": "archive", "bucket": "archive"}]})
    for url in ("https://s3.example.org/demo//run//f.root", "https://s3.example.org//demo/run/f.root"):
        ref = mapping.resolve(url)
        assert ref is not None and (ref.store, ref.bucket, ref.key) == ("default", "demo", "run/f.root"), url
    ref = mapping.resolve("//fed/archive//f.root")
    assert ref is not None and ref.key == "f.root"
