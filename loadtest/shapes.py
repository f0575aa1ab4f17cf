"""LoadTestShape classes over the stage lists of :mod:`loadtest.stages`.

``tick()`` is ``stages.at(stages, elapsed)``: a pure function of elapsed
time, with the clock injectable for tests.

Importing this module imports locust (which monkey-patches the process with
gevent unless ``LOCUST_SKIP_MONKEY_PATCH`` is set): only Locust's own
process and the shape tests import it.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from locust import LoadTestShape

from loadtest.stages import (
    Stage,
    Tick,
    at,
    plateau_stages,
    rampdown_stages,
    spike_stages,
    step_stages,
)

__all__ = ["PlateauShape", "RampDownShape", "SpikeShape", "StagesShape", "StepLoadShape"]



class StagesShape(LoadTestShape):
    """A LoadTestShape that plays a list of stages.

    ``clock`` (default ``time.perf_counter``) is injectable so tests can
    drive ``tick()`` through a run without sleeping.
    """

    abstract = True

    def __init__(self, stages: Sequence[Stage], *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        super().__init__()
        self.stages = list(stages)
        self.start_time = clock()

    def reset_time(self) -> None:
        self.start_time = self._clock()

    def get_run_time(self) -> float:
        return self._clock() - self.start_time

    def tick(self) -> Tick | None:
        return at(self.stages, self.get_run_time())


class StepLoadShape(StagesShape):
    """Step load after scale-to-zero: 0 → N → 2N → 3N."""

    def __init__(self, users: int = 4, steps: int = 3, step_duration: float = 30.0, idle: float = 0.0,
                 spawn_rate: float | None = None, *, clock: Callable[[], float] = time.perf_counter) -> None:
        params: dict[str, Any] = {"users": users, "steps": steps, "step_duration": step_duration, "idle": idle}
        if spawn_rate is not None:
            params["spawn_rate"] = spawn_rate
        super().__init__(step_stages(params), clock=clock)


class SpikeShape(StagesShape):
    """Spike after idle: nothing for ``idle`` s (scale to zero), then ``users`` at once."""

    def __init__(self, users: int = 20, idle: float = 90.0, duration: float = 30.0, warm: float = 0.0,
                 warm_users: int = 1, *, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(spike_stages({"users": users, "idle": idle, "duration": duration, "warm": warm,
                                       "warm_users": warm_users}), clock=clock)


class PlateauShape(StagesShape):
    """Sustained plateau: ramp to ``users``, hold."""

    def __init__(self, users: int = 8, ramp: float = 10.0, hold: float = 60.0, *,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(plateau_stages({"users": users, "ramp": ramp, "hold": hold}), clock=clock)


class RampDownShape(StagesShape):
    """Ramp-down: peak, then down in steps, then idle (scale-down)."""

    def __init__(self, users: int = 12, hold: float = 30.0, steps: int = 3, step_duration: float = 20.0,
                 tail: float = 60.0, *, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(rampdown_stages({"users": users, "hold": hold, "steps": steps,
                                          "step_duration": step_duration, "tail": tail}), clock=clock)
