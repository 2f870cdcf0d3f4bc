"""Notebook 04's intervals and goals, computed from ``results.csv`` (one row per method, C and
held-out network): mean compression and accuracy change with 95% intervals, and the issue's
three goals for the agent, each with its measured numbers and a verdict.

Intervals are seeded percentile bootstraps clustered by dataset (all a dataset's networks are
resampled together, :func:`pruning_core.stats.cluster_bootstrap`), so n counts the held-out
datasets, which is what varies; a compression's interval stays >= 1. Comparisons with a baseline
are paired by network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pruning_core.stats import (
    bootstrap_mean_ci,
    cluster_bootstrap,
    finite_or_none,
    paired_difference,
)
from pruning_core.studies.neon import STRUCTURAL

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "GOAL_MAX_SHARE_OVER_C",
    "GOAL_MIN_RATIO",
    "goal_lines",
    "layer_widths",
    "mean_ci",
    "method_intervals",
    "neon_goals",
]


BOOTSTRAP_RESAMPLES = 2000
"""Resamples of every bootstrap interval (seeded, so tables are reproducible)."""


GOAL_MIN_RATIO = 1.5
"""Goal at C = 1: the agent's mean compression over the best structural baseline's."""


GOAL_MAX_SHARE_OVER_C = 0.1
"""Goal for C in {1, 5}: at most this share of networks loses more than C test points."""


def mean_ci(
    values: Sequence[float], seed: int = 0, clusters: Sequence[Any] | None = None
) -> tuple[float, float, float]:
    """Mean and a percentile-bootstrap 95% interval with :data:`BOOTSTRAP_RESAMPLES`, clustered
    by ``clusters`` (the datasets) when given: within the range of the values, so a
    compression's interval never goes below 1."""
    if clusters is None:
        return bootstrap_mean_ci(values, seed, BOOTSTRAP_RESAMPLES)
    return cluster_bootstrap([values], clusters, np.mean, seed, BOOTSTRAP_RESAMPLES)


