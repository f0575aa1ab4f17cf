"""What the rest of the project says the manifests must agree with: the app's
endpoints and environment variables, the container command, the event types.

Each fact is read from the code when that code exists (so a drift between the
apps and the manifests fails a test) and otherwise from the agreed contract
(docs/internals.md, docs/DESIGN), saying which source it used.
"""
from __future__ import annotations

import ast
import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
KNATIVE = REPO / "knative"
OVERLAYS = sorted(p.parent.name for p in (KNATIVE / "overlays").glob("*/kustomization.yaml"))

# The function HTTP API (DESIGN.md contract): used when the runtime is absent.
CONTRACT_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/openapi.json"})
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"

# Settings agreed for a function before its code exists (the copy slice is the
# team's copy design); checked against the code as soon as the code exists.
AGREED_FUNCTION_SETTINGS = {"copy": frozenset({"SLICE_SECONDS"})}
COPY_SLICE_DEFAULT_S = 240
# CompleteMultipartUpload, verification and the final ndjson line after a slice.
COPY_FINALISATION_MARGIN_S = 30
# gfal2's checksum timeout (PROTOCOLS.md §2): a checksum client waits this long.
GFAL2_CHECKSUM_TIMEOUT_S = 300
# The copy ndjson stream's progress cadence (about one line per second).
COPY_PROGRESS_INTERVAL_S = 1


def function_names() -> list[str]:
    return sorted(p.parent.name for p in (REPO / "functions").glob("*/Dockerfile"))


def has_code(function: str) -> bool:
    return (REPO / "functions" / function / "app.py").is_file()


def uses_stores(function: str) -> bool:
    """Whether the function's app reads S3 stores (``USES_STORES`` in its app
    module, default True): one that does not must get no stores Secret."""
    if not has_code(function):
        return True
    try:
        module = importlib.import_module(f"functions.{function}.app")
    except Exception:  # its deps missing: assume the common case
        return True
    return bool(getattr(module, "USES_STORES", True))


def app_endpoints() -> tuple[frozenset[str], str]:
    """Paths the function apps serve, and where that list came from."""
    try:
        module = importlib.import_module("dynafed_runtime.app")
        open_paths = frozenset(module.OPEN_PATHS)
    except Exception:  # runtime not written yet or its deps missing
        return CONTRACT_PATHS, "the DESIGN.md contract"
    return open_paths | {"/"}, "dynafed_runtime.app.OPEN_PATHS"


_UPPER_LITERAL = re.compile(r"""["']([A-Z][A-Z0-9_]{2,})["']""")
_ANY_LITERAL = re.compile(r"""["']([A-Za-z][A-Za-z0-9_]{2,})["']""")


def _py_text(*dirs: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for d in dirs if d.is_dir() for p in sorted(d.rglob("*.py")))


def known_env(function: str) -> tuple[set[str], set[str], str]:
    """(exact names, function-specific setting suffixes, source) the app knows.

    Exact names are upper-case string literals in dynafed_contract, runtime
    and the function's package. Function-specific settings are
    DYNAFED_FN_<FUNCTION>_<NAME> read through Config.setting("NAME"): NAME must
    appear as a literal in the function's own package.
    """
    fn_dir = REPO / "functions" / function
    shared = _py_text(REPO / "dynafed_runtime", REPO / "dynafed_contract", REPO / "dynafed_net")
    own = _py_text(fn_dir)
    names = set(_UPPER_LITERAL.findall(shared + own))
    if has_code(function):
        suffixes = {lit.upper() for lit in _ANY_LITERAL.findall(own)}
        return names, suffixes, f"functions/{function} source"
    internals = (REPO / "docs" / "internals.md").read_text(encoding="utf-8")
    names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", internals))
    return names, set(AGREED_FUNCTION_SETTINGS.get(function, ())), "docs/internals.md + agreed settings"


def documented_command(function: str) -> list[str]:
    """The container command docs/internals.md prescribes, for ``function``."""
    text = (REPO / "docs" / "internals.md").read_text(encoding="utf-8")
    m = re.search(r"^\s*(gunicorn -c functions/<name>/gunicorn\.conf\.py functions\.<name>\.wsgi:app)\s*$",
                  text, re.MULTILINE)
    assert m, "docs/internals.md no longer states the gunicorn command"
    return shlex.split(m.group(1).replace("<name>", function))


def stack_command(function: str) -> list[str] | None:
    """The command the local stack runs (argv[0] = path of gunicorn), if available."""
    try:
        services = importlib.import_module("dynafed_client.stack.services")
        return list(services.function_command(function, REPO))
    except Exception:
        return None


def event_types() -> dict[str, Any]:
    return yaml.safe_load((KNATIVE / "event-types.yaml").read_text(encoding="utf-8"))


def flat(mapping_of_lists: dict[str, list[str]]) -> set[str]:
    return {t for values in mapping_of_lists.values() for t in values}


def imported_top_modules(paths: list[Path]) -> set[str]:
    """Top-level modules imported anywhere in ``paths`` (lazy imports included),
    except imports guarded by ``except ImportError`` (optional accelerators)."""
    found: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        optional: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
                for inner in node.body:
                    optional.update(id(n) for n in ast.walk(inner))
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = []
    if handler.type is None:
        return False
    for n in ast.walk(handler.type):
        if isinstance(n, ast.Name):
            names.append(n.id)
    return bool({"ImportError", "ModuleNotFoundError"} & set(names))
