"""The bearer-token check (RFC 6750 §2.1), written once for the functions
(runtime/app.py) and the gateway (gateway/auth.py)."""
from __future__ import annotations

import hmac


def presented_bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (the scheme is
    case-insensitive, RFC 9110 §11.1); None for any other value or none."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def bearer_matches(presented: str | None, expected: str) -> bool:
    """Whether the presented token is ``expected``, compared in constant time
    (no timing oracle for the token's bytes)."""
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())
