"""The function-author recipe: `dynafed-fn new-function NAME` produces a
function that imports the shared runtime, passes its generated tests and is
wired into the kustomize base."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dynafed_client.scaffold import ScaffoldError, new_function

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def repo_copy(tmp_path: Path) -> Path:
    """The parts of the repository a new function touches, copied."""
    for part in ("functions", "knative", "tests/__init__.py", "tests/unit/__init__.py"):
        source = ROOT / part
        target = tmp_path / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy(source, target)
        else:
            target.touch()
    return tmp_path


def test_generated_function_passes_its_own_tests(repo_copy: Path) -> None:
    created = new_function("widget", repo_copy)
    assert {p.relative_to(repo_copy).as_posix() for p in created} >= {
        "functions/widget/app.py", "functions/widget/Dockerfile", "knative/base/widget-service.yaml",
        "tests/unit/test_widget_app.py",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
         "tests/unit/test_widget_app.py"],
        cwd=repo_copy, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(repo_copy), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_generated_service_is_in_the_kustomize_build(repo_copy: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is required for manifest checks")
    new_function("widget", repo_copy)
    built = subprocess.run(["kubectl", "kustomize", str(repo_copy / "knative" / "base")],
                           capture_output=True, text=True, check=True).stdout
    assert "name: widget\n" in built
    assert "registry.example.org/dynafed/dynafed-fn-widget:latest" in built
    dockerfile = (repo_copy / "functions/widget/Dockerfile").read_text()
    assert '"functions.widget.wsgi:app"' in dockerfile


@pytest.mark.parametrize("name", ["Widget", "copy", "runtime", "x", "has-dash", "9lives"])
def test_bad_names_are_refused(repo_copy: Path, name: str) -> None:
    with pytest.raises(ScaffoldError):
        new_function(name, repo_copy)


def test_existing_function_is_not_overwritten(repo_copy: Path) -> None:
    new_function("widget", repo_copy)
    with pytest.raises(ScaffoldError, match="refusing to overwrite"):
        new_function("widget", repo_copy)
