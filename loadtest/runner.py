"""One bounded, headless load-test run, end to end.

::

    target local   : start the embedded stack (or use a running one), seed,
                     run the functions phase, then the same scenario through
                     the fresh-process baseline, report, compare, stop the stack
    target knative : seed the store, start the replica sampler, wait for
                     scale-to-zero and time cold-start probes, run the load
                     while sampling, report

Locust runs as a subprocess (``python -m locust -f loadtest/locustfile.py
--headless --csv …``): gevent's monkey-patching stays in that process, and
the run is bounded twice: the shape stops Locust, and the runner kills it
if it outlives the shape by ``grace`` seconds.

Results directory (``loadtest/results/<timestamp>[-label]/``)::

    run.json  objects.json  meta.json        what ran, seeded objects, timings
    locust_stats.csv  locust_stats_history.csv  locust_failures.csv  locust_exceptions.csv
    requests.csv                             one row per request
    replicas.csv  coldstarts.csv             Knative only
    summary.json  report.html                see loadtest.report
    baseline/                                the same for the fresh-process baseline
    compare.md  compare.html                 functions vs baseline
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as _dt
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from loadtest import coldstart, settings
from loadtest import cpu as cpu_accounting
from loadtest.config import ConfigError, ScenarioConfig
from loadtest.seed import Manifest, SeedReport, remove_prefix, seed
from loadtest.stages import cap_users, total_duration
from loadtest.targets import (
    BASELINE_MODE,
    FUNCTIONS,
    FUNCTIONS_MODE,
    KNATIVE,
    LOCAL,
    RUN_ENV,
    Endpoint,
    RunSpec,
    Target,
)

log = logging.getLogger("dynafed_fn.loadtest")

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
DEFAULT_RESULTS = REPO_ROOT / "loadtest" / "results"
LEGACY_MODULE = "dynafed_client.legacy"
#: seconds Locust lets running tasks finish when the shape ends
STOP_TIMEOUT = 15


class RunError(Exception):
    """The run could not be carried out (stack, seeding, Locust)."""


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What to run where. Only ``scenario`` is required (local target)."""

    scenario: ScenarioConfig
    target: str = LOCAL
    results_root: Path = DEFAULT_RESULTS
    label: str | None = None
    #: local: a running stack's state dir (else the runner starts one)
    state_dir: Path | None = None
    #: knative: endpoints and cluster settings
    knative: Target | None = None
    #: knative: stores JSON entries with credentials (seeding, clean-up); never written to results
    stores: Mapping[str, Mapping[str, str]] | None = None
    #: knative overlay whose manifests the summary quotes (default: the base)
    overlay: str | None = None
    #: override scenario.baseline.enabled
    baseline: bool | None = None
    #: upload missing objects (False: the store already holds them; checksums computed locally)
    upload: bool = True
    #: remove the copies the run made
    cleanup: bool = True
    #: seconds Locust may outlive its shape before it is killed
    grace: float = 60.0
    #: build summary/report/compare at the end
    report: bool = True


@dataclasses.dataclass
class PhaseResult:
    mode: str
    results_dir: Path
    started: float
    ended: float
    exit_code: int
    timed_out: bool
    #: 1-minute load average before and after (a shared machine skews every number)
    load_average: tuple[float, float] = (0.0, 0.0)


