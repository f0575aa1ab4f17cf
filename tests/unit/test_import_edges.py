"""No hidden edges inside dynafed_client (issue 14, item 5).

The hooks and the legacy backend read the stores file and make S3 clients
through ``dynafed_client.storefile``, below them and the gateway, so none of
them reaches into another's internals, and no package reaches another
through an import hidden in a function body. Checked on the source (ast),
so a new function-level edge fails here rather than staying invisible.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dynafed_client"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported dynafed_client module, whether the import sits inside a function) of one file."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("dynafed_client"):
                found.extend((f"{child.module}.{alias.name}", inner) for alias in child.names)
            elif isinstance(child, ast.Import):
                found.extend((alias.name, inner) for alias in child.names if alias.name.startswith("dynafed_client"))
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


@pytest.mark.parametrize("package", ["hooks", "legacy"])
def test_hooks_and_legacy_import_nothing_of_the_gateway(package: str) -> None:
    edges = [(path.name, module) for path in (PACKAGE / package).rglob("*.py")
             for module, _ in _imports(path) if module.startswith("dynafed_client.gateway")]
    assert edges == []


@pytest.mark.parametrize("package", ["gateway", "hooks", "legacy"])
def test_no_function_level_import_reaches_another_package(package: str) -> None:
    hidden = [(path.name, module) for path in (PACKAGE / package).rglob("*.py")
              for module, nested in _imports(path)
              if nested and module.split(".")[1] in ("gateway", "hooks", "legacy", "storefile")
              and module.split(".")[1] != package]
    assert hidden == []
