"""The filer source as it runs on a cluster: its ``K_SINK`` is the Broker.

The Broker is the harness of tests/harness/broker.py (written from
knative/eventing knative-v1.22.0; see tests/integration/test_broker_contract.py
for the sources it follows), routing with the project's own Triggers
(knative/base/trigger-*.yaml). Real parts: SeaweedFS, the filer source and
the checksum function under gunicorn (both with the Broker's ingress as
``K_SINK``, as the SinkBinding sets it), the project's event receiver as the
Dynafed side. The notification is the shape the SeaweedFS filer webhook POSTs
(captured from weed 4.48, tests/unit/data/seaweedfs_webhook_4.48.json; the
filer itself drives the source in tests/integration/test_checksum_on_upload.py),
made to name an object written for the test.

Shown: the source's ``checksum.requested`` reaches the checksum function
through the ``checksum-requested`` Trigger and its reply passes the filter's
rules; a redelivered notification leaves one result at the receiver; a
notification for an object gone by the time it is handled is dead-lettered
on the first attempt (NO_SUCH_OBJECT is permanent), not retried five times.
"""
from __future__ import annotations

import copy
import json
import os
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from dynafed_client.stack import ports, processes, services
from dynafed_contract import events as types
from tests.faults.processes import FunctionProcess, write_stores
from tests.faults.receiver import EventRecorder
from tests.harness.broker import Broker
from tests.harness.filters import load_triggers
from tests.integration.test_broker_contract import DYNAFED_RECEIVER_URI, TIME_SCALE, Receiver

REPO = Path(__file__).resolve().parents[2]
CAPTURED = json.loads((REPO / "tests" / "unit" / "data" / "seaweedfs_webhook_4.48.json").read_text(encoding="utf-8"))


class SourceProcess:
    """The filer source under gunicorn, no stores (it never calls S3)."""

    def __init__(self, workdir: Path, sink: str) -> None:
        self.port = ports.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        run_dir = workdir / "run-filersource"
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = services.function_env("filersource", port=self.port, stores_file=None, sink=sink, extra={
            "XDG_RUNTIME_DIR": str(run_dir), "DYNAFED_FN_FILERSOURCE_WATCH": "demo/broker-upload/",
            "DYNAFED_FN_FILERSOURCE_WRITE": "1"})
        self.log = workdir / "filersource.log"
        self.proc = processes.spawn(services.function_command("filersource"), log_path=self.log, env=env,
                                    cwd=services.repo_root())
        processes.wait_until(lambda: True if requests.get(f"{self.url}/readyz", timeout=2).ok else None,
                             what="filer source", timeout=60, pid=self.proc.pid, log_path=self.log,
                             retry_on=(requests.RequestException,))

    def notify(self, notification: dict[str, Any]) -> requests.Response:
        return requests.post(f"{self.url}/", json=notification, timeout=60)

    def stop(self) -> None:
        processes.stop_processes({"filersource": (self.proc.pid, None)}, timeout=10)


class World:
    def __init__(self, broker: Broker, receiver: Receiver, source: SourceProcess, s3: Any) -> None:
        self.broker, self.receiver, self.source, self.s3 = broker, receiver, source, s3


