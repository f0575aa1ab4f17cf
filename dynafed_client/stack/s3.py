"""boto3 S3 clients for stores of the stack (stores JSON entries)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config


def store_entry(endpoint_url: str, access_key_id: str, secret_access_key: str, *,
                region: str = "us-east-1", addressing_style: str = "path") -> dict[str, str]:
    """One store of the stores JSON (docs/internals.md)."""
    return {"endpoint_url": endpoint_url, "region": region, "access_key_id": access_key_id,
            "secret_access_key": secret_access_key, "addressing_style": addressing_style}


def client_for_store(store: Mapping[str, str], **config: Any) -> Any:
    """A boto3 S3 client for a store entry.

    Checksums are only computed/validated when an operation requires them
    (SeaweedFS and other S3 servers differ on the flexible-checksum
    defaults). ``config`` entries override the botocore Config.
    """
    options: dict[str, Any] = {
        "s3": {"addressing_style": store.get("addressing_style", "path")},
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        "retries": {"max_attempts": 3, "mode": "standard"},
    }
    options.update(config)
    return boto3.session.Session().client(
        "s3", endpoint_url=store["endpoint_url"], region_name=store.get("region", "us-east-1"),
        aws_access_key_id=store["access_key_id"], aws_secret_access_key=store["secret_access_key"],
        config=Config(**options))
