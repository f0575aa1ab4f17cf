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

from dynafed_runtime.errors import InvalidRequest, PayloadTooLarge

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
        try:
            data = stream.read(min(_CHUNK, limit + 1 - len(out)))
        except TimeoutError:
            raise  # the worker's read deadline: the caller answers 408
        except _framing_errors() as exc:
            # gunicorn raises its parser's errors (InvalidChunkSize, ...) from the body
            # read: the client's framing is broken, which is a 400, not an internal error
            raise InvalidRequest(f"malformed chunked request body ({type(exc).__name__})") from None
        if not data:
            return bytes(out)
        out.extend(data)
    raise PayloadTooLarge(f"request body is larger than {limit} bytes")


def _framing_errors() -> tuple[type[BaseException], ...]:
    try:
        from gunicorn.http.errors import ParseException
    except ImportError:  # not under gunicorn (tests through the WSGI interface)
        return (ValueError, OSError)
    return (ParseException, ValueError, OSError)
