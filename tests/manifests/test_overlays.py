"""Semantic checks of every rendered overlay (see checks.py for each rule)."""
from __future__ import annotations

import importlib
import json
import re

import pytest
import yaml

from tests.manifests import checks
from tests.manifests import knative_facts as kf
from tests.manifests import project_facts as pf

ALL_BUILDS = ["base", *pf.OVERLAYS]
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def test_expected_overlays_exist():
    assert set(pf.OVERLAYS) >= {"dev", "production", "canary"}


@pytest.mark.parametrize("build_name", ALL_BUILDS)
def test_build_has_both_functions_and_eventing(builds, build_name):
    build = builds[build_name]
    assert sorted(checks.name(s) for s in checks.ksvcs(build)) == pf.function_names()
    assert checks.objects(build, "eventing.knative.dev", "Broker")
    assert checks.objects(build, "sources.knative.dev", "SinkBinding")
    assert checks.objects(build, "eventing.knative.dev", "Trigger")


@pytest.mark.parametrize("check", sorted(checks.SERVICE_CHECKS))
@pytest.mark.parametrize("build_name", ALL_BUILDS)
def test_services(builds, facts, build_name, check):
    assert checks.service_problems(builds[build_name], facts, [check]) == []


@pytest.mark.parametrize("check", sorted(checks.EVENTING_CHECKS))
@pytest.mark.parametrize("build_name", ALL_BUILDS)
def test_eventing_and_build(builds, facts, build_name, check):
    assert checks.EVENTING_CHECKS[check](builds[build_name], facts) == []


def _scale(build, service, key):
    svc = next(s for s in checks.ksvcs(build) if checks.name(s) == service)
    return int(checks.template_annotations(svc)[f"autoscaling.knative.dev/{key}"])


def test_dev_scales_everything_to_zero(builds):
    for svc in checks.ksvcs(builds["dev"]):
        assert _scale(builds["dev"], checks.name(svc), "min-scale") == 0


#: The functions Dynafed waits on (tuned per overlay). A batch function such as
#: scrub keeps its base settings everywhere: scale to zero, no PDB, no canary.
SERVING_FUNCTIONS = ("checksum", "copy")


def _serving(build):
    return [s for s in checks.ksvcs(build) if checks.name(s) in SERVING_FUNCTIONS]


def test_batch_functions_keep_their_base_settings(builds):
    for overlay in pf.OVERLAYS:
        for svc in checks.ksvcs(builds[overlay]):
            if checks.name(svc) not in SERVING_FUNCTIONS:
                assert _scale(builds[overlay], checks.name(svc), "min-scale") == 0
                assert "traffic" not in svc["spec"]


@pytest.mark.parametrize("build_name", ["production", "canary"])
def test_production_keeps_checksum_warm_and_raises_ceilings(builds, build_name):
    build = builds[build_name]
    # Dynafed's HEAD + Want-Digest is synchronous and davix does not retry.
    assert _scale(build, "checksum", "min-scale") >= 1
    assert sorted(checks.name(s) for s in _serving(build)) == sorted(SERVING_FUNCTIONS)
    for svc in _serving(build):
        assert _scale(build, checks.name(svc), "max-scale") > _scale(builds["dev"], checks.name(svc), "max-scale")
    pdbs = {checks.name(p): p for p in checks.objects(build, "policy", "PodDisruptionBudget")}
    for svc in _serving(build):
        pdb = pdbs[checks.name(svc)]
        assert pdb["spec"]["selector"]["matchLabels"] == {"serving.knative.dev/service": checks.name(svc)}
        # minAvailable >= min-scale would block every node drain.
        assert "minAvailable" not in pdb["spec"] and pdb["spec"]["maxUnavailable"] == 1


def _broker_class(build):
    (broker,) = checks.objects(build, "eventing.knative.dev", "Broker")
    return broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"]


def test_production_brokers_keep_events_and_dev_stays_in_memory(builds):
    """Production (and the canary on top of it) use the Kafka Broker, which
    persists events; base and dev keep the MT channel-based Broker on the
    InMemoryChannel, which loses events in flight on a restart."""
    for overlay in ("production", "canary"):
        assert _broker_class(builds[overlay]) == kf.KAFKA_BROKER_CLASS
    for build_name in ("base", "dev"):
        assert _broker_class(builds[build_name]) == kf.INSTALLED_BROKER_CLASS


