#!/usr/bin/env bash
# Build the function images with the first container builder that is installed
# *and works* (a docker client without a reachable engine does not count).
#
#   knative/scripts/build-images.sh [--dry-run] [--push] [FUNCTION...]
#
# FUNCTION defaults to every functions/<name>/Dockerfile. Images are named
#   $IMAGE_REGISTRY/dynafed-fn-<name>:$IMAGE_TAG
# CONTAINER_BUILDER=docker|podman|buildah forces one builder.
# Exit status 3 means no usable builder was found.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

IMAGE_REGISTRY="${IMAGE_REGISTRY:-registry.example.org/dynafed}"
IMAGE_TAG="${IMAGE_TAG:-dev}"

dry_run=0
push=0
fns=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=1 ;;
    --push) push=1 ;;
    -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build-images.sh: unknown option $arg" >&2; exit 2 ;;
    *) fns+=("$arg") ;;
  esac
done
if [[ ${#fns[@]} -eq 0 ]]; then
  for df in functions/*/Dockerfile; do
    [[ -e "$df" ]] || continue
    fns+=("$(basename "$(dirname "$df")")")
  done
fi
for fn in "${fns[@]}"; do
  [[ -f "functions/$fn/Dockerfile" ]] || { echo "build-images.sh: no functions/$fn/Dockerfile" >&2; exit 2; }
done

# builder_status NAME: print why NAME is unusable; succeed if it works.
builder_status() {
  local b="$1"
  if ! command -v "$b" >/dev/null 2>&1; then
    echo "$b: not installed"; return 1
  fi
  # `info` needs a running engine (docker), a working storage setup
  # (podman/buildah); the client binary alone proves nothing.
  if ! timeout 20 "$b" info >/dev/null 2>&1; then
    echo "$b: installed at $(command -v "$b") but '$b info' fails (no engine/daemon or no storage)"; return 1
  fi
  return 0
}

candidates=(docker podman buildah)
if [[ -n "${CONTAINER_BUILDER:-}" ]]; then candidates=("$CONTAINER_BUILDER"); fi

builder=""
reasons=()
for b in "${candidates[@]}"; do
  if why="$(builder_status "$b")"; then builder="$b"; break; fi
  reasons+=("$why")
done

if [[ -z "$builder" ]]; then
  {
    echo "build-images.sh: no working container builder; cannot build images here."
    for r in "${reasons[@]}"; do echo "  - $r"; done
    echo "Install and start one of docker, podman or buildah (or run on a machine that has one),"
    echo "or build with any OCI builder from the repository root:"
    for fn in "${fns[@]}"; do
      echo "  <builder> build -f functions/$fn/Dockerfile -t $IMAGE_REGISTRY/dynafed-fn-$fn:$IMAGE_TAG ."
    done
  } >&2
  exit 3
fi

run() {
  if (( dry_run )); then printf '+ %s\n' "$*"; else "$@"; fi
}

echo "Building with $builder: ${fns[*]} -> $IMAGE_REGISTRY/dynafed-fn-<name>:$IMAGE_TAG"
for fn in "${fns[@]}"; do
  ref="$IMAGE_REGISTRY/dynafed-fn-$fn:$IMAGE_TAG"
  if [[ "$builder" == buildah ]]; then
    run buildah build -f "functions/$fn/Dockerfile" -t "$ref" .
  else
    run "$builder" build -f "functions/$fn/Dockerfile" -t "$ref" .
  fi
  if (( push )); then run "$builder" push "$ref"; fi
done
