"""Ready vs desired replicas per Knative revision, sampled every second
through the Kubernetes API (the official ``kubernetes`` client).

Per Service, one sample reads (all label-selected on
``serving.knative.dev/service=<name>``)::

    pods            ready = condition Ready=True and not being deleted;
                    pods = not being deleted (Pending included: scaling up);
                    grouped by label serving.knative.dev/revision
    podautoscalers  (autoscaling.internal.knative.dev/v1alpha1, one per
                    revision) status.desiredScale / status.actualScale:
                    what the autoscaler wants
    deployments     spec.replicas: the fallback for "desired" when the
                    PodAutoscaler has no status yet

A Service is *at zero* when every revision has no ready and no pending pod
and the autoscaler wants none. API errors never stop a run: the row carries
the error and the sampler tries again next second.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("dynafed_fn.loadtest.sampler")

SERVICE_LABEL = "serving.knative.dev/service"
REVISION_LABEL = "serving.knative.dev/revision"
PA_GROUP, PA_VERSION, PA_PLURAL = "autoscaling.internal.knative.dev", "v1alpha1", "podautoscalers"
KSVC_GROUP, KSVC_VERSION, KSVC_PLURAL = "serving.knative.dev", "v1", "services"
CSV_COLUMNS = ("t", "elapsed", "service", "revision", "ready", "pods", "terminating", "desired", "actual", "error")
#: (connect, read) seconds per API call: a hung API server must not stall the 1 s cadence for long
REQUEST_TIMEOUT = (2.0, 5.0)


class SamplerError(Exception):
    """The Kubernetes API could not be read."""


class ScaleToZeroTimeout(SamplerError):
    """A Service did not reach zero replicas in time."""


@dataclasses.dataclass(frozen=True)
class ReplicaSample:
    """One revision at one instant."""

    t: float
    service: str
    revision: str
    ready: int = 0
    pods: int = 0
    terminating: int = 0
    #: replicas the autoscaler wants (PodAutoscaler desiredScale, else Deployment spec.replicas)
    desired: int | None = None
    #: PodAutoscaler actualScale
    actual: int | None = None
    error: str = ""

    @property
    def at_zero(self) -> bool:
        return not self.error and self.ready == 0 and self.pods == 0 and self.desired in (0, None)


def is_zero(samples: Iterable[ReplicaSample]) -> bool:
    """Whether a Service's samples of one instant say "scaled to zero"
    (no revisions at all also counts)."""
    items = list(samples)
    return all(s.at_zero for s in items)


def _ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def samples_from_lists(service: str, t: float, pods: Iterable[Mapping[str, Any]],
                       autoscalers: Iterable[Mapping[str, Any]],
                       deployments: Iterable[Mapping[str, Any]]) -> list[ReplicaSample]:
    """Per-revision samples from the three API lists (pure; sorted by revision)."""
    counts: dict[str, dict[str, Any]] = {}

    def entry(revision: str) -> dict[str, Any]:
        return counts.setdefault(revision, {"ready": 0, "pods": 0, "terminating": 0, "desired": None,
                                            "actual": None, "deploy": None})

    for pod in pods:
        meta = pod.get("metadata") or {}
        revision = (meta.get("labels") or {}).get(REVISION_LABEL, "")
        e = entry(revision)
        if meta.get("deletionTimestamp"):
            e["terminating"] += 1
            continue
        e["pods"] += 1
        if _ready(pod):
            e["ready"] += 1
    for pa in autoscalers:
        meta = pa.get("metadata") or {}
        revision = (meta.get("labels") or {}).get(REVISION_LABEL) or meta.get("name", "")
        status = pa.get("status") or {}
        e = entry(revision)
        e["desired"] = _int_or_none(status.get("desiredScale"))
        e["actual"] = _int_or_none(status.get("actualScale"))
    for deployment in deployments:
        meta = deployment.get("metadata") or {}
        revision = (meta.get("labels") or {}).get(REVISION_LABEL) or meta.get("name", "").removesuffix("-deployment")
        entry(revision)["deploy"] = _int_or_none((deployment.get("spec") or {}).get("replicas"))
    return [ReplicaSample(t, service, revision, ready=e["ready"], pods=e["pods"], terminating=e["terminating"],
                          desired=e["desired"] if e["desired"] is not None else e["deploy"], actual=e["actual"])
            for revision, e in sorted(counts.items())]


class KubeReplicaSource:
    """Reads pods, PodAutoscalers, Deployments and Services of a namespace."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self.namespace = namespace
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)

    @classmethod
    def from_kubeconfig(cls, namespace: str, *, kubeconfig: str | None = None,
                        context: str | None = None) -> KubeReplicaSource:
        """From a kubeconfig file/context (default: $KUBECONFIG or ~/.kube/config),
        or the in-cluster service account when there is no kubeconfig."""
        from kubernetes import client, config

        configuration = client.Configuration()
        try:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration,
                                    persist_config=False)
        except (config.ConfigException, OSError) as exc:
            if kubeconfig or context:
                raise SamplerError(f"kubeconfig: {exc}") from exc
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException:
                raise SamplerError(f"no usable kubeconfig ({exc}) and not running in a cluster") from exc
        # one attempt per call: the next sample is the retry
        configuration.retries = False
        api = client.ApiClient(configuration)
        return cls(api, namespace)

    @staticmethod
    def _items(response: Any) -> list[Mapping[str, Any]]:
        # raw JSON (_preload_content=False): no model validation of fields we do not read
        data = json.loads(response.data)
        items = data.get("items")
        return items if isinstance(items, list) else []

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except Exception as exc:  # ApiException, urllib3 errors, timeouts: all mean "no sample"
            status = getattr(exc, "status", None)
            reason = f"HTTP {status}" if status else type(exc).__name__
            raise SamplerError(f"{what}: {reason}") from exc

    def sample(self, service: str, t: float | None = None) -> list[ReplicaSample]:
        """Per-revision samples of one Service now (raises SamplerError)."""
        t = time.time() if t is None else t
        selector = f"{SERVICE_LABEL}={service}"
        pods = self._items(self._call("pods", self._core.list_namespaced_pod, self.namespace,
                                      label_selector=selector))
        pas = self._items(self._call("podautoscalers", self._custom.list_namespaced_custom_object, PA_GROUP,
                                     PA_VERSION, self.namespace, PA_PLURAL, label_selector=selector))
        deployments = self._items(self._call("deployments", self._apps.list_namespaced_deployment,
                                             self.namespace, label_selector=selector))
        return samples_from_lists(service, t, pods, pas, deployments)

    def service(self, name: str) -> Mapping[str, Any]:
        """The Knative Service document (for the settings in force)."""
        response = self._call("knative service", self._custom.get_namespaced_custom_object, KSVC_GROUP,
                              KSVC_VERSION, self.namespace, KSVC_PLURAL, name)
        return json.loads(response.data)


