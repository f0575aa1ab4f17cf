"""A bounded soak: mixed checksum and copy load through the client library,
with faults injected the whole time, then the invariants.

Set-up: SeaweedFS (the local stack's), the fault proxy in front of it for
every store the functions use, both functions under gunicorn exactly as
their containers run them, and a CloudEvents sink that flaps.

Load: ``clients`` threads, each looping over a random choice of checksum
(random algorithms and cache mode) or copy (streamed to another identity, or
server-side within one) of objects from a corpus of known bytes.

Faults, all the time: S3 errors below and beyond the retry budget (503
SlowDown, 500, 400 RequestTimeout), connections cut in GET bodies, flipped
bytes (only on objects that carry a stored checksum: elsewhere nothing could
tell), delayed requests; SIGKILL of a checksum and of a copy worker; the
event sink failing (500) and slow.

Invariants checked at the end (the run fails if one breaks):

* every 200 checksum answer equals the checksum of the stored bytes;
* every completed copy reads back byte-identical (size and adler32 of the
  destination, read directly from SeaweedFS), every failed copy left no
  destination;
* failures carry only expected codes (retryable ones, or CHECKSUM_MISMATCH
  where a byte was flipped); never INTERNAL or an unexpected 4xx;
* no multipart upload is left open in any bucket;
* workers' memory (VmRSS) and open file descriptors stay flat over the
  fault-free-of-kills second half of the run.

The summary is printed and written as JSON.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import statistics
import tempfile
import threading
import time
import traceback
import uuid
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
BUCKETS = ("demo", "demo-copy", "archive")
SIZES = (0, 1, 1024, 100_000, 3 * MiB + 7, 6 * MiB, 11 * MiB + 1, 17 * MiB)
ALGORITHMS = ("adler32", "crc32", "crc32c", "md5", "sha1", "sha256", "sha512")
#: failures a client may legitimately end with under injected faults
EXPECTED_CODES = {"UPSTREAM_UNAVAILABLE", "UPSTREAM_ERROR", "TOO_MANY_REQUESTS", "SHUTTING_DOWN", "SOURCE_CHANGED"}
#: memory growth tolerated between the two halves' samples (either bound)
RSS_GROWTH_PCT = 20.0
RSS_GROWTH_KB = 48 * 1024
FD_GROWTH = 8


@dataclasses.dataclass
class SoakConfig:
    seconds: float = 180.0
    clients: int = 3
    seed: int = 6
    out: Path = Path("soak-summary.json")
    #: seconds between two injected S3 faults
    fault_every: float = 1.5
    #: copy function settings: small parts so copies are multipart and resumable
    part_bytes: int = 5 * MiB


@dataclasses.dataclass
class Item:
    key: str
    size: int
    adler32: str
    digests: dict[str, str]
    stored: bool


def reference(data: bytes) -> dict[str, str]:
    import google_crc32c

    out = {"adler32": f"{zlib.adler32(data):08x}", "crc32": f"{zlib.crc32(data):08x}",
           "crc32c": f"{google_crc32c.value(data):08x}"}
    for name in ("md5", "sha1", "sha256", "sha512"):
        out[name] = hashlib.new(name, data).hexdigest()
    return out


class Ledger:
    """What happened, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: Counter[str] = Counter()
        self.violations: list[str] = []
        self.copies: list[tuple[str, str, str, str]] = []  # (job_id, dest store, dest key, source key)
        self.failed_copies: list[tuple[str, str, str, str]] = []  # (job_id, dest store, dest key, code)
        self.checksum_bytes = 0
        self.copy_bytes = 0

    def count(self, what: str) -> None:
        with self.lock:
            self.jobs[what] += 1

    def violate(self, what: str) -> None:
        with self.lock:
            self.violations.append(what)


