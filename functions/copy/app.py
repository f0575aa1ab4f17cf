"""The copy function: ``POST /`` copies one object (for at most one slice),
``POST /cleanup`` aborts orphaned multipart uploads."""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request

from dynafed_contract import jsonbody
from dynafed_contract.copy import parse_cleanup_request
from dynafed_contract.openapi import copy_document
from dynafed_runtime import errors
from dynafed_runtime.app import MAX_BODY_BYTES, FunctionContext, FunctionSpec, create_function_app
from dynafed_runtime.body import read_body
from dynafed_runtime.config import Config, ConfigError
from dynafed_runtime.events import Transport
from dynafed_runtime.incoming import Incoming, check_content_type
from dynafed_runtime.s3 import ClientFactory
from functions.copy import delivery
from functions.copy.cleanup import abort_older
from functions.copy.drain import DRAINING
from functions.copy.jobs import JobTable
from functions.copy.ndjson import NDJSON, ndjson_response
from functions.copy.service import NAME, CopyService
from functions.copy.settings import CopySettings


def wants_ndjson() -> bool:
    """The caller prefers ``application/x-ndjson`` to JSON (ties go to JSON)."""
    best = request.accept_mimetypes.best_match(["application/json", NDJSON])
    return best == NDJSON and request.accept_mimetypes[NDJSON] > request.accept_mimetypes["application/json"]


def make_handler(settings: CopySettings, jobs: JobTable, *, event_slice_seconds: float) -> Any:
    """The ``POST /`` handler; its CopyService is built on first use (it needs
    the app's FunctionContext, which exists only once the app does).
    CloudEvent requests take ``delivery.handle_event`` (never streamed)."""
    lock = threading.Lock()
    services: list[CopyService] = []

    def handle(incoming: Incoming, ctx: FunctionContext) -> Response | dict[str, Any]:
        with lock:
            if not services:
                service = CopyService(ctx, settings, jobs, DRAINING)
                services.extend([service, delivery.event_service(service, event_slice_seconds)])
        service, for_events = services
        if incoming.is_cloudevent:
            return delivery.handle_event(for_events, incoming, ctx)

        def job_ids() -> Any:  # the job's started/completed/failed ids follow its id
            return ctx.events.scope(event_id=lambda event_type, subject: delivery.job_event_id(
                ctx, event_type, subject))

        with job_ids():
            prepared = service.prepare(incoming)
        if not wants_ndjson():
            with job_ids():
                return service.execute(prepared)
        first = {"type": "started", "job_id": prepared.job_id, "strategy": prepared.strategy.value,
                 "total": prepared.total}

        def work(publish: Any, cancel: threading.Event) -> dict[str, Any]:
            with job_ids():  # this runs in the stream's own thread
                return service.execute(prepared, publish=publish, cancel=cancel)

        def count_error(error: errors.FunctionError) -> None:
            ctx.metrics.errors.labels(NAME, error.code.value).inc()

        return ndjson_response(prepared.job_id, work, first_line=first, heartbeat_s=settings.heartbeat_seconds,
                               on_error=count_error)

    return handle


def create_app(config: Config | None = None, *, env: Mapping[str, str] | None = None,
               s3: ClientFactory | None = None, sink_transport: Transport | None = None) -> Flask:
    """App factory. Tests inject ``s3`` (e.g. moto clients) and a recording sink."""
    config = config or Config.from_env(os.environ if env is None else env, function=NAME)
    settings = CopySettings.from_config(config)
    event_slice = float(config.setting("EVENT_SLICE_SECONDS", delivery.DEFAULT_EVENT_SLICE_SECONDS))
    if event_slice < 0:
        raise ConfigError("DYNAFED_FN_COPY_EVENT_SLICE_SECONDS must be >= 0")
    jobs = JobTable(ttl=settings.checkpoint_ttl)
    spec = FunctionSpec(name=NAME, handler=make_handler(settings, jobs, event_slice_seconds=event_slice),
                        openapi=copy_document)
    app = create_function_app(spec, config, s3=s3, sink_transport=sink_transport)
    ctx: FunctionContext = app.extensions["dynafed_fn"]

    @app.post("/cleanup")
    def _cleanup() -> Response:
        check_content_type(dict(request.headers))
        body = jsonbody.loads(read_body(request, MAX_BODY_BYTES) or b"null")  # ContractViolation: a 400
        cleanup = parse_cleanup_request(body)
        aborted = abort_older(ctx.client(cleanup.store), cleanup.bucket, older_than_s=cleanup.older_than_s,
                              prefix=cleanup.prefix, dry_run=cleanup.dry_run)
        return jsonify({"store": cleanup.store, "bucket": cleanup.bucket, "dry_run": cleanup.dry_run,
                        "aborted": aborted})

    return app