def method_intervals(results: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per method and C: ``n`` networks of ``n_datasets`` datasets, mean compression and mean
    test change, each with a dataset-clustered bootstrap interval (``comp_low``, ``comp_high``,
    ``acc_low``, ``acc_high``), and whether the method is structural."""
    rows = []
    for (m, C), g in results.groupby(["method", "C"], sort=False, dropna=False):
        comp = mean_ci(g["compression"], seed, g["dataset"])
        acc = mean_ci(g["delta_test_pp"], seed, g["dataset"])
        rows.append({"method": m, "C": C, "n": len(g), "n_datasets": int(g["dataset"].nunique()),
                     "mean_compression": comp[0],
                     "comp_low": comp[1], "comp_high": comp[2], "mean_delta_test_pp": acc[0],
                     "acc_low": acc[1], "acc_high": acc[2],
                     "structural": STRUCTURAL.get(str(m), True)})  # fmt: skip
    return pd.DataFrame(rows)


def _paired(results: pd.DataFrame, method: str, C: float) -> pd.DataFrame:
    sub = results[(results["method"] == method) & (results["C"] == C)]
    return sub.set_index(["dataset", "net"]).sort_index()


def _ratio_ci(
    a: np.ndarray, b: np.ndarray, seed: int, clusters: Sequence[Any]
) -> tuple[float, float]:
    """Paired percentile bootstrap of mean(a) / mean(b), resampling datasets (``clusters``)."""
    _est, low, high = cluster_bootstrap([a, b], clusters, lambda x, y: np.mean(x) / np.mean(y),
                                        seed, BOOTSTRAP_RESAMPLES)  # fmt: skip
    return low, high


def neon_goals(
    results: pd.DataFrame,
    C_values: Sequence[float],
    agent: str = "neon",
    baselines: Sequence[str] = ("uniform", "global_l1", "random"),
    seed: int = 0,
) -> dict[str, Any]:
    """The issue's three goals for ``agent`` on the held-out networks, measured.

    1. ``compression_increases_with_C``: the mean compression at each C in ``C_values`` (sorted),
       met when every step up in C raises it.
    2. ``within_C`` (C = 1 and 5, where present): the mean test change is at least ``-C`` and at
       most :data:`GOAL_MAX_SHARE_OVER_C` of the networks lose more than C.
    3. ``vs_best_structural_at_C1``: the best structural baseline at C = 1 (largest mean
       compression among ``baselines``), the ratio of the agent's mean compression to it with a
       paired bootstrap interval, and the paired test-accuracy difference (agent minus baseline,
       t interval, t-test and Wilcoxon). Met when the ratio is at least :data:`GOAL_MIN_RATIO`
       and the accuracy difference is not significantly negative (equal or better: its interval's
       upper end is >= 0).
    """
    Cs = sorted(float(c) for c in C_values)
    by_C = {C: _paired(results, agent, C) for C in Cs}
    comp = {C: float(t["compression"].mean()) for C, t in by_C.items()}
    increasing = all(comp[b] > comp[a] for a, b in zip(Cs, Cs[1:], strict=False))
    out: dict[str, Any] = {
        "agent": agent,
        "compression_increases_with_C": {
            "mean_compression": {f"{C:g}": comp[C] for C in Cs}, "met": bool(increasing)},
    }  # fmt: skip
    within = {}
    for C in (1.0, 5.0):
        if C not in by_C:
            continue
        d = by_C[C]["delta_test_pp"].to_numpy(float)
        share = float(np.mean(d < -C))
        within[f"{C:g}"] = {
            "mean_delta_acc_pp": float(d.mean()), "share_drop_over_C": share,
            "met": bool(d.mean() >= -C and share <= GOAL_MAX_SHARE_OVER_C)}  # fmt: skip
    out["within_C"] = {**within, "met": bool(within) and all(v["met"] for v in within.values())}
    if 1.0 in by_C:
        mine = by_C[1.0]
        means = {b: float(_paired(results, b, 1.0)["compression"].mean()) for b in baselines
                 if STRUCTURAL.get(b, False) and len(_paired(results, b, 1.0))}  # fmt: skip
        best = max(means, key=means.__getitem__)
        other = _paired(results, best, 1.0).reindex(mine.index)
        a, b = mine["compression"].to_numpy(float), other["compression"].to_numpy(float)
        ratio = float(a.mean() / b.mean())
        low, high = _ratio_ci(a, b, seed, mine.index.get_level_values("dataset"))
        acc = paired_difference(mine["delta_test_pp"], other["delta_test_pp"])
        out["vs_best_structural_at_C1"] = {
            "baseline": best, "agent_compression": float(a.mean()),
            "baseline_compression": float(b.mean()), "ratio": ratio, "ratio_ci95": [low, high],
            "accuracy_difference_pp": acc["mean"], "accuracy_difference_ci95": acc["ci95"],
            "p": acc["p"], "p_wilcoxon": acc["p_wilcoxon"], "n": acc["n"],
            "met": bool(ratio >= GOAL_MIN_RATIO and acc["ci95"][1] >= 0),
        }  # fmt: skip
    return finite_or_none(out)


def goal_lines(goals: dict[str, Any]) -> list[str]:
    """Markdown bullet lines that state each goal, its measured numbers and its verdict."""

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    g1 = goals["compression_increases_with_C"]
    seq = ", ".join(f"C = {C}: x{v:.2f}" for C, v in g1["mean_compression"].items())
    lines = [f"- Mean compression increases with C ({seq}): {verdict(g1['met'])}."]
    for C, v in goals["within_C"].items():
        if C == "met":
            continue
        lines.append(
            f"- C = {C}: mean test change {v['mean_delta_acc_pp']:+.2f} pp (goal >= -{C}), "
            f"{100 * v['share_drop_over_C']:.0f}% of networks lose more than C (goal <= "
            f"{100 * GOAL_MAX_SHARE_OVER_C:.0f}%): {verdict(v['met'])}."
        )
    g3 = goals.get("vs_best_structural_at_C1")
    if g3:
        lo, hi = g3["ratio_ci95"]
        alo, ahi = g3["accuracy_difference_ci95"]
        lines.append(
            f"- C = 1 against the best structural baseline ({g3['baseline']}, "
            f"x{g3['baseline_compression']:.2f}): compression ratio {g3['ratio']:.2f} (95% CI "
            f"{lo:.2f} to {hi:.2f}; goal >= {GOAL_MIN_RATIO}), test accuracy difference "
            f"{g3['accuracy_difference_pp']:+.2f} pp (95% CI {alo:+.2f} to {ahi:+.2f}, paired "
            f"t p = {g3['p']:.3g}, n = {g3['n']}): {verdict(g3['met'])}."
        )
    return lines


def layer_widths(results: pd.DataFrame, C: float, methods: Sequence[str]) -> pd.DataFrame:
    """One row per hidden layer of every network pruned by ``methods`` at ``C``: its position
    (1 = next to the input), the network's depth, its original width, the neurons kept and the
    share kept (of the original width)."""
    rows = []
    for m in methods:
        sub = results[(results["method"] == m) & (results["C"] == C)]
        for r in sub.itertuples():
            w0 = [int(v) for v in str(r.widths_orig).split("-")]
            w1 = [int(v) for v in str(r.widths_final).split("-")]
            for pos, (a, b) in enumerate(zip(w0, w1, strict=True)):
                rows.append({"method": m, "dataset": r.dataset, "net": r.net, "layer": pos + 1,
                             "n_hidden": len(w0), "orig_width": a, "kept": b,
                             "kept_share": b / a})  # fmt: skip
    return pd.DataFrame(rows)
