"""Registry of ``dynafed-fn`` sub-commands.

Each entry names a sub-command and ``"module:function"``; the function is
called as ``function(subparsers)`` and adds its parser(s), setting
``func(args) -> int`` (the exit code) with ``set_defaults``. It may also set
``run(args) -> int`` on its parser to wrap ``func`` (error translation).

The registry is static: every entry must resolve. Modules are imported
only when the CLI starts (and only the chosen command's, see
``dynafed_client.cli.build_parser``), but a module or function that is
missing is an error (:class:`CommandUnavailable`), never a command that
silently disappears; ``tests/unit/test_client_cli.py`` resolves every entry.

A command that needs an optional extra names it (``extra``) and the
top-level modules that extra provides (``needs``): without them it is still
listed, and running it says which extra to install (exit 2), instead of the
shipped client depending on a dev tool without saying so.

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
    #: the optional dependency group ("pip install 'dynafed-functions[<extra>]'") the command needs
    extra: str | None = None
    #: top-level modules whose presence shows that extra is installed
    needs: tuple[str, ...] = ()


class CommandUnavailable(RuntimeError):
    """A registered command whose module or function does not exist (a packaging bug)."""


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
                 "Locust autoscaling benchmarks (run, compare, seed)",
                 extra="loadtest", needs=("locust", "matplotlib", "kubernetes")),
    CommandEntry("new-function", "dynafed_client.scaffold:add_parser",
                 "scaffold a new function on the shared runtime"),
]
