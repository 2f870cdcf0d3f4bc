"""The closing effects table of notebook 05 and the statistics under it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pruning_core.stats import bootstrap_paired_mean, holm, paired_ratio
from pruning_core.studies.ablations_effects import (
    EFFECT_COLUMNS,
    adjust_holm,
    effects_table,
    findings_lines,
    ranking,
)


def test_holm_matches_a_hand_example() -> None:
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06,
    # monotone); NaN stays NaN and is not counted
    p = [0.04, 0.005, math.nan, 0.03, 0.01]
    out = holm(p)
    np.testing.assert_allclose(out[[0, 1, 3, 4]], [0.06, 0.02, 0.06, 0.03])
    assert math.isnan(out[2])
    assert holm([0.6, 0.5])[0] == 1.0  # capped at 1
    assert len(holm([])) == 0


def test_paired_ratio_interval_is_positive_for_wild_small_samples() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 5))
        a = np.exp(rng.normal(0, 3, n))  # spans orders of magnitude
        b = np.exp(rng.normal(0, 3, n))
        r = paired_ratio(a, b)
        assert 0 < r["ci95"][0] <= r["ratio"] <= r["ci95"][1]
    r = paired_ratio([2.0, 4.0, 8.0], [1.0, 2.0, 4.0])  # every ratio is 2
    assert r["ratio"] == pytest.approx(2.0) and r["ci95"] == pytest.approx([2.0, 2.0])
    assert r["p"] == 0.0
    # p is the paired t-test on the logs
    a, b = [1.5, 3.0, 2.2, 9.0], [1.0, 2.5, 2.0, 4.0]
    assert paired_ratio(a, b)["p"] == pytest.approx(sps.ttest_rel(np.log(a), np.log(b)).pvalue)
    with pytest.raises(ValueError, match="positive"):
        paired_ratio([1.0, 0.0], [1.0, 1.0])
    assert paired_ratio([1.0, math.nan, 2.0], [1.0, 1.0, 1.0])["n"] == 2


def test_bootstrap_share_difference_stays_in_range_and_is_seeded() -> None:
    a, b = [1.0, 0.0, 1.0, 1.0, 0.75], [0.0, 0.0, 0.25, 0.0, 0.75]
    r = bootstrap_paired_mean(a, b, seed=1)
    assert -1 <= r["ci95"][0] <= r["mean"] <= r["ci95"][1] <= 1
    assert r == bootstrap_paired_mean(a, b, seed=1)
    assert 0 < r["p"] <= 1
    same = bootstrap_paired_mean([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert same["ci95"] == [1.0, 1.0] and same["p"] == pytest.approx(0.25)  # 2 of 2**3 signs


def _runs(seed_order: list[int] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for abl, variants in (("neon", ["default", "mask", "passes_1"]), ("agent", ["default", "dqn"])):
        for v in variants:
            for s in range(5):
                rows.append({
                    "ablation": abl, "variant": v, "seed": s,
                    "compression": float(np.exp(rng.normal(1 + (v == "passes_1"), 1.5))),
                    "delta_test_pp": float(rng.normal(-1 - 2 * (v == "mask"), 1)),
                    "within_C_share": float(rng.choice([0.0, 0.25, 0.5, 0.75, 1.0])),
                })  # fmt: skip
    df = pd.DataFrame(rows)
    return df if seed_order is None else df.sample(frac=1.0, random_state=seed_order[0])


METRICS = {"compression": "ratio", "delta_test_pp": "difference", "within_C_share": "share"}


def test_effects_table_pairs_by_seed_whatever_the_row_order() -> None:
    eff = effects_table(_runs(), METRICS, family="neon")
    assert list(eff.columns) == list(EFFECT_COLUMNS)
    assert len(eff) == 3 * 3  # (mask, passes_1, dqn) x 3 metrics
    for k in (1, 7):
        shuffled = effects_table(_runs([k]), METRICS, family="neon")
        key = ["ablation", "variant", "metric"]
        pd.testing.assert_frame_equal(
            eff.sort_values(key).reset_index(drop=True),
            shuffled.sort_values(key).reset_index(drop=True),
        )
    # the numbers are the paired ones
    runs = _runs()
    d = runs[(runs.ablation == "neon") & (runs.variant == "default")].set_index("seed")
    m = runs[(runs.ablation == "neon") & (runs.variant == "mask")].set_index("seed")
    row = eff[(eff.variant == "mask") & (eff.metric == "delta_test_pp")].iloc[0]
    assert row["effect"] == pytest.approx((m.delta_test_pp - d.delta_test_pp).mean())
    row = eff[(eff.variant == "mask") & (eff.metric == "compression")].iloc[0]
    assert row["effect"] == pytest.approx(np.exp(np.log(m.compression / d.compression).mean()))
    ratio = eff[eff.kind == "ratio"]
    assert (ratio.ci_low > 0).all() and (ratio.ci_low <= ratio.effect).all()
    share = eff[eff.kind == "share"]
    assert share.ci_low.ge(-1).all() and share.ci_high.le(1).all()
    # Holm within (family, metric): 3 rows each
    for _m, g in eff.groupby("metric"):
        np.testing.assert_allclose(g.p_holm, holm(g.p.to_numpy()))


def test_effects_table_refuses_mismatched_seeds_and_a_missing_default() -> None:
    runs = _runs()
    drop = runs[~((runs.variant == "mask") & (runs.seed == 4))]
    with pytest.raises(ValueError, match="seeds"):
        effects_table(drop, METRICS)
    with pytest.raises(ValueError, match="default"):
        effects_table(runs[runs.variant != "default"], METRICS)
    with pytest.raises(ValueError, match="twice"):
        effects_table(pd.concat([runs, runs.iloc[:1]]), METRICS)
    with pytest.raises(ValueError, match="kinds"):
        effects_table(runs, {"compression": "log"})
    with pytest.raises(ValueError, match="no default"):
        effects_table(runs, METRICS, default={"neon": "default"})
    # per-ablation defaults; a non-finite value drops its pair only
    runs.loc[(runs.variant == "dqn") & (runs.seed == 0), "delta_test_pp"] = math.nan
    eff = effects_table(runs, METRICS, default={"neon": "default", "agent": "default"})
    assert eff.set_index(["variant", "metric"]).loc[("dqn", "delta_test_pp"), "n"] == 4


def test_adjust_holm_over_concatenated_tables_and_ranking_and_findings() -> None:
    runs = _runs()
    a = effects_table(runs[runs.ablation == "neon"], METRICS, family="x")
    b = effects_table(runs[runs.ablation == "agent"], METRICS, family="x")
    both = adjust_holm(pd.concat([a, b], ignore_index=True))
    np.testing.assert_allclose(
        both.sort_values(["metric", "variant"]).p_holm.to_numpy(),
        effects_table(runs, METRICS, family="x").sort_values(["metric", "variant"]).p_holm,
    )
    rank = ranking(both)
    assert list(rank["rank"]) == list(range(1, len(rank) + 1))
    sig = rank["significant"].to_numpy()
    assert not np.any(~sig[:-1] & sig[1:])  # significant rows first
    lines = findings_lines(rank)
    assert len(lines) == len(rank)
    r0 = rank.iloc[0]
    assert lines[0].startswith(f"{r0.variant} ({r0.ablation})")
    ratio_line = next(s for s, k in zip(lines, rank.kind, strict=True) if k == "ratio")
    assert "multiplied compression by x" in ratio_line and "Holm p" in ratio_line
