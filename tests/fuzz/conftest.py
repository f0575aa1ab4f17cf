"""Fuzz tests run in-process (WSGI) with storage faked by moto and the socket
tripwire on (tests/tripwire.py): a fuzzer must never reach the network."""
from __future__ import annotations

from tests.tripwire import tripwire  # noqa: F401  (fixture)
