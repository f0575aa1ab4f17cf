"""The checksum function: ``POST /`` → checksums of an object in one pass."""
from __future__ import annotations

import os
from typing import Any, Mapping

from flask import Flask

from functions.contract import events
from functions.contract.checksum import ChecksumRequest, parse_checksum_request, parse_s3_notification
from functions.contract.openapi import checksum_document
from functions.runtime import errors
from functions.runtime.app import FunctionContext, FunctionSpec, create_function_app
from functions.runtime.config import Config
from functions.runtime.events import Transport
from functions.runtime.incoming import Incoming
from functions.runtime.s3 import ClientFactory
from functions.checksum import service

NAME = "checksum"
MAX_NOTIFICATION_RECORDS = 100


def handle(incoming: Incoming, ctx: FunctionContext) -> dict[str, Any]:
    if incoming.event_type not in (None, events.CHECKSUM_REQUESTED) and not _is_s3_notification(incoming.data):
        raise errors.InvalidRequest(f"unsupported event type '{str(incoming.event_type)[:80]}'")
    if _is_s3_notification(incoming.data):
        store = ctx.config.extra.get("NOTIFICATION_STORE", "default")
        requests = parse_s3_notification(incoming.data, store)
        return {"results": [_run(r, ctx) for r in requests[:MAX_NOTIFICATION_RECORDS]]}
    return _run(parse_checksum_request(incoming.data), ctx)


def _is_s3_notification(data: Any) -> bool:
    return isinstance(data, dict) and "Records" in data


def _run(request: ChecksumRequest, ctx: FunctionContext) -> dict[str, Any]:
    client = ctx.client(request.object.store)
    bytes_read = ctx.metrics.bytes.labels(NAME, "read")
    result = service.compute(request, client, chunk_size=int(ctx.config.setting("CHUNK_BYTES", 8 * 1024**2)),
                             on_bytes=bytes_read.inc)
    ctx.events.emit(events.CHECKSUM_COMPUTED, f"{request.object.store}/{request.object.bucket}/{request.object.key}",
                    result)
    return result


SPEC = FunctionSpec(name=NAME, handler=handle, openapi=checksum_document)


def create_app(config: Config | None = None, *, env: Mapping[str, str] | None = None,
               s3: ClientFactory | None = None, sink_transport: Transport | None = None) -> Flask:
    """App factory. Tests inject ``s3`` (e.g. moto clients) and a recording sink."""
    config = config or Config.from_env(os.environ if env is None else env, function=NAME)
    return create_function_app(SPEC, config, s3=s3, sink_transport=sink_transport)
