"""The package's shape: imports point one way along the data flow, and there is no cycle.

Every import is read, those inside functions included, so a cycle cannot hide in a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "pruning_core"

STAGES = (
    "pruning_core.config",
    "pruning_core.devices",
    "pruning_core.stats",
    "pruning_core.runs",
    "pruning_core.data",
    "pruning_core.models",
    "pruning_core.pruning",
    "pruning_core.train",
    "pruning_core.rl",
    "pruning_core.methods",
    "pruning_core.studies",
    "pruning_core.figures",
    "pruning_core.summary",
    "pruning_core.verify",
    "pruning_core.bench_neon",
    "pruning_core.bench",
    "pruning_core.cli",
    "pruning_core.__main__",
)
"""The stages along the data flow: a module may import its own stage or an earlier one."""


def module_name(path: Path, root: Path = PKG) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every pruning_core module ``path`` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            if t in modules:
                found.add(t)
    return found


def import_graph(root: Path = PKG) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (itself, its parents and children left out)."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    mods = set(files)
    graph = {}
    for m, p in files.items():
        graph[m] = {
            t for t in imports_of(p, mods)
            if t != m and not m.startswith(t + ".") and not t.startswith(m + ".")
        }  # fmt: skip
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (c := visit(t)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def stage(module: str) -> int:
    best = max((s for s in STAGES if module == s or module.startswith(s + ".")), key=len, default=None)
    return STAGES.index(best) if best else len(STAGES)


def test_no_import_cycle() -> None:
    assert find_cycle(import_graph()) is None, f"import cycle: {find_cycle(import_graph())}"


def test_imports_follow_the_data_flow() -> None:
    upward = [
        f"{m} (stage {STAGES[stage(m)] if stage(m) < len(STAGES) else 'top'}) imports {t}"
        for m, targets in import_graph().items()
        for t in targets
        if m != "pruning_core" and stage(t) > stage(m)
    ]
    assert not upward, "a lower stage imports a higher one:\n" + "\n".join(sorted(upward))


def test_every_module_belongs_to_a_stage() -> None:
    unplaced = [m for m in import_graph() if m != "pruning_core" and stage(m) == len(STAGES)]
    assert not unplaced, f"modules outside every stage of STAGES: {unplaced}"


def test_cycle_finder_sees_imports_inside_functions(tmp_path: Path) -> None:
    pkg = tmp_path / "pruning_core"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pruning_core.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from pruning_core.a import g\n    return g\n")
    assert find_cycle(import_graph(pkg)) in (
        ["pruning_core.a", "pruning_core.b", "pruning_core.a"],
        ["pruning_core.b", "pruning_core.a", "pruning_core.b"],
    )


@pytest.mark.parametrize("env_id", ["pruning_core/PuRL-v0", "pruning_core/Neon-v0"])
def test_import_pruning_core_registers_the_environments(env_id: str) -> None:
    code = f"import gymnasium, pruning_core; gymnasium.spec({env_id!r})"
    subprocess.run([sys.executable, "-c", code], check=True)
