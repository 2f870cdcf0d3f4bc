"""``python -m pruning_core prune-mlp``: a table in, a pruned network and a report out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pruning_core.cli import load_mlp, main
from pruning_core.config import REPO_ROOT
from pruning_core.train.loop import evaluate


def _table(path: Path, n: int = 400) -> Path:
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], n)
    size, w = rng.normal(size=n), rng.normal(size=n)
    label = np.where((colour == "red") | (size + 0.5 * w > 0.5), "yes", "no")
    pd.DataFrame({"id": np.arange(n), "colour": colour, "size": size, "w": w, "y": label}).to_csv(
        path, index=False
    )
    return path


def test_prune_mlp_command_trains_prunes_reports_and_saves(tmp_path: Path, capsys) -> None:
    csv = _table(tmp_path / "data.csv")
    out, dense = tmp_path / "pruned.pt", tmp_path / "dense.pt"
    argv = ["prune-mlp", str(csv), "--target", "y", "--C", "5", "--drop", "id", "--hidden", "32,16",
            "--epochs", "40", "--passes", "1", "--out", str(out), "--save-dense", str(dense)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "5 features, 2 classes (no, yes)" in text
    assert "compression" in text and "test accuracy" in text and f"wrote {out}" in text
    model, blob = load_mlp(out)  # plain values: torch.load(weights_only=True) reads it
    assert blob["classes"] == ["no", "yes"] and len(blob["feature_names"]) == 5
    dense_model, _ = load_mlp(dense)
    assert sum(p.numel() for p in model.parameters()) <= sum(p.numel() for p in dense_model.parameters())
    x = torch.rand(3, 5)
    assert model(x).shape == (3, 2)
    # a loaded network is pruned again as it is (no training)
    assert main(["prune-mlp", str(csv), "--target", "y", "--C", "5", "--drop", "id",
                 "--model", str(dense), "--passes", "1"]) == 0  # fmt: skip
    assert f"loaded {dense}" in capsys.readouterr().out
    assert isinstance(evaluate(model, (x, torch.zeros(3, dtype=torch.long)))["top1"], float)


def test_prune_mlp_command_reports_input_errors_in_one_line(tmp_path: Path, capsys) -> None:
    csv = _table(tmp_path / "data.csv", n=200)
    assert main(["prune-mlp", str(csv), "--target", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "target column 'nope'" in err and "Traceback" not in err
    assert main(["prune-mlp", str(tmp_path / "missing.csv"), "--target", "y"]) == 1
    assert "no such table" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    assert main(["prune-mlp", str(csv), "--target", "y", "--model", str(bad)]) == 1
    assert "is not a checkpoint" in capsys.readouterr().err


def test_python_dash_m_pruning_core_runs() -> None:
    res = subprocess.run([sys.executable, "-m", "pruning_core", "prune-mlp", "--help"], cwd=REPO_ROOT,
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert "--target" in res.stdout and "--out" in res.stdout
