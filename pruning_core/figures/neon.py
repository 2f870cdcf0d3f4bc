"""Figures of notebook 04 (NEON across tabular datasets)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pruning_core.studies.neon import METHOD_LABELS, METHODS, STRUCTURAL

__all__ = [
    "plot_layer_reduction",
    "plot_pareto",
    "plot_timing",
    "plot_training_curves",
]


_COLORS = {"neon": "tab:red", "neon_guard": "tab:purple", "gmp": "tab:blue",
           "uniform": "tab:green", "global_l1": "tab:olive", "random": "tab:gray",
           "constant": "black", "constant_guard": "tab:brown", "schedule": "tab:cyan",
           "oracle_constant": "tab:orange"}  # fmt: skip


_MARKERS = {"neon": "o", "neon_guard": "D", "uniform": "s", "global_l1": "^", "gmp": "v",
            "random": "X", "constant": "P", "constant_guard": "p", "schedule": "*",
            "oracle_constant": "h"}  # fmt: skip


_LABELS = METHOD_LABELS


def plot_training_curves(log: pd.DataFrame, window: int = 16) -> Any:
    """Training curves per C: the policy entropy and the episode return (divided by 40^3)
    against the episode, one colour per C and one line style per fold (rolling means of
    ``window`` episodes); a dot marks the episode where the stopping rule ended an agent's
    training. Legends name the colours (C), the line styles (folds), the dot and the band."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True)
    Cs = sorted(log["C_agent"].unique())
    cmap = plt.get_cmap("viridis")
    styles = ["-", "--", ":", "-."]
    for j, C in enumerate(Cs):
        color = cmap(j / max(len(Cs) - 1, 1))
        for k, g in log[log["C_agent"] == C].groupby("fold"):
            ls = styles[int(k) % len(styles)]
            lab = f"C = {C:g}" if int(k) == int(log["fold"].min()) else None
            for ax, col in zip(axes, ("entropy", "scaled_return"), strict=True):
                y = g[col].rolling(window, min_periods=1).mean()
                ax.plot(g["episode"], y, color=color, ls=ls, lw=1.2, label=lab)
                if "converged" in g:
                    hit = g["converged"].astype("boolean").fillna(False).to_numpy(bool)
                    ax.scatter(g["episode"][hit], y[hit], color=color, s=30, zorder=3)
    axes[0].axhline(np.log(5), color="0.6", lw=0.8, ls=":", label="uniform policy (ln 5)")
    axes[0].set_ylim(0, np.log(5) * 1.05)
    warm = log.loc[log["warmup"].astype(bool), "episode"]
    for ax in axes:
        if len(warm):
            ax.axvspan(0, warm.max(), color="0.92")
        ax.set_xlabel("episode")
    axes[0].set_ylabel(f"policy entropy, nats (rolling mean {window})")
    axes[1].set_ylabel(f"return / 40^3 (rolling mean {window})")
    folds = sorted(int(k) for k in log["fold"].unique())
    keys = [plt.Line2D([], [], color="0.3", ls=styles[k % len(styles)], lw=1.2) for k in folds]
    names = [f"fold {k}" for k in folds]
    if "converged" in log:
        keys.append(plt.Line2D([], [], color="0.3", marker="o", ls=""))
        names.append("stopped (validation plateau)")
    if len(warm):
        keys.append(plt.Rectangle((0, 0), 1, 1, color="0.92"))
        names.append("warm-up (random actions)")
    axes[0].legend(fontsize=8, loc="upper right")
    axes[1].legend(keys, names, fontsize=8, loc="lower right")
    fig.suptitle("NEON agents per C: training curves")
    fig.tight_layout()
    return fig


