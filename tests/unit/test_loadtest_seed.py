"""Seeding: reproducible objects, locally computed expected checksums,
metadata-cache objects, idempotent re-seeding (moto S3)."""
from __future__ import annotations

import hashlib
import io
import zlib

import boto3
import pytest
from moto import mock_aws

from loadtest import seed
from loadtest.config import load_scenario

MiB = 1024 * 1024


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="demo")
        yield client


@pytest.fixture
def scenario():
    return load_scenario("smoke", ["objects.small.count=6", "objects.large.size=\"11MiB\"",
                                   'checksum.algorithms=["adler32", "crc32c"]'])


def test_content_is_a_pure_function_of_seed_and_key():
    a = seed.ObjectContent("7:k", 3 * MiB + 5).read_all()
    assert a == seed.ObjectContent("7:k", 3 * MiB + 5).read_all()
    assert a != seed.ObjectContent("7:other", 3 * MiB + 5).read_all()
    assert len(a) == 3 * MiB + 5
    assert seed.ObjectContent("7:k", 0).read_all() == b""


def test_reader_reads_and_seeks_like_a_file():
    content = seed.ObjectContent("1:x", 2 * MiB + 100)
    whole = content.read_all()
    reader = io.BufferedReader(content.reader(), buffer_size=7000)
    assert reader.read() == whole
    raw = content.reader()
    raw.seek(MiB - 3)
    buf = bytearray(10)
    assert raw.readinto(buf) == 10 and bytes(buf) == whole[MiB - 3:MiB + 7]
    raw.seek(-4, io.SEEK_END)
    assert raw.read() == whole[-4:]


def test_expected_checksums_match_independent_implementations():
    content = seed.ObjectContent("3:y", 1234567)
    data = content.read_all()
    checksums, etag = seed.digest_content(content, list(seed.DIGESTS))
    assert checksums["adler32"] == f"{zlib.adler32(data):08x}"
    assert checksums["crc32"] == f"{zlib.crc32(data):08x}"
    assert checksums["md5"] == hashlib.md5(data).hexdigest() == etag
    assert checksums["sha256"] == hashlib.sha256(data).hexdigest()
    # PROTOCOLS.md known values
    known = {"adler32": "11e60398"}
    h = seed.DIGESTS["adler32"]()
    h.update(b"Wikipedia")
    assert h.hexdigest() == known["adler32"]
    c = seed.DIGESTS["crc32c"]()
    c.update(b"123456789")
    assert c.hexdigest() == "e3069283"


def test_plan_is_deterministic_and_interleaves_cached_and_uncached(scenario):
    first, second = seed.plan(scenario), seed.plan(scenario)
    assert first == second
    kinds = [k for k, _, _ in first]
    assert kinds.count(seed.SMALL_CACHED) == 3 and kinds.count(seed.SMALL_UNCACHED) == 3
    assert kinds.count(seed.LARGE) == 1
    # another seed gives other keys (fingerprint) and other sizes
    other = seed.plan(load_scenario("smoke", ["seed=8", "objects.small.count=6"]))
    assert {k for _, k, _ in other}.isdisjoint({k for _, k, _ in first})


def test_seed_uploads_objects_with_cache_metadata_and_is_idempotent(s3, scenario, monkeypatch):
    monkeypatch.setattr(seed, "PART_SIZE", 5 * MiB)  # 11 MiB large object -> 3 parts
    manifest, report = seed.seed(scenario, s3, workers=2)
    assert report.uploaded == 7 and report.skipped == 0
    assert manifest.cached_algorithms == ("adler32", "crc32c")
    for obj in manifest.objects:
        got = s3.get_object(Bucket="demo", Key=obj.key)
        data = got["Body"].read()
        assert len(data) == obj.size
        assert obj.checksums["adler32"] == f"{zlib.adler32(data):08x}"
        assert obj.checksums["md5"] == hashlib.md5(data).hexdigest()
        assert got["ETag"].strip('"') == obj.etag
        metadata = got["Metadata"]
        if obj.kind == seed.SMALL_CACHED:
            assert metadata == {"adler32": obj.checksums["adler32"], "crc32c": obj.checksums["crc32c"]}
        else:
            assert metadata == {}
    large = manifest.of_kind(seed.LARGE)[0]
    assert large.etag.endswith("-3")

    again, report2 = seed.seed(scenario, s3)
    assert (report2.uploaded, report2.skipped) == (0, 7)
    assert again == manifest

    # an object changed behind our back (e.g. checksum write-back on an uncached one) is re-uploaded
    victim = manifest.of_kind(seed.SMALL_UNCACHED)[0]
    s3.copy_object(Bucket="demo", Key=victim.key, CopySource={"Bucket": "demo", "Key": victim.key},
                   Metadata={"adler32": victim.checksums["adler32"]}, MetadataDirective="REPLACE")
    _, report3 = seed.seed(scenario, s3)
    assert (report3.uploaded, report3.skipped) == (1, 6)
    assert s3.head_object(Bucket="demo", Key=victim.key)["Metadata"] == {}


def test_manifest_round_trips_through_json(s3, scenario, tmp_path):
    manifest, _ = seed.seed(scenario, s3)
    path = tmp_path / "objects.json"
    manifest.save(path)
    assert seed.Manifest.load(path) == manifest


def test_remove_prefix_deletes_only_under_it(s3):
    for key in ("lt/copies/r1/a", "lt/copies/r1/b", "lt/copies/r2/a", "keep"):
        s3.put_object(Bucket="demo", Key=key, Body=b"x")
    assert seed.remove_prefix(s3, "demo", "lt/copies/r1/") == 2
    left = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="demo")["Contents"])
    assert left == ["keep", "lt/copies/r2/a"]