@pytest.fixture(scope="module")
def world(seaweed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("filersource-broker")
    stores_file = write_stores(workdir / "stores.json", dict(seaweed.stores))
    with Broker() as broker, EventRecorder() as dead_letters:
        receiver = Receiver(workdir)
        checksum = source = None
        try:
            checksum = FunctionProcess("checksum", stores_file, workdir, sink=broker.ingress_url,
                                       env={"DYNAFED_FN_S3_MAX_ATTEMPTS": "1"}).start()
            source = SourceProcess(workdir, broker.ingress_url)
            # Services not running here answer nothing: a checksum.requested routed
            # to one of them would show as a failed attempt
            nowhere = f"http://127.0.0.1:{ports.free_port()}/"
            subscribers = {name: nowhere for name in trigger_services()}
            subscribers.update({"checksum": checksum.url, DYNAFED_RECEIVER_URI: receiver.url})
            broker.triggers = load_triggers(REPO / "knative" / "base", subscribers=subscribers,
                                            dead_letter_sink=dead_letters.url, time_scale=TIME_SCALE)
            yield World(broker, receiver, source, seaweed.s3_client("default"))
        finally:
            for process in (source, checksum):
                if process is not None:
                    process.stop()
            receiver.stop()


def trigger_services() -> set[str]:
    """Service names the project's Triggers deliver to."""
    names = set()
    for path in (REPO / "knative" / "base").glob("trigger-*.yaml"):
        ref = yaml.safe_load(path.read_text(encoding="utf-8"))["spec"]["subscriber"].get("ref")
        if ref:
            names.add(ref["name"])
    return names


def notification_for(key: str) -> dict[str, Any]:
    """The filer's ``create`` for ``demo/<key>``: the captured body, renamed, with its own bytes' identity."""
    body = copy.deepcopy(CAPTURED["create_object"])
    parent, _, name = f"/buckets/demo/{key}".rpartition("/")
    body["key"] = f"{parent}/{name}"
    body["message"]["new_parent_path"] = parent
    entry = body["message"]["new_entry"]
    entry["name"] = name
    entry["chunks"][0]["modified_ts_ns"] = uuid.uuid4().int % 10**18  # another upload, another identity
    return body


def forward(world: World, notification: dict[str, Any]) -> str:
    """POST the notification to the source; the Broker took the event: its id."""
    world.broker.clear()
    answer = world.source.notify(notification)
    assert answer.status_code == 202, answer.text
    world.broker.wait_idle()
    assert world.broker.lost == [], world.broker.lost
    return str(answer.json()["id"])


def test_the_sources_request_reaches_the_checksum_function_through_its_trigger(world: World) -> None:
    key = f"broker-upload/{uuid.uuid4().hex}.bin"
    data = os.urandom(200_000)
    world.s3.put_object(Bucket="demo", Key=key, Body=data)
    event_id = forward(world, notification_for(key))
    [received] = [e for e in world.broker.received if e.get_id() == event_id]
    assert received.get_type() == types.CHECKSUM_REQUESTED and received.get_source() == "/dynafed-fn/filersource"
    attempts = world.broker.attempts_for(event_id)
    assert [(a.trigger, a.outcome) for a in attempts] == [("checksum-requested", "reply")]
    computed = world.receiver.of(types.CHECKSUM_COMPUTED, f"default/demo/{key}")
    assert len(computed) == 1 and computed[0]["data"]["written"] == ["adler32"]
    stored = world.s3.head_object(Bucket="demo", Key=key)["Metadata"]["adler32"]
    assert stored == computed[0]["data"]["checksums"]["adler32"] == f"{zlib.adler32(data):08x}"
    assert world.broker.dead_letters == []


def test_a_redelivered_notification_leaves_one_result(world: World) -> None:
    key = f"broker-upload/{uuid.uuid4().hex}.bin"
    world.s3.put_object(Bucket="demo", Key=key, Body=os.urandom(50_000))
    notification = notification_for(key)
    first = forward(world, notification)
    again = forward(world, notification)
    assert again == first  # the same event: the Broker and everything after it see a duplicate
    assert len(world.receiver.of(types.CHECKSUM_COMPUTED, f"default/demo/{key}")) == 1


def test_a_vanished_object_is_dead_lettered_on_the_first_attempt(world: World) -> None:
    key = f"broker-upload/{uuid.uuid4().hex}.bin"  # never written (or deleted before the checksum ran)
    event_id = forward(world, notification_for(key))
    [attempt] = world.broker.attempts_for(event_id)
    assert attempt.status == 422 and "NO_SUCH_OBJECT" in attempt.detail
    [letter] = world.broker.dead_letters
    assert letter.event.get_id() == event_id and letter.code == "422"
