"""The replica sampler against a fake Kubernetes API server.

The fake is a real HTTP server on 127.0.0.1 answering the three list calls
(pods, PodAutoscalers, Deployments) and the Knative Service GET the way the
API server does (JSON lists with ``items``, label selectors in the query);
the sampler reaches it through the official client and a kubeconfig file
pointing at it.
"""
from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from loadtest.sampler import (
    KubeReplicaSource,
    ReplicaSampler,
    SamplerError,
    ScaleToZeroTimeout,
    is_zero,
    samples_from_lists,
)
from tests.loopback_http import send_json

NS = "dynafed-fn"


def pod(name: str, revision: str, *, ready: bool, deleting: bool = False, service: str = "checksum") -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": NS,
                            "labels": {"serving.knative.dev/service": service,
                                       "serving.knative.dev/revision": revision}}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T12:00:00Z"
    return {"metadata": meta, "status": {"phase": "Running" if ready else "Pending",
                                         "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pa(revision: str, desired: int | None, actual: int | None = None, service: str = "checksum") -> dict:
    status = {} if desired is None else {"desiredScale": desired, "actualScale": actual if actual is not None else 0}
    return {"apiVersion": "autoscaling.internal.knative.dev/v1alpha1", "kind": "PodAutoscaler",
            "metadata": {"name": revision, "namespace": NS,
                         "labels": {"serving.knative.dev/service": service,
                                    "serving.knative.dev/revision": revision}},
            "status": status}


def deployment(revision: str, replicas: int, service: str = "checksum") -> dict:
    return {"metadata": {"name": f"{revision}-deployment", "namespace": NS,
                         "labels": {"serving.knative.dev/service": service,
                                    "serving.knative.dev/revision": revision}},
            "spec": {"replicas": replicas}}


class FakeCluster:
    """What the fake API server serves; tests change it between samples.

    ``script``: optional callable run before every pods list (n = how many
    pods lists were served so far) to move the cluster along.
    """

    def __init__(self) -> None:
        self.pods: list[dict] = []
        self.pas: list[dict] = []
        self.deployments: list[dict] = []
        self.services: dict[str, dict] = {}
        self.fail: dict[str, int] = {}  # resource -> HTTP status to answer instead
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.script: Callable[[FakeCluster, int], None] | None = None
        self.pod_lists = 0
        self.lock = threading.Lock()

    @staticmethod
    def _select(items: list[dict], selector: str | None) -> list[dict]:
        if not selector:
            return items
        wanted = dict(part.split("=", 1) for part in selector.split(","))
        return [i for i in items
                if all(i["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())]

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        with self.lock:
            self.requests.append((path, query))
            selector = (query.get("labelSelector") or [None])[0]
            if path == f"/api/v1/namespaces/{NS}/pods":
                resource, kind, items = "pods", "PodList", None
                if self.script is not None and "pods" not in self.fail:
                    self.script(self, self.pod_lists)
                self.pod_lists += 1
                items = self.pods
            elif path == f"/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/{NS}/podautoscalers":
                resource, kind, items = "podautoscalers", "PodAutoscalerList", self.pas
            elif path == f"/apis/apps/v1/namespaces/{NS}/deployments":
                resource, kind, items = "deployments", "DeploymentList", self.deployments
            elif path.startswith(f"/apis/serving.knative.dev/v1/namespaces/{NS}/services/"):
                name = path.rsplit("/", 1)[1]
                if "services" in self.fail or name not in self.services:
                    code = self.fail.get("services", 404)
                    return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
                return 200, self.services[name]
            else:
                return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
            if resource in self.fail:
                code = self.fail[resource]
                return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                              "reason": "InternalError" if code >= 500 else "Forbidden"}
            return 200, {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"},
                         "items": self._select(items, selector)}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeCluster, Path]]:
    """(fake cluster state, kubeconfig path) with the API server running."""
    state = FakeCluster()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            parts = urlsplit(self.path)
            code, body = state.answer(parts.path, parse_qs(parts.query))
            send_json(self, code, body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {{server: "http://127.0.0.1:{server.server_address[1]}"}}
users:
- name: fake
  user: {{token: fake-token}}
contexts:
- name: fake
  context: {{cluster: fake, user: fake, namespace: {NS}}}
current-context: fake
""")
    try:
        yield state, kubeconfig
    finally:
        server.shutdown()
        server.server_close()


def source_for(kubeconfig: Path) -> KubeReplicaSource:
    return KubeReplicaSource.from_kubeconfig(NS, kubeconfig=str(kubeconfig), context="fake")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


# -- pure part ---------------------------------------------------------------------------

def test_samples_group_pods_by_revision_and_prefer_the_autoscalers_desired_scale():
    rows = samples_from_lists(
        "checksum", 10.0,
        pods=[pod("a", "checksum-00001", ready=True), pod("b", "checksum-00002", ready=True),
              pod("c", "checksum-00002", ready=False), pod("d", "checksum-00002", ready=True, deleting=True)],
        autoscalers=[pa("checksum-00001", 1, 1), pa("checksum-00002", 3, 2)],
        deployments=[deployment("checksum-00001", 5), deployment("checksum-00002", 3)])
    assert [(r.revision, r.ready, r.pods, r.terminating, r.desired, r.actual) for r in rows] == [
        ("checksum-00001", 1, 1, 0, 1, 1),
        ("checksum-00002", 1, 2, 1, 3, 2),
    ]
    assert not is_zero(rows)


def test_deployment_replicas_stand_in_when_the_autoscaler_has_no_status():
    rows = samples_from_lists("copy", 1.0, pods=[], autoscalers=[pa("copy-00001", None)],
                              deployments=[deployment("copy-00001", 0, service="copy")])
    assert [(r.revision, r.desired) for r in rows] == [("copy-00001", 0)]
    assert is_zero(rows)


def test_a_pending_pod_or_a_nonzero_desired_scale_is_not_zero():
    assert not is_zero(samples_from_lists("s", 0, [pod("p", "r1", ready=False)], [pa("r1", 0)], []))
    assert not is_zero(samples_from_lists("s", 0, [], [pa("r1", 1)], []))
    # a pod already being deleted does not keep the Service "up"
    assert is_zero(samples_from_lists("s", 0, [pod("p", "r1", ready=True, deleting=True)], [pa("r1", 0)], []))


# -- through the official client and the fake API server -------------------------------------

def test_scale_up_is_seen_through_the_api(cluster, tmp_path):
    state, kubeconfig = cluster
    state.pas = [pa("checksum-00001", 0)]
    sampler = ReplicaSampler(source_for(kubeconfig), ["checksum"], tmp_path / "replicas.csv")
    first = sampler.sample_once()["checksum"]
    assert is_zero(first)

    state.pas = [pa("checksum-00001", 3, 1)]
    state.pods = [pod("p1", "checksum-00001", ready=True), pod("p2", "checksum-00001", ready=False),
                  pod("p3", "checksum-00001", ready=False),
                  pod("other", "copy-00001", ready=True, service="copy")]
    second = sampler.sample_once()["checksum"]
    sampler.stop()

    assert [(s.revision, s.ready, s.pods, s.desired, s.actual) for s in second] == [("checksum-00001", 1, 3, 3, 1)]
    assert not is_zero(second)
    # every list was label-selected on the Service (the copy pod was never counted)
    selectors = {q["labelSelector"][0] for path, q in state.requests if "labelSelector" in q}
    assert selectors == {"serving.knative.dev/service=checksum"}
    rows = read_csv(tmp_path / "replicas.csv")
    assert [(r["revision"], r["ready"], r["pods"], r["desired"]) for r in rows] == [
        ("checksum-00001", "0", "0", "0"), ("checksum-00001", "1", "3", "3")]


def test_wait_for_zero_needs_consecutive_zero_samples(cluster):
    state, kubeconfig = cluster
    # pods list n: 0-1 one ready pod; 2 zero; 3 a pod again (a request came in); 4 on: zero
    def script(c: FakeCluster, n: int) -> None:
        busy = n in (0, 1, 3)
        c.pods = [pod("p", "checksum-00001", ready=True)] if busy else []
        c.pas = [pa("checksum-00001", 1 if busy else 0)]

    state.script = script
    sleeps: list[float] = []
    sampler = ReplicaSampler(source_for(kubeconfig), ["checksum"], None, interval=1.0)
    waited = sampler.wait_for_zero("checksum", timeout=60, confirm=2, sleep=sleeps.append)
    assert waited >= 0
    # samples 0..5: the lone zero at 2 did not count; 4 and 5 did
    assert state.pod_lists == 6
    assert sleeps == [1.0] * 5


def test_wait_for_zero_times_out_while_pods_stay(cluster):
    state, kubeconfig = cluster
    state.pods = [pod("p", "checksum-00001", ready=True)]
    state.pas = [pa("checksum-00001", 1, 1)]
    sampler = ReplicaSampler(source_for(kubeconfig), ["checksum"], None)
    with pytest.raises(ScaleToZeroTimeout, match="checksum did not scale to zero.*ready=1"):
        sampler.wait_for_zero("checksum", timeout=0.0, sleep=lambda s: None)


@pytest.mark.parametrize(("resource", "status"), [("pods", 500), ("podautoscalers", 403), ("deployments", 503)])
def test_api_errors_become_error_rows_and_never_count_as_zero(cluster, tmp_path, resource, status):
    state, kubeconfig = cluster
    state.fail[resource] = status
    sampler = ReplicaSampler(source_for(kubeconfig), ["checksum"], tmp_path / "replicas.csv")
    rows = sampler.sample_once()["checksum"]
    assert len(rows) == 1 and rows[0].error == f"{resource}: HTTP {status}"
    assert not is_zero(rows)
    assert sampler.errors == 1
    with pytest.raises(ScaleToZeroTimeout, match=f"error={resource}: HTTP {status}"):
        sampler.wait_for_zero("checksum", timeout=0.0, sleep=lambda s: None)
    sampler.stop()
    recorded = read_csv(tmp_path / "replicas.csv")
    assert recorded[0]["error"] == f"{resource}: HTTP {status}" and recorded[0]["ready"] == ""

    # the API recovers: the next sample is good again
    del state.fail[resource]
    good = ReplicaSampler(source_for(kubeconfig), ["checksum"], None).sample_once()["checksum"]
    assert is_zero(good) and not any(r.error for r in good)


def test_an_unreachable_api_server_is_an_error_row(cluster, tmp_path):
    _, kubeconfig = cluster
    text = kubeconfig.read_text()
    # a port nothing listens on: bind one, note it, close it
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    kubeconfig.write_text(text.replace(text.split("127.0.0.1:")[1].split('"')[0], str(dead_port)))
    sampler = ReplicaSampler(source_for(kubeconfig), ["checksum", "copy"], None)
    rounds = sampler.sample_once()
    assert all(len(rows) == 1 and rows[0].error.startswith("pods: ") for rows in rounds.values())
    assert sampler.errors == 2


def test_background_sampling_writes_rows_until_stopped(cluster, tmp_path):
    state, kubeconfig = cluster
    state.pas = [pa("checksum-00001", 1, 1)]
    state.pods = [pod("p", "checksum-00001", ready=True)]
    path = tmp_path / "replicas.csv"
    with ReplicaSampler(source_for(kubeconfig), ["checksum"], path, interval=0.05) as sampler:
        # follow the thread's samples until the Service goes to zero
        def script(c: FakeCluster, n: int) -> None:
            if n >= 3:
                c.pods, c.pas = [], [pa("checksum-00001", 0)]

        state.script = script
        sampler.wait_for_zero("checksum", timeout=60)
    rows = read_csv(path)
    assert len(rows) >= 4
    assert rows[0]["ready"] == "1" and rows[-1]["ready"] == "0"
    assert [float(r["elapsed"]) for r in rows] == sorted(float(r["elapsed"]) for r in rows)


def test_knative_service_settings_are_read_live(cluster):
    from loadtest.settings import service_settings

    state, kubeconfig = cluster
    state.services["checksum"] = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "checksum"},
        "spec": {"template": {"metadata": {"annotations": {"autoscaling.knative.dev/target": "8",
                                                           "other/annotation": "x"}},
                              "spec": {"containerConcurrency": 8, "timeoutSeconds": 300,
                                       "containers": [{"env": [{"name": "THREADS", "value": "8"}]}]}}}}
    source = source_for(kubeconfig)
    settings = service_settings(source.service("checksum"))
    assert settings["annotations"] == {"autoscaling.knative.dev/target": "8"}
    assert settings["containerConcurrency"] == 8 and settings["env"] == {"THREADS": "8"}
    with pytest.raises(SamplerError, match="knative service: HTTP 404"):
        source.service("missing")


def test_a_missing_kubeconfig_is_a_clear_error(tmp_path):
    with pytest.raises(SamplerError, match="kubeconfig"):
        KubeReplicaSource.from_kubeconfig(NS, kubeconfig=str(tmp_path / "nope"))
