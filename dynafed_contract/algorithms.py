"""Checksum algorithm names and their textual forms."""
from __future__ import annotations

import re

#: Algorithms every function understands, in canonical lowercase form.
ALGORITHMS: tuple[str, ...] = ("adler32", "crc32", "crc32c", "md5", "sha1", "sha256", "sha512")

#: Algorithms whose value is a 32-bit integer printed as 8 zero-padded hex digits.
CRC_LIKE: frozenset[str] = frozenset({"adler32", "crc32", "crc32c"})

#: Algorithms combinable across byte ranges (adler32_combine / crc32_combine maths).
COMBINABLE: frozenset[str] = CRC_LIKE

#: Hex digits of each algorithm's value (CRC-like ones may be stored without
#: their leading zeros: WLCG tools print ``%x`` as often as ``%08x``).
HEX_DIGITS: dict[str, int] = {"adler32": 8, "crc32": 8, "crc32c": 8, "md5": 32, "sha1": 40, "sha256": 64,
                              "sha512": 128}
_HEX = re.compile(r"[0-9a-fA-F]+")

ALIASES = {
    # RFC 9530's registry name for adler32; XRootD maps it the same way
    "adler": "adler32",
    "sha-1": "sha1",
    "sha-256": "sha256",
    "sha-512": "sha512",
    "crc-32": "crc32",
    "crc-32c": "crc32c",
}


def normalize_algorithm(name: str) -> str | None:
    """Return the canonical algorithm name for ``name`` (any case, RFC 3230
    spellings like ``SHA-256`` included), or ``None`` when unknown."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in ALGORITHMS else None


def normalize_hex(algorithm: str, value: str) -> str:
    """Canonical textual form of a stored value: lowercase hex, CRC-like
    values zero-padded to 8 digits (WLCG tools compare ignoring case and
    leading zeros, and print ``%08x``)."""
    value = value.strip().lower()
    if algorithm in CRC_LIKE:
        stripped = value.lstrip("0") or "0"
        return stripped.rjust(8, "0")
    return value


def canonical_stored(algorithm: str, value: str) -> str | None:
    """The canonical form of a *stored* value (S3 metadata, a source's header),
    or None when it is not a value of ``algorithm`` at all: exactly the
    algorithm's number of hex digits (1 to 8 for the CRC-like ones), nothing
    else. A stored value is only ever returned or trusted in this form."""
    digits = HEX_DIGITS.get(algorithm)
    text = value.strip() if isinstance(value, str) else ""
    if digits is None or not _HEX.fullmatch(text):
        return None
    if algorithm in CRC_LIKE:
        return normalize_hex(algorithm, text) if len(text) <= digits else None
    return text.lower() if len(text) == digits else None
