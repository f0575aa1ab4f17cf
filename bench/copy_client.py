"""The streamed-copy reference (a boto3 GET streamed into a managed multipart
upload) in a process of its own, so that its CPU is that copy's alone.

Run inside the bench process, the same copy's client CPU moved between
2.2 and 4.5 CPU-s/GiB from round to round, mixing the bench's own state
(its heap, its other clients' pools and threads) into the reference. In a
process of its own it still moves with the S3 server's pace (2.2-3.8:
docs/performance.md, "Runs of 2026-12-03 afternoon"), but no longer with
whatever the bench measured before. The child is
started once, before the copy rounds (interpreter start-up and ``import
boto3`` are not counted), and measured as a process group of its own
(``bench.cpu.CpuMeter``).

Protocol, one JSON object per line: the parent writes the two stores, the
child answers ``{"ready": true}``; then per copy the parent writes
``{"bucket", "key", "dest_bucket", "dest_key"}`` and the child answers
``{"ok": true}`` or ``{"error": "..."}``. End of input ends the child.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

MiB = 1024 * 1024
#: s3transfer's parts and threads for the reference (what a careful client would pick)
PART_SIZE = 64 * MiB
CONCURRENCY = 4


def stream_copy(source: Any, dest: Any, job: Mapping[str, str]) -> None:
    """GET the source and stream its body into ``upload_fileobj`` (multipart, 64 MiB parts)."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE,
                            max_concurrency=CONCURRENCY)
    body = source.get_object(Bucket=job["bucket"], Key=job["key"])["Body"]
    dest.upload_fileobj(body, job["dest_bucket"], job["dest_key"], Config=config)


def serve(lines: IO[str], out: IO[str]) -> None:
    """The child's loop: clients from the first line, one copy per further line."""
    from dynafed_client.stack.s3 import client_for_store

    stores = json.loads(lines.readline())
    source = client_for_store(stores["source"], max_pool_connections=32)
    dest = client_for_store(stores["dest"], max_pool_connections=32)
    _answer(out, {"ready": True})
    for line in lines:
        try:
            stream_copy(source, dest, json.loads(line))
            _answer(out, {"ok": True})
        except Exception as exc:  # reported to the parent, which records the figure's error
            _answer(out, {"error": f"{type(exc).__name__}: {str(exc)[:300]}"})


def _answer(out: IO[str], message: Mapping[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


class CopyClient:
    """The child process, started on entry and ended (end of input) on exit."""

    def __init__(self, source_store: Mapping[str, str], dest_store: Mapping[str, str]) -> None:
        self.stores = {"source": dict(source_store), "dest": dict(dest_store)}
        self.process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the copy client is not running")
        return self.process.pid

    def __enter__(self) -> CopyClient:
        repo = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen([sys.executable, "-m", "bench.copy_client"], cwd=repo, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._ask(self.stores, "ready")
        return self

    def copy(self, bucket: str, key: str, dest_bucket: str, dest_key: str) -> None:
        self._ask({"bucket": bucket, "key": key, "dest_bucket": dest_bucket, "dest_key": dest_key}, "ok")

    def _ask(self, message: Mapping[str, Any], expect: str) -> None:
        process = self.process
        if process is None or process.stdin is None or process.stdout is None:
            raise RuntimeError("the copy client is not running")
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the copy client ended (exit status {process.wait()})")
        answer = json.loads(line)
        if expect not in answer:
            raise RuntimeError(f"copy client: {answer.get('error', answer)}")

    def __exit__(self, *exc: object) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
