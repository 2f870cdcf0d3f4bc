"""Notebook conventions, and a papermill smoke run of every notebook at PROFILE=smoke.

The smoke runs check that each notebook runs top to bottom in a fresh kernel and records what it
promises in ``summary.json`` (finite numbers, the documented keys) plus at least one figure.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from pruning_core.config import results_root

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))

REQUIRED_SUMMARY_KEYS: dict[str, set[str]] = {
    "01_mdp_design": {"dqn_final_return", "random_return", "seeds"},
    "02_resnet50_purl": {
        "dense_top1", "purl_top1", "purl_sparsity_prunable", "purl_sparsity_total", "gmp_top1",
        "uniform_top1", "search_episodes", "search_seconds", "checkpoint",
    },
    "03_mobilenetv2_purl": {
        "dense_top1", "purl_top1", "purl_sparsity_prunable", "purl_sparsity_total", "gmp_top1",
        "uniform_top1", "search_episodes", "search_seconds", "checkpoint",
    },
    "04_neon_dense_study": {"n_datasets", "mean_compression", "mean_delta_acc_pp", "best_C"},
    "05_ablations": {"episodes_to_plateau_step", "episodes_to_plateau_episodic"},
}  # fmt: skip


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _finite(v: object) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    return True


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_conventions(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    assert cells[0].cell_type == "markdown", "a notebook opens with what it shows and why"
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    tree = ast.parse(tagged[0].source)
    for node in tree.body:
        assert isinstance(node, ast.Assign), "the parameters cell holds assignments only"
        assert isinstance(node.value, ast.Constant), f"plain values only: {ast.unparse(node)}"
    names = {t.id for n in tree.body for t in n.targets}  # type: ignore[attr-defined]
    assert "PROFILE" in names
    assert not any(c.get("outputs") for c in cells if c.cell_type == "code"), (
        "commit without outputs"
    )
    tail = " ".join(c.source for c in cells[-3:] if c.cell_type == "markdown").lower()
    assert "exercise" in tail, "a notebook ends with what the results mean and a few exercises"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_smoke_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # one OpenMP thread in the kernel: on a busy 2-core machine two threads thrash (10x slower)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / path.name
    pm.execute_notebook(
        str(path),
        str(out),
        parameters={"PROFILE": "smoke"},
        kernel_name="python3",
        cwd=str(NOTEBOOK_DIR),
        progress_bar=False,
    )
    folder = results_root() / "smoke" / path.stem
    summary = json.loads((folder / "summary.json").read_text())
    missing = REQUIRED_SUMMARY_KEYS.get(path.stem, set()) - set(summary)
    assert not missing, f"summary.json lacks {missing}"
    assert _finite(summary)
    assert list((folder / "figures").glob("*.png")), "the notebook saves its figures"
    config = json.loads((folder / "config.json").read_text())
    assert config["profile"] == "smoke" and "wall_seconds" in config
