"""Fixtures shared by the unit tests.

``sink``      a RecordingSink (tests/unit/sink_fakes.py): the function app's K_SINK transport
``moto_url``  moto's S3 as a real loopback HTTP server (one per module)
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.sink_fakes import RecordingSink


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A real HTTP endpoint, not mock_aws: mock_aws patches requests through
    the ``responses`` library, which reads a file-like request body whole
    before sending it (a streamed push and a cancel mid-body would not be
    tested), and it cannot be reached from another process (bench.copy_client)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
