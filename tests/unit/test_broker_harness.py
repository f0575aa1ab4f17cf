"""The Broker harness's own arithmetic and filters (tests/harness), checked
against the eventing source they copy: ``RetryConfigFromDeliverySpec``
(exponential ``delay * 2^n``, linear ``delay * n``, n from 0 as
go-retryablehttp ``Client.Do`` passes it), ``SelectiveRetry``, and the
SubscriptionsAPI filters (``pkg/eventfilter/subscriptionsapi``: a missing
attribute fails exact/prefix/suffix; ``not`` inverts)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.broker import selective_retry
from tests.harness.filters import Delivery, expression_matches, iso8601_seconds, load_triggers

BASE = Path(__file__).resolve().parents[2] / "knative" / "base"


def test_backoff_follows_retry_config_from_delivery_spec() -> None:
    exponential = Delivery(retry=5, backoff_policy="exponential", backoff_delay_s=2.0)
    assert [exponential.backoff_s(n) for n in range(5)] == [2.0, 4.0, 8.0, 16.0, 32.0]
    linear = Delivery(retry=3, backoff_policy="linear", backoff_delay_s=0.5)
    assert [linear.backoff_s(n) for n in range(3)] == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(("status", "retried"), [(-1, True), (200, False), (302, False), (400, False),
                                                 (404, True), (408, True), (409, True), (410, False),
                                                 (422, False), (429, True), (500, True), (502, True)])
def test_selective_retry(status: int, retried: bool) -> None:
    assert selective_retry(status) is retried


def test_filter_dialects() -> None:
    event = {"type": "ch.cern.dynafed.copy.started", "source": "/dynafed-fn/copy"}
    assert expression_matches({"prefix": {"type": "ch.cern.dynafed.copy."}}, event)
    assert not expression_matches({"exact": {"subject": "x"}}, event)  # missing attribute: fails
    assert expression_matches({"not": {"exact": {"subject": "x"}}}, event)
    assert expression_matches({"all": [{"suffix": {"source": "/copy"}}, {"exact": {"type": event["type"]}}]}, event)
    assert expression_matches({"any": [{"exact": {"type": "nope"}}, {"prefix": {"source": "/dynafed"}}]}, event)
    with pytest.raises(ValueError):
        expression_matches({"cesql": "type = 'x'"}, event)


def test_iso8601_durations() -> None:
    assert iso8601_seconds("PT2S") == 2.0 and iso8601_seconds("PT0.5S") == 0.5 and iso8601_seconds("PT1M") == 60
    with pytest.raises(ValueError):
        iso8601_seconds("2s")


def test_the_projects_triggers_load_with_their_delivery_specs() -> None:
    subscribers = {name: f"http://127.0.0.1:1/{name}" for name in ("checksum", "copy", "scrub")}
    subscribers["https://dynafed.example.org/events"] = "http://127.0.0.1:1/receiver"
    triggers = {t.name: t for t in load_triggers(BASE, subscribers=subscribers, dead_letter_sink="http://dls",
                                                 time_scale=0.001)}
    assert {"checksum-requested", "s3-object-created", "copy-requested", "scrub-requested",
            "dynafed-job-events", "dynafed-progress-events"} <= set(triggers)
    checksum = triggers["checksum-requested"].delivery
    assert (checksum.retry, checksum.backoff_policy, checksum.dead_letter_sink) == (5, "exponential", "http://dls")
    assert checksum.backoff_delay_s == pytest.approx(0.002)
    assert triggers["dynafed-progress-events"].delivery.dead_letter_sink is None
    ping = {"type": "dev.knative.sources.ping", "source": "/apis/v1/namespaces/dynafed-fn/pingsources/scrub-nightly"}
    assert triggers["scrub-requested"].matches(ping)
    assert not triggers["scrub-requested"].matches({**ping, "source": "/apis/v1/namespaces/x/pingsources/other"})
    assert not triggers["dynafed-job-events"].matches({"type": "ch.cern.dynafed.copy.requested"})
    assert triggers["copy-requested"].matches({"type": "ch.cern.dynafed.copy.requested"})
