"""The filer source's wire contract (pure data: no Flask, no I/O).

The SeaweedFS filer POSTs one JSON document per filer event to a webhook
(``notification.toml``, ``[notification.webhook]``). Its shape, read from
seaweedfs ``weed/notification/webhook/http.go`` (``httpClient.sendMessageWithRetry``)
and captured from ``weed`` 4.48::

    {"key": "/buckets/demo/incoming/a.txt",        # the filer path
     "event_type": "create" | "update" | "delete" | "rename",
     "message": {                                  # filer_pb.EventNotification,
        "old_entry": {...}, "new_entry": {...},    # encoding/json of the protobuf:
        "new_parent_path": "/buckets/demo/incoming",  # snake_case names, zero
        "delete_chunks": true, "signatures": [..]}}   # values omitted, bytes base64

``event_type`` is derived by the filer from which entries are present
(``types.go``, ``detectEventType``). S3 objects live at
``<buckets folder>/<bucket>/<key>`` (``/buckets`` unless the filer's
``filer.options.buckets_folder`` says otherwise); multipart parts are staged
under ``<bucket>/.uploads/`` and the object appears as one ``create`` (or
``update``) at CompleteMultipartUpload.

This module turns such a notification into the CloudEvent the checksum
function accepts (``ch.cern.dynafed.checksum.requested``, data = a checksum
request), or into the reason it is ignored. The event id is a name-based UUID
of the object path and its content identity, so a redelivered notification,
or a second notification about the same bytes, carries the same id and the
receivers' ``source`` + ``id`` de-duplication drops it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dynafed_contract import fields
from dynafed_contract.events import CHECKSUM_REQUESTED
from dynafed_contract.openapi import function_document

__all__ = ["EVENT_TYPE", "Forward", "Ignored", "Watch", "WatchError", "decide", "openapi_document",
           "parse_notification", "parse_watch"]

EVENT_TYPE = CHECKSUM_REQUESTED
DEFAULT_BUCKETS_FOLDER = "/buckets"
#: S3 multipart parts are staged here (seaweedfs weed/s3api/s3_constants/s3_actions.go,
#: ``MultipartUploadsFolder``); only the completed object counts.
UPLOADS_FOLDER = ".uploads"
#: The filer's event kinds that can mean "new bytes at this path".
CONTENT_EVENTS = frozenset({"create", "update"})
KNOWN_EVENTS = frozenset({"create", "update", "delete", "rename"})
#: Namespace of the event ids (uuid5): fixed, so every replica derives the same id.
ID_NAMESPACE = uuid.UUID("6f1c3b7e-5d0a-5c1e-9a59-2f3c1d0e8b41")


class WatchError(ValueError):
    """A watch list entry is not ``bucket/prefix``."""


@dataclasses.dataclass(frozen=True)
class Watch:
    """One watched place: objects of ``bucket`` whose key starts with ``prefix``."""

    bucket: str
    prefix: str = ""

    def matches(self, bucket: str, key: str) -> bool:
        return bucket == self.bucket and key.startswith(self.prefix)

    def filer_prefix(self, buckets_folder: str = DEFAULT_BUCKETS_FOLDER) -> str:
        """The filer path prefix (the webhook's ``path_prefixes`` entry) of this watch."""
        return f"{buckets_folder.rstrip('/')}/{self.bucket}/{self.prefix}"

    def __str__(self) -> str:
        return f"{self.bucket}/{self.prefix}"


def parse_watch(raw: str) -> tuple[Watch, ...]:
    """Parse ``"bucket/prefix,other-bucket/"`` (a bare ``bucket`` watches all of it)."""
    out = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        bucket, _, prefix = item.partition("/")
        try:
            fields.bucket_name({"bucket": bucket})
        except ValueError:
            raise WatchError(f"{item[:80]!r}: {bucket[:63]!r} is not a valid S3 bucket name") from None
        if len(prefix.encode()) > fields.MAX_KEY_BYTES or "\x00" in prefix:
            raise WatchError(f"{item[:80]!r}: the prefix is not a valid S3 key prefix")
        out.append(Watch(bucket, prefix))
    if not out:
        raise WatchError("no bucket/prefix to watch")
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Notification:
    """The parts of a filer webhook notification that matter here."""

    key: str
    event_type: str
    new_entry: Mapping[str, Any] | None
    old_entry: Mapping[str, Any] | None
    new_parent_path: str

    @property
    def path(self) -> str:
        """Where the entry is now (a rename's new path, else ``key``)."""
        if self.new_entry is not None and self.new_parent_path:
            return f"{self.new_parent_path.rstrip('/')}/{self.new_entry.get('name', '')}"
        return self.key


def parse_notification(body: Any) -> Notification:
    """Validate the webhook body (raises ContractViolation, INVALID_REQUEST)."""
    body = fields.require_mapping(body, "filer notification")
    key = body.get("key")
    if not isinstance(key, str) or not key.startswith("/"):
        raise fields.invalid("filer notification: 'key' must be an absolute filer path")
    event_type = body.get("event_type")
    if event_type not in KNOWN_EVENTS:
        raise fields.invalid(f"filer notification: 'event_type' must be one of {', '.join(sorted(KNOWN_EVENTS))}")
    message = fields.require_mapping(body.get("message"), "filer notification 'message'")
    entries = {}
    for name in ("new_entry", "old_entry"):
        entry = message.get(name)
        if entry is not None:
            entry = fields.require_mapping(entry, f"filer notification message.{name}")
            if not isinstance(entry.get("name", ""), str):
                raise fields.invalid(f"filer notification: message.{name}.name must be a string")
        entries[name] = entry
    parent = message.get("new_parent_path") or ""
    if not isinstance(parent, str):
        raise fields.invalid("filer notification: message.new_parent_path must be a string")
    return Notification(key=key, event_type=str(event_type), new_entry=entries["new_entry"],
                        old_entry=entries["old_entry"], new_parent_path=parent)


@dataclasses.dataclass(frozen=True)
class Ignored:
    """Nothing to do; ``reason`` is one of a small fixed set (a metric label)."""

    reason: str


@dataclasses.dataclass(frozen=True)
class Forward:
    """The CloudEvent to send: attributes (no ``source``: the sender's) and data."""

    id: str
    subject: str
    time: datetime | None
    data: Mapping[str, Any]


def decide(notification: Notification, watches: Sequence[Watch], *, store: str,
           algorithms: Sequence[str], write: bool,
           buckets_folder: str = DEFAULT_BUCKETS_FOLDER) -> Forward | Ignored:
    """What to do with one notification: a checksum request, or why not."""
    if notification.event_type not in CONTENT_EVENTS:
        # delete: nothing to checksum; rename: the bytes did not change (S3 never renames)
        return Ignored(notification.event_type)
    entry = notification.new_entry
    if entry is None:
        return Ignored("no-entry")
    if entry.get("is_directory"):
        return Ignored("directory")
    located = _bucket_and_key(notification.path, buckets_folder)
    if located is None:
        return Ignored("not-an-object")
    bucket, key = located
    if key == UPLOADS_FOLDER or key.startswith(UPLOADS_FOLDER + "/"):
        return Ignored("multipart-part")
    if not any(w.matches(bucket, key) for w in watches):
        return Ignored("not-watched")
    identity = content_identity(entry)
    if notification.event_type == "update" and notification.old_entry is not None \
            and content_identity(notification.old_entry) == identity:
        # metadata only (tags, x-amz-meta-*; the checksum write-back itself is
        # such an update): the bytes, and so their checksums, are unchanged
        return Ignored("metadata-only")
    try:
        ref = {"store": fields.store_name({"store": store}), "bucket": fields.bucket_name({"bucket": bucket}),
               "key": fields.object_key({"key": key})}
    except ValueError:
        return Ignored("invalid-name")
    data = {**ref, "algorithms": list(algorithms), "cache": "write" if write else "none"}
    return Forward(id=event_id(notification.path, identity), subject=f"{store}/{bucket}/{key}",
                   time=_mtime(entry), data=data)


def _bucket_and_key(path: str, buckets_folder: str) -> tuple[str, str] | None:
    root = buckets_folder.rstrip("/") + "/"
    if not path.startswith(root):
        return None
    bucket, _, key = path[len(root):].partition("/")
    if not bucket or not key:
        return None
    return bucket, key


def content_identity(entry: Mapping[str, Any]) -> str:
    """A digest of what makes an entry's bytes: size, md5, inline content and
    chunks (offset, size, etag, write time). Metadata is left out.

    Chunk ids are not used: the filer sends the same chunk once as a ``fid``
    object and once with an extra ``file_id`` string (seen with weed 4.48 in
    the old_entry of an update), while these fields are stable.
    """
    attributes = _mapping(entry.get("attributes"))
    chunks = entry.get("chunks")
    chunks = chunks if isinstance(chunks, list) else []
    parts = {
        "size": attributes.get("file_size", 0),
        "md5": attributes.get("md5", ""),
        "content": entry.get("content", ""),
        "chunks": [[c.get("offset", 0), c.get("size", 0), c.get("e_tag", ""), c.get("modified_ts_ns", 0),
                    bool(c.get("is_chunk_manifest"))] for c in chunks if isinstance(c, dict)],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def event_id(path: str, identity: str) -> str:
    """The CloudEvent id of a checksum request for these bytes at this path."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{path}\n{identity}"))


def _mtime(entry: Mapping[str, Any]) -> datetime | None:
    """The entry's modification time: the event's ``time``, the same on every redelivery."""
    attributes = _mapping(entry.get("attributes"))
    seconds, nanos = attributes.get("mtime"), attributes.get("mtime_ns", 0)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
        return None
    nanos = nanos if isinstance(nanos, int) and 0 <= nanos < 10**9 else 0
    try:
        return datetime.fromtimestamp(seconds + nanos / 1e9, UTC)
    except (OverflowError, OSError, ValueError):
        return None


NOTIFICATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["key", "event_type", "message"],
    "properties": {
        "key": {"type": "string", "pattern": "^/"},
        "event_type": {"type": "string", "enum": sorted(KNOWN_EVENTS)},
        "message": {"type": "object", "properties": {
            "old_entry": {"type": "object"}, "new_entry": {"type": "object"},
            "new_parent_path": {"type": "string"}, "delete_chunks": {"type": "boolean"},
            "signatures": {"type": "array", "items": {"type": "integer"}}}},
    },
}
RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["outcome"],
    "properties": {
        "outcome": {"type": "string", "enum": ["forwarded", "ignored"]},
        "reason": {"type": "string"},
        "id": {"type": "string"}, "subject": {"type": "string"},
        "sink_status": {"type": "integer"},
    },
}


def openapi_document() -> dict[str, Any]:
    return function_document("Dynafed filer source", "Receive a SeaweedFS filer notification (webhook)",
                             NOTIFICATION_SCHEMA, RESULT_SCHEMA, errors=(400, 401, 413, 415, 429, 502, 503))
