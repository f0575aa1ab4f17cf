"""The settings in force during a run, for the summary: Knative autoscaling
annotations and the functions' concurrency settings.

- from the repository's manifests (``knative/``; rendered with ``kubectl
  kustomize`` for an overlay when kubectl is on PATH, else the base files),
- from the live Knative Services (Knative target, through the Kubernetes API),
- for the local stack: the gunicorn settings it was started with (there is
  no autoscaler locally: one always-warm process per function).
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
KNATIVE_DIR = REPO_ROOT / "knative"
AUTOSCALING_PREFIX = "autoscaling.knative.dev/"
ENV_KEYS = ("WORKERS", "THREADS", "GRACEFUL_TIMEOUT")


def service_settings(service: Mapping[str, Any]) -> dict[str, Any]:
    """The autoscaling-relevant part of one Knative Service document."""
    template = (service.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    spec = template.get("spec") or {}
    containers = spec.get("containers") or [{}]
    env = {e.get("name"): e.get("value") for e in containers[0].get("env") or [] if e.get("name") in ENV_KEYS}
    return {
        "annotations": {k: v for k, v in sorted(annotations.items()) if k.startswith(AUTOSCALING_PREFIX)},
        "containerConcurrency": spec.get("containerConcurrency"),
        "timeoutSeconds": spec.get("timeoutSeconds"),
        "env": env,
        "resources": containers[0].get("resources"),
    }


def settings_from_documents(documents: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Service name -> settings, for every Knative Service among ``documents``."""
    out: dict[str, dict[str, Any]] = {}
    for doc in documents:
        if isinstance(doc, Mapping) and doc.get("kind") == "Service" \
                and str(doc.get("apiVersion", "")).startswith("serving.knative.dev/"):
            out[str((doc.get("metadata") or {}).get("name"))] = service_settings(doc)
    return out


def manifest_settings(overlay: str | None = None, *, knative_dir: Path = KNATIVE_DIR) -> dict[str, Any]:
    """Settings declared by the repository's manifests.

    ``overlay`` (dev, production, …) is rendered with ``kubectl kustomize``
    when kubectl exists; otherwise (or without an overlay) the base files are
    read as they are. The result says which.
    """
    if overlay and shutil.which("kubectl"):
        path = knative_dir / "overlays" / overlay
        try:
            rendered = subprocess.run(["kubectl", "kustomize", str(path)], check=True, capture_output=True,
                                      text=True, timeout=60).stdout
            return {"source": f"kubectl kustomize knative/overlays/{overlay}",
                    "services": settings_from_documents(yaml.safe_load_all(rendered))}
        except (subprocess.SubprocessError, OSError, yaml.YAMLError) as exc:
            fallback = f"knative/base (rendering overlay {overlay} failed: {exc})"
    else:
        fallback = "knative/base" + (f" (kubectl not found: overlay {overlay} not applied)" if overlay else "")
    docs: list[Any] = []
    for path in sorted((knative_dir / "base").glob("*.yaml")):
        try:
            docs.extend(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError):
            continue
    return {"source": fallback, "services": settings_from_documents(docs)}


def local_settings(workers: int, threads: int, functions: Iterable[str]) -> dict[str, Any]:
    """What the embedded stack runs: gunicorn per function, no autoscaler."""
    return {"source": "local stack (dynafed_client.stack)",
            "note": "no autoscaler locally: one always-warm gunicorn per function, so replicas and cold "
                    "starts are not measured",
            "services": {name: {"replicas": 1, "env": {"WORKERS": str(workers), "THREADS": str(threads)}}
                         for name in functions}}
