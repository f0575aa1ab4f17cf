"""Reading a request body with a size limit that holds for chunked bodies too.

Werkzeug (3.x, ``wsgi.get_input_stream``) wraps a chunked body (no
Content-Length; gunicorn sets ``wsgi.input_terminated``) in a ``LimitedStream``
whose ``readall`` *stops* at ``max_content_length`` without an error: a body
over the limit came back cut to the limit and was then parsed. Here the
stream is read to one byte past the limit, so "too large" is a 413, never a
truncation. The unread rest is gunicorn's to discard (``Parser.finish_body``
drains a bounded amount, else closes the connection).
"""
from __future__ import annotations

from typing import Any

from functions.runtime.errors import PayloadTooLarge

_CHUNK = 64 * 1024


def read_body(request: Any, limit: int) -> bytes:
    """The body of a Werkzeug/Flask ``request``; PayloadTooLarge (413) when it is
    longer than ``limit`` bytes, whether or not it stated a Content-Length."""
    length = request.content_length
    if length is not None:
        if length > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        return bytes(request.get_data(cache=False))
    environ = request.environ
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length and no server-terminated stream: nothing can be read safely (Werkzeug's rule)
    stream = environ["wsgi.input"]
    out = bytearray()
    while len(out) <= limit:
        data = stream.read(min(_CHUNK, limit + 1 - len(out)))
        if not data:
            return bytes(out)
        out.extend(data)
    raise PayloadTooLarge(f"request body is larger than {limit} bytes")
