"""Figures of notebook 04 (NEON across tabular datasets)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from pruning_core.studies.neon import METHOD_LABELS, METHODS, STRUCTURAL

__all__ = [
    "plot_layer_reduction",
    "plot_pareto",
    "plot_timing",
    "plot_training_curve",
]


_COLORS = {"neon": "tab:red", "neon_guard": "tab:purple", "gmp": "tab:blue",
           "uniform": "tab:green", "global_l1": "tab:olive", "random": "tab:gray"}  # fmt: skip


_LABELS = METHOD_LABELS


def plot_training_curve(log: pd.DataFrame, window: int = 10) -> Any:
    """Per fold: the scaled episode return and the final compression (rolling means)."""

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, g in log.groupby("fold"):
        w = max(1, min(window, len(g) // 3 or 1))
        axes[0].plot(
            g["episode"], g["scaled_return"].rolling(w, min_periods=1).mean(), label=f"fold {k}"
        )
        axes[1].plot(
            g["episode"], g["compression"].rolling(w, min_periods=1).mean(), label=f"fold {k}"
        )
    warm = log.loc[log["warmup"].astype(bool), "episode"]
    for ax in axes:
        if len(warm):
            ax.axvspan(0, warm.max(), color="0.9", label="warm-up (random)")
        ax.set_xlabel("episode")
        ax.legend(fontsize=8)
    axes[0].set_ylabel(f"return / 40^3 (rolling mean {window})")
    axes[1].set_ylabel("compression at episode end")
    axes[1].set_yscale("log")
    fig.suptitle("NEON agent training (one agent per fold, C drawn per episode)")
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

