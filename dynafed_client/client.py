"""The dispatch client: checksum and copy through the functions' HTTP API.

>>> client = Client.from_stack()                                    # doctest: +SKIP
>>> client.checksum("demo/sample.bin", ["adler32", "md5"]).checksums  # doctest: +SKIP
{'adler32': '0a1b2c3d', 'md5': '…'}
>>> client.copy("demo/sample.bin", "archive:archive/sample.bin",     # doctest: +SKIP
...             on_progress=print)

Every request is retried on connect errors and 429/502/503/504 (cold start,
scale from zero) with jittered backoff honouring ``Retry-After``. A copy
carries a ``job_id`` (generated when not given) that makes it idempotent: it
is re-posted with the same id when the function answers ``in-progress`` (its
per-request time budget ran out; S3's open multipart upload is the
checkpoint) and when the progress stream breaks mid-way.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from dynafed_client import errors
from dynafed_client.batch import Outcome, run_batch
from dynafed_client.config import ClientConfig
from dynafed_client.progress import (
    CopyProgress,
    MonotonicProgress,
    ProgressCallback,
    progress_from_event,
    progress_from_line,
)
from dynafed_client.refs import (
    Destination,
    Source,
    as_destination,
    as_object_ref,
    as_source,
    destination_json,
    source_json,
)
from dynafed_client.results import ChecksumResult, CopyResult
from dynafed_client.retry import RetryState
from dynafed_client.transport import NDJSON, HttpTransport
from dynafed_contract.algorithms import normalize_algorithm
from dynafed_contract.checksum import ObjectRef
from dynafed_net.hangup import HangUpOnCancel, shut_down

log = logging.getLogger("dynafed_client")

CHECKSUM = "checksum"
COPY = "copy"
IN_PROGRESS = "in-progress"


class EventSubscription(Protocol):
    def get(self, timeout: float | None = None) -> Any: ...
    def close(self) -> None: ...


class EventSource(Protocol):
    """Anything with ``subscribe(subject)``: an in-process
    :class:`~dynafed_client.events.EventHub` or a
    :class:`~dynafed_client.events.RemoteEventSource`."""

    def subscribe(self, subject: str | None) -> EventSubscription: ...


def new_job_id() -> str:
    """A fresh copy job id (valid for the contract's ``job_id`` pattern)."""
    return f"dfn-{uuid.uuid4().hex}"


class _MidStream(Exception):
    """An error after the copy's answer had started (the job may be running)."""

    def __init__(self, error: errors.ClientError) -> None:
        super().__init__(str(error))
        self.error = error


class Client:
    """Dispatches checksum and copy work to the functions. Thread-safe; use one per process.

    ``events``: where CloudEvents of copy jobs can be followed (an in-process
    EventHub or a RemoteEventSource); when set, copy progress callbacks are
    also fed from events (useful when the answer is not streamed).
    """

    def __init__(self, config: ClientConfig | None = None, *, transport: HttpTransport | None = None,
                 events: EventSource | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config if config is not None else ClientConfig.from_env()
        self._transport = transport or HttpTransport(self.config, sleep=sleep)
        self._sleep = sleep
        self.events = events

    # -- construction ---------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> Client:
        """Configured from ``DYNAFED_FN_*`` variables (see :mod:`dynafed_client.config`)."""
        return cls(ClientConfig.from_env(env), **kwargs)

    @classmethod
    def from_stack(cls, state_dir: Any = None, *, follow_events: bool = False, **kwargs: Any) -> Client:
        """Configured from the local stack's state.json (``$DYNAFED_FN_STATE_DIR``
        or ``./.stack``); ``follow_events`` also follows its event receiver."""
        config = ClientConfig.from_stack(state_dir)
        if follow_events and config.events_url and "events" not in kwargs:
            from dynafed_client.events.remote import RemoteEventSource

            kwargs["events"] = RemoteEventSource(config.events_url)
        return cls(config, **kwargs)

    @property
    def transport(self) -> HttpTransport:
        return self._transport

    def close(self) -> None:
        """Release pooled connections."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checksum ---------------------------------------------------------------

    def checksum(self, obj: ObjectRef | str | Mapping[str, Any], algorithms: Sequence[str] | str = ("adler32",),
                 *, cache: str = "none", byte_range: tuple[int, int] | None = None) -> ChecksumResult:
        """Checksums of one object, computed by the checksum function in one pass.

        ``obj``: ObjectRef, ``"[store:]bucket/key"`` or a mapping; ``algorithms``:
        names (any case, RFC 3230 spellings) or a comma-separated string;
        ``cache``: ``none`` | ``use`` | ``write`` | ``refresh`` (see the contract).
        """
        ref = as_object_ref(obj)
        body: dict[str, Any] = {**ref.to_json(), "algorithms": _algorithms(algorithms), "cache": cache}
        if byte_range is not None:
            body["range"] = [int(byte_range[0]), int(byte_range[1])]
        answer = self._transport.request(CHECKSUM, "POST", "/", body=body).json()
        return ChecksumResult.from_json(answer)

    def checksum_many(self, objects: Iterable[ObjectRef | str | Mapping[str, Any]],
                      algorithms: Sequence[str] | str = ("adler32",), *, cache: str = "none",
                      concurrency: int | None = None) -> Iterator[Outcome[ObjectRef, ChecksumResult]]:
        """:meth:`checksum` for many objects, at most ``concurrency`` (default:
        ``config.concurrency``) in flight; outcomes in input order."""
        refs = [as_object_ref(o) for o in objects]
        algos = _algorithms(algorithms)
        return run_batch(lambda ref: self.checksum(ref, algos, cache=cache), refs,
                         concurrency=concurrency or self.config.concurrency)

    # -- copy -------------------------------------------------------------------

    def copy(self, source: Source | str | Mapping[str, Any], destination: Destination | str | Mapping[str, Any],
             *, job_id: str | None = None, verify: str = "adler32", verify_mode: str = "auto",
             overwrite: bool = False, on_progress: ProgressCallback | None = None, stream: bool = True,
             events: EventSource | None = None, cancel: threading.Event | None = None) -> CopyResult:
        """Copy one object and wait for the verified result.

        ``source``: ObjectRef, ``"[store:]bucket/key"``, an http(s) URL, or a
        mapping; ``destination``: ObjectRef, ``"[store:]bucket/key"``, or an
        http(s) URL / :class:`~dynafed_contract.copy.UrlDestination` (push:
        one PUT by the copy function, with the destination's headers).
        ``cancel``: once set, the function's stream is closed (the function
        stops: a push deletes what it wrote, a streamed copy keeps its
        checkpoint) and :class:`~dynafed_client.errors.CopyCancelled` is raised.
        ``on_progress`` receives :class:`CopyProgress` updates with bytes never
        decreasing, from the ndjson stream (``stream=True``) and/or from
        CloudEvents (``events`` or the client's own event source).
        Raises a :class:`~dynafed_client.errors.ClientError` on failure, e.g.
        ConflictError (``DESTINATION_EXISTS``), IntegrityError (``CHECKSUM_MISMATCH``).
        """
        job_id = job_id or new_job_id()
        body: dict[str, Any] = {
            "source": source_json(as_source(source)),
            "destination": destination_json(as_destination(destination)),
            "job_id": job_id,
            "verify": verify,
            "overwrite": bool(overwrite),
        }
        if verify_mode != "auto":
            body["verify_mode"] = verify_mode
        feed = MonotonicProgress(on_progress)
        source_of_events = events if events is not None else self.events
        with self._event_pump(job_id, feed, source_of_events if on_progress else None):
            return self._run_copy(job_id, body, feed, stream, cancel or threading.Event())

    def copy_many(self, jobs: Iterable[Mapping[str, Any]], *, concurrency: int | None = None
                  ) -> Iterator[Outcome[Mapping[str, Any], CopyResult]]:
        """Several copies, each job a mapping of :meth:`copy` keyword arguments
        (``source``, ``destination``, optional ``job_id``, ``verify``, …)."""
        def one(job: Mapping[str, Any]) -> CopyResult:
            kwargs = dict(job)
            return self.copy(kwargs.pop("source"), kwargs.pop("destination"), **kwargs)

        return run_batch(one, list(jobs), concurrency=concurrency or self.config.concurrency)

    def _run_copy(self, job_id: str, body: dict[str, Any], feed: MonotonicProgress, stream: bool,
                  cancel: threading.Event) -> CopyResult:
        state = RetryState(self.config.retry, sleep=self._sleep)
        resubmissions = 0
        transport_retries = 0
        last_bytes = -1
        while True:
            if cancel.is_set():
                raise errors.CopyCancelled(f"copy {job_id} cancelled")
            try:
                answer, retries = self._post_copy(job_id, body, feed, stream, cancel)
                transport_retries += retries
            except _MidStream as broken:
                if cancel.is_set():
                    raise errors.CopyCancelled(f"copy {job_id} cancelled") from None
                # the job id makes the re-post safe: the function resumes or answers already-present
                wait = state.should_retry(broken.error, resumable=broken.error.retryable)
                if wait is None:
                    raise broken.error from None
                log.info("copy %s: answer broke off (%s); re-posting in %.2fs", job_id, broken.error.message, wait)
                state.wait(wait)
                continue
            status = answer.get("status")
            if status == IN_PROGRESS:
                resubmissions += 1
                if resubmissions > self.config.max_resubmissions:
                    raise errors.ProtocolError(f"copy {job_id} still in progress after {resubmissions - 1} "
                                               "resubmissions")
                done = answer.get("bytes")
                if isinstance(done, int):
                    feed(CopyProgress(job_id, done, _int_or_none(answer.get("total")), origin="result"))
                    stalled = done <= last_bytes
                    last_bytes = max(last_bytes, done)
                else:
                    stalled = True
                if stalled:  # nothing moved (e.g. another worker holds the job): do not spin
                    self._sleep(self.config.retry.backoff(min(resubmissions, 6)))
                continue
            result = CopyResult.from_json(answer, resubmissions=resubmissions,
                                          retries=transport_retries + state.retries)
            feed(CopyProgress(job_id, result.bytes, feed.last.total if feed.last and feed.last.total
                              else result.bytes, origin="result"))
            return result

    def _post_copy(self, job_id: str, body: dict[str, Any], feed: MonotonicProgress,
                   stream: bool, cancel: threading.Event) -> tuple[dict[str, Any], int]:
        headers = {"Accept": f"{NDJSON}, application/json;q=0.5"} if stream else {"Accept": "application/json"}
        response = self._transport.request(COPY, "POST", "/", body=body, headers=headers, stream=stream,
                                           read_timeout=self.config.stream_idle_timeout if stream else None)
        if not response.streamed:
            try:
                answer = response.json()
            except errors.ClientError as exc:
                raise _MidStream(exc) from None
            if not isinstance(answer, dict):
                raise _MidStream(errors.ProtocolError("copy answer is not a JSON object"))
            return answer, response.retries
        watch = HangUpOnCancel(cancel, lambda: _hang_up(response), name="copy-cancel") if stream else None
        try:
            for line in response.lines():
                kind = line.get("type")
                if kind == "result":
                    return line, response.retries
                if kind == "error":
                    error = errors.from_problem(line)
                    if error.retryable and self.config.retry.is_retryable(error):
                        raise _MidStream(error)
                    raise error
                update = progress_from_line(line, job_id)
                if update is not None:
                    feed(update)
        except errors.FunctionError:
            raise
        except errors.ClientError as exc:
            raise _MidStream(exc) from None
        except Exception:
            if cancel.is_set():  # the stream was closed under the reader
                raise errors.CopyCancelled(f"copy {job_id} cancelled") from None
            raise
        finally:
            if watch is not None:
                watch.stop()
            response.close()
        raise _MidStream(errors.ProtocolError(f"copy {job_id}: stream ended without a result line"))

    @contextlib.contextmanager
    def _event_pump(self, job_id: str, feed: MonotonicProgress, source: EventSource | None) -> Iterator[None]:
        if source is None:
            yield
            return
        subscription = source.subscribe(job_id)
        stop = threading.Event()

        def pump() -> None:
            while not stop.is_set():
                event = subscription.get(timeout=0.2)
                if event is None:
                    continue
                update = progress_from_event(event.type, event.subject, event.data)
                if update is not None:
                    feed(update)

        thread = threading.Thread(target=pump, name=f"events-{job_id[:12]}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            subscription.close()
            thread.join(timeout=2)

    # -- misc -------------------------------------------------------------------

    def ready(self, function: str) -> dict[str, Any]:
        """``GET /readyz`` of a function (raises ServerError when not ready)."""
        body = self._transport.request(function, "GET", "/readyz").json()
        return body if isinstance(body, dict) else {"body": body}


def _hang_up(response: Any) -> None:
    """Shut the answer's socket down (that wakes a reader blocked in recv, a
    plain close would not) and close it: the function sees its client go
    (the ndjson generator closes) and stops the copy."""
    raw = getattr(getattr(response, "raw", None), "raw", None)
    shut_down(getattr(getattr(raw, "connection", None), "sock", None))
    response.close()


def _algorithms(algorithms: Sequence[str] | str) -> list[str]:
    names = [a for a in algorithms.split(",")] if isinstance(algorithms, str) else list(algorithms)
    names = [a.strip() for a in names if a.strip()]
    if not names:
        raise errors.ConfigError("no checksum algorithm given")
    # canonical names where known; unknown ones go through so the function answers UNKNOWN_ALGORITHM
    return [normalize_algorithm(a) or a for a in names]


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
