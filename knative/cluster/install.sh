#!/usr/bin/env bash
# Install pinned Knative Serving (+ Kourier or Istio networking) and Eventing
# (+ in-memory channel and MT-channel broker) on the cluster of the current
# kubectl context, wait for it, then prove it serves: deploy a hello-world
# Knative Service and curl it through the cluster-local gateway.
#
# Versions: knative/cluster/versions.env (the only place they are written).
#
#   knative/cluster/install.sh [--dry-run] [--ingress kourier|istio]
#                              [--domain DOMAIN] [--no-eventing] [--kafka-broker]
#                              [--skip-hello] [--keep-hello]
#
# --kafka-broker also installs the Knative Kafka Broker (the production
# overlay's Broker class; Kafka itself is yours to provide).
# --dry-run prints every command it would run, with the exact release URLs and
# the manifests it would apply, and touches no cluster (kubectl is not called).
# --domain sets config-domain (routes become <name>.<ns>.DOMAIN on the
# external gateway); without it routes stay cluster-local (svc.cluster.local).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

dry_run=0
ingress=kourier
eventing=1
hello=1
keep_hello=0
hello_ns=knative-hello
hello_port="${HELLO_LOCAL_PORT:-18080}"
domain=""
kafka_broker=0

usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --ingress) shift; ingress="${1:-}" ;;
    --ingress=*) ingress="${1#--ingress=}" ;;
    --domain) shift; domain="${1:-}" ;;
    --domain=*) domain="${1#--domain=}" ;;
    --no-eventing) eventing=0 ;;
    --kafka-broker) kafka_broker=1 ;;
    --skip-hello) hello=0 ;;
    --keep-hello) keep_hello=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

case "$ingress" in
  kourier|istio) ;;
  *) echo "install.sh: --ingress must be kourier or istio, not '$ingress'" >&2; exit 2 ;;
esac
if [[ -n "$domain" && ! "$domain" =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$ ]]; then
  echo "install.sh: --domain must be a DNS name like example.org, not '$domain'" >&2; exit 2
fi

release() { # org/repo version file -> release asset URL
  printf 'https://github.com/%s/releases/download/knative-v%s/%s' "$1" "$2" "$3"
}

# The networking layers moved to the knative-extensions organisation.
SERVING_CRDS="$(release knative/serving "$KNATIVE_SERVING_VERSION" serving-crds.yaml)"
SERVING_CORE="$(release knative/serving "$KNATIVE_SERVING_VERSION" serving-core.yaml)"
KOURIER="$(release knative-extensions/net-kourier "$KNATIVE_NET_KOURIER_VERSION" kourier.yaml)"
ISTIO="$(release knative-extensions/net-istio "$KNATIVE_NET_ISTIO_VERSION" istio.yaml)"
NET_ISTIO="$(release knative-extensions/net-istio "$KNATIVE_NET_ISTIO_VERSION" net-istio.yaml)"
EVENTING_CRDS="$(release knative/eventing "$KNATIVE_EVENTING_VERSION" eventing-crds.yaml)"
EVENTING_CORE="$(release knative/eventing "$KNATIVE_EVENTING_VERSION" eventing-core.yaml)"
IN_MEMORY_CHANNEL="$(release knative/eventing "$KNATIVE_EVENTING_VERSION" in-memory-channel.yaml)"
MT_BROKER="$(release knative/eventing "$KNATIVE_EVENTING_VERSION" mt-channel-broker.yaml)"
# Release artifacts named in eventing-kafka-broker hack/artifacts-env.sh.
KAFKA_CONTROLLER="$(release knative-extensions/eventing-kafka-broker "$KNATIVE_EVENTING_KAFKA_VERSION" eventing-kafka-controller.yaml)"
KAFKA_BROKER="$(release knative-extensions/eventing-kafka-broker "$KNATIVE_EVENTING_KAFKA_VERSION" eventing-kafka-broker.yaml)"

# External gateway, and the cluster-local one that serves every route's
# <name>.<ns>.svc.cluster.local host whatever config-domain says
# (net-kourier config/300-gateway.yaml: kourier-internal, port 80;
# net-istio: knative-local-gateway, port 80).
if [[ "$ingress" == kourier ]]; then
  ingress_ns=kourier-system; ingress_svc=kourier; local_svc=kourier-internal
else
  ingress_ns=istio-system; ingress_svc=istio-ingressgateway; local_svc=knative-local-gateway
fi

step() { printf '\n== %s\n' "$*"; }

# quote ARG: ARG as a shell word (single-quoted unless it is plainly safe).
quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# run CMD...: execute, or in dry-run print it shell-quoted (copy-pastable).
run() {
  if (( dry_run )); then
    printf '+'
    local arg
    for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done
    printf '\n'
  else
    "$@"
  fi
}

# apply_manifest: kubectl apply the manifest on stdin (printed in dry-run).
apply_manifest() {
  local manifest; manifest="$(cat)"
  if (( dry_run )); then
    printf "+ kubectl apply -f - <<'EOF'\n%s\nEOF\n" "$manifest"
  else
    printf '%s\n' "$manifest" | kubectl apply -f -
  fi
}

preflight() {
  (( dry_run )) && return 0
  command -v kubectl >/dev/null || { echo "install.sh: kubectl not found on PATH" >&2; exit 1; }
  if (( hello )) && ! command -v curl >/dev/null; then
    echo "install.sh: curl not found (needed for the hello check; or pass --skip-hello)" >&2; exit 1
  fi
  local ctx
  if ! ctx="$(kubectl config current-context 2>/dev/null)"; then
    echo "install.sh: no current kubectl context: point kubectl at a cluster first" >&2; exit 1
  fi
  echo "Installing Knative into context '$ctx'"
  kubectl version >/dev/null || { echo "install.sh: cannot reach the cluster of context '$ctx'" >&2; exit 1; }
}

