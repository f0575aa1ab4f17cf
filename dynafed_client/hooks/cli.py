"""``dynafed-fn hook filepull|filepush|checksum …``: the hook commands under the main CLI.

The console scripts (``dynafed-fn-filepull``, ``dynafed-fn-filepush``,
``dynafed-fn-checksum-hook``) are what Dynafed's config names; these
sub-commands run the same code for operators trying things by hand.
"""
from __future__ import annotations

import argparse
from typing import Any

from dynafed_client.hooks.argv import USAGE
from dynafed_client.hooks.transfer import PULL, PUSH


def add_hook_commands(subparsers: Any) -> None:
    """Register ``dynafed-fn hook …`` (see :mod:`dynafed_client.commands`)."""
    hook = subparsers.add_parser("hook", help="Dynafed hook commands (filepull, filepush, checksum)",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = hook.add_subparsers(dest="hook", required=True)
    for name, direction in (("filepull", PULL), ("filepush", PUSH)):
        p = kinds.add_parser(name, help=f"glb.file{direction}hook: {USAGE}", usage=f"%(prog)s {USAGE}")
        p.add_argument("argv", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        p.set_defaults(func=_transfer(direction))
    p = kinds.add_parser("checksum", help="get/put a checksum (UVic dynafed-storage checksums semantics)",
                         add_help=False)
    p.add_argument("argv", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=_checksum)


def _transfer(direction: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        from dynafed_client.hooks.runner import main_for

        return main_for(direction, args.argv)

    return run


def _checksum(args: argparse.Namespace) -> int:
    from dynafed_client.hooks.checksum import main

    return main(args.argv)
