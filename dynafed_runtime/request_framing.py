"""Is a buffered HTTP/1.1 request complete? (RFC 9112 section 6 message framing)

The worker (worker.py) reads requests in its event loop and hands one to a
thread only when this says the bytes so far hold the whole request - or
when waiting longer cannot help (the head or body is over the limits, the
framing is malformed, or the client waits for ``100 Continue``): gunicorn's
own parser and the app then answer (431/400/413) as they always do.
"""
from __future__ import annotations

#: the end of a request head
_HEAD_END = b"\r\n\r\n"


def ready_to_dispatch(buffered: bytes, *, max_head: int, max_body: int) -> bool:
    """True when a thread can handle ``buffered`` without waiting for the client."""
    end = buffered.find(_HEAD_END)
    if end < 0:
        return len(buffered) > max_head
    head = buffered[:end].decode("latin-1")
    body = memoryview(buffered)[end + len(_HEAD_END):]
    length: str | None = None
    chunked = False
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return True  # malformed: gunicorn answers 400
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            length = value
        elif name == "transfer-encoding":
            chunked = chunked or "chunked" in value.lower()
        elif name == "expect" and value.lower() == "100-continue":
            return True  # the client sends the body only after gunicorn's 100 Continue
    if chunked:
        return _chunked_complete(body, max_body)
    if length is None:
        return True
    if not length.isascii() or not length.isdigit():
        return True  # malformed: gunicorn answers 400
    return len(body) >= int(length) or int(length) > max_body


def _chunked_complete(body: memoryview, max_body: int) -> bool:
    """Walk the chunks; True at the last chunk's end, or past ``max_body``."""
    data = body.tobytes()
    position = 0
    while True:
        if position > max_body:
            return True  # the app answers 413
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return len(data) - position > 1024  # a chunk-size line that long is malformed
        size_field = data[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            return True  # malformed: gunicorn answers 400
        position = line_end + 2
        if size == 0:
            # trailer fields, then an empty line
            return data.startswith(b"\r\n", position) or data.find(_HEAD_END, position - 2) >= 0
        position += size + 2
        if position > len(data):
            return position - 2 > max_body
