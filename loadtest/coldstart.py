"""Cold starts: wait until a Knative Service is at zero, then time the
first byte of one request.

The request goes out the moment zero is confirmed, so its time to first
byte covers what a caller meets after idleness: the activator holding the
request, a pod scheduled, the container started, gunicorn imported, the
readiness probe passed, and the work itself (one small, cached checksum or
one small server-side copy: milliseconds when warm, measured too).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from loadtest.targets import Endpoint

CSV_COLUMNS = ("t", "function", "service", "waited_for_zero_s", "ttfb_s", "total_s", "status", "ok", "phase")


@dataclasses.dataclass(frozen=True)
class ColdStart:
    """One request after zero replicas."""

    t: float
    function: str
    service: str
    #: how long the Service took to reach zero before the probe (probes only)
    waited_for_zero_s: float | None
    ttfb_s: float | None
    total_s: float | None
    status: int
    ok: bool
    #: "probe" (sent by the runner) or "load" (found in the load's requests)
    phase: str = "probe"

    def row(self) -> tuple[Any, ...]:
        def fmt(v: float | None) -> str:
            return "" if v is None else f"{v:.4f}"
        return (f"{self.t:.3f}", self.function, self.service, fmt(self.waited_for_zero_s), fmt(self.ttfb_s),
                fmt(self.total_s), self.status, int(self.ok), self.phase)


def timed_post(endpoint: Endpoint, body: Mapping[str, Any], *, timeout: float,
               session: requests.Session | None = None,
               clock: Callable[[], float] = time.perf_counter) -> tuple[float | None, float | None, int]:
    """POST ``body`` to the function; (seconds to first body byte, seconds to
    the end, HTTP status). Connection failures give (None, None, 0)."""
    http = session or requests.Session()
    began = clock()
    try:
        with http.post(f"{endpoint.url}/", json=dict(body), headers=endpoint.headers(), stream=True,
                       timeout=(timeout, timeout)) as response:
            chunks = response.iter_content(chunk_size=1)
            first = next(chunks, b"")
            ttfb = clock() - began if first else None
            for _ in response.iter_content(chunk_size=65536):
                pass
            return ttfb, clock() - began, response.status_code
    except requests.RequestException:
        return None, None, 0
    finally:
        if session is None:
            http.close()


def probe(function: str, service: str, endpoint: Endpoint, body: Mapping[str, Any], *,
          waited: float | None, timeout: float = 300.0) -> ColdStart:
    """Send one request now and time it."""
    t = time.time()
    ttfb, total, status = timed_post(endpoint, body, timeout=timeout)
    return ColdStart(t, function, service, waited, ttfb, total, status, ok=status == 200)


def cold_starts_in_load(requests_rows: Sequence[Mapping[str, Any]], replica_rows: Sequence[Mapping[str, Any]],
                        services: Mapping[str, str], *, slack: float = 1.0) -> list[ColdStart]:
    """Cold starts met by the load itself: for each time a Service was seen at
    zero, the first request to its function that started after that sample
    and before any sample showing a ready pod again.

    ``requests_rows``: requests.csv rows (start, function, ttfb_ms, response_ms, ok);
    ``replica_rows``: replicas.csv rows (t, service, ready, pods, desired, error)
    with numeric fields; ``services``: function -> Service name. ``slack``
    (a sampling period) admits a request that started just before the last
    zero sample: the API had not shown its pending pod yet.
    """
    out: list[ColdStart] = []
    for function, service in services.items():
        instants: dict[float, list[Mapping[str, Any]]] = {}
        for row in replica_rows:
            if row["service"] == service:
                instants.setdefault(row["t"], []).append(row)
        timeline = []  # (t, at_zero) per sampled instant
        for t, rows in sorted(instants.items()):
            if any(r.get("error") for r in rows):
                continue
            zero = all((r.get("ready") or 0) == 0 and (r.get("pods") or 0) == 0 and (r.get("desired") or 0) == 0
                       for r in rows)
            timeline.append((t, zero))
        calls = sorted((r for r in requests_rows if r["function"] == function), key=lambda r: r["start"])
        i = 0
        for index, (t, zero) in enumerate(timeline):
            if not zero or (index + 1 < len(timeline) and timeline[index + 1][1]):
                continue  # only the last zero sample of each zero episode
            while i < len(calls) and calls[i]["start"] < t - slack:
                i += 1
            if i >= len(calls):
                break
            call = calls[i]
            ttfb = call.get("ttfb_ms")
            out.append(ColdStart(call["start"], function, service, None,
                                 (ttfb if ttfb is not None else call["response_ms"]) / 1000,
                                 call["response_ms"] / 1000, 200 if call["ok"] else 0, bool(call["ok"]), "load"))
    return sorted(out, key=lambda c: c.t)
