"""pytest fixtures for the embedded local stack (loaded from tests/conftest.py).

``stack``   session-scoped: SeaweedFS + every function whose code exists
            (+ event receiver and gateway when their modules exist).
``seaweed`` session-scoped: SeaweedFS only, for tests that start their own
            gunicorn (use ``seaweed.stores_file``, ``seaweed.s3_client()``).

Both FAIL (never skip) when the stack cannot start: a missing S3 server is
a broken environment, not an optional feature.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from dynafed_client.stack import Stack, StackError


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs: object) -> Stack:
    state_dir = tmp_path_factory.mktemp(name)
    try:
        return Stack.up(state_dir, **kwargs)  # type: ignore[arg-type]
    except StackError as exc:
        pytest.fail(f"local stack ({name}) failed to start:\n{exc}", pytrace=False)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A running local stack; stopped at the end of the session."""
    st = _start(tmp_path_factory, "stack")
    with st:
        yield st


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """SeaweedFS alone (stores, buckets, stores.json); stopped at the end of the session."""
    st = _start(tmp_path_factory, "seaweed", functions=(), with_events=False, with_gateway=False)
    with st:
        yield st
