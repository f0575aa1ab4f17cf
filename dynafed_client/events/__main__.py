"""``python -m dynafed_client.events serve ...`` (the local stack's K_SINK)."""
from __future__ import annotations

import sys

from dynafed_client.events.cli import main

if __name__ == "__main__":
    sys.exit(main())
