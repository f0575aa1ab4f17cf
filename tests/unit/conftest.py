"""Fixtures shared by the unit tests.

``sink``  a RecordingSink (tests/unit/sink_fakes.py): the function app's K_SINK transport
"""
from __future__ import annotations

import pytest

from tests.unit.sink_fakes import RecordingSink


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()
