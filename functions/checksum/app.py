"""The checksum function: ``POST /`` → checksums of an object in one pass."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response

from dynafed_contract import events
from dynafed_contract.checksum import ChecksumRequest, parse_checksum_request, parse_s3_notification
from dynafed_contract.openapi import checksum_document
from dynafed_runtime import errors, replies
from dynafed_runtime.app import FunctionContext, FunctionSpec, create_function_app
from dynafed_runtime.config import Config, ConfigError
from dynafed_runtime.events import Transport
from dynafed_runtime.hashing import ReadTuning
from dynafed_runtime.incoming import Incoming
from dynafed_runtime.s3 import ClientFactory
from functions.checksum import service

NAME = "checksum"
MAX_NOTIFICATION_RECORDS = 100
DEFAULT_CHUNK_BYTES = 8 * 1024**2
#: parallel ranged GETs for adler32/crc32/crc32c-only requests; 1 by default:
#: next to its S3 server they cost 30-100 % more worker CPU per GiB for no
#: gain in wall time (docs/performance.md); raise it where one stream's
#: latency, not the server, bounds the rate (a distant store)
DEFAULT_RANGE_STREAMS = 1


#: CloudEvent type prefixes of S3 bucket notifications (Ceph RGW with
#: cloudevents=true sends ``com.amazonaws.ObjectCreated:Put`` with one record
#: as data; MinIO-style sources ``com.amazonaws.s3.s3:ObjectCreated:*``).
S3_NOTIFICATION_TYPES = ("com.amazonaws.ObjectCreated:", "com.amazonaws.s3.s3:ObjectCreated:")


def handle(incoming: Incoming, ctx: FunctionContext) -> Response | dict[str, Any]:
    """JSON request → the JSON result; CloudEvent → one reply event (see
    ``dynafed_runtime.replies``)."""
    notification = _s3_notification(incoming)
    if notification is not None:
        records = notification["Records"]
        if isinstance(records, list) and len(records) > MAX_NOTIFICATION_RECORDS:
            # refused, not truncated: a silently dropped record is an object never checksummed
            raise errors.InvalidRequest(f"S3 notification with {len(records)} records; at most "
                                        f"{MAX_NOTIFICATION_RECORDS} per request")
        store = ctx.config.extra.get("NOTIFICATION_STORE", "default")
        requests = parse_s3_notification(notification, store)
        if incoming.is_cloudevent:
            return _notification_event(incoming, requests, ctx)
        return {"results": [_answer(incoming, r, ctx) for r in requests]}
    if incoming.event_type not in (None, events.CHECKSUM_REQUESTED):
        raise errors.InvalidRequest(f"unsupported event type '{str(incoming.event_type)[:80]}'")
    return _answer(incoming, parse_checksum_request(incoming.data), ctx)


def _notification_event(incoming: Incoming, requests: list[ChecksumRequest],
                        ctx: FunctionContext) -> Response | dict[str, Any]:
    """A notification that came as a CloudEvent: one object, one reply event."""
    if not requests:
        return replies.no_reply()  # e.g. ObjectRemoved: nothing to checksum
    if len(requests) > 1:
        # One reply event carries one result. Ceph RGW and AWS send one record
        # per event; a batch is refused (400: dead-lettered, not lost) rather
        # than half answered.
        raise errors.InvalidRequest(f"S3 notification CloudEvent naming {len(requests)} created objects; "
                                    "send one record per event (or post the document as plain JSON)")
    return _answer(incoming, requests[0], ctx)


def _s3_notification(incoming: Incoming) -> dict[str, Any] | None:
    """The notification document (``{"Records": [...]}``) if this is one."""
    data = incoming.data
    if isinstance(data, dict) and "Records" in data:
        return data
    if incoming.event_type and incoming.event_type.startswith(S3_NOTIFICATION_TYPES):
        if isinstance(data, dict) and "s3" in data:
            return {"Records": [data]}
        raise errors.InvalidRequest("S3 notification event without an s3 record")
    return None


def _answer(incoming: Incoming, request: ChecksumRequest, ctx: FunctionContext) -> Any:
    """Compute, then deliver the result by the runtime's reply policy."""
    client = ctx.client(request.object.store)
    bytes_read = ctx.metrics.bytes.labels(NAME, "read")
    tuning = ReadTuning(streams=int(ctx.config.setting("RANGE_STREAMS", DEFAULT_RANGE_STREAMS)))
    result = service.compute(request, client, chunk_size=int(ctx.config.setting("CHUNK_BYTES", DEFAULT_CHUNK_BYTES)),
                             on_bytes=bytes_read.inc, tuning=tuning)
    subject = f"{request.object.store}/{request.object.bucket}/{request.object.key}"
    return replies.answer(incoming, ctx, events.CHECKSUM_COMPUTED, subject, result)


SPEC = FunctionSpec(name=NAME, handler=handle, openapi=checksum_document)


def create_app(config: Config | None = None, *, env: Mapping[str, str] | None = None,
               s3: ClientFactory | None = None, sink_transport: Transport | None = None) -> Flask:
    """App factory. Tests inject ``s3`` (e.g. moto clients) and a recording sink."""
    config = config or Config.from_env(os.environ if env is None else env, function=NAME)
    _check_settings(config)
    return create_function_app(SPEC, config, s3=s3, sink_transport=sink_transport)


def _check_settings(config: Config) -> None:
    """Validate this function's own settings at start-up, not on the first request."""
    if config.setting("CHUNK_BYTES", DEFAULT_CHUNK_BYTES) < 1:
        raise ConfigError("DYNAFED_FN_CHECKSUM_CHUNK_BYTES must be a positive number of bytes")
    if config.setting("RANGE_STREAMS", DEFAULT_RANGE_STREAMS) < 1:
        raise ConfigError("DYNAFED_FN_CHECKSUM_RANGE_STREAMS must be at least 1")
