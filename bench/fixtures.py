"""What the benchmark needs around the stack: test objects, extra gunicorn
processes (the straightforward function, cold starts), rclone remotes, and
the peak RSS of a gunicorn worker."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench.measure import MiB

PART = 64 * MiB


def put_random_object(client: Any, bucket: str, key: str, size: int, *, seed: int = 0) -> str:
    """Upload ``size`` bytes of incompressible data; returns the ETag.

    One random 64 MiB block, each part stamped with its number so no two
    parts are equal; parts go up 4 at a time (SeaweedFS writes ~0.13 GB/s).
    """
    if size <= PART:
        return str(client.put_object(Bucket=bucket, Key=key, Body=os.urandom(size))["ETag"])
    block = bytearray(os.urandom(PART))
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    ranges = [(n + 1, off, min(PART, size - off)) for n, off in enumerate(range(0, size, PART))]

    def part(spec: tuple[int, int, int]) -> dict[str, Any]:
        number, _, length = spec
        body = bytearray(block[:length])
        body[:16] = f"{seed:08d}{number:08d}".encode()
        etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                                  Body=bytes(body))["ETag"]
        return {"PartNumber": number, "ETag": etag}

    try:
        with ThreadPoolExecutor(4) as pool:
            parts = list(pool.map(part, ranges))
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                         MultipartUpload={"Parts": parts})
    except BaseException:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        raise
    return str(client.head_object(Bucket=bucket, Key=key)["ETag"])


def delete_quietly(client: Any, bucket: str, key: str) -> None:
    with contextlib.suppress(Exception):
        client.delete_object(Bucket=bucket, Key=key)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stop(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM, a bounded wait, then SIGKILL (only this process group: ours)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def spawn(argv: list[str], env: Mapping[str, str], cwd: Path, log: Path) -> subprocess.Popen[Any]:
    """Start ``argv`` in its own process group, output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(argv, env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


@contextlib.contextmanager
def naive_function(repo: Path, stores_file: Path, log: Path) -> Iterator[tuple[str, int]]:
    """The straightforward function under gunicorn, as the real ones run:
    yields its URL and the gunicorn master's pid."""
    port = free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    env = {**os.environ, "DYNAFED_FN_STORES_FILE": str(stores_file), "PYTHONUNBUFFERED": "1"}
    argv = [gunicorn, "-b", f"127.0.0.1:{port}", "-w", "1", "-k", "gthread", "--threads", "8", "--timeout", "0",
            "bench.naive_app:create_app()"]
    proc = spawn(argv, env, repo, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
        yield url, proc.pid
    finally:
        stop(proc)


def rclone_env(stores: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """rclone remotes named after the stores, configured by environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    for name, store in stores.items():
        prefix = f"RCLONE_CONFIG_{name.upper()}_"
        env.update({
            prefix + "TYPE": "s3",
            prefix + "PROVIDER": "Other",
            prefix + "ENDPOINT": store["endpoint_url"],
            prefix + "ACCESS_KEY_ID": store["access_key_id"],
            prefix + "SECRET_ACCESS_KEY": store["secret_access_key"],
            prefix + "REGION": store.get("region", "us-east-1"),
            prefix + "FORCE_PATH_STYLE": "true",
        })
    env["RCLONE_CONFIG"] = "/dev/null"  # nothing from a developer's own rclone.conf
    return env


def rclone_binary() -> str:
    candidate = Path(sys.executable).parent / "rclone"
    return str(candidate) if candidate.exists() else "rclone"


# -- gunicorn workers and their memory -----------------------------------------

def worker_pids(master: int) -> list[int]:
    """Children of a gunicorn master (its workers)."""
    path = Path(f"/proc/{master}/task/{master}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``echo 5 > clear_refs``, Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False
