"""Is an answer right? Pure checks of the functions' response bodies against
the manifest (no Locust, no I/O), so a wrong checksum is a *failure* in
the statistics, never a success.

Each check returns None when the answer is right, else the reason (the
text Locust shows in its failures table).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from loadtest.seed import SeededObject

#: failure code of an answer that came back 200 but is wrong
WRONG_ANSWER = "WRONG_ANSWER"
#: same-store copies: CopyObject, or UploadPartCopy above 5 GiB
SERVER_SIDE = ("server-side", "server-side-multipart")
STREAM = ("stream",)


def check_checksum(body: Any, obj: SeededObject, algorithms: Sequence[str], *,
                   expect_cached: bool | None = None) -> str | None:
    """A checksum answer for ``obj``: every requested algorithm present and
    equal to the locally computed value, size right; with ``expect_cached``
    True/False, the ``cached`` list must (not) name every algorithm."""
    if not isinstance(body, Mapping) or not isinstance(body.get("checksums"), Mapping):
        return "answer without a 'checksums' object"
    if body.get("key") not in (None, obj.key):
        return f"answer is for key {body.get('key')!r}, asked {obj.key!r}"
    if body.get("size") not in (None, obj.size):
        return f"size {body.get('size')} != {obj.size}"
    got = body["checksums"]
    for name in algorithms:
        value = got.get(name)
        if value is None:
            return f"{name} missing from the answer"
        if str(value).lower() != obj.checksums[name]:
            return f"wrong {name}: got {value}, expected {obj.checksums[name]}"
    cached = set(body.get("cached") or ())
    if expect_cached is True and not set(algorithms) <= cached:
        return f"expected a metadata-cache hit for {', '.join(algorithms)}, cached={sorted(cached)}"
    if expect_cached is False and cached & set(algorithms):
        return f"expected a cache miss, but cached={sorted(cached)}"
    return None


def check_copy(body: Any, obj: SeededObject, *, verify: str, strategies: Iterable[str]) -> str | None:
    """A copy result for source ``obj``: completed, verified, all bytes, the
    verification checksum equal to the source's, the expected strategy."""
    if not isinstance(body, Mapping):
        return "copy answer is not a JSON object"
    if body.get("status") != "completed":
        return f"status {body.get('status')!r}, expected 'completed'"
    if body.get("verified") is not True:
        return "copy not verified"
    if body.get("bytes") != obj.size:
        return f"copied {body.get('bytes')} bytes, source has {obj.size}"
    value = (body.get("checksums") or {}).get(verify)
    if value is None:
        return f"{verify} missing from the copy result"
    if str(value).lower() != obj.checksums[verify]:
        return f"wrong {verify} after copy: got {value}, expected {obj.checksums[verify]}"
    allowed = tuple(strategies)
    if body.get("strategy") not in allowed:
        return f"strategy {body.get('strategy')!r}, expected {' or '.join(allowed)}"
    return None


def last_ndjson_result(text: str) -> tuple[Any, int, str | None]:
    """(final result, number of progress lines, error) of an ndjson copy answer.

    The stream ends with ``{"type": "result", …}``; a ``{"type": "error"}``
    line (a problem document) or a missing result is an error.
    """
    progress, result = 0, None
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            return None, progress, f"ndjson line is not JSON: {line[:80]!r}"
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "progress":
            progress += 1
        elif kind == "result":
            result = item
        elif kind == "error" or (isinstance(item, dict) and "code" in item and "status" in item):
            return None, progress, f"{item.get('code', 'ERROR')}: {item.get('detail') or item.get('title')}"
    if result is None:
        return None, progress, "ndjson stream ended without a result line"
    return result, progress, None


def error_code(status: int | None, body: Any = None, exception: BaseException | None = None) -> str:
    """A short code for the error table: the problem document's ``code``,
    else ``HTTP <status>``, else the exception's class name."""
    if isinstance(body, Mapping) and isinstance(body.get("code"), str):
        return body["code"]
    if status:
        return f"HTTP {status}"
    if exception is not None:
        return type(exception).__name__
    return "UNKNOWN"
