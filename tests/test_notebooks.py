"""Notebook conventions, and a papermill smoke run of every notebook at PROFILE=smoke.

The committed notebooks are the source (edited in JupyterLab, run as they are by papermill), so
the conventions test checks that each is committed clean: no outputs or execution counts, no
widget or execution metadata, unique cell ids, and one ``parameters`` cell of plain assignments
that sets ``PROFILE``. The checks live in :func:`notebook_problems`, which is also run on
deliberately bad notebooks to show that it catches each problem.

The smoke runs check that each notebook runs top to bottom in a fresh kernel and records what it
promises in ``summary.json`` (finite numbers, the documented keys) plus at least one figure.
"""

from __future__ import annotations

import ast
import json
import math
import os
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from pruning_core.config import results_root

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))

REQUIRED_SUMMARY_KEYS: dict[str, set[str]] = {
    "01_mdp_design": {"dqn_final_return", "random_return", "seeds"},
    **{
        stem: {
            "dataset", "n_test", "seeds", "dense_top1", "purl_top1", "purl_sparsity_prunable",
            "purl_drop_pp", "dense_layers", "paired", "torch_threads", "checkpoint",
            "checkpoint_loader", "dqn_episodes", "reward_rows", "meets_target_accuracy_share",
            "sparsity_sd_pp", "best_uniform_alpha", "min_detectable_pp",
        }
        for stem in ("02_resnet50_purl", "03_mobilenetv2_purl")
    },
    "04_neon_dense_study": {
        "n_datasets", "mean_compression", "mean_delta_acc_pp", "best_C", "per_C", "baselines",
        "shipped_agent_unseen", "goals",
    },
    "05_ablations": {"reward_timing", "random_search_vs_dqn"},
}  # fmt: skip

TIMING_KEYS = {"estimator", "episodes_to_level_step", "episodes_to_level_step_ci95",
               "episodes_to_level_episodic", "episodes_to_level_episodic_ci95", "ratio",
               "ratio_ci95", "censored_share_step", "censored_share_episodic",
               "horizon_episodic", "horizon_rule"}  # fmt: skip
"""What notebook 05's ``reward_timing`` entries hold (issue 26 item 7: the Kaplan-Meier estimate)."""

NEON_PER_C_KEYS = {"mean_compression", "mean_delta_acc_pp", "share_drop_over_C"}
"""What notebook 04's summary holds for each C: of the agents (with ``policy_entropy``), of each
baseline (``baselines.<name>.per_C``) and of the shipped agents on their held-out group."""


def neon_summary_problems(summary: dict, C_values: list[str]) -> list[str]:
    """What notebook 04's ``summary.json`` lacks of its nested keys (per C, per baseline, the
    shipped agents on unseen datasets)."""
    out = []
    agent_keys = NEON_PER_C_KEYS | {"policy_entropy"}
    for C in C_values:
        if missing := agent_keys - set(summary.get("per_C", {}).get(C, {})):
            out.append(f"per_C.{C} lacks {sorted(missing)}")
        for name, b in summary.get("baselines", {}).items():
            if missing := NEON_PER_C_KEYS - set(b.get("per_C", {}).get(C, {})):
                out.append(f"baselines.{name}.per_C.{C} lacks {sorted(missing)}")
        shipped = summary.get("shipped_agent_unseen", {})
        if missing := NEON_PER_C_KEYS - set(shipped.get("per_C", {}).get(C, {})):
            out.append(f"shipped_agent_unseen.per_C.{C} lacks {sorted(missing)}")
    if not summary.get("baselines"):
        out.append("no baselines")
    if not summary.get("shipped_agent_unseen", {}).get("datasets"):
        out.append("shipped_agent_unseen lacks datasets")
    return out


PAIRED_KEYS = {"sparsity", "purl_sparsity", "p_holm", "min_detectable_pp", "ci95", "p"}
"""What each ``paired`` entry of notebooks 02 / 03 holds (issue 26 item 5)."""


def purl_summary_problems(summary: dict) -> list[str]:
    """What notebook 02's / 03's ``summary.json`` lacks: paired entries' keys, random search at
    PuRL's sparsity, the best uniform alpha's fields."""
    out = [f"paired.{name} lacks {sorted(PAIRED_KEYS - set(p))}"
           for name, p in summary.get("paired", {}).items() if PAIRED_KEYS - set(p)]  # fmt: skip
    rs = summary.get("paired", {}).get("random search")
    if rs is None:
        out.append("paired lacks random search")
    elif abs(rs["sparsity"] - rs["purl_sparsity"]) > 2e-3:
        out.append(f"random search at {rs['sparsity']:.4f}, PuRL at {rs['purl_sparsity']:.4f}")
    if {"alpha", "sparsity", "top1"} - set(summary.get("best_uniform_alpha") or {}):
        out.append("best_uniform_alpha lacks alpha, sparsity or top1")
    return out


