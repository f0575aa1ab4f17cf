"""Minimal WebDAV ``PROPFIND`` answers (RFC 4918 multistatus).

gfal2/davix stat a destination with ``PROPFIND`` (Depth 0) before a COPY
(404 = absent); ``gfal-ls`` lists with Depth 1. Only the live properties
those clients read are returned: resourcetype, getcontentlength,
getlastmodified, getetag.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator
from email.utils import format_datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

MULTISTATUS = "application/xml; charset=utf-8"


@dataclasses.dataclass(frozen=True)
class Resource:
    """One PROPFIND response entry."""

    path: str
    collection: bool
    size: int | None = None
    last_modified: dt.datetime | None = None
    etag: str | None = None


def http_date(when: dt.datetime) -> str:
    """RFC 7231 IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return format_datetime(when.astimezone(dt.UTC), usegmt=True)


def href(path: str, collection: bool) -> str:
    quoted = quote(path, safe="/-_.~!$&'()*+,;=:@")
    if collection and not quoted.endswith("/"):
        quoted += "/"
    return quoted


def _response(res: Resource) -> str:
    props = ["<D:resourcetype><D:collection/></D:resourcetype>" if res.collection else "<D:resourcetype/>"]
    if res.size is not None:
        props.append(f"<D:getcontentlength>{int(res.size)}</D:getcontentlength>")
    if res.last_modified is not None:
        props.append(f"<D:getlastmodified>{http_date(res.last_modified)}</D:getlastmodified>")
    if res.etag:
        props.append(f"<D:getetag>{escape(res.etag)}</D:getetag>")
    return ("<D:response>"
            f"<D:href>{escape(href(res.path, res.collection))}</D:href>"
            f"<D:propstat><D:prop>{''.join(props)}</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
            "</D:response>")


def multistatus(resources: Iterable[Resource]) -> str:
    """The 207 body for ``resources`` (the requested one first)."""
    body = "".join(_response(r) for r in resources)
    return f'<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">{body}</D:multistatus>\n'


def multistatus_chunks(resources: Iterable[Resource], *, batch: int = 200) -> Iterator[bytes]:
    """The 207 body as chunks, produced while ``resources`` is iterated (a
    listing of any length in bounded memory). An error while listing can no
    longer change the status: the body then ends without ``</D:multistatus>``,
    which a client's XML parser reports instead of a silently short list."""
    yield b'<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">'
    pending: list[str] = []
    for resource in resources:
        pending.append(_response(resource))
        if len(pending) >= batch:
            yield "".join(pending).encode()
            pending.clear()
    yield ("".join(pending) + "</D:multistatus>\n").encode()
