"""schemathesis against the copy function's own /openapi.json (WSGI, moto as
S3, socket tripwire on, http sources on a fake-DNS name that resolves to a
public address the tripwire refuses: nothing leaves the host)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from moto import mock_aws
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from dynafed_runtime.config import Config
from dynafed_runtime.s3 import make_s3_client
from dynafed_runtime.stores import Store
from functions.copy.app import create_app
from tests.fuzz.rules import bucket_rule, key_rule
from tests.seeding import coin, examples

STORE = {"endpoint_url": None, "region": "us-east-1", "access_key_id": "AKIDFUZZ", "secret_access_key": "fuzz-secret"}
BUCKET = "data"
#: rejections the schema cannot foresee: store names are server configuration; a
#: source and destination that are the same object; http sources outside the
#: allow-list or unreachable (the tripwire refuses every non-loopback address);
#: an existing destination without overwrite; a missing source
EXCUSED = {"UNKNOWN_STORE", "SOURCE_NOT_ALLOWED", "DESTINATION_EXISTS", "UPSTREAM_UNAVAILABLE", "NO_SUCH_OBJECT",
           "NO_SUCH_BUCKET"}


class CurrentClient:
    client: Any = None

    def __getattr__(self, name: str) -> Any:
        return getattr(CurrentClient.client, name)


app = create_app(Config.from_env({"DYNAFED_FN_STORES": json.dumps({"stores": {"default": STORE}}),
                                  "DYNAFED_FN_HTTP_SOURCES": "http://files.example,https://files.example"},
                                 function="copy"),
                 s3=lambda store: CurrentClient(), sink_transport=lambda *a: 202)
schema = schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.fixture(autouse=True)
def moto_s3(tripwire: Any) -> Iterator[Any]:
    tripwire.resolve("files.example", "93.184.216.34")
    tripwire.expect_attempts()  # a generated http source may be tried: refused by the tripwire
    with mock_aws():
        client = make_s3_client(Store(name="default", **STORE), max_attempts=1)
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="src", Body=b"0123456789" * 100)
        CurrentClient.client = client
        yield client
        CurrentClient.client = None
    forbidden = [a for a in tripwire.attempts if a.address[0] != "93.184.216.34"]
    assert forbidden == [], f"connections attempted to {forbidden}"


def _steer(body: Any) -> None:
    """Point part of the cases at objects that exist, so success paths are fuzzed too."""
    if not isinstance(body, dict):
        return
    source, destination = body.get("source"), body.get("destination")
    if isinstance(source, dict) and "bucket" in source and isinstance(source.get("key"), str):
        if coin(source["key"]):
            source.update(store="default", bucket=BUCKET, key="src")
    if isinstance(destination, dict) and isinstance(destination.get("bucket"), str) and coin(
            str(destination.get("key"))):
        destination.update(store="default", bucket=BUCKET)


def check(case: Any, moto_s3: Any) -> None:
    meta = case.meta
    if meta is not None and meta.generation.mode == GenerationMode.POSITIVE:
        _steer(case.body)  # negative cases stay as generated (steering could make them valid)
    response = case.call()
    content_type = " ".join(response.headers.get("content-type", []))
    problem = response.json() if content_type.startswith("application/problem") else {}
    detail = str(problem.get("detail", ""))
    # rules "format: uri" cannot state: an http(s) URL with a host and no credentials;
    # and a cross-field one: source and destination differ
    body = case.body if isinstance(case.body, dict) else {}
    buckets = [body.get("bucket")] + [part.get("bucket") for part in (body.get("source"), body.get("destination"))
                                      if isinstance(part, dict)]
    # (and a source's x509 must be a PEM certificate and key, its header names HTTP tokens: content
    # rules the schema does not state)
    semantic = (detail.startswith(("source url", "destination url")) or "same object" in detail
                or key_rule(detail) or " x509 " in detail
                or "not an HTTP token" in detail
                or any(bucket_rule(bucket, detail) for bucket in buckets))
    excluded = [positive_data_acceptance] if problem.get("code") in EXCUSED or semantic else []
    if problem.get("code") == "PAYLOAD_TOO_LARGE":
        # a body over the 64 KiB limit is refused for its size before its content is read
        excluded.append(negative_data_rejection)
    case.validate_response(response, excluded_checks=excluded)
    assert response.status_code < 500 or problem.get("code") == "UPSTREAM_UNAVAILABLE", response.text


@schema.exclude(path="/cleanup").parametrize()
@settings(max_examples=examples(80), deadline=None, suppress_health_check=list(HealthCheck))
def test_copy_function_conforms_to_its_openapi(case: Any, moto_s3: Any) -> None:
    check(case, moto_s3)


@schema.include(path="/cleanup").parametrize()
@settings(max_examples=examples(60), deadline=None, suppress_health_check=list(HealthCheck))
def test_cleanup_endpoint_conforms_to_its_openapi(case: Any, moto_s3: Any) -> None:
    check(case, moto_s3)
