"""The scenario file: what to seed, which mix of work, which load shape.

A scenario is TOML (or JSON) with these tables, every key optional (the
defaults are the ``default`` scenario's)::

    name = "default"
    seed = 20240501                 # objects, sizes and key names follow from it

    [objects]                       # seeded into one bucket of the target store
    store = "default"
    bucket = "demo"
    prefix = "loadtest"
    small = { count = 200, cached_fraction = 0.5,
              size = { distribution = "lognormal", median = "64KiB", sigma = 1.0,
                       min = "1KiB", max = "2MiB" } }
    large = { count = 4, size = { distribution = "uniform", min = "64MiB", max = "128MiB" } }

    [checksum]
    algorithms = ["adler32"]        # small objects
    large_algorithms = ["adler32"]  # large objects

    [copy]
    source = "small"                # which seeded objects are copied
    verify = "adler32"
    server_side = { store = "default", bucket = "demo-copy" }   # same store: CopyObject
    stream = { store = "archive", bucket = "archive" }          # other credentials: streamed
    ndjson = true                   # streamed copies ask for ndjson progress lines

    [mix]                           # relative task weights (0 disables a task)
    checksum_small_cached = 40
    checksum_small_uncached = 30
    checksum_large = 5
    copy_server_side = 15
    copy_stream = 10

    [users]
    wait_min = 0.0                  # think time between tasks, seconds
    wait_max = 0.5
    request_timeout = "300s"
    retries_429 = 3                 # after a 429 (load shed), retry after Retry-After…
    retry_after_max = "5s"          # …waiting at most this long

    [shape]                         # see loadtest.stages
    kind = "step"
    users = 4
    steps = 3
    step_duration = "30s"

    [baseline]                      # the same scenario through the fresh-process path
    enabled = true
    max_users = 4                   # cap: each task spawns a process

    [cold_start]                    # Knative only
    probes = 3                      # wait for zero, then time one request; repeated
    before_load = true              # wait for zero before the load starts too
    zero_timeout = "600s"
    interval = "1s"                 # replica sampling period

    [local]                         # gunicorn settings for a stack the runner starts
    workers = 1
    threads = 8

Sizes accept ``123``, ``"64KiB"``, ``"1.5MB"``; durations ``30``, ``"30s"``,
``"2m"``, ``"1h"``. ``--set key.sub=value`` overrides any key (the value
is parsed as TOML, else taken as a string).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

#: task name -> name of its requests in Locust's statistics ("<function>:<what>")
TASKS: dict[str, str] = {
    "checksum_small_cached": "checksum:small-cached",
    "checksum_small_uncached": "checksum:small-uncached",
    "checksum_large": "checksum:large",
    "copy_server_side": "copy:server-side",
    "copy_stream": "copy:stream",
}
OBJECT_CLASSES = ("small", "large")
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_DURATION_UNITS = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}


class ConfigError(ValueError):
    """A scenario file or override is invalid; the message names the key."""


# -- value parsers ---------------------------------------------------------------

def parse_size(value: Any, key: str = "size") -> int:
    """Bytes from ``123``, ``"64KiB"``, ``"1.5 MB"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a size, got {value!r}")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise ConfigError(f"{key}: expected a size like 64KiB or 1MB, got {value!r}")
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if size < 0:
        raise ConfigError(f"{key}: size must be >= 0")
    return size


