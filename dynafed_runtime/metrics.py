"""Prometheus metrics of one function app (its own registry)."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "FunctionMetrics"]


class FunctionMetrics:
    def __init__(self, function: str) -> None:
        self.registry = CollectorRegistry()
        self.function = function
        self.requests = Counter("dynafed_fn_requests", "Requests handled", ["function", "method", "status"],
                                registry=self.registry)
        self.errors = Counter("dynafed_fn_errors", "Errors reported to callers, by code", ["function", "code"],
                              registry=self.registry)
        self.bytes = Counter("dynafed_fn_bytes", "Object bytes processed", ["function", "direction"],
                             registry=self.registry)
        self.duration = Histogram(
            "dynafed_fn_request_duration_seconds", "Request duration", ["function"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.events_dropped = Counter("dynafed_fn_events_dropped", "CloudEvents not delivered", ["function"],
                                      registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
