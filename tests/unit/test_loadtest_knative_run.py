"""The runner's Knative path end to end, with every remote part faked on
127.0.0.1: a fake Kubernetes API (pods appear while requests arrive and go
away after), fake functions (answering right: they compute the checksums
of the scenario's deterministic objects themselves) and moto's S3 server
for seeding. Covers: waiting for scale-to-zero, cold-start probes, replica
sampling during the load, replicas.csv/coldstarts.csv, the summary's
replica and cold-start sections and their figures."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from loadtest import seed
from loadtest.config import load_scenario
from loadtest.runner import RunOptions, run
from loadtest.targets import Endpoint, KnativeSettings, Target
from tests.loopback_http import send_body, send_json

NS = "dynafed-fn"
#: a Service keeps its pod for this many samples of it after its last request
#: (its "scale-down delay", counted in observations, not seconds: on a loaded
#: machine the sampler may be slow, and a pod must never vanish unseen)
KEEP_SAMPLES = 3


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


class Cluster:
    """Pods per Service, driven by events only: a request brings one ready pod
    up; each sample of the Service (its pods list, which the sampler reads
    first of its three lists) counts towards scale-down, and the pod goes
    away after KEEP_SAMPLES samples without a request. So every pod is seen
    up at least once, and scale-to-zero happens after the load however slow
    the machine is: no wall clock anywhere."""

    def __init__(self) -> None:
        #: service -> samples of it since its last request (absent: never requested)
        self.samples_since_request: dict[str, int] = {}
        #: service -> what its latest pods list showed (the other lists agree with it)
        self.shown_up: dict[str, bool] = {}
        self.lock = threading.Lock()

    def touch(self, service: str) -> None:
        with self.lock:
            self.samples_since_request[service] = 0

    def observe(self, service: str) -> bool:
        """One sample of ``service`` (its pods list): up or not, and one step towards scale-down."""
        with self.lock:
            count = self.samples_since_request.get(service)
            up = count is not None and count < KEEP_SAMPLES
            if up:
                self.samples_since_request[service] = count + 1
            self.shown_up[service] = up
            return up

    def up(self, service: str) -> bool:
        with self.lock:
            return self.shown_up.get(service, False)

    def items(self, path: str, selector: str) -> list[dict]:
        service = selector.split("=", 1)[1]
        revision = f"{service}-00001"
        labels = {"serving.knative.dev/service": service, "serving.knative.dev/revision": revision}
        up = self.observe(service) if path.endswith("/pods") else self.up(service)
        if path.endswith("/pods"):
            return [{"metadata": {"name": f"{revision}-pod", "labels": labels},
                     "status": {"conditions": [{"type": "Ready", "status": "True"}]}}] if up else []
        if path.endswith("/podautoscalers"):
            return [{"metadata": {"name": revision, "labels": labels},
                     "status": {"desiredScale": int(up), "actualScale": int(up)}}]
        return [{"metadata": {"name": f"{revision}-deployment", "labels": labels}, "spec": {"replicas": int(up)}}]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from moto.server import ThreadedMotoServer

    scenario = load_scenario("smoke", ["shape.hold=2s", "cold_start.probes=1", "cold_start.interval=0.1s",
                                       "cold_start.zero_timeout=60s", "cold_start.before_load=true"])
    # the fake functions know the right answers: the objects are a pure function of the scenario
    expected = {key: seed.digest_content(seed.ObjectContent(f"{scenario.seed}:{key}", size),
                                         ["adler32", "md5"])[0] | {"size": size, "kind": kind}
                for kind, key, size in seed.plan(scenario)}
    cluster = Cluster()

    class Functions(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            service = self.headers["Host"].split(".", 1)[0]
            cluster.touch(service)
            if service == "copy":
                src = expected[body["source"]["key"]]
                strategy = "server-side" if body["destination"]["store"] == body["source"]["store"] else "stream"
                answer = {"type": "result", "status": "completed", "strategy": strategy, "bytes": src["size"],
                          "checksums": {"adler32": src["adler32"]}, "verified": True, "job_id": "x"}
                data = (json.dumps(answer) + "\n").encode()
            else:
                obj = expected[body["key"]]
                cached = body["algorithms"] if obj["kind"] == seed.SMALL_CACHED and body["cache"] == "use" else []
                data = json.dumps({"key": body["key"], "size": obj["size"], "cached": cached,
                                   "checksums": {a: obj[a] for a in body["algorithms"]}}).encode()
            send_body(self, 200, data, "application/json")

        def log_message(self, *args: Any) -> None:
            pass

    class Api(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
            selector = query.get("labelSelector", "").replace("%2F", "/").replace("%3D", "=")
            if "labelSelector" in query:
                code, body = 200, {"kind": "List", "items": cluster.items(parts.path, selector)}
            else:
                code, body = 404, {"kind": "Status", "code": 404}
            send_json(self, code, body)

        def log_message(self, *args: Any) -> None:
            pass

    functions, api = _serve(Functions), _serve(Api)
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    store = {"endpoint_url": f"http://{host}:{port}", "region": "us-east-1", "access_key_id": "test",
             "secret_access_key": "test", "addressing_style": "path"}
    client = boto3.client("s3", endpoint_url=store["endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    for bucket in ("demo", "demo-copy", "archive"):
        client.create_bucket(Bucket=bucket)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: fake, cluster: {{server: "http://127.0.0.1:{api.server_address[1]}"}}}}]
users: [{{name: fake, user: {{token: t}}}}]
contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]
current-context: fake
""")
    url = f"http://127.0.0.1:{functions.server_address[1]}"
    target = Target("knative", {f: Endpoint(url, host=f"{f}.{NS}.example.com") for f in ("checksum", "copy")},
                    KnativeSettings(namespace=NS, context="fake", kubeconfig=str(kubeconfig)))
    # the copy Service had a request just now: the runner must wait for it to reach zero
    cluster.touch("copy")
    try:
        yield {"scenario": scenario, "target": target, "stores": {"default": store, "archive": store},
               "cluster": cluster}
    finally:
        functions.shutdown()
        api.shutdown()
        s3.stop()


