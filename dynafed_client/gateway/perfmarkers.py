"""HTTP-TPC response body: Perf Marker blocks and the final status line.

Format (PROTOCOLS.md §3; XRootD XrdHttpTpc, dCache CopyFilter, davix
``modules/copy``): ``\\n`` line endings, one space after each colon, bytes
never decreasing, last line exactly ``success: Created`` or
``failure: <reason>`` (a body ending without one is reported by davix as
"Connection terminated abruptly").
"""
from __future__ import annotations

import re
import time

SUCCESS_LINE = "success: Created\n"
MAX_REASON = 400
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")


def perf_marker(bytes_done: int, *, timestamp: float | None = None) -> str:
    """One Perf Marker block (single stripe)."""
    ts = int(time.time() if timestamp is None else timestamp)
    return ("Perf Marker\n"
            f"Timestamp: {ts}\n"
            "Stripe Index: 0\n"
            f"Stripe Bytes Transferred: {max(0, int(bytes_done))}\n"
            "Total Stripe Count: 1\n"
            "End\n")


def failure_line(reason: str) -> str:
    """``failure: <reason>`` on one line (control characters flattened, bounded)."""
    text = _UNSAFE.sub(" ", reason).strip() or "transfer failed"
    if len(text) > MAX_REASON:
        text = text[:MAX_REASON - 3] + "..."
    return f"failure: {text}\n"