class ReplicaSampler:
    """Samples every ``interval`` seconds in a thread and appends to replicas.csv.

    >>> with ReplicaSampler(source, ["checksum", "copy"], path) as sampler:   # doctest: +SKIP
    ...     sampler.wait_for_zero("checksum", timeout=600)
    """

    def __init__(self, source: Any, services: Iterable[str], path: Path | str | None, *,
                 interval: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.services = list(services)
        self.interval = interval
        self.clock = clock
        self.started_at = clock()
        self.errors = 0
        self.samples = 0
        self._latest: dict[str, list[ReplicaSample]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file: IO[str] | None = None
        self._writer: Any = None
        if path is not None:
            self._file = Path(path).open("w", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(CSV_COLUMNS)

    # -- one round ---------------------------------------------------------------

    def sample_once(self) -> dict[str, list[ReplicaSample]]:
        """Sample every Service once, record the rows, return them."""
        round_: dict[str, list[ReplicaSample]] = {}
        for service in self.services:
            t = self.clock()
            try:
                rows = self.source.sample(service, t)
            except SamplerError as exc:
                rows = [ReplicaSample(t, service, "", error=str(exc))]
                with self._lock:
                    self.errors += 1
                log.warning("replica sample of %s failed: %s", service, exc)
            round_[service] = rows
            self._record(rows)
        with self._changed:
            self._latest.update(round_)
            self.samples += 1
            self._changed.notify_all()
        return round_

    def _record(self, rows: list[ReplicaSample]) -> None:
        if self._writer is None:
            return
        with self._lock:
            for s in rows:
                self._writer.writerow((f"{s.t:.3f}", f"{s.t - self.started_at:.3f}", s.service, s.revision,
                                       "" if s.error else s.ready, "" if s.error else s.pods,
                                       "" if s.error else s.terminating,
                                       "" if s.desired is None else s.desired, "" if s.actual is None else s.actual,
                                       s.error))
            self._file.flush()  # type: ignore[union-attr]

    def latest(self, service: str) -> list[ReplicaSample]:
        with self._lock:
            return list(self._latest.get(service, []))

    # -- background thread ---------------------------------------------------------

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.sample_once()
            next_at += self.interval
            # keep the cadence; after a slow round, sample again at once
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            if time.monotonic() - next_at > self.interval:
                next_at = time.monotonic()

    def start(self) -> ReplicaSampler:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="replica-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            if self._file is not None and not self._file.closed:
                self._file.close()

    def __enter__(self) -> ReplicaSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- waiting -----------------------------------------------------------------

    def _next_round(self, service: str, seen: int) -> tuple[int, list[ReplicaSample]]:
        """Wait for the thread's next round after round ``seen``; (round, rows of ``service``)."""
        with self._changed:
            self._changed.wait_for(lambda: self.samples != seen, timeout=self.interval * 5)
            return self.samples, list(self._latest.get(service, []))

    def wait_for_zero(self, service: str, *, timeout: float, confirm: int = 2,
                      sleep: Callable[[float], None] = time.sleep) -> float:
        """Block until ``service`` is at zero for ``confirm`` consecutive samples;
        returns the seconds waited. Raises ScaleToZeroTimeout.

        Samples itself when the background thread is not running (tests, or
        before a run), else follows the thread's samples.
        """
        started = time.monotonic()
        streak, seen = 0, -1
        while True:
            if self._thread is None:
                rows = self.sample_once()[service]
            else:
                seen, rows = self._next_round(service, seen)
            failed = any(r.error for r in rows)
            streak = 0 if failed or not is_zero(rows) else streak + 1
            if streak >= confirm:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                state = "; ".join(f"{r.revision or '?'}: ready={r.ready} pods={r.pods} desired={r.desired}"
                                  + (f" error={r.error}" if r.error else "") for r in rows)
                raise ScaleToZeroTimeout(f"{service} did not scale to zero within {timeout:.0f} s ({state})")
            if self._thread is None:
                sleep(self.interval)