def new_results_dir(root: Path, label: str | None = None, *, now: _dt.datetime | None = None) -> Path:
    """``root/<YYYYmmdd-HHMMSS>[-label]`` (suffixed -2, -3… if taken)."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{label}" if label else stamp
    path = root / base
    n = 2
    while path.exists():
        path = root / f"{base}-{n}"
        n += 1
    path.mkdir(parents=True)
    return path


# -- Locust subprocess ---------------------------------------------------------------

def locust_command(results_dir: Path) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--csv", str(results_dir / "locust"), "--csv-full-history",
            "--logfile", str(results_dir / "locust.log"), "--loglevel", "INFO",
            "--stop-timeout", str(STOP_TIMEOUT), "--exit-code-on-error", "0", "--only-summary"]


def locust_env(run_json: Path) -> dict[str, str]:
    env = dict(os.environ)
    env[RUN_ENV] = str(run_json)
    # Locust must monkey-patch its own process (tests may set this for theirs)
    env.pop("LOCUST_SKIP_MONKEY_PATCH", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_locust(spec: RunSpec, duration: float, *, grace: float) -> PhaseResult:
    """Run Locust for one phase; kill it if it outlives ``duration + grace``."""
    results_dir = Path(spec.results_dir)
    run_json = results_dir / "run.json"
    spec.save(run_json)
    deadline = duration + STOP_TIMEOUT + grace
    load_before = os.getloadavg()[0]
    started = time.time()
    timed_out = False
    with (results_dir / "locust.out").open("w") as out:
        proc = subprocess.Popen(locust_command(results_dir), env=locust_env(run_json), cwd=REPO_ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            timed_out = True
            log.error("locust still running %.0f s after its shape ended: stopping it", grace)
            proc.terminate()
            try:
                code = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        except BaseException:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
    ended = time.time()
    if not (results_dir / "locust_stats.csv").is_file():
        tail = (results_dir / "locust.out").read_text(errors="replace")[-3000:]
        raise RunError(f"locust ({spec.mode}) wrote no statistics (exit {code}); its output ends with:\n{tail}")
    return PhaseResult(spec.mode, results_dir, started, ended, code, timed_out,
                       (round(load_before, 2), round(os.getloadavg()[0], 2)))


# -- targets -----------------------------------------------------------------------------

@dataclasses.dataclass
class Prepared:
    """A target ready for load: endpoints, stores, settings."""

    target: Target
    stores: Mapping[str, Mapping[str, str]]
    settings: dict[str, Any]
    owned_stack: Any = None


def needed_functions(cfg: ScenarioConfig) -> list[str]:
    """Functions the scenario's active tasks call."""
    return [f for f in FUNCTIONS if any(task.startswith(f"{f}_") for task in cfg.active_tasks)]


@contextlib.contextmanager
def local_target(options: RunOptions, out: Callable[[str], None]) -> Iterator[Prepared]:
    """The embedded stack: attach to ``options.state_dir`` or start one (stopped at exit)."""
    from dynafed_client.stack import Stack, StackError

    cfg = options.scenario
    tmp: str | None = None
    try:
        if options.state_dir is not None:
            stack = Stack.attach(options.state_dir)
            out(f"using the local stack in {stack.state_dir}")
        else:
            tmp = tempfile.mkdtemp(prefix="dynafed-loadtest-stack-")
            out("starting the local stack (SeaweedFS + functions) …")
            stack = Stack.up(tmp, with_gateway=False,
                             extra_env={"WORKERS": str(cfg.local.workers), "THREADS": str(cfg.local.threads)})
    except StackError as exc:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise RunError(f"local stack: {exc}") from exc
    try:
        missing = [f for f in needed_functions(cfg) if f not in stack.functions]
        if missing:
            raise RunError(f"the scenario needs the {', '.join(missing)} function, which the local stack "
                           f"does not run (skipped: {stack.skipped or 'none'})")
        target = Target(LOCAL, {f: Endpoint(u) for f, u in stack.functions.items() if f in FUNCTIONS},
                        state_dir=str(stack.state_dir))
        if options.state_dir is None:
            in_force = settings.local_settings(cfg.local.workers, cfg.local.threads, FUNCTIONS)
        else:
            in_force = {"source": "local stack started elsewhere (settings not known)",
                        "note": "no autoscaler locally: replicas and cold starts are not measured"}
        in_force["manifests"] = settings.manifest_settings(options.overlay)
        yield Prepared(target, stack.stores, in_force, stack if options.state_dir is None else None)
    finally:
        if options.state_dir is None:
            with contextlib.suppress(Exception):
                stack.down()
            if tmp:
                shutil.rmtree(tmp, ignore_errors=True)


def _copy_logs(stack: Any, results_dir: Path) -> None:
    logs = results_dir / "logs"
    for name, path in (stack.state.logs or {}).items():
        if name in FUNCTIONS and Path(path).is_file():
            logs.mkdir(exist_ok=True)
            shutil.copy(path, logs / f"{name}.log")


# -- seeding -------------------------------------------------------------------------------