class Sampler(threading.Thread):
    """VmRSS and fd counts of the functions' workers, every ``every`` seconds."""

    def __init__(self, functions: dict[str, Any], every: float = 2.0) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.functions = functions
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        from tests.faults.processes import fd_count, rss_kb

        while not self.stop.wait(self.every):
            t = time.monotonic() - self.started
            for name, fn in self.functions.items():
                for pid in fn.worker_pids():
                    self.samples.append({"t": t, "function": name, "pid": pid, "rss_kb": rss_kb(pid),
                                         "fds": fd_count(pid)})

    def growth(self, name: str, since: float, until: float) -> dict[str, Any]:
        """Median RSS / fds in the first and last fifth of [since, until], for the
        worker alive through that window."""
        window = [s for s in self.samples if s["function"] == name and since <= s["t"] <= until]
        if not window:
            return {"samples": 0}
        pid = Counter(s["pid"] for s in window).most_common(1)[0][0]
        mine = [s for s in window if s["pid"] == pid]
        span = until - since
        head = [s for s in mine if s["t"] <= since + span / 5]
        tail = [s for s in mine if s["t"] >= until - span / 5]
        if not head or not tail:
            return {"samples": len(mine)}
        rss0, rss1 = statistics.median(s["rss_kb"] for s in head), statistics.median(s["rss_kb"] for s in tail)
        fd0, fd1 = statistics.median(s["fds"] for s in head), statistics.median(s["fds"] for s in tail)
        return {"pid": pid, "samples": len(mine), "rss_kb_start": rss0, "rss_kb_end": rss1,
                "rss_growth_kb": rss1 - rss0, "rss_growth_pct": round(100.0 * (rss1 - rss0) / max(rss0, 1), 1),
                "rss_kb_max": max(s["rss_kb"] for s in mine), "fds_start": fd0, "fds_end": fd1,
                "fd_growth": fd1 - fd0}


class Faults(threading.Thread):
    """Injects S3 faults through the proxy, event-sink outages and worker kills."""

    def __init__(self, proxy: Any, sink: Any, functions: dict[str, Any], config: SoakConfig,
                 rng: random.Random) -> None:
        super().__init__(name="soak-faults", daemon=True)
        self.proxy, self.sink, self.functions, self.config, self.rng = proxy, sink, functions, config, rng
        self.stop = threading.Event()
        self.kills: Counter[str] = Counter()
        self.sink_outages: Counter[str] = Counter()
        self.kill_times: list[float] = []
        self.kill_wall: list[float] = []  # epoch seconds of the kills (orphaned uploads date from them)
        self.started = time.monotonic()

    def _s3_fault(self) -> None:
        from tests.faults.proxy import CutAfter, Delay, ErrorReply, FlipByte, Rule

        rng = self.rng
        ops = ["GetObject", "HeadObject", "UploadPart", "PutObject", "CopyObject", "UploadPartCopy",
               "CreateMultipartUpload", "CompleteMultipartUpload"]
        choice = rng.choices(["slowdown", "500", "timeout", "burst", "cut", "flip", "delay"],
                             weights=[4, 3, 2, 1, 3, 2, 2])[0]
        if choice == "slowdown":
            rule = Rule(op=rng.choice(ops), action=ErrorReply.slow_down(), times=rng.randint(1, 2))
        elif choice == "500":
            rule = Rule(op=rng.choice(ops), action=ErrorReply.internal_error(), times=rng.randint(1, 2))
        elif choice == "timeout":
            rule = Rule(op=rng.choice(ops), action=ErrorReply.request_timeout(), times=1)
        elif choice == "burst":  # beyond the retry budget: a request fails, the client retries it
            rule = Rule(op=rng.choice(["GetObject", "UploadPart", "HeadObject"]),
                        action=ErrorReply.service_unavailable(), times=8)
        elif choice == "cut":
            rule = Rule(op="GetObject", action=CutAfter(rng.randint(1, 4 * MiB), reset=rng.random() < 0.5),
                        times=1)
        elif choice == "flip":  # only where a stored checksum can tell
            rule = Rule(op="GetObject", path="/stored/", action=FlipByte(rng.randint(0, 100_000)), times=1)
        else:
            rule = Rule(op=rng.choice(ops), action=Delay(rng.uniform(0.2, 1.5)), times=rng.randint(1, 3))
        self.proxy.add(rule)
        # forget rules that fired out, so matching stays cheap
        with self.proxy._lock:
            self.proxy.rules[:] = [r for r in self.proxy.rules if r.times is None or r.applied < r.times]

    def run(self) -> None:
        seconds = self.config.seconds
        kills = {0.20: "copy", 0.30: "checksum", 0.40: "copy"}  # fractions of the run
        next_sink, restore_at = 15.0, None
        while not self.stop.wait(self.config.fault_every):
            elapsed = time.monotonic() - self.started
            self._s3_fault()
            for fraction, name in list(kills.items()):
                if elapsed >= fraction * seconds:
                    del kills[fraction]
                    try:
                        self.functions[name].kill_worker()
                        self.kills[name] += 1
                        self.kill_times.append(elapsed)
                        self.kill_wall.append(time.time())
                    except RuntimeError:
                        pass
            if restore_at is not None and elapsed >= restore_at:
                self.sink.status, self.sink.delay_s, restore_at = 202, 0.0, None
            if elapsed >= next_sink:
                next_sink, restore_at = elapsed + 20.0, elapsed + 8.0
                mode = self.rng.choice(["failing", "slow"])
                self.sink_outages[mode] += 1
                if mode == "failing":
                    self.sink.status = 500
                else:
                    self.sink.delay_s = 3.0
        self.sink.status, self.sink.delay_s = 202, 0.0


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "code", type(exc).__name__))


