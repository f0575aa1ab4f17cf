"""Ranged fan-out: combine maths against zlib/crc32c, and the flow against a fake function."""
from __future__ import annotations

import os
import zlib

import google_crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynafed_client import Client, ClientConfig, ConfigError, ConflictError, cli
from dynafed_client.fanout import combine, fanout_checksum, plan_ranges
from dynafed_contract.checksum import ObjectRef
from tests.unit.client_fakes import FakeFunction, ok


def crc32c(data: bytes) -> int:
    return int.from_bytes(google_crc32c.Checksum(data).digest(), "big")


REFERENCE = {"adler32": zlib.adler32, "crc32": zlib.crc32, "crc32c": crc32c}


@settings(max_examples=60, deadline=None)
@given(a=st.binary(max_size=3000), b=st.binary(max_size=3000), algo=st.sampled_from(sorted(REFERENCE)))
def test_combine_matches_whole(a: bytes, b: bytes, algo: str) -> None:
    f = REFERENCE[algo]
    assert combine(algo, f(a), f(b), len(b)) == f(a + b)


def test_combine_large_lengths() -> None:
    a, b = os.urandom(70_000), os.urandom(200_003)  # beyond adler32's modulus and many CRC table steps
    for algo, f in REFERENCE.items():
        assert combine(algo, f(a), f(b), len(b)) == f(a + b)


@pytest.mark.parametrize("size,parts,min_part,expected", [
    (0, 4, 1, [(0, 0)]),
    (10, 3, 1, [(0, 4), (4, 7), (7, 10)]),
    (10, 4, 5, [(0, 5), (5, 10)]),
    (3, 8, 10, [(0, 3)]),
])
def test_plan_ranges(size: int, parts: int, min_part: int, expected: list[tuple[int, int]]) -> None:
    assert plan_ranges(size, parts, min_part=min_part) == expected


def ranged_function(data: bytes, etags: list[str] | None = None):
    def handler(req):
        body = req.json
        start, end = body["range"]
        piece = data[start:min(end, len(data))]
        values = {a: f"{REFERENCE[a](piece):08x}" for a in body["algorithms"]}
        etag = etags[min(req.index, len(etags) - 1)] if etags else '"e1"'
        return ok({**{k: body[k] for k in ("store", "bucket", "key")}, "size": len(data), "etag": etag,
                   "checksums": values, "cached": [], "elapsed_s": 0.0, "range": [start, end]})
    return handler


def test_fanout_equals_whole_object_digest() -> None:
    data = os.urandom(100_001)
    with FakeFunction(ranged_function(data)) as fn:
        with Client(ClientConfig().with_function("checksum", fn.url)) as client:
            result = fanout_checksum(client, ObjectRef("default", "demo", "k"), ["adler32", "CRC32", "crc32c"],
                                     parts=4, min_part=1000)
    assert dict(result.checksums) == {a: f"{f(data):08x}" for a, f in REFERENCE.items()}
    assert result.raw["fan_out"] == 4 and result.size == len(data)
    assert sorted(tuple(r.json["range"]) for r in fn.requests[1:]) == plan_ranges(len(data), 4, min_part=1000)


def test_fanout_refuses_non_combinable() -> None:
    with pytest.raises(ConfigError, match="md5"):
        fanout_checksum(None, ObjectRef("default", "demo", "k"), ["adler32", "md5"], parts=2)


def test_fanout_detects_a_changed_object() -> None:
    data = os.urandom(5000)
    with FakeFunction(ranged_function(data, etags=['"e1"', '"e1"', '"e2"'])) as fn:
        with Client(ClientConfig().with_function("checksum", fn.url, )) as client:
            with pytest.raises(ConflictError, match="changed"):
                fanout_checksum(client, ObjectRef("default", "demo", "k"), ["adler32"], parts=2, min_part=100)


def test_cli_fan_out(capsys: pytest.CaptureFixture[str]) -> None:
    data = b"Wikipedia"
    with FakeFunction(ranged_function(data)) as fn:
        assert cli.main(["checksum", "--url", fn.url, "--fan-out", "3", "demo/w"]) == 0
    assert capsys.readouterr().out == "adler32:11e60398  demo/w\n"
