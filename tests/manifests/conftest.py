"""Fixtures for the offline manifest tests: rendered overlays, schema dir."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.manifests import checks
from tests.manifests import project_facts as pf


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def render(path: Path) -> list[dict]:
    """`kubectl kustomize PATH` as a list of objects."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is required for the manifest tests (kubectl kustomize)")
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        pytest.fail(f"kubectl kustomize {path} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="session")
def builds() -> dict[str, list[dict]]:
    """Every overlay (and the base), rendered once per session."""
    rendered = {"base": render(pf.KNATIVE / "base")}
    for overlay in pf.OVERLAYS:
        rendered[overlay] = render(pf.KNATIVE / "overlays" / overlay)
    return rendered


@pytest.fixture(scope="session")
def facts() -> checks.Facts:
    return checks.default_facts()


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    """Knative CRD JSON schemas. Missing = fail when they must exist (CI, an
    explicit DYNAFED_FN_KNATIVE_SCHEMAS, or a shared/ next to the repo); skip only
    on a bare clone outside the workplace."""
    explicit = os.environ.get("DYNAFED_FN_KNATIVE_SCHEMAS")
    shared = pf.REPO.parent / "shared"
    if not explicit and not shared.is_dir() and Path("/work/shared").is_dir():
        shared = Path("/work/shared")  # a clone made elsewhere on a workplace machine
    path = Path(explicit) if explicit else shared / "schemas" / "knative"
    if (path / "serving.knative.dev" / "service_v1.json").is_file():
        return path
    why = f"Knative CRD schemas not found at {path}"
    if explicit or _truthy(os.environ.get("CI")) or shared.is_dir():
        pytest.fail(why + " (they must exist here: set DYNAFED_FN_KNATIVE_SCHEMAS or restore shared/)")
    pytest.skip(why)
