"""``dynafed-fn-checksum-hook`` against UVic's ``dynafed-storage checksums``
semantics (hep-gc/dynafed_storagestats): ``put`` writes only when the object
has no value of that type unless ``-f`` (``s3/base.py``,
``put_object_checksum``), and ``-e`` takes several endpoint ids
(``args.py``: ``nargs='+'``), tried in order."""
from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from dynafed_client import errors as ce
from dynafed_client.hooks import exitcodes
from dynafed_client.hooks.checksum import build_parser
from dynafed_client.hooks.checksum import run as run_checksum_hook
from dynafed_client.results import ChecksumResult
from dynafed_contract.checksum import ObjectRef

AWS = "https://s3.us-east-1.amazonaws.com"  # moto answers the default endpoint


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    stores = {"stores": {name: {"endpoint_url": AWS, "access_key_id": "AKID", "secret_access_key": "secret",
                                "region": "us-east-1"} for name in ("first", "second")}}
    (tmp_path / "stores.json").write_text(json.dumps(stores))
    (tmp_path / "mapping.json").write_text(json.dumps({"prefix": []}))
    with mock_aws():
        s3 = boto3.session.Session(aws_access_key_id="AKID", aws_secret_access_key="secret",
                                   region_name="us-east-1").client("s3")
        s3.create_bucket(Bucket="demo")
        s3.put_object(Bucket="demo", Key="stored", Body=b"Wikipedia", Metadata={"adler32": "11e60398"})
        s3.put_object(Bucket="demo", Key="bare", Body=b"Wikipedia")
        yield {"DYNAFED_FN_STORES_FILE": str(tmp_path / "stores.json"),
               "DYNAFED_FN_MAPPING": str(tmp_path / "mapping.json")}


def hook(argv: list[str], env: dict[str, str], client: Any = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_checksum_hook(build_parser().parse_args(argv), env=env, client=client, out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def stored(key: str) -> str | None:
    s3 = boto3.client("s3", region_name="us-east-1")
    return (s3.head_object(Bucket="demo", Key=key).get("Metadata") or {}).get("adler32")


def test_put_writes_only_when_missing_unless_forced(env: dict[str, str]) -> None:
    url = "https://fed.example/demo/stored"
    status, _, err = hook(["put", "-e", "first", "-u", url, "-t", "adler32", "--checksum", "0badc0de"], env)
    assert status == exitcodes.OK and stored("stored") == "11e60398"
    assert "already stored" in err and "-f" in err
    status, _, err = hook(["put", "-f", "-e", "first", "-u", url, "-t", "adler32", "--checksum", "0BADC0DE"], env)
    assert status == exitcodes.OK, err
    assert stored("stored") == "0badc0de"
    status, _, err = hook(["put", "-e", "first", "-u", "https://fed.example/demo/bare", "-t", "adler32",
                           "--checksum", "11e60398"], env)
    assert status == exitcodes.OK, err
    assert stored("bare") == "11e60398"


class OnlyIn:
    """A checksum client that finds objects only in one store."""

    def __init__(self, store: str) -> None:
        self.store, self.asked = store, []  # type: str, list[str]

    def checksum(self, obj: ObjectRef, algorithms: list[str], *, cache: str) -> ChecksumResult:
        self.asked.append(obj.store)
        if obj.store != self.store:
            raise ce.NotFoundError(code="NO_SUCH_OBJECT", status=404, detail="no such object")
        return ChecksumResult(store=obj.store, bucket=obj.bucket, key=obj.key, size=9, etag="e",
                              checksums={"adler32": "11e60398"})


@pytest.mark.parametrize("endpoints", [["-e", "first", "second"], ["-e", "first", "-e", "second"]],
                         ids=["nargs", "repeated"])
def test_get_tries_several_endpoints_in_order(env: dict[str, str], endpoints: list[str]) -> None:
    client = OnlyIn("second")
    status, out, _ = hook(["get", *endpoints, "-u", "https://fed.example/demo/stored", "-t", "adler32"], env,
                          client)
    assert (status, out) == (exitcodes.OK, "11e60398\n")
    assert client.asked == ["first", "second"]
    nowhere = OnlyIn("third")
    status, out, _ = hook(["get", *endpoints, "-u", "https://fed.example/demo/stored", "-t", "adler32"], env,
                          nowhere)
    assert (status, out) == (exitcodes.NOT_FOUND, "None\n")
    assert nowhere.asked == ["first", "second"]

