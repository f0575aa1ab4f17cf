"""JSON bodies, parsed in one place with limits (pure).

``json.loads`` as such turns several hostile bodies into exceptions a caller
does not expect from "invalid JSON": an integer literal over 4300 digits
raises a plain ``ValueError`` from ``int()`` (CPython's int-conversion limit,
``sys.get_int_max_str_digits``), deep nesting ``RecursionError``, bad UTF-8
``UnicodeDecodeError``; and ``NaN``/``Infinity`` (not JSON, RFC 8259 §6) are
accepted, and ``1e999`` reads as infinity. :func:`loads` maps all of them to one ``ContractViolation``
(400 INVALID_REQUEST) and refuses integer literals longer than
``MAX_INT_DIGITS`` before converting them (no field of the contract needs
more; converting a long literal costs quadratic time).
"""
from __future__ import annotations

import json
from typing import Any

from dynafed_contract.errors import ContractViolation, ErrorCode

__all__ = ["MAX_INT_DIGITS", "loads"]

#: Longest integer literal accepted (sizes and offsets fit in 20 digits).
MAX_INT_DIGITS = 64


class _Refused(ValueError):
    """Raised from a hook: unwinds json's scanner with our reason."""


def _parse_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise _Refused(f"an integer literal longer than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused("a number out of range")
    return value


def _parse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def loads(body: bytes | str, *, what: str = "request body") -> Any:
    """Parse ``body`` as JSON; ContractViolation (INVALID_REQUEST) for anything
    that is not JSON within the limits."""
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except _Refused as exc:
        raise ContractViolation(ErrorCode.INVALID_REQUEST, f"{what} is not acceptable JSON: {exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors too
        raise ContractViolation(ErrorCode.INVALID_REQUEST, f"{what} is not valid JSON") from None