def seed_target(cfg: ScenarioConfig, stores: Mapping[str, Mapping[str, str]], results_dir: Path, *,
                upload: bool, out: Callable[[str], None]) -> tuple[Manifest, SeedReport]:
    from dynafed_client.stack.s3 import client_for_store

    if cfg.objects.store not in stores:
        raise RunError(f"store {cfg.objects.store!r} unknown (have: {', '.join(stores)})")
    client = client_for_store(stores[cfg.objects.store])
    o = cfg.objects
    out(f"seeding {o.small.count} small + {o.large.count} large objects into "
        f"{o.store}:{o.bucket}/{o.prefix}/ (seed {cfg.seed}) …")
    started = time.monotonic()
    if upload:
        manifest, report = seed(cfg, client)
    else:
        manifest, report = seed(cfg, _NoUpload(client))
    manifest.save(results_dir / "objects.json")
    out(f"  {report.uploaded} uploaded, {report.skipped} already present, "
        f"{manifest.total_bytes / 1e6:.1f} MB in all ({time.monotonic() - started:.1f} s)")
    return manifest, report


class _NoUpload:
    """An S3 client whose uploads are refused: seeding then only verifies."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def head_object(self, **kwargs: Any) -> Any:
        return self._client.head_object(**kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        raise RunError(f"object {kwargs.get('Key')} is missing or differs and uploads are off (--no-upload)")

    upload_fileobj = put_object


def cleanup_copies(cfg: ScenarioConfig, stores: Mapping[str, Mapping[str, str]], prefix: str) -> int:
    from dynafed_client.stack.s3 import client_for_store

    removed = 0
    for where in {cfg.copy.server_side, cfg.copy.stream}:
        if where.store in stores:
            with contextlib.suppress(Exception):
                removed += remove_prefix(client_for_store(stores[where.store]), where.bucket, prefix)
    return removed


# -- phases ------------------------------------------------------------------------------------

def _spec(run_id: str, mode: str, results_dir: Path, cfg: ScenarioConfig, target: Target, manifest: Path,
          max_users: int | None) -> RunSpec:
    return RunSpec(run_id=run_id, mode=mode, results_dir=str(results_dir), scenario=cfg.to_dict(),
                   target=target.to_json(), manifest=str(manifest),
                   requests_log=str(results_dir / "requests.csv"),
                   copy_prefix=f"{cfg.objects.prefix}/copies/{run_id}/{mode}", max_users=max_users)


def local_cpu_meter(target: Target) -> Any:
    """A CPU meter over the local stack's processes (functions, S3 server), or None."""
    if not target.state_dir:
        return None
    from bench.cpu import CpuMeter
    from dynafed_client.stack import state

    try:
        stack = state.load(target.state_dir)
    except (OSError, ValueError):  # unreadable state: the report says CPU was not recorded
        return None
    return CpuMeter(stack.pids) if stack is not None else None


def _write_meta(results_dir: Path, meta: Mapping[str, Any]) -> None:
    (results_dir / "meta.json").write_text(json.dumps(meta, indent=1, default=str) + "\n")


def baseline_unavailable(target: Target) -> str | None:
    """Why the fresh-process baseline cannot run here, or None."""
    if target.kind != LOCAL:
        return "the fresh-process baseline runs workers on this machine against the local stack only"
    try:
        found = importlib.util.find_spec(LEGACY_MODULE) is not None
    except (ImportError, ValueError):
        found = False
    return None if found else f"{LEGACY_MODULE} is not available"