def test_purl_summary_problems_catches_unequal_sparsity() -> None:
    good = {"paired": {"random search": {k: 0.5 for k in PAIRED_KEYS}},
            "best_uniform_alpha": {"alpha": 1.0, "sparsity": 0.6, "top1": 0.7}}  # fmt: skip
    assert purl_summary_problems(good) == []
    bad = {**good, "paired": {"random search": {**good["paired"]["random search"], "sparsity": 0.4}}}
    assert purl_summary_problems(bad) == ["random search at 0.4000, PuRL at 0.5000"]


def test_neon_summary_problems_catches_a_missing_key() -> None:
    per = {"mean_compression": 2.0, "mean_delta_acc_pp": -0.1, "share_drop_over_C": 0.0}
    good = {
        "per_C": {"1": {**per, "policy_entropy": 0.5}},
        "baselines": {"uniform": {"per_C": {"1": per}}},
        "shipped_agent_unseen": {"datasets": ["spam7"], "per_C": {"1": per}},
    }
    assert neon_summary_problems(good, ["1"]) == []
    bad = {**good, "per_C": {"1": per}}
    assert neon_summary_problems(bad, ["1"]) == ["per_C.1 lacks ['policy_entropy']"]
    assert "shipped_agent_unseen lacks datasets" in neon_summary_problems(
        {**good, "shipped_agent_unseen": {"per_C": {"1": per}}}, ["1"]
    )


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


NOTEBOOK_METADATA_NOT_COMMITTED = ("widgets", "papermill", "signature")
"""Notebook metadata of a run or of widgets (nbstripout drops ``widgets`` and ``signature``)."""
CELL_METADATA_NOT_COMMITTED = (
    "execution", "ExecuteTime", "papermill", "collapsed", "scrolled", "heading_collapsed", "hidden",
)  # fmt: skip
"""Cell metadata of a run or of the view (nbstripout's defaults, plus papermill's)."""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook as committed: ``nbformat.read`` would repair missing or duplicate cell ids."""
    return nbformat.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _source(cell: dict) -> str:
    """A cell's source; on disk it may be a list of lines."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _parameters_problems(source: str) -> list[str]:
    """What is wrong with the parameters cell: plain assignments only, one of them PROFILE."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        return [f"the parameters cell does not parse: {e}"]
    problems = []
    names = set()
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            problems.append(f"the parameters cell holds assignments only: {ast.unparse(node)}")
            continue
        if not isinstance(node.value, ast.Constant):
            problems.append(f"plain values only: {ast.unparse(node)}")
        names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    if "PROFILE" not in names:
        problems.append("the parameters cell sets PROFILE")
    return problems


def notebook_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Every way ``nb`` breaks the notebook conventions; empty for a clean source notebook."""
    problems = []
    cells = nb.get("cells", [])
    if not cells or cells[0].get("cell_type") != "markdown":
        problems.append("a notebook opens with what it shows and why")
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        problems.append(f"exactly one cell tagged 'parameters' (found {len(tagged)})")
    else:
        problems += _parameters_problems(_source(tagged[0]))
    ids = [c.get("id") for c in cells]
    if not all(ids) or len(set(ids)) != len(ids):
        problems.append("every cell has an id of its own (nbformat >= 4.5)")
    for i, c in enumerate(cells):
        if c.get("cell_type") == "code":
            if c.get("outputs"):
                problems.append(f"commit without outputs (cell {i})")
            if c.get("execution_count") is not None:
                problems.append(f"commit without execution counts (cell {i})")
        meta = c.get("metadata", {})
        if "injected-parameters" in meta.get("tags", []):
            problems.append(f"papermill's injected-parameters cell is not committed (cell {i})")
        extra = sorted(k for k in CELL_METADATA_NOT_COMMITTED if k in meta)
        if extra:
            problems.append(f"commit without execution or view metadata {extra} (cell {i})")
    extra = sorted(k for k in NOTEBOOK_METADATA_NOT_COMMITTED if k in nb.get("metadata", {}))
    if extra:
        problems.append(f"commit without widget or run metadata {extra}")
    tail = " ".join(_source(c) for c in cells[-3:] if c.get("cell_type") == "markdown")
    if "exercise" not in tail.lower():
        problems.append("a notebook ends with what the results mean and a few exercises")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_conventions(path: Path) -> None:
    problems = notebook_problems(read_notebook(path))
    assert not problems, f"{path.name}: " + "; ".join(problems)


