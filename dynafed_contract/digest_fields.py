"""RFC 9530 digest fields (``Want-Repr-Digest`` / ``Repr-Digest``) beside RFC 3230's.

RFC 9530 §3: ``Repr-Digest: sha-256=:<base64>:, adler=:<base64>:`` is a
structured-field dictionary whose values are byte sequences (the raw digest,
base64 between colons, also for adler32 and crc32c, 4 bytes big-endian);
``Want-Repr-Digest: sha-256=10, adler=3`` asks with integer weights 0 to 10
(0: not acceptable). Algorithm names from the IANA "Hash Algorithms for HTTP
Digest Fields" registry (RFC 9530 §5): ``sha-256``, ``sha-512``, and the
deprecated ``md5``, ``sha``, ``adler`` (adler32), ``crc32c``. XRootD sends
and parses these as a TPC party (xrootd/xrootd ``src/XrdHttpTpc``) and maps
``adler`` to adler32.

Pure functions; the gateway answers with them, the copy function asks a
source with :func:`want_headers`.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Iterable, Mapping

from dynafed_contract.algorithms import HEX_DIGITS, normalize_algorithm

#: RFC 9530 registry name -> our algorithm name
REGISTRY: dict[str, str] = {"sha-256": "sha256", "sha-512": "sha512", "md5": "md5", "sha": "sha1",
                            "adler": "adler32", "crc32c": "crc32c"}
#: our algorithm name -> RFC 9530 registry name (crc32 has none)
NAMES: dict[str, str] = {v: k for k, v in REGISTRY.items()}
#: RFC 3230 ``Want-Digest`` token for each algorithm (IANA's older registry)
RFC3230_TOKENS: dict[str, str] = {"adler32": "adler32", "crc32c": "crc32c", "md5": "md5", "sha1": "sha",
                                  "sha256": "sha-256", "sha512": "sha-512"}
MAX_ITEMS = 16


@dataclasses.dataclass(frozen=True)
class WantedRepr:
    """One acceptable digest of a ``Want-Repr-Digest`` header."""

    #: the registry name as the client wrote it, lowercased (the key we answer under)
    name: str
    algorithm: str
    weight: int = 1


def algorithm_for(name: str) -> str | None:
    """Our algorithm for an RFC 9530 key (``adler`` too), else a spelling
    :func:`normalize_algorithm` knows (``adler32``, ``sha256``) of an
    algorithm the registry has; None otherwise (``crc32``, ``unixsum``)."""
    key = name.strip().lower()
    algorithm = REGISTRY.get(key) or normalize_algorithm(key)
    return algorithm if algorithm in NAMES else None


def parse_want_repr_digest(values: Iterable[str]) -> list[WantedRepr]:
    """Acceptable digests, highest weight first (ties keep the client's
    order); weight 0 and unknown names are dropped, a malformed weight counts
    as 1 (be liberal: the field is a hint)."""
    wanted: list[WantedRepr] = []
    seen: set[str] = set()
    for value in values:
        for item in value.split(","):
            key, _, raw = item.partition("=")
            name = key.strip().lower()
            algorithm = algorithm_for(name) if name else None
            if algorithm is None or algorithm in seen:
                continue
            seen.add(algorithm)
            try:
                weight = int(raw.split(";")[0].strip()) if raw.strip() else 1
            except ValueError:
                weight = 1
            if weight <= 0:
                continue
            wanted.append(WantedRepr(name, algorithm, min(weight, 10)))
            if len(wanted) >= MAX_ITEMS:
                break
    order = {w.algorithm: i for i, w in enumerate(wanted)}
    return sorted(wanted, key=lambda w: (-w.weight, order[w.algorithm]))


def encode_member(name: str, algorithm: str, hex_value: str) -> str | None:
    """``name=:<base64>:`` for a hex digest of ``algorithm`` (None if the value
    is not a digest of that algorithm: never pass garbage on)."""
    text = hex_value.strip().lower()
    digits = HEX_DIGITS.get(algorithm)
    if digits is None:
        return None
    if len(text) < digits and algorithm in ("adler32", "crc32", "crc32c"):
        text = text.rjust(digits, "0")
    if len(text) != digits:
        return None
    try:
        raw = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        return None
    return f"{name}=:{base64.b64encode(raw).decode('ascii')}:"


def format_repr_digest(wanted: Iterable[WantedRepr], checksums: Mapping[str, str]) -> str | None:
    """The ``Repr-Digest`` value for ``wanted`` given ``checksums`` (algorithm
    -> hex), members joined by ``, ``; None when nothing can be answered."""
    members = []
    for want in wanted:
        value = checksums.get(want.algorithm)
        member = encode_member(want.name, want.algorithm, value) if value is not None else None
        if member is not None:
            members.append(member)
    return ", ".join(members) or None


def parse_repr_digest(value: str) -> dict[str, str]:
    """Our algorithm -> lowercase hex from a ``Repr-Digest`` value; members
    that are unknown or malformed are skipped."""
    out: dict[str, str] = {}
    for item in value.split(","):
        key, _, raw = item.partition("=")
        algorithm = algorithm_for(key) if key.strip() else None
        raw = raw.split(";")[0].strip()
        if algorithm is None or len(raw) < 2 or raw[0] != ":" or raw[-1] != ":":
            continue
        try:
            digest = base64.b64decode(raw[1:-1], validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(digest) * 2 == HEX_DIGITS.get(algorithm):
            out.setdefault(algorithm, digest.hex())
    return out


def want_headers(algorithm: str | None) -> dict[str, str]:
    """Request headers asking a source for ``algorithm``'s digest both ways
    (RFC 3230 ``Want-Digest`` and RFC 9530 ``Want-Repr-Digest``); none for
    an algorithm neither registry names (crc32)."""
    if algorithm is None:
        return {}
    headers = {}
    if algorithm in RFC3230_TOKENS:
        headers["Want-Digest"] = RFC3230_TOKENS[algorithm]
    if algorithm in NAMES:
        headers["Want-Repr-Digest"] = f"{NAMES[algorithm]}=10"
    return headers


def _rfc3230_value(algorithm: str, value: str) -> str | None:
    """An RFC 3230 ``Digest`` member's value as hex: hex for adler32/crc32/crc32c
    (IANA), base64 for md5/sha-* (an md5 of 32 hex digits is taken as hex, as
    davix does: cern-fts/davix src/utils/checksum_extractor.cpp)."""
    value = value.strip()
    digits = HEX_DIGITS.get(algorithm)
    is_hex = bool(value) and all(c in "0123456789abcdefABCDEF" for c in value)
    if is_hex and (algorithm in ("adler32", "crc32", "crc32c") or (algorithm == "md5" and len(value) == 32)):
        return value.lower().rjust(digits or len(value), "0") if len(value) <= (digits or 0) else None
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) * 2 == digits else None


def stated_digests(headers: Mapping[str, str]) -> dict[str, str]:
    """Our algorithm -> lowercase hex, from what a peer states about a body:
    ``Repr-Digest`` (preferred) and RFC 3230 ``Digest`` (``adler`` read as
    adler32 in both); unknown or malformed members are skipped."""
    lower = {name.lower(): value for name, value in headers.items()}
    out = parse_repr_digest(lower.get("repr-digest", ""))
    for item in lower.get("digest", "").split(","):
        name, _, value = item.partition("=")
        algorithm = algorithm_for(name) if name.strip() else None
        if algorithm is None:
            algorithm = normalize_algorithm(name)
        if algorithm is None or algorithm in out:
            continue
        stated = _rfc3230_value(algorithm, value)
        if stated is not None:
            out[algorithm] = stated
    return out
