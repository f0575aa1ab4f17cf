#!/usr/bin/env bash
# Render, apply or delete a kustomize overlay with the chosen namespace and
# image registry/tag, without editing any file in the repository.
#
#   knative/scripts/deploy.sh render|apply|delete
#
# Environment: OVERLAY (dev), NAMESPACE (dynafed-fn), IMAGE_REGISTRY
# (registry.example.org/dynafed), IMAGE_TAG (dev).
#
# render touches no cluster. apply/delete refuse to run without a current
# kubectl context. apply creates the namespace if needed and requires the
# stores Secret (dynafed-fn-stores) to exist; delete removes what apply
# created but leaves the namespace and the Secret.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
action="${1:-}"
OVERLAY="${OVERLAY:-dev}"
NAMESPACE="${NAMESPACE:-dynafed-fn}"
IMAGE_REGISTRY="${IMAGE_REGISTRY:-registry.example.org/dynafed}"
IMAGE_TAG="${IMAGE_TAG:-dev}"
# The placeholder registry written in knative/base/*-service.yaml.
base_registry=registry.example.org/dynafed
stores_secret=dynafed-fn-stores

case "$action" in
  render|apply|delete) ;;
  *) echo "usage: deploy.sh render|apply|delete   (env OVERLAY, NAMESPACE, IMAGE_REGISTRY, IMAGE_TAG)" >&2; exit 2 ;;
esac

overlay_dir="$root/knative/overlays/$OVERLAY"
if [[ ! -f "$overlay_dir/kustomization.yaml" ]]; then
  echo "deploy.sh: no overlay '$OVERLAY' (have: $(ls "$root/knative/overlays" | tr '\n' ' '))" >&2
  exit 2
fi
if ! [[ "$NAMESPACE" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]]; then
  echo "deploy.sh: NAMESPACE '$NAMESPACE' is not a valid namespace name" >&2; exit 2
fi
command -v kubectl >/dev/null || { echo "deploy.sh: kubectl not found on PATH" >&2; exit 1; }

if [[ "$action" != render ]]; then
  if ! ctx="$(kubectl config current-context 2>/dev/null)" || [[ -z "$ctx" ]]; then
    echo "deploy.sh: refusing to $action: kubectl has no current context." >&2
    echo "  Point kubectl at the target cluster (kubectl config use-context NAME)," >&2
    echo "  or use 'render' to see the manifests without a cluster." >&2
    exit 1
  fi
  echo "deploy.sh: $action overlay '$OVERLAY' in namespace '$NAMESPACE' (context '$ctx')" >&2
fi

# A throw-away kustomization on top of the overlay: kustomize refuses absolute
# paths, so the overlay is referenced relative to the temp dir.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rel="$(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$overlay_dir" "$work")"
cat >"$work/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel
namespace: $NAMESPACE
images:
EOF
# One entry per function image (functions/<name>/Dockerfile), so a function
# added with `dynafed-fn new-function` is deployed with the same registry/tag.
for dockerfile in "$root"/functions/*/Dockerfile; do
  fn="$(basename "$(dirname "$dockerfile")")"
  cat >>"$work/kustomization.yaml" <<EOF
  - name: $base_registry/dynafed-fn-$fn
    newName: $IMAGE_REGISTRY/dynafed-fn-$fn
    newTag: "$IMAGE_TAG"
EOF
done

case "$action" in
  render)
    kubectl kustomize "$work"
    ;;
  apply)
    kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
    # Lets the SinkBinding webhook mutate the Services even when Eventing runs
    # in inclusion mode (harmless in the default exclusion mode).
    kubectl label namespace "$NAMESPACE" bindings.knative.dev/include=true --overwrite
    if ! kubectl -n "$NAMESPACE" get secret "$stores_secret" >/dev/null 2>&1; then
      echo "deploy.sh: Secret $NAMESPACE/$stores_secret is missing; the functions cannot start without it." >&2
      echo "  kubectl -n $NAMESPACE create secret generic $stores_secret --from-file=stores.json=./stores.json" >&2
      echo "  (format: knative/secrets/stores-secret.template.yaml)" >&2
      exit 1
    fi
    kubectl apply -k "$work"
    ;;
  delete)
    kubectl delete -k "$work" --ignore-not-found
    ;;
esac
