"""Helpers for tests that drive the copy function over HTTP: stores files
(with stores routed through a FaultProxy), posting copies (JSON or ndjson,
re-posting ``in-progress`` answers), and the invariants every copy must keep
(no open upload left, event rules)."""
from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests

from dynafed_contract import events as ce
from tests.faults.receiver import Received

NDJSON = "application/x-ndjson"

MiB = 1024 * 1024
PART = 5 * MiB  # the S3 minimum: part boundaries stay cheap
#: parts of ``PART``; server-side, one CopyObject up to 6 MiB, UploadPartCopy parts of ``PART`` above
PART_SETTINGS = {
    "DYNAFED_FN_COPY_PART_BYTES": str(PART),
    "DYNAFED_FN_COPY_SERVER_SIDE_THRESHOLD": str(6 * MiB),
    "DYNAFED_FN_COPY_SERVER_SIDE_PART_BYTES": str(PART),
}


def write_stores(path: Path, stores: Mapping[str, Mapping[str, str]]) -> Path:
    """A stores JSON file (the functions' DYNAFED_FN_STORES_FILE)."""
    path.write_text(json.dumps({"stores": {name: dict(s) for name, s in stores.items()}}))
    path.chmod(0o600)
    return path


def via(store: Mapping[str, str], endpoint: str) -> dict[str, str]:
    """The same credentials reached through another endpoint (a fault proxy):
    a different backend for ``Store.same_backend``, the same data."""
    return {**store, "endpoint_url": endpoint}


def copy_body(source: Mapping[str, Any], destination: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {"source": dict(source), "destination": dict(destination), **extra}


def post(url: str, body: Mapping[str, Any], *, timeout: float = 120.0) -> requests.Response:
    return requests.post(url, json=body, timeout=timeout, headers={"Accept": "application/json"})


def post_ndjson(url: str, body: Mapping[str, Any], *, on_line: Callable[[dict[str, Any]], None] | None = None,
                timeout: float = 120.0) -> tuple[int, list[dict[str, Any]]]:
    """POST asking for ndjson; (status, lines) — lines parsed as they arrive."""
    with requests.post(url, json=body, timeout=timeout, stream=True, headers={"Accept": NDJSON}) as response:
        if response.headers.get("Content-Type", "").split(";")[0] != NDJSON:
            return response.status_code, [response.json()]
        lines = []
        for raw in response.iter_lines(chunk_size=None):
            if not raw.strip():
                continue
            line = json.loads(raw)
            lines.append(line)
            if on_line is not None:
                on_line(line)
        return response.status_code, lines


def run_to_end(url: str, body: Mapping[str, Any], *, max_requests: int = 200,
               pause: float = 0.0) -> tuple[requests.Response, int]:
    """POST (JSON) until the answer is not ``in-progress``, as the client does
    (``pause`` seconds between requests); the last response and the number of requests."""
    for count in range(1, max_requests + 1):
        response = post(url, body)
        if response.status_code != 200 or response.json().get("status") != "in-progress":
            return response, count
        time.sleep(pause)
    raise AssertionError(f"still in progress after {max_requests} requests")


def open_uploads(client: Any, bucket: str, key: str | None = None) -> list[dict[str, Any]]:
    """Open multipart uploads in ``bucket`` (on exactly ``key`` if given)."""
    uploads = client.list_multipart_uploads(Bucket=bucket, **({"Prefix": key} if key else {})).get("Uploads") or []
    return [u for u in uploads if key is None or u["Key"] == key]


def exists(client: Any, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
        return True
    except client.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def read(client: Any, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data):08x}"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def check_job_events(received: list[Received], job_id: str, *, terminal: str | None = None) -> list[Received]:
    """The event rules of one job: subject = job id on every event, bytes never
    decreasing (started counts as 0), exactly one terminal event (of type
    ``terminal`` when given), nothing after it, unique ids. Returns its events."""
    mine = [e for e in received if e.subject == job_id
            or (isinstance(e.data, dict) and e.data.get("job_id") == job_id)]
    assert mine, f"no events for job {job_id}"
    assert all(e.subject == job_id for e in mine), "an event of the job has another subject"
    assert len({(e.source, e.id) for e in mine}) == len(mine), "duplicate event ids"
    terminals = [e for e in mine if e.type in ce.COPY_TERMINAL]
    assert len(terminals) == 1, f"{len(terminals)} terminal events: {[e.type for e in mine]}"
    assert mine[-1] is terminals[0], f"events after the terminal one: {[e.type for e in mine]}"
    if terminal is not None:
        assert terminals[0].type == terminal, terminals[0].data
    last = -1
    for event in mine:
        if event.type == ce.COPY_PROGRESS or (event.type == ce.COPY_COMPLETED and "bytes" in event.data):
            value = event.data["bytes"]
            assert value >= last, f"bytes decreased: {last} -> {value}"
            last = value
    return mine
