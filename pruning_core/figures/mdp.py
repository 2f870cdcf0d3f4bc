"""The figures the notebooks share.

Every function takes tables (DataFrames read back from ``results/``) and returns a matplotlib
Figure; the notebook saves it with ``RunDir.save_fig``. Nothing here computes a result, so every
number in a figure comes from a file.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "alpha_sparsity",
    "feature_heatmap",
    "layer_sparsity_bars",
    "learning_curves",
    "reward_surface",
]


def feature_heatmap(
    table: pd.DataFrame, features: Sequence[str], label: str = "layer", title: str = ""
) -> Figure:
    """Heatmap of per-layer features (rows: features, columns: layers in forward order)."""
    values = table[list(features)].to_numpy(float).T
    width = min(max(6.0, 0.16 * len(table) + 2.5), 18.0)
    fig, ax = plt.subplots(figsize=(width, 0.32 * len(features) + 1.8))
    im = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_yticks(range(len(features)), [f.removeprefix("f_") for f in features])
    step = max(1, len(table) // 40)
    ticks = list(range(0, len(table), step))
    ax.set_xticks(ticks, [str(table[label].iloc[i]) for i in ticks], rotation=90, fontsize=6)
    ax.set_xlabel("prunable layer (forward order)")
    fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, label="normalised value")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def alpha_sparsity(df: pd.DataFrame, title: str = "") -> Figure:
    """Measured sparsity per layer against alpha, with the Gaussian prediction erf(alpha/sqrt 2).

    ``df`` has columns layer, type, alpha, sparsity, gaussian (see ``alpha_sparsity_table``).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colors = {"conv": "tab:blue", "depthwise": "tab:green", "linear": "tab:red"}
    seen: set[str] = set()
    for (_, kind), g in df.groupby(["layer", "type"], sort=False):
        ax.plot(
            g["alpha"],
            g["sparsity"],
            color=colors.get(kind, "grey"),
            alpha=0.35 if kind == "conv" else 0.9,
            lw=1.0 if kind == "conv" else 2.0,
            label=f"{kind} layers" if kind not in seen else None,
        )
        seen.add(kind)
    theory = df.drop_duplicates("alpha").sort_values("alpha")
    ax.plot(
        theory["alpha"], theory["gaussian"], "k--", lw=2, label=r"Gaussian: erf($\alpha/\sqrt{2}$)"
    )
    ax.set_xlabel(r"action $\alpha$ (prune $|w| < \alpha\,\mathrm{std}(w)$)")
    ax.set_ylabel("layer sparsity")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def reward_surface(
    df: pd.DataFrame, target_accuracy: float, target_sparsity: float, title: str = ""
) -> Figure:
    """Filled contours of the reward over (sparsity, accuracy); ``df``: accuracy, sparsity, reward."""
    grid = df.pivot(index="accuracy", columns="sparsity", values="reward")
    fig, ax = plt.subplots(figsize=(6.0, 4.6))
    cs = ax.contourf(grid.columns, grid.index, grid.to_numpy(), levels=20, cmap="magma")
    ax.contour(grid.columns, grid.index, grid.to_numpy(), levels=10, colors="white", linewidths=0.4)
    fig.colorbar(cs, ax=ax, label="reward")
    ax.axvline(target_sparsity, color="cyan", ls="--", lw=1, label=f"S* = {target_sparsity:.2f}")
    ax.axhline(target_accuracy, color="lime", ls="--", lw=1, label=f"A* = {target_accuracy:.3f}")
    ax.set_xlabel("sparsity S of the prunable weights so far")
    ax.set_ylabel("validation accuracy A")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def _band(ax: plt.Axes, df: pd.DataFrame, window: int, label: str, color: str) -> None:
    curves = df.pivot(index="episode", columns="seed", values="return").sort_index()
    curves = curves.rolling(window, min_periods=1).mean()
    mean, std = curves.mean(axis=1), curves.std(axis=1, ddof=0)
    x = curves.index.to_numpy()
    ax.plot(x, mean, color=color, label=f"{label} (mean of {curves.shape[1]} seeds)")
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.25)


def learning_curves(
    dqn: pd.DataFrame,
    random: pd.DataFrame,
    greedy: pd.DataFrame | None = None,
    window: int = 20,
    title: str = "",
) -> Figure:
    """Episode return of DQN (while training) and of the random policy: mean +- std over seeds.

    ``dqn`` and ``random`` have columns seed, episode, return (curves are rolling means over
    ``window`` episodes); ``greedy`` (seed, return) adds the trained greedy policy's return.
    """
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    _band(ax, dqn, window, "DQN, epsilon-greedy while training", "tab:blue")
    _band(ax, random, window, "random policy", "tab:gray")
    if greedy is not None and len(greedy):
        m, s = greedy["return"].mean(), greedy["return"].std(ddof=0)
        ax.axhline(
            m, color="tab:orange", ls="--", label=f"DQN greedy after training: {m:.2f} ± {s:.2f}"
        )
    ax.set_xlabel("episode")
    ax.set_ylabel(f"episode return (rolling mean, {window} episodes)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def layer_sparsity_bars(df: pd.DataFrame, title: str = "") -> Figure:
    """Per-layer sparsity chosen by the greedy policy, one bar per seed; ``df``: seed, layer,
    layer_sparsity (and optionally param_share, drawn as a line on a second axis)."""
    layers = list(dict.fromkeys(df["layer"]))
    seeds = sorted(df["seed"].unique())
    width = 0.8 / len(seeds)
    fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(layers) + 2), 3.8))
    x = np.arange(len(layers))
    for k, s in enumerate(seeds):
        g = df[df["seed"] == s].set_index("layer").loc[layers]
        ax.bar(
            x + (k - (len(seeds) - 1) / 2) * width, g["layer_sparsity"], width, label=f"seed {s}"
        )
    ax.set_xticks(x, layers, rotation=30, ha="right")
    ax.set_ylabel("sparsity chosen by the greedy policy")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    if "param_share" in df:
        ax2 = ax.twinx()
        share = df.drop_duplicates("layer").set_index("layer").loc[layers, "param_share"]
        ax2.plot(x, share, "k.--", label="share of prunable weights")
        ax2.set_ylabel("share of prunable weights")
        ax2.set_ylim(0, max(0.5, float(share.max()) * 1.1))
        ax2.legend(loc="upper right", fontsize=8)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig

