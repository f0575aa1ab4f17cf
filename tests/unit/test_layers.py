"""The layer contracts in pyproject.toml ([tool.importlinter], run by
``make lint``) hold on the tree, and each one fails when the edge it forbids
is added: a copy of the packages gets one bad import and lint-imports must
name the broken contract (a contract that cannot fail would prove nothing)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["dynafed_contract", "dynafed_net", "dynafed_runtime", "functions", "dynafed_client", "loadtest", "bench"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, text=True,
                          capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("layers")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_tree_keeps_every_contract(pristine: Path) -> None:
    result = _lint(pristine)
    assert result.returncode == 0, result.stdout + result.stderr
    verdicts = _verdicts(result.stdout)
    assert len(verdicts) == 8 and {verdict for _, verdict in verdicts} == {"KEPT"}, result.stdout


@pytest.mark.parametrize(("module", "bad_import", "contract"), [
    ("dynafed_contract/fields.py", "import dynafed_runtime.errors", "Server side: each function above the runtime"),
    ("dynafed_runtime/errors.py", "import functions.copy.app", "Server side: each function above the runtime"),
    ("dynafed_net/trust.py", "import dynafed_runtime.config", "Server side: each function above the runtime"),
    ("functions/checksum/app.py", "import functions.copy.verify", "No function imports another"),
    ("functions/scrub/app.py", "import functions.filersource.app", "No function imports another"),
    ("dynafed_client/refs.py", "import dynafed_runtime.s3", "The client imports the contract and outgoing"),
    ("dynafed_client/gateway/app.py", "import functions.checksum.app", "The client imports the contract and outgoing"),
    ("dynafed_contract/events.py", "import requests", "The contract is pure data"),
    ("dynafed_client/client.py", "import dynafed_client.hooks.filepull", "Client faces"),
    ("dynafed_client/config.py", "import dynafed_client.cli", "Client faces"),
    ("dynafed_client/hooks/checksum.py", "import dynafed_client.gateway.auth", "The gateway, the hooks"),
    ("dynafed_runtime/app.py", "import bench.cpu", "Nothing that ships imports the load test"),
    ("dynafed_client/serving.py", "import gunicorn.app.base", "The client needs no server package"),
    ("dynafed_client/progress.py", "import crc32c", "The client needs no server package"),
    ("dynafed_client/events/app.py", "import flask", "The client needs no server package"),
])
def test_each_contract_fails_on_the_edge_it_forbids(pristine: Path, tmp_path: Path,
                                                    module: str, bad_import: str, contract: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine, tree)
    target = tree / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{bad_import}  # noqa\n", encoding="utf-8")
    result = _lint(tree)
    assert result.returncode != 0
    broken = [name for name, verdict in _verdicts(result.stdout) if verdict == "BROKEN"]
    # an edge may break others through the imports it drags in; the one it forbids must be among them
    assert [name for name in broken if name.startswith(contract)], result.stdout


def _verdicts(report: str) -> list[tuple[str, str]]:
    """(contract name, KEPT/BROKEN) from lint-imports' report, whose lines wrap long names."""
    listing = report.split("dependencies.", 1)[1].split("Contracts:", 1)[0]
    words = " ".join(line for line in listing.splitlines() if not set(line) <= {"-", " "})
    verdicts = re.findall(r"(.+?) (KEPT|BROKEN)\b(?: \(\d+ ignored imports?\))?", words)
    return [(name.strip(), verdict) for name, verdict in verdicts]