def _client_loop(client: Any, corpus: list[Item], ledger: Ledger, stop: threading.Event, rng: random.Random) -> None:
    from dynafed_client.errors import ClientError

    while not stop.is_set():
        item = rng.choice(corpus)
        if rng.random() < 0.55:
            algorithms = rng.sample(ALGORITHMS, rng.randint(1, 3))
            if item.stored and "adler32" not in algorithms:
                # a flipped byte is caught against the stored value of an algorithm the
                # request computes (docs/reliability.md): ask for it, as Dynafed does
                algorithms.append("adler32")
            # "use" answers stored values from metadata and verifies nothing it computes
            # besides them: with flips injected on stored objects, only "none" is guaranteed
            cache = "none" if item.stored else rng.choice(["none", "use"])
            try:
                result = client.checksum(f"default:demo/{item.key}", algorithms, cache=cache)
            except ClientError as exc:
                code = _code(exc)
                ledger.count(f"checksum:failed:{code}")
                if code == "CHECKSUM_MISMATCH" and item.stored:
                    continue  # a flipped byte, reported: the protection working
                if not (exc.retryable and code in EXPECTED_CODES | {"TransportError", "ConnectError"}):
                    ledger.violate(f"checksum {item.key}: unexpected failure {code}: {exc}")
                continue
            ledger.count("checksum:ok")
            wrong = {a: v for a, v in result.checksums.items() if v != item.digests[a]}
            if wrong:
                ledger.violate(f"checksum {item.key}: WRONG {wrong} (expected {item.digests})")
            with ledger.lock:
                ledger.checksum_bytes += item.size
        else:
            job_id = f"soak-{uuid.uuid4().hex[:16]}"
            store, bucket = rng.choice([("archive", "archive"), ("default", "demo-copy")])
            dest_key = f"soak/{job_id}"
            kind = "stream" if store == "archive" else "server-side"
            try:
                result = client.copy(f"default:demo/{item.key}", f"{store}:{bucket}/{dest_key}", job_id=job_id)
            except ClientError as exc:
                code = _code(exc)
                ledger.count(f"copy:{kind}:failed:{code}")
                with ledger.lock:
                    ledger.failed_copies.append((job_id, store, f"{bucket}/{dest_key}", code))
                if code == "CHECKSUM_MISMATCH" and item.stored:
                    continue
                if not (exc.retryable and code in EXPECTED_CODES | {"TransportError", "ConnectError"}):
                    ledger.violate(f"copy {job_id}: unexpected failure {code}: {exc}")
                continue
            ledger.count(f"copy:{kind}:{result.status}")
            if not result.verified:
                ledger.violate(f"copy {job_id}: answered without verification")
            with ledger.lock:
                ledger.copies.append((job_id, store, f"{bucket}/{dest_key}", item.key))


