"""Digests an HTTP peer states: RFC 3230 ``Digest`` and RFC 9530 ``Repr-Digest``.

``Digest: adler32=0a1b2c3d,md5=<base64>`` — hex for adler32/crc32/crc32c
(IANA), base64 for md5/sha-* (an md5 of 32 hex digits is taken as hex, as
davix does: cern-fts/davix src/utils/checksum_extractor.cpp).
``Repr-Digest: sha-256=:<base64>:, adler=:<base64 of 4 bytes>:`` — a
structured-field dictionary of byte sequences (RFC 9530 §3); XRootD sends
it as a TPC party (xrootd/xrootd src/XrdHttpTpc/XrdHttpTpcState.cc,
``State::SetupHeaders``) and names adler32 ``adler``.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from functions.contract.algorithms import canonical_stored, normalize_algorithm

_HEX = frozenset("0123456789abcdefABCDEF")
_HEX_ALGORITHMS = ("adler32", "crc32", "crc32c")


def _algorithm(name: str) -> str | None:
    name = name.strip().lower()
    return "adler32" if name == "adler" else normalize_algorithm(name)


def _from_digest_value(algorithm: str, value: str) -> str | None:
    value = value.strip()
    if value and all(c in _HEX for c in value) and (algorithm in _HEX_ALGORITHMS or (len(value) == 32
                                                    and algorithm == "md5")):
        return canonical_stored(algorithm, value)
    try:
        return canonical_stored(algorithm, base64.b64decode(value, validate=True).hex())
    except (binascii.Error, ValueError):
        return None


def stated_digests(headers: Mapping[str, str]) -> dict[str, str]:
    """Canonical hex values by algorithm from ``Repr-Digest`` (preferred) and
    ``Digest``; unknown algorithms and malformed values are skipped."""
    out: dict[str, str] = {}
    lower = {name.lower(): value for name, value in headers.items()}
    for item in lower.get("repr-digest", "").split(","):
        name, _, value = item.partition("=")
        algorithm = _algorithm(name)
        value = value.strip()
        if algorithm is None or len(value) < 2 or not (value.startswith(":") and value.endswith(":")):
            continue
        try:
            raw = base64.b64decode(value[1:-1], validate=True)
        except (binascii.Error, ValueError):
            continue
        stated = canonical_stored(algorithm, raw.hex())
        if stated is not None:
            out.setdefault(algorithm, stated)
    for item in lower.get("digest", "").split(","):
        name, _, value = item.partition("=")
        algorithm = _algorithm(name)
        if algorithm is None or algorithm in out:
            continue
        stated = _from_digest_value(algorithm, value)
        if stated is not None:
            out[algorithm] = stated
    return out


def want_headers(algorithm: str) -> dict[str, str]:
    """Ask a peer for ``algorithm`` in both forms (a peer answers the one it knows)."""
    rfc3230 = {"sha256": "sha-256", "sha512": "sha-512", "sha1": "sha"}.get(algorithm, algorithm)
    rfc9530 = {"adler32": "adler", "sha256": "sha-256", "sha512": "sha-512"}.get(algorithm, algorithm)
    return {"Want-Digest": rfc3230, "Want-Repr-Digest": f"{rfc9530}=9"}
