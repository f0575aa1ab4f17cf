"""Load shapes: tick() sequences as pure functions of elapsed time."""
from __future__ import annotations

import os

import pytest

from loadtest.config import ConfigError
from loadtest.stages import Stage, at, cap_users, stages_for, total_duration


def _import_shapes():
    # importing locust monkey-patches the whole test process with gevent
    # unless told not to; restore the variable so Locust subprocesses started
    # later in the session do patch themselves
    previous = os.environ.get("LOCUST_SKIP_MONKEY_PATCH")
    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
    try:
        from loadtest import shapes
    finally:
        if previous is None:
            os.environ.pop("LOCUST_SKIP_MONKEY_PATCH", None)
        else:
            os.environ["LOCUST_SKIP_MONKEY_PATCH"] = previous
    return shapes


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ticks(shape, clock: FakeClock, seconds: list[float]):
    """tick() at each elapsed second (the clock moves, nothing sleeps)."""
    out = []
    for s in seconds:
        clock.now = shape.start_time + s
        out.append(shape.tick())
    return out


def test_step_load_after_scale_to_zero():
    shapes = _import_shapes()
    clock = FakeClock()
    shape = shapes.StepLoadShape(users=5, steps=3, step_duration=10, idle=20, clock=clock)
    assert ticks(shape, clock, [0, 19.9, 20, 29.9, 30, 40, 49.9, 50, 80]) == [
        (0, 5.0), (0, 5.0),          # idle: the Service scales to zero
        (5, 5.0), (5, 5.0),          # N
        (10, 5.0), (15, 5.0), (15, 5.0),  # 2N, 3N
        None, None,                  # over: Locust stops
    ]


def test_spike_after_idle():
    shapes = _import_shapes()
    clock = FakeClock()
    shape = shapes.SpikeShape(users=40, idle=90, duration=30, warm=15, warm_users=2, clock=clock)
    assert ticks(shape, clock, [0, 14, 15, 104.9, 105, 134.9, 135]) == [
        (2, 2.0), (2, 2.0), (0, 40.0), (0, 40.0), (40, 40.0), (40, 40.0), None]


def test_sustained_plateau_ramps_at_users_per_ramp_second():
    shapes = _import_shapes()
    clock = FakeClock()
    shape = shapes.PlateauShape(users=8, ramp=4, hold=60, clock=clock)
    assert ticks(shape, clock, [0, 3.9, 4, 63.9, 64]) == [(8, 2.0), (8, 2.0), (8, 2.0), (8, 2.0), None]


def test_ramp_down_then_idle_tail():
    shapes = _import_shapes()
    clock = FakeClock()
    shape = shapes.RampDownShape(users=12, hold=30, steps=3, step_duration=20, tail=60, clock=clock)
    seq = ticks(shape, clock, [0, 29, 30, 49, 50, 69, 70, 129, 130])
    assert seq == [(12, 12.0), (12, 12.0), (8, 12.0), (8, 12.0), (4, 12.0), (4, 12.0), (0, 12.0), (0, 12.0), None]
    # scale-down only: user counts never rise
    counts = [t[0] for t in seq if t is not None]
    assert counts == sorted(counts, reverse=True)


def test_reset_time_restarts_the_sequence():
    shapes = _import_shapes()
    clock = FakeClock()
    shape = shapes.PlateauShape(users=2, ramp=0, hold=5, clock=clock)
    clock.now += 10
    assert shape.tick() is None
    shape.reset_time()
    assert shape.tick() == (2, 2.0) and shape.get_run_time() == 0


def test_locust_sees_the_shape_classes_as_load_shapes():
    shapes = _import_shapes()
    from locust.util.load_locustfile import is_shape_class

    assert all(is_shape_class(c) for c in (shapes.StepLoadShape, shapes.SpikeShape, shapes.PlateauShape,
                                           shapes.RampDownShape))
    assert not is_shape_class(shapes.StagesShape)  # abstract: a locustfile importing it gets no extra shape


def test_sequence_concatenates_phases_and_at_is_pure():
    stages = stages_for({"kind": "sequence", "phases": [
        {"kind": "step", "users": 2, "steps": 2, "step_duration": "10s"},
        {"kind": "spike", "users": 6, "idle": "1m", "duration": 5},
    ]})
    assert [(s.label, s.duration, s.users) for s in stages] == [
        ("step 1", 10, 2), ("step 2", 10, 4), ("idle", 60, 0), ("spike", 5, 6)]
    assert total_duration(stages) == 85
    assert [at(stages, t) for t in (0, 10, 20, 80, 84.99, 85)] == [
        (2, 2.0), (4, 2.0), (0, 6.0), (6, 6.0), (6, 6.0), None]
    # same input, same output (no hidden state)
    assert [at(stages, 30) for _ in range(3)] == [(0, 6.0)] * 3


def test_cap_users_for_the_baseline():
    stages = [Stage(10, 12, 12.0, "x"), Stage(5, 2, 1.0, "y")]
    assert [(s.users, s.spawn_rate) for s in cap_users(stages, 4)] == [(4, 4.0), (2, 1.0)]


@pytest.mark.parametrize(("table", "message"), [
    ({"kind": "zigzag"}, "shape.kind"),
    ({"kind": "step"}, "'users' is required"),
    ({"kind": "step", "users": 0}, "users: expected an integer >= 1"),
    ({"kind": "step", "users": 2, "step_duration": "ten"}, "step_duration"),
    ({"kind": "plateau", "users": 2, "hold": 0, "ramp": 0}, "lasts 0 seconds"),
    ({"kind": "spike", "users": 2, "bogus": 1}, "unknown key"),
    ({"kind": "sequence", "phases": []}, "non-empty list"),
    ({"kind": "step", "users": 2, "spawn_rate": -1}, "spawn_rate"),
])
def test_invalid_shape_tables_name_the_key(table, message):
    with pytest.raises(ConfigError, match=message):
        stages_for(table)
