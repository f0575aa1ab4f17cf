"""Reference figures measured in the same run as our functions: the raw
limits (boto3 GET, in-memory digests, direct server-side copy) and the tools
people would otherwise use (rclone, a fresh process per task)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from bench.copy_client import CopyClient
from bench.fixtures import delete_quietly, rclone_binary, rclone_env
from bench.measure import GB, MiB, Sampler, duration, per_gib, throughput

#: the CPU group of the streamed-copy reference's process (``bench.copy_client``)
COPY_CLIENT = "boto3-copy"

SEVEN = ("adler32", "crc32", "crc32c", "md5", "sha1", "sha256", "sha512")


def _same(got: int, want: int) -> None:
    if got != want:
        raise RuntimeError(f"read {got} bytes, expected {want}")


def _drained(body: Any, read_size: int = MiB) -> int:
    """Read a GET's body to its end ``read_size`` at a time, keeping nothing: how many bytes."""
    total = 0
    while chunk := body.read(read_size):
        total += len(chunk)
    return total


def _run_all(threads: list[threading.Thread]) -> None:
    """Start every thread, then wait for all (they run concurrently)."""
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def raw_get_single(client: Any, bucket: str, key: str, size: int, *, read_size: int) -> Sampler:
    """One GET, the body read ``read_size`` at a time (botocore StreamingBody.read)."""
    def run() -> int:
        return _drained(client.get_object(Bucket=bucket, Key=key)["Body"], read_size)

    return throughput(f"get.single.{read_size // MiB}MiB", f"boto3 GET, 1 stream, read({read_size // MiB} MiB)",
                      size, run, check=lambda n: _same(n, size))


def raw_get_ranged(client: Any, bucket: str, key: str, size: int, *, streams: int) -> Sampler:
    """``streams`` concurrent ranged GETs covering the object, 1 MiB reads."""
    step = -(-size // streams)

    def one(start: int, end: int, out: list[int]) -> None:
        out.append(_drained(client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]))

    def run() -> int:
        out: list[int] = []
        _run_all([threading.Thread(target=one, args=(s, min(s + step, size), out)) for s in range(0, size, step)])
        return sum(out)

    return throughput(f"get.ranged.{streams}", f"boto3 GET, {streams} ranged streams", size, run,
                      check=lambda n: _same(n, size))


