"""The Locust users end to end against a fake function: a real Locust
subprocess (as the runner starts it) posting to a small HTTP server on
127.0.0.1 that answers right for some objects and wrong for others. A wrong
checksum must be a failure with code WRONG_ANSWER, never a success."""
from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from loadtest.config import load_scenario
from loadtest.requestlog import read_rows
from loadtest.runner import run_locust
from loadtest.seed import LARGE, SMALL_CACHED, SMALL_UNCACHED, Manifest, SeededObject
from loadtest.targets import Endpoint, RunSpec, Target
from tests.loopback_http import send_body

OBJECTS = (
    SeededObject(SMALL_CACHED, "lt/f/small-cached/good.bin", 100, {"adler32": "00000064", "md5": "a" * 32}),
    SeededObject(SMALL_CACHED, "lt/f/small-cached/bad.bin", 200, {"adler32": "000000c8", "md5": "b" * 32}),
    SeededObject(SMALL_UNCACHED, "lt/f/small-uncached/ok.bin", 300, {"adler32": "0000012c", "md5": "c" * 32}),
    SeededObject(SMALL_UNCACHED, "lt/f/small-uncached/gone.bin", 400, {"adler32": "00000190", "md5": "d" * 32}),
    SeededObject(LARGE, "lt/f/large/big.bin", 10_000, {"adler32": "00002710", "md5": "e" * 32}),
)
BY_KEY = {o.key: o for o in OBJECTS}


class FakeFunctions:
    def __init__(self) -> None:
        self.bodies: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.lock = threading.Lock()

    def answer(self, host: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, str, bytes]:
        with self.lock:
            self.bodies.append((host, headers, body))
        if "source" in body:  # copy
            obj = BY_KEY[body["source"]["key"]]
            strategy = "server-side" if body["destination"]["store"] == "default" else "stream"
            result = {"type": "result", "job_id": body["job_id"], "status": "completed", "strategy": strategy,
                      "bytes": obj.size, "checksums": {"adler32": obj.checksums["adler32"]}, "verified": True}
            if "application/x-ndjson" in headers.get("accept", ""):
                lines = [{"type": "progress", "bytes": obj.size // 2, "total": obj.size}, result]
                return 200, "application/x-ndjson", "".join(json.dumps(x) + "\n" for x in lines).encode()
            return 200, "application/json", json.dumps(result).encode()
        obj = BY_KEY[body["key"]]
        if obj.key.endswith("gone.bin"):
            problem = {"status": 404, "title": "Not Found", "code": "NO_SUCH_OBJECT", "detail": "no such key",
                       "retryable": False}
            return 404, "application/problem+json", json.dumps(problem).encode()
        checksums = {a: obj.checksums[a] for a in body["algorithms"]}
        if obj.key.endswith("bad.bin"):
            checksums["adler32"] = "deadbeef"
        cached = list(body["algorithms"]) if obj.kind == SMALL_CACHED and body["cache"] == "use" else []
        answer = {"store": body["store"], "bucket": body["bucket"], "key": obj.key, "size": obj.size,
                  "etag": "x", "checksums": checksums, "cached": cached, "elapsed_s": 0.001}
        return 200, "application/json", json.dumps(answer).encode()


@pytest.fixture
def functions() -> Iterator[tuple[FakeFunctions, str]]:
    fake = FakeFunctions()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            headers = {k.lower(): v for k, v in self.headers.items()}
            extra = {}
            if body.get("key", "").endswith("big.bin"):
                # one handler per keep-alive connection (= per Locust user): shed every
                # other large checksum with 429, as a saturated function does
                self.shed = not getattr(self, "shed", False)
            if body.get("key", "").endswith("big.bin") and self.shed:
                problem = {"status": 429, "title": "Too Many Requests", "code": "TOO_MANY_REQUESTS",
                           "detail": "function is saturated; retry later", "retryable": True}
                status, ctype, data = 429, "application/problem+json", json.dumps(problem).encode()
                extra["Retry-After"] = "0"
            else:
                status, ctype, data = fake.answer(self.headers.get("Host", ""), headers, body)
            send_body(self, status, data, ctype, extra)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_users_validate_every_answer_and_count_wrong_ones_as_failures(functions, tmp_path: Path):
    fake, url = functions
    scenario = load_scenario("smoke", ["shape.hold=3s", "shape.users=3", "users.wait_max=0.02"])
    manifest = Manifest(seed=1, store="default", bucket="demo", prefix="lt/f", algorithms=("adler32", "md5"),
                        cached_algorithms=("adler32", "md5"), objects=OBJECTS)
    manifest.save(tmp_path / "objects.json")
    target = Target("local", {"checksum": Endpoint(url, host="checksum.dynafed-fn.example.com"),
                              "copy": Endpoint(url)})
    spec = RunSpec(run_id="t1", mode="functions", results_dir=str(tmp_path), scenario=scenario.to_dict(),
                   target=target.to_json(), manifest=str(tmp_path / "objects.json"),
                   requests_log=str(tmp_path / "requests.csv"), copy_prefix="lt/copies/t1/functions")

    phase = run_locust(spec, scenario.duration(), grace=60)

    assert phase.exit_code == 0 and not phase.timed_out
    rows = read_rows(tmp_path / "requests.csv")
    names = Counter(r["name"] for r in rows)
    assert set(names) == {"checksum:small-cached", "checksum:small-uncached", "checksum:large", "copy:server-side",
                          "copy:stream"}
    failures = Counter((r["name"], r["code"]) for r in rows if not r["ok"])
    # exactly the planted faults, under their own codes
    assert set(failures) == {("checksum:small-cached", "WRONG_ANSWER"), ("checksum:small-uncached", "NO_SUCH_OBJECT"),
                             ("checksum:large", "TOO_MANY_REQUESTS")}
    # every shed attempt was retried after Retry-After, and the retry succeeded
    large_ok = sum(1 for r in rows if r["name"] == "checksum:large" and r["ok"])
    assert large_ok >= failures[("checksum:large", "TOO_MANY_REQUESTS")] > 0
    # every 200 answer was validated; the 404s were not (nothing to compare)
    assert all(r["validated"] for r in rows if r["code"] not in ("NO_SUCH_OBJECT", "TOO_MANY_REQUESTS"))
    assert all(r["ok"] for r in rows if r["function"] == "copy")
    # Locust's own statistics agree with the request log
    stats = (tmp_path / "locust_stats.csv").read_text().splitlines()
    aggregated = next(line for line in stats if ",Aggregated," in line).split(",")
    assert int(aggregated[2]) == len(rows) and int(aggregated[3]) == sum(failures.values())
    failures_csv = (tmp_path / "locust_failures.csv").read_text()
    assert "wrong adler32: got deadbeef" in failures_csv

    # what went over the wire
    checksum_calls = [(h, b) for h, _, b in fake.bodies if "key" in b]
    assert {h for h, _ in checksum_calls} == {"checksum.dynafed-fn.example.com"}
    assert {b["cache"] for _, b in checksum_calls if "small" in b["key"]} == {"use"}
    assert {b["cache"] for _, b in checksum_calls if "large" in b["key"]} == {"none"}
    copies = [(hd, b) for _, hd, b in fake.bodies if "source" in b]
    keys = [b["destination"]["key"] for _, b in copies]
    assert len(keys) == len(set(keys)) and all(k.startswith("lt/copies/t1/functions/") for k in keys)
    assert all(b["overwrite"] is False for _, b in copies)
    streamed = [hd for hd, b in copies if b["destination"]["store"] == "archive"]
    assert streamed and all(hd.get("accept") == "application/x-ndjson" for hd in streamed)
