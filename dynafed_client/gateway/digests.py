"""RFC 3230 ``Want-Digest`` parsing and ``Digest`` formatting.

What real clients parse (davix ``checksum_extractor.cpp``; PROTOCOLS.md §2):
the value is split on ``,`` *without trimming*, so several digests are joined
by a bare comma; ``adler32`` is hex (8 digits), ``crc32c`` verbatim hex,
``md5`` hex only if 32 characters long else base64, everything else base64.
IANA's registry agrees: ADLER32 and CRC32c hex, MD5 and SHA-* base64.

A digest is answered under the token the client asked for (lowercased),
never under another algorithm's name; tokens we cannot compute (``UNIXcksum``,
``crc32``, anything unknown) are simply left out.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterable, Mapping

from dynafed_contract.algorithms import normalize_hex

#: Want-Digest token (lowercase) -> (algorithm name of the functions, encoding).
#: IANA names first; the unambiguous spellings after them are common in the field.
TOKENS: dict[str, tuple[str, str]] = {
    "adler32": ("adler32", "hex"),
    # RFC 9530's name for adler32, which XRootD also accepts in Want-Digest
    "adler": ("adler32", "hex"),
    "crc32c": ("crc32c", "hex"),
    "md5": ("md5", "base64"),
    "sha": ("sha1", "base64"),
    "sha-256": ("sha256", "base64"),
    "sha-512": ("sha512", "base64"),
    "sha-1": ("sha1", "base64"),
    "sha1": ("sha1", "base64"),
    "sha256": ("sha256", "base64"),
    "sha512": ("sha512", "base64"),
}
MAX_TOKENS = 16
#: digest sizes of the base64-encoded algorithms
_DIGEST_BYTES = {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}
_HEX = re.compile(r"[0-9a-f]+")


@dataclasses.dataclass(frozen=True)
class WantedDigest:
    """One acceptable digest from a ``Want-Digest`` header."""

    #: the token as the client wrote it, lowercased (the name we answer under)
    token: str
    #: the functions' algorithm name (``adler32``, ``sha256``, …)
    algorithm: str
    q: float = 1.0


def parse_want_digest(values: Iterable[str]) -> list[WantedDigest]:
    """Supported digests from one or more ``Want-Digest`` header values,
    best ``q`` first (ties keep the client's order). ``q=0`` means "not
    acceptable"; unknown tokens are dropped; a malformed ``q`` counts as 1."""
    wanted: list[WantedDigest] = []
    seen: set[str] = set()
    for value in values:
        for item in value.split(","):
            name, _, params = item.partition(";")
            token = name.strip().lower()
            if not token or token in seen or token not in TOKENS:
                continue
            q = _q_value(params)
            if q <= 0:
                seen.add(token)
                continue
            seen.add(token)
            wanted.append(WantedDigest(token, TOKENS[token][0], q))
            if len(wanted) >= MAX_TOKENS:
                break
    order = {w.token: i for i, w in enumerate(wanted)}
    return sorted(wanted, key=lambda w: (-w.q, order[w.token]))


def _q_value(params: str) -> float:
    for param in params.split(";"):
        key, _, raw = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(raw.strip())
            except ValueError:
                return 1.0
            return q if 0.0 <= q <= 1.0 else 1.0
    return 1.0


def encode_value(token: str, hex_value: str) -> str | None:
    """The RFC 3230 form of a lowercase-hex digest for ``token``, or None when
    the value is not a well-formed digest of that algorithm (never pass
    garbage on: davix would report it as the file's checksum)."""
    algorithm, encoding = TOKENS[token]
    text = hex_value.strip().lower()
    if not text or not _HEX.fullmatch(text):
        return None
    if encoding == "hex":
        value = normalize_hex(algorithm, text)
        return value if len(value) == 8 else None
    if len(text) != 2 * _DIGEST_BYTES[algorithm]:
        return None
    return base64.b64encode(binascii.unhexlify(text)).decode("ascii")


def format_digest(wanted: Iterable[WantedDigest], checksums: Mapping[str, str]) -> str | None:
    """The ``Digest`` header value for ``wanted`` given ``checksums``
    (algorithm -> hex), joined by ``,`` without spaces; None when empty."""
    parts = []
    for want in wanted:
        value = checksums.get(want.algorithm)
        if value is None:
            continue
        encoded = encode_value(want.token, value)
        if encoded is not None:
            parts.append(f"{want.token}={encoded}")
    return ",".join(parts) or None


def algorithms_for(wanted: Iterable[WantedDigest]) -> list[str]:
    """The distinct algorithms to ask the checksum function for, in order."""
    out: list[str] = []
    for want in wanted:
        if want.algorithm not in out:
            out.append(want.algorithm)
    return out
