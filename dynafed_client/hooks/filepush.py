"""``dynafed-fn-filepush``: a drop-in ``glb.filepushhook`` (Dynafed's ``ugr-filepush``).

argv: ``cksumcheck cksumtype srcURL destURL x509proxypath auth [extra...]``;
stdout: ``monitor:`` lines; exit 0 only on a verified copy.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from dynafed_client.hooks.runner import main_for
from dynafed_client.hooks.transfer import PUSH


def main(argv: Sequence[str] | None = None) -> int:
    """Console script entry point."""
    return main_for(PUSH, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
