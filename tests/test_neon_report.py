"""Notebook 04's intervals and goals (``studies.neon_report``) on small synthetic result tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pruning_core.studies import neon_eval as ne
from pruning_core.studies import neon_report as nr


def _results(comp: dict[tuple[str, float], list[float]], acc: dict[tuple[str, float], list[float]]):
    rows = []
    for (m, C), values in comp.items():
        for i, v in enumerate(values):
            rows.append({"method": m, "C": C, "dataset": f"d{i % 3}", "net": i, "compression": v,
                         "delta_test_pp": acc[(m, C)][i], "widths_orig": "64-32",
                         "widths_final": f"{min(64, max(1, int(64 / v)))}-16"})  # fmt: skip
    return pd.DataFrame(rows)


def _table(agent: dict[float, float], base: float, agent_acc: float, base_acc: float, n: int = 12):
    rng = np.random.default_rng(0)
    comp, acc = {}, {}
    for C, c in agent.items():
        comp[("neon", C)] = list(c * np.exp(rng.normal(0, 0.1, n)))
        acc[("neon", C)] = list(agent_acc + rng.normal(0, 0.3, n))
        for b, f in (("uniform", 1.0), ("global_l1", 0.8), ("random", 0.5), ("gmp", 3.0)):
            comp[(b, C)] = list(base * f * np.exp(rng.normal(0, 0.1, n)))
            acc[(b, C)] = list(base_acc + rng.normal(0, 0.3, n))
    return _results(comp, acc)


def test_goals_met_when_the_agent_is_clearly_better() -> None:
    res = _table({0.0: 2.0, 1.0: 9.0, 5.0: 12.0, 50.0: 20.0}, base=4.0, agent_acc=-0.2,
                 base_acc=-0.4)  # fmt: skip
    g = nr.neon_goals(res, [0, 1, 5, 50])
    assert g["compression_increases_with_C"]["met"]
    assert g["within_C"]["met"]
    v = g["vs_best_structural_at_C1"]
    # gmp compresses most but is unstructured: the best *structural* baseline is uniform
    assert v["baseline"] == "uniform"
    assert v["ratio"] == pytest.approx(
        res.query("method == 'neon' and C == 1")["compression"].mean()
        / res.query("method == 'uniform' and C == 1")["compression"].mean()
    )
    assert v["ratio_ci95"][0] < v["ratio"] < v["ratio_ci95"][1]
    assert v["met"]
    assert any("**met**" in line for line in nr.goal_lines(g))


def test_goals_not_met_when_C_changes_nothing_or_accuracy_is_worse() -> None:
    res = _table({0.0: 9.0, 1.0: 9.0, 5.0: 9.0, 50.0: 9.0}, base=4.0, agent_acc=-3.0,
                 base_acc=-0.2)  # fmt: skip
    g = nr.neon_goals(res, [0, 1, 5, 50])
    assert not g["compression_increases_with_C"]["met"]
    assert not g["within_C"]["1"]["met"]  # mean drop of 3 pp at C = 1
    assert g["within_C"]["5"]["met"]
    assert not g["within_C"]["met"]
    # 2.2x the baseline's compression, but significantly worse accuracy
    assert g["vs_best_structural_at_C1"]["ratio"] > nr.GOAL_MIN_RATIO
    assert not g["vs_best_structural_at_C1"]["met"]
    assert any("**not met**" in line for line in nr.goal_lines(g))


def test_compression_intervals_stay_within_the_range_of_the_values() -> None:
    # one huge compression among ones: a t interval would go below 1, the bootstrap cannot
    values = [1.0, 1.0, 1.0, 1.0, 60.0]
    mean, low, high = nr.mean_ci(values)
    assert 1.0 <= low <= mean <= high <= 60.0
    res = _table({1.0: 9.0}, base=4.0, agent_acc=-0.2, base_acc=-0.4)
    iv = nr.method_intervals(res)
    assert (iv["comp_low"] >= 1.0).all() and (iv["comp_low"] <= iv["mean_compression"]).all()
    assert (iv["acc_low"] <= iv["mean_delta_test_pp"]).all()
    assert not iv.loc[iv["method"] == "gmp", "structural"].any()


def test_layer_reduction_by_position_and_by_original_width() -> None:
    res = _table({1.0: 4.0}, base=2.0, agent_acc=0.0, base_acc=0.0)
    by_layer = ne.layer_reduction(res, 1.0, by="layer")
    by_width = ne.layer_reduction(res, 1.0, by="orig_width")
    assert set(by_layer["layer"]) == {1, 2}
    assert set(by_width["orig_width"]) == {32, 64}
    second = by_layer[(by_layer["method"] == "neon") & (by_layer["layer"] == 2)].iloc[0]
    assert second["kept_share"] == pytest.approx(0.5)  # 16 of 32 in the synthetic widths
    assert ((by_layer["low"] >= 0) & (by_layer["high"] <= 1)).all()
    assert "gmp" not in set(by_layer["method"])  # unstructured: no neurons removed
