"""Append-only ndjson log of received events (one JSON object per line)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from dynafed_client.events.model import ReceivedEvent


class EventLog:
    """Appends events to ``path``; each line is flushed so tailing readers
    (tests, ``tail -f``) see it at once. Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def append(self, event: ReceivedEvent) -> None:
        line = json.dumps(event.to_json(), separators=(",", ":"), default=str)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def read_log(path: str | Path) -> list[ReceivedEvent]:
    """Every event in a log file (a partial last line is ignored)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(ReceivedEvent.from_json(json.loads(line)))
        except (ValueError, KeyError):
            continue
    return out