def _knative_phase(options: RunOptions, prepared: Prepared, spec: RunSpec, manifest: Manifest,
                   results_dir: Path, out: Callable[[str], None]) -> tuple[PhaseResult, dict[str, Any]]:
    from loadtest.sampler import KubeReplicaSource, ReplicaSampler, SamplerError

    cfg = options.scenario
    target = prepared.target
    assert target.knative is not None
    kn = target.knative
    source = KubeReplicaSource.from_kubeconfig(kn.namespace, kubeconfig=kn.kubeconfig, context=kn.context)
    live: dict[str, Any] = {}
    for service in kn.services.values():
        try:
            live[service] = settings.service_settings(source.service(service))
        except SamplerError as exc:
            live[service] = {"error": str(exc)}
    prepared.settings["live"] = live
    extra: dict[str, Any] = {"cold_start_errors": []}
    stages = cfg.stages()
    with ReplicaSampler(source, kn.services.values(), results_dir / "replicas.csv",
                        interval=cfg.cold_start.interval) as sampler, \
            (results_dir / "coldstarts.csv").open("w", newline="") as cold_file:
        writer = csv.writer(cold_file)
        writer.writerow(coldstart.CSV_COLUMNS)
        small = manifest.of_kind("small-cached") or manifest.of_kind("small-uncached")
        for i in range(cfg.cold_start.probes):
            for function, service in kn.services.items():
                try:
                    waited = sampler.wait_for_zero(service, timeout=cfg.cold_start.zero_timeout)
                except SamplerError as exc:
                    extra["cold_start_errors"].append(str(exc))
                    out(f"  cold start probe {i + 1}: {exc}")
                    continue
                body = _probe_body(function, cfg, manifest, small[i % len(small)], spec.copy_prefix, i)
                sample = coldstart.probe(function, service, target.endpoint(function), body, waited=waited,
                                         timeout=cfg.users.request_timeout)
                writer.writerow(sample.row())
                cold_file.flush()
                ttfb = f"{sample.ttfb_s:.2f} s" if sample.ttfb_s is not None else "no answer"
                out(f"  cold start probe {i + 1}/{cfg.cold_start.probes} {function}: zero after {waited:.0f} s, "
                    f"first byte after {ttfb} (HTTP {sample.status})")
        if cfg.cold_start.before_load:
            # "step load after scale-to-zero": the load's first request is itself a cold start
            for service in kn.services.values():
                try:
                    waited = sampler.wait_for_zero(service, timeout=cfg.cold_start.zero_timeout)
                    out(f"  {service} at zero after {waited:.0f} s")
                except SamplerError as exc:
                    extra["cold_start_errors"].append(str(exc))
                    out(f"  {exc}: starting the load anyway")
        out(f"running the load ({total_duration(stages):.0f} s, shape {cfg.shape.get('kind')}) …")
        phase = run_locust(spec, total_duration(stages), grace=options.grace)
        extra["sampler"] = {"samples": sampler.samples, "errors": sampler.errors,
                            "interval_s": cfg.cold_start.interval}
    return phase, extra


def warm_up(target: Target, cfg: ScenarioConfig, manifest: Manifest, prefix: str) -> None:
    """A few requests per function before a local run, outside the statistics:
    "warm functions" is the claim, and a function's first requests pay for
    lazily built S3 clients (one per gunicorn thread)."""
    from concurrent.futures import ThreadPoolExecutor

    small = manifest.of_kind("small-cached") or manifest.of_kind("small-uncached")
    if not small:
        return
    bodies = [(f, _probe_body(f, cfg, manifest, small[i % len(small)], f"{prefix}/warm-up", i))
              for f in needed_functions(cfg) for i in range(cfg.local.threads)]
    with ThreadPoolExecutor(max_workers=cfg.local.threads) as pool:
        list(pool.map(lambda fb: coldstart.timed_post(target.endpoint(fb[0]), fb[1], timeout=60), bodies))


def _probe_body(function: str, cfg: ScenarioConfig, manifest: Manifest, obj: Any, prefix: str,
                i: int) -> dict[str, Any]:
    if function == "checksum":
        return {"store": manifest.store, "bucket": manifest.bucket, "key": obj.key,
                "algorithms": list(cfg.checksum.algorithms), "cache": "use"}
    where = cfg.copy.server_side
    return {"source": {"store": manifest.store, "bucket": manifest.bucket, "key": obj.key},
            "destination": {"store": where.store, "bucket": where.bucket, "key": f"{prefix}/probe-{i}"},
            "verify": cfg.copy.verify, "overwrite": True}


