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
           "uniform": "tab:green", "global_l1": "tab:olive", "random": "tab:gray"}  # fmt: skip


_LABELS = METHOD_LABELS


def plot_training_curves(log: pd.DataFrame, window: int = 16) -> Any:
    """Training curves per C: the policy entropy and the episode return (divided by 40^3)
    against the episode, one colour per C and one line style per fold (rolling means of
    ``window`` episodes); a dot marks the episode where an agent's policy converged."""
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
    axes[0].legend(fontsize=8)
    fig.suptitle("NEON agents per C: training curves (line style = fold, dot = converged, "
                 "grey = warm-up)")  # fmt: skip
    fig.tight_layout()
    return fig


def plot_pareto(means: pd.DataFrame, results: pd.DataFrame | None = None) -> Any:
    """Mean compression against mean test accuracy change, over C, for every method."""

    fig, ax = plt.subplots(figsize=(7, 4.8))
    if results is not None:
        for m in METHODS:
            sub = results[results["method"] == m]
            ax.scatter(sub["delta_test_pp"], sub["compression"], s=8, alpha=0.15, color=_COLORS[m])
    for m in METHODS:
        sub = means[means["method"] == m].sort_values("C")
        ax.plot(sub["mean_delta_test_pp"], sub["mean_compression"], marker="o", ms=7,
                color=_COLORS[m], label=_LABELS[m], lw=1.5,
                ls="-" if STRUCTURAL[m] else "--")  # fmt: skip
        for r in sub.itertuples():
            if not pd.isna(r.C):
                ax.annotate(f"C={r.C:g}", (r.mean_delta_test_pp, r.mean_compression),
                            textcoords="offset points", xytext=(4, 4), fontsize=7,
                            color=_COLORS[m])  # fmt: skip
    ax.axvline(-0.5, ls=":", color="k", lw=0.8)
    ax.axhline(24.59, ls="--", color="k", lw=0.8, label="paper's x24.59")
    ax.set_yscale("log")
    ax.set_xlabel("mean test accuracy change (pp)")
    ax.set_ylabel("mean compression (original / pruned params)")
    ax.set_title("Compression vs accuracy change over C (held-out datasets)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_layer_reduction(table: pd.DataFrame) -> Any:
    """Share of neurons kept at each hidden-layer position."""

    fig, ax = plt.subplots(figsize=(7, 3.6))
    methods = [m for m in METHODS if m in set(table["method"])]
    width = 0.8 / max(len(methods), 1)
    for j, m in enumerate(methods):
        sub = table[table["method"] == m]
        ax.bar(sub["layer"] + (j - (len(methods) - 1) / 2) * width, sub["kept_share"], width,
               color=_COLORS[m], label=_LABELS[m])  # fmt: skip
    ax.set_xlabel("hidden layer (1 = next to the input)")
    ax.set_ylabel("share of neurons kept")
    ax.set_title("Per-layer reduction")
    ax.legend(fontsize=8)
    fig.tight_layout()
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

