"""Strategy choice: put-empty, server-side (single / multipart), stream."""
from __future__ import annotations

import pytest

from dynafed_contract.copy import STRATEGIES, Strategy
from dynafed_runtime.config import Config, ConfigError
from dynafed_runtime.stores import Store
from functions.copy.engine import choose_strategy
from functions.copy.settings import CopySettings

MiB = 1024 * 1024
GiB = 1024 * MiB
A = Store("a", "http://s3.example", access_key_id="AK1", secret_access_key="x")
A_TOO = Store("a2", "http://s3.example", access_key_id="AK1", secret_access_key="y")
B = Store("b", "http://s3.example", access_key_id="AK2", secret_access_key="x")
C = Store("c", "http://other.example", access_key_id="AK1", secret_access_key="x")
SETTINGS = CopySettings(server_side_threshold=512 * MiB)


@pytest.mark.parametrize(("size", "source", "dest", "expected"), [
    (0, A, A_TOO, "put-empty"),
    (0, None, A, "put-empty"),
    (1, A, A_TOO, "server-side"),
    (512 * MiB, A, A_TOO, "server-side"),
    (512 * MiB + 1, A, A_TOO, "server-side-multipart"),
    (1, A, B, "stream"),  # same endpoint, other credentials
    (1, A, C, "stream"),  # same credentials, other endpoint
    (10 * GiB, None, A, "stream"),  # an http source
])
def test_choice(size, source, dest, expected):
    assert choose_strategy(size=size, source_store=source, destination_store=dest, settings=SETTINGS) == expected


def test_copy_object_never_above_five_gib():
    huge = CopySettings(server_side_threshold=100 * GiB)
    assert choose_strategy(size=5 * GiB, source_store=A, destination_store=A, settings=huge) == "server-side"
    assert choose_strategy(size=5 * GiB + 1, source_store=A, destination_store=A,
                           settings=huge) == "server-side-multipart"


def test_settings_from_the_environment():
    config = Config.from_env({"DYNAFED_FN_STORES": '{"stores": {"default": {"endpoint_url": "http://s"}}}',
                              "DYNAFED_FN_COPY_SERVER_SIDE_THRESHOLD": "1024",
                              "DYNAFED_FN_COPY_SLICE_SECONDS": "30",
                              "DYNAFED_FN_COPY_PARTS_IN_FLIGHT": "2"}, function="copy")
    settings = CopySettings.from_config(config)
    assert (settings.server_side_threshold, settings.slice_seconds, settings.parts_in_flight) == (1024, 30.0, 2)
    assert settings.part_size == CopySettings().part_size


@pytest.mark.parametrize(("name", "value"), [("PARTS_IN_FLIGHT", "0"), ("SLICE_SECONDS", "-1"),
                                             ("PART_BYTES", "lots")])
def test_bad_settings_name_the_variable(name, value):
    config = Config.from_env({"DYNAFED_FN_STORES": '{"stores": {"default": {"endpoint_url": "http://s"}}}',
                              f"DYNAFED_FN_COPY_{name}": value}, function="copy")
    with pytest.raises(ConfigError, match=f"DYNAFED_FN_COPY_{name}"):
        CopySettings.from_config(config)


def test_the_choice_is_a_strategy_whose_value_is_on_the_wire():
    choice = choose_strategy(size=1, source_store=A, destination_store=B, settings=SETTINGS)
    assert choice is Strategy.STREAM and choice.value == "stream"
    assert tuple(strategy.value for strategy in Strategy) == STRATEGIES  # the OpenAPI enum
