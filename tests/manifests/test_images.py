"""The function images: Dockerfiles (STYLE.md §10), their requirements, the
build context. Nothing is built here (no container engine on these machines);
the Dockerfiles are parsed and compared with the code and the manifests."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.manifests import checks
from tests.manifests import project_facts as pf

FUNCTIONS = pf.function_names()
#: the packages below the functions that every image ships (pyproject.toml [tool.importlinter])
SHARED_LAYERS = ("dynafed_contract", "dynafed_net", "dynafed_runtime")

# import name -> distribution that provides it (directly or as a dependency of
# a listed distribution).
PROVIDED_BY = {
    "flask": "flask", "werkzeug": "flask", "jinja2": "flask", "itsdangerous": "flask", "click": "flask",
    "boto3": "boto3", "botocore": "boto3", "s3transfer": "boto3", "urllib3": "requests", "certifi": "requests",
    "cloudevents": "cloudevents", "prometheus_client": "prometheus-client",
    "crc32c": "crc32c", "isal": "isal", "requests": "requests", "gunicorn": "gunicorn",
}


def instructions(function: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of functions/<function>/Dockerfile, continuations joined."""
    text = (pf.REPO / "functions" / function / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def requirements(function: str) -> dict[str, str]:
    path = pf.REPO / "functions" / function / "requirements.txt"
    reqs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            reqs[name.strip().lower()] = version.strip() if sep else ""
    return reqs


def test_every_deployed_function_has_an_image():
    """The function set is the tree's (a function added with the recipe is
    checked like the others without editing this file): every package under
    functions/ with a WSGI entry module has a Dockerfile, and the shipped ones are there."""
    with_app = sorted(p.parent.name for p in (pf.REPO / "functions").glob("*/wsgi.py"))
    assert with_app == FUNCTIONS
    assert {"checksum", "copy"} <= set(FUNCTIONS)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_base_image_is_slim_and_pinned_by_digest(function):
    froms = [arg for word, arg in instructions(function) if word == "FROM"]
    assert len(froms) == 1
    assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", froms[0]), froms[0]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_cmd_is_exactly_the_documented_gunicorn_command(function):
    cmds = [arg for word, arg in instructions(function) if word == "CMD"]
    assert len(cmds) == 1
    cmd = json.loads(cmds[0])  # exec form: a JSON array (no shell, gunicorn gets SIGTERM)
    assert cmd == pf.documented_command(function)
    stack = pf.stack_command(function)
    if stack is not None:  # the local stack runs the same thing (argv[0] is a path to gunicorn)
        assert Path(stack[0]).name == cmd[0] and stack[1:] == cmd[1:]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_runs_as_the_manifests_numeric_non_root_user(builds, facts, function):
    users = [arg for word, arg in instructions(function) if word == "USER"]
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or gid.isdigit())
    assert int(uid) == facts.uid
    for svc in checks.ksvcs(builds["base"]):
        if checks.name(svc) == function:
            assert checks.container(svc)["securityContext"]["runAsUser"] == int(uid)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_env_workdir_and_port(builds, function):
    ins = instructions(function)
    env = " ".join(arg for word, arg in ins if word == "ENV")
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "HOME=/tmp"):
        assert setting in env
    assert ("WORKDIR", "/app") in ins
    exposed = [int(arg) for word, arg in ins if word == "EXPOSE"]
    svc = next(s for s in checks.ksvcs(builds["base"]) if checks.name(s) == function)
    assert exposed == [checks.container(svc)["ports"][0]["containerPort"]]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_copies_only_this_function_and_installs_deps_first(function):
    ins = instructions(function)
    copies = [arg.split() for word, arg in ins if word == "COPY"]
    sources = [c[0] for c in copies]
    assert sources[0] == f"functions/{function}/requirements.txt"
    run_at = next(i for i, (w, a) in enumerate(ins) if w == "RUN" and "requirements.txt" in a)
    first_code = next(i for i, (w, a) in enumerate(ins) if w == "COPY" and "requirements.txt" not in a)
    assert run_at < first_code, "dependencies get their own layer, before the code"
    allowed = {"functions/__init__.py", *(f"{layer}/" for layer in SHARED_LAYERS), f"functions/{function}/"}
    assert set(sources[1:]) == allowed


@pytest.mark.parametrize("function", FUNCTIONS)
def test_requirements_are_pinned_and_cover_every_import(function):
    reqs = requirements(function)
    assert reqs and all(reqs.values()), "every requirement pinned with =="
    assert "gunicorn" in reqs
    fn_dir = pf.REPO / "functions" / function
    code = [p for d in SHARED_LAYERS for p in (pf.REPO / d).rglob("*.py")]
    code += list(fn_dir.rglob("*.py"))
    own_packages = {"functions", *SHARED_LAYERS, "__future__"}
    imported = pf.imported_top_modules(code) - set(sys.stdlib_module_names) - own_packages
    unknown = imported - set(PROVIDED_BY)
    assert unknown == set(), f"imports with no known distribution (add to PROVIDED_BY and requirements): {unknown}"
    missing = {m for m in imported if PROVIDED_BY[m] not in reqs}
    assert missing == set(), f"functions/{function}/requirements.txt lacks what these imports need: {missing}"


