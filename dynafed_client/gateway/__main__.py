"""``python -m dynafed_client.gateway --port P [--host 127.0.0.1] --state DIR`` (what the stack runs)."""
from __future__ import annotations

import sys

from dynafed_client.gateway.cli import main

if __name__ == "__main__":
    sys.exit(main())
