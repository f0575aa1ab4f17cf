"""Exit statuses of the hook commands.

What current Dynafed does with them (indigo-dc/dynafed
``src/plugins/dmlite/UgrDMLite.cc``, end of ``fileCopyPull`` and
``fileCopyPush``): 0 is success (``DmStatus()``); any other status is
forwarded unchanged as the dmlite status code, ``DmStatus(t->resultcode,
"Task id N failed pulling '<src>' to '<dst>' result code: <status>")``.
There is no 200..599-to-HTTP mapping any more (that existed only in 2018
commits), so the statuses stay small and distinct for operators reading
Dynafed's log; the reason itself is on the hook's stdout (a non-``monitor:``
line) and stderr.
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
