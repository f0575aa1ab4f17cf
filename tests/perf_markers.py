"""Reading an HTTP-TPC ``COPY`` answer body: the gateway's Perf Markers
(dynafed_client/gateway/perfmarkers.py writes them; the format is the one
gfal2 and davix parse), then one final ``success:`` / ``failure:`` line."""
from __future__ import annotations

import re

MARKER = re.compile(r"Perf Marker\nTimestamp: (?P<timestamp>\d+)\nStripe Index: 0\n"
                    r"Stripe Bytes Transferred: (?P<bytes>\d+)\nTotal Stripe Count: 1\nEnd\n")


def markers_and_rest(body: str) -> tuple[list[int], str]:
    """(bytes of each leading Perf Marker, whatever follows them, as is)."""
    pos, seen = 0, []
    while (m := MARKER.match(body, pos)) is not None:
        seen.append(int(m.group("bytes")))
        pos = m.end()
    return seen, body[pos:]


def parse_tpc_body(body: str) -> tuple[list[int], str]:
    """(bytes of each Perf Marker, final line without its newline); asserts
    nothing but that one line follows the markers."""
    seen, rest = markers_and_rest(body)
    assert rest.endswith("\n") and rest.count("\n") == 1, f"unexpected body tail {rest[:300]!r}"
    return seen, rest[:-1]
