"""Locust autoscaling benchmarks for the storage functions.

Modules, one concern each::

    config      the scenario file (weights, object sizes, seed, load shape, …)
    stages      load shapes as data: stage lists, tick() as a pure function of time
    shapes      the LoadTestShape classes over them (imports locust)
    seed        reproducible test objects + the expected checksums (manifest)
    validation  is an answer right? (pure checks of checksum/copy bodies)
    requestlog  one CSV row per request (for cold starts, bytes/s, codes)
    users       Locust users: the functions over HTTP, and the fresh-process baseline
    locustfile  what ``locust -f`` loads (one shape, the user classes)
    targets     where the functions and stores are (local stack or Knative)
    sampler     ready vs desired replicas per revision from the Kubernetes API
    coldstart   wait for scale-to-zero, then time the first byte of one request
    runner      one bounded headless run end to end -> a results directory
    report      summary.json and a self-contained report.html with plots
    compare     two runs side by side
    cli         ``dynafed-fn loadtest run|compare|seed`` (also ``python -m loadtest``)

Locust and gevent are imported only by ``users``/``locustfile`` (which run
in Locust's own process): the runner, sampler and report stay free of
gevent's monkey-patching.
"""
from __future__ import annotations

from loadtest.config import ConfigError, ScenarioConfig, load_scenario

__all__ = ["ConfigError", "ScenarioConfig", "load_scenario"]
