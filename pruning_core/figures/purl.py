"""Figures of notebooks 02 and 03 (PuRL on ResNet-50 and MobileNet-V2)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from pruning_core.stats import t_interval

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot_per_layer(per_layer: pd.DataFrame, title: str) -> Any:
    """Per-layer sparsity of every method that prunes, in forward order: one small panel per
    method on shared axes (global one-shot and gradual pruning choose nearly the same layers, so
    on one panel one hides the other), with each method's mean layer sparsity as a dashed line."""
    pruned = per_layer[per_layer.groupby("method")["sparsity"].transform("max") > 1e-3]
    methods = list(dict.fromkeys(pruned["method"]))
    fig, axes = plt.subplots(len(methods), 1, figsize=(11, 0.95 * len(methods) + 1.3),
                             sharex=True, sharey=True, squeeze=False)  # fmt: skip
    colors = sns.color_palette(n_colors=len(methods))
    for ax, m, color in zip(axes[:, 0], methods, colors, strict=True):
        g = pruned[pruned["method"] == m].sort_values("position")
        ax.plot(g["position"], g["sparsity"], marker="o", ms=3, lw=1, color=color)
        ax.axhline(g["sparsity"].mean(), color=color, lw=0.8, ls="--")
        ax.set_ylim(0, 1.05)
        ax.set_yticks([0, 0.5, 1])
        ax.text(1.01, 0.5, m, transform=ax.transAxes, va="center", fontsize=9)
    axes[-1, 0].set_xlabel("prunable layer (forward order)")
    fig.supylabel("layer sparsity (dashed: mean over layers)", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_search(search_log: pd.DataFrame, title: str, rows: pd.DataFrame | None = None) -> Any:
    """Return, final sparsity and final reward accuracy per episode, mean and 95% band over seeds,
    for PuRL's DQN (exploring: its episodes are not its greedy policy) and for random search
    (the same MDP and number of episodes).

    With ``rows`` (the study's result rows at this target) the sparsity and reward-accuracy
    panels also show, on the same reward split, where the searches ended (PuRL's greedy policy
    after its last episode, random search's best episode: mean and 95% t interval over seeds, at
    the right edge) and the constant policy of PuRL's action space (the best uniform alpha: a
    dashed line), so a search that learned nothing a constant does not reads as such.
    """
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6 if rows is None else 4.0))
    hue = "method" if "method" in search_log else None
    for ax, col, label in zip(
        axes, ("return", "final_sparsity", "final_accuracy"),
        ("episode return", "sparsity at episode end", "reward accuracy at episode end"), strict=True,
    ):  # fmt: skip
        sns.lineplot(data=search_log, x="episode", y=col, hue=hue, errorbar=("ci", 95), ax=ax,
                     legend=ax is axes[0])  # fmt: skip
        ax.set(xlabel="episode", ylabel=label)
    fig.suptitle(title)
    if rows is None:
        fig.tight_layout()
        return fig
    _search_references(axes[1:], rows, float(search_log["episode"].max()))
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _search_references(axes: Any, rows: pd.DataFrame, last: float) -> None:
    palette = dict(zip(("PuRL", "random search"), sns.color_palette(n_colors=2), strict=True))
    for ax, col in zip(axes, ("reward_sparsity_search", "reward_top1_search"), strict=True):
        for k, (method, label) in enumerate([("PuRL", "PuRL greedy after the search"),
                                             ("random search", "random search's choice")]):  # fmt: skip
            v = rows.loc[rows["method"] == method, col].dropna()
            if len(v):
                mean, lo, hi = t_interval(v)
                yerr = [[mean - lo], [hi - mean]] if len(v) > 1 else None
                ax.errorbar(last + 0.3 + 0.25 * k, mean, yerr=yerr, fmt="D", ms=5, capsize=3,
                            color=palette[method], label=label)  # fmt: skip
        const = rows.loc[rows["method"] == "best uniform alpha", col].dropna()
        if len(const):
            ax.axhline(const.mean(), color="k", ls="--", lw=0.9,
                       label="best uniform alpha (constant policy)")  # fmt: skip


