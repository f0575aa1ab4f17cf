"""``stack up|down|status`` sub-commands.

The main CLI calls :func:`add_stack_commands`; ``python -m
dynafed_client.stack`` uses :func:`main`. Every sub-parser sets
``func(args) -> int`` (the exit code).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import stack as _stack
from .errors import StackError, StackWarning
from .state import STATE_DIR_ENV, default_state_dir


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir).absolute() if args.state_dir else default_state_dir()


def _parse_env(items: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StackError(f"--env expects KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def cmd_up(args: argparse.Namespace) -> int:
    """Start the stack and print where everything is."""
    root = _state_dir(args)
    st = _stack.up(root, functions=args.functions or _stack.FUNCTIONS,
                   with_events=not args.no_events, with_gateway=not args.no_gateway,
                   extra_env=_parse_env(args.env), ready_timeout=args.timeout,
                   checksum_on_upload=args.checksum_on_upload)
    print(f"local stack up in {root}")
    _print_human(_stack.status(root) or st.to_dict())
    print(f"\nexport {STATE_DIR_ENV}={root}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the stack."""
    root = _state_dir(args)
    outcome = _stack.down(root, timeout=args.timeout)
    if not outcome:
        print(f"no local stack in {root}")
        return 0
    for name, what in outcome.items():
        print(f"{name:<12} {what}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print the state (with credentials in --json) and liveness; 1 if not running."""
    root = _state_dir(args)
    data = _stack.status(root)
    if data is None:
        if args.json:
            print(json.dumps(None))
        else:
            print(f"no local stack in {root}")
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_human(data)
    return 0 if data["alive"] and all(data["alive"].values()) else 1


def _print_human(data: dict[str, Any]) -> None:
    alive = data.get("alive", {})
    pids = data.get("pids", {})
    urls: dict[str, str | None] = {"seaweedfs": data.get("s3", {}).get("endpoint_url"),
                                   "events": data.get("events"), "gateway": data.get("gateway"),
                                   **data.get("functions", {}), **data.get("sources", {})}
    for name, pid in pids.items():
        state = "alive" if alive.get(name) else "DEAD"
        print(f"{name:<12} {state:<6} pid {pid:<8} {urls.get(name) or '-':<28} "
              f"log {data.get('logs', {}).get(name, '-')}")
    for name, reason in data.get("skipped", {}).items():
        print(f"{name:<12} skipped: {reason}")
    print(f"stores       {', '.join(data.get('stores', {}))} (file {data.get('stores_file')})")
    print(f"buckets      {', '.join(data.get('buckets', []))}")
    if data.get("upload_watch"):
        print(f"checksum on upload: {data['upload_watch']} (adler32 stored as x-amz-meta-adler32)")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default=None,
                        help=f"state directory (default: ${STATE_DIR_ENV} or ./.stack)")


def add_actions(subparsers: Any) -> None:
    """Add ``up``, ``down`` and ``status`` to an argparse subparsers object."""
    p_up = subparsers.add_parser("up", help="start SeaweedFS, functions, event receiver, gateway")
    _common(p_up)
    p_up.add_argument("--no-gateway", action="store_true", help="do not start the gateway")
    p_up.add_argument("--no-events", action="store_true",
                      help="do not start the event receiver (functions get no K_SINK)")
    p_up.add_argument("--function", dest="functions", action="append", metavar="NAME",
                      help="start only these functions (repeatable; default: checksum, copy)")
    p_up.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                      help="extra environment for the functions (repeatable)")
    p_up.add_argument("--checksum-on-upload", metavar="BUCKET/PREFIX", default=None,
                      help="checksum every object written under BUCKET/PREFIX (comma-separated list), "
                           "driven by SeaweedFS's filer notifications, e.g. demo/incoming/")
    p_up.add_argument("--timeout", type=float, default=_stack.READY_TIMEOUT,
                      help="seconds to wait for each component to be ready")
    p_up.set_defaults(func=cmd_up)

    p_down = subparsers.add_parser("down", help="stop the processes of the stack")
    _common(p_down)
    p_down.add_argument("--timeout", type=float, default=10.0,
                        help="seconds between SIGTERM and SIGKILL")
    p_down.set_defaults(func=cmd_down)

    p_status = subparsers.add_parser("status", help="show the stack and whether it is alive")
    _common(p_status)
    p_status.add_argument("--json", action="store_true",
                          help="print state.json (with credentials) plus liveness")
    p_status.set_defaults(func=cmd_status)


def add_stack_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``stack {up,down,status}`` to the main CLI's subparsers; returns the ``stack`` parser."""
    parser = subparsers.add_parser("stack", help="embedded local stack (SeaweedFS + functions)")
    actions = parser.add_subparsers(dest="stack_command", metavar="{up,down,status}")
    actions.required = True
    add_actions(actions)
    parser.set_defaults(run=run)  # StackError becomes a message and exit status 1
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a parsed stack command, turning StackError into a message and exit code 1."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StackWarning)
        try:
            return int(args.func(args))
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            for item in caught:
                if issubclass(item.category, StackWarning):
                    print(f"warning: {item.message}", file=sys.stderr)
                else:
                    warnings.showwarning(item.message, item.category, item.filename, item.lineno)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m dynafed_client.stack``."""
    parser = argparse.ArgumentParser(prog="python -m dynafed_client.stack",
                                     description="embedded local stack")
    actions = parser.add_subparsers(dest="stack_command", metavar="{up,down,status}")
    actions.required = True
    add_actions(actions)
    return run(parser.parse_args(argv))
