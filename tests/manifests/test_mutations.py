"""The checks catch broken manifests: each case breaks one field of a rendered
overlay and expects a specific problem (a check that passes everything would
make test_overlays.py worthless)."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.manifests import checks
from tests.manifests import project_facts as pf


def svc(build: list[dict], name: str) -> dict:
    return next(s for s in checks.ksvcs(build) if checks.name(s) == name)


def spec(build, name):
    return svc(build, name)["spec"]["template"]["spec"]


def ctr(build, name):
    return spec(build, name)["containers"][0]


def ann(build, name):
    return svc(build, name)["spec"]["template"]["metadata"]["annotations"]


def set_env(build, name, key, value):
    env = ctr(build, name)["env"]
    for e in env:
        if e["name"] == key:
            if value is None:
                env.remove(e)
            else:
                e["value"] = value
            return
    env.append({"name": key, "value": value})


def trigger(build, name):
    return next(t for t in checks.objects(build, "eventing.knative.dev", "Trigger") if checks.name(t) == name)


def drop_trigger(build, name):
    build.remove(trigger(build, name))


def add_loop(build):
    t = copy.deepcopy(trigger(build, "checksum-requested"))
    t["metadata"]["name"] = "loop"
    t["spec"]["filters"] = [{"exact": {"type": "ch.cern.dynafed.checksum.computed"}}]
    build.append(t)


def both_filters(build):
    trigger(build, "checksum-requested")["spec"]["filter"] = {
        "attributes": {"type": "ch.cern.dynafed.checksum.requested"}}


Mutation = Callable[[list[dict]], Any]
CASES: dict[str, tuple[Mutation, str]] = {
    "concurrency != threads": (lambda b: spec(b, "checksum").update(containerConcurrency=7),
                               "containerConcurrency 7 != WORKERS x THREADS"),
    "threads unset": (lambda b: set_env(b, "copy", "THREADS", None), "THREADS must be set"),
    "readiness path not served": (lambda b: ctr(b, "checksum")["readinessProbe"]["httpGet"].update(path="/ready"),
                                  "is not an app endpoint"),
    "liveness on readiness path": (lambda b: ctr(b, "copy")["livenessProbe"]["httpGet"].update(path="/readyz"),
                                   "should probe /healthz"),
    "readiness threshold without period": (lambda b: ctr(b, "copy")["readinessProbe"].update(failureThreshold=3),
                                           "rejected by Knative when periodSeconds is 0"),
    "impatient liveness": (lambda b: ctr(b, "checksum")["livenessProbe"].update(failureThreshold=2),
                           "a busy pod would be killed"),
    "probe on another port": (lambda b: ctr(b, "copy")["livenessProbe"]["httpGet"].update(port=9090),
                              "port must be the container port"),
    "copy timeout < slice": (lambda b: spec(b, "copy").update(timeoutSeconds=250), "< slice 240s + finalisation"),
    "slice too long": (lambda b: set_env(b, "copy", "DYNAFED_FN_COPY_SLICE_SECONDS", "290"), "< slice 290s"),
    "checksum cut before its answer": (lambda b: spec(b, "checksum").update(responseStartTimeoutSeconds=30),
                                       "the answer is not streamed"),
    "timeout above cluster max": (lambda b: spec(b, "checksum").update(timeoutSeconds=900),
                                  "max-revision-timeout-seconds"),
    "graceful >= timeout": (lambda b: set_env(b, "checksum", "GRACEFUL_TIMEOUT", "300"), "below timeoutSeconds"),
    "idle timeout too short": (lambda b: spec(b, "copy").update(idleTimeoutSeconds=2), "progress cadence"),
    "window below 6s": (lambda b: ann(b, "copy").update({"autoscaling.knative.dev/window": "5s"}),
                        "window=5s outside"),
    "window not a duration": (lambda b: ann(b, "copy").update({"autoscaling.knative.dev/window": "a minute"}),
                              "not a Go duration"),
    "scale-down-delay > 1h": (lambda b: ann(b, "copy").update({"autoscaling.knative.dev/scale-down-delay": "2h"}),
                              "scale-down-delay=2h outside"),
    "misspelt annotation": (lambda b: ann(b, "checksum").update({"autoscaling.knative.dev/minScale": "1"}),
                            "unknown autoscaling annotation"),
    "min > max": (lambda b: ann(b, "checksum").update({"autoscaling.knative.dev/min-scale": "5"}),
                  "min-scale 5 > max-scale 3"),
    "initial-scale 0": (lambda b: ann(b, "checksum").update({"autoscaling.knative.dev/initial-scale": "0"}),
                        "initial-scale=0 outside"),
    "hpa with concurrency": (lambda b: ann(b, "copy").update(
        {"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"}), "invalid for class"),
    "unknown class": (lambda b: ann(b, "copy").update({"autoscaling.knative.dev/class": "kpa"}), "not kpa/hpa"),
    "target above hard limit": (lambda b: ann(b, "copy").update({"autoscaling.knative.dev/target": "20"}),
                                "can never be reached"),
    "utilization > 100": (lambda b: ann(b, "copy").update(
        {"autoscaling.knative.dev/target-utilization-percentage": "150"}), "target-utilization-percentage=150"),
    "annotation on the Service": (lambda b: svc(b, "copy")["metadata"].setdefault("annotations", {}).update(
        {"autoscaling.knative.dev/min-scale": "1"}), "belongs on spec.template"),
    "reserved env": (lambda b: set_env(b, "copy", "PORT", "8080"), "reserved by Knative"),
    "sink set by hand": (lambda b: set_env(b, "copy", "K_SINK", "http://x"), "injected by the SinkBinding"),
    "bound to loopback": (lambda b: set_env(b, "copy", "HOST", "127.0.0.1"), "gunicorn must bind all addresses"),
    "env unknown to the app": (lambda b: set_env(b, "checksum", "DYNAFED_FN_STORE_FILE", "/x"),
                               "unknown to the app"),
    "root allowed": (lambda b: ctr(b, "copy")["securityContext"].update(runAsNonRoot=False), "runAsNonRoot"),
    "drop all lowercase": (lambda b: ctr(b, "copy")["securityContext"]["capabilities"].update(drop=["all"]),
                           "capabilities.drop must be [ALL]"),
    "privilege escalation": (lambda b: ctr(b, "checksum")["securityContext"].pop("allowPrivilegeEscalation"),
                             "allowPrivilegeEscalation"),
    "no seccomp": (lambda b: ctr(b, "checksum")["securityContext"].pop("seccompProfile"), "seccompProfile"),
    "pod securityContext": (lambda b: spec(b, "copy").update(securityContext={"runAsNonRoot": True}),
                            "pod-level securityContext"),
    "no writable /tmp": (lambda b: ctr(b, "copy").update(
        volumeMounts=[m for m in ctr(b, "copy")["volumeMounts"] if m["mountPath"] != "/tmp"]), "emptyDir at /tmp"),
    "writable secret mount": (lambda b: ctr(b, "copy")["volumeMounts"][0].update(readOnly=False),
                              "requires readOnly mounts"),
    "stores file not mounted": (lambda b: set_env(b, "copy", "DYNAFED_FN_STORES_FILE", "/etc/stores.json"),
                                "is not a file of the mounted"),
    "public route": (lambda b: svc(b, "copy")["metadata"]["labels"].pop("networking.knative.dev/visibility"),
                     "cluster-local"),
    "request > limit": (lambda b: ctr(b, "copy")["resources"]["requests"].update(cpu="4"), "cpu request 4 > limit"),
    "no memory limit": (lambda b: ctr(b, "copy")["resources"]["limits"].pop("memory"), "limits.memory missing"),
    "second port": (lambda b: ctr(b, "copy")["ports"].append({"containerPort": 9090}), "single port"),
    "traffic not 100": (lambda b: svc(b, "copy")["spec"].update(traffic=[
        {"revisionName": "copy-00001", "percent": 90}, {"latestRevision": True, "percent": 20, "tag": "candidate"}]),
        "sum to 100"),
    "pinned foreign revision": (lambda b: svc(b, "copy")["spec"].update(traffic=[
        {"revisionName": "checksum-00001", "percent": 90}, {"latestRevision": True, "percent": 10}]),
        "is not a revision of copy"),
    "typo in a type": (lambda b: trigger(b, "dynafed-job-events")["spec"]["filters"][0]["any"][1]["exact"].update(
        type="ch.cern.dynafed.checksum.computd"), "neither emitted nor accepted"),
    "type not delivered": (lambda b: drop_trigger(b, "dynafed-progress-events"),
                           "copy.progress: reaches the Dynafed receiver through 0"),
    "type delivered twice": (lambda b: trigger(b, "dynafed-job-events")["spec"]["filters"][0]["any"][0].update(
        all=[{"prefix": {"type": "ch.cern.dynafed.copy."}}]), "through 2 Triggers"),
    "copy request leaks to Dynafed": (lambda b: trigger(b, "dynafed-job-events")["spec"]["filters"][0]["any"][0]
                                      ["all"][1]["not"]["any"].pop(1), "copy.requested"),
    "lossy terminal events": (lambda b: trigger(b, "dynafed-job-events")["spec"]["delivery"].update(retry=1),
                              "must retry (>= 3)"),
    "no dead letters": (lambda b: trigger(b, "dynafed-job-events")["spec"]["delivery"].pop("deadLetterSink"),
                        "deadLetterSink"),
    "event loop": (add_loop, "event loop"),
    "checksum requests unrouted": (lambda b: drop_trigger(b, "checksum-requested"),
                                   "checksum.requested: must reach Service/checksum"),
    "S3 removals routed": (lambda b: trigger(b, "s3-object-created")["spec"]["filters"][0]["any"].append(
        {"prefix": {"type": "com.amazonaws."}}), "prefix com.amazonaws. matches no emitted or declared type"),
    "prefix matching nothing": (lambda b: trigger(b, "s3-object-created")["spec"]["filters"][0]["any"][0].update(
        prefix={"type": "com.amazonaws.ObjectCreatd:"}), "matches no emitted or declared type"),
    "both filter and filters": (both_filters, "both filter and filters"),
    "bad backoff delay": (lambda b: trigger(b, "checksum-requested")["spec"]["delivery"].update(backoffDelay="2s"),
                          "not an ISO 8601 duration"),
    "bad backoff policy": (lambda b: trigger(b, "checksum-requested")["spec"]["delivery"].update(
        backoffPolicy="fibonacci"), "linear or exponential"),
    "subscriber Service missing": (lambda b: trigger(b, "checksum-requested")["spec"]["subscriber"]["ref"].update(
        name="checksums"), "subscriber Service checksums is not in the build"),
    "broker class not installed": (lambda b: checks.objects(b, "eventing.knative.dev", "Broker")[0]["metadata"]
                                   ["annotations"].update({"eventing.knative.dev/broker.class": "RabbitMQBroker"}),
                                   "install.sh installs"),
    "binding misses a Service": (lambda b: svc(b, "copy")["metadata"]["labels"].pop("events.dynafed.cern.ch/sink"),
                                 f"SinkBinding selects {sorted(set(pf.function_names()) - {'copy'})}"),
    "S3 keys for a source that never calls S3": (
        lambda b: set_env(b, "filersource", "DYNAFED_FN_STORES_FILE", "/etc/dynafed-fn/stores.json"),
        "filersource: never calls S3 (USES_STORES = False) but gets the stores Secret"),
    "bad extension name": (lambda b: checks.objects(b, "sources.knative.dev", "SinkBinding")[0]["spec"]
                           ["ceOverrides"]["extensions"].update({"dynafed-env": "x"}), "lowercase alphanumerics"),
    "secret in the build": (lambda b: b.append({"apiVersion": "v1", "kind": "Secret",
                                                "metadata": {"name": "dynafed-fn-stores", "namespace": "dynafed-fn"}}),
                            "overwrite the operator's real Secret"),
    "object without namespace": (lambda b: checks.objects(b, "eventing.knative.dev", "Broker")[0]["metadata"]
                                 .pop("namespace"), "same namespace"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_manifest_is_reported(builds, facts, case):
    mutate, expected = CASES[case]
    build = copy.deepcopy(builds["dev"])
    assert checks.all_problems(build, facts) == []
    mutate(build)
    problems = checks.all_problems(build, facts)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("sources", "expected"), [
    ({"filersource": ["ch.cern.dynafed.checksum.computed"]}, "is not a request type a function accepts"),
    ({"nosuchsource": ["ch.cern.dynafed.checksum.requested"]}, "no Service of that name"),
])
def test_an_event_source_sending_what_no_function_accepts_is_reported(builds, facts, sources, expected):
    """knative/event-types.yaml ``sources``: what a source sends must be a request
    type a function accepts (routed by that function's Trigger), never an emitted one."""
    import dataclasses

    broken = dataclasses.replace(facts, event_types={**facts.event_types, "sources": sources})
    assert checks.check_triggers(builds["dev"], facts) == []
    assert any(expected in p for p in checks.check_triggers(builds["dev"], broken))


def _kafka_config(build: list[dict]) -> dict:
    return next(o for o in build if o.get("kind") == "ConfigMap" and checks.name(o) == "dynafed-fn-kafka-broker")


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda b: b.remove(_kafka_config(b)), "names no ConfigMap of the build"),
    (lambda b: _kafka_config(b)["data"].pop("bootstrap.servers"), "lacks ['bootstrap.servers']"),
    (lambda b: checks.objects(b, "eventing.knative.dev", "Broker")[0]["spec"]["config"].update(namespace="x"),
     "names no ConfigMap of the build"),
])
def test_a_kafka_broker_without_its_topic_config_is_reported(builds, facts, mutate, expected):
    build = copy.deepcopy(builds["production"])
    assert checks.all_problems(build, facts) == []
    mutate(build)
    assert any(expected in p for p in checks.all_problems(build, facts))
