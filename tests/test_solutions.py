"""The exercises' expected answers: one per exercise of every notebook, and the worked one runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))


def _numbered(text: str) -> list[int]:
    """The numbers of a markdown list's top-level items ("1. ...")."""
    return [int(m) for m in re.findall(r"^(\d+)\. ", text, flags=re.MULTILINE)]


def _exercises(path: Path) -> list[int]:
    cells = json.loads(path.read_text())["cells"]
    text = "".join("".join(c["source"]) for c in cells[-2:] if c["cell_type"] == "markdown")
    return _numbered(text[text.index("Exercises"):])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_an_answer(path: Path) -> None:
    page = ROOT / "solutions" / f"{path.stem}.md"
    assert page.exists(), f"add solutions/{path.stem}.md with one answer per exercise"
    exercises, answers = _exercises(path), _numbered(page.read_text())
    assert exercises == list(range(1, len(exercises) + 1)), f"{path.name}: exercises misnumbered"
    assert answers == exercises, (
        f"solutions/{path.stem}.md answers {answers}, the notebook asks {exercises}"
    )
    assert f"({path.stem}.md)" in (ROOT / "solutions" / "README.md").read_text()


@pytest.mark.notebook
def test_worked_solution_of_01_runs_at_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "PROFILE": "smoke", "PRUNING_CORE_CACHE": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, str(ROOT / "solutions" / "01_mdp_design.py")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "per_step_return" in out.stdout and "episodic" in out.stdout
    match = re.search(r"pruned -> ([0-9.]+) after 3 epochs", out.stdout)
    assert match and float(match.group(1)) > 0.5, out.stdout  # far above chance (0.1)
