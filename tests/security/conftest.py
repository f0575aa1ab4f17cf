"""Security tests run in-process with the socket tripwire on (tests/tripwire.py)."""
from __future__ import annotations

from tests.tripwire import tripwire  # noqa: F401  (fixture)
