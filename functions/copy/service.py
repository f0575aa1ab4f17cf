"""The copy domain, request by request. No Flask here.

``prepare`` does everything that can still change the HTTP status (parse,
look up stores, HEAD source and destination, idempotency and overwrite
rules) and raises the problem otherwise. ``execute`` does the work (for at
most one slice), publishes progress, emits exactly one terminal event when
the job ends (completed or failed; an ``in-progress`` answer emits none) and
returns the result body.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from dynafed_contract import events
from dynafed_contract.checksum import ObjectRef
from dynafed_contract.copy import (
    ALREADY_PRESENT,
    IN_PROGRESS,
    JOB_ID_METADATA,
    SOURCE_ETAG_METADATA,
    CopyRequest,
    Strategy,
    UrlDestination,
    UrlSource,
    copy_result,
    failed_data,
    parse_copy_request,
    started_data,
)
from dynafed_contract.fields import is_job_id
from dynafed_runtime import errors
from dynafed_runtime.app import FunctionContext
from dynafed_runtime.incoming import Incoming
from dynafed_runtime.objects import head_object
from dynafed_runtime.stores import Store
from functions.copy import server_side, verify
from functions.copy.engine import CopyRun, Outcome, StartInfo, choose_strategy, put_empty
from functions.copy.http_source import HttpSource
from functions.copy.jobs import (
    JOB_REQUEST_METADATA,
    Bindings,
    JobTable,
    Registry,
    check_destination,
    check_overwrite,
    head_destination,
    present_checksum,
    request_identity,
)
from functions.copy.parts import plan_parts
from functions.copy.progress import ProgressReporter, event_publisher
from functions.copy.push import HttpDestination, copy_push, present_at
from functions.copy.settings import CopySettings
from functions.copy.source import CopySource, S3Source
from functions.copy.streamed import copy_stream

log = logging.getLogger("dynafed_fn.copy")

NAME = "copy"
Publish = Callable[[dict[str, Any]], None]


@dataclasses.dataclass
class Prepared:
    """A validated job, ready to run."""

    request: CopyRequest
    job_id: str
    source: CopySource
    source_store: Store | None
    #: an S3 destination's store and client (None for a push)
    destination_store: Store | None
    dest_client: Any
    strategy: Strategy
    #: the source's stored checksum of the ``verify`` algorithm, if any
    reference: str | None
    metadata: dict[str, str]
    #: set when the destination already holds the verified object
    present: str | None
    #: the destination carries this job's id (an earlier request ended it)
    ours: bool
    started: float
    #: an http(s) destination (push), else None
    push: HttpDestination | None = None
    #: a push over an existing destination (deleted first, as gfal2 does)
    replace: bool = False

    @property
    def total(self) -> int:
        return self.source.size


def metadata_tag(tag: str | None) -> str | None:
    """A source tag as it is stored in user metadata (printable ASCII, unquoted)."""
    if tag is None:
        return None
    return "".join(c for c in tag.strip('"') if 32 <= ord(c) < 127)[:256]


def destination_metadata(source: CopySource, *, job_id: str, algorithm: str,
                         reference: str | None) -> dict[str, str]:
    """The source's user metadata, plus the job id, the source tag and (when
    already known) the verified checksum."""
    metadata = {k: v for k, v in source.metadata.items() if k not in (JOB_ID_METADATA, SOURCE_ETAG_METADATA)}
    metadata.pop(algorithm, None)
    metadata[JOB_ID_METADATA] = job_id
    tag = metadata_tag(source.tag)
    if tag:
        metadata[SOURCE_ETAG_METADATA] = tag
    if reference is not None:
        metadata[algorithm] = reference
    return metadata


class CopyService:
    def __init__(self, ctx: FunctionContext, settings: CopySettings, jobs: JobTable | None = None,
                 draining: threading.Event | None = None) -> None:
        self.ctx = ctx
        self.settings = settings
        self.jobs = jobs or JobTable(ttl=settings.checkpoint_ttl)
        self.draining = draining or threading.Event()
        #: push jobs this worker completed: job id -> (size, checksum) (bounded, oldest dropped)
        self._pushed: collections.OrderedDict[str, tuple[int, str]] = collections.OrderedDict()
        self._pushed_lock = threading.Lock()
        self.bindings = Bindings(ttl=settings.checkpoint_ttl)
        self.registry: Registry | None = None
        if settings.job_registry is not None:
            store_name, bucket = settings.job_registry
            self.registry = Registry(ctx.client(store_name), bucket)

    # -- prepare ---------------------------------------------------------------

    def prepare(self, incoming: Incoming) -> Prepared:
        if incoming.event_type not in (None, events.COPY_REQUESTED):
            raise errors.InvalidRequest(f"unsupported event type '{str(incoming.event_type)[:80]}'")
        request = parse_copy_request(incoming.data)
        job_id = request.job_id or _job_id_from_event(incoming) or f"copy-{uuid.uuid4().hex}"
        # before anything else, and without a copy.failed event: the id is another job's
        self._bind(job_id, request)
        try:
            return self._prepare(request, job_id)
        except (errors.InvalidRequest, errors.JobIdConflict):
            raise
        except Exception as exc:
            raise self._failed(job_id, exc, 0, None) from None

    def _open_source(self, request: CopyRequest) -> tuple[CopySource, Store | None]:
        config = self.ctx.config
        if isinstance(request.source, UrlSource):
            return HttpSource(request.source, prefixes=config.http_sources,
                              allow_private=config.allow_private_sources,
                              connect_timeout=self.settings.http_connect_timeout,
                              read_timeout=self.settings.http_read_timeout, verify=config.trust.verify(),
                              want_digest=request.verify), None
        source_store = config.store(request.source.store)
        client = self.ctx.s3(source_store)
        return S3Source(request.source, client, head_object(client, request.source.bucket,
                                                            request.source.key)), source_store

    def _prepare_push(self, request: CopyRequest, destination: UrlDestination, job_id: str) -> Prepared:
        started = time.perf_counter()
        config = self.ctx.config
        target = HttpDestination(destination, prefixes=config.http_destinations,
                                 allow_private=config.allow_private_sources,
                                 connect_timeout=self.settings.http_connect_timeout,
                                 read_timeout=self.settings.http_read_timeout, verify=config.trust.verify())
        try:
            source, source_store = self._open_source(request)
        except BaseException:
            target.close()
            raise
        try:
            reference = source.stored.get(request.verify)
            pushed: str | None = None
            if self.jobs.running(job_id):
                # an earlier request of this job is still writing (its partial file would read as
                # "exists"): this one answers in-progress (execute) and the re-post checks afresh
                exists, present = False, None
            else:
                with self._pushed_lock:
                    record = self._pushed.get(job_id)
                pushed = record[1] if record is not None and record[0] == source.size else None
                exists, present = present_at(target, size=source.size, algorithm=request.verify,
                                             reference=reference, pushed=pushed)
            if exists and present is None and not request.overwrite:
                raise errors.DestinationExists(f"destination {target.what} exists and overwrite is false")
        except BaseException:
            source.close()
            target.close()
            raise
        return Prepared(request=request, job_id=job_id, source=source, source_store=source_store,
                        destination_store=None, dest_client=None, strategy=Strategy.HTTP_PUT,
                        reference=reference, metadata={}, present=present,
                        ours=pushed is not None and present == pushed, started=started,
                        push=target, replace=exists and present is None)

    def _bind(self, job_id: str, request: CopyRequest) -> None:
        """Bind the job id to this request's source and destination (jobs.py)."""
        identity = request_identity(request)
        self.bindings.bind(job_id, identity)
        if self.registry is not None:
            self.registry.bind(job_id, identity)

    def _prepare(self, request: CopyRequest, job_id: str) -> Prepared:
        if isinstance(request.destination, UrlDestination):
            return self._prepare_push(request, request.destination, job_id)
        started = time.perf_counter()
        config = self.ctx.config
        destination_store = config.store(request.destination.store)
        dest_client = self.ctx.s3(destination_store)
        source, source_store = self._open_source(request)
        try:
            dest_info = head_destination(dest_client, request.destination)
            identity = request_identity(request)
            if dest_info is not None:
                check_destination(dest_info.metadata, job_id=job_id, identity=identity)
            algorithm = request.verify
            reference = source.stored.get(algorithm)
            present = present_checksum(dest_info, size=source.size, algorithm=algorithm, reference=reference,
                                       job_id=job_id, source_tag=metadata_tag(source.tag),
                                       tag_is_content=isinstance(source, S3Source) and _content_etag(source.tag))
            if present is None:
                check_overwrite(dest_info, job_id=job_id, overwrite=request.overwrite)
            strategy = choose_strategy(size=source.size, source_store=source_store,
                                       destination_store=destination_store, settings=self.settings)
            ours = dest_info is not None and dest_info.metadata.get(JOB_ID_METADATA) == job_id
        except BaseException:
            source.close()
            raise
        return Prepared(request=request, job_id=job_id, source=source, source_store=source_store,
                        destination_store=destination_store, dest_client=dest_client, strategy=strategy,
                        reference=reference,
                        metadata={**destination_metadata(source, job_id=job_id, algorithm=request.verify,
                                                         reference=reference),
                                  JOB_REQUEST_METADATA: identity},
                        present=present, ours=ours, started=started)

    # -- execute ---------------------------------------------------------------

    def execute(self, prepared: Prepared, *, publish: Publish | None = None,
                cancel: threading.Event | None = None) -> dict[str, Any]:
        """Run the job for at most one slice; the result body (raises on failure)."""
        try:
            if prepared.present is not None:
                return self._already_present(prepared)
            with self.jobs.claim(prepared.job_id) as mine:
                if not mine:
                    # another request of this job runs here: the caller re-posts later
                    checkpoint = self.jobs.get(prepared.job_id)
                    done = checkpoint.bytes_done if checkpoint else 0
                    return self._result(prepared, IN_PROGRESS, done, {}, False)
                if prepared.push is not None:
                    return self._run_push(prepared, prepared.push, publish, cancel or threading.Event())
                return self._run(prepared, publish, cancel or threading.Event())
        finally:
            prepared.source.close()
            if prepared.push is not None:
                prepared.push.close()

    def _reporter(self, prepared: Prepared, publish: Publish | None) -> ProgressReporter:
        reporter = ProgressReporter(prepared.job_id, prepared.total, interval=self.settings.progress_interval,
                                    step=self.settings.progress_step)
        if self.ctx.events.enabled:
            reporter.subscribe(event_publisher(self.ctx.events, prepared.job_id))
        if publish is not None:
            reporter.subscribe(publish)
        return reporter

    def _run_push(self, prepared: Prepared, target: HttpDestination, publish: Publish | None,
                  cancel: threading.Event) -> dict[str, Any]:
        """One PUT to the end (a push cannot be resumed, so no slice), then
        the completed result; on failure the destination is deleted."""
        job_id, request = prepared.job_id, prepared.request
        reporter = self._reporter(prepared, publish)
        metrics = self.ctx.metrics.bytes
        plan = plan_parts(prepared.total, self.settings.part_size) if prepared.total else None
        try:
            if prepared.replace and not target.delete():
                raise errors.UpstreamError(f"destination {target.what} exists and could not be deleted")
            self._started(prepared, StartInfo(resumed=False, bytes_done=0, parts_total=plan.count if plan else 0,
                                              part_size=plan.part_size if plan else 0))
            outcome = copy_push(source=prepared.source, destination=target, plan=plan, algorithm=request.verify,
                                reference=prepared.reference, reporter=reporter, cancel=cancel,
                                full=request.verify_mode == "full", on_read=metrics.labels(NAME, "read").inc,
                                on_written=metrics.labels(NAME, "written").inc,
                                content_type=prepared.source.headers.get("ContentType"))
            reporter.reach(prepared.total)
            reporter.flush()
        except Exception as exc:
            raise self._failed(job_id, exc, reporter.done, prepared.total) from None
        assert outcome.checksum is not None
        with self._pushed_lock:
            self._pushed[job_id] = (prepared.total, outcome.checksum)
            while len(self._pushed) > 1000:
                self._pushed.popitem(last=False)
        return self._completed(prepared, outcome, bool(outcome.verified_by))

    def _run(self, prepared: Prepared, publish: Publish | None, cancel: threading.Event) -> dict[str, Any]:
        job_id, request = prepared.job_id, prepared.request
        reporter = self._reporter(prepared, publish)
        metrics = self.ctx.metrics.bytes
        assert isinstance(request.destination, ObjectRef)
        run = CopyRun(
            job_id=job_id, source=prepared.source, destination=request.destination,
            dest_client=prepared.dest_client, algorithm=request.verify, reference=prepared.reference,
            metadata=dict(prepared.metadata), headers=dict(prepared.source.headers), settings=self.settings,
            jobs=self.jobs, reporter=reporter, deadline=time.monotonic() + self.settings.slice_seconds,
            cancel=cancel, draining=self.draining, on_start=lambda info: self._started(prepared, info),
            on_read=metrics.labels(NAME, "read").inc, on_written=metrics.labels(NAME, "written").inc,
            create_only=not request.overwrite and not prepared.ours,
        )
        try:
            outcome = self._dispatch(prepared, run)
            if outcome.status == IN_PROGRESS:
                reporter.flush()
                log.info("copy slice ended", extra={"job_id": job_id, "bytes": outcome.bytes_done})
                return self._result(prepared, IN_PROGRESS, outcome.bytes_done, {}, False, outcome=outcome)
            assert outcome.checksum is not None
            if request.verify_mode == "full":
                verify.reread(prepared.dest_client, request.destination.bucket, request.destination.key,
                              request.verify, outcome.checksum, on_bytes=metrics.labels(NAME, "read").inc)
                outcome.verified_by.append("reread")
            reporter.reach(prepared.total)
            reporter.flush()
        except Exception as exc:
            raise self._failed(job_id, exc, reporter.done, prepared.total) from None
        return self._completed(prepared, outcome, True)

    def _dispatch(self, prepared: Prepared, run: CopyRun) -> Outcome:
        match prepared.strategy:
            case Strategy.PUT_EMPTY:
                return put_empty(run)
            case Strategy.SERVER_SIDE | Strategy.SERVER_SIDE_MULTIPART:
                assert isinstance(prepared.source, S3Source)
                return server_side.copy_server_side(run, prepared.source, prepared.strategy)
            case Strategy.STREAM:
                return copy_stream(run, plan_parts(prepared.total, self.settings.part_size))
        raise AssertionError(f"no engine for {prepared.strategy}")  # pragma: no cover - http-put is _run_push

    def _started(self, prepared: Prepared, info: StartInfo) -> None:
        if info.resumed:
            return  # the job's started event went out with its first request
        self.ctx.events.emit(events.COPY_STARTED, prepared.job_id, started_data(
            job_id=prepared.job_id, strategy=prepared.strategy.value, total=prepared.total,
            source=prepared.request.source, destination=prepared.request.destination, resumed=False,
            parts=info.parts_total, part_size=info.part_size))

    def _already_present(self, prepared: Prepared) -> dict[str, Any]:
        assert prepared.present is not None
        result = self._result(prepared, ALREADY_PRESENT, prepared.total,
                              {prepared.request.verify: prepared.present}, True,
                              verified_by=["destination-checksum"])
        if not prepared.ours:  # else this job's terminal event went out when it completed
            self._emit_completed(prepared.job_id, result)
        return result

    def _completed(self, prepared: Prepared, outcome: Outcome, verified: bool) -> dict[str, Any]:
        """The completed result of a copy that ran (pulled or pushed), its event sent and logged."""
        assert outcome.checksum is not None
        result = self._result(prepared, outcome.status, outcome.bytes_done,
                              {prepared.request.verify: outcome.checksum}, verified, outcome=outcome)
        self._emit_completed(prepared.job_id, result)
        log.info("copy completed", extra={"job_id": prepared.job_id, "strategy": outcome.strategy.value,
                                          "bytes": outcome.bytes_done})
        return result

    def _emit_completed(self, job_id: str, result: dict[str, Any]) -> None:
        self.ctx.events.emit(events.COPY_COMPLETED, job_id, {k: v for k, v in result.items() if k != "type"})

    def _result(self, prepared: Prepared, status: str, bytes_done: int, checksums: dict[str, str],
                verified: bool, *, outcome: Outcome | None = None, **extra: Any) -> dict[str, Any]:
        if outcome is not None:
            if status == IN_PROGRESS:
                extra["resume"] = {"parts_done": outcome.parts_done, "parts_total": outcome.parts_total,
                                   "part_size": outcome.part_size}
            else:
                extra.update(etag=outcome.etag, verified_by=outcome.verified_by,
                             checksum_written=outcome.written)
        return copy_result(job_id=prepared.job_id, status=status, strategy=prepared.strategy.value, bytes_=bytes_done,
                           total=prepared.total, checksums=checksums, verified=verified,
                           elapsed_s=time.perf_counter() - prepared.started, source=prepared.request.source,
                           destination=prepared.request.destination, **extra)

    def _failed(self, job_id: str, exc: Exception, bytes_done: int, total: int | None) -> errors.FunctionError:
        """``exc`` translated, its copy.failed event sent and logged: the error to raise."""
        error = errors.translate(exc)
        self.ctx.events.emit(events.COPY_FAILED, job_id,
                             failed_data(job_id=job_id, problem=errors.problem(error), bytes_done=bytes_done,
                                         total=total))
        log.info("copy failed", extra={"job_id": job_id, "code": error.code.value})
        return error


def _content_etag(etag: str) -> bool:
    """An S3 ETag that is an MD5 (``"<32 hex>"``) or a multipart MD5-of-MD5s (``"<32 hex>-N"``)."""
    value = etag.strip('"').lower()
    digest, _, parts = value.partition("-")
    return len(digest) == 32 and all(c in "0123456789abcdef" for c in digest) and (not parts or parts.isdigit())


def _job_id_from_event(incoming: Incoming) -> str | None:
    """A CloudEvent's id is a natural idempotency key (eventing redelivers the
    same id): used as it is when it is a valid job id, else a stable hash of
    source and id (never a random id: a redelivery must map to the same job)."""
    event_id = incoming.event_id
    if not event_id:
        return None
    if is_job_id(event_id):
        return event_id
    digest = hashlib.sha256(f"{incoming.event_source}\0{event_id}".encode()).hexdigest()
    return f"ce-{digest[:40]}"