def test_knative_run_samples_replicas_and_measures_cold_starts(world, tmp_path):
    lines: list[str] = []
    results = run(RunOptions(scenario=world["scenario"], target="knative", results_root=tmp_path / "results",
                             knative=world["target"], stores=world["stores"], grace=60), out=lines.append)
    text = "\n".join(lines)
    assert "cold start probe 1/1 checksum: zero after" in text and "cold start probe 1/1 copy" in text
    assert "copy at zero after" in text  # waited again before the load

    summary = json.loads((results / "summary.json").read_text())
    assert summary["target"] == "knative" and summary["requests"] > 0 and summary["failures"] == 0
    assert summary["validated"] == summary["requests"]
    assert "baseline_skipped" in summary  # the fresh-process baseline is local-only

    replicas = summary["replicas"]
    assert replicas["available"] is True
    assert set(replicas["services"]) == {"checksum", "copy"}
    assert all(s["max_ready"] == 1 and s["max_desired"] == 1 and s["errors"] == 0
               for s in replicas["services"].values())

    cold = summary["cold_starts"]
    assert cold["available"] and cold["failed_probes"] == 0
    assert sorted(c["function"] for c in cold["probes"]) == ["checksum", "copy"]
    assert all(c["waited_for_zero_s"] is not None and c["ttfb_s"] > 0 for c in cold["probes"])
    # the load started after zero: its first request per function was a cold start too
    assert {c["function"] for c in cold["in_load"]} == {"checksum", "copy"}

    page = (results / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6  # with replicas and cold starts
    assert {"replicas.png", "coldstarts.png"} <= {p.name for p in (results / "plots").iterdir()}
    # the Knative Services could not be read (the fake has none): recorded, not fatal
    live = summary["settings"]["live"]
    assert set(live) == {"checksum", "copy"} and all("HTTP 404" in v["error"] for v in live.values())
    # no credentials in the results directory
    for path in results.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".html"):
            assert "secret_access_key" not in path.read_text(errors="replace"), path
