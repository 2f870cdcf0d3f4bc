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
    "METRIC_LABELS",
    "metric_label",
    "plot_curves",
    "plot_effects",
    "plot_random_search",
    "plot_runs",
]


METRIC_LABELS: dict[str, str] = {
    "yardstick_rescored": "yardstick re-scored on the stop split\n(PuRL reward, 0 = best)",
    "yardstick_reward": "yardstick on the reward split\n(PuRL reward, 0 = best)",
    "yardstick": "greedy policy's yardstick on the reward split\n(PuRL reward, 0 = best)",
    "auc": "area under the greedy curve\n(mean yardstick over training)",
    "sparsity": "sparsity of the prunable weights\n(share removed)",
    "heldout_accuracy": "top-1 accuracy on the stop split\n(share, before fine-tuning)",
    "test_accuracy": "top-1 test accuracy\n(share, before fine-tuning)",
    "compression": "compression\n(dense / remaining weights, x)",
    "delta_test_pp": "change in test accuracy vs dense\n(percentage points)",
    "within_C_share": "share of networks within C on test",
    "policy_entropy": "policy entropy at the end\n(nats)",
    "seconds": "wall time per run (seconds)",
}
"""Axis labels in words with units for the metrics of notebook 05's tables."""


def metric_label(metric: str) -> str:
    """The label of ``metric`` (:data:`METRIC_LABELS`; the name with spaces if unknown)."""
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def plot_curves(
    curves: pd.DataFrame,
    runs: pd.DataFrame | None = None,
    level: float | None = None,
    title: str = "",
    ax: Axes | None = None,
    medians: dict[str, float] | None = None,
) -> Figure:
    """Greedy-evaluation learning curves: each seed (thin) and the mean over the seeds still
    running (bold) of the yardstick against training episodes, one colour per variant; ``level``
    (fixed before the run) dashed; ``medians`` (variant -> Kaplan-Meier median episodes to the
    level, NaN: not reached by half the runs) as dotted vertical lines, and each variant's
    horizon (``runs``' ``horizon``) as a shaded end. Every line style is in the legend."""

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.5, 4.0))
    palette = sns.color_palette("tab10")
    for k, (name, g) in enumerate(curves.groupby("variant", sort=False)):
        color = palette[k % len(palette)]
        for i, (_seed, c) in enumerate(g.groupby("seed")):
            c = c.sort_values("episode")
            ax.plot(c["episode"], c["yardstick"], color=color, lw=0.6, alpha=0.3,
                    label=f"{name}: one seed" if i == 0 else None)  # fmt: skip
        mean = g.groupby("episode")["yardstick"].mean()
        ax.plot(mean.index, mean.to_numpy(), color=color, lw=2,
                label=f"{name}: mean of the seeds still running ({g['seed'].nunique()})")  # fmt: skip
        sub = runs[runs["variant"] == name] if runs is not None else None
        if medians is not None and name in medians:
            reached = f"{int(sub['reached_level'].astype(bool).sum())}/{len(sub)} reached" \
                if sub is not None else ""  # fmt: skip
            m = medians[name]
            if m is not None and np.isfinite(m):
                ax.axvline(m, color=color, ls=":", lw=1.4,
                           label=f"{name}: KM median episodes to the level {m:.0f} ({reached})")  # fmt: skip
            else:
                ax.plot([], [], color=color, ls=":", lw=1.4,
                        label=f"{name}: median not reached ({reached})")  # fmt: skip
    if level is not None:
        ax.axhline(level, color="k", ls="--", lw=1, label=f"level {level:.2f} (fixed before)")
    ax.set_xlabel("training episodes")
    ax.set_ylabel(metric_label("yardstick"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="lower right")
    ax.set_title(title, fontsize=10)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def plot_random_search(runs: dict[str, pd.DataFrame], title: str = "") -> Figure:
    """Does learning matter: per network, each seed's deployed policy of the DQN and of random
    search as (sparsity, yardstick re-scored on stop), the means as large markers. The panel
    title flags when the two sit at different sparsities (the yardstick then mixes accuracy and
    sparsity: the comparison is not at equal sparsity)."""

    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 3.9), squeeze=False)
    styles = {"default": ("tab:blue", "o", "DQN"), "random_search": ("tab:orange", "s",
              "random search (best of as many episodes)")}  # fmt: skip
    for ax, (net, r) in zip(axes[0], runs.items(), strict=True):
        means = {}
        for v, (color, marker, label) in styles.items():
            sub = r[r["variant"] == v]
            ax.scatter(sub["sparsity"], sub["yardstick_rescored"], color=color, marker=marker,
                       alpha=0.45, s=22, label=f"{label}: one seed")  # fmt: skip
            means[v] = (float(sub["sparsity"].mean()), float(sub["yardstick_rescored"].mean()))
            ax.scatter(*means[v], color=color, marker=marker, s=110, edgecolor="k",
                       label=f"{label}: mean")  # fmt: skip
        gap = abs(means["default"][0] - means["random_search"][0])
        flag = (f"NOT at equal sparsity ({means['default'][0]:.3f} vs "
                f"{means['random_search'][0]:.3f})" if gap > 0.02 else "at about equal sparsity")  # fmt: skip
        ax.set_title(f"{net}: {flag}", fontsize=9, color="tab:red" if gap > 0.02 else "k")
        ax.set_xlabel(metric_label("sparsity").replace("\n", " "))
        ax.set_ylabel(metric_label("yardstick_rescored"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="best")
    fig.suptitle(title, fontsize=10)
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
                    label="mean, 95% interval")  # fmt: skip
        ax.scatter([], [], color="0.55", s=16, label="one seed")
        ax.set_xlim(-0.5, len(order) - 0.5)
        ax.set_xlabel("")
        ax.set_ylabel(metric_label(m), fontsize=8)
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
        ax.scatter(g["effect"][sig], y[sig], color="tab:blue", zorder=3, s=28,
                   label="Holm p < 0.05 (bar: 95% interval)")  # fmt: skip
        ax.scatter(g["effect"][~sig], y[~sig], facecolor="white", edgecolor="tab:blue", zorder=3,
                   s=28, label="not significant after Holm")  # fmt: skip
        ax.axvline(1.0 if ratio else 0.0, color="k", lw=0.8)
        if ratio:
            ax.set_xscale("log")
        ax.set_yticks(y, [f"{a}: {v}" for a, v in zip(g["ablation"], g["variant"], strict=True)],
                      fontsize=8)  # fmt: skip
        what = "ratio to the default" if ratio else "difference from the default"
        ax.set_xlabel(f"{metric_label(metric).replace(chr(10), ' ')}: {what} ({fam})",
                      fontsize=8)  # fmt: skip
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_title(title, fontsize=10)
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig
