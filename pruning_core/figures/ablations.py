"""Figures of notebook 05 (the ablations)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pruning_core.config import seeded

__all__ = [
    "plot_curves",
    "plot_effects",
    "plot_runs",
]


def plot_curves(
    curves: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    level: float | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Greedy-evaluation learning curves: each seed (thin) and the mean over seeds (bold) of the
    yardstick against training episodes, one colour per variant; ``level`` (fixed before the
    run) as a dashed horizontal line, and each variant's mean episodes to it (``runs``'
    ``episodes_to_level``; censored runs count at the horizon) as a dotted vertical line."""

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.5, 4.0))
    palette = sns.color_palette("tab10")
    for k, (name, g) in enumerate(curves.groupby("variant", sort=False)):
        color = palette[k % len(palette)]
        for _seed, c in g.groupby("seed"):
            c = c.sort_values("episode")
            ax.plot(c["episode"], c["yardstick"], color=color, lw=0.6, alpha=0.25)
        mean = g.groupby("episode")["yardstick"].mean()
        ax.plot(mean.index, mean.to_numpy(), color=color, lw=2,
                label=f"{name} (mean of {g['seed'].nunique()} seeds)")  # fmt: skip
        if runs is not None and "episodes_to_level" in runs:
            sub = runs[runs["variant"] == name]
            if len(sub):
                x = float(sub["episodes_to_level"].mean())
                reached = int(sub["reached_level"].astype(bool).sum())
                ax.axvline(x, color=color, ls=":", lw=1.4,
                           label=f"{name}: level at {x:.0f} episodes (mean; "
                           f"{reached}/{len(sub)} reached)")  # fmt: skip
    if level is not None:
        ax.axhline(level, color="k", ls="--", lw=1, label=f"level {level:.2f} (fixed before)")
    ax.set_xlabel("training episodes")
    ax.set_ylabel("greedy policy's yardstick\n(reward split)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def plot_runs(
    runs: pd.DataFrame, summary: pd.DataFrame, metrics: Sequence[str], title: str = ""
) -> Figure:
    """One panel per metric: each seed's value (dots) and the mean with its 95% t-interval."""

    order = list(dict.fromkeys(runs["variant"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics) + 1, 3.8))
    axes = np.atleast_1d(axes)
    for ax, m in zip(axes, metrics, strict=True):
        # seaborn draws the jitter from numpy's global RNG: seed it for the call (the state is put
        # back) so that the same runs give the same figure, byte for byte
        with seeded(0):
            sns.stripplot(data=runs, x="variant", y=m, order=order, color="0.55", size=4,
                          jitter=0.15, ax=ax)  # fmt: skip
        s = summary[summary["metric"] == m].set_index("variant").loc[order]
        x = np.arange(len(order))
        lo = (s["mean"] - s["ci_low"]).fillna(0).to_numpy()
        hi = (s["ci_high"] - s["mean"]).fillna(0).to_numpy()
        ax.errorbar(x, s["mean"], yerr=[lo, hi], fmt="o", color="tab:red", capsize=4,
                    label="mean, 95% interval")  # fmt: skip
        ax.set_xlim(-0.5, len(order) - 0.5)
        ax.set_xlabel("")
        ax.set_ylabel(m)
        ax.tick_params(axis="x", rotation=35)
        for lab in ax.get_xticklabels():
            lab.set_horizontalalignment("right")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_effects(effects: pd.DataFrame, title: str = "") -> Figure:
    """Forest plot of an effects table (:func:`~pruning_core.studies.ablations_effects.effects_table`):
    one panel per (family, metric), each variant's effect against its ablation's default with
    its 95% interval; ratios on a log axis around 1, differences around 0. A filled marker means
    Holm-adjusted p < 0.05 within the panel's family."""

    groups = list(effects.groupby(["family", "metric"], sort=False))
    heights = [max(1.6, 0.28 * len(g) + 0.9) for _k, g in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(8.0, sum(heights)), height_ratios=heights,
                             squeeze=False)  # fmt: skip
    for ax, ((fam, metric), g) in zip(axes[:, 0], groups, strict=True):
        g = g.iloc[::-1]
        y = np.arange(len(g))
        ratio = g["kind"].iloc[0] == "ratio"
        lo = (g["effect"] - g["ci_low"]).clip(lower=0).fillna(0).to_numpy()
        hi = (g["ci_high"] - g["effect"]).clip(lower=0).fillna(0).to_numpy()
        sig = (g["p_holm"] < 0.05).to_numpy()
        ax.errorbar(g["effect"], y, xerr=[lo, hi], fmt="none", ecolor="tab:blue", capsize=3)
        ax.scatter(g["effect"][sig], y[sig], color="tab:blue", zorder=3, s=28)
        ax.scatter(g["effect"][~sig], y[~sig], facecolor="white", edgecolor="tab:blue", zorder=3,
                   s=28)  # fmt: skip
        ax.axvline(1.0 if ratio else 0.0, color="k", lw=0.8)
        if ratio:
            ax.set_xscale("log")
        ax.set_yticks(y, [f"{a}: {v}" for a, v in zip(g["ablation"], g["variant"], strict=True)],
                      fontsize=8)  # fmt: skip
        what = "ratio to the default" if ratio else "difference from the default"
        ax.set_xlabel(f"{metric}: {what} ({fam})", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