def plot_pareto(intervals: pd.DataFrame, results: pd.DataFrame | None = None) -> Any:
    """Mean compression against mean test accuracy change, one panel per C, every method with
    its 95% intervals on both axes (``neon_report.method_intervals``: bootstrap for compression,
    t for accuracy); faint dots are single networks. The unstructured baseline has a hollow
    marker (its compression counts nonzero weights, not a smaller network). The constant-policy
    yardsticks (black plus: the best constant keep; brown: it with the guard; cyan star: the best
    keep per pass; orange hexagon: the per-network oracle constant) sit beside the agent, so an
    agent that plays a constant reads as a tie. Methods without a C (none today) would appear in
    every panel. The panels share one x axis, linear within 1 pp of zero and logarithmic beyond,
    so the C = 0 and C = 50 panels read on the same scale."""
    Cs = sorted(c for c in intervals["C"].dropna().unique())
    fig, axes = plt.subplots(1, len(Cs), figsize=(3.3 * len(Cs) + 1.5, 4.0), sharey=True,
                             sharex=True, squeeze=False)  # fmt: skip
    lows = [intervals["acc_low"].min(), -max(Cs) * 1.1]
    highs = [intervals["acc_high"].max(), 1.0]
    if results is not None:
        lows.append(results["delta_test_pp"].min())
        highs.append(results["delta_test_pp"].max())
    for ax, C in zip(axes[0], Cs, strict=True):
        at = intervals[(intervals["C"] == C) | intervals["C"].isna()]
        for m in [m for m in METHODS if m in set(at["method"])]:
            r = at[at["method"] == m].iloc[0]
            if results is not None:
                sub = results[(results["method"] == m) & (results["C"] == C)]
                ax.scatter(sub["delta_test_pp"], sub["compression"], s=6, alpha=0.12,
                           color=_COLORS[m], lw=0)  # fmt: skip
            xerr = [[r.mean_delta_test_pp - r.acc_low], [r.acc_high - r.mean_delta_test_pp]]
            yerr = [[r.mean_compression - r.comp_low], [r.comp_high - r.mean_compression]]
            ax.errorbar(r.mean_delta_test_pp, r.mean_compression, xerr=xerr, yerr=yerr,
                        marker=_MARKERS.get(m, "o"), ms=7, color=_COLORS[m], capsize=2, lw=1.2,
                        mfc=_COLORS[m] if STRUCTURAL[m] else "white",
                        label=_LABELS[m])  # fmt: skip
        ax.axvline(-C, ls=":", color="k", lw=0.8)
        ax.axvline(0, color="0.7", lw=0.6)
        ax.axhline(24.59, ls="--", color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xscale("symlog", linthresh=1.0)
        lo, hi = 1.1 * float(np.nanmin(lows)), 1.5 * float(np.nanmax(highs))
        ax.set_xlim(lo, hi)
        ticks = [t for t in (-100, -50, -20, -10, -5, -2, -1, 0, 1, 2, 5, 10) if lo <= t <= hi]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=8)
        ax.set_title(f"C = {C:g} pp (dotted: -C)", fontsize=10)
        ax.set_xlabel("test accuracy change (pp, log beyond ±1)")
    axes[0][0].set_ylabel("compression (original / remaining params)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], ls="--", color="k", lw=0.8))
    labels.append("paper's x24.59")
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(
        "Compression vs test accuracy change on held-out datasets "
        "(mean and 95% intervals; faint dots: networks)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    return fig


def plot_layer_reduction(by_layer: pd.DataFrame, by_width: pd.DataFrame | None = None) -> Any:
    """Share of each hidden layer's original neurons kept, with 95% bootstrap intervals: by
    layer position (left) and by the layer's original width (right)."""
    panels = [("layer", by_layer, "hidden layer (1 = next to the input)")]
    if by_width is not None:
        panels.append(("orig_width", by_width, "original width of the layer (neurons)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 3.6), squeeze=False)
    for ax, (key, table, xlabel) in zip(axes[0], panels, strict=True):
        methods = [m for m in METHODS if m in set(table["method"])]
        cats = sorted(table[key].unique())
        pos = {c: i for i, c in enumerate(cats)}
        width = 0.8 / max(len(methods), 1)
        for j, m in enumerate(methods):
            sub = table[table["method"] == m]
            x = sub[key].map(pos).to_numpy(float) + (j - (len(methods) - 1) / 2) * width
            err = [sub["kept_share"] - sub["low"], sub["high"] - sub["kept_share"]]
            ax.bar(x, sub["kept_share"], width, yerr=err, color=_COLORS[m], label=_LABELS[m],
                   capsize=1.5, error_kw={"lw": 0.8})  # fmt: skip
        ax.set_xticks(range(len(cats)), [str(int(c)) for c in cats])
        ax.set_ylim(0, 1.05)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share of original neurons kept")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False
    )
    fig.suptitle("Where the neurons go (mean over layers, 95% bootstrap intervals)", fontsize=11)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


def plot_timing(timing: pd.DataFrame) -> Any:
    """Seconds to prune a new network with a trained agent vs training an agent for it."""

    fig, ax = plt.subplots(figsize=(7, 2.8))
    colors = ["tab:red" if m else "tab:orange" for m in timing["measured"].astype(bool)]
    ax.barh(timing["what"], timing["seconds"], color=colors)
    ax.set_xscale("log")
    ax.set_xlim(right=float(timing["seconds"].max()) * 6)
    ax.set_xlabel("wall seconds (log; orange = extrapolated)")
    for i, s in enumerate(timing["seconds"]):
        ax.text(s, i, f" {s:.1f} s", va="center", fontsize=8)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig
