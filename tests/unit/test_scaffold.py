"""The function-author recipe: `dynafed-fn new-function NAME` produces a
function that imports the shared runtime, passes its generated tests and is
wired into the kustomize base."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dynafed_client.scaffold import ScaffoldError, new_function

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def repo_copy(tmp_path: Path) -> Path:
    """The parts of the repository a new function touches, copied, with the
    layers under it (the editable install puts the work tree on sys.path
    after PYTHONPATH: the copy's packages, a new contract module included, win)."""
    for part in ("dynafed_contract", "dynafed_net", "dynafed_runtime", "functions", "knative", "requirements.lock",
                 "tests/__init__.py", "tests/unit/__init__.py"):
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


def test_the_manifest_and_image_suites_pass_with_a_generated_function(tmp_path: Path) -> None:
    """The recipe leaves the suite green: in a copy of the tracked tree, after
    ``new_function("thumbnail")``, the manifest and image suites (which derive
    the function set from the tree) pass with the new function among those
    they check, and so does the parser/schema agreement test of its contract."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    copy = tmp_path / "repo"
    for name in tracked.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    new_function("thumbnail", copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {"PYTHONPATH": str(copy)}

    def pytest_in_copy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                              cwd=copy, capture_output=True, text=True, timeout=600, env=env)

    collected = pytest_in_copy("--collect-only", "tests/manifests/test_images.py")
    assert "[thumbnail]" in collected.stdout, collected.stdout[-2000:]
    result = pytest_in_copy("tests/manifests")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    # its contract's parser and /openapi.json schema come from one Body: the agreement test finds it
    agreement = pytest_in_copy("tests/fuzz/test_schema_agreement.py", "-k", "thumbnail", "-vv")
    assert "[thumbnail.REQUEST] PASSED" in agreement.stdout, agreement.stdout[-4000:] + agreement.stderr[-2000:]
