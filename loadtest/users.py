"""Locust users: the real workload, validated.

Tasks (weights from the scenario's ``[mix]``; the request names group the
statistics by task)::

    checksum_small_cached    checksum:small-cached    cache "use" on objects with
                                                      x-amz-meta-<alg>: must be a hit
    checksum_small_uncached  checksum:small-uncached  cache "use", no metadata: a miss
    checksum_large           checksum:large           full read of a large object
    copy_server_side         copy:server-side         same store -> CopyObject
    copy_stream              copy:stream              other credentials -> streamed
                                                      (ndjson progress lines)

Every answer is checked against the manifest's locally computed checksums
(:mod:`loadtest.validation`); a wrong one is reported with ``failure()``.

:class:`FunctionUser` talks HTTP to the functions (warm processes; on
Knative, whatever the autoscaler gives). :class:`LegacyUser` runs the same
tasks through the fresh-process baseline (``dynafed_client.legacy``: a new
worker process per task, what Dynafed's Docker workers did).

This module imports locust: only Locust's process imports it.
"""
from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from locust import HttpUser, User, between

from loadtest.config import TASKS, ScenarioConfig
from loadtest.seed import LARGE, SMALL_CACHED, SMALL_UNCACHED, Manifest, SeededObject
from loadtest.targets import RunSpec, Target
from loadtest.validation import (
    SERVER_SIDE,
    STREAM,
    WRONG_ANSWER,
    check_checksum,
    check_copy,
    error_code,
    last_ndjson_result,
)

NDJSON = "application/x-ndjson"


class Workload:
    """The scenario's requests: which object, which body, what must come back.
    Shared by both user classes so they do exactly the same work."""

    def __init__(self, spec: RunSpec, rng: random.Random | None = None) -> None:
        self.spec = spec
        self.config = ScenarioConfig.from_dict(spec.scenario)
        self.manifest = Manifest.load(spec.manifest)
        self.target = Target.from_json(spec.target)
        self.rng = rng or random.Random()  # noqa: S311 (picks test objects)
        self.pools = {kind: self.manifest.of_kind(kind) for kind in (SMALL_CACHED, SMALL_UNCACHED, LARGE)}
        copy_kinds = (SMALL_CACHED, SMALL_UNCACHED) if self.config.copy.source == "small" else (LARGE,)
        self.pools["copy"] = [o for k in copy_kinds for o in self.pools[k]]

    def pick(self, pool: str) -> SeededObject:
        return self.rng.choice(self.pools[pool])

    def checksum_body(self, obj: SeededObject, algorithms: tuple[str, ...], cache: str) -> dict[str, Any]:
        return {"store": self.manifest.store, "bucket": self.manifest.bucket, "key": obj.key,
                "algorithms": list(algorithms), "cache": cache}

    def copy_body(self, obj: SeededObject, kind: str) -> dict[str, Any]:
        where = self.config.copy.server_side if kind == "server-side" else self.config.copy.stream
        job = uuid.uuid4().hex
        return {"source": {"store": self.manifest.store, "bucket": self.manifest.bucket, "key": obj.key},
                "destination": {"store": where.store, "bucket": where.bucket,
                                "key": f"{self.spec.copy_prefix}/{kind}/{job}"},
                "job_id": f"lt-{job}", "verify": self.config.copy.verify, "overwrite": False}


#: task -> (object pool, algorithms attribute, cache mode, expect_cached)
CHECKSUM_TASKS: dict[str, tuple[str, str, str, bool | None]] = {
    "checksum_small_cached": (SMALL_CACHED, "algorithms", "use", True),
    "checksum_small_uncached": (SMALL_UNCACHED, "algorithms", "use", False),
    "checksum_large": (LARGE, "large_algorithms", "none", None),
}
COPY_TASKS: dict[str, str] = {"copy_server_side": "server-side", "copy_stream": "stream"}


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 1.0
    except ValueError:  # an HTTP date: not worth parsing for a load test
        return 1.0


