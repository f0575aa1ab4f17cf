"""moto's S3 for the function apps' unit tests, reached the way the
project's client factory (dynafed_runtime.s3) reaches a store but with one
attempt, so that an injected fault surfaces at once.

    @pytest.fixture
    def s3(session):
        with moto_s3(session, "src", "dst") as client:
            yield client
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from moto import mock_aws

__all__ = ["moto_s3"]


@contextlib.contextmanager
def moto_s3(session: boto3.session.Session, *buckets: str, **config: Any) -> Iterator[Any]:
    """A client of ``session`` on moto's S3 while the ``with`` lasts, with
    ``buckets`` created; ``config``: more botocore settings."""
    with mock_aws():
        client = session.client("s3", config=BotoConfig(
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 1}, s3={"addressing_style": "path"}, **config))
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield client
