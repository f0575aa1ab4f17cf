"""The wire contract of the Dynafed storage functions, as pure data.

Nothing here does I/O or imports Flask/boto3: this is the one place the wire
format is written down. ``dynafed_client`` imports only this package from the
function side. The OpenAPI documents are generated from it.
"""
from __future__ import annotations

from functions.contract import events
from functions.contract.algorithms import ALGORITHMS, normalize_algorithm
from functions.contract.errors import ErrorCode

__all__ = ["ALGORITHMS", "ErrorCode", "events", "normalize_algorithm"]
