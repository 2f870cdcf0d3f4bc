"""The benchmark's replay of a real NEON training log refuses logs it cannot replay, naming the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pruning_core.bench_neon import measure_neon_training_log
from pruning_core.runs import jsonable
from pruning_core.studies.neon_sizes import neon_study_sizes


def _study_dir(tmp_path: Path, **changed: object) -> Path:
    """A notebook-04 output folder with a two-episode log and the cpu study's config."""
    sizes = neon_study_sizes("cpu")
    config = {k: jsonable(getattr(sizes, k)) for k in ("datasets", "nets_per_dataset", "space",
                                                      "base_train", "env", "seed", "agent")}  # fmt: skip
    config.update(changed)
    d = tmp_path / "04_neon_dense_study"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"config": config}))
    (d / "folds.json").write_text(json.dumps({"fold0": ["wine"], "fold1": ["iris"]}))
    pd.DataFrame({"episode": [1, 2], "fold": [0, 0], "C_agent": [1.0, 1.0], "task": ["iris#0"] * 2,
                  "actions": ["0412", "0012"], "return": [1.0, 2.0], "warmup": [True, True],
                  "entropy": [1.6, 1.6]}).to_csv(d / "agent_training_log.csv", index=False)  # fmt: skip
    return d / "agent_training_log.csv"


def test_a_missing_log_says_which_notebook_makes_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run notebook 04 at PROFILE=cpu"):
        measure_neon_training_log(path=tmp_path / "agent_training_log.csv")


def test_an_agent_not_in_the_log_lists_the_ones_that_are(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no agent for fold 3, C=1.*\(0, 1\.0\)"):
        measure_neon_training_log(fold=3, path=_study_dir(tmp_path))


def test_a_log_made_with_other_networks_asks_for_a_rerun(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'nets_per_dataset' changed.*rerun notebook 04"):
        measure_neon_training_log(path=_study_dir(tmp_path, nets_per_dataset=99))
