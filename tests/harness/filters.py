"""Trigger filters evaluated as Knative eventing evaluates them, and Triggers
read from the project's own manifests.

Semantics from knative/eventing knative-v1.22.0:

* ``spec.filters`` (the SubscriptionsAPI dialects, on by default since 1.12 and
  no longer behind a flag in 1.22): ``pkg/eventfilter/subscriptionsapi``:
  ``exactFilter.Filter`` / ``prefixFilter.Filter`` / ``suffixFilter.Filter``
  fail when the attribute is missing and compare the string value;
  ``allFilter``, ``anyFilter``, ``notFilter`` combine; every entry of
  ``spec.filters`` must pass (an implicit ``all``).
* ``spec.filter.attributes`` (the legacy filter): each attribute equals
  exactly (``pkg/eventfilter/attributes``); ``filters`` wins when both are
  set (``Handler.filterEvent`` in ``pkg/broker/filter/filter_handler.go``).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

Attributes = Mapping[str, Any]


def _literal(attributes: Attributes, arg: Mapping[str, str], test: Callable[[str, str], bool]) -> bool:
    for name, expected in arg.items():
        if name not in attributes or attributes[name] is None:
            return False
        if not test(str(attributes[name]), expected):
            return False
    return True


def expression_matches(expr: Mapping[str, Any], attributes: Attributes) -> bool:
    """One SubscriptionsAPI filter expression (exact/prefix/suffix/all/any/not)."""
    ((dialect, arg),) = expr.items()
    if dialect == "exact":
        return _literal(attributes, arg, lambda value, want: value == want)
    if dialect == "prefix":
        return _literal(attributes, arg, str.startswith)
    if dialect == "suffix":
        return _literal(attributes, arg, str.endswith)
    if dialect == "all":
        return all(expression_matches(e, attributes) for e in arg)
    if dialect == "any":
        return any(expression_matches(e, attributes) for e in arg)
    if dialect == "not":
        return not expression_matches(arg, attributes)
    raise ValueError(f"filter dialect {dialect!r} is not supported by the harness")


_DURATION = re.compile(r"^P(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)$")


def iso8601_seconds(value: str) -> float:
    """``PT2S`` / ``PT0.5S`` / ``PT1M`` → seconds (the forms the manifests use)."""
    match = _DURATION.match(value)
    if not match or value in ("P", "PT"):
        raise ValueError(f"unsupported ISO 8601 duration {value!r}")
    return (float(match["h"] or 0) * 3600) + (float(match["m"] or 0) * 60) + float(match["s"] or 0)


@dataclasses.dataclass(frozen=True)
class Delivery:
    """A Trigger's ``spec.delivery`` (``pkg/apis/duck/v1`` DeliverySpec)."""

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay_s: float = 0.0
    dead_letter_sink: str | None = None
    #: ``binary`` (the dispatcher's default for an event) or ``json`` (structured)
    format: str = "binary"

    def backoff_s(self, attempt_index: int) -> float:
        """Pause before retry ``attempt_index`` (0 = the first retry), as
        ``RetryConfigFromDeliverySpec`` computes it: exponential ``delay * 2^n``,
        linear ``delay * n`` (go-retryablehttp passes n starting at 0)."""
        if self.backoff_policy == "linear":
            return self.backoff_delay_s * attempt_index
        return self.backoff_delay_s * (2 ** attempt_index)


@dataclasses.dataclass(frozen=True)
class Trigger:
    name: str
    subscriber: str
    filters: tuple[Mapping[str, Any], ...] = ()
    attributes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    delivery: Delivery = Delivery()

    def matches(self, attributes: Attributes) -> bool:
        if self.filters:
            return all(expression_matches(e, attributes) for e in self.filters)
        return all(str(attributes.get(k)) == v for k, v in self.attributes.items())


def load_triggers(directory: Path, *, subscribers: Mapping[str, str], dead_letter_sink: str | None,
                  time_scale: float = 1.0, delivery_format: str = "binary") -> list[Trigger]:
    """The Triggers of ``directory`` (``trigger-*.yaml``), their subscribers
    mapped to local URLs: ``subscribers`` maps a Service ref name or a
    subscriber URI to a loopback URL; every dead-letter URI becomes
    ``dead_letter_sink``. Backoff delays are multiplied by ``time_scale`` so a
    test keeps the policy's shape without its minutes."""
    triggers = []
    for path in sorted(directory.glob("trigger-*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = doc["spec"]
        subscriber = spec["subscriber"]
        key = subscriber["ref"]["name"] if subscriber.get("ref") else subscriber["uri"]
        if key not in subscribers:
            raise KeyError(f"{path.name}: no local subscriber for {key!r}")
        raw = spec.get("delivery") or {}
        delivery = Delivery(
            retry=int(raw.get("retry", 0)),
            backoff_policy=raw.get("backoffPolicy", "exponential"),
            backoff_delay_s=iso8601_seconds(raw["backoffDelay"]) * time_scale if "backoffDelay" in raw else 0.0,
            dead_letter_sink=dead_letter_sink if raw.get("deadLetterSink") else None,
            format=delivery_format if "format" not in raw else raw["format"],
        )
        triggers.append(Trigger(name=doc["metadata"]["name"], subscriber=subscribers[key],
                                filters=tuple(spec.get("filters") or ()),
                                attributes=dict((spec.get("filter") or {}).get("attributes") or {}),
                                delivery=delivery))
    return triggers
