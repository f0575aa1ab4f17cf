"""The Services' resources and autoscaling targets come from measurement:
``bench/sizing-input.json`` (a ``make bench`` run's figures, committed)
through the rule of ``bench.sizing``, with containerConcurrency and the
target utilization as the manifests have them. The generated table in
docs/knative.md must be the one the rule gives for the same input.

Regenerate after a bench run or a change of containerConcurrency::

    python -m bench.sizing --snapshot bench-results/summary.json --apply
"""
from __future__ import annotations

import json

import pytest

from bench import sizing
from tests.manifests import checks


@pytest.fixture(scope="module")
def measured() -> dict:
    return json.loads(sizing.INPUT.read_text(encoding="utf-8"))


def _service(build: list[dict], name: str) -> dict:
    found = [s for s in checks.ksvcs(build) if checks.name(s) == name]
    assert len(found) == 1, f"one Service {name} in the build"
    return found[0]


def test_every_sized_service_is_deployed(builds):
    deployed = {checks.name(s) for s in checks.ksvcs(builds["base"])}
    assert set(sizing.WORKLOADS) <= deployed


def test_the_input_holds_every_figure_the_rule_reads(measured):
    missing = [k for k in sizing.NEEDED if k not in measured["figures"] or measured["figures"][k].get("error")]
    assert missing == []


@pytest.mark.parametrize("service", sorted(sizing.WORKLOADS))
def test_base_manifest_resources_and_target_follow_the_rule(builds, measured, service):
    svc = _service(builds["base"], service)
    expected = sizing.size_service(service, measured["figures"], sizing.manifest_facts(svc),
                                   int(measured["environment"]["cpus"]))
    assert sizing.manifest_values(svc) == expected.manifest_values(), (
        f"{service}: resources/target differ from the sizing rule; run python -m bench.sizing --apply")


#: overlays allowed to lower the requests (never the limits or the target):
#: a laptop cluster must be able to schedule the pods
SMALLER_REQUESTS = {"dev"}


@pytest.mark.parametrize("service", sorted(sizing.WORKLOADS))
def test_overlays_keep_the_measured_resources(builds, service):
    """No overlay overrides what the measurement sized (min/max-scale and
    windows are theirs to change; limits and the target are not, and only
    dev may ask for less than the measured requests)."""
    from tests.manifests import knative_facts as kf

    base = sizing.manifest_values(_service(builds["base"], service))
    for overlay, build in builds.items():
        for svc in (s for s in checks.ksvcs(build) if checks.name(s) == service):
            values = sizing.manifest_values(svc)
            if overlay in SMALLER_REQUESTS:
                for key in ("requests.cpu", "requests.memory"):
                    assert kf.quantity(values.pop(key)) <= kf.quantity(base[key]), f"{overlay}: {service} {key}"
                expected = {k: v for k, v in base.items() if not k.startswith("requests.")}
            else:
                expected = base
            assert values == expected, f"overlay {overlay} changes {service}'s sizing"


def test_docs_table_is_the_rules_output(measured):
    rows = sizing.sizings(measured["figures"], cores=int(measured["environment"]["cpus"]))
    generated = sizing.table(rows, measured.get("environment", {}))
    docs = sizing.DOCS.read_text(encoding="utf-8")
    assert generated in docs, "docs/knative.md's sizing table is stale: run python -m bench.sizing --apply"


def test_the_manifest_files_need_no_rewrite(measured):
    """``--check`` agrees: applying the rule to the YAML source changes nothing."""
    assert sizing.main(["--check"]) == 0
