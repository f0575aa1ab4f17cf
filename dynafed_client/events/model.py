"""A received CloudEvent as plain, JSON-ready data."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

# attributes kept as fields; anything else is an extension
_CORE = ("id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema")


@dataclasses.dataclass(frozen=True)
class ReceivedEvent:
    """One CloudEvent as the receiver saw it (``seq`` is its position in the receiver)."""

    id: str
    source: str
    type: str
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    data: Any = None
    extensions: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    specversion: str = "1.0"
    #: how it arrived: ``binary``, ``structured`` or ``batch``
    mode: str = "binary"
    seq: int = 0
    received_at: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        """The de-duplication key (CloudEvents: ``source`` + ``id`` identify an event)."""
        return (self.source, self.id)

    def to_json(self) -> dict[str, Any]:
        """The JSON line written to the log and served by ``GET /events``."""
        body = {
            "seq": self.seq, "id": self.id, "source": self.source, "type": self.type,
            "subject": self.subject, "time": self.time, "specversion": self.specversion,
            "datacontenttype": self.datacontenttype, "data": self.data, "mode": self.mode,
            "received_at": round(self.received_at, 6),
        }
        if self.extensions:
            body["extensions"] = dict(self.extensions)
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ReceivedEvent:
        """Inverse of :meth:`to_json` (remote receivers, log files)."""
        return cls(id=str(body["id"]), source=str(body["source"]), type=str(body["type"]),
                   subject=body.get("subject"), time=body.get("time"),
                   datacontenttype=body.get("datacontenttype"), data=body.get("data"),
                   extensions=dict(body.get("extensions") or {}), specversion=str(body.get("specversion", "1.0")),
                   mode=str(body.get("mode", "binary")), seq=int(body.get("seq", 0)),
                   received_at=float(body.get("received_at", 0.0)))

    @classmethod
    def from_sdk(cls, event: Any, *, mode: str) -> ReceivedEvent:
        """From a ``cloudevents`` 2.x SDK event object."""
        attributes = dict(event.get_attributes())
        time_value = attributes.get("time")
        if isinstance(time_value, datetime):
            time_text: str | None = time_value.isoformat().replace("+00:00", "Z")
        else:
            time_text = str(time_value) if time_value is not None else None
        data = event.get_data()
        if isinstance(data, bytes | bytearray):
            try:
                data = bytes(data).decode("utf-8")
            except UnicodeDecodeError:
                data = {"data_base64": __import__("base64").b64encode(bytes(data)).decode()}
        return cls(id=str(attributes["id"]), source=str(attributes["source"]), type=str(attributes["type"]),
                   subject=attributes.get("subject"), time=time_text,
                   datacontenttype=attributes.get("datacontenttype"), data=data,
                   extensions={k: _plain(v) for k, v in attributes.items() if k not in _CORE},
                   specversion=str(attributes.get("specversion", "1.0")), mode=mode)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
