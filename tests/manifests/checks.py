"""Semantic checks of a rendered kustomize build (a list of objects).

Each check returns a list of problems (empty = fine), so the same check runs
on the real overlays (must be empty) and on deliberately broken copies
(test_mutations.py: must not be empty).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from tests.harness.filters import expression_matches
from tests.manifests import knative_facts as kf
from tests.manifests import project_facts as pf

Obj = dict[str, Any]
Build = list[Obj]


# --- helpers ----------------------------------------------------------------

def kind_of(obj: Obj) -> tuple[str, str]:
    return obj.get("apiVersion", "").split("/")[0], obj.get("kind", "")


def objects(build: Build, group: str, kind: str) -> list[Obj]:
    return [o for o in build if kind_of(o) == (group, kind)]


def ksvcs(build: Build) -> list[Obj]:
    return objects(build, "serving.knative.dev", "Service")


def container(svc: Obj) -> Obj:
    return svc["spec"]["template"]["spec"]["containers"][0]


def env_map(svc: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container(svc).get("env", [])}


def env_int(svc: Obj, name: str, default: int | None = None) -> int | None:
    value = env_map(svc).get(name)
    return default if value is None else int(value)


def template_annotations(svc: Obj) -> dict[str, str]:
    return svc["spec"]["template"].get("metadata", {}).get("annotations", {}) or {}


def name(obj: Obj) -> str:
    return obj["metadata"]["name"]


@dataclasses.dataclass(frozen=True)
class Facts:
    """Project facts the checks compare against (see project_facts)."""

    endpoints: frozenset[str]
    known_env: Callable[[str], tuple[set[str], set[str], str]]
    event_types: dict[str, Any]
    uid: int = 65532
    stores_secret: str = "dynafed-fn-stores"
    uses_stores: Callable[[str], bool] = pf.uses_stores


def default_facts() -> Facts:
    endpoints, _ = pf.app_endpoints()
    return Facts(endpoints=endpoints, known_env=pf.known_env, event_types=pf.event_types())


# --- Serving ----------------------------------------------------------------

def check_shape(svc: Obj, build: Build, facts: Facts) -> list[str]:
    p = []
    spec = svc["spec"]["template"]["spec"]
    if len(spec.get("containers", [])) != 1:
        p.append(f"{name(svc)}: exactly one container expected")
    ports = container(svc).get("ports", [])
    if len(ports) > 1:
        p.append(f"{name(svc)}: Knative allows a single port")
    for port in ports:
        if port.get("name", "") not in kf.VALID_PORT_NAMES:
            p.append(f"{name(svc)}: port name {port.get('name')!r} not in {sorted(kf.VALID_PORT_NAMES)}")
    if name(svc) not in pf.function_names():
        p.append(f"{name(svc)}: no functions/{name(svc)}/Dockerfile for this Service")
    return p


def check_concurrency(svc: Obj, build: Build, facts: Facts) -> list[str]:
    cc = svc["spec"]["template"]["spec"].get("containerConcurrency")
    threads = env_int(svc, "THREADS")
    workers = env_int(svc, "WORKERS", 1)
    if not isinstance(cc, int) or not 0 < cc <= kf.CONTAINER_CONCURRENCY_MAX:
        return [f"{name(svc)}: containerConcurrency must be 1..{kf.CONTAINER_CONCURRENCY_MAX}, got {cc!r}"]
    if threads is None:
        return [f"{name(svc)}: THREADS must be set explicitly"]
    if cc != threads * (workers or 1):
        return [f"{name(svc)}: containerConcurrency {cc} != WORKERS x THREADS ({workers} x {threads})"]
    return []


def check_probes(svc: Obj, build: Build, facts: Facts) -> list[str]:
    p = []
    c = container(svc)
    port = (c.get("ports") or [{}])[0]
    timeout = svc["spec"]["template"]["spec"].get("timeoutSeconds", 300)
    want = {"startupProbe": pf.LIVENESS_PATH, "livenessProbe": pf.LIVENESS_PATH,
            "readinessProbe": pf.READINESS_PATH}
    for field, path in want.items():
        probe = c.get(field)
        if not probe:
            p.append(f"{name(svc)}: {field} missing")
            continue
        get = probe.get("httpGet")
        if not get:
            p.append(f"{name(svc)}: {field} must be an httpGet on the app's endpoint")
            continue
        if get.get("path") not in facts.endpoints:
            p.append(f"{name(svc)}: {field} path {get.get('path')!r} is not an app endpoint {sorted(facts.endpoints)}")
        elif get.get("path") != path:
            p.append(f"{name(svc)}: {field} should probe {path}, not {get.get('path')}")
        if "port" in get and get["port"] not in (port.get("containerPort"), port.get("name")):
            p.append(f"{name(svc)}: {field} port must be the container port (or omitted)")
    ready = c.get("readinessProbe") or {}
    if not ready.get("periodSeconds"):
        for banned in ("failureThreshold", "timeoutSeconds"):
            if banned in ready:
                p.append(f"{name(svc)}: readinessProbe.{banned} is rejected by Knative when periodSeconds is 0")
    live = c.get("livenessProbe") or {}
    budget = live.get("periodSeconds", 10) * live.get("failureThreshold", 3)
    if budget < timeout:
        p.append(f"{name(svc)}: liveness gives up after {budget}s, but a probe can queue behind a request "
                 f"of up to timeoutSeconds={timeout}s: a busy pod would be killed")
    return p


def check_timeouts(svc: Obj, build: Build, facts: Facts) -> list[str]:
    p = []
    spec = svc["spec"]["template"]["spec"]
    timeout = spec.get("timeoutSeconds")
    start = spec.get("responseStartTimeoutSeconds")
    idle = spec.get("idleTimeoutSeconds")
    graceful = env_int(svc, "GRACEFUL_TIMEOUT")
    if not isinstance(timeout, int) or not 0 < timeout <= kf.DEFAULT_MAX_REVISION_TIMEOUT_S:
        return [f"{name(svc)}: timeoutSeconds must be 1..{kf.DEFAULT_MAX_REVISION_TIMEOUT_S} "
                f"(max-revision-timeout-seconds), got {timeout!r}"]
    for label, value in (("responseStartTimeoutSeconds", start), ("idleTimeoutSeconds", idle)):
        if value is not None and not 0 < value <= timeout:
            p.append(f"{name(svc)}: {label}={value} must be within 1..timeoutSeconds ({timeout})")
    if graceful is None or not 0 < graceful < timeout:
        p.append(f"{name(svc)}: GRACEFUL_TIMEOUT={graceful} must be set and below timeoutSeconds "
                 f"({timeout}, the pod's grace period)")
    if name(svc) == "copy":
        slice_s = env_int(svc, "DYNAFED_FN_COPY_SLICE_SECONDS", pf.COPY_SLICE_DEFAULT_S)
        need = slice_s + pf.COPY_FINALISATION_MARGIN_S
        if timeout < need:
            p.append(f"copy: timeoutSeconds {timeout} < slice {slice_s}s "
                     f"+ finalisation {pf.COPY_FINALISATION_MARGIN_S}s")
        if graceful is not None and graceful < slice_s:
            p.append(f"copy: GRACEFUL_TIMEOUT {graceful} < slice {slice_s}s: SIGTERM would cut slices short")
        if idle is not None and idle < 10 * pf.COPY_PROGRESS_INTERVAL_S:
            p.append(f"copy: idleTimeoutSeconds {idle} leaves no slack over the ~1 s progress cadence")
    if name(svc) == "checksum":
        if timeout < pf.GFAL2_CHECKSUM_TIMEOUT_S:
            p.append(f"checksum: timeoutSeconds {timeout} < gfal2's {pf.GFAL2_CHECKSUM_TIMEOUT_S}s checksum timeout")
        # One JSON body at the end: the first byte may come only at the end.
        if start is not None and start < timeout:
            p.append(f"checksum: responseStartTimeoutSeconds {start} < timeoutSeconds {timeout}, "
                     "but the answer is not streamed")
        if idle is not None and idle < timeout:
            p.append(f"checksum: idleTimeoutSeconds {idle} < timeoutSeconds {timeout}, "
                     "but the answer is not streamed")
    return p


def check_autoscaling(svc: Obj, build: Build, facts: Facts) -> list[str]:
    p = []
    outer = svc.get("metadata", {}).get("annotations", {}) or {}
    for key in outer:
        if key.startswith(kf.AUTOSCALING_PREFIX):
            p.append(f"{name(svc)}: {key} on the Service metadata is ignored; it belongs on spec.template")
    ann = template_annotations(svc)
    vals: dict[str, str] = {}
    for key, value in ann.items():
        if not key.startswith(kf.AUTOSCALING_PREFIX):
            continue
        short = key[len(kf.AUTOSCALING_PREFIX):]
        if short not in kf.AUTOSCALING_KEYS:
            p.append(f"{name(svc)}: unknown autoscaling annotation {key}")
            continue
        if not isinstance(value, str):
            p.append(f"{name(svc)}: {key} must be a string, got {value!r}")
            continue
        vals[short] = value
    cls = vals.get("class", kf.KPA)
    if cls not in kf.METRICS_BY_CLASS:
        p.append(f"{name(svc)}: class {cls!r} not kpa/hpa")
        return p
    metric = vals.get("metric", "concurrency" if cls == kf.KPA else "cpu")
    if metric not in kf.METRICS_BY_CLASS[cls]:
        p.append(f"{name(svc)}: metric {metric!r} invalid for class {cls}")

    def number(key: str, lo: float, hi: float | None = None, integer: bool = False) -> float | None:
        if key not in vals:
            return None
        try:
            v = int(vals[key]) if integer else float(vals[key])
        except ValueError:
            p.append(f"{name(svc)}: {key}={vals[key]!r} is not a number")
            return None
        if v < lo or (hi is not None and v > hi):
            p.append(f"{name(svc)}: {key}={vals[key]} outside [{lo}, {hi if hi is not None else 'inf'}]")
        return v

    target = number("target", 0.01)
    number("target-utilization-percentage", *kf.UTILIZATION_PCT_RANGE)
    lo_min = number("min-scale", 0, integer=True)
    hi_max = number("max-scale", 0, integer=True)
    initial = number("initial-scale", 1, integer=True)  # 0 needs allow-zero-initial-scale
    number("activation-scale", 1, integer=True)
    number("panic-window-percentage", *kf.PANIC_WINDOW_PCT_RANGE)
    number("panic-threshold-percentage", *kf.PANIC_THRESHOLD_PCT_RANGE)
    if "target-burst-capacity" in vals:
        tbc = number("target-burst-capacity", -1)
        if tbc is not None and tbc < 0 and tbc != -1:
            p.append(f"{name(svc)}: target-burst-capacity must be -1 or >= 0")
    for key, (lo, hi) in (("window", kf.WINDOW_RANGE_S), ("scale-down-delay", kf.SCALE_DOWN_DELAY_RANGE_S),
                          ("scale-to-zero-pod-retention-period", (0.0, None))):
        if key in vals:
            try:
                secs = kf.go_duration_s(vals[key])
            except ValueError as exc:
                p.append(f"{name(svc)}: {key}: {exc}")
                continue
            if secs < lo or (hi is not None and secs > hi):
                p.append(f"{name(svc)}: {key}={vals[key]} outside {lo}s..{hi}s")
    if hi_max:  # 0 = unbounded
        if lo_min is not None and lo_min > hi_max:
            p.append(f"{name(svc)}: min-scale {lo_min} > max-scale {hi_max}")
        if initial is not None and initial > hi_max:
            p.append(f"{name(svc)}: initial-scale {initial} > max-scale {hi_max}")
    cc = svc["spec"]["template"]["spec"].get("containerConcurrency") or 0
    if target is not None and metric == "concurrency" and cc and target > cc:
        p.append(f"{name(svc)}: target {target} > containerConcurrency {cc}: the soft target can never be reached")
    return p


def check_env(svc: Obj, build: Build, facts: Facts) -> list[str]:
    p = []
    c = container(svc)
    names = [e["name"] for e in c.get("env", [])]
    configmaps = {name(o): o for o in build if o.get("apiVersion") == "v1" and o.get("kind") == "ConfigMap"}
    for src in c.get("envFrom", []):
        ref = (src.get("configMapRef") or {}).get("name")
        if ref is None:
            p.append(f"{name(svc)}: envFrom only from ConfigMaps (secrets are mounted as files)")
            continue
        if ref not in configmaps:
            p.append(f"{name(svc)}: envFrom ConfigMap {ref!r} is not in the build")
            continue
        names += list((configmaps[ref].get("data") or {}).keys())
    exact, suffixes, source = facts.known_env(name(svc))
    prefix = f"DYNAFED_FN_{name(svc).upper()}_"
    for env in names:
        if env in kf.RESERVED_ENV:
            p.append(f"{name(svc)}: {env} is reserved by Knative")
        elif env in kf.BINDING_ENV:
            p.append(f"{name(svc)}: {env} is injected by the SinkBinding; do not set it")
        elif env in exact:
            continue
        elif env.startswith(prefix) and env[len(prefix):] in suffixes:
            continue
        else:
            p.append(f"{name(svc)}: env {env} is unknown to the app (checked against {source})")
    if len(set(names)) != len(names):
        p.append(f"{name(svc)}: an env var is set twice")
    host = env_map(svc).get("HOST")
    if host and (host.startswith("127.") or host in ("localhost", "::1")):
        p.append(f"{name(svc)}: HOST={host}: the kubelet probes the pod IP, gunicorn must bind all addresses")
    return p


def check_security(svc: Obj, build: Build, facts: Facts) -> list[str]:
    p = []
    pod = svc["spec"]["template"]["spec"]
    if pod.get("securityContext"):
        p.append(f"{name(svc)}: pod-level securityContext needs a Knative feature flag; set it on the container")
    sc = container(svc).get("securityContext") or {}
    expected = {"runAsNonRoot": True, "runAsUser": facts.uid, "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False}
    for key, want in expected.items():
        if sc.get(key) != want:
            p.append(f"{name(svc)}: securityContext.{key} must be {want!r}, got {sc.get(key)!r}")
    if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
        p.append(f"{name(svc)}: securityContext.capabilities.drop must be [ALL]")
    if (sc.get("capabilities") or {}).get("add"):
        p.append(f"{name(svc)}: no capabilities may be added")
    if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        p.append(f"{name(svc)}: seccompProfile.type must be RuntimeDefault")
    return p


def check_volumes(svc: Obj, build: Build, facts: Facts) -> list[str]:
    p = []
    pod = svc["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = container(svc).get("volumeMounts", [])
    by_path = {m["mountPath"]: m for m in mounts}
    for m in mounts:
        v = volumes.get(m["name"])
        if v is None:
            p.append(f"{name(svc)}: volumeMount {m['name']} has no volume")
            continue
        if m["mountPath"] in kf.RESERVED_MOUNT_PATHS:
            p.append(f"{name(svc)}: mountPath {m['mountPath']} is reserved by Knative")
        if ("secret" in v or "configMap" in v or "projected" in v) and not m.get("readOnly"):
            p.append(f"{name(svc)}: Knative requires readOnly mounts for secret/configMap volumes ({m['name']})")
    if set(volumes) - {m["name"] for m in mounts}:
        p.append(f"{name(svc)}: unmounted volumes {sorted(set(volumes) - {m['name'] for m in mounts})}")
    sc = container(svc).get("securityContext") or {}
    tmp = by_path.get("/tmp")
    if sc.get("readOnlyRootFilesystem") and (tmp is None or "emptyDir" not in volumes.get(tmp["name"], {})):
        p.append(f"{name(svc)}: a read-only root filesystem needs an emptyDir at /tmp (gunicorn, tempfile)")
    stores_file = env_map(svc).get("DYNAFED_FN_STORES_FILE")
    if not facts.uses_stores(name(svc)):
        # least privilege: a deployable that never calls S3 holds no S3 keys
        if stores_file or any((v.get("secret") or {}).get("secretName") == facts.stores_secret
                              for v in volumes.values()):
            p.append(f"{name(svc)}: never calls S3 (USES_STORES = False) but gets the stores Secret")
        return p
    if not stores_file:
        p.append(f"{name(svc)}: DYNAFED_FN_STORES_FILE not set")
        return p
    ok = False
    for m in mounts:
        v = volumes.get(m["name"], {})
        secret = v.get("secret")
        if not secret or not stores_file.startswith(m["mountPath"].rstrip("/") + "/"):
            continue
        rel = stores_file[len(m["mountPath"].rstrip("/")) + 1:]
        items = secret.get("items")
        paths = {i["path"] for i in items} if items else {"stores.json"}
        if secret.get("secretName") == facts.stores_secret and rel in paths:
            ok = True
    if not ok:
        p.append(f"{name(svc)}: DYNAFED_FN_STORES_FILE={stores_file} is not a file of the mounted "
                 f"Secret {facts.stores_secret}")
    return p


def check_visibility(svc: Obj, build: Build, facts: Facts) -> list[str]:
    labels = svc["metadata"].get("labels", {}) or {}
    if labels.get("networking.knative.dev/visibility") != "cluster-local":
        return [f"{name(svc)}: must carry networking.knative.dev/visibility: cluster-local"]
    return []


def check_resources(svc: Obj, build: Build, facts: Facts) -> list[str]:
    p = []
    res = container(svc).get("resources") or {}
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            if r not in (res.get(kind) or {}):
                p.append(f"{name(svc)}: resources.{kind}.{r} missing")
    for r in ("cpu", "memory"):
        try:
            req = kf.quantity(res["requests"][r])
            lim = kf.quantity(res["limits"][r])
        except (KeyError, TypeError, ValueError):
            continue
        if req > lim:
            p.append(f"{name(svc)}: {r} request {res['requests'][r]} > limit {res['limits'][r]}")
    return p


def check_traffic(svc: Obj, build: Build, facts: Facts) -> list[str]:
    traffic = svc["spec"].get("traffic")
    if not traffic:
        return []
    p = []
    if sum(t.get("percent", 0) for t in traffic) != 100:
        p.append(f"{name(svc)}: traffic percents must sum to 100")
    tags = [t["tag"] for t in traffic if t.get("tag")]
    if len(tags) != len(set(tags)):
        p.append(f"{name(svc)}: duplicate traffic tags")
    for t in traffic:
        if t.get("revisionName") and t.get("latestRevision"):
            p.append(f"{name(svc)}: latestRevision must be false when revisionName is set")
        if not t.get("revisionName") and t.get("latestRevision") is not True:
            p.append(f"{name(svc)}: a target without revisionName needs latestRevision: true")
        if t.get("revisionName") and not t["revisionName"].startswith(name(svc) + "-"):
            p.append(f"{name(svc)}: pinned revision {t['revisionName']} is not a revision of {name(svc)}")
    return p


SERVICE_CHECKS: dict[str, Callable[[Obj, Build, Facts], list[str]]] = {
    "shape": check_shape,
    "concurrency": check_concurrency,
    "probes": check_probes,
    "timeouts": check_timeouts,
    "autoscaling": check_autoscaling,
    "env": check_env,
    "security": check_security,
    "volumes": check_volumes,
    "visibility": check_visibility,
    "resources": check_resources,
    "traffic": check_traffic,
}


def service_problems(build: Build, facts: Facts, checks: Iterable[str] | None = None) -> list[str]:
    out = []
    for svc in ksvcs(build):
        for key in checks or SERVICE_CHECKS:
            out += SERVICE_CHECKS[key](svc, build, facts)
    return out


# --- Eventing ---------------------------------------------------------------

def trigger_matches(trigger: Obj, event: dict[str, str]) -> bool:
    spec = trigger["spec"]
    if spec.get("filters"):
        # Knative's SubscriptionsAPI semantics, as the broker harness evaluates them
        return all(expression_matches(e, event) for e in spec["filters"])
    attrs = (spec.get("filter") or {}).get("attributes") or {}
    return all(event.get(k) == v for k, v in attrs.items())


def _filter_literals(expr: Obj) -> Iterable[tuple[str, str, str]]:
    ((dialect, arg),) = expr.items()
    if dialect in ("exact", "prefix", "suffix"):
        for k, v in arg.items():
            yield dialect, k, v
    elif dialect in ("all", "any"):
        for e in arg:
            yield from _filter_literals(e)
    elif dialect == "not":
        yield from _filter_literals(arg)


def destination(trigger: Obj) -> str:
    sub = trigger["spec"].get("subscriber") or {}
    if sub.get("ref"):
        return f"{sub['ref'].get('kind')}/{sub['ref'].get('name')}"
    return sub.get("uri", "")


def sample_types(facts: Facts) -> dict[str, set[str]]:
    et = facts.event_types
    accepted = et.get("accepted", {})
    return {
        "emitted": pf.flat(et["emitted"]),
        "accepted": {t for fn in accepted.values() for t in fn.get("exact", [])}
        | {p + "Put" for fn in accepted.values() for p in fn.get("prefix", [])}
        | {p + "CompleteMultipartUpload" for fn in accepted.values() for p in fn.get("prefix", [])},
        "planned": set(et.get("planned", [])),
        "foreign": {"com.amazonaws.ObjectRemoved:Delete", "com.amazonaws.s3.s3:ObjectRemoved:Delete",
                    "ch.cern.dynafed.unknown"},
    }


PING = "dev.knative.sources.ping"


def sample_event(build: Build, event_type: str) -> dict[str, str]:
    """A sample event of ``event_type``: a ping carries the source of the
    build's PingSource (``/apis/v1/namespaces/<ns>/pingsources/<name>``,
    eventing ``PingSourceSource``)."""
    event = {"type": event_type}
    if event_type == PING:
        pings = objects(build, "sources.knative.dev", "PingSource")
        if pings:
            meta = pings[0]["metadata"]
            event["source"] = f"/apis/v1/namespaces/{meta.get('namespace')}/pingsources/{meta['name']}"
    return event


def check_triggers(build: Build, facts: Facts) -> list[str]:
    p = []
    et = facts.event_types
    brokers = {name(b) for b in objects(build, "eventing.knative.dev", "Broker")}
    services = {name(s) for s in ksvcs(build)}
    triggers = objects(build, "eventing.knative.dev", "Trigger")
    emitted = pf.flat(et["emitted"])
    accepted_exact = {fn: set(v.get("exact", [])) for fn, v in et.get("accepted", {}).items()}
    accepted_prefix = {fn: set(v.get("prefix", [])) for fn, v in et.get("accepted", {}).items()}
    via_broker = {fn: v.get("broker", True) for fn, v in et.get("accepted", {}).items()}
    known = emitted | set().union(*accepted_exact.values()) | set(et.get("planned", []))
    declared_prefixes = set().union(*accepted_prefix.values())
    terminal = {t for t in emitted if not t.endswith(".progress")}

    for t in triggers:
        spec = t["spec"]
        if spec.get("broker") not in brokers:
            p.append(f"trigger {name(t)}: broker {spec.get('broker')!r} is not in the build")
        if spec.get("filter") and spec.get("filters"):
            p.append(f"trigger {name(t)}: both filter and filters set (filters silently wins)")
        try:
            for expr in spec.get("filters") or []:
                for dialect, attr, value in _filter_literals(expr):
                    if attr != "type":
                        continue
                    if dialect == "exact" and value not in known:
                        p.append(f"trigger {name(t)}: type {value} is neither emitted nor accepted")
                    if dialect == "prefix" and value not in declared_prefixes and not any(
                            k.startswith(value) for k in emitted):
                        p.append(f"trigger {name(t)}: prefix {value} matches no emitted or declared type")
                    if dialect == "suffix":
                        p.append(f"trigger {name(t)}: suffix filters on type are not used here")
        except ValueError as exc:
            p.append(f"trigger {name(t)}: {exc}")
            continue
        for value in ((spec.get("filter") or {}).get("attributes") or {}).values():
            if value not in known:
                p.append(f"trigger {name(t)}: type {value} is neither emitted nor accepted")
        sub = spec.get("subscriber") or {}
        ref = sub.get("ref")
        if ref and (ref.get("kind"), ref.get("apiVersion")) == ("Service", "serving.knative.dev/v1") \
                and ref.get("name") not in services:
            p.append(f"trigger {name(t)}: subscriber Service {ref.get('name')} is not in the build")
        if not ref and not sub.get("uri", "").startswith(("http://", "https://")):
            p.append(f"trigger {name(t)}: subscriber needs a ref or an absolute http(s) uri")
        delivery = spec.get("delivery") or {}
        if delivery.get("backoffPolicy", "exponential") not in kf.BACKOFF_POLICIES:
            p.append(f"trigger {name(t)}: backoffPolicy must be linear or exponential")
        if "backoffDelay" in delivery:
            try:
                kf.iso8601_duration_s(delivery["backoffDelay"])
            except ValueError as exc:
                p.append(f"trigger {name(t)}: backoffDelay: {exc}")
        if "retry" in delivery and (not isinstance(delivery["retry"], int) or delivery["retry"] < 0):
            p.append(f"trigger {name(t)}: retry must be a non-negative integer")

    samples = sample_types(facts)
    try:
        routes = {ty: [t for t in triggers if trigger_matches(t, sample_event(build, ty))]
                  for group in samples.values() for ty in group}
        # another PingSource's ticks must not start a scrub
        foreign_ping = {"type": PING, "source": "/apis/v1/namespaces/other/pingsources/other"}
        p.extend(f"trigger {name(t)}: routes any PingSource's ticks, not only the scrub schedule"
                 for t in triggers if trigger_matches(t, foreign_ping))
    except ValueError as exc:
        return p + [str(exc)]

    def dynafed(ts: list[Obj]) -> list[Obj]:
        return [t for t in ts if not (t["spec"].get("subscriber") or {}).get("ref")]

    for ty in sorted(samples["emitted"]):
        to_dynafed = dynafed(routes[ty])
        if len(to_dynafed) != 1:
            p.append(f"{ty}: reaches the Dynafed receiver through {len(to_dynafed)} Triggers (want exactly 1)")
        to_functions = [destination(t) for t in routes[ty] if t not in to_dynafed]
        if to_functions:
            p.append(f"{ty}: emitted by a function but routed to {to_functions} (event loop)")
        for t in to_dynafed:
            delivery = t["spec"].get("delivery") or {}
            if ty in terminal and (not delivery.get("deadLetterSink") or delivery.get("retry", 0) < 3):
                p.append(f"{ty}: trigger {name(t)} must retry (>= 3) and have a deadLetterSink: "
                         "Dynafed must not miss a job outcome")
    for fn, types in accepted_exact.items():
        routed = {ty for ty in samples["accepted"] if ty in types or any(ty.startswith(x) for x in accepted_prefix[fn])}
        for ty in sorted(routed):
            dests = [destination(t) for t in routes[ty]]
            if via_broker[fn] and dests != [f"Service/{fn}"]:
                p.append(f"{ty}: must reach Service/{fn} through exactly one Trigger, got {dests}")
            if not via_broker[fn] and dests:
                p.append(f"{ty}: {fn} requests must not go through the Broker (got {dests})")
    for ty in sorted(samples["planned"] | samples["foreign"]):
        if routes[ty]:
            p.append(f"{ty}: not emitted or accepted, yet routed to {[destination(t) for t in routes[ty]]}")
    for t in triggers:
        if not any(t in ts for ts in routes.values()):
            p.append(f"trigger {name(t)}: matches no known event type")
    all_accepted = set().union(*accepted_exact.values())
    for source, types in (et.get("sources") or {}).items():
        if source not in services:
            p.append(f"event source {source}: no Service of that name in the build")
        for ty in types:
            if ty not in all_accepted or ty in emitted:
                p.append(f"event source {source}: {ty} is not a request type a function accepts")
    return p


def check_sinkbinding(build: Build, facts: Facts) -> list[str]:
    p = []
    bindings = objects(build, "sources.knative.dev", "SinkBinding")
    if len(bindings) != 1:
        return [f"expected exactly one SinkBinding, got {len(bindings)}"]
    sb = bindings[0]
    subject = sb["spec"]["subject"]
    if (subject.get("apiVersion"), subject.get("kind")) != ("serving.knative.dev/v1", "Service"):
        p.append("SinkBinding subject must be Knative Services")
    labels = (subject.get("selector") or {}).get("matchLabels") or {}
    if not labels or subject.get("name"):
        p.append("SinkBinding must select the Services by label (not by name)")
    selected = {name(s) for s in ksvcs(build)
                if labels and all((s["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())}
    if selected != {name(s) for s in ksvcs(build)}:
        p.append(f"SinkBinding selects {sorted(selected)}, not every function Service")
    ref = (sb["spec"].get("sink") or {}).get("ref") or {}
    brokers = {name(b) for b in objects(build, "eventing.knative.dev", "Broker")}
    if ref.get("kind") != "Broker" or ref.get("name") not in brokers:
        p.append("SinkBinding sink must be the Broker of the build")
    for ext in ((sb["spec"].get("ceOverrides") or {}).get("extensions") or {}):
        if not kf.CE_EXTENSION_NAME.match(ext):
            p.append(f"SinkBinding ceOverrides extension {ext!r}: lowercase alphanumerics only")
    return p


def check_broker(build: Build, facts: Facts) -> list[str]:
    brokers = objects(build, "eventing.knative.dev", "Broker")
    if len(brokers) != 1:
        return [f"expected exactly one Broker, got {len(brokers)}"]
    broker = brokers[0]
    cls = (broker["metadata"].get("annotations") or {}).get("eventing.knative.dev/broker.class")
    if cls not in kf.INSTALLED_BROKER_CLASSES:
        return [f"Broker class {cls!r}: install.sh installs {sorted(kf.INSTALLED_BROKER_CLASSES)}"]
    if cls != kf.KAFKA_BROKER_CLASS:
        return []
    ref = (broker.get("spec") or {}).get("config") or {}
    configs = {(name(c), str(c["metadata"].get("namespace"))): c for c in build if c.get("kind") == "ConfigMap"}
    config = configs.get((str(ref.get("name")), str(ref.get("namespace"))))
    if ref.get("kind") != "ConfigMap" or config is None:
        return [f"Kafka Broker spec.config {ref} names no ConfigMap of the build"]
    missing = kf.KAFKA_BROKER_CONFIG_KEYS - set(config.get("data") or {})
    return [f"Kafka Broker ConfigMap {name(config)} lacks {sorted(missing)}"] if missing else []


def check_build(build: Build, facts: Facts) -> list[str]:
    """Whole-build properties: namespaces, no Secrets, references resolve."""
    p = []
    namespaces = {o["metadata"].get("namespace") for o in build if o.get("kind") != "Namespace"}
    if len(namespaces) != 1 or None in namespaces:
        p.append(f"every object needs the same namespace, got {namespaces}")
    for o in build:
        if o.get("kind") == "Secret":
            p.append(f"Secret {name(o)} in the build: an apply would overwrite the operator's real Secret")
    return p


EVENTING_CHECKS: dict[str, Callable[[Build, Facts], list[str]]] = {
    "triggers": check_triggers,
    "sinkbinding": check_sinkbinding,
    "broker": check_broker,
    "build": check_build,
}


def all_problems(build: Build, facts: Facts) -> list[str]:
    out = service_problems(build, facts)
    for check in EVENTING_CHECKS.values():
        out += check(build, facts)
    return out
