"""Figures of notebooks 02 and 03 (PuRL on ResNet-50 and MobileNet-V2)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def plot_per_layer(per_layer: pd.DataFrame, title: str) -> Any:
    """Per-layer sparsity of PuRL, global and uniform magnitude pruning, in forward order."""

    fig, ax = plt.subplots(figsize=(11, 3.6))
    sns.lineplot(
        data=per_layer, x="position", y="sparsity", hue="method", marker="o", ax=ax, markersize=4
    )
    ax.set(xlabel="prunable layer (forward order)", ylabel="sparsity", title=title, ylim=(0, 1.02))
    fig.tight_layout()
    return fig


def plot_search(search_log: pd.DataFrame, title: str) -> Any:
    """Return, final sparsity and final reward accuracy per episode, mean and 95% band over seeds,
    for PuRL's DQN and for random search (the same MDP and number of episodes)."""

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    hue = "method" if "method" in search_log else None
    for ax, col, label in zip(
        axes, ("return", "final_sparsity", "final_accuracy"),
        ("episode return", "sparsity at episode end", "reward accuracy at episode end"), strict=True,
    ):  # fmt: skip
        sns.lineplot(data=search_log, x="episode", y=col, hue=hue, errorbar=("ci", 95), ax=ax)
        ax.set(xlabel="episode", ylabel=label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curve(curve: pd.DataFrame, dense_top1: float, title: str, test_se_pp: float | None = None) -> Any:
    """Test top-1 against sparsity per method: means over seeds with 95% intervals on both axes.

    One point per method and PuRL target (the baselines are pruned to the sparsity PuRL reached
    with the same seed). The dotted line is the dense network, its band one test standard error.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for i, (method, g) in enumerate(curve.groupby("method", sort=False)):
        g = g.sort_values("sparsity")
        xerr = [g["sparsity"] - g["sparsity_lo"], g["sparsity_hi"] - g["sparsity"]]
        yerr = [g["top1_pct"] - g["top1_lo"], g["top1_hi"] - g["top1_pct"]]
        ax.errorbar(g["sparsity"] + 0.002 * (i - 2), g["top1_pct"], xerr=xerr, yerr=yerr,
                    fmt="o-" if len(g) > 1 else "o", capsize=3, label=method, lw=1.2, ms=5)  # fmt: skip
    ax.axhline(100 * dense_top1, color="k", lw=0.8, ls=":", label="dense")
    if test_se_pp:
        ax.axhspan(100 * dense_top1 - test_se_pp, 100 * dense_top1 + test_se_pp, color="k", alpha=0.08)
    ax.set(xlabel="sparsity of the prunable weights", ylabel="test top-1 (%)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_paired(paired: pd.DataFrame, title: str, test_se_pp: float | None = None) -> Any:
    """PuRL minus each baseline in test top-1 points (paired by seed), mean and 95% interval.

    Right of zero: PuRL better. The grey band is one test-set standard error either side of zero.
    Each label names the baseline's sparsity against PuRL's (equal but for the uniform alpha).
    """
    labels = [f"{r.baseline}  (S*={r.target:g}, {100 * r.baseline_sparsity:.1f}% vs {100 * r.purl_sparsity:.1f}%)"
              for r in paired.itertuples()]  # fmt: skip
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(paired) + 1.4))
    y = list(range(len(paired)))[::-1]
    ax.errorbar(paired["purl_minus_baseline_pp"], y,
                xerr=[paired["purl_minus_baseline_pp"] - paired["ci_low"],
                      paired["ci_high"] - paired["purl_minus_baseline_pp"]],
                fmt="o", capsize=3, color="C0")  # fmt: skip
    ax.axvline(0, color="k", lw=0.8)
    if test_se_pp:
        ax.axvspan(-test_se_pp, test_se_pp, color="k", alpha=0.08)
    ax.set_yticks(y, labels)
    ax.set(xlabel="PuRL minus baseline, test top-1 (points, 95% CI)", title=title)
    fig.tight_layout()
    return fig
