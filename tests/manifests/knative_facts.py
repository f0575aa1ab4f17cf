"""Knative facts the manifest checks rely on, with their sources.

Kept apart from the checks so a reader can audit each number once.
"""
from __future__ import annotations

import re

# --- Serving: autoscaling annotations (autoscaling.knative.dev/<key>) --------
# knative.dev/docs/serving/autoscaling/* and pkg/apis/autoscaling.
AUTOSCALING_PREFIX = "autoscaling.knative.dev/"
KPA = "kpa.autoscaling.knative.dev"
HPA = "hpa.autoscaling.knative.dev"
AUTOSCALING_KEYS = frozenset({
    "class", "metric", "target", "target-utilization-percentage",
    "min-scale", "max-scale", "initial-scale", "activation-scale",
    "scale-down-delay", "window", "scale-to-zero-pod-retention-period",
    "target-burst-capacity", "panic-window-percentage", "panic-threshold-percentage",
})
METRICS_BY_CLASS = {KPA: {"concurrency", "rps"}, HPA: {"cpu", "memory"}}
WINDOW_RANGE_S = (6.0, 3600.0)            # stable window: 6s <= value <= 1h
SCALE_DOWN_DELAY_RANGE_S = (0.0, 3600.0)  # 0s <= value <= 1h
PANIC_WINDOW_PCT_RANGE = (1.0, 100.0)
PANIC_THRESHOLD_PCT_RANGE = (110.0, 1000.0)
UTILIZATION_PCT_RANGE = (1.0, 100.0)

# --- Serving: request timeouts (config-defaults) -----------------------------
DEFAULT_MAX_REVISION_TIMEOUT_S = 600      # max-revision-timeout-seconds
CONTAINER_CONCURRENCY_MAX = 1000          # container-concurrency-max-limit

# --- Serving: pod-spec validation (pkg/apis/serving/k8s_validation.go) -------
RESERVED_ENV = frozenset({"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"})
# Injected by the SinkBinding; setting them by hand fights the webhook.
BINDING_ENV = frozenset({"K_SINK", "K_CE_OVERRIDES"})
VALID_PORT_NAMES = frozenset({"", "http1", "h2c"})
RESERVED_MOUNT_PATHS = frozenset({"/", "/dev", "/dev/log"})
# Pod-level securityContext is behind the kubernetes.podspec-securitycontext
# flag (off by default): restrictions go on the container.
POD_SECURITY_CONTEXT_FLAGGED = True

# --- Eventing ---------------------------------------------------------------
# Trigger spec.filters dialects (the SubscriptionsAPI filters; the
# new-trigger-filters flag is gone from config/core/configmaps/features.yaml in
# eventing 1.22: always on).
FILTER_DIALECTS = frozenset({"exact", "prefix", "suffix", "all", "any", "not", "cesql"})
BACKOFF_POLICIES = frozenset({"linear", "exponential"})
# Broker classes knative/cluster/install.sh installs: the MT channel-based
# Broker (mt-channel-broker.yaml, always; on the InMemoryChannel: events in
# flight are lost on a restart) and, with --kafka-broker, the Kafka Broker
# (eventing-kafka-broker control-plane/pkg/kafka/broker_class.go BrokerClass).
INSTALLED_BROKER_CLASS = "MTChannelBasedBroker"
KAFKA_BROKER_CLASS = "Kafka"
INSTALLED_BROKER_CLASSES = frozenset({INSTALLED_BROKER_CLASS, KAFKA_BROKER_CLASS})
# Keys of a Kafka Broker's spec.config ConfigMap (control-plane/pkg/kafka/topic.go).
KAFKA_BROKER_CONFIG_KEYS = frozenset({"bootstrap.servers", "default.topic.partitions",
                                      "default.topic.replication.factor"})
CE_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_s(text: str) -> float:
    """Seconds in a Go duration string ("90s", "1m30s", "2m"); ValueError if not one."""
    if text in ("0",):
        return 0.0
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * _GO_UNIT_S[u] for n, u in parts)


_ISO_DURATION = re.compile(
    r"^P(?!$)(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def iso8601_duration_s(text: str) -> float:
    """Seconds in an ISO 8601 duration ("PT0.5S", "PT2S", "P1DT1H"); ValueError if not one."""
    m = _ISO_DURATION.match(text)
    if not m:
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_QUANTITY_FACTOR = {None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}


def quantity(value: object) -> float:
    """A Kubernetes resource quantity as a float (cores or bytes)."""
    m = _QUANTITY.match(str(value))
    if not m:
        raise ValueError(f"not a resource quantity: {value!r}")
    return float(m.group(1)) * _QUANTITY_FACTOR[m.group(2)]