def _verify(s3: dict[str, Any], corpus: dict[str, Item], ledger: Ledger, copy_url: str,
            kill_wall: list[float]) -> dict[str, Any]:
    import requests

    verified_bytes = 0
    for job_id, store, where, source_key in ledger.copies:
        bucket, key = where.split("/", 1)
        item = corpus[source_key]
        try:
            body = s3[store].get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # a completed copy that is not there
            ledger.violate(f"copy {job_id}: destination unreadable: {type(exc).__name__}")
            continue
        if len(body) != item.size or f"{zlib.adler32(body):08x}" != item.adler32:
            ledger.violate(f"copy {job_id}: destination differs from the source")
            continue
        verified_bytes += len(body)
    leftovers = 0
    for job_id, store, where, code in ledger.failed_copies:
        bucket, key = where.split("/", 1)
        try:
            s3[store].head_object(Bucket=bucket, Key=key)
        except Exception:
            continue
        leftovers += 1
        if code == "CHECKSUM_MISMATCH":
            ledger.violate(f"copy {job_id}: failed verification but left a destination")
    # Uploads still open now. A worker SIGKILLed between CreateMultipartUpload and
    # its witness part leaves one that no re-post can find (S3 cannot say whose it
    # is): those, and only those, are the cleanup's job (POST /cleanup, or the bucket
    # lifecycle rule; functions/copy/cleanup.py), run here as the deployment would.
    orphans, unexplained = [], []
    for bucket in BUCKETS:
        owner = "archive" if bucket == "archive" else "default"
        for upload in s3[owner].list_multipart_uploads(Bucket=bucket).get("Uploads") or []:
            initiated = upload["Initiated"].timestamp()
            by_kill = any(kill - 300 <= initiated <= kill + 2 for kill in kill_wall)
            (orphans if by_kill else unexplained).append(f"{bucket}/{upload['Key']}")
            parts = s3[owner].list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            numbers = [p["PartNumber"] for p in parts.get("Parts") or []]
            if by_kill and numbers not in ([], [10000]):
                ledger.violate(f"an upload orphaned by a kill holds data parts {numbers}: {bucket}/{upload['Key']}")
    if unexplained:
        ledger.violate(f"open multipart uploads left that no worker kill explains: {unexplained}")
    cleaned = 0
    for bucket in BUCKETS:
        store = "archive" if bucket == "archive" else "default"
        answer = requests.post(f"{copy_url}/cleanup", json={"store": store, "bucket": bucket, "older_than_s": 0},
                               timeout=60)
        if answer.status_code != 200:
            ledger.violate(f"cleanup of {bucket} answered {answer.status_code}: {answer.text[:200]}")
            continue
        cleaned += len(answer.json().get("aborted") or [])
    still_open = [f"{bucket}/{u['Key']}" for bucket in BUCKETS
                  for u in s3["archive" if bucket == "archive" else "default"].list_multipart_uploads(
                      Bucket=bucket).get("Uploads") or []]
    if still_open:
        ledger.violate(f"open multipart uploads left after cleanup: {still_open}")
    return {"copies": len(ledger.copies), "bytes": verified_bytes, "failed_copy_destinations_left": leftovers,
            "orphaned_uploads_by_kills": orphans, "unexplained_open_uploads": unexplained,
            "aborted_by_cleanup": cleaned, "open_multipart_uploads": still_open}


