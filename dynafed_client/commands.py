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

A command that needs an optional extra names it (``extra``), the top-level
modules that extra provides (``needs``) and what to install (``install``,
a pip argument): without them it is still listed, and running it says what
to install (exit 2, no traceback), instead of the client depending on the
server side or a dev tool without saying so (docs/internals.md
"Distributions").

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
    #: the optional dependency group the command needs
    extra: str | None = None
    #: top-level modules whose presence shows that extra is installed
    needs: tuple[str, ...] = ()
    #: what ``pip install`` needs to bring them (default: the client with ``extra``)
    install: str | None = None

    def install_hint(self) -> str:
        """The command line that installs what this command needs."""
        return f"pip install {self.install or repr(f'dynafed-client[{self.extra}]')}"


class CommandUnavailable(RuntimeError):
    """A registered command whose module or function does not exist (a packaging bug)."""


COMMANDS: list[CommandEntry] = [
    CommandEntry("checksum", "dynafed_client.cli:add_checksum_command", "checksums of objects"),
    CommandEntry("copy", "dynafed_client.cli:add_copy_command", "copy an object with live progress"),
    CommandEntry("events", "dynafed_client.cli:add_events_command", "receive and print CloudEvents"),
    # the stack runs the server side (dynafed-functions) and SeaweedFS; the
    # gateway serves under gunicorn and checks JWTs
    CommandEntry("stack", "dynafed_client.stack.cli:add_stack_commands", "embedded local stack",
                 extra="stack", needs=("dynafed_runtime", "functions", "gunicorn", "jwt", "google_crc32c")),
    CommandEntry("gateway", "dynafed_client.gateway.cli:add_gateway_command",
                 "WLCG-facing HTTP front (Want-Digest, HTTP-TPC COPY)",
                 extra="gateway", needs=("gunicorn", "jwt", "cryptography")),
    CommandEntry("hook", "dynafed_client.hooks.cli:add_hook_commands",
                 "Dynafed hook commands (filepull, filepush, checksum)"),
    CommandEntry("loadtest", "loadtest.cli:add_loadtest_commands",
                 "Locust autoscaling benchmarks (run, compare, seed)",
                 # the load test is a development tool: it ships in no distribution
                 extra="loadtest", needs=("loadtest", "locust", "matplotlib", "kubernetes"),
                 install="-e '.[loadtest]' (in a clone of the repository)"),
    CommandEntry("new-function", "dynafed_client.scaffold:add_parser",
                 "scaffold a new function on the shared runtime"),
]
