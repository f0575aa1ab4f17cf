"""The wire contract of the Dynafed storage functions, as pure data.

Nothing here does I/O or imports Flask/boto3: this is the one place the wire
format is written down. ``dynafed_client`` imports only this package from the
function side. The OpenAPI documents are generated from it.
"""
from __future__ import annotations

from dynafed_contract import events
from dynafed_contract.algorithms import ALGORITHMS, normalize_algorithm
from dynafed_contract.errors import ErrorCode

__all__ = ["ALGORITHMS", "ErrorCode", "events", "normalize_algorithm"]
