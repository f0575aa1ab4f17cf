"""Scenario files: parsing, defaults, overrides, validation errors."""
from __future__ import annotations

import json

import pytest

from loadtest.config import (
    ConfigError,
    ScenarioConfig,
    SizeDistribution,
    apply_overrides,
    load_scenario,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize("name", ["default", "smoke", "knative"])
def test_builtin_scenarios_load_and_round_trip(name):
    config = load_scenario(name)
    assert config.name == name
    assert config.duration() > 0
    assert ScenarioConfig.from_dict(config.to_dict(), source=config.source) == config


def test_default_scenario_is_a_bounded_step_load():
    config = load_scenario("default")
    assert [s.users for s in config.stages()] == [4, 8, 12]
    assert config.duration() <= 180  # `make loadtest` stays a few minutes
    assert set(config.active_tasks) == {"checksum_small_cached", "checksum_small_uncached", "checksum_large",
                                        "copy_server_side", "copy_stream"}
    assert config.algorithms_needed == ("adler32", "md5")


def test_overrides_are_typed_and_nested():
    config = load_scenario("smoke", ["shape.hold=30s", "shape.users=5", "mix.copy_stream=0",
                                     "objects.small.count=3", 'checksum.algorithms=["crc32c", "sha256"]',
                                     "baseline.enabled=true"])
    assert config.duration() == 30 and config.stages()[0].users == 5
    assert config.mix["copy_stream"] == 0 and "copy_stream" not in config.active_tasks
    assert config.objects.small.count == 3
    assert config.checksum.algorithms == ("crc32c", "sha256")
    assert config.baseline.enabled is True


def test_json_scenario_files_work_too(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "mine", "shape": {"kind": "plateau", "users": 3, "ramp": 0, "hold": 5},
                                "objects": {"small": {"count": 4, "size": "8KiB"}}}))
    config = load_scenario(str(path))
    assert config.name == "mine" and config.source == str(path)
    assert config.objects.small.size == SizeDistribution("fixed", value=8192)


@pytest.mark.parametrize(("overrides", "message"), [
    (["bogus=1"], "unknown key"),
    (["mix.checksum_all=3"], r"mix: unknown key\(s\) checksum_all"),
    (["checksum.algorithms=[\"md4\"]"], "unknown algorithm"),
    (["objects.small.count=0"], "no objects.small"),
    (["objects.large.count=0"], "mix.checksum_large > 0 but no objects.large"),
    (["objects.small.cached_fraction=1.5"], "between 0 and 1"),
    (["users.wait_min=2", "users.wait_max=1"], "wait_max"),
    (["seed=\"abc\""], "seed: expected an integer"),
    (["objects.small.size.distribution=\"pareto\""], "distribution"),
    (["cold_start.interval=0"], "interval"),
    (["shape.kind=\"zigzag\""], "shape.kind"),
    (["nokey"], "expected key.sub=value"),
])
def test_invalid_scenarios_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_scenario("smoke", overrides)


def test_unknown_scenario_lists_the_builtin_ones(tmp_path):
    with pytest.raises(ConfigError, match="built-in: .*default.*smoke"):
        load_scenario("nonexistent")
    with pytest.raises(ConfigError, match="does not exist"):
        load_scenario(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_scenario(str(bad))


@pytest.mark.parametrize(("text", "expected"), [
    (123, 123), ("64KiB", 65536), ("1.5MB", 1_500_000), ("2 MiB", 2 * 1024**2), ("1GiB", 1024**3), ("7", 7)])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize(("text", "expected"), [(30, 30.0), ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0),
                                                 ("500ms", 0.5), ("1.5m", 90.0)])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["ten", "-1s", True, "5 parsecs"])
def test_bad_durations(bad):
    with pytest.raises(ConfigError):
        parse_duration(bad)


def test_size_distributions_are_reproducible_and_clamped():
    import random

    dist = SizeDistribution("lognormal", median=1000, sigma=2.0, min=100, max=5000)
    a = [dist.sample(random.Random(1)) for _ in range(1)] + [dist.sample(random.Random(1))]
    assert a[0] == a[1]
    rng = random.Random(5)
    sizes = [dist.sample(rng) for _ in range(500)]
    assert min(sizes) >= 100 and max(sizes) <= 5000
    assert min(sizes) == 100 and max(sizes) == 5000  # sigma 2 reaches both clamps in 500 draws
    uniform = SizeDistribution("uniform", min=10, max=20)
    assert {uniform.sample(rng) for _ in range(200)} <= set(range(10, 21))


def test_apply_overrides_does_not_touch_the_original():
    data = {"shape": {"kind": "step", "users": 1}}
    out = apply_overrides(data, ["shape.users=3", "new.deep.key=x y"])
    assert data == {"shape": {"kind": "step", "users": 1}}
    assert out == {"shape": {"kind": "step", "users": 3}, "new": {"deep": {"key": "x y"}}}
