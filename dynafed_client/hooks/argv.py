"""Dynafed's hook argv: ``cksumcheck cksumtype srcURL destURL x509proxypath auth [extra...]``.

Dynafed (``UgrDMLite.cc``, ``fileCopyPull``/``fileCopyPush``) builds it as:
``cksumcheck`` an integer (``0``/``1``), ``cksumtype`` the client's checksum
type or the literal ``<nochecksumtype>``, the source and destination URLs
(replica URLs when ``glb.filepullhook.usereplicaurl`` is true, else
federation paths), the delegated proxy path (may be empty), the
``TransferHeaderAuthorization`` value (may be empty), then one argument per
``glb.filepull.header2params[]`` / ``glb.filepush.header2params[]`` entry.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from dynafed_contract.algorithms import normalize_algorithm

NO_CHECKSUM_TYPE = "<nochecksumtype>"
USAGE = "cksumcheck cksumtype srcURL destURL x509proxypath auth [extra...]"


class UsageError(ValueError):
    """The argv does not follow Dynafed's hook contract."""


@dataclasses.dataclass(frozen=True)
class HookArgs:
    """A parsed hook invocation."""

    #: verify the destination against the source's checksum
    checksum_check: bool
    #: canonical algorithm name, or None (``<nochecksumtype>``)
    checksum_type: str | None
    source: str
    destination: str
    x509_proxy: str = ""
    #: the client's ``TransferHeaderAuthorization`` value (never logged)
    auth: str = ""
    extra: tuple[str, ...] = ()


def _truthy(value: str) -> bool:
    text = value.strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    try:
        return int(text) != 0
    except ValueError:
        raise UsageError(f"cksumcheck must be an integer (0/1), got {value[:20]!r}") from None


def parse_hook_argv(argv: Sequence[str]) -> HookArgs:
    """Parse ``argv`` (without the program name); raises UsageError."""
    if len(argv) < 4:
        raise UsageError(f"expected {USAGE}; got {len(argv)} argument(s)")
    check_raw, type_raw, source, destination = argv[:4]
    proxy = argv[4] if len(argv) > 4 else ""
    auth = argv[5] if len(argv) > 5 else ""
    extra = tuple(argv[6:])
    checksum_type: str | None = None
    if type_raw.strip() and type_raw.strip() != NO_CHECKSUM_TYPE:
        checksum_type = normalize_algorithm(type_raw)
        if checksum_type is None:
            raise UsageError(f"unknown checksum type {type_raw[:40]!r}")
    if not source or not destination:
        raise UsageError("source and destination URLs must not be empty")
    return HookArgs(checksum_check=_truthy(check_raw), checksum_type=checksum_type, source=source,
                    destination=destination, x509_proxy=proxy, auth=auth, extra=extra)
