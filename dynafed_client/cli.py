"""``dynafed-fn``: a thin face over the client library.

Sub-commands come from :data:`dynafed_client.commands.COMMANDS`. Exit codes:
0 success, 1 the operation failed (details on stderr), 2 usage or
configuration error, 130 interrupted. Errors never print a traceback
(``-v`` logs more; ``DYNAFED_FN_DEBUG=1`` re-raises).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from dynafed_client import errors, logredact
from dynafed_client.batch import run_batch
from dynafed_client.client import Client
from dynafed_client.commands import COMMANDS, CommandEntry, CommandUnavailable
from dynafed_client.config import ClientConfig
from dynafed_client.events import cli as events_cli
from dynafed_client.events.remote import RemoteEventSource
from dynafed_client.fanout import fanout_checksum
from dynafed_client.progress import CopyProgress, TerminalProgressBar, format_bytes, format_rate
from dynafed_client.refs import display, parse_object_ref, parse_source
from dynafed_client.retry import RetryPolicy
from dynafed_contract.checksum import CACHE_MODES

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

log = logging.getLogger("dynafed_client.cli")


# -- shared client options (colleagues' commands may reuse these) --------------

def add_client_options(parser: argparse.ArgumentParser) -> None:
    """``--url --host --token --state-dir --timeout --connect-timeout --retries``."""
    group = parser.add_argument_group("function endpoint")
    group.add_argument("--url", help="base URL of the function (default: $DYNAFED_FN_<NAME>_URL, "
                                     "else the local stack's state)")
    group.add_argument("--host", help="Host header to send (Knative Service reached through an ingress IP)")
    group.add_argument("--token", help="bearer token (default: $DYNAFED_FN_TOKEN)")
    group.add_argument("--state-dir", help="local stack state directory (default: $DYNAFED_FN_STATE_DIR or ./.stack)")
    group.add_argument("--timeout", type=float, help="read timeout in seconds")
    group.add_argument("--connect-timeout", type=float, help="connect timeout in seconds")
    group.add_argument("--retries", type=int, help="attempts per request, including the first")


def config_from_args(args: argparse.Namespace, function: str,
                     env: dict[str, str] | None = None) -> ClientConfig:
    """The client configuration for ``function`` from options, environment and stack state."""
    env = dict(os.environ) if env is None else env
    url = getattr(args, "url", None)
    if url:
        config = ClientConfig.from_env(env)
    else:
        config = ClientConfig.discover(env, getattr(args, "state_dir", None))
    if url or getattr(args, "host", None):
        current = config.functions.get(function)
        target = url or (current.url if current else None)
        if not target:
            config.endpoint(function)  # raises the explanatory ConfigError
        config = config.with_function(function, str(target), getattr(args, "host", None)
                                      or (current.host if current and not url else None))
    changes: dict[str, Any] = {}
    if getattr(args, "token", None):
        changes["token"] = args.token
    if getattr(args, "timeout", None):
        changes["read_timeout"] = args.timeout
    if getattr(args, "connect_timeout", None):
        changes["connect_timeout"] = args.connect_timeout
    if getattr(args, "retries", None):
        changes["retry"] = RetryPolicy(attempts=args.retries)
    if getattr(args, "concurrency", None):
        changes["concurrency"] = args.concurrency
    config = config.replace(**changes) if changes else config
    config.endpoint(function)  # fail early, naming what to set
    return config


def _error_line(error: errors.ClientError) -> str:
    return error.message


# -- checksum ---------------------------------------------------------------------

def add_checksum_command(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("checksum", help="checksums of objects (one line per object)",
                                   description="Compute checksums through the checksum function. Prints "
                                               "'algo:value ... [store:]bucket/key' per object.")
    parser.add_argument("objects", nargs="+", metavar="[STORE:]BUCKET/KEY")
    parser.add_argument("--store", default="default", help="store for objects given without one (default: default)")
    parser.add_argument("--algo", "--algorithms", dest="algo", default="adler32",
                        help="comma-separated algorithms (default: adler32)")
    parser.add_argument("--cache", choices=CACHE_MODES, default="none",
                        help="none: always compute; use: answer from stored x-amz-meta-<algo>; "
                             "write: use + store computed values; refresh: compute and store")
    parser.add_argument("--concurrency", type=int, default=None, help="objects in flight (default 8)")
    parser.add_argument("--fan-out", type=int, default=1, metavar="N",
                        help="split each object into N byte ranges computed in parallel "
                             "(combinable algorithms only: adler32, crc32, crc32c)")
    parser.add_argument("--json", action="store_true", help="print a JSON document instead of lines")
    add_client_options(parser)
    parser.set_defaults(func=cmd_checksum)
    return parser


def cmd_checksum(args: argparse.Namespace, *, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    refs = [parse_object_ref(text, default_store=args.store) for text in args.objects]
    algorithms = [a.strip() for a in args.algo.split(",") if a.strip()]
    if not algorithms:
        raise errors.ConfigError("--algo: no algorithm given")
    if args.fan_out < 1:
        raise errors.ConfigError("--fan-out must be >= 1")
    if args.fan_out > 1 and args.cache != "none":
        raise errors.ConfigError("--fan-out computes byte ranges, which cannot use or write the cache")
    config = config_from_args(args, "checksum")
    failed = 0
    documents: list[dict[str, Any]] = []
    with Client(config) as client:
        if args.fan_out > 1:
            def call(ref: Any) -> Any:
                return fanout_checksum(client, ref, algorithms, parts=args.fan_out)

            outcomes = run_batch(call, refs, concurrency=max(1, config.concurrency // args.fan_out))
        else:
            outcomes = client.checksum_many(refs, algorithms, cache=args.cache)
        for text, outcome in zip(args.objects, outcomes, strict=True):
            if outcome.ok:
                result = outcome.result
                assert result is not None
                if args.json:
                    documents.append({"object": text, "ok": True, **dict(result.raw)})
                else:
                    values = " ".join(f"{a}:{v}" for a, v in result.checksums.items())
                    out.write(f"{values}  {text}\n")
                    out.flush()
            else:
                failed += 1
                error = outcome.error
                assert error is not None
                print(f"error: {text}: {_error_line(error)}", file=err)
                if args.json:
                    documents.append({"object": text, "ok": False, "error": _error_json(error)})
    if args.json:
        out.write(json.dumps(documents, indent=2) + "\n")
    return EXIT_FAILED if failed else EXIT_OK


def _error_json(error: errors.ClientError) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type(error).__name__, "message": error.message, "retryable": error.retryable}
    if isinstance(error, errors.FunctionError):
        body.update(code=error.code, status=error.status, detail=error.detail)
    return body


# -- copy -------------------------------------------------------------------------

def add_copy_command(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("copy", help="copy an object with live progress",
                                   description="Copy SRC to DST through the copy function, verified.")
    parser.add_argument("source", metavar="SRC", help="[store:]bucket/key or an http(s) URL")
    parser.add_argument("destination", metavar="DST", help="[store:]bucket/key")
    parser.add_argument("--store", default="default", help="store for objects given without one")
    parser.add_argument("--job-id", help="idempotency key (default: generated); re-run with the same id to resume")
    parser.add_argument("--verify", default="adler32",
                        help="checksum verifying the copy (default adler32; 'full' also re-reads the destination)")
    parser.add_argument("--overwrite", action="store_true", help="replace a different existing destination")
    parser.add_argument("--progress", choices=("auto", "bar", "plain", "none"), default="auto",
                        help="progress display on stderr (auto: bar on a terminal, else plain lines)")
    parser.add_argument("--no-stream", action="store_true",
                        help="do not ask for the ndjson progress stream (progress then comes from events only)")
    parser.add_argument("--events", action="store_true",
                        help="also follow the job's CloudEvents at the event receiver "
                             "(the stack's, or $DYNAFED_FN_EVENTS_URL)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_client_options(parser)
    parser.set_defaults(func=cmd_copy)
    return parser


class PlainProgress:
    """Progress as occasional lines (logs, pipes): at most every ``interval`` seconds."""

    def __init__(self, stream: IO[str], label: str, interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream, self._label, self._interval, self._clock = stream, label, interval, clock
        self._last = -interval

    def __call__(self, update: CopyProgress) -> None:
        now = self._clock()
        final = update.total is not None and update.bytes >= update.total
        if now - self._last < self._interval and not final:
            return
        self._last = now
        total = f" / {format_bytes(update.total)}" if update.total is not None else ""
        pct = f" ({100 * update.fraction:.0f}%)" if update.fraction is not None else ""
        self._stream.write(f"{self._label}: {format_bytes(update.bytes)}{total}{pct} "
                           f"{format_rate(update.rate_bps)}\n")
        self._stream.flush()

    def close(self) -> None:
        pass


def cmd_copy(args: argparse.Namespace, *, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    source = parse_source(args.source, default_store=args.store)
    destination = parse_object_ref(args.destination, default_store=args.store)
    config = config_from_args(args, "copy")
    verify, verify_mode = (("adler32", "full") if args.verify == "full" else (args.verify, "auto"))
    events = None
    if args.events:
        if not config.events_url:
            raise errors.ConfigError("--events: no event receiver known (start the stack or set DYNAFED_FN_EVENTS_URL)")
        events = RemoteEventSource(config.events_url)
    mode = args.progress
    if mode == "auto":
        mode = "bar" if err.isatty() else "plain"
    label = f"{display(source)} -> {display(destination)}"
    display_cb: Any = None
    if mode == "bar":
        display_cb = TerminalProgressBar(label if len(label) < 40 else "copy", file=err, disable=False)
    elif mode == "plain":
        display_cb = PlainProgress(err, "copy")
    started = time.monotonic()
    try:
        with Client(config) as client:
            result = client.copy(source, destination, job_id=args.job_id, verify=verify, verify_mode=verify_mode,
                                 overwrite=args.overwrite, on_progress=display_cb, stream=not args.no_stream,
                                 events=events)
    finally:
        if display_cb is not None:
            display_cb.close()
    wall = time.monotonic() - started
    if args.json:
        out.write(json.dumps({**dict(result.raw), "resubmissions": result.resubmissions,
                              "retries": result.retries}, indent=2) + "\n")
        return EXIT_OK
    elapsed = result.elapsed_s if isinstance(result.elapsed_s, int | float) and result.elapsed_s > 0 else wall
    checks = " ".join(f"{a}:{v}" for a, v in result.checksums.items()) or "-"
    verb = "already present" if result.status == "already-present" else "copied"
    out.write(f"{verb} {label}: {format_bytes(result.bytes)} ({result.bytes} bytes) in {elapsed:.2f}s "
              f"({format_rate(result.bytes / elapsed if elapsed > 0 else None)}), strategy {result.strategy or '-'}, "
              f"{checks} {'verified' if result.verified else 'NOT verified'}, job {result.job_id}\n")
    return EXIT_OK if result.verified or result.status == "already-present" else EXIT_FAILED


# -- events -----------------------------------------------------------------------

def add_events_command(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("events", help="receive CloudEvents and print them (operators)",
                                   description="Run an event receiver in the foreground and print each event; "
                                               "with --follow, print the events of a running receiver instead.")
    events_cli.add_serve_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument("--follow", nargs="?", const="stack", metavar="URL",
                        help="follow a running receiver (default: the local stack's)")
    parser.add_argument("--subject", help="with --follow: only this subject (job id)")
    parser.add_argument("--state-dir", help="local stack state directory (for --follow)")
    parser.set_defaults(func=cmd_events)
    return parser


def cmd_events(args: argparse.Namespace) -> int:
    if args.follow:
        url = args.follow
        if url == "stack":
            url = ClientConfig.from_stack(args.state_dir).events_url
            if not url:
                raise errors.ConfigError("the local stack runs no event receiver")
        return events_cli.run_follow(url, subject=args.subject, as_json=args.json)
    return events_cli.run_serve(args, print_events=True, as_json=args.json)


# -- main -------------------------------------------------------------------------

def _load(entry: CommandEntry) -> Callable[[Any], Any]:
    """The parser adder of ``entry``; a missing module or function is :class:`CommandUnavailable`."""
    if entry.extra and not all(importlib.util.find_spec(name) for name in entry.needs):
        return _needs_extra(entry)
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandUnavailable(f"command {entry.name!r}: cannot import {module_name}: {exc}") from exc
    adder = getattr(module, attr, None)
    if not callable(adder):
        raise CommandUnavailable(f"command {entry.name!r}: {entry.target} does not exist")
    return adder


def _needs_extra(entry: CommandEntry) -> Callable[[Any], Any]:
    """A listed command that explains which extra to install (exit 2)."""
    def add(subparsers: Any) -> argparse.ArgumentParser:
        # no options of its own: whatever follows (even --help) reaches fail(), which explains
        parser = subparsers.add_parser(entry.name, help=f"{entry.help} (needs the {entry.extra} extra)",
                                       prefix_chars="\0", add_help=False)
        parser.add_argument("rest", nargs="*")

        def fail(args: argparse.Namespace) -> int:
            print(f"error: dynafed-fn {entry.name} needs the {entry.extra!r} extra: {entry.install_hint()}",
                  file=sys.stderr)
            return EXIT_USAGE

        parser.set_defaults(func=fail)
        return parser

    return add


def build_parser(commands: Sequence[CommandEntry] = COMMANDS, *,
                 only: str | None = None) -> argparse.ArgumentParser:
    """The ``dynafed-fn`` parser with every available sub-command.

    ``only``: import just that command's module (the others get a bare
    placeholder): a single ``dynafed-fn checksum`` then does not pay for
    importing boto3, Flask and the gateway.
    """
    parser = argparse.ArgumentParser(prog="dynafed-fn",
                                     description="Dispatch Dynafed checksum and copy work to serverless functions.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for entry in commands:
        if only is not None and entry.name != only:
            subparsers.add_parser(entry.name, help=entry.help)
            continue
        _load(entry)(subparsers)
    return parser


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line, if it is a registered one."""
    for token in argv:
        if token.startswith("-"):
            if token in ("-v", "-vv", "-vvv", "--verbose"):
                continue
            return None  # -h / unknown option before the command: build everything
        return token if any(entry.name == token for entry in COMMANDS) else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dynafed-fn``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=_chosen_command(argv))
    args = parser.parse_args(argv)
    logredact.configure(logging.WARNING - 10 * min(args.verbose, 2), sys.stderr, "%(levelname)s %(name)s: %(message)s")
    runner = getattr(args, "run", None) or args.func
    try:
        return int(runner(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors.ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except errors.ClientError as exc:
        if os.environ.get("DYNAFED_FN_DEBUG"):
            raise
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