def test_canary_splits_pinned_90_latest_10_tagged_candidate(builds):
    assert sorted(checks.name(s) for s in _serving(builds["canary"])) == sorted(SERVING_FUNCTIONS)
    for svc in _serving(builds["canary"]):
        traffic = svc["spec"]["traffic"]
        pinned = [t for t in traffic if t.get("revisionName")]
        latest = [t for t in traffic if t.get("latestRevision")]
        assert [t["percent"] for t in pinned] == [90]
        assert [(t["percent"], t.get("tag")) for t in latest] == [(10, "candidate")]
    for other in ("base", "dev", "production"):
        assert all("traffic" not in s["spec"] for s in checks.ksvcs(builds[other]))


def test_overlays_differ_only_in_tunables(builds):
    """Timeouts, concurrency and probes are the functions' contract: the same everywhere."""
    def contract(build):
        out = {}
        for svc in checks.ksvcs(build):
            spec = svc["spec"]["template"]["spec"]
            c = checks.container(svc)
            out[checks.name(svc)] = (spec["containerConcurrency"], spec.get("timeoutSeconds"),
                                     spec.get("responseStartTimeoutSeconds"), spec.get("idleTimeoutSeconds"),
                                     json.dumps([c.get(p) for p in PROBES]),
                                     json.dumps(c.get("env")), json.dumps(c.get("securityContext")))
        return out
    base = contract(builds["base"])
    for overlay in pf.OVERLAYS:
        assert contract(builds[overlay]) == base, overlay


def test_every_knative_annotation_is_commented():
    """STYLE.md §11: every annotation says why its value (a comment on or above it)."""
    missing = []
    for path in sorted(pf.KNATIVE.rglob("*.yaml")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^\s*([a-z0-9.-]+\.[a-z]+/[a-z0-9.-]+):\s", line)
            if not m or not m.group(1).startswith(("autoscaling.knative.dev/", "eventing.knative.dev/",
                                                   "serving.knative.dev/", "features.knative.dev/",
                                                   "networking.knative.dev/")):
                continue
            if path.name.endswith("-pdb.yaml") or "matchLabels" in "".join(lines[max(0, i - 2):i]):
                continue  # a label selector, not an annotation
            window = lines[max(0, i - 6):i + 1]
            if "#" not in line and not any(w.strip().startswith("#") for w in window[:-1]):
                missing.append(f"{path.relative_to(pf.REPO)}:{i + 1}: {m.group(1)}")
    assert missing == []


def test_stores_secret_template_is_placeholders_only(facts):
    path = pf.KNATIVE / "secrets" / "stores-secret.template.yaml"
    secret = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == facts.stores_secret
    stores = json.loads(secret["stringData"]["stores.json"])["stores"]
    assert stores, "the template shows at least one store"
    for store in stores.values():
        assert {"endpoint_url", "access_key_id", "secret_access_key"} <= set(store)
        assert store["access_key_id"].startswith("REPLACE_ME") and store["secret_access_key"].startswith("REPLACE_ME")
        assert ".example." in store["endpoint_url"]
    # Never part of a build (an apply would overwrite the real Secret).
    for kustomization in pf.KNATIVE.rglob("kustomization.yaml"):
        k = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        assert not any("secret" in str(r) for r in k.get("resources", [])), kustomization
        assert not k.get("secretGenerator"), kustomization


def test_event_types_agree_with_the_contract():
    et = pf.event_types()
    emitted = pf.flat(et["emitted"])
    accepted = {t for v in et["accepted"].values() for t in v.get("exact", [])}
    planned = set(et.get("planned", []))
    events = importlib.import_module("dynafed_contract.events")
    declared = {v for k, v in vars(events).items()
                if k.isupper() and isinstance(v, str) and v.startswith(("ch.cern.dynafed.", "dev.knative."))}
    assert set(events.EMITTED) == emitted
    assert set(events.ACCEPTED) == accepted
    assert declared <= emitted | accepted | planned, "a contract event type is missing from knative/event-types.yaml"
    assert emitted | accepted <= declared
