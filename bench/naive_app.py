"""The straightforward checksum function, the baseline the engine must beat.

What one would write first: Flask under gunicorn, one GET, ``iter_chunks``
of 1 MiB, each digest updated in turn on the request thread with the
standard library (zlib for adler32/crc32, hashlib) and google-crc32c. No
pipelining, no parallel ranges. Run by the benchmark only::

    gunicorn -k gthread --threads 8 'bench.naive_app:create_app()'
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from typing import Any

import boto3
import google_crc32c
from botocore.config import Config
from flask import Flask, jsonify, request

CHUNK = 1024 * 1024


class _Rolling:
    def __init__(self, fn: Any, initial: int) -> None:
        self.fn, self.value = fn, initial

    def update(self, data: bytes) -> None:
        self.value = self.fn(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


def _digest(name: str) -> Any:
    if name == "adler32":
        return _Rolling(zlib.adler32, 1)
    if name == "crc32":
        return _Rolling(zlib.crc32, 0)
    if name == "crc32c":
        return _Rolling(lambda data, crc: google_crc32c.extend(crc, data), 0)
    return hashlib.new(name)


def create_app() -> Flask:
    with open(os.environ["DYNAFED_FN_STORES_FILE"], encoding="utf-8") as f:
        stores = json.load(f)["stores"]
    clients = {
        name: boto3.session.Session().client(
            "s3", endpoint_url=s["endpoint_url"], region_name=s.get("region", "us-east-1"),
            aws_access_key_id=s["access_key_id"], aws_secret_access_key=s["secret_access_key"],
            config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                          response_checksum_validation="when_required", max_pool_connections=16))
        for name, s in stores.items()
    }
    app = Flask("naive")

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok"})

    @app.post("/")
    def checksum() -> Any:
        body = request.get_json()
        client = clients[body.get("store", "default")]
        obj = client.get_object(Bucket=body["bucket"], Key=body["key"])
        digests = {a: _digest(a) for a in body.get("algorithms", ["adler32"])}
        for chunk in obj["Body"].iter_chunks(CHUNK):
            for digest in digests.values():
                digest.update(chunk)
        return jsonify({"bucket": body["bucket"], "key": body["key"], "size": obj["ContentLength"],
                        "checksums": {a: d.hexdigest() for a, d in digests.items()}})

    return app
