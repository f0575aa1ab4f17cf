"""Security tests run in-process with the socket tripwire on (tests/tripwire.py).

``s3``     moto S3 reached with the module's ``STORE`` (the project's client
           factory, one attempt), the module's ``BUCKET`` created; a module
           that needs objects in it extends the fixture (``def s3(s3)``)
``calls``  the names of the S3 API calls made through ``s3``
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from dynafed_runtime.s3 import make_s3_client
from dynafed_runtime.stores import Store
from tests.tripwire import Tripwire, tripwire  # noqa: F401  (fixture)


@pytest.fixture
def s3(tripwire: Tripwire, request: pytest.FixtureRequest) -> Iterator[Any]:  # noqa: F811
    with mock_aws():
        client = make_s3_client(Store(name="default", **request.module.STORE), max_attempts=1)
        client.create_bucket(Bucket=request.module.BUCKET)
        yield client


@pytest.fixture
def calls(s3: Any) -> list[str]:
    names: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: names.append(model.name))
    return names
