"""``serve`` (the receiver in the foreground) and ``follow`` (watch a running one).

Used by ``python -m dynafed_client.events`` and by ``dynafed-fn events``.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import IO, Any

from dynafed_client.events.model import ReceivedEvent
from dynafed_client.events.remote import RemoteSubscription
from dynafed_client.events.server import serve_receiver
from dynafed_client.serving import add_serving_arguments, options_from_args


def format_event(event: ReceivedEvent) -> str:
    """One human line: time, type, subject and the interesting data fields."""
    data = event.data if isinstance(event.data, dict) else {}
    parts = []
    if "bytes" in data:
        total = data.get("total", data.get("size"))
        parts.append(f"bytes={data['bytes']}" + (f"/{total}" if total is not None else ""))
    for key in ("status", "strategy", "code", "detail", "verified"):
        if key in data:
            parts.append(f"{key}={data[key]}")
    if "checksums" in data and isinstance(data["checksums"], dict):
        parts.append(" ".join(f"{k}:{v}" for k, v in data["checksums"].items()))
    if not parts and event.data is not None and not isinstance(event.data, dict):
        parts.append(str(event.data)[:120])
    return f"{event.time or '-'} {event.type} {event.subject or '-'} {' '.join(parts)}".rstrip()


def printer(stream: IO[str], as_json: bool) -> Any:
    def emit(event: ReceivedEvent) -> None:
        line = json.dumps(event.to_json(), default=str) if as_json else format_event(event)
        stream.write(line + "\n")
        stream.flush()

    return emit


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The receiver's serving options (port default 0: a free one, printed at start) and ``--log``."""
    add_serving_arguments(parser, default_port=0)
    parser.add_argument("--log", default=None, metavar="FILE", help="append each event as a JSON line to FILE")


def run_serve(args: argparse.Namespace, *, print_events: bool, as_json: bool = False,
              out: IO[str] | None = None) -> int:
    """Run the receiver in the foreground (gunicorn) until SIGINT/SIGTERM, which drains it."""
    out = out or sys.stdout
    callbacks = [printer(out, as_json)] if print_events else []
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def ready(url: str) -> None:
        print(f"event receiver listening on {url}", file=sys.stderr, flush=True)

    return serve_receiver(options, log_path=args.log, on_event=callbacks, on_ready=ready)


def run_follow(url: str, *, subject: str | None, as_json: bool, out: IO[str] | None = None) -> int:
    """Print the events of a receiver running elsewhere until interrupted."""
    emit = printer(out or sys.stdout, as_json)
    print(f"following {url}", file=sys.stderr, flush=True)
    sub = RemoteSubscription(url, subject)
    try:
        for event in sub:
            emit(event)
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dynafed_client.events serve --port P [--host H] [--log FILE] [--print] [--json]``."""
    parser = argparse.ArgumentParser(prog="python -m dynafed_client.events",
                                     description="CloudEvents receiver for the Dynafed functions")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the receiver in the foreground")
    add_serve_arguments(serve)
    serve.add_argument("--print", action="store_true", help="print each event on stdout")
    serve.add_argument("--json", action="store_true", help="with --print: JSON lines")
    args = parser.parse_args(argv)
    return run_serve(args, print_events=args.print, as_json=args.json)
