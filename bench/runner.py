"""One benchmark run: stack up, objects, every measurement, report, stack down."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import google_crc32c

from bench import fixtures, ours, references
from bench import report as reporting
from bench.copy_client import CopyClient
from bench.cpu import CpuMeter
from bench.measure import Figure, MiB, Sampler, per_gib, per_request, run_rounds
from bench.targets import HEADLINE, SEVEN, evaluate

GiB = 1024 * MiB
BUCKET = "demo"
COPY_BUCKET = "demo-copy"
ARCHIVE_BUCKET = "archive"


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    out_dir: Path = Path("bench-results")
    #: size of the main object (checksums, GETs, copies)
    size: int = 1 * GiB
    #: size of the object for peak-RSS figures (0: skip)
    big_size: int = 4 * GiB
    #: rounds of the fast measurements and of the copies
    runs: int = 5
    #: 5, not 3: boto3's streamed copy, the copy target's reference, is bimodal (2.1-2.5 or 3.3-3.7
    #: CPU-s/GiB from one round to the next, in a process of its own too); with 5 rounds one odd
    #: round is dropped from the spread and cannot decide the paired median (``measure.spread``)
    copy_runs: int = 5
    small_requests: int = 500
    fresh_runs: int = 10
    cold_runs: int = 3
    fan_out: int = 4
    state_dir: Path | None = None


def _log(message: str) -> None:
    print(message, flush=True)


def reference_digests(client: Any, bucket: str, key: str) -> dict[str, str]:
    """The object's seven digests by the standard libraries, independent of the engine."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    adler, crc, crcc = 1, 0, 0
    hashes = {a: hashlib.new(a) for a in ("md5", "sha1", "sha256", "sha512")}
    while chunk := body.read(8 * MiB):
        adler = zlib.adler32(chunk, adler)
        crc = zlib.crc32(chunk, crc)
        crcc = google_crc32c.extend(crcc, chunk)
        for h in hashes.values():
            h.update(chunk)
    return {"adler32": f"{adler:08x}", "crc32": f"{crc:08x}", "crc32c": f"{crcc:08x}",
            **{a: h.hexdigest() for a, h in hashes.items()}}


def _guard(figures: dict[str, Figure], key: str, name: str, unit: str, measure: Callable[[], Figure]) -> None:
    try:
        figures[key] = measure()
        _log(f"  {key}: best {figures[key].best} {unit}")
    except Exception as exc:  # reported in the table, never hidden
        figures[key] = Figure(name, unit, error=f"{type(exc).__name__}: {str(exc)[:300]}")
        _log(f"  {key}: ERROR {figures[key].error}")


def run(options: BenchOptions) -> str:
    """The whole run; returns the markdown report (also written to disk)."""
    from dynafed_client.stack import services

    repo = services.repo_root()
    out_dir = options.out_dir if options.out_dir.is_absolute() else repo / options.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(tempfile.gettempdir()).free
    need = 3 * options.size + 2 * options.big_size + 2 * GiB
    if free < need:
        raise SystemExit(f"bench: {free / GiB:.1f} GiB free in {tempfile.gettempdir()}, need ~{need / GiB:.1f}")
    state_dir = options.state_dir or Path(tempfile.mkdtemp(prefix="dynafed-bench-"))
    try:
        return _run(options, repo, out_dir, state_dir)
    finally:
        if options.state_dir is None:
            shutil.rmtree(state_dir, ignore_errors=True)  # gigabytes of SeaweedFS data


