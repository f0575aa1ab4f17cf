"""Checksum algorithm names and their textual forms."""
from __future__ import annotations

#: Algorithms every function understands, in canonical lowercase form.
ALGORITHMS: tuple[str, ...] = ("adler32", "crc32", "crc32c", "md5", "sha1", "sha256", "sha512")

#: Algorithms whose value is a 32-bit integer printed as 8 zero-padded hex digits.
CRC_LIKE: frozenset[str] = frozenset({"adler32", "crc32", "crc32c"})

#: Algorithms combinable across byte ranges (adler32_combine / crc32_combine maths).
COMBINABLE: frozenset[str] = CRC_LIKE

_ALIASES = {
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
    key = _ALIASES.get(key, key)
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