wait_crds() { # CRDs of each Knative release carry this label
  run kubectl wait --for=condition=Established --timeout=120s crd -l knative.dev/crd-install=true
}

wait_deployments() { # namespace
  run kubectl wait deployment --all --for=condition=Available --timeout=300s -n "$1"
}

install_serving() {
  step "Knative Serving v$KNATIVE_SERVING_VERSION"
  run kubectl apply -f "$SERVING_CRDS"
  wait_crds
  run kubectl apply -f "$SERVING_CORE"

  if [[ "$ingress" == kourier ]]; then
    step "Networking: Kourier v$KNATIVE_NET_KOURIER_VERSION"
    run kubectl apply -f "$KOURIER"
    run kubectl patch configmap/config-network -n knative-serving --type merge \
      -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
  else
    step "Networking: Istio + net-istio v$KNATIVE_NET_ISTIO_VERSION"
    # Istio's CRDs first (label-selected from the same file), then Istio, then
    # the Knative integration. net-istio is Knative's default ingress class.
    run kubectl apply -l knative.dev/crd-install=true -f "$ISTIO"
    run kubectl apply -f "$ISTIO"
    run kubectl apply -f "$NET_ISTIO"
  fi
  wait_deployments knative-serving
  wait_deployments "$ingress_ns"
  if [[ -n "$domain" ]]; then
    step "Domain: routes on *.$domain (config-domain)"
    run kubectl patch configmap/config-domain -n knative-serving --type merge \
      -p "{\"data\":{\"$domain\":\"\"}}"
  fi
}

install_eventing() {
  step "Knative Eventing v$KNATIVE_EVENTING_VERSION (in-memory channel, MT-channel broker)"
  run kubectl apply -f "$EVENTING_CRDS"
  wait_crds
  run kubectl apply -f "$EVENTING_CORE"
  run kubectl apply -f "$IN_MEMORY_CHANNEL"
  run kubectl apply -f "$MT_BROKER"
  if (( kafka_broker )); then
    step "Knative Kafka Broker v$KNATIVE_EVENTING_KAFKA_VERSION (production overlay; needs a Kafka cluster)"
    run kubectl apply -f "$KAFKA_CONTROLLER"
    run kubectl apply -f "$KAFKA_BROKER"
  fi
  wait_deployments knative-eventing
}

# curl_via SERVICE HOST: GET / through svc/SERVICE in the ingress namespace
# (port-forwarded to loopback) with Host: HOST; exit 1 unless it says Hello.
curl_via() {
  local svc="$1" host="$2"
  if (( dry_run )); then
    run kubectl port-forward -n "$ingress_ns" "svc/$svc" "$hello_port:80"
    echo "+ (port-forward runs in the background while curl runs)"
    run curl -fsS --retry 10 --retry-connrefused --retry-delay 2 -H "Host: $host" "http://127.0.0.1:$hello_port/"
    return 0
  fi
  kubectl port-forward -n "$ingress_ns" "svc/$svc" "$hello_port:80" >/dev/null 2>&1 &
  local pf=$!
  local body ok=0
  if body="$(curl -fsS --retry 10 --retry-connrefused --retry-delay 2 \
               -H "Host: $host" "http://127.0.0.1:$hello_port/")"; then
    [[ "$body" == *"Hello"* ]] && ok=1
  fi
  kill "$pf" 2>/dev/null || true
  wait "$pf" 2>/dev/null || true
  if (( ! ok )); then
    echo "install.sh: hello check FAILED (Host: $host via $svc.$ingress_ns): ${body:-no answer}" >&2
    exit 1
  fi
  echo "hello check OK (Host: $host via $svc.$ingress_ns): $body"
}

hello_check() {
  step "Hello check: a Knative Service answering through $local_svc.$ingress_ns"
  apply_manifest <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $hello_ns
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
  namespace: $hello_ns
spec:
  template:
    spec:
      containers:
        - image: $HELLO_IMAGE
          env:
            - name: TARGET
              value: dynafed-fn
EOF
  run kubectl wait ksvc/hello -n "$hello_ns" --for=condition=Ready --timeout=300s

  # Without a domain the route is cluster-local: the external gateway answers
  # 404 for it. The cluster-local gateway serves it on every cluster, reached
  # here with a port-forward (kind and minikube have no load balancer).
  curl_via "$local_svc" "hello.$hello_ns.svc.cluster.local"
  if [[ -n "$domain" ]]; then
    # With a domain the route is also on the external gateway, under status.url.
    local url host
    if (( dry_run )); then
      echo "+ kubectl get ksvc hello -n $hello_ns -o jsonpath={.status.url}   # -> http://hello.$hello_ns.$domain"
      host="hello.$hello_ns.$domain"
    else
      url="$(kubectl get ksvc hello -n "$hello_ns" -o jsonpath='{.status.url}')"
      host="${url#*://}"
    fi
    curl_via "$ingress_svc" "$host"
  fi

  if (( ! keep_hello )); then
    run kubectl delete namespace "$hello_ns" --wait=false
  fi
}

if (( dry_run )); then
  echo "# DRY RUN: nothing is applied; these are the commands install.sh would run"
  echo "# serving=$KNATIVE_SERVING_VERSION eventing=$KNATIVE_EVENTING_VERSION ingress=$ingress domain=${domain:-<none: cluster-local routes>}"
fi
preflight
install_serving
if (( kafka_broker && ! eventing )); then
  echo "install.sh: --kafka-broker needs Eventing (drop --no-eventing)" >&2; exit 2
fi
if (( eventing )); then install_eventing; fi
if (( hello )); then hello_check; fi
step "Done"
