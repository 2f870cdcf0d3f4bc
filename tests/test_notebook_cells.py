"""The committed notebooks print no stray return values (a cell ending in ``run.save_fig(...)``
saved ``PosixPath('/.../figure.png')`` into every executed copy)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from pruning_core.config import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def _returns_path() -> set[str]:
    """Names of the package's functions and methods annotated to return a ``Path``."""
    names = set()
    for src in (REPO_ROOT / "pruning_core").rglob("*.py"):
        for node in ast.walk(ast.parse(src.read_text())):
            fn = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if fn and node.returns and "Path" in ast.unparse(node.returns):
                names.add(node.name)
    return names


def _code(cell: dict) -> str:
    lines = "".join(cell["source"]).splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_ends_in_a_path(path: Path) -> None:
    returns_path = _returns_path()
    assert "save_fig" in returns_path
    stray = []
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        code = _code(cell)
        body = ast.parse(code).body
        if code.rstrip().endswith(";") or not body or not isinstance(body[-1], ast.Expr):
            continue  # a trailing ";" or a statement displays nothing
        call = body[-1].value
        if isinstance(call, ast.Call):
            fn = call.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if name in returns_path:
                stray.append(f"cell {cell.get('id')}: {ast.unparse(call)}")
    assert not stray, f"{path.name}: cells whose last line displays a Path (end it with ';'): {stray}"
