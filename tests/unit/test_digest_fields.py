"""RFC 9530 digest fields (dynafed_contract/digest_fields.py) with known
values (PROTOCOLS.md §2: adler32(b"Wikipedia") = 11e60398), and how the copy
function's http source reads what a source states."""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from dynafed_contract import digest_fields as df
from dynafed_contract.algorithms import normalize_algorithm
from functions.copy.http_source import _parse_stored

WIKI_ADLER = "11e60398"
WIKI_SHA256 = hashlib.sha256(b"Wikipedia").hexdigest()


def test_adler_is_an_alias_of_adler32() -> None:
    assert normalize_algorithm("adler") == normalize_algorithm("ADLER32") == "adler32"
    assert df.algorithm_for("adler") == "adler32"


def test_encode_member_is_a_byte_sequence() -> None:
    assert df.encode_member("adler", "adler32", WIKI_ADLER) == "adler=:EeYDmA==:"
    assert df.encode_member("adler", "adler32", "1") == "adler=:AAAAAQ==:"  # leading zeros restored
    sha = base64.b64encode(hashlib.sha256(b"Wikipedia").digest()).decode()
    assert df.encode_member("sha-256", "sha256", WIKI_SHA256) == f"sha-256=:{sha}:"
    assert df.encode_member("sha-256", "sha256", "abc") is None  # not a digest of that algorithm
    assert df.encode_member("adler", "adler32", "zz") is None


@pytest.mark.parametrize("header, expected", [
    ("sha-256=10, adler=3", ["sha256", "adler32"]),
    ("adler=3, sha-256=10", ["sha256", "adler32"]),
    ("adler, md5=2", ["md5", "adler32"]),  # no weight: 1; malformed counts as 1 too
    ("sha-512=0, unixsum=5, adler=x", ["adler32"]),
    ("ADLER=1,adler=9", ["adler32"]),  # first mention wins
])
def test_parse_want_repr_digest(header: str, expected: list[str]) -> None:
    assert [w.algorithm for w in df.parse_want_repr_digest([header])] == expected


def test_parse_repr_digest_roundtrip_and_garbage() -> None:
    value = df.format_repr_digest(df.parse_want_repr_digest(["adler=1, sha-256=1"]),
                                  {"adler32": WIKI_ADLER, "sha256": WIKI_SHA256})
    assert value is not None
    assert df.parse_repr_digest(value) == {"adler32": WIKI_ADLER, "sha256": WIKI_SHA256}
    assert df.parse_repr_digest("adler=EeYDmA==, sha-256=:short:, md5=:not base64!:, foo=:AA==:") == {}


def test_want_headers_ask_both_ways() -> None:
    assert df.want_headers("adler32") == {"Want-Digest": "adler32", "Want-Repr-Digest": "adler=10"}
    assert df.want_headers("sha256") == {"Want-Digest": "sha-256", "Want-Repr-Digest": "sha-256=10"}
    assert df.want_headers("crc32") == {}
    assert df.want_headers(None) == {}


def test_http_source_reads_repr_digest_and_digest() -> None:
    """A source's stated digest is what the copy compares against: RFC 9530
    ``Repr-Digest``, RFC 3230 ``Digest`` (also under ``adler``), S3 metadata."""
    assert _parse_stored({"Repr-Digest": "adler=:EeYDmA==:"}) == {"adler32": WIKI_ADLER}
    assert _parse_stored({"Digest": f"adler={WIKI_ADLER}"}) == {"adler32": WIKI_ADLER}
    assert _parse_stored({"Digest": "adler32=00000001", "Repr-Digest": "adler=:EeYDmA==:"}) == \
        {"adler32": "00000001"}  # both present: Digest first (both are the source's word)


def test_copy_asks_the_source_for_its_digest_and_compares() -> None:
    """The copy function as a puller: the first GET carries Want-Digest and
    Want-Repr-Digest for the verify algorithm; a stated Repr-Digest that
    disagrees with the bytes is a CHECKSUM_MISMATCH and nothing is stored,
    an agreeing one copies."""
    import zlib

    from moto import mock_aws

    from dynafed_runtime.config import Config
    from dynafed_runtime.s3 import make_s3_client
    from dynafed_runtime.stores import Store
    from functions.copy.app import create_app
    from tests.faults.httpsource import StaticHttpSource

    data = b"Wikipedia" * 5000
    right = base64.b64encode(zlib.adler32(data).to_bytes(4, "big")).decode()
    store: dict[str, Any] = {"endpoint_url": None, "region": "us-east-1", "access_key_id": "a",
                             "secret_access_key": "b"}
    with mock_aws(), StaticHttpSource() as site:
        s3 = make_s3_client(Store(name="default", **store), max_attempts=1)
        s3.create_bucket(Bucket="dest")
        site.put("/b/right", data, headers={"Repr-Digest": f"adler=:{right}:"})
        site.put("/b/wrong", data, headers={"Repr-Digest": "adler=:AAAAAQ==:"})
        env = {"DYNAFED_FN_STORES": json.dumps({"stores": {"default": store}}),
               "DYNAFED_FN_HTTP_SOURCES": site.url, "DYNAFED_FN_ALLOW_PRIVATE_SOURCES": "1"}
        fn = create_app(Config.from_env(env, function="copy"), s3=lambda _: s3).test_client()
        wrong = fn.post("/", json={"source": {"url": f"{site.url}/b/wrong"},
                                   "destination": {"bucket": "dest", "key": "wrong"}})
        assert wrong.status_code == 422, wrong.get_data(as_text=True)
        assert wrong.get_json()["code"] == "CHECKSUM_MISMATCH"
        assert "Contents" not in s3.list_objects_v2(Bucket="dest", Prefix="wrong")
        ok = fn.post("/", json={"source": {"url": f"{site.url}/b/right"},
                                "destination": {"bucket": "dest", "key": "right"}})
        assert ok.status_code == 200, ok.get_data(as_text=True)
        assert ok.get_json()["checksums"]["adler32"] == f"{zlib.adler32(data):08x}"
        first = {k.lower(): v for k, v in site.requests[0][2].items()}
    assert first["want-digest"] == "adler32" and first["want-repr-digest"] == "adler=10"
