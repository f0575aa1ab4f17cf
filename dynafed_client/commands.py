"""Registry of ``dynafed-fn`` sub-commands.

Each entry names a sub-command and ``"module:function"``; the function is
called as ``function(subparsers)`` and adds its parser(s), setting
``func(args) -> int`` (the exit code) with ``set_defaults``. It may also set
``run(args) -> int`` on its parser to wrap ``func`` (error translation).

Modules are imported only when the CLI starts, one by one: a command whose
module does not exist yet is left out, and one whose module fails to import
is listed with a stub that reports the error, so one broken command never
takes the whole CLI down.

To add a command, append one line here (keep the order: it is the order of
``dynafed-fn --help``).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class CommandEntry:
    """A sub-command: its name and the ``"module:function"`` adding its parser."""

    name: str
    target: str
    help: str = ""


COMMANDS: list[CommandEntry] = [
    CommandEntry("checksum", "dynafed_client.cli:add_checksum_command", "checksums of objects"),
    CommandEntry("copy", "dynafed_client.cli:add_copy_command", "copy an object with live progress"),
    CommandEntry("events", "dynafed_client.cli:add_events_command", "receive and print CloudEvents"),
    CommandEntry("stack", "dynafed_client.stack.cli:add_stack_commands", "embedded local stack"),
    CommandEntry("gateway", "dynafed_client.gateway.cli:add_gateway_command",
                 "WLCG-facing HTTP front (Want-Digest, HTTP-TPC COPY)"),
    CommandEntry("hook", "dynafed_client.hooks.cli:add_hook_commands",
                 "Dynafed hook commands (filepull, filepush, checksum)"),
    CommandEntry("loadtest", "loadtest.cli:add_loadtest_commands",
                 "Locust autoscaling benchmarks (run, compare, seed)"),
    CommandEntry("new-function", "dynafed_client.scaffold:add_parser",
                 "scaffold a new function on the shared runtime"),
]
