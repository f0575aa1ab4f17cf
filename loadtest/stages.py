"""Load shapes as data, modelled on how Knative benchmarks its autoscaler.

No Locust import here (importing locust monkey-patches the process with
gevent): the runner and the report use these; :mod:`loadtest.shapes` wraps
them in LoadTestShape classes.

A shape is a list of :class:`Stage` (hold ``users`` for ``duration``
seconds, reaching them at ``spawn_rate`` users/s); :func:`at` maps elapsed
time to what Locust's ``tick()`` returns, so every shape is a pure function
of time and is tested as one.

=========  ================================================================
step       ``idle`` s at 0 users (scale to zero), then N, 2N, … ``steps``·N
           users, ``step_duration`` each: does the autoscaler follow steps?
spike      ``warm_users`` for ``warm`` s, ``idle`` s at 0 (long enough to
           scale to zero), then ``users`` at once for ``duration``: what does
           a cold start cost under a burst?
plateau    ramp to ``users`` over ``ramp`` s, hold ``hold`` s: steady-state
           throughput and latency, replicas settled
rampdown   ``users`` for ``hold`` s, then down in ``steps`` steps of
           ``step_duration``, then ``tail`` s at 0: how fast does it scale
           down (scale-down-delay, stable window, scale to zero)?
sequence   ``phases = [{kind = …, …}, …]`` run one after the other
=========  ================================================================

Durations accept ``"30s"``/``"2m"``; ``spawn_rate`` defaults to the step
size per second (a step lands within a second).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from loadtest.config import ConfigError, parse_duration

#: what tick() returns while running: (users, spawn rate)
Tick = tuple[int, float]


@dataclasses.dataclass(frozen=True)
class Stage:
    """Hold ``users`` users for ``duration`` seconds, spawning/stopping at ``spawn_rate``/s."""

    duration: float
    users: int
    spawn_rate: float
    #: label for plots ("idle", "step 2", "spike", …)
    label: str = ""


def total_duration(stages: Sequence[Stage]) -> float:
    """Seconds until the shape stops."""
    return sum(stage.duration for stage in stages)


def at(stages: Sequence[Stage], elapsed: float) -> Tick | None:
    """What ``tick()`` returns ``elapsed`` seconds into the run: ``(users,
    spawn_rate)``, or None once every stage is over (Locust then stops)."""
    end = 0.0
    for stage in stages:
        end += stage.duration
        if elapsed < end:
            return stage.users, stage.spawn_rate
    return None


def stage_at(stages: Sequence[Stage], elapsed: float) -> Stage | None:
    """The stage running at ``elapsed`` (None after the end)."""
    end = 0.0
    for stage in stages:
        end += stage.duration
        if elapsed < end:
            return stage
    return None


def boundaries(stages: Sequence[Stage]) -> list[tuple[float, Stage]]:
    """(start second, stage) of every stage, for annotating plots."""
    out, start = [], 0.0
    for stage in stages:
        out.append((start, stage))
        start += stage.duration
    return out


# -- builders -------------------------------------------------------------------------

def _params(params: Mapping[str, Any], allowed: Sequence[str], kind: str) -> None:
    unknown = sorted(set(params) - set(allowed) - {"kind"})
    if unknown:
        raise ConfigError(f"shape ({kind}): unknown key(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})")


def _users(params: Mapping[str, Any], key: str, default: int | None, kind: str, *, minimum: int = 1) -> int:
    value = params.get(key, default)
    if value is None:
        raise ConfigError(f"shape ({kind}): '{key}' is required")
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"shape ({kind}).{key}: expected an integer >= {minimum}, got {value!r}")
    return value


def _seconds(params: Mapping[str, Any], key: str, default: float | str, kind: str) -> float:
    return parse_duration(params.get(key, default), f"shape ({kind}).{key}")


def _rate(params: Mapping[str, Any], default: float, kind: str) -> float:
    value = params.get("spawn_rate", default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"shape ({kind}).spawn_rate: expected a number > 0, got {value!r}")
    return float(value)


def step_stages(params: Mapping[str, Any]) -> list[Stage]:
    """0 (``idle`` s) → N → 2N → … → ``steps``·N users, ``step_duration`` each."""
    _params(params, ("users", "steps", "step_duration", "spawn_rate", "idle"), "step")
    users = _users(params, "users", None, "step")
    steps = _users(params, "steps", 3, "step")
    hold = _seconds(params, "step_duration", 30, "step")
    idle = _seconds(params, "idle", 0, "step")
    rate = _rate(params, float(users), "step")
    stages = [Stage(idle, 0, rate, "idle")] if idle > 0 else []
    stages += [Stage(hold, users * k, rate, f"step {k}") for k in range(1, steps + 1)]
    return stages


def spike_stages(params: Mapping[str, Any]) -> list[Stage]:
    """``warm_users`` (``warm`` s) → 0 (``idle`` s) → ``users`` at once (``duration`` s)."""
    _params(params, ("users", "duration", "idle", "warm", "warm_users", "spawn_rate"), "spike")
    users = _users(params, "users", None, "spike")
    idle = _seconds(params, "idle", 90, "spike")
    duration = _seconds(params, "duration", 30, "spike")
    warm = _seconds(params, "warm", 0, "spike")
    warm_users = _users(params, "warm_users", 1, "spike")
    # a spike arrives at once: every user within the first second by default
    rate = _rate(params, float(users), "spike")
    stages = [Stage(warm, warm_users, float(warm_users), "warm")] if warm > 0 else []
    if idle > 0:
        stages.append(Stage(idle, 0, rate, "idle"))
    stages.append(Stage(duration, users, rate, "spike"))
    return stages


def plateau_stages(params: Mapping[str, Any]) -> list[Stage]:
    """Ramp to ``users`` over ``ramp`` s, then hold for ``hold`` s."""
    _params(params, ("users", "ramp", "hold", "spawn_rate"), "plateau")
    users = _users(params, "users", None, "plateau")
    ramp = _seconds(params, "ramp", 10, "plateau")
    hold = _seconds(params, "hold", 60, "plateau")
    rate = _rate(params, users / ramp if ramp > 0 else float(users), "plateau")
    stages = [Stage(ramp, users, rate, "ramp")] if ramp > 0 else []
    stages.append(Stage(hold, users, rate, "plateau"))
    return stages


def rampdown_stages(params: Mapping[str, Any]) -> list[Stage]:
    """``users`` for ``hold`` s, then down in ``steps`` equal steps, then ``tail`` s at 0."""
    _params(params, ("users", "hold", "steps", "step_duration", "tail", "spawn_rate"), "rampdown")
    users = _users(params, "users", None, "rampdown")
    hold = _seconds(params, "hold", 30, "rampdown")
    steps = _users(params, "steps", 3, "rampdown")
    step = _seconds(params, "step_duration", 20, "rampdown")
    tail = _seconds(params, "tail", 60, "rampdown")
    rate = _rate(params, float(users), "rampdown")
    stages = [Stage(hold, users, rate, "peak")]
    for k in range(1, steps):
        stages.append(Stage(step, round(users * (steps - k) / steps), rate, f"down {k}"))
    if tail > 0:
        stages.append(Stage(tail, 0, rate, "tail"))
    return stages


def sequence_stages(params: Mapping[str, Any]) -> list[Stage]:
    """Several shapes, one after the other (``phases``: a list of shape tables)."""
    _params(params, ("phases",), "sequence")
    phases = params.get("phases")
    if not isinstance(phases, list) or not phases:
        raise ConfigError("shape (sequence).phases: expected a non-empty list of shape tables")
    stages: list[Stage] = []
    for i, phase in enumerate(phases):
        if not isinstance(phase, Mapping) or phase.get("kind") == "sequence":
            raise ConfigError(f"shape (sequence).phases[{i}]: expected a shape table (not a sequence)")
        stages += stages_for(phase)
    return stages


BUILDERS: dict[str, Callable[[Mapping[str, Any]], list[Stage]]] = {
    "step": step_stages,
    "spike": spike_stages,
    "plateau": plateau_stages,
    "rampdown": rampdown_stages,
    "sequence": sequence_stages,
}


def stages_for(params: Mapping[str, Any]) -> list[Stage]:
    """Stages of a shape table (``kind`` + its parameters); raises ConfigError."""
    kind = params.get("kind")
    if kind not in BUILDERS:
        raise ConfigError(f"shape.kind: one of {', '.join(BUILDERS)}, got {kind!r}")
    stages = BUILDERS[kind](params)
    if total_duration(stages) <= 0:
        raise ConfigError(f"shape ({kind}): lasts 0 seconds")
    return stages


def cap_users(stages: Sequence[Stage], max_users: int) -> list[Stage]:
    """The same shape with at most ``max_users`` users (the baseline's cap)."""
    return [dataclasses.replace(s, users=min(s.users, max_users), spawn_rate=min(s.spawn_rate, float(max_users)))
            for s in stages]