def run(config: SoakConfig) -> dict[str, Any]:
    """Run the soak; returns the summary (``ok`` False when an invariant broke)."""
    from dynafed_client.client import Client
    from dynafed_client.config import ClientConfig, FunctionEndpoint
    from dynafed_client.retry import RetryPolicy
    from dynafed_client.stack import Stack
    from tests.faults.processes import EventSink, FunctionProcess, write_stores
    from tests.faults.proxy import FaultProxy

    rng = random.Random(config.seed)
    work = Path(tempfile.mkdtemp(prefix="dynafed-soak-"))
    started = time.monotonic()
    print(f"soak: {config.seconds:.0f} s, {config.clients} clients, work dir {work}", flush=True)
    stack = Stack.up(work / "stack", functions=(), with_events=False, with_gateway=False)
    try:
        with FaultProxy(stack.endpoint_url) as proxy, EventSink() as sink:
            s3 = {"default": stack.s3_client("default"), "archive": stack.s3_client("archive")}
            corpus = _upload_corpus(s3["default"], rng)
            stores_file = write_stores(work / "stores.json", stack.stores, proxy.url)  # every store via the proxy
            env = {"THREADS": "4", "GRACEFUL_TIMEOUT": "10", "DYNAFED_FN_COPY_PART_BYTES": str(config.part_bytes),
                   "DYNAFED_FN_COPY_SERVER_SIDE_THRESHOLD": str(8 * MiB),
                   "DYNAFED_FN_COPY_SERVER_SIDE_PART_BYTES": str(config.part_bytes),
                   "DYNAFED_FN_COPY_PARTS_IN_FLIGHT": "2"}
            functions = {name: FunctionProcess(name, stores_file, work, env=env, sink=sink.url).start()
                         for name in ("checksum", "copy")}
            try:
                client_config = ClientConfig(
                    functions={n: FunctionEndpoint(f.url) for n, f in functions.items()}, concurrency=config.clients,
                    read_timeout=120, stream_idle_timeout=60,
                    retry=RetryPolicy(attempts=12, base_delay=0.2, max_delay=3.0, deadline=90))
                ledger = Ledger()
                sampler = Sampler(functions)
                faults = Faults(proxy, sink, functions, config, random.Random(config.seed + 1))
                stop = threading.Event()
                items = list(corpus.values())
                with Client(client_config) as client:
                    threads = [threading.Thread(target=_guard, args=(_client_loop, ledger, client, items, ledger, stop,
                                                                    random.Random(config.seed + 10 + i)),
                                                name=f"soak-client-{i}", daemon=True)
                               for i in range(config.clients)]
                    sampler.start()
                    faults.start()
                    for thread in threads:
                        thread.start()
                    deadline = time.monotonic() + config.seconds
                    while time.monotonic() < deadline:
                        time.sleep(1.0)
                        _progress(ledger, proxy, faults, time.monotonic() - started)
                    faults.stop.set()
                    faults.join(30)
                    stop.set()
                    for thread in threads:
                        thread.join(240)
                    proxy.clear()
                    sampler.stop.set()
                    sampler.join(10)
                verification = _verify(s3, corpus, ledger, functions["copy"].url, faults.kill_wall)
                last_kill = max(faults.kill_times, default=0.0)
                window = (max(last_kill + 10.0, config.seconds * 0.45), config.seconds)
                resources = {name: sampler.growth(name, *window) for name in functions}
                for name, growth in resources.items():
                    if "rss_growth_kb" not in growth:
                        ledger.violate(f"{name}: too few resource samples in the second half")
                        continue
                    if growth["rss_growth_kb"] > RSS_GROWTH_KB and growth["rss_growth_pct"] > RSS_GROWTH_PCT:
                        ledger.violate(f"{name}: worker memory grew {growth['rss_growth_kb']} KiB "
                                       f"({growth['rss_growth_pct']} %)")
                    if growth["fd_growth"] > FD_GROWTH:
                        ledger.violate(f"{name}: worker file descriptors grew by {growth['fd_growth']}")
                secrets = [s["secret_access_key"] for s in stack.stores.values()]
                for name, fn in functions.items():
                    if any(secret in fn.log_text() for secret in secrets):
                        ledger.violate(f"{name}: a store secret is in its log")
            finally:
                for fn in functions.values():
                    fn.stop()
            summary = {
                "ok": not ledger.violations,
                "duration_s": round(time.monotonic() - started, 1),
                "load_s": config.seconds,
                "clients": config.clients,
                "seed": config.seed,
                "jobs": dict(sorted(ledger.jobs.items())),
                "jobs_total": sum(ledger.jobs.values()),
                "faults": {
                    "s3": {k.removeprefix("fault:"): v for k, v in sorted(proxy.stats.items())
                           if k.startswith("fault:")},
                    "s3_total": proxy.injected(),
                    "s3_requests": proxy.requests(),
                    "worker_kills": dict(faults.kills),
                    "sink_outages": dict(faults.sink_outages),
                    "sink_attempts": sink.attempts,
                    "events_delivered": len(sink.events),
                },
                "verified": {**verification, "checksum_answers": ledger.jobs["checksum:ok"],
                             "checksum_bytes": ledger.checksum_bytes},
                "leaks": {"open_multipart_uploads": len(verification["open_multipart_uploads"]),
                          "orphaned_by_kills_then_cleaned": len(verification["orphaned_uploads_by_kills"]),
                          "resources_window_s": [round(w, 1) for w in window], "workers": resources},
                "violations": ledger.violations[:50],
            }
    finally:
        stack.down()
    config.out.write_text(json.dumps(summary, indent=2) + "\n")
    if summary["ok"]:
        # the store's data of a long run is gigabytes; a failed run keeps it, with the logs
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"soak: logs and data kept in {work}", flush=True)
    return summary