def run(options: RunOptions, *, out: Callable[[str], None] = print) -> Path:
    """Carry out one run; returns its results directory."""
    cfg = options.scenario
    if options.target not in (LOCAL, KNATIVE):
        raise ConfigError(f"target must be {LOCAL} or {KNATIVE}, got {options.target!r}")
    results_dir = new_results_dir(Path(options.results_root), options.label)
    run_id = results_dir.name
    out(f"results: {results_dir}")
    if options.target == LOCAL:
        context: contextlib.AbstractContextManager[Prepared] = local_target(options, out)
    else:
        if options.knative is None or options.stores is None:
            raise ConfigError("knative target needs function URLs (--url/--ingress) and --stores-file")
        context = contextlib.nullcontext(Prepared(options.knative, options.stores,
                                                  {"manifests": settings.manifest_settings(options.overlay)}))
    phases: list[PhaseResult] = []
    with context as prepared:
        manifest, seed_report = seed_target(cfg, prepared.stores, results_dir, upload=options.upload, out=out)
        manifest_path = results_dir / "objects.json"
        spec = _spec(run_id, FUNCTIONS_MODE, results_dir, cfg, prepared.target, manifest_path, None)
        extra: dict[str, Any] = {}
        try:
            if prepared.target.kind == KNATIVE:
                phase, extra = _knative_phase(options, prepared, spec, manifest, results_dir, out)
            else:
                warm_up(prepared.target, cfg, manifest, spec.copy_prefix)
                out(f"running the load on the functions ({cfg.duration():.0f} s, shape {cfg.shape.get('kind')}) …")
                meter = local_cpu_meter(prepared.target)
                before = meter.snapshot() if meter else None
                phase = run_locust(spec, cfg.duration(), grace=options.grace)
                if meter is not None and before is not None:
                    cpu_accounting.write(results_dir, meter.since(before), wall_s=phase.ended - phase.started)
            phases.append(phase)
            _write_meta(results_dir, _meta(cfg, prepared, phase, seed_report, extra, options))
            want_baseline = cfg.baseline.enabled if options.baseline is None else options.baseline
            why_not = baseline_unavailable(prepared.target) if want_baseline else "disabled"
            if why_not is None:
                base_dir = results_dir / "baseline"
                base_dir.mkdir()
                base_spec = _spec(run_id, BASELINE_MODE, base_dir, cfg, prepared.target, manifest_path,
                                  cfg.baseline.max_users)
                duration = total_duration(cap_users(cfg.stages(), cfg.baseline.max_users))
                out(f"running the same scenario through the fresh-process baseline ({duration:.0f} s, "
                    f"at most {cfg.baseline.max_users} users) …")
                base_phase = run_locust(base_spec, duration, grace=options.grace)
                phases.append(base_phase)
                _write_meta(base_dir, _meta(cfg, prepared, base_phase, seed_report, {}, options))
            else:
                extra["baseline_skipped"] = why_not
                _write_meta(results_dir, _meta(cfg, prepared, phase, seed_report, extra, options))
                if want_baseline:
                    out(f"baseline skipped: {why_not}")
        finally:
            if prepared.owned_stack is not None:
                _copy_logs(prepared.owned_stack, results_dir)
            elif options.cleanup:
                removed = cleanup_copies(cfg, prepared.stores, f"{cfg.objects.prefix}/copies/{run_id}/")
                if removed:
                    out(f"removed {removed} copied objects")
    if options.report:
        from loadtest import report

        base_dir = results_dir / "baseline"
        if (base_dir / "meta.json").is_file():
            report.write_report(base_dir)
            from loadtest import compare

            compare.write_comparison(results_dir, base_dir, results_dir, labels=("functions", "fresh-process"))
        summary = report.write_report(results_dir)
        for line in report.headline(summary):
            out(line)
    out(f"results: {results_dir}")
    return results_dir


def _meta(cfg: ScenarioConfig, prepared: Prepared, phase: PhaseResult, seed_report: SeedReport,
          extra: Mapping[str, Any], options: RunOptions) -> dict[str, Any]:
    return {
        "run_id": Path(phase.results_dir).name if phase.mode == FUNCTIONS_MODE else Path(phase.results_dir).parent.name,
        "mode": phase.mode,
        "target": prepared.target.to_json(),
        "scenario_name": cfg.name,
        "scenario_source": cfg.source,
        "scenario": cfg.to_dict(),
        "stages": [dataclasses.asdict(s) for s in (cap_users(cfg.stages(), cfg.baseline.max_users)
                                                   if phase.mode == BASELINE_MODE else cfg.stages())],
        "started": phase.started,
        "ended": phase.ended,
        "locust_exit_code": phase.exit_code,
        "locust_timed_out": phase.timed_out,
        "seed": dataclasses.asdict(seed_report),
        "settings": prepared.settings,
        "overlay": options.overlay,
        "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                 "load_average_1m_before_after": list(phase.load_average)},
        **extra,
    }