def parse_duration(value: Any, key: str = "duration") -> float:
    """Seconds from ``30``, ``"30s"``, ``"2m"``, ``"1h"``, ``"500ms"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([A-Za-z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _DURATION_UNITS:
            raise ConfigError(f"{key}: expected a duration like 30s or 2m, got {value!r}")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
    if seconds < 0 or math.isinf(seconds) or math.isnan(seconds):
        raise ConfigError(f"{key}: duration must be a finite number >= 0")
    return seconds


def _number(table: Mapping[str, Any], key: str, default: float, where: str, *, minimum: float = 0.0) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}.{key}: must be >= {minimum}")
    return float(value)


def _int(table: Mapping[str, Any], key: str, default: int, where: str, *, minimum: int = 0) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{key}: expected an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}.{key}: must be >= {minimum}")
    return value


def _str(table: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value


def _table(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = parent.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}{key}: expected a table")
    return value


def _reject_unknown(table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


def _algorithms(value: Any, where: str) -> tuple[str, ...]:
    from loadtest.seed import DIGESTS  # the algorithms seed can compute locally

    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of algorithm names")
    names = tuple(v.lower() for v in value)
    bad = [n for n in names if n not in DIGESTS]
    if bad:
        raise ConfigError(f"{where}: unknown algorithm(s) {', '.join(bad)} (known: {', '.join(DIGESTS)})")
    return names


# -- the model ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SizeDistribution:
    """Object sizes: ``fixed`` (value), ``uniform`` (min..max) or ``lognormal``
    (median, sigma; clamped to min..max)."""

    distribution: str = "fixed"
    value: int = 65536
    min: int = 0
    max: int = 0
    median: int = 65536
    sigma: float = 1.0

    KINDS = ("fixed", "uniform", "lognormal")

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], where: str) -> SizeDistribution:
        if not isinstance(table, Mapping):
            return cls("fixed", value=parse_size(table, where))
        _reject_unknown(table, ("distribution", "value", "min", "max", "median", "sigma"), where)
        kind = _str(table, "distribution", "fixed", where)
        if kind not in cls.KINDS:
            raise ConfigError(f"{where}.distribution: one of {', '.join(cls.KINDS)}, got {kind!r}")
        value = parse_size(table.get("value", 65536), f"{where}.value")
        median = parse_size(table.get("median", value), f"{where}.median")
        low = parse_size(table.get("min", 0), f"{where}.min")
        high = parse_size(table.get("max", max(value, median) * 16), f"{where}.max")
        if kind != "fixed" and high < low:
            raise ConfigError(f"{where}: max must be >= min")
        return cls(kind, value=value, min=low, max=high, median=median,
                   sigma=_number(table, "sigma", 1.0, where))

    def sample(self, rng: random.Random) -> int:
        """One size drawn with ``rng`` (reproducible for a seeded rng)."""
        if self.distribution == "fixed":
            return self.value
        if self.distribution == "uniform":
            return rng.randint(self.min, self.max)
        drawn = int(rng.lognormvariate(math.log(max(self.median, 1)), self.sigma))
        return min(max(drawn, self.min), self.max)

    def to_dict(self) -> dict[str, Any]:
        if self.distribution == "fixed":
            return {"distribution": "fixed", "value": self.value}
        if self.distribution == "uniform":
            return {"distribution": "uniform", "min": self.min, "max": self.max}
        return {"distribution": "lognormal", "median": self.median, "sigma": self.sigma,
                "min": self.min, "max": self.max}


@dataclasses.dataclass(frozen=True)
class ObjectClass:
    """``count`` objects with sizes from ``size``; ``cached_fraction`` of them
    carry their checksums as ``x-amz-meta-<algorithm>`` (metadata-cache hits)."""

    count: int
    size: SizeDistribution
    cached_fraction: float = 0.0

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], where: str, default: ObjectClass) -> ObjectClass:
        _reject_unknown(table, ("count", "size", "cached_fraction"), where)
        fraction = _number(table, "cached_fraction", default.cached_fraction, where)
        if fraction > 1:
            raise ConfigError(f"{where}.cached_fraction: must be between 0 and 1")
        size = (SizeDistribution.from_dict(table["size"], f"{where}.size") if "size" in table
                else default.size)
        return cls(_int(table, "count", default.count, where), size, fraction)


@dataclasses.dataclass(frozen=True)
class Location:
    """A bucket in a named store."""

    store: str
    bucket: str

    @classmethod
    def from_dict(cls, table: Mapping[str, Any], where: str, default: Location) -> Location:
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: expected a table with store and bucket")
        _reject_unknown(table, ("store", "bucket"), where)
        return cls(_str(table, "store", default.store, where), _str(table, "bucket", default.bucket, where))


@dataclasses.dataclass(frozen=True)
class ObjectsConfig:
    """What ``seed`` puts into the target store."""

    store: str = "default"
    bucket: str = "demo"
    prefix: str = "loadtest"
    small: ObjectClass = ObjectClass(200, SizeDistribution("lognormal", median=64 * 1024, sigma=1.0,
                                                           min=1024, max=2 * 1024**2), 0.5)
    large: ObjectClass = ObjectClass(4, SizeDistribution("uniform", min=64 * 1024**2, max=128 * 1024**2))


@dataclasses.dataclass(frozen=True)
class ChecksumConfig:
    algorithms: tuple[str, ...] = ("adler32",)
    large_algorithms: tuple[str, ...] = ("adler32",)


@dataclasses.dataclass(frozen=True)
class CopyConfig:
    source: str = "small"
    verify: str = "adler32"
    server_side: Location = Location("default", "demo-copy")
    stream: Location = Location("archive", "archive")
    ndjson: bool = True


@dataclasses.dataclass(frozen=True)
class UsersConfig:
    wait_min: float = 0.0
    wait_max: float = 0.5
    request_timeout: float = 300.0
    retries_429: int = 3
    retry_after_max: float = 5.0


@dataclasses.dataclass(frozen=True)
class BaselineConfig:
    """The comparison run through the fresh-process (legacy worker) path."""

    enabled: bool = True
    #: a worker process per task costs a core for ~a second: more users than
    #: cores only measure the machine's run queue
    max_users: int = 4


@dataclasses.dataclass(frozen=True)
class ColdStartConfig:
    probes: int = 3
    zero_timeout: float = 600.0
    interval: float = 1.0
    before_load: bool = True


@dataclasses.dataclass(frozen=True)
class LocalConfig:
    workers: int = 1
    threads: int = 8


@dataclasses.dataclass(frozen=True)
class ScenarioConfig:
    """One parsed, validated scenario (immutable)."""

    name: str = "default"
    seed: int = 20240501
    objects: ObjectsConfig = ObjectsConfig()
    checksum: ChecksumConfig = ChecksumConfig()
    copy: CopyConfig = CopyConfig()
    #: task name (see TASKS) -> weight
    mix: Mapping[str, int] = dataclasses.field(default_factory=lambda: {
        "checksum_small_cached": 40, "checksum_small_uncached": 30, "checksum_large": 5,
        "copy_server_side": 15, "copy_stream": 10})
    users: UsersConfig = UsersConfig()
    #: kind + parameters, turned into stages by loadtest.stages.stages_for
    shape: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {
        "kind": "step", "users": 4, "steps": 3, "step_duration": 30.0})
    baseline: BaselineConfig = BaselineConfig()
    cold_start: ColdStartConfig = ColdStartConfig()
    local: LocalConfig = LocalConfig()
    #: where it came from (file path or "builtin")
    source: str = "builtin"

    @property
    def algorithms_needed(self) -> tuple[str, ...]:
        """Every algorithm a response may be validated against (seed computes these)."""
        seen: dict[str, None] = {}
        for name in (*self.checksum.algorithms, *self.checksum.large_algorithms, self.copy.verify):
            seen[name] = None
        return tuple(seen)

    @property
    def active_tasks(self) -> dict[str, int]:
        """Tasks with a weight > 0."""
        return {name: weight for name, weight in self.mix.items() if weight > 0}

    def stages(self) -> list[Any]:
        """The load shape as stages (see :mod:`loadtest.stages`)."""
        from loadtest.stages import stages_for

        return stages_for(self.shape)

    def duration(self) -> float:
        """Seconds the load shape lasts."""
        return sum(stage.duration for stage in self.stages())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``ScenarioConfig.from_dict(c.to_dict())`` round-trips."""
        data = dataclasses.asdict(self)
        data["objects"]["small"]["size"] = self.objects.small.size.to_dict()
        data["objects"]["large"]["size"] = self.objects.large.size.to_dict()
        data["objects"]["large"].pop("cached_fraction")
        data["checksum"] = {k: list(v) for k, v in data["checksum"].items()}
        data["mix"] = dict(self.mix)
        data["shape"] = dict(self.shape)
        data.pop("source")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "builtin") -> ScenarioConfig:
        """Validate a parsed scenario document (raises ConfigError naming the key)."""
        d = cls()
        _reject_unknown(data, ("name", "seed", "objects", "checksum", "copy", "mix", "users", "shape",
                               "baseline", "cold_start", "local"), "scenario")
        objects_t = _table(data, "objects", "")
        _reject_unknown(objects_t, ("store", "bucket", "prefix", "small", "large"), "objects")
        objects = ObjectsConfig(
            store=_str(objects_t, "store", d.objects.store, "objects"),
            bucket=_str(objects_t, "bucket", d.objects.bucket, "objects"),
            prefix=_str(objects_t, "prefix", d.objects.prefix, "objects").strip("/"),
            small=ObjectClass.from_dict(_table(objects_t, "small", "objects."), "objects.small", d.objects.small),
            large=ObjectClass.from_dict(_table(objects_t, "large", "objects."), "objects.large", d.objects.large),
        )
        checksum_t = _table(data, "checksum", "")
        _reject_unknown(checksum_t, ("algorithms", "large_algorithms"), "checksum")
        checksum = ChecksumConfig(
            algorithms=_algorithms(checksum_t.get("algorithms", list(d.checksum.algorithms)), "checksum.algorithms"),
            large_algorithms=_algorithms(checksum_t.get("large_algorithms", list(d.checksum.large_algorithms)),
                                         "checksum.large_algorithms"))
        copy_t = _table(data, "copy", "")
        _reject_unknown(copy_t, ("source", "verify", "server_side", "stream", "ndjson"), "copy")
        copy_source = _str(copy_t, "source", d.copy.source, "copy")
        if copy_source not in OBJECT_CLASSES:
            raise ConfigError(f"copy.source: one of {', '.join(OBJECT_CLASSES)}, got {copy_source!r}")
        ndjson = copy_t.get("ndjson", d.copy.ndjson)
        if not isinstance(ndjson, bool):
            raise ConfigError("copy.ndjson: expected true or false")
        copy_cfg = CopyConfig(
            source=copy_source,
            verify=_algorithms(copy_t.get("verify", d.copy.verify), "copy.verify")[0],
            server_side=Location.from_dict(copy_t.get("server_side", {}), "copy.server_side", d.copy.server_side),
            stream=Location.from_dict(copy_t.get("stream", {}), "copy.stream", d.copy.stream),
            ndjson=ndjson)
        mix_t = _table(data, "mix", "")
        _reject_unknown(mix_t, TASKS, "mix")
        mix = {name: _int(mix_t, name, d.mix.get(name, 0), "mix") for name in TASKS}
        if not any(mix.values()):
            raise ConfigError("mix: at least one task needs a weight > 0")
        users_t = _table(data, "users", "")
        _reject_unknown(users_t, ("wait_min", "wait_max", "request_timeout", "retries_429", "retry_after_max"),
                        "users")
        users = UsersConfig(_number(users_t, "wait_min", d.users.wait_min, "users"),
                            _number(users_t, "wait_max", d.users.wait_max, "users"),
                            parse_duration(users_t.get("request_timeout", d.users.request_timeout),
                                           "users.request_timeout"),
                            _int(users_t, "retries_429", d.users.retries_429, "users"),
                            parse_duration(users_t.get("retry_after_max", d.users.retry_after_max),
                                           "users.retry_after_max"))
        if users.wait_max < users.wait_min:
            raise ConfigError("users.wait_max: must be >= users.wait_min")
        shape = dict(_table(data, "shape", "")) or dict(d.shape)
        baseline_t = _table(data, "baseline", "")
        _reject_unknown(baseline_t, ("enabled", "max_users"), "baseline")
        enabled = baseline_t.get("enabled", d.baseline.enabled)
        if not isinstance(enabled, bool):
            raise ConfigError("baseline.enabled: expected true or false")
        baseline = BaselineConfig(enabled, _int(baseline_t, "max_users", d.baseline.max_users, "baseline",
                                                minimum=1))
        cold_t = _table(data, "cold_start", "")
        _reject_unknown(cold_t, ("probes", "zero_timeout", "interval", "before_load"), "cold_start")
        before_load = cold_t.get("before_load", d.cold_start.before_load)
        if not isinstance(before_load, bool):
            raise ConfigError("cold_start.before_load: expected true or false")
        cold = ColdStartConfig(_int(cold_t, "probes", d.cold_start.probes, "cold_start"),
                               parse_duration(cold_t.get("zero_timeout", d.cold_start.zero_timeout),
                                              "cold_start.zero_timeout"),
                               parse_duration(cold_t.get("interval", d.cold_start.interval), "cold_start.interval"),
                               before_load)
        if cold.interval <= 0:
            raise ConfigError("cold_start.interval: must be > 0")
        local_t = _table(data, "local", "")
        _reject_unknown(local_t, ("workers", "threads"), "local")
        local = LocalConfig(_int(local_t, "workers", d.local.workers, "local", minimum=1),
                            _int(local_t, "threads", d.local.threads, "local", minimum=1))
        seed = data.get("seed", d.seed)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seed: expected an integer, got {seed!r}")
        config = cls(name=_str(data, "name", d.name, "scenario"), seed=seed, objects=objects,
                     checksum=checksum, copy=copy_cfg, mix=mix, users=users, shape=shape,
                     baseline=baseline, cold_start=cold, local=local, source=source)
        _check_consistency(config)
        config.stages()  # validates the shape table (raises ConfigError)
        return config


