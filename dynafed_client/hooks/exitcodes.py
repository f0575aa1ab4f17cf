"""Exit statuses of the hook commands.

Dynafed only distinguishes 0 (success) from the rest; it answers a status
in 200..599 as that HTTP status and anything else as 422, so ours stay small
and distinct for operators reading logs.
"""
from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2
CHECKSUM_MISMATCH = 3
NOT_FOUND = 4
NOT_ALLOWED = 5
DESTINATION_EXISTS = 6


def for_error(exc: BaseException) -> int:
    """The exit status for a library error."""
    from dynafed_client import errors as ce

    if isinstance(exc, ce.IntegrityError) and exc.code == "CHECKSUM_MISMATCH":
        return CHECKSUM_MISMATCH
    if isinstance(exc, ce.NotFoundError):
        return NOT_FOUND
    if isinstance(exc, ce.NotAllowedError | ce.UnauthorizedError):
        return NOT_ALLOWED
    if isinstance(exc, ce.ConflictError) and exc.code == "DESTINATION_EXISTS":
        return DESTINATION_EXISTS
    if isinstance(exc, ce.ConfigError):
        return USAGE
    return FAILED