def _run(options: BenchOptions, repo: Path, out_dir: Path, state_dir: Path) -> str:
    from dynafed_client.stack import Stack
    from dynafed_runtime.digests import IMPLEMENTATIONS

    figures: dict[str, Figure] = {}
    loads: list[Mapping[str, Any]] = []
    notes: list[str] = []
    function_digests: Any = None
    load_at_start = os.getloadavg()
    profile: dict[str, Any] | None = None
    started = time.time()
    _log(f"bench: starting the local stack in {state_dir}")
    # Dynafed's stored adler32 comes from a trusted path (checksum on upload), which is
    # what lets a server-side copy move no bytes: say so, as such a deployment would
    # (by default a stored x-amz-meta value is checked by one read of the source)
    with Stack.up(state_dir, extra_env={"DYNAFED_FN_COPY_TRUST_STORED_CHECKSUMS": "1"}) as stack:
        default = stack.s3_client("default", max_pool_connections=32)
        archive = stack.s3_client("archive", max_pool_connections=32)
        stores = stack.stores
        main_key, small_key, big_key = "bench/main.bin", "bench/small.bin", "bench/big.bin"
        size = options.size
        _log(f"bench: uploading {size / GiB:.2f} GiB and 4 KiB objects")
        fixtures.put_random_object(default, BUCKET, main_key, size, seed=1)
        fixtures.put_random_object(default, BUCKET, small_key, 4096, seed=2)
        expected = reference_digests(default, BUCKET, main_key)
        small_expected = f"{zlib.adler32(default.get_object(Bucket=BUCKET, Key=small_key)['Body'].read()):08x}"
        checksum = ours.FunctionCaller(stack.functions["checksum"])
        copy_url = stack.functions.get("copy")
        function_digests = checksum.http.get(f"{checksum.url}/healthz", timeout=10).json().get("digests")
        # every process of the stack (S3 server, functions, event receiver…), each a group
        meter = CpuMeter(stack.state.pids)
        for function in ("checksum", "copy"):
            if function in stack.functions:
                _guard(figures, f"rss.idle.{function}", f"idle RSS of the {function} service", "MiB",
                       lambda function=function: ours.idle_rss(  # type: ignore[misc]
                           stack.state.pids[function], f"idle RSS of the {function} service (master + workers)"))

        def rounds(samplers: list[Sampler], count: int, label: str) -> None:
            run_rounds(samplers, count, figures, log=_log, meter=meter, loads=loads, label=label)

        _log("bench: 1 GiB reads and checksums, the straightforward function and the references, "
             "interleaved rounds")
        with fixtures.naive_function(repo, stack.stores_file, out_dir / "logs" / "naive.log") as (naive_url, pid):
            meter.add("naive", pid)
            naive = ours.FunctionCaller(naive_url)
            samplers = list(references.in_memory_digests())
            samplers += [per_gib(s, size) for s in (
                references.raw_get_single(default, BUCKET, main_key, size, read_size=1 * MiB),
                references.raw_get_single(default, BUCKET, main_key, size, read_size=8 * MiB),
                references.raw_get_ranged(default, BUCKET, main_key, size, streams=8),
            )]
            samplers += [per_gib(references.packed_bound(default, BUCKET, main_key, size, name, algorithms), size)
                         for name, algorithms in HEADLINE.items()]
            for name, algorithms in [*((a, [a]) for a in SEVEN), ("seven", list(SEVEN))]:
                key, title = (f"fn.{name}", f"checksum {name} via the function") if name != "seven" else \
                    ("fn.seven", "checksum, all seven in one request")
                samplers.append(per_gib(ours.checksum_sampler(key, title, checksum, BUCKET, main_key, size,
                                                              algorithms, expected), size, "checksum"))
                # the straightforward function in the same rounds, right after ours: a CPU
                # ratio of two series measured minutes apart would move with the load
                samplers.append(per_gib(ours.checksum_sampler(f"naive.{name}", f"straightforward function, {name}",
                                                              naive, BUCKET, main_key, size, algorithms, expected),
                                        size, "naive"))
            samplers.append(per_gib(ours.fan_out_sampler(str(state_dir), BUCKET, main_key, size, options.fan_out,
                                                         expected), size, "checksum"))
            for algorithm in ("md5", "sha256", "crc32"):
                samplers.append(per_gib(references.rclone_hashsum(stores, "default", BUCKET, main_key, size,
                                                                  algorithm, expected[algorithm]), size))
            rounds(samplers, options.runs, "checksums")
            meter.remove("naive")

        _log("bench: small objects and the fresh-process baselines")
        rounds([per_request(references.small_gets(default, BUCKET, small_key, options.small_requests),
                            options.small_requests)], options.runs, "4 KiB GETs")
        _guard(figures, "fn.small", "checksum of 4 KiB over HTTP", "ms",
               lambda: ours.small_latency(checksum, BUCKET, small_key, options.small_requests, small_expected,
                                          meter=meter))
        _guard(figures, "fn.healthz", "GET /healthz over HTTP (the serving floor)", "ms",
               lambda: ours.serving_floor(checksum, options.small_requests, meter=meter))
        rounds([per_request(references.fresh_process(stores["default"], BUCKET, small_key, small_expected), 1),
                per_request(references.legacy_backend(str(state_dir), BUCKET, small_key, small_expected), 1)],
               options.fresh_runs, "fresh processes")

        _log("bench: copies")
        # the streamed-copy reference runs in a process of its own, metered as a group of its own
        with CopyClient(stores["default"], stores["archive"]) as boto3_copier:
            meter.add(references.COPY_CLIENT, boto3_copier.pid)
            copy_samplers = [per_gib(s, size) for s in (
                references.boto3_copy_object(default, BUCKET, main_key, COPY_BUCKET, "bench/ref-copy.bin"),
                references.boto3_managed_copy(default, BUCKET, main_key, COPY_BUCKET, "bench/ref-managed.bin"),
                references.rclone_copy(stores, ("default", BUCKET, main_key),
                                       ("archive", ARCHIVE_BUCKET, "bench/rclone.bin"), archive, size),
            )]
            copy_samplers.append(per_gib(references.boto3_stream_copy(boto3_copier, BUCKET, main_key, archive,
                                                                       ARCHIVE_BUCKET, "bench/boto3-stream.bin", size),
                                         size, references.COPY_CLIENT))
            if copy_url:
                copier = ours.FunctionCaller(copy_url)
                # Dynafed's objects carry their adler32 (x-amz-meta-adler32, UVic
                # convention); without it the copy function reads the source once
                # to know the checksum it verifies, which a bare CopyObject does not
                stored_key = "bench/main-with-adler32.bin"
                default.copy_object(Bucket=BUCKET, Key=stored_key, CopySource={"Bucket": BUCKET, "Key": main_key},
                                    MetadataDirective="REPLACE", Metadata={"adler32": expected["adler32"]})
                copy_samplers += [per_gib(s, size, "copy") for s in (
                    ours.copy_sampler("fn.copy.server", "server-side copy via the function (adler32 stored)", copier,
                                      ("default", BUCKET, stored_key), ("default", COPY_BUCKET, "bench/fn-copy.bin"),
                                      default, size, unit="s", expected_strategy="server-side"),
                    ours.copy_sampler("fn.copy.server.unstored",
                                      "server-side copy via the function (no stored checksum: source read once)",
                                      copier, ("default", BUCKET, main_key),
                                      ("default", COPY_BUCKET, "bench/fn-copy2.bin"),
                                      default, size, unit="s", expected_strategy="server-side"),
                    ours.copy_sampler("fn.copy.stream", "streamed copy via the function (default -> archive)", copier,
                                      ("default", BUCKET, main_key), ("archive", ARCHIVE_BUCKET, "bench/fn-stream.bin"),
                                      archive, size, unit="GB/s", expected_strategy=None),
                )]
            else:
                notes.append(f"copy function not measured: {stack.skipped.get('copy', 'not running')}")
            rounds(copy_samplers, options.copy_runs, "copies")
            meter.remove(references.COPY_CLIENT)

        if options.big_size:
            _log(f"bench: peak worker RSS with a {options.big_size / GiB:.0f} GiB object")
            fixtures.put_random_object(default, BUCKET, big_key, options.big_size, seed=3)
            pid = stack.state.pids["checksum"]
            for key, algorithms in (("rss.checksum.seven", list(SEVEN)), ("rss.checksum.adler32", ["adler32"])):
                _guard(figures, key, f"checksum {'+'.join(algorithms)} of the big object", "MiB",
                       lambda algorithms=algorithms: ours.peak_rss_during(  # type: ignore[misc]
                           pid, lambda: checksum.checksum(BUCKET, big_key, algorithms),
                           f"checksum ({len(algorithms)} algorithms) of {options.big_size // GiB} GiB"))
            if copy_url:
                copy_pid = stack.state.pids["copy"]
                copier = ours.FunctionCaller(copy_url)
                for key, dest, client in (
                        ("rss.copy.stream", ("archive", ARCHIVE_BUCKET, "bench/big-stream.bin"), archive),
                        ("rss.copy.server", ("default", COPY_BUCKET, "bench/big-server.bin"), default)):
                    _guard(figures, key, f"{key} of the big object", "MiB",
                           lambda dest=dest, key=key: ours.peak_rss_during(  # type: ignore[misc]
                               copy_pid, lambda: copier.post(ours.copy_body(("default", BUCKET, big_key), dest)),
                               f"{key.split('.')[-1]} copy of {options.big_size // GiB} GiB"))
                    fixtures.delete_quietly(client, dest[1], dest[2])
            fixtures.delete_quietly(default, BUCKET, big_key)

        _log("bench: cold start and import profile")
        _guard(figures, "cold.checksum", "cold start", "s",
               lambda: ours.cold_start(repo, stack.stores_file, "checksum",
                                       {"store": "default", "bucket": BUCKET, "key": small_key,
                                        "algorithms": ["adler32"]},
                                       options.cold_runs, out_dir / "logs" / "coldstart.log"))
        try:
            profile = ours.import_profile(repo, stack.stores_file, "checksum")
        except Exception as exc:  # reported, never hidden
            notes.append(f"import profile failed: {exc}")

    environment = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "duration_s": round(time.time() - started, 1),
        "cpus": os.cpu_count(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "object_size_bytes": options.size,
        "big_object_size_bytes": options.big_size,
        "runs": options.runs,
        "copy_runs": options.copy_runs,
        # what the checksum function ran (its /healthz), what the bench process
        # ran in memory, and what the images would run (their requirements)
        "digest_implementations_function": function_digests,
        "digest_implementations_in_memory": IMPLEMENTATIONS,
        "digest_implementations_shipped": shipped_implementations(repo),
        "read_tuning": _tuning(),
    }
    shipped = environment["digest_implementations_shipped"]
    if function_digests and shipped and any(function_digests.get(a) != v for a, v in shipped.items()):
        notes.append(f"the function ran {function_digests}, the images would run {shipped}: "
                     "these figures are not what ships")
    targets = evaluate(figures, options.size)
    return reporting.write(out_dir, figures=figures, targets=targets, environment=environment,
                           profile=profile, notes=notes, loads=loads)


def shipped_implementations(repo: Path) -> dict[str, str]:
    """The adler32/crc32/crc32c implementation the checksum image would pick:
    the engine's order of preference (``dynafed_runtime.digests``) applied
    to the distributions its requirements.txt installs (without crc32c the
    image would not start: ``digests.require_accelerated``)."""
    text = (repo / "functions" / "checksum" / "requirements.txt").read_text(encoding="utf-8")
    dists = {line.split("==")[0].strip().lower() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")}
    zlib_family = "zlib-ng" if "zlib-ng" in dists else "isal" if "isal" in dists else "zlib"
    return {"adler32": zlib_family, "crc32": zlib_family,
            "crc32c": "crc32c" if "crc32c" in dists else "missing (the function refuses to start)"}


def _tuning() -> Mapping[str, Any]:
    from dynafed_runtime.hashing import ReadTuning

    return dataclasses.asdict(ReadTuning())