def _guard(fn: Any, ledger: Ledger, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # a crash of the load itself is a finding, not a silent thread death
        ledger.violate(f"client thread crashed: {traceback.format_exc()[-800:]}")


def _progress(ledger: Ledger, proxy: Any, faults: Faults, elapsed: float) -> None:
    if int(elapsed) % 15 == 0:
        done = sum(v for k, v in ledger.jobs.items() if k.endswith((":ok", ":completed", ":already-present")))
        print(f"soak: {elapsed:5.0f} s  jobs {sum(ledger.jobs.values())} (ok {done})  "
              f"faults {proxy.injected()}  kills {sum(faults.kills.values())}  "
              f"violations {len(ledger.violations)}", flush=True)


def _upload_corpus(s3: Any, rng: random.Random) -> dict[str, Item]:
    corpus: dict[str, Item] = {}
    for i, size in enumerate(SIZES * 3):
        stored = i % 2 == 0
        key = f"soak-src/{'stored' if stored else 'plain'}/{i:03d}"
        data = rng.randbytes(size)
        digests = reference(data)
        metadata = {"adler32": digests["adler32"], "md5": digests["md5"]} if stored else {}
        s3.put_object(Bucket="demo", Key=key, Body=data, Metadata=metadata)
        corpus[key] = Item(key, size, digests["adler32"], digests, stored)
    return corpus


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 180)))
    parser.add_argument("--clients", type=int, default=int(os.environ.get("SOAK_CLIENTS", 3)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", 6)))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("SOAK_OUT", "soak-summary.json")))
    args = parser.parse_args(argv)
    if args.seconds < 60:
        # kills happen in the first 40 %, memory and fds are judged after them
        parser.error("--seconds must be at least 60 (the resource check needs a kill-free second half)")
    summary = run(SoakConfig(seconds=args.seconds, clients=args.clients, seed=args.seed, out=args.out))
    print(json.dumps(summary, indent=2))
    print(f"soak: {'OK' if summary['ok'] else 'FAILED'}; summary in {args.out}")
    return 0 if summary["ok"] else 1
