"""``dynafed-fn new-function NAME``: scaffold a function on the shared runtime.

Writes, from the templates beside this module (``{{name}}`` placeholders):

    dynafed_contract/<name>.py      its wire contract (request parser, OpenAPI)
    functions/<name>/                 app.py, service.py, wsgi.py,
                                      gunicorn.conf.py, Dockerfile, requirements.txt
                                      (pinned to requirements.lock's versions)
    knative/base/<name>-service.yaml  its Knative Service (listed in kustomization.yaml)
    tests/unit/test_<name>_app.py     a test skeleton that passes as generated

The generated function answers ``POST /`` with an echo of the validated
request; the author replaces ``service.run`` with the real work.
"""
from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).with_name("templates")
_NAME_RE = re.compile(r"[a-z][a-z0-9]{1,30}")
RESERVED = frozenset({"contract", "runtime", "checksum", "copy"})

#: template file -> destination (relative to the repository root)
FILES: dict[str, str] = {
    "contract.py.tmpl": "dynafed_contract/{{name}}.py",
    "init.py.tmpl": "functions/{{name}}/__init__.py",
    "app.py.tmpl": "functions/{{name}}/app.py",
    "service.py.tmpl": "functions/{{name}}/service.py",
    "wsgi.py.tmpl": "functions/{{name}}/wsgi.py",
    "gunicorn.conf.py.tmpl": "functions/{{name}}/gunicorn.conf.py",
    "Dockerfile.tmpl": "functions/{{name}}/Dockerfile",
    "requirements.txt.tmpl": "functions/{{name}}/requirements.txt",
    "service.yaml.tmpl": "knative/base/{{name}}-service.yaml",
    "test_app.py.tmpl": "tests/unit/test_{{name}}_app.py",
}


class ScaffoldError(ValueError):
    """The name is invalid or the function already exists."""


_LOCK_RE = re.compile(r"\{\{lock:([A-Za-z0-9._-]+)\}\}")


def render(text: str, name: str, locked: dict[str, str] | None = None) -> str:
    """``text`` with the placeholders filled: ``{{name}}`` (and ``{{Name}}``,
    ``{{NAME}}``), and ``{{lock:DIST}}`` with DIST's version in ``locked``."""
    def version(match: re.Match[str]) -> str:
        dist = _canonical(match.group(1))
        if locked is None or dist not in locked:
            raise ScaffoldError(f"{dist} is not in requirements.lock (a template pins it)")
        return locked[dist]

    text = text.replace("{{name}}", name).replace("{{Name}}", name.capitalize()).replace("{{NAME}}", name.upper())
    return _LOCK_RE.sub(version, text)


def _canonical(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def locked_versions(lock: Path) -> dict[str, str]:
    """Distribution -> version of every pin in ``lock`` (requirements.lock)."""
    if not lock.is_file():
        return {}
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", lock.read_text(encoding="utf-8"), re.MULTILINE)
    return {_canonical(dist): version for dist, version in pins}


def new_function(name: str, root: Path) -> list[Path]:
    """Create the files of function ``name`` under repository ``root``; returns them."""
    if not _NAME_RE.fullmatch(name) or name in RESERVED:
        raise ScaffoldError(f"function name must match {_NAME_RE.pattern} and not be one of {sorted(RESERVED)}")
    targets = {tmpl: root / render(dest, name) for tmpl, dest in FILES.items()}
    existing = [str(p.relative_to(root)) for p in targets.values() if p.exists()]
    if existing:
        raise ScaffoldError(f"refusing to overwrite existing files: {', '.join(existing)}")
    locked = locked_versions(root / "requirements.lock")
    rendered = {target: render((TEMPLATES / tmpl).read_text(encoding="utf-8"), name, locked)
                for tmpl, target in targets.items()}  # all of them first: an error writes nothing
    written = []
    for target, text in rendered.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    _register_in_kustomization(root / "knative" / "base" / "kustomization.yaml", name)
    return written


def _register_in_kustomization(path: Path, name: str) -> None:
    """Add the Service to the base kustomization (a text edit, so the comments
    there survive)."""
    text = path.read_text(encoding="utf-8")
    resource = f"  - {name}-service.yaml\n"
    if resource not in text:
        text = text.replace("resources:\n", "resources:\n" + resource, 1)
    path.write_text(text, encoding="utf-8")


def add_parser(subparsers) -> None:  # type: ignore[no-untyped-def]
    """Register ``dynafed-fn new-function``."""
    parser = subparsers.add_parser("new-function", help="scaffold a new function on the shared runtime")
    parser.add_argument("name", help="lowercase name, e.g. scrub")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: .)")
    parser.set_defaults(func=_run)


def _run(args) -> int:  # type: ignore[no-untyped-def]
    import sys

    try:
        files = new_function(args.name, args.root)
    except ScaffoldError as exc:
        print(f"dynafed-fn new-function: {exc}", file=sys.stderr)
        return 2
    for path in files:
        print(f"created {path.relative_to(args.root)}")
    print(f"next: edit functions/{args.name}/service.py, then "
          f".venv/bin/python -m pytest tests/unit/test_{args.name}_app.py")
    return 0
