"""NEON's reward pilot (pruning_core.studies.neon_pilot) at the smoke profile."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from pruning_core.studies.neon_pilot import PILOT_SEED, pilot_sizes, run_pilot


def test_pilot_variants_differ_only_in_their_env_override() -> None:
    paper = pilot_sizes("smoke", "paper", C_values=(1.0,))
    linear = pilot_sizes("smoke", "linear_improvement", C_values=(1.0,))
    assert paper.seed == linear.seed == PILOT_SEED != 0  # never the study's seed
    assert paper.C_values == paper.env.C_values == (1.0,)
    assert (paper.env.improvement_reward, linear.env.improvement_reward) == ("cubic", "linear")
    with pytest.raises(ValueError, match="unknown variant"):
        pilot_sizes("smoke", "quadratic")


def test_pilot_writes_paired_rows_and_a_summary_per_variant() -> None:
    results, summary = run_pilot("smoke", C_values=(1.0,))
    by = results.groupby("method")
    assert set(by.groups) == {"paper", "linear_improvement", "risk_10pct"}
    # the same held-out networks in both arms, so the comparison pairs by network
    keys = {m: set(zip(g["dataset"], g["net"], strict=True)) for m, g in by}
    assert keys["paper"] == keys["linear_improvement"] and keys["paper"]
    np.testing.assert_allclose(
        results["delta_test_pp"], (results["test_acc"] - results["test_acc_orig"]) * 100
    )
    lin = summary["per_variant"]["linear_improvement"]["1"]
    assert 0.0 <= lin["share_over_C_test"] <= 1.0 and lin["n_networks"] == len(keys["paper"])
    assert lin["vs_reference"]["b"] == "paper" and "vs_reference" not in summary["per_variant"]["paper"]["1"]
    out = Path(os.environ["PRUNING_CORE_RESULTS"]) / "smoke" / "pilots"
    assert json.loads((out / "neon_reward.json").read_text())["seed"] == PILOT_SEED
    assert (out / "neon_reward.csv").is_file()
