"""The shared entry of the transfer hooks: parse argv, configure, run, exit status."""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from dynafed_client import logredact
from dynafed_client.hooks import exitcodes
from dynafed_client.hooks.argv import USAGE, UsageError, parse_hook_argv
from dynafed_client.hooks.settings import HookSettings, client_config
from dynafed_client.hooks.transfer import run_transfer, tell


def main_for(direction: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None, client: Any = None,
             out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Run a ``direction`` (pull/push) hook with Dynafed's argv; returns the exit status."""
    from dynafed_client.errors import ClientError

    env = os.environ if env is None else env
    out, err = out or sys.stdout, err or sys.stderr
    logredact.configure(env.get("DYNAFED_FN_LOG_LEVEL", "WARNING"), err, "%(levelname)s %(name)s: %(message)s")
    try:
        args = parse_hook_argv(argv)
    except UsageError as exc:
        tell(out, err, f"{direction}: {exc}; usage: dynafed-fn-file{direction} {USAGE}")
        return exitcodes.USAGE
    try:
        settings = HookSettings.from_env(env)
        if client is None:
            from dynafed_client import Client

            config = client_config(env)
            config.endpoint("copy")
            if args.checksum_check:
                config.endpoint("checksum")
            client = Client(config)
    except ClientError as exc:
        tell(out, err, f"{direction}: {exc.message}")
        return exitcodes.USAGE
    return run_transfer(args, direction, client=client, settings=settings, out=out, err=err)