#: what an image installs: the server side and the contract under it
IMAGE_DISTS = ("dists/functions/pyproject.toml", "dists/contract/pyproject.toml")
#: every pyproject of the repository (docs/internals.md "Distributions")
PYPROJECTS = ("pyproject.toml", "dists/contract/pyproject.toml", "dists/functions/pyproject.toml",
              "dists/client/pyproject.toml")


def projects(*paths: str) -> list[dict]:
    import tomllib

    return [tomllib.loads((pf.REPO / path).read_text(encoding="utf-8"))["project"] for path in paths]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_requirements_satisfy_the_project_dependencies(function):
    """The image pins versions the distributions it stands for declare they
    support (dists/functions and dists/contract pyproject.toml)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    declared = {canonicalize_name(r.name): r for project in projects(*IMAGE_DISTS)
                for r in map(Requirement, project["dependencies"])}
    for dist, version in requirements(function).items():
        req = declared.get(canonicalize_name(dist))
        assert req is not None, f"{dist} is not a dependency of dynafed-functions or dynafed-contract"
        assert req.specifier.contains(version, prereleases=True), f"{dist}=={version} violates {req}"


def test_dockerignore_keeps_the_context_to_functions():
    lines = [ln.strip() for ln in (pf.REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*" and "!functions/" in lines
    assert any("__pycache__" in ln for ln in lines)


def locked_versions() -> dict[str, str]:
    """name -> version of every package in requirements.lock (the environment the suite runs in)."""
    from packaging.utils import canonicalize_name

    text = (pf.REPO / "requirements.lock").read_text(encoding="utf-8")
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", text, flags=re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pins}


def test_lock_pins_every_package_with_hashes():
    """``make install`` runs pip with ``--require-hashes``: each entry needs
    an exact version and at least one hash, and the lock must satisfy every
    dependency every pyproject.toml declares (all extras; the repository's own
    distributions are installed from the tree, not locked), or pip check fails."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    text = (pf.REPO / "requirements.lock").read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    for entry in entries:
        if entry.startswith("#"):
            continue
        assert re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+", entry), entry[:80]
        assert "--hash=sha256:" in entry, f"no hash for {entry.splitlines()[0]}"
    locked = locked_versions()
    ours = {project["name"] for project in projects(*PYPROJECTS)}
    declared = [d for project in projects(*PYPROJECTS) for d in project.get("dependencies", [])]
    declared += [d for project in projects(*PYPROJECTS)
                 for extra in project.get("optional-dependencies", {}).values() for d in extra]
    for req in map(Requirement, declared):
        name = canonicalize_name(req.name)
        if name in ours:
            continue
        assert name in locked, f"{req} is not in requirements.lock (run make lock)"
        assert req.specifier.contains(locked[name], prereleases=True), f"lock has {name}=={locked[name]}, not {req}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_image_pins_equal_the_lock(function):
    """An image runs the versions the suite ran against: every pin in its
    requirements.txt is the version requirements.lock holds."""
    from packaging.utils import canonicalize_name

    locked = locked_versions()
    for dist, version in requirements(function).items():
        name = canonicalize_name(dist)
        assert name in locked, f"functions/{function}/requirements.txt pins {dist}, which the lock does not hold"
        assert locked[name] == version, f"functions/{function}: {dist}=={version}, the lock has {locked[name]}"


#: the engine's accelerators (dynafed_runtime/digests.py; a function refuses
#: to start without them) -> the distribution that provides each
ACCELERATORS = {"zlib_ng": "zlib-ng", "isal": "isal", "crc32c": "crc32c"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_images_ship_the_digest_implementations_the_suite_and_bench_measure(function):
    """Measure what ships: every accelerator the digest engine prefers is
    installed in each image, so its ``IMPLEMENTATIONS`` there equal the ones
    the tests and ``make bench`` ran (the bench reports both)."""
    import ast

    source = (pf.REPO / "dynafed_runtime" / "digests.py").read_text(encoding="utf-8")
    optional = {node.module.split(".")[0] for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.module}
    optional |= {alias.name.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import)
                 for alias in node.names}
    used = {m for m in ACCELERATORS if m in optional}
    assert used == set(ACCELERATORS), f"digests.py no longer imports {set(ACCELERATORS) - used}: update ACCELERATORS"
    reqs = requirements(function)
    missing = {ACCELERATORS[m] for m in used if ACCELERATORS[m] not in reqs}
    assert missing == set(), f"functions/{function}/requirements.txt lacks {missing}: the image would hash slower " \
                             "than what was measured"
