"""The base app factory every function builds on.

A function supplies a ``FunctionSpec`` (its name, its ``POST /`` handler and
its OpenAPI document); ``create_function_app`` adds everything shared: auth,
request ids, JSON logs, problem+json errors, back-pressure, ``/healthz``,
``/readyz``, ``/metrics``, ``/openapi.json`` and the event emitter.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, jsonify, request

from dynafed_contract.bearer import bearer_matches, presented_bearer
from dynafed_runtime import errors
from dynafed_runtime.body import read_body
from dynafed_runtime.config import Config
from dynafed_runtime.digests import IMPLEMENTATIONS
from dynafed_runtime.events import EventEmitter, Transport, http_transport
from dynafed_runtime.health import Readiness
from dynafed_runtime.incoming import Incoming, is_cloudevent, parse_incoming
from dynafed_runtime.logs import configure_logging, request_id
from dynafed_runtime.metrics import CONTENT_TYPE_LATEST, FunctionMetrics
from dynafed_runtime.read_deadline import release_read_deadline
from dynafed_runtime.replies import delivery_status
from dynafed_runtime.s3 import ClientFactory, S3Clients, make_s3_client

log = logging.getLogger("dynafed_fn.app")

MAX_BODY_BYTES = 64 * 1024
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


@dataclasses.dataclass
class FunctionContext:
    """What a handler gets besides the request: collaborators, all injectable."""

    config: Config
    s3: S3Clients
    events: EventEmitter
    metrics: FunctionMetrics

    def client(self, store_name: str) -> Any:
        """The S3 client of a named store (UnknownStore if not configured)."""
        return self.s3(self.config.store(store_name))


Handler = Callable[[Incoming, FunctionContext], Response | dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: Handler
    openapi: Callable[[], dict[str, Any]]
    #: ``POST /`` bodies larger than this are refused (413). Requests are small;
    #: an event source's notifications may not be (a filer entry lists every chunk).
    max_body_bytes: int = MAX_BODY_BYTES


def create_function_app(spec: FunctionSpec, config: Config, *, s3: ClientFactory | None = None,
                        sink_transport: Transport | None = None) -> Flask:
    """Build the Flask app of one function. ``s3`` and ``sink_transport`` are
    injection points for tests (moto clients, a recording sink)."""
    configure_logging(config.service, config.revision, config.log_level)
    errors.register_secrets(config.auth_token, *(secret for store in config.stores.values()
                                                 for secret in (store.secret_access_key, store.session_token)))
    app = Flask(spec.name)
    app.config["MAX_CONTENT_LENGTH"] = spec.max_body_bytes
    metrics = FunctionMetrics(spec.name)
    verify = config.trust.verify()  # certifi, or certifi + DYNAFED_FN_CA_BUNDLE + X509_CERT_DIR
    clients = S3Clients(config.stores, s3, pool_size=config.s3_pool_size, max_attempts=config.s3_max_attempts,
                        verify=verify)
    emitter = EventEmitter(
        config.sink,
        source=f"/dynafed-fn/{config.service}",
        extensions=config.ce_extensions,
        # an https sink signed by a site CA is trusted like any other outgoing https
        transport=sink_transport or (http_transport(verify) if config.sink else None),
        on_drop=lambda reason: metrics.events_dropped.labels(spec.name).inc(),
    )
    ctx = FunctionContext(config=config, s3=clients, events=emitter, metrics=metrics)
    probe_factory = s3 or (lambda store: make_s3_client(store, max_attempts=1, connect_timeout=1.0,
                                                         read_timeout=2.0, verify=verify))
    readiness = Readiness(config.stores, probe_factory, cache_s=config.ready_cache_s)
    inflight = threading.BoundedSemaphore(config.max_inflight)
    app.extensions["dynafed_fn"] = ctx

    @app.before_request
    def _start() -> Response | None:
        rid = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
        g.request_id = rid
        g.token = request_id.set(rid)
        g.started = time.perf_counter()
        if request.path not in OPEN_PATHS and config.auth_token:
            _authorize(config.auth_token)
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "-")
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        if request.path not in OPEN_PATHS:
            metrics.requests.labels(spec.name, request.method, str(response.status_code)).inc()
            metrics.duration.labels(spec.name).observe(elapsed)
            log.info("request", extra={"method": request.method, "path": request.path,
                                       "status": response.status_code, "elapsed_s": round(elapsed, 6)})
        return response

    @app.errorhandler(Exception)
    def _error(exc: Exception) -> Response:
        # A CloudEvent delivery's status decides whether Eventing retries it.
        return problem_response(exc, metrics=metrics, function=spec.name,
                                cloudevent=request.path == "/" and is_cloudevent(dict(request.headers)))

    @app.post("/")
    def _invoke() -> Response:
        # The whole body first (within the worker's read deadline), a work slot
        # only then: a slow or unfinished body must never hold one (issue 13, class 2).
        body = _read_request_body(spec.max_body_bytes)
        if not inflight.acquire(blocking=False):
            raise errors.TooManyRequests("function is saturated; retry later", headers={"Retry-After": "1"})
        release = True
        try:
            incoming = parse_incoming(dict(request.headers), body)
            result = spec.handler(incoming, ctx)
            if isinstance(result, Response):
                if result.is_streamed:
                    # The semaphore is released when the stream ends.
                    result.call_on_close(inflight.release)
                    release = False
                return result
            return jsonify(result)
        finally:
            if release:
                inflight.release()

    @app.get("/healthz")
    def _healthz() -> Response:
        return jsonify({"status": "ok", "service": config.service, "revision": config.revision,
                        "function": spec.name, "digests": IMPLEMENTATIONS})

    @app.get("/readyz")
    def _readyz() -> Response:
        ready, stores = readiness.check()
        if not ready:
            exc = errors.UpstreamUnavailable("a configured store is unreachable")
            response = jsonify({**errors.problem(exc), "stores": stores})
            response.status_code = 503
            response.mimetype = "application/problem+json"
            return response
        return jsonify({"status": "ready", "stores": stores})

    @app.get("/metrics")
    def _metrics() -> Response:
        return Response(metrics.render(), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json")
    def _openapi() -> Response:
        return jsonify(spec.openapi())

    return app


def _read_request_body(limit: int) -> bytes:
    """The request body; 408 when it does not arrive by the worker's deadline
    (dynafed_runtime/worker.py), which is lifted once the body is in."""
    try:
        return read_body(request, limit)
    except Exception as exc:
        # Werkzeug reports a failed read as ClientDisconnected (400); the deadline is its cause
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, TimeoutError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        raise errors.RequestTimeout("the request body did not arrive in time",
                                    headers={"Connection": "close"}) from None
    finally:
        release_read_deadline(request.environ)


def _authorize(token: str) -> None:
    if not bearer_matches(presented_bearer(request.headers.get("Authorization")), token):
        raise errors.Unauthorized("missing or invalid bearer token",
                                  headers={"WWW-Authenticate": 'Bearer realm="dynafed-fn"'})


def problem_response(exc: BaseException, *, metrics: FunctionMetrics | None = None,
                     function: str = "", cloudevent: bool = False) -> Response:
    """Render any exception as problem+json (the single error renderer).
    ``cloudevent``: the request was a CloudEvent, so the status follows the
    delivery rules of ``replies.delivery_status`` (the body keeps its code)."""
    error = errors.translate(exc)
    if isinstance(error, errors.InternalError) or error.status >= 500:
        log.error("request failed: %s", error.code.value, exc_info=exc if isinstance(error, errors.InternalError)
                  else None, extra={"code": error.code.value, "detail": errors.scrub(error.detail)})
    if metrics is not None:
        metrics.errors.labels(function, error.code.value).inc()
    body = errors.problem(error, instance=g.get("request_id"))
    if cloudevent:
        body["status"] = delivery_status(error)
    response = jsonify(body)
    response.status_code = body["status"]
    response.mimetype = "application/problem+json"
    for name, value in error.headers.items():
        response.headers[name] = value
    return response
