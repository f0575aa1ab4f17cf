"""Fixtures of the fault harness: an in-process moto S3 server behind a FaultProxy."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.faults.proxy import FaultProxy


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def proxy(moto_server: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_server) as p:
        yield p


def s3_client(endpoint: str, *, max_attempts: int = 1, read_timeout: float = 10.0) -> Any:
    """The project's own client factory pointed at ``endpoint``."""
    from dynafed_runtime.s3 import make_s3_client
    from dynafed_runtime.stores import Store

    store = Store(name="default", endpoint_url=endpoint, access_key_id="AKIDPROXY", secret_access_key="proxy-secret")
    return make_s3_client(store, max_attempts=max_attempts, connect_timeout=2.0, read_timeout=read_timeout)
