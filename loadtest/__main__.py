"""``python -m loadtest run|compare|seed|report`` (same as ``dynafed-fn loadtest …``)."""
from __future__ import annotations

import sys

from loadtest.cli import main

sys.exit(main())
