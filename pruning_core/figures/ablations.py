"""Figures of notebook 05 (the ablations)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from pruning_core.config import seeded

__all__ = [
    "plot_curves",
    "plot_effects",
    "plot_runs",
]


def plot_curves(
    curves: pd.DataFrame,
    runs: pd.DataFrame,
    marks: Sequence[str] = ("episodes_to_plateau",),
    title: str = "",
) -> Figure:
    """Greedy-evaluation learning curves: each seed (thin) and the mean over seeds (bold) of the
    yardstick against training episodes, with each configuration's mean of every column in
    ``marks`` (episodes) drawn as a vertical line (dashed, then dotted)."""

    fig, ax = plt.subplots(figsize=(9.0, 4.2))
    palette = sns.color_palette("tab10")
    styles = ["--", ":", "-."]
    for k, (name, g) in enumerate(curves.groupby("variant", sort=False)):
        color = palette[k % len(palette)]
        for _seed, c in g.groupby("seed"):
            c = c.sort_values("episode")
            ax.plot(c["episode"], c["yardstick"], color=color, lw=0.7, alpha=0.3)
        mean = g.groupby("episode")["yardstick"].mean()
        ax.plot(mean.index, mean.to_numpy(), color=color, lw=2, marker=".",
                label=f"{name} (mean of {g['seed'].nunique()} seeds)")  # fmt: skip
        sub = runs[runs["variant"] == name]
        for col, ls in zip(marks, styles, strict=False):
            if col in sub:
                x = float(sub[col].mean())
                what = col.replace("episodes_to_", "").replace("_", " ")
                ax.axvline(x, color=color, ls=ls, lw=1.2,
                           label=f"{name}: {what} at {x:.0f} episodes")  # fmt: skip
    ax.set_xlabel("training episodes")
    ax.set_ylabel("yardstick of the greedy policy\n(PuRL reward of the final network)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title)
    fig.tight_layout()
    return fig


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
                    label="mean, 95% t-interval")  # fmt: skip
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


def plot_effects(rank: pd.DataFrame, title: str = "") -> Figure:
    """Forest plot of the ranking: difference from the default with its 95% Welch interval."""

    fams = list(dict.fromkeys(rank["family"]))
    heights = [max(2.0, 0.32 * (rank["family"] == f).sum() + 1) for f in fams]
    fig, axes = plt.subplots(len(fams), 1, figsize=(7.5, sum(heights)), height_ratios=heights)
    axes = np.atleast_1d(axes)
    for ax, fam in zip(axes, fams, strict=True):
        g = rank[rank["family"] == fam].iloc[::-1]
        y = np.arange(len(g))
        lo = (g["diff"] - g["ci_low"]).fillna(0).to_numpy()
        hi = (g["ci_high"] - g["diff"]).fillna(0).to_numpy()
        ax.errorbar(g["diff"], y, xerr=[lo, hi], fmt="o", capsize=3, color="tab:blue")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, [f"{a}: {v}" for a, v in zip(g["ablation"], g["variant"], strict=True)])
        ax.set_xlabel(f"difference from the default: {g['metric'].iloc[0]} ({fam})")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_title(title)
    fig.tight_layout()
    return fig

