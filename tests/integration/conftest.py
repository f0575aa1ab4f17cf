"""Fixtures shared by the integration modules that start their own function
processes against the session's SeaweedFS (``seaweed``,
tests/integration/stackfixture.py).

``sink``                 a loopback CloudEvents sink for the module (an EventRecorder, a K_SINK)
``s3``                   SeaweedFS clients by store name, straight to the stores (no proxy)
``proxy``                a FaultProxy in front of SeaweedFS for the module; no test leaves a rule in it
``proxied_stores_file``  the stack's stores plus ``p-default`` / ``p-archive``: the same
                         identities reached through ``proxy``
``opened``               sockets a test opens, closed after it

A module whose tests need another shape (one client, a failing sink)
defines the fixture itself: pytest takes the nearest definition.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dynafed_client.stack import Stack
from tests.faults.copying import via, write_stores
from tests.faults.proxy import FaultProxy
from tests.faults.receiver import EventRecorder


@pytest.fixture(scope="module")
def sink() -> Iterator[EventRecorder]:
    with EventRecorder() as recorder:
        yield recorder


@pytest.fixture(scope="module")
def s3(seaweed: Stack) -> dict[str, Any]:
    return {"default": seaweed.s3_client("default"), "archive": seaweed.s3_client("archive")}


@pytest.fixture(scope="module")
def proxy(seaweed: Stack) -> Iterator[FaultProxy]:
    with FaultProxy(seaweed.endpoint_url) as p:
        yield p


@pytest.fixture(autouse=True)
def _no_proxy_rules_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Clears the module's ``proxy`` after every test that has it (directly or
    through a fixture), so a failed test's rules never reach the next one."""
    # looked up before the test, so that a function-scoped ``proxy`` is still
    # up when this clears it
    proxy = request.getfixturevalue("proxy") if "proxy" in request.fixturenames else None
    yield
    if proxy is not None:
        proxy.clear()


@pytest.fixture(scope="module")
def proxied_stores_file(seaweed: Stack, proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    stores = seaweed.stores
    return write_stores(tmp_path_factory.mktemp("proxied") / "stores.json", {
        **stores, "p-default": via(stores["default"], proxy.url), "p-archive": via(stores["archive"], proxy.url)})


@pytest.fixture
def opened() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()
