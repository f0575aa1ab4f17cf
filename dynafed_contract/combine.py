"""Combining adler32 / crc32 / crc32c values of consecutive byte ranges.

If ``A`` and ``B`` are two consecutive byte strings, the checksum of ``A + B``
follows from the checksums of ``A`` and of ``B`` and the length of ``B``
alone (zlib's ``adler32_combine`` / ``crc32_combine``). This is what lets one
large object's checksum be spread over many ranged requests — many function
invocations, many pods — and still give exactly the whole-object value.

Pure integer maths, no I/O, so both the functions (parallel ranged reads) and
the client (``--fan-out``) use this one module; it lives in the contract
package because the client may import nothing else from the function side.

The CRC part is zlib's x^(2^k) mod P method (``multmodp`` / ``x2nmodp``),
O(log n) multiplications in GF(2) per combine; the same code serves CRC-32
(IEEE, reflected polynomial 0xEDB88320) and CRC-32C (Castagnoli, 0x82F63B78)
because both use the all-ones pre- and post-conditioning the formula assumes.
One difference from zlib: zlib keeps 32 powers and wraps the index
(``x2n_table[k & 31]``), which is right only because x^(2^32) = x modulo the
IEEE polynomial; modulo the Castagnoli polynomial it is not, so that shortcut
gives wrong CRC-32C values for ranges of 512 MiB and more. The table here
holds 64 powers, enough for any length below 2^61 bytes.
"""
from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "adler32_combine",
    "combine",
    "combine_hex",
    "combine_parts",
    "crc32_combine",
    "crc32c_combine",
    "initial_value",
]

_ADLER_BASE = 65521
_CRC32_POLY = 0xEDB88320
_CRC32C_POLY = 0x82F63B78
_MASK = 0xFFFFFFFF


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """adler32 of ``A + B`` from adler32(A), adler32(B) and len(B).

    With ``a = 1 + sum(bytes)`` and ``b = sum of the running a``: the a of the
    whole is ``a1 + a2 - 1``; every byte of B sees an a larger by ``a1 - 1``
    than it did alone, so b grows by ``len2 * (a1 - 1)``.
    """
    if len2 < 0:
        raise ValueError("len2 must be >= 0")
    a1, b1 = adler1 & 0xFFFF, (adler1 >> 16) & 0xFFFF
    a2, b2 = adler2 & 0xFFFF, (adler2 >> 16) & 0xFFFF
    a = (a1 + a2 - 1) % _ADLER_BASE
    b = (b1 + b2 + (len2 % _ADLER_BASE) * (a1 - 1)) % _ADLER_BASE
    return (b << 16) | a


def _multmodp(a: int, b: int, poly: int) -> int:
    """a * b modulo the (reflected) polynomial ``poly``."""
    m = 1 << 31
    product = 0
    while True:
        if a & m:
            product ^= b
            if (a & (m - 1)) == 0:
                return product
        m >>= 1
        b = (b >> 1) ^ poly if b & 1 else b >> 1


_X2N_POWERS = 64


def _x2n_table(poly: int) -> tuple[int, ...]:
    """x^(2^k) mod P for k = 0..63 (x^1 is ``1 << 30`` in reflected form)."""
    table = [1 << 30]
    for _ in range(_X2N_POWERS - 1):
        table.append(_multmodp(table[-1], table[-1], poly))
    return tuple(table)


_X2N = {_CRC32_POLY: _x2n_table(_CRC32_POLY), _CRC32C_POLY: _x2n_table(_CRC32C_POLY)}


def _x2nmodp(n: int, k: int, poly: int) -> int:
    """x^(n * 2^k) mod P."""
    if n.bit_length() + k > _X2N_POWERS:
        raise ValueError("length too large to combine")
    table = _X2N[poly]
    p = 1 << 31  # x^0
    while n:
        if n & 1:
            p = _multmodp(table[k], p, poly)
        n >>= 1
        k += 1
    return p


def _crc_combine(crc1: int, crc2: int, len2: int, poly: int) -> int:
    if len2 < 0:
        raise ValueError("len2 must be >= 0")
    # shifting crc1 past len2 bytes is a multiplication by x^(8 * len2)
    return _multmodp(_x2nmodp(len2, 3, poly), crc1 & _MASK, poly) ^ (crc2 & _MASK)


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 (zlib, IEEE) of ``A + B`` from crc32(A), crc32(B) and len(B)."""
    return _crc_combine(crc1, crc2, len2, _CRC32_POLY)


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32C (Castagnoli) of ``A + B`` from crc32c(A), crc32c(B) and len(B)."""
    return _crc_combine(crc1, crc2, len2, _CRC32C_POLY)


_COMBINERS = {"adler32": adler32_combine, "crc32": crc32_combine, "crc32c": crc32c_combine}
_INITIAL = {"adler32": 1, "crc32": 0, "crc32c": 0}


def initial_value(algorithm: str) -> int:
    """The checksum of zero bytes (the neutral element of ``combine``)."""
    try:
        return _INITIAL[algorithm]
    except KeyError:
        raise ValueError(f"{algorithm} is not combinable") from None


def combine(algorithm: str, value1: int, value2: int, len2: int) -> int:
    """``algorithm`` of ``A + B`` from its values on A and B and len(B)."""
    try:
        combiner = _COMBINERS[algorithm]
    except KeyError:
        raise ValueError(f"{algorithm} is not combinable") from None
    return combiner(value1, value2, len2)


def combine_parts(algorithm: str, parts: Iterable[tuple[int, int]]) -> int:
    """Fold ``(value, length)`` of consecutive ranges, in order, into one value."""
    total = initial_value(algorithm)
    for value, length in parts:
        total = combine(algorithm, total, value, length)
    return total


def combine_hex(algorithm: str, parts: Iterable[tuple[str, int]]) -> str:
    """``combine_parts`` on the wire's 8-digit hex values; returns the same form."""
    return f"{combine_parts(algorithm, ((int(v, 16), n) for v, n in parts)):08x}"
