"""Idempotency rules, the job table and the witness identity."""
from __future__ import annotations

import threading

import pytest

from dynafed_runtime import errors
from dynafed_runtime.objects import ObjectInfo
from functions.copy.jobs import JobTable, check_overwrite, present_checksum
from functions.copy.multipart import Checkpoint, Upload, expected_etag, witness_body, witness_etag
from functions.copy.parts import PartPlan


def info(size=10, metadata=None, stored=None):
    return ObjectInfo(bucket="b", key="k", size=size, etag='"e"', content_type=None, metadata=metadata or {},
                      stored=stored or {}, preserved={})


OURS = {"dynafed-job-id": "job", "dynafed-source-etag": "tag"}


@pytest.mark.parametrize(("dest", "reference", "tag_is_content", "expected"), [
    (None, "0a", False, None),
    (info(stored={"adler32": "0a"}), "0a", False, "0a"),  # stored checksums agree
    (info(stored={"adler32": "0b"}), "0a", False, None),
    (info(size=11, stored={"adler32": "0a"}), "0a", False, None),
    (info(stored={}), "0a", False, None),
    (info(metadata=OURS, stored={"adler32": "0a"}), None, False, "0a"),  # our own verified copy
    (info(metadata={**OURS, "dynafed-job-id": "other"}, stored={"adler32": "0a"}), None, False, None),
    (info(metadata={**OURS, "dynafed-job-id": "other"}, stored={"adler32": "0a"}), None, True, "0a"),
    (info(metadata={**OURS, "dynafed-source-etag": "old"}, stored={"adler32": "0a"}), None, True, None),
    (info(metadata=OURS, stored={}), None, False, None),  # copied but never verified-written
])
def test_present_checksum(dest, reference, tag_is_content, expected):
    assert present_checksum(dest, size=10, algorithm="adler32", reference=reference, job_id="job",
                            source_tag="tag", tag_is_content=tag_is_content) == expected


def test_overwrite_rules():
    check_overwrite(None, job_id="job", overwrite=False)
    check_overwrite(info(metadata=OURS), job_id="job", overwrite=False)  # our earlier attempt
    check_overwrite(info(), job_id="job", overwrite=True)
    with pytest.raises(errors.DestinationExists) as caught:
        check_overwrite(info(), job_id="job", overwrite=False)
    assert caught.value.status == 409


def checkpoint(job_id, clock_value=0.0):
    return Checkpoint(job_id, '"w"', Upload("b", "k", "u"), PartPlan(10, 5), {1: '"a"'}, {})


def test_job_table_claims_one_request_per_job():
    table = JobTable()
    with table.claim("j") as first:
        assert first is True
        with table.claim("j") as second:
            assert second is False
        with table.claim("other") as third:
            assert third is True
    with table.claim("j") as again:
        assert again is True


def test_job_table_expires_checkpoints():
    now = [0.0]
    table = JobTable(ttl=10, max_checkpoints=2, clock=lambda: now[0])
    table.put(checkpoint("a"))
    now[0] = 5
    table.put(checkpoint("b"))
    assert table.get("a") is not None
    now[0] = 12
    assert table.get("a") is None and table.get("b") is not None
    table.put(checkpoint("c"))
    table.put(checkpoint("d"))
    assert table.get("b") is None  # over capacity: the oldest goes
    table.drop("c")
    assert table.get("c") is None and table.get("d").bytes_done == 5


def test_job_table_is_thread_safe():
    table = JobTable()
    wins = []

    def contend():
        with table.claim("j") as mine:
            wins.append(mine)
            threading.Event().wait(0.01)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) >= 1 and len(wins) == 8


def test_witness_names_every_input():
    base = dict(job_id="j", strategy="stream", source_tag='"e"', size=10, part_size=5,
                metadata={"a": "1"}, headers={"ContentType": "x"})
    reference = witness_etag(witness_body(**base))
    assert witness_etag(witness_body(**base)) == reference
    for field, value in [("job_id", "k"), ("strategy", "server-side-multipart"), ("source_tag", '"f"'),
                         ("size", 11), ("part_size", 6), ("metadata", {"a": "2"}), ("headers", {})]:
        assert witness_etag(witness_body(**{**base, field: value})) != reference, field
    assert reference.startswith('"') and len(reference) == 34


def test_expected_multipart_etag():
    import hashlib

    parts = [hashlib.md5(b"a").digest(), hashlib.md5(b"b").digest()]
    assert expected_etag(parts) == f'"{hashlib.md5(parts[0] + parts[1]).hexdigest()}-2"'
