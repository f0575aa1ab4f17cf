"""The copy function's HTTP face: ``POST /`` copies one object (for at most
one slice), ``POST /cleanup`` aborts orphaned multipart uploads.

**The ndjson answer** (``Accept: application/x-ndjson``): one JSON object per
line, flushed as produced. The copy runs on its own thread; the response
generator (the request's thread) writes a ``started`` line at once, then
every progress update, a heartbeat (the last line repeated with a fresh
``elapsed_s``) whenever ``heartbeat_s`` passes without one — so proxies with
an idle timeout (Knative's ``idleTimeoutSeconds``) see bytes — and finally
one ``result`` line, or one ``error`` line: by then the status line (200) is
long sent, so a failure cannot change it; clients must read the last line.
If the client goes away, the generator is closed: the copy is told to stop
at its next part boundary (its upload stays open, the job resumes on
re-post).

**Draining.** Knative sends SIGTERM on scale-down and gives the pod its grace
period; gunicorn then lets requests in flight finish. A copy slice may have
minutes left, so on SIGTERM every running copy stops taking new parts,
finishes the ones in flight and answers ``in-progress`` — the caller
re-posts and the job resumes on another pod from its multipart checkpoint.
The pod leaves in seconds instead of holding its grace period.
``install_drain`` is called from gunicorn's ``post_worker_init`` hook
(gunicorn.conf.py): it chains a handler in front of gunicorn's own.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from flask import Flask, Response, jsonify, request, stream_with_context

from dynafed_contract import jsonbody
from dynafed_contract.copy import error_line, parse_cleanup_request
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
from functions.copy.jobs import JobTable
from functions.copy.service import NAME, CopyService
from functions.copy.settings import CopySettings

#: set once the worker received SIGTERM (process-wide)
DRAINING = threading.Event()


def install_drain(worker: Any = None) -> None:
    """Chain a SIGTERM handler that sets DRAINING before gunicorn's own."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        DRAINING.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


NDJSON = "application/x-ndjson"
Work = Callable[[Callable[[dict[str, Any]], None], threading.Event], dict[str, Any]]

_RESULT = object()
_ERROR = object()


def _dump(line: dict[str, Any]) -> bytes:
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def ndjson_response(job_id: str, work: Work, *, first_line: dict[str, Any], heartbeat_s: float,
                    on_error: Callable[[errors.FunctionError], None] | None = None) -> Response:
    """A streamed response running ``work(publish, cancel)`` on its own thread."""
    lines: queue.Queue[Any] = queue.Queue()
    cancel = threading.Event()

    def target() -> None:
        try:
            result = work(lines.put, cancel)
        except BaseException as exc:  # rendered as the error line
            lines.put((_ERROR, exc))
        else:
            lines.put((_RESULT, result))

    thread = threading.Thread(target=target, name=f"copy-{job_id[:24]}", daemon=True)

    def generate() -> Iterator[bytes]:
        thread.start()
        last = first_line
        started = time.monotonic()
        try:
            yield _dump(first_line)
            while True:
                try:
                    item = lines.get(timeout=heartbeat_s)
                except queue.Empty:
                    yield _dump({**last, "elapsed_s": round(time.monotonic() - started, 3)})
                    continue
                if isinstance(item, tuple) and item and item[0] is _RESULT:
                    yield _dump(item[1])
                    return
                if isinstance(item, tuple) and item and item[0] is _ERROR:
                    error = errors.translate(item[1])
                    if on_error is not None:
                        on_error(error)
                    yield _dump(error_line(job_id, errors.problem(error)))
                    return
                last = item
                yield _dump(item)
        finally:
            if thread.is_alive():
                cancel.set()  # the client left, or the server is closing the response

    response = Response(stream_with_context(generate()), mimetype=NDJSON)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx-style proxies: do not buffer
    return response



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
