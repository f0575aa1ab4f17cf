"""``dynafed-fn loadtest run|compare|seed|report`` (also ``python -m loadtest``).

::

    dynafed-fn loadtest run                              # local stack, default scenario
    dynafed-fn loadtest run --scenario smoke --set shape.hold=30s
    dynafed-fn loadtest run --target knative --scenario knative \\
        --ingress http://192.0.2.10 --domain example.com --namespace dynafed-fn \\
        --context my-cluster --stores-file stores.json
    dynafed-fn loadtest compare loadtest/results/A loadtest/results/B
    dynafed-fn loadtest seed --scenario default --state-dir .stack
    dynafed-fn loadtest report loadtest/results/A        # rebuild summary + HTML

Exit codes: 0 done, 1 the run failed (or, with ``--strict``, a request
failed), 2 usage or configuration error.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from loadtest.config import ConfigError, load_scenario
from loadtest.targets import FUNCTIONS, KNATIVE, LOCAL, KnativeSettings, knative_target, parse_assignments

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _scenario_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", default="default",
                        help="built-in scenario (default, smoke, knative) or a .toml/.json file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override a scenario key, e.g. --set shape.users=8 --set mix.copy_stream=0")
    parser.add_argument("--shape", help="shorthand for --set shape.kind=KIND (step, spike, plateau, rampdown)")
    parser.add_argument("--users", type=int, help="shorthand for --set shape.users=N")


def _scenario(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    overrides = list(args.overrides)
    if args.shape:
        overrides.append(f"shape.kind={json.dumps(args.shape)}")
    if args.users is not None:
        overrides.append(f"shape.users={args.users}")
    return load_scenario(args.scenario, overrides)


def _stores_file(path: str) -> dict[str, dict[str, str]]:
    """The stores as the gateway reads them (the contract's parser; endpoint
    and key pair required: the run seeds and reads objects itself)."""
    from dynafed_client import errors as client_errors
    from dynafed_client.storefile import read_stores_file

    try:
        return read_stores_file(path)
    except client_errors.ConfigError as exc:
        raise ConfigError(f"--stores-file: {exc}") from None


def cmd_run(args: argparse.Namespace) -> int:
    from loadtest import runner

    scenario = _scenario(args)
    knative = stores = None
    if args.target == KNATIVE:
        services = {f: f for f in FUNCTIONS} | parse_assignments(args.service, "--service")
        settings = KnativeSettings(namespace=args.namespace, context=args.context, kubeconfig=args.kubeconfig,
                                   services=services)
        knative = knative_target(urls=parse_assignments(args.url, "--url"),
                                 hosts=parse_assignments(args.host, "--host"), ingress=args.ingress,
                                 domain=args.domain, settings=settings)
        if not args.stores_file:
            raise ConfigError("--target knative needs --stores-file (the stores JSON the functions use) to seed")
        stores = _stores_file(args.stores_file)
    elif args.url or args.ingress:
        raise ConfigError("--url/--ingress are for --target knative (local: --state-dir of a running stack)")
    options = runner.RunOptions(
        scenario=scenario, target=args.target, results_root=Path(args.results), label=args.label,
        state_dir=Path(args.state_dir) if args.state_dir else None, knative=knative, stores=stores,
        overlay=args.overlay, baseline=args.baseline, upload=not args.no_upload, cleanup=not args.no_cleanup,
        grace=args.grace)
    results = runner.run(options)
    if args.strict:
        summary = json.loads((results / "summary.json").read_text())
        if summary.get("failures"):
            print(f"{summary['failures']} requests failed (see {results / 'report.html'})", file=sys.stderr)
            return EXIT_FAILED
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from loadtest import compare

    labels = args.labels.split(",", 1) if args.labels else None
    out = Path(args.out) if args.out else Path(args.a)
    compare.write_comparison(args.a, args.b, out, labels)
    print((out / "compare.md").read_text())
    print(f"written: {out / 'compare.md'}, {out / 'compare.html'}")
    return EXIT_OK


def cmd_seed(args: argparse.Namespace) -> int:
    from dynafed_client.stack.s3 import client_for_store
    from loadtest import seed

    scenario = _scenario(args)
    if args.stores_file:
        stores = _stores_file(args.stores_file)
    else:
        from dynafed_client.stack import Stack, StackError

        try:
            stores = Stack.attach(args.state_dir).stores
        except StackError as exc:
            raise ConfigError(str(exc)) from exc
    if scenario.objects.store not in stores:
        raise ConfigError(f"store {scenario.objects.store!r} unknown (have: {', '.join(stores)})")
    client = client_for_store(stores[scenario.objects.store])
    if args.remove:
        removed = seed.remove_prefix(client, scenario.objects.bucket, f"{scenario.objects.prefix}/")
        print(f"removed {removed} objects under {scenario.objects.bucket}/{scenario.objects.prefix}/")
        return EXIT_OK
    manifest, report = seed.seed(scenario, client)
    out = Path(args.out)
    manifest.save(out)
    print(f"{len(manifest.objects)} objects in {manifest.store}:{manifest.bucket}/{manifest.prefix}/ "
          f"({report.uploaded} uploaded, {report.skipped} already present, {manifest.total_bytes / 1e6:.1f} MB); "
          f"expected checksums in {out}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from loadtest import report

    summary = report.write_report(Path(args.results_dir))
    for line in report.headline(summary):
        print(line)
    print(f"written: {Path(args.results_dir) / 'report.html'}")
    return EXIT_OK


def _run_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="one bounded headless run -> results directory with report.html",
                       description="Seed, run Locust headless for the scenario's shape, sample replicas "
                                   "(Knative), report; locally also the fresh-process baseline and a comparison.")
    _scenario_options(p)
    p.add_argument("--target", choices=(LOCAL, KNATIVE), default=LOCAL)
    p.add_argument("--results", default=str(Path("loadtest") / "results"), help="parent of the results directory")
    p.add_argument("--label", help="suffix of the results directory name")
    p.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=None,
                   help="also run the fresh-process baseline (local target; default: the scenario's)")
    p.add_argument("--overlay", help="knative overlay whose manifests the summary quotes (dev, production, …)")
    p.add_argument("--strict", action="store_true", help="exit 1 when any request failed")
    p.add_argument("--grace", type=float, default=60.0, help="seconds Locust may outlive its shape")
    p.add_argument("--no-cleanup", action="store_true", help="keep the objects the copies wrote")
    local = p.add_argument_group("local target")
    local.add_argument("--state-dir", help="use the stack running in this state dir (default: start one)")
    kn = p.add_argument_group("knative target")
    kn.add_argument("--url", action="append", metavar="NAME=URL", help="a function's URL (checksum, copy)")
    kn.add_argument("--host", action="append", metavar="NAME=HOST", help="Host header for a function")
    kn.add_argument("--ingress", help="one ingress URL for every function (Host headers from --domain)")
    kn.add_argument("--domain", help="cluster domain: Host = <service>.<namespace>.<domain>")
    kn.add_argument("--namespace", default="dynafed-fn")
    kn.add_argument("--context", help="kube context (default: the current one)")
    kn.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    kn.add_argument("--service", action="append", metavar="NAME=SERVICE", help="Knative Service of a function")
    kn.add_argument("--stores-file", help="stores JSON with credentials (seeding and clean-up)")
    kn.add_argument("--no-upload", action="store_true", help="objects are already seeded: only verify them")
    p.set_defaults(func=cmd_run)


def add_loadtest_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``loadtest`` (``dynafed_client.commands`` calls this)."""
    parser = subparsers.add_parser("loadtest", help="Locust autoscaling benchmarks",
                                   description="Locust benchmarks of the functions (docs/loadtest.md).")
    sub = parser.add_subparsers(dest="loadtest_command", metavar="{run,compare,seed,report}", required=True)
    _run_parser(sub)
    c = sub.add_parser("compare", help="two runs side by side (markdown + HTML + plot)")
    c.add_argument("a", help="results directory A")
    c.add_argument("b", help="results directory B")
    c.add_argument("--labels", help="A,B labels (default: the directory names)")
    c.add_argument("--out", help="where to write compare.* (default: A)")
    c.set_defaults(func=cmd_compare)
    s = sub.add_parser("seed", help="upload the scenario's objects; write their expected checksums")
    _scenario_options(s)
    s.add_argument("--state-dir", help="local stack state dir (default: $DYNAFED_FN_STATE_DIR or ./.stack)")
    s.add_argument("--stores-file", help="stores JSON with credentials (instead of the local stack)")
    s.add_argument("--out", default="objects.json", help="manifest file to write")
    s.add_argument("--remove", action="store_true", help="delete everything under the scenario's prefix instead")
    s.set_defaults(func=cmd_seed)
    r = sub.add_parser("report", help="rebuild summary.json and report.html of a results directory")
    r.add_argument("results_dir")
    r.set_defaults(func=cmd_report)
    parser.set_defaults(run=_guarded)


def _guarded(args: argparse.Namespace) -> int:
    from loadtest.runner import RunError
    from loadtest.sampler import SamplerError

    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"dynafed-fn loadtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (RunError, SamplerError) as exc:
        print(f"dynafed-fn loadtest: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m loadtest …``"""
    parser = argparse.ArgumentParser(prog="python -m loadtest")
    parser.add_argument("-v", "--verbose", action="store_true")
    top = parser.add_subparsers(dest="command", required=True)
    add_loadtest_commands(top)
    # python -m loadtest run … == dynafed-fn loadtest run …
    args = parser.parse_args(["loadtest", *(argv if argv is not None else sys.argv[1:])])
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return _guarded(args)