def _clean_notebook() -> nbformat.NotebookNode:
    """A minimal notebook that keeps every convention."""
    nb = new_notebook(
        cells=[
            new_markdown_cell("# What this notebook shows, and why"),
            new_code_cell('PROFILE = "cpu"\nSEED = 0', metadata={"tags": ["parameters"]}),
            new_code_cell("print(PROFILE, SEED)"),
            new_markdown_cell("## What the results mean\n\n## Exercises\n\n1. Change `SEED`."),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def _with_outputs(nb: nbformat.NotebookNode) -> None:
    nb.cells[2].outputs = [new_output("stream", name="stdout", text="cpu 0\n")]


def _with_execution_count(nb: nbformat.NotebookNode) -> None:
    nb.cells[2].execution_count = 3


def _untagged(nb: nbformat.NotebookNode) -> None:
    nb.cells[1].metadata = {}


def _two_parameter_cells(nb: nbformat.NotebookNode) -> None:
    nb.cells.insert(2, new_code_cell("SEED = 1", metadata={"tags": ["parameters"]}))


def _computed_parameter(nb: nbformat.NotebookNode) -> None:
    nb.cells[1].source = 'PROFILE = "cpu"\nSEEDS = list(range(3))'


def _statement_in_parameters(nb: nbformat.NotebookNode) -> None:
    nb.cells[1].source = 'import os\nPROFILE = os.environ["PROFILE"]'


def _no_profile(nb: nbformat.NotebookNode) -> None:
    nb.cells[1].source = "SEED = 0"


def _widget_state(nb: nbformat.NotebookNode) -> None:
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}


def _execution_metadata(nb: nbformat.NotebookNode) -> None:
    nb.cells[2].metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}


def _papermill_copy(nb: nbformat.NotebookNode) -> None:
    nb.metadata["papermill"] = {"parameters": {"PROFILE": "smoke"}}
    nb.cells.insert(
        2, new_code_cell('PROFILE = "smoke"', metadata={"tags": ["injected-parameters"]})
    )


def _duplicate_ids(nb: nbformat.NotebookNode) -> None:
    nb.cells[2].id = nb.cells[1].id


BAD_NOTEBOOKS = {
    "outputs": (_with_outputs, "commit without outputs"),
    "execution_count": (_with_execution_count, "commit without execution counts"),
    "no_parameters_cell": (_untagged, "exactly one cell tagged 'parameters'"),
    "two_parameters_cells": (_two_parameter_cells, "exactly one cell tagged 'parameters'"),
    "computed_parameter": (_computed_parameter, "plain values only"),
    "statement_in_parameters": (_statement_in_parameters, "assignments only"),
    "no_profile": (_no_profile, "sets PROFILE"),
    "widget_state": (_widget_state, "widget or run metadata ['widgets']"),
    "execution_metadata": (_execution_metadata, "execution or view metadata ['execution']"),
    "papermill_copy": (_papermill_copy, "injected-parameters"),
    "duplicate_ids": (_duplicate_ids, "an id of its own"),
}


def test_notebook_problems_accepts_a_clean_notebook(tmp_path: Path) -> None:
    path = tmp_path / "clean.ipynb"
    nbformat.write(_clean_notebook(), path)
    assert notebook_problems(read_notebook(path)) == []


@pytest.mark.parametrize("case", BAD_NOTEBOOKS)
def test_notebook_problems_catches_a_bad_notebook(case: str, tmp_path: Path) -> None:
    spoil, expected = BAD_NOTEBOOKS[case]
    nb = _clean_notebook()
    spoil(nb)
    path = tmp_path / f"{case}.ipynb"
    # json, not nbformat.write: nbformat would repair duplicate cell ids on the way out
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    problems = notebook_problems(read_notebook(path))
    assert any(expected in p for p in problems), problems


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_smoke_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # one OpenMP thread in the kernel: on a busy 2-core machine two threads thrash (10x slower)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # the kernel imports the package of this checkout, not whichever one is installed
    paths = [str(NOTEBOOK_DIR.parent), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
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
    if path.stem == "04_neon_dense_study":
        C_values = [f"{C:g}" for C in json.loads((folder / "config.json").read_text())["config"]["C_values"]]
        assert not neon_summary_problems(summary, C_values)
    if path.stem in ("02_resnet50_purl", "03_mobilenetv2_purl"):
        assert not purl_summary_problems(summary)
    if path.stem == "05_ablations":
        for key in ("reward_timing", "reward_timing_small_cnn"):
            assert not TIMING_KEYS - set(summary[key]), f"{key} lacks {TIMING_KEYS - set(summary[key])}"
            assert summary[key]["estimator"] == "kaplan_meier_median"
    assert _finite(summary)
    assert list((folder / "figures").glob("*.png")), "the notebook saves its figures"
    config = json.loads((folder / "config.json").read_text())
    assert config["profile"] == "smoke" and "wall_seconds" in config