def plot_curve(curve: pd.DataFrame, dense_top1: float, title: str, test_se_pp: float | None = None) -> Any:
    """Test top-1 of every method, means over seeds with 95% intervals, one panel per PuRL
    target on a shared x axis.

    Every paired baseline sits at PuRL's sparsity, so an accuracy-vs-sparsity plot would pile
    them onto one point: the methods are rows instead, sorted by accuracy and labelled with their
    mean sparsity, each method in one colour and marker across panels. The dotted line is the
    dense network, its band one test standard error either side.
    """
    targets = sorted(curve["target"].unique())
    methods = list(dict.fromkeys(curve["method"]))
    colors = dict(zip(methods, sns.color_palette(n_colors=len(methods)), strict=True))
    n_rows = max(int((curve["target"] == t).sum()) for t in targets)
    fig, axes = plt.subplots(1, len(targets), figsize=(7.5 * len(targets) ** 0.5 + 2.5 * (len(targets) - 1),
                                                       0.42 * n_rows + 2.0), sharex=True, squeeze=False)  # fmt: skip
    for ax, t in zip(axes[0], targets, strict=True):
        g = curve[curve["target"] == t].sort_values("top1_pct").reset_index(drop=True)
        for i, r in g.iterrows():
            k = methods.index(r["method"])
            ax.errorbar(r["top1_pct"], i, xerr=[[r["top1_pct"] - r["top1_lo"]], [r["top1_hi"] - r["top1_pct"]]],
                        fmt=_MARKERS[k % len(_MARKERS)], color=colors[r["method"]], capsize=3, ms=6)  # fmt: skip
        ax.set_yticks(range(len(g)), [f"{r.method}  ({100 * r.sparsity:.1f}% sparse)" for r in g.itertuples()])
        _dense_lines(ax, dense_top1, test_se_pp)
        ax.set(xlabel="test top-1 (%), mean over seeds and 95% CI",
               title=title if len(targets) == 1 else f"S* = {t:g}")  # fmt: skip
    if len(targets) > 1:
        fig.suptitle(title)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def _dense_lines(ax: Any, dense_top1: float, test_se_pp: float | None) -> None:
    ax.axvline(100 * dense_top1, color="k", lw=0.8, ls=":", label="dense, no pruning")
    if test_se_pp:
        ax.axvspan(100 * dense_top1 - test_se_pp, 100 * dense_top1 + test_se_pp, color="k", alpha=0.08,
                   label="dense ± 1 test standard error")  # fmt: skip


def plot_paired(paired: pd.DataFrame, title: str, test_se_pp: float | None = None) -> Any:
    """PuRL minus each baseline in test top-1 points (paired by seed), mean and 95% interval.

    Right of zero: PuRL better. The grey band is one test-set standard error either side of zero.
    Each label names the baseline's sparsity against PuRL's (equal but for the uniform alpha).
    """
    labels = [f"{r.baseline}  (S*={r.target:g}: {100 * r.baseline_sparsity:.1f}% vs PuRL {100 * r.purl_sparsity:.1f}% sparse)"
              for r in paired.itertuples()]  # fmt: skip
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(paired) + 1.9))
    y = list(range(len(paired)))[::-1]
    ax.errorbar(paired["purl_minus_baseline_pp"], y,
                xerr=[paired["purl_minus_baseline_pp"] - paired["ci_low"],
                      paired["ci_high"] - paired["purl_minus_baseline_pp"]],
                fmt="o", capsize=3, color="C0")  # fmt: skip
    ax.axvline(0, color="k", lw=0.8, label="no difference")
    if test_se_pp:
        ax.axvspan(-test_se_pp, test_se_pp, color="k", alpha=0.08,
                   label="± 1 test standard error")  # fmt: skip
    ax.set_yticks(y, labels)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False)
    ax.set(xlabel="PuRL minus baseline, test top-1 (points, 95% CI)", title=title)
    fig.tight_layout()
    return fig