def small_gets(client: Any, bucket: str, key: str, count: int) -> Sampler:
    """``count`` sequential boto3 GETs of a small object (milliseconds per GET):
    the client CPU of one small GET is what a small checksum cannot avoid."""
    def run() -> int:
        total = 0
        for _ in range(count):
            total += len(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        return total

    sampler = duration("get.small", f"boto3 GET of 4 KiB ({count} sequential, per GET)", run, unit="ms")
    whole = sampler.sample
    sampler.sample = lambda: whole() / count
    return sampler


def boto3_stream_copy(copier: CopyClient, bucket: str, key: str, dest_client: Any, dest_bucket: str,
                      dest_key: str, size: int) -> Sampler:
    """What a client does to copy between two identities without the function:
    a boto3 GET streamed into a managed multipart upload (s3transfer, 64 MiB
    parts), run by ``copier`` in a process of its own (``bench.copy_client``:
    its CPU is the reference of the streamed copy, measured as the group
    ``COPY_CLIENT``)."""
    return _copy_rate_sampler("boto3.stream_copy", "boto3 GET streamed into upload_fileobj (default -> archive, "
                              "a process of its own)", dest_client, dest_bucket, dest_key, size,
                              lambda: copier.copy(bucket, key, dest_bucket, dest_key))


def _random_views(buffer_mib: int) -> list[memoryview]:
    """``buffer_mib`` MiB of random bytes as the 8 MiB views the engine hashes."""
    data = bytearray(os.urandom(buffer_mib * MiB))
    return [memoryview(data)[i:i + 8 * MiB] for i in range(0, len(data), 8 * MiB)]


def in_memory_digests(*, buffer_mib: int = 64, rounds: int = 4) -> list[Sampler]:
    """GB/s of every algorithm on memory with the implementation the engine
    chose (``IMPLEMENTATIONS``), in 8 MiB updates as the engine makes them,
    plus the standard library's adler32/crc32 for comparison. One core."""
    from dynafed_runtime.digests import IMPLEMENTATIONS, new_digest

    views = _random_views(buffer_mib)
    size = buffer_mib * MiB * rounds
    samplers = []
    for algorithm in SEVEN:
        def run(algorithm: str = algorithm) -> None:
            digest = new_digest(algorithm)
            for _ in range(rounds):
                for view in views:
                    digest.update(view)

        samplers.append(throughput(f"mem.{algorithm}", f"in-memory {algorithm} ({IMPLEMENTATIONS[algorithm]})",
                                   size, run))
    for algorithm, fn in {"adler32": zlib.adler32, "crc32": zlib.crc32}.items():
        samplers.append(throughput(f"mem.{algorithm}.stdlib", f"in-memory {algorithm} (zlib, standard library)",
                                   size, lambda fn=fn: [fn(v) for _ in range(rounds) for v in views]))  # type: ignore[misc]
    for sampler in samplers:
        # CPU of this process per GiB hashed: the floor of what a digest costs
        per_gib(sampler, size)
        sampler.figure.extra["bytes"] = size
    return samplers


def packed_bound(client: Any, bucket: str, key: str, size: int, name: str, algorithms: tuple[str, ...], *,
                 buffer_mib: int = 64) -> Sampler:
    """The checksum's work without the function: one raw boto3 GET of the
    object (1 MiB reads) while the requested digests hash as many bytes of
    memory, the CRC-like ones on one thread and each other digest on its own,
    all at once. Nothing is handed between threads, so its wall time is what
    this machine's scheduler makes of that CPU work: the *measured* bound
    beside the ideal one of the machine-limit ratio (which assumes the cores
    are packed perfectly)."""
    from dynafed_contract.algorithms import CRC_LIKE
    from dynafed_runtime.digests import new_digest

    views = _random_views(buffer_mib)
    repeats = max(1, -(-size // (buffer_mib * MiB)))
    groups = [[a for a in algorithms if a in CRC_LIKE]] + [[a] for a in algorithms if a not in CRC_LIKE]
    groups = [g for g in groups if g]

    def hash_memory(group: list[str]) -> None:
        digests = [new_digest(a) for a in group]
        for _ in range(repeats):
            for view in views:
                for digest in digests:
                    digest.update(view)

    def get(out: list[int]) -> None:
        out.append(_drained(client.get_object(Bucket=bucket, Key=key)["Body"]))

    def run() -> int:
        out: list[int] = []
        threads = [threading.Thread(target=get, args=(out,))]
        threads += [threading.Thread(target=hash_memory, args=(g,)) for g in groups]
        _run_all(threads)
        return sum(out)

    return throughput(f"pack.{name}", f"raw GET beside the {name} digests in memory, concurrently (measured bound)",
                      size, run, check=lambda n: _same(n, size))


def rclone_hashsum(stores: Mapping[str, Mapping[str, str]], store: str, bucket: str, key: str, size: int,
                   algorithm: str, expected: str | None) -> Sampler:
    """``rclone hashsum <algo> --download`` on the object (process start included)."""
    env = rclone_env(stores)
    argv = [rclone_binary(), "hashsum", algorithm, "--download", f"{store}:{bucket}/{key}"]

    def run() -> str:
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=600)
        return out.stdout.split()[0].lower() if out.stdout.split() else ""

    def check(value: str) -> None:
        if expected is not None and value.lstrip("0") != expected.lstrip("0"):
            raise RuntimeError(f"rclone {algorithm} gave {value}, expected {expected}")

    return throughput(f"rclone.{algorithm}", f"rclone hashsum {algorithm} --download", size, run, check=check)


def rclone_copy(stores: Mapping[str, Mapping[str, str]], source: tuple[str, str, str],
                destination: tuple[str, str, str], dest_client: Any, size: int) -> Sampler:
    """``rclone copyto`` between two remotes (two identities: streamed through rclone)."""
    env = rclone_env(stores)
    argv = [rclone_binary(), "copyto", f"{source[0]}:{source[1]}/{source[2]}",
            f"{destination[0]}:{destination[1]}/{destination[2]}"]

    return _copy_rate_sampler("rclone.copy", "rclone copyto between the two stores (default -> archive)",
                              dest_client, destination[1], destination[2], size,
                              lambda: subprocess.run(argv, env=env, capture_output=True, check=True, timeout=1200))


def _copy_rate_sampler(key: str, name: str, client: Any, dest_bucket: str, dest_key: str, size: int,
                       copy: Callable[[], object]) -> Sampler:
    """GB/s of ``copy()``, the destination deleted before (untimed) and after,
    its size checked (a copy through the client: the streamed references)."""
    def sample() -> float:
        delete_quietly(client, dest_bucket, dest_key)
        started = time.perf_counter()
        copy()
        seconds = time.perf_counter() - started
        head = client.head_object(Bucket=dest_bucket, Key=dest_key)
        delete_quietly(client, dest_bucket, dest_key)
        _same(int(head["ContentLength"]), size)
        return size / seconds / GB

    sampler = throughput(key, name, size, lambda: None)
    sampler.sample = sample
    return sampler


def _copy_sampler(key: str, name: str, client: Any, dest_bucket: str, dest_key: str,
                  copy: Any) -> Sampler:
    """Seconds of ``copy()``, the destination deleted before (untimed) and after."""
    def sample() -> float:
        delete_quietly(client, dest_bucket, dest_key)
        started = time.perf_counter()
        copy()
        seconds = time.perf_counter() - started
        delete_quietly(client, dest_bucket, dest_key)
        return seconds

    sampler = duration(key, name, lambda: None)
    sampler.sample = sample
    return sampler


def boto3_copy_object(client: Any, bucket: str, key: str, dest_bucket: str, dest_key: str) -> Sampler:
    """Direct CopyObject (server-side, one request; S3 allows it up to 5 GiB)."""
    return _copy_sampler("boto3.copy_object", "boto3 CopyObject (server-side)", client, dest_bucket, dest_key,
                         lambda: client.copy_object(Bucket=dest_bucket, Key=dest_key,
                                                    CopySource={"Bucket": bucket, "Key": key}))


def boto3_managed_copy(client: Any, bucket: str, key: str, dest_bucket: str, dest_key: str) -> Sampler:
    """s3transfer's managed copy: concurrent UploadPartCopy (64 MiB parts, 10 threads)."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB, max_concurrency=10)
    return _copy_sampler("boto3.managed_copy", "boto3 managed copy (10 concurrent UploadPartCopy of 64 MiB)",
                         client, dest_bucket, dest_key,
                         lambda: client.copy({"Bucket": bucket, "Key": key}, dest_bucket, dest_key, Config=config))


FRESH_PROCESS = """
import json, sys, zlib
import boto3
from botocore.config import Config
s = json.loads(sys.stdin.read())
c = boto3.client("s3", endpoint_url=s["endpoint_url"], region_name=s.get("region", "us-east-1"),
                 aws_access_key_id=s["access_key_id"], aws_secret_access_key=s["secret_access_key"],
                 config=Config(s3={"addressing_style": "path"}))
data = c.get_object(Bucket=s["bucket"], Key=s["key"])["Body"].read()
print("%08x" % zlib.adler32(data))
"""


def fresh_process(store: Mapping[str, str], bucket: str, key: str, expected: str) -> Sampler:
    """A fresh interpreter per task: ``import boto3``, fetch the object, adler32."""
    payload = json.dumps({**store, "bucket": bucket, "key": key})

    def run() -> str:
        out = subprocess.run([sys.executable, "-c", FRESH_PROCESS], input=payload, capture_output=True,
                             text=True, check=True, timeout=60)
        return out.stdout.strip()

    def check(value: str) -> None:
        if value != expected:
            raise RuntimeError(f"fresh process adler32 {value} != {expected}")

    return duration("fresh.python", "fresh process per task (python -c: import boto3, GET 4 KiB, adler32)", run,
                    unit="ms", check=check)


def legacy_backend(state_dir: str, bucket: str, key: str, expected: str) -> Sampler:
    """The project's legacy baseline (dynafed_client.legacy): a worker process per task."""
    from dynafed_client.legacy import LocalBackend

    backend = LocalBackend.from_stack(state_dir)

    def run() -> str:
        return str(backend.checksum({"store": "default", "bucket": bucket, "key": key}, ["adler32"])
                   .checksums["adler32"])

    def check(value: str) -> None:
        if value != expected:
            raise RuntimeError(f"legacy worker adler32 {value} != {expected}")

    return duration("fresh.legacy", "legacy worker process per task (dynafed_client.legacy)", run, unit="ms",
                    check=check)
