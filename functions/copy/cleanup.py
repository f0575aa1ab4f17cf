"""Aborting multipart uploads orphaned by killed workers.

A copy aborts its upload on every failure it sees, but a worker killed
mid-copy (SIGKILL, OOM, node loss) cannot, and a job whose caller never
re-posts leaves its upload open too. Open uploads are invisible but their
parts are stored (and billed). Two remedies, use both:

* the bucket lifecycle rule (cheap, needs bucket-owner rights once)::

      {"Rules": [{"ID": "dynafed-fn-abort-incomplete-uploads", "Status": "Enabled",
                  "Filter": {"Prefix": ""},
                  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}

  (``aws s3api put-bucket-lifecycle-configuration --bucket B --lifecycle-configuration file://rule.json``);
* this module, for stores without lifecycle support or a tighter bound::

      python -m functions.copy.cleanup --older-than 6h [--store S] [--bucket B] [--prefix P] [--dry-run]

  or ``POST /cleanup {"store", "bucket", "older_than_s"}`` on the function.

``older-than`` must exceed the longest copy you run (a job keeps its upload
open from its first to its last request), or cleanup aborts a live job —
which then fails its next request and starts over, never corrupts anything.
S3 cannot tell whose an upload is, so everything older in the bucket goes.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from typing import Any

from dynafed_runtime import errors
from functions.copy import multipart


def abort_older(client: Any, bucket: str, *, older_than_s: float, prefix: str = "", dry_run: bool = False,
                now: dt.datetime | None = None) -> list[dict[str, str]]:
    """Abort the uploads in ``bucket`` (under ``prefix``) initiated more than
    ``older_than_s`` seconds ago; what was (or would be) aborted."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        cutoff = now - dt.timedelta(seconds=older_than_s)
    except OverflowError:  # older than the calendar allows: nothing is that old
        return []
    aborted: list[dict[str, str]] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        try:
            page = client.list_multipart_uploads(**kwargs)
        except Exception as exc:
            raise errors.translate(exc, what=f"s3://{bucket}") from None
        for item in page.get("Uploads") or ():
            initiated = item.get("Initiated")
            if isinstance(initiated, dt.datetime) and initiated.tzinfo is None:
                initiated = initiated.replace(tzinfo=dt.UTC)
            if isinstance(initiated, dt.datetime) and initiated > cutoff:
                continue
            upload = multipart.Upload(bucket, str(item["Key"]), str(item["UploadId"]))
            if not dry_run:
                multipart.abort(client, upload)
            aborted.append({"key": upload.key, "upload_id": upload.upload_id,
                            "initiated": initiated.isoformat() if isinstance(initiated, dt.datetime) else ""})
        if not page.get("IsTruncated") or not page.get("NextKeyMarker"):
            return aborted
        kwargs.update(KeyMarker=page["NextKeyMarker"], UploadIdMarker=page.get("NextUploadIdMarker") or "")


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``6h``, ``2d`` → seconds."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 15m, 6h, 2d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def main(argv: list[str] | None = None) -> int:
    from dynafed_runtime.config import Config, ConfigError
    from dynafed_runtime.s3 import make_s3_client

    parser = argparse.ArgumentParser(prog="python -m functions.copy.cleanup",
                                     description="Abort multipart uploads older than a given age.")
    parser.add_argument("--older-than", type=parse_duration, required=True, help="e.g. 90s, 15m, 6h, 2d")
    parser.add_argument("--store", action="append", help="store name (repeatable; default: all stores)")
    parser.add_argument("--bucket", action="append", help="bucket (repeatable; default: every bucket listed)")
    parser.add_argument("--prefix", default="", help="only keys under this prefix")
    parser.add_argument("--dry-run", action="store_true", help="list, do not abort")
    args = parser.parse_args(argv)
    try:
        config = Config.from_env(os.environ, function="copy")
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    status = 0
    for name in args.store or list(config.stores):
        try:
            client = make_s3_client(config.store(name))
            buckets = args.bucket or [b["Name"] for b in client.list_buckets().get("Buckets", [])]
            for bucket in buckets:
                done = abort_older(client, bucket, older_than_s=args.older_than, prefix=args.prefix,
                                   dry_run=args.dry_run)
                print(json.dumps({"store": name, "bucket": bucket, "dry_run": args.dry_run, "aborted": done}))
        except Exception as exc:
            error = errors.translate(exc)
            print(f"store {name}: {error.code.value}: {errors.scrub(error.detail)}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