def _problem(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class FunctionUserBase(HttpUser):
    """Dispatches each task as one HTTP request to a function."""

    abstract = True
    spec: RunSpec
    workload: Workload

    def on_start(self) -> None:
        self.workload = Workload(self.spec)

    def _post(self, task: str, function: str, body: Mapping[str, Any], obj: SeededObject,
              check: Callable[[Any, Any], str | None], *, ndjson: bool = False) -> None:
        """POST once; after a 429 (the function sheds load beyond its in-flight
        limit) wait Retry-After and try again, as the dispatch client does.
        Every attempt is a request in the statistics: shed ones as failures
        with code TOO_MANY_REQUESTS."""
        users = self.workload.config.users
        for attempt in range(1 + users.retries_429):
            retry_after = self._attempt(task, function, body, obj, check, ndjson=ndjson)
            if retry_after is None or attempt == users.retries_429:
                return
            time.sleep(min(retry_after, users.retry_after_max))

    def _attempt(self, task: str, function: str, body: Mapping[str, Any], obj: SeededObject,
                 check: Callable[[Any, Any], str | None], *, ndjson: bool) -> float | None:
        """One request; returns the Retry-After seconds of a 429, else None."""
        endpoint = self.workload.target.endpoint(function)
        headers = endpoint.headers()
        if ndjson:
            headers["Accept"] = NDJSON
        context = {"function": function, "bytes": obj.size, "task": task}
        with self.client.post(f"{endpoint.url}/", json=body, headers=headers, name=TASKS[task],
                              catch_response=True, context=context,
                              timeout=self.workload.config.users.request_timeout) as resp:
            meta = resp.request_meta["context"]
            if resp.status_code == 0:  # no answer at all (connection refused/reset, timeout)
                meta["code"] = type(resp.error).__name__
                resp.failure(f"{meta['code']}: {resp.error}")
                return None
            if resp.status_code != 200:
                problem = _problem(resp)
                meta["code"] = error_code(resp.status_code, problem)
                detail = problem.get("detail") if isinstance(problem, dict) else resp.text[:200]
                resp.failure(f"{meta['code']}: {detail}")
                if resp.status_code == 429:
                    return _retry_after(resp.headers.get("Retry-After"))
                return None
            reason = check(resp, meta)
            if reason is not None:
                meta["code"] = meta.get("code") or WRONG_ANSWER
                resp.failure(reason)
            else:
                resp.success()
            return None

    def _checksum(self, task: str) -> None:
        pool, attr, cache, expect_cached = CHECKSUM_TASKS[task]
        algorithms = getattr(self.workload.config.checksum, attr)
        obj = self.workload.pick(pool)

        def check(resp: Any, meta: dict[str, Any]) -> str | None:
            body = _problem(resp)
            meta["validated"] = True
            return check_checksum(body, obj, algorithms, expect_cached=expect_cached)

        self._post(task, "checksum", self.workload.checksum_body(obj, algorithms, cache), obj, check)

    def _copy(self, task: str) -> None:
        kind = COPY_TASKS[task]
        obj = self.workload.pick("copy")
        ndjson = kind == "stream" and self.workload.config.copy.ndjson
        strategies = SERVER_SIDE if kind == "server-side" else STREAM

        def check(resp: Any, meta: dict[str, Any]) -> str | None:
            if ndjson:
                body, _progress, error = last_ndjson_result(resp.text)
                if error is not None:
                    meta["code"] = error.split(":", 1)[0]
                    return error
            else:
                body = _problem(resp)
            meta["validated"] = True
            return check_copy(body, obj, verify=self.workload.config.copy.verify, strategies=strategies)

        self._post(task, "copy", self.workload.copy_body(obj, kind), obj, check, ndjson=ndjson)

    def checksum_small_cached(self) -> None:
        self._checksum("checksum_small_cached")

    def checksum_small_uncached(self) -> None:
        self._checksum("checksum_small_uncached")

    def checksum_large(self) -> None:
        self._checksum("checksum_large")

    def copy_server_side(self) -> None:
        self._copy("copy_server_side")

    def copy_stream(self) -> None:
        self._copy("copy_stream")


def legacy_client(target: Target) -> Any:
    """The fresh-process baseline (``LocalBackend``) on the target's local stack."""
    from dynafed_client.legacy import LocalBackend

    return LocalBackend.from_stack(target.state_dir)


class LegacyUserBase(User):
    """Runs each task through the fresh-process baseline (a worker process
    per task) and reports it to Locust's statistics like an HTTP request."""

    abstract = True
    spec: RunSpec
    workload: Workload

    def on_start(self) -> None:
        self.workload = Workload(self.spec)
        self.legacy = legacy_client(self.workload.target)

    def _run(self, task: str, function: str, obj: SeededObject, call: Callable[[], Any],
             check: Callable[[Any], str | None]) -> None:
        context: dict[str, Any] = {"function": function, "bytes": obj.size, "task": task, "mode": "baseline"}
        exception: BaseException | None = None
        start = time.time()
        began = time.perf_counter()
        try:
            result = call()
        except Exception as exc:  # the baseline's own error types: reported, never raised into Locust
            exception = exc
            context["code"] = str(getattr(exc, "code", "") or type(exc).__name__)
        response_ms = (time.perf_counter() - began) * 1000
        if exception is None:
            context["validated"] = True
            reason = check(result)
            if reason is not None:
                context["code"] = WRONG_ANSWER
                exception = AssertionError(reason)
        context["ttfb_ms"] = response_ms  # a worker process answers all at once
        self.environment.events.request.fire(
            request_type="PROC", name=TASKS[task], response_time=response_ms, response_length=0,
            exception=exception, context=context, start_time=start, response=None, url=None)

    def _checksum(self, task: str) -> None:
        pool, attr, cache, expect_cached = CHECKSUM_TASKS[task]
        algorithms = getattr(self.workload.config.checksum, attr)
        obj = self.workload.pick(pool)
        body = self.workload.checksum_body(obj, algorithms, cache)
        ref = {k: body[k] for k in ("store", "bucket", "key")}

        def check(result: Any) -> str | None:
            answer = {"checksums": dict(result.checksums), "size": result.size, "key": result.key,
                      "cached": list(result.cached)}
            return check_checksum(answer, obj, algorithms, expect_cached=expect_cached)

        self._run(task, "checksum", obj, lambda: self.legacy.checksum(ref, list(algorithms), cache=cache), check)

    def _copy(self, task: str) -> None:
        kind = COPY_TASKS[task]
        obj = self.workload.pick("copy")
        body = self.workload.copy_body(obj, kind)
        verify = self.workload.config.copy.verify

        def check(result: Any) -> str | None:
            answer = {"status": result.status, "verified": result.verified, "bytes": result.bytes,
                      "checksums": dict(result.checksums), "strategy": result.strategy}
            # the old workers always stream: the bytes and checksum are judged, not the strategy
            return check_copy(answer, obj, verify=verify, strategies=(result.strategy,))

        self._run(task, "copy", obj, lambda: self.legacy.copy(body["source"], body["destination"],
                                                              job_id=body["job_id"], verify=verify), check)

    checksum_small_cached = FunctionUserBase.checksum_small_cached
    checksum_small_uncached = FunctionUserBase.checksum_small_uncached
    checksum_large = FunctionUserBase.checksum_large
    copy_server_side = FunctionUserBase.copy_server_side
    copy_stream = FunctionUserBase.copy_stream


def make_user_class(spec: RunSpec) -> type[User]:
    """The run's user class (``FunctionUser`` or ``LegacyUser``) with the
    scenario's task weights and think time."""
    config = ScenarioConfig.from_dict(spec.scenario)
    base: type[User] = LegacyUserBase if spec.mode == "baseline" else FunctionUserBase
    tasks = {getattr(base, name): weight for name, weight in config.active_tasks.items()}
    target = Target.from_json(spec.target)
    attrs: dict[str, Any] = {
        "abstract": False,
        "spec": spec,
        "tasks": tasks,
        "wait_time": between(config.users.wait_min, config.users.wait_max),
        "__module__": __name__,
    }
    if base is FunctionUserBase:
        attrs["host"] = target.endpoint("checksum").url
    name = "LegacyUser" if base is LegacyUserBase else "FunctionUser"
    return type(name, (base,), attrs)
