"""What ``locust -f loadtest/locustfile.py`` loads: the run's user class and
one load shape, both from ``$DYNAFED_LT_RUN`` (run.json, written by the
runner). Start runs with ``dynafed-fn loadtest run``, which seeds the
objects, starts this under Locust headless and builds the report.

Also writes ``requests.csv`` (one row per request) and ``shape.json`` (when
the shape started) into the results dir.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust import stats as locust_stats

from loadtest import shapes, stages, users
from loadtest.config import ScenarioConfig
from loadtest.requestlog import RequestLog
from loadtest.targets import RunSpec

SPEC = RunSpec.from_env()
_CONFIG = ScenarioConfig.from_dict(SPEC.scenario)
_STAGES = _CONFIG.stages()
if SPEC.max_users is not None:
    _STAGES = stages.cap_users(_STAGES, SPEC.max_users)

# the one user class of this run (FunctionUser or LegacyUser)
RunUser = users.make_user_class(SPEC)
_REQUEST_LOG = RequestLog(SPEC.requests_log, mode=SPEC.mode)


class ScenarioShape(shapes.StagesShape):
    """The scenario's [shape] table as stages."""

    def __init__(self) -> None:
        super().__init__(_STAGES)

    def reset_time(self) -> None:
        # Locust calls this when the shape starts: the report aligns stages on it
        super().reset_time()
        shape_file = Path(SPEC.results_dir) / "shape.json"
        shape_file.write_text(json.dumps({"started": time.time(),
                                          "stages": [dataclasses.asdict(s) for s in self.stages]}) + "\n")


@events.init.add_listener
def _attach_request_log(environment: Any, **_: Any) -> None:
    environment.events.request.add_listener(_REQUEST_LOG.on_request)


@events.quitting.add_listener
def _close_request_log(environment: Any, **_: Any) -> None:
    # Locust rewrites its CSVs every CSV_STATS_INTERVAL_SEC and closes them
    # right after this event: wait for one more write, so locust_stats.csv
    # counts the requests of the last second too (the users have stopped)
    gevent.sleep(locust_stats.CSV_STATS_INTERVAL_SEC + 0.5)
    _REQUEST_LOG.close()