def _check_consistency(config: ScenarioConfig) -> None:
    mix, objects = config.mix, config.objects
    small_cached = round(objects.small.count * objects.small.cached_fraction)
    needs = {
        "checksum_small_cached": ("objects.small (cached_fraction > 0)", small_cached),
        "checksum_small_uncached": ("objects.small (cached_fraction < 1)", objects.small.count - small_cached),
        "checksum_large": ("objects.large", objects.large.count),
    }
    for task, (what, count) in needs.items():
        if mix.get(task, 0) > 0 and count == 0:
            raise ConfigError(f"mix.{task} > 0 but no {what} objects are seeded")
    copy_pool = objects.small.count if config.copy.source == "small" else objects.large.count
    if (mix.get("copy_server_side", 0) or mix.get("copy_stream", 0)) and copy_pool == 0:
        raise ConfigError(f"copies need objects.{config.copy.source}.count > 0")


# -- loading -------------------------------------------------------------------------

def scenario_path(name_or_path: str | Path) -> Path:
    """A file path, or the name of a built-in scenario (``default``, ``smoke``, …)."""
    path = Path(name_or_path)
    is_name = path.suffix not in (".toml", ".json") and len(path.parts) == 1 and not path.is_file()
    if not is_name:
        if not path.is_file():
            raise ConfigError(f"scenario file {path} does not exist")
        return path
    for suffix in (".toml", ".json"):
        candidate = SCENARIO_DIR / f"{name_or_path}{suffix}"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))
    raise ConfigError(f"no scenario {name_or_path!r} (built-in: {', '.join(known)}; or give a .toml/.json path)")


def read_document(path: Path) -> dict[str, Any]:
    """Parse a TOML or JSON scenario file."""
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text())
        else:
            data = tomllib.loads(path.read_text())
    except (OSError, ValueError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table at the top level")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A deep copy of ``data`` with ``key.sub=value`` overrides applied.

    The value is parsed as a TOML value (``4``, ``"30s"``, ``[1, 2]``,
    ``{min = 1}``, ``true``); anything that does not parse is a string.
    """
    out = copy.deepcopy(dict(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r}: expected key.sub=value")
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        node: dict[str, Any] = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return out


def load_scenario(name_or_path: str | Path = "default", overrides: Iterable[str] = ()) -> ScenarioConfig:
    """Read a scenario (built-in name or file), apply overrides, validate."""
    path = scenario_path(name_or_path)
    data = apply_overrides(read_document(path), overrides)
    return ScenarioConfig.from_dict(data, source=str(path))
