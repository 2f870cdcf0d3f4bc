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
    """Return, final sparsity and final reward accuracy per episode, mean and std band over seeds."""

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, col, label in zip(
        axes, ("return", "final_sparsity", "final_accuracy"),
        ("episode return", "sparsity at episode end", "reward accuracy at episode end"), strict=True,
    ):  # fmt: skip
        sns.lineplot(data=search_log, x="episode", y=col, errorbar="sd", ax=ax)
        ax.set(xlabel="episode", ylabel=label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curve(curve: pd.DataFrame, dense_top1: float, title: str) -> Any:
    """Test top-1 after fine-tuning (and one-shot, dashed) against sparsity for the three methods."""

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    colors = {"PuRL": "C0", "GMP": "C1", "uniform": "C2"}
    for method, g in curve.groupby("method", sort=False):
        g = g.sort_values("sparsity")
        ax.plot(
            g["sparsity"], g["top1"], "o-", color=colors.get(method), label=f"{method} fine-tuned"
        )
        ax.plot(
            g["sparsity"],
            g["one_shot_top1"],
            "x--",
            color=colors.get(method),
            alpha=0.6,
            label=f"{method} one-shot",
        )
    ax.axhline(dense_top1, color="k", lw=0.8, ls=":", label="dense")
    ax.set(xlabel="sparsity of prunable weights", ylabel="test top-1", title=title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig

