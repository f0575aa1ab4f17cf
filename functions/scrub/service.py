"""The scrub walk: list a prefix, recompute each object's stored checksums,
report mismatches (as events and in the summary). Bounded per request by
``max_objects`` and a time slice; ``next_start_after`` resumes the walk."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from dynafed_contract.scrub import MISMATCH, ScrubRequest
from dynafed_runtime import errors
from dynafed_runtime.app import FunctionContext
from dynafed_runtime.hashing import digest_object
from dynafed_runtime.objects import head_object

log = logging.getLogger("dynafed_fn.scrub")
MAX_REPORTED_MISMATCHES = 1000


#: The id of a mismatch event, from (key, algorithm); None = random.
MismatchId = Callable[[str, str], str | None]


def run(request: ScrubRequest, ctx: FunctionContext, *, mismatch_id: MismatchId | None = None) -> dict[str, Any]:
    """Walk one slice; the summary. Mismatch events go to ``$K_SINK``; the
    caller delivers the summary (``scrub.completed``)."""
    started = time.monotonic()
    slice_s = ctx.config.setting("SLICE_SECONDS", 240.0)
    client = ctx.client(request.store)
    summary: dict[str, Any] = {"store": request.store, "bucket": request.bucket, "prefix": request.prefix,
                               "scanned": 0, "verified": 0, "mismatched": 0, "unverifiable": 0, "errors": 0,
                               "mismatches": [], "complete": True, "next_start_after": None}
    for key in _keys(client, request):
        if summary["scanned"] >= request.max_objects or time.monotonic() - started > slice_s:
            summary["complete"] = False
            break
        summary["scanned"] += 1
        summary["next_start_after"] = key
        _scrub_one(client, request, key, summary, ctx, mismatch_id or (lambda key, algorithm: None))
    if summary["complete"]:
        summary["next_start_after"] = None
    summary["elapsed_s"] = round(time.monotonic() - started, 6)
    return summary


def _keys(client: Any, request: ScrubRequest) -> Any:
    kwargs: dict[str, Any] = {"Bucket": request.bucket, "Prefix": request.prefix}
    if request.start_after:
        kwargs["StartAfter"] = request.start_after
    try:
        for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
            for item in page.get("Contents", []):
                yield item["Key"]
    except errors.FunctionError:
        raise
    except Exception as exc:
        raise errors.translate(exc, what=f"s3://{request.bucket}/{request.prefix}") from None


def _scrub_one(client: Any, request: ScrubRequest, key: str, summary: dict[str, Any], ctx: FunctionContext,
               mismatch_id: MismatchId) -> None:
    try:
        info = head_object(client, request.bucket, key)
        stored = {a: v for a, v in info.stored.items() if request.algorithms is None or a in request.algorithms}
        if not stored:
            summary["unverifiable"] += 1
            return
        computed = digest_object(client, info, list(stored), on_bytes=ctx.metrics.bytes.labels("scrub", "read").inc)
    except errors.FunctionError as exc:
        # One unreadable object does not stop the walk; it is counted and logged.
        summary["errors"] += 1
        log.warning("scrub could not verify an object", extra={"key": key, "code": exc.code.value})
        return
    bad = {a: (stored[a], computed[a]) for a in stored if computed[a] != stored[a]}
    if not bad:
        summary["verified"] += 1
        return
    summary["mismatched"] += 1
    for algorithm, (stored_value, computed_value) in bad.items():
        mismatch = {"store": request.store, "bucket": request.bucket, "key": key, "algorithm": algorithm,
                    "stored": stored_value, "computed": computed_value, "size": info.size, "etag": info.etag}
        if len(summary["mismatches"]) < MAX_REPORTED_MISMATCHES:
            summary["mismatches"].append(mismatch)
        ctx.events.emit(MISMATCH, f"{request.store}/{request.bucket}/{key}", mismatch,
                        event_id=mismatch_id(key, algorithm))
