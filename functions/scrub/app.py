"""The scrub function: walk a prefix, re-verify stored checksums, report
mismatches. Built with `dynafed-fn new-function scrub`; everything but the
walk (errors, health, metrics, events, auth, logs) is the shared runtime."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response

from dynafed_contract.scrub import COMPLETED, MISMATCH, PING, REQUESTED, openapi_document, parse_scrub_request
from dynafed_runtime import errors, replies
from dynafed_runtime.app import FunctionContext, FunctionSpec, create_function_app
from dynafed_runtime.config import Config
from dynafed_runtime.events import Transport
from dynafed_runtime.incoming import Incoming
from dynafed_runtime.s3 import ClientFactory
from functions.scrub import service

NAME = "scrub"


def handle(incoming: Incoming, ctx: FunctionContext) -> Response | dict[str, Any]:
    """On demand (JSON or a scrub.requested event) or on schedule (a PingSource
    event whose data is the same request JSON). The summary is the result
    (``scrub.completed``: the reply event of a CloudEvent request); mismatches
    go to ``$K_SINK`` as they are found."""
    if incoming.event_type not in (None, REQUESTED, PING):
        raise errors.InvalidRequest(f"unsupported event type '{str(incoming.event_type)[:80]}'")
    request = parse_scrub_request(incoming.data)
    summary = service.run(request, ctx, mismatch_id=lambda key, algorithm: replies.caused_id(
        incoming, MISMATCH, key, algorithm))
    subject = f"{request.store}/{request.bucket}/{request.prefix}"
    return replies.answer(incoming, ctx, COMPLETED, subject, summary)


SPEC = FunctionSpec(name=NAME, handler=handle, openapi=openapi_document)


def create_app(config: Config | None = None, *, env: Mapping[str, str] | None = None,
               s3: ClientFactory | None = None, sink_transport: Transport | None = None) -> Flask:
    config = config or Config.from_env(os.environ if env is None else env, function=NAME)
    return create_function_app(SPEC, config, s3=s3, sink_transport=sink_transport)
