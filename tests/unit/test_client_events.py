"""The event receiver over real HTTP: binary, structured, batch, dedupe, routing, malformed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cloudevents.core.bindings.http import to_binary_event, to_structured_event

from dynafed_client.events import EventHub, EventReceiver, RemoteEventSource, read_log
from dynafed_contract import events as ce
from dynafed_runtime.events import build_event


def event(subject: str = "job-1", etype: str = ce.COPY_PROGRESS, **data: object):
    return build_event(etype, source="/dynafed-fn/copy", subject=subject, data=data or {"bytes": 1, "total": 2})


def post_binary(url: str, ev) -> requests.Response:
    message = to_binary_event(ev)
    return requests.post(url, headers=dict(message.headers), data=message.body, timeout=5)


def post_structured(url: str, ev) -> requests.Response:
    message = to_structured_event(ev)
    return requests.post(url, headers=dict(message.headers), data=message.body, timeout=5)


@pytest.fixture
def receiver(tmp_path: Path):
    with EventReceiver(port=0, log_path=tmp_path / "events.ndjson") as rx:
        yield rx


def test_binary_event_is_recorded_logged_and_listed(receiver: EventReceiver) -> None:
    ev = event(bytes=10, total=20)
    answer = post_binary(receiver.url, ev)
    assert answer.status_code == 202 and answer.content == b""
    listed = requests.get(f"{receiver.url}/events", params={"since": 0}, timeout=5).json()
    assert listed["seq"] == 1
    (got,) = listed["events"]
    assert (got["id"], got["type"], got["subject"], got["mode"]) == (ev.get_id(), ce.COPY_PROGRESS, "job-1", "binary")
    assert got["data"] == {"bytes": 10, "total": 20}
    assert got["time"] and got["time"].endswith("Z")
    logged = read_log(receiver.log.path)  # type: ignore[union-attr]
    assert [e.id for e in logged] == [ev.get_id()]


def test_structured_event(receiver: EventReceiver) -> None:
    assert post_structured(receiver.url, event("job-s", ce.COPY_COMPLETED, bytes=5)).status_code == 202
    (got,) = receiver.hub.since(0)
    assert got.mode == "structured" and got.subject == "job-s" and got.data == {"bytes": 5}


def test_batch_events(receiver: EventReceiver) -> None:
    batch = [json.loads(to_structured_event(event(f"job-{i}")).body) for i in range(3)]
    answer = requests.post(receiver.url, data=json.dumps(batch), timeout=5,
                           headers={"Content-Type": "application/cloudevents-batch+json"})
    assert answer.status_code == 202 and answer.headers["X-Events-Accepted"] == "3"
    assert [e.subject for e in receiver.hub.since(0)] == ["job-0", "job-1", "job-2"]
    assert {e.mode for e in receiver.hub.since(0)} == {"batch"}


def test_duplicates_are_dropped_but_acknowledged(receiver: EventReceiver) -> None:
    ev = event()
    assert post_binary(receiver.url, ev).headers["X-Events-Accepted"] == "1"
    again = post_structured(receiver.url, ev)  # same source+id, other mode: still a duplicate
    assert again.status_code == 202 and again.headers["X-Events-Duplicates"] == "1"
    same_id_other_source = build_event(ce.COPY_PROGRESS, source="/other", subject="job-1", data={})
    same_id_other_source = type(same_id_other_source)(
        {**same_id_other_source.get_attributes(), "id": ev.get_id()}, {})
    assert post_binary(receiver.url, same_id_other_source).headers["X-Events-Accepted"] == "1"
    assert len(receiver.hub.since(0)) == 2 and receiver.hub.duplicates == 1
    assert len(read_log(receiver.log.path)) == 2  # type: ignore[union-attr]


def test_routing_to_waiters_by_subject(receiver: EventReceiver) -> None:
    with receiver.hub.subscribe("job-A") as sub_a, receiver.hub.subscribe("job-B") as sub_b, \
            receiver.hub.subscribe(None) as everything:
        for subject in ("job-A", "job-B", "job-A", "job-C"):
            post_binary(receiver.url, event(subject))
        got_a = [sub_a.get(timeout=5) for _ in range(2)]
        assert [e.subject for e in got_a if e] == ["job-A", "job-A"]
        assert sub_a.get(timeout=0.05) is None
        first_b = sub_b.get(timeout=5)
        assert first_b is not None and first_b.subject == "job-B"
        assert [everything.get(timeout=5).subject for _ in range(4)] == ["job-A", "job-B", "job-A", "job-C"]


@pytest.mark.parametrize("headers,body", [
    ({"ce-type": "t", "ce-source": "/s", "ce-specversion": "1.0"}, b"{}"),  # no ce-id
    ({"Content-Type": "application/cloudevents+json"}, b"{not json"),
    ({"Content-Type": "application/cloudevents+json"}, json.dumps({"type": "t", "source": "/s",
                                                                    "specversion": "1.0"}).encode()),
    ({"Content-Type": "application/cloudevents-batch+json"}, b'{"not": "a list"}'),
    ({"Content-Type": "application/cloudevents-batch+json"}, b"[1, 2]"),
    ({"Content-Type": "application/json"}, b'{"plain": "json"}'),
    ({"Content-Type": "application/cloudevents+json"}, json.dumps({"id": "1", "type": "t", "source": "/s",
                                                                    "specversion": "9.9"}).encode()),
])
def test_malformed_is_400_problem(receiver: EventReceiver, headers: dict[str, str], body: bytes) -> None:
    answer = requests.post(receiver.url, headers=headers, data=body, timeout=5)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json()["code"] == "INVALID_REQUEST"
    assert receiver.hub.seq == 0


def test_events_listing_filters_and_long_poll(receiver: EventReceiver) -> None:
    post_binary(receiver.url, event("job-1"))
    post_binary(receiver.url, event("job-2", ce.COPY_COMPLETED))
    get = lambda **p: requests.get(f"{receiver.url}/events", params=p, timeout=10).json()  # noqa: E731
    assert [e["subject"] for e in get(since=0, subject="job-2")["events"]] == ["job-2"]
    assert [e["seq"] for e in get(since=1)["events"]] == [2]
    assert [e["type"] for e in get(since=0, type="ch.cern.dynafed.copy.completed")["events"]] == [ce.COPY_COMPLETED]
    assert get(since=-1) == {"seq": 2, "events": []}
    assert get(since=2, wait=0.2)["events"] == []
    assert requests.get(f"{receiver.url}/events", params={"since": "x"}, timeout=5).status_code == 400
    assert requests.get(f"{receiver.url}/healthz", timeout=5).json()["events"] == 2


def test_remote_event_source_follows_a_receiver(receiver: EventReceiver) -> None:
    post_binary(receiver.url, event("job-R"))  # before subscribing: not delivered
    with RemoteEventSource(receiver.url, poll_wait=0.5).subscribe("job-R") as sub:
        post_binary(receiver.url, event("job-X"))
        post_binary(receiver.url, event("job-R", bytes=7))
        got = sub.get(timeout=10)
    assert got is not None and got.subject == "job-R" and got.data == {"bytes": 7}


def test_hub_dedupe_window_is_bounded() -> None:
    from dynafed_client.events import ReceivedEvent

    hub = EventHub(dedupe_window=2, history=2)
    for i in range(3):
        assert hub.publish(ReceivedEvent(id=str(i), source="/s", type="t")) is not None
    assert hub.publish(ReceivedEvent(id="2", source="/s", type="t")) is None
    assert len(hub) == 2


def test_module_serves_as_the_stack_starts_it(tmp_path: Path) -> None:
    log = tmp_path / "events.ndjson"
    proc = subprocess.Popen([sys.executable, "-m", "dynafed_client.events", "serve", "--port", "0",
                             "--host", "127.0.0.1", "--log", str(log)], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.strip().rsplit(" ", 1)[1]
        assert post_binary(url, event("job-P")).status_code == 202
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
    assert [e.subject for e in read_log(log)] == ["job-P"]
