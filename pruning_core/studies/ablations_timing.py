"""Notebook 05's two headline PuRL comparisons, on the small CNN and on the ResNet-20.

**Reward timing as speed** (:func:`reward_timing`, :func:`reward_timing_summary`): per-step
reward (PuRL, ``reward_mode="step"``) against end-of-episode reward (AMC-style, ``"episodic"``),
everything else equal, paired by seed. Speed is read off the greedy learning curve (the
yardstick on the reward split every ``eval_every`` episodes) in two ways:

* ``auc``: the trapezoid area under the curve divided by the horizon in episodes
  (:func:`~.ablations_report.auc`), a time-weighted mean yardstick over training;
* ``episodes_to_level``: the first evaluation episode at which the trailing mean of
  ``smooth_window`` (3) evaluations reaches the network's **level**, fixed before any RL run
  (:func:`~.ablations_networks.network_level`: the best uniform policy's yardstick on the reward
  split unless the sizes name a number). Runs that never get there are censored at the horizon
  (``reached_level`` False): their episode count is a lower bound, so the means and the ratio
  of a variant with censored runs are lower bounds too.

**Random search vs DQN, re-scored** (:func:`random_search_runs`, :func:`random_search_vs_dqn`):
random search plays as many episodes as the DQN trains for (the same number of network
evaluations) and deploys its best episode by the yardstick on the reward split; the DQN deploys
its final greedy policy. Both are re-scored on ``stop`` (``yardstick_rescored``), which chose
neither.

Pilot seeds (:data:`PILOT_SEEDS` = 100, 101, 102) are never study seeds: budgets and levels
were checked on them before the study runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from pruning_core.pruning.layers import prunable_layers
from pruning_core.stats import paired_difference
from pruning_core.studies.ablations import AblationSizes, _dense, purl_runs
from pruning_core.studies.mdp_design import DenseModel

__all__ = [
    "PILOT_SEEDS",
    "pilot_episodic",
    "random_search_lines",
    "random_search_runs",
    "random_search_vs_dqn",
    "reward_timing",
    "reward_timing_summary",
    "timing_lines",
]


PILOT_SEEDS: tuple[int, ...] = (100, 101, 102)
"""Seeds of the budget / level pilots, disjoint from every study seed."""


def reward_timing(
    sizes: AblationSizes,
    network: str,
    seeds: Sequence[int] | None = None,
    workers: int | None = None,
    dense: DenseModel | None = None,
    variants: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-step vs end-of-episode reward on ``network``: runs table and greedy curves.

    ``seeds`` default to ``sizes.timing_seeds`` (pass :data:`PILOT_SEEDS` for the pilot).
    """
    return purl_runs(sizes, "reward_timing", network, seeds=seeds, variants=variants,
                     workers=workers, dense=dense)  # fmt: skip


def pilot_episodic(
    sizes: AblationSizes,
    network: str,
    candidates: dict[str, tuple[int, dict[str, Any]]],
    seeds: Sequence[int] = PILOT_SEEDS[:2],
    horizon: int | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """The end-of-episode arm's settings pilot: each candidate ``name: (n_step, DQN overrides)``
    on the pilot ``seeds`` (never study seeds), up to ``horizon`` episodes (default the
    network's), stopped at the level. One row per (candidate, seed): ``reached_level``,
    ``episodes_to_level``, ``seconds``."""
    n = sizes.net(network)
    rows = []
    for name, (n_step, dqn) in candidates.items():
        net = replace(n, episodic_n_step=n_step, episodic_dqn=dict(dqn),
                      episodic_horizon=horizon or n.horizon)  # fmt: skip
        runs, _ = reward_timing(replace(sizes, **{network: net}), network, seeds=seeds,
                                workers=workers, variants=("episodic",))  # fmt: skip
        rows.append(runs.assign(candidate=name)[
            ["candidate", "seed", "reached_level", "episodes_to_level", "horizon", "seconds"]])
    return pd.concat(rows, ignore_index=True)


def _bootstrap_ratio(
    step: np.ndarray, episodic: np.ndarray, n_boot: int, seed: int
) -> list[float]:
    """Percentile 95% interval of mean(episodic) / mean(step), seeds resampled in pairs."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(step), size=(n_boot, len(step)))
    num, den = episodic[idx].mean(axis=1), step[idx].mean(axis=1)
    ratios = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) == 0:
        return [float("nan"), float("nan")]
    return [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))]


def _wilcoxon_exact(d: np.ndarray) -> float:
    """Exact Wilcoxon signed-rank p (two-sided) of paired differences; zeros dropped (Wilcox);
    1 when every difference is 0, NaN with fewer than one pair."""
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan")
    if np.all(d == 0):
        return 1.0
    nz = d[d != 0]
    return float(stats.wilcoxon(nz, zero_method="wilcox", method="exact").pvalue)


def reward_timing_summary(
    sizes: AblationSizes,
    network: str,
    runs: pd.DataFrame,
    n_boot: int = 10_000,
    seed: int = 0,
    dense: DenseModel | None = None,
) -> dict[str, Any]:
    """The reward-timing result on one network, from :func:`reward_timing`'s runs table.

    Keys: ``network``, ``prunable_layers``, ``seeds`` (the paired seeds), ``level``,
    ``episodes_to_level_step`` / ``_episodic`` (means over seeds, censored runs counted at the
    horizon: lower bounds), ``ratio`` (episodic / step of those means), ``ratio_ci95`` (paired
    percentile bootstrap over seeds, ``n_boot`` resamples drawn with ``seed``), ``auc_step`` /
    ``auc_episodic`` (means), ``p`` (exact Wilcoxon signed-rank test on the per-seed
    episodes-to-level differences), ``p_auc`` (paired t-test on AUC), ``share_reached_step`` /
    ``_episodic`` (share of runs that reached the level) and ``horizon`` (episodes per run).
    """
    wide = runs.pivot_table(index="seed", columns="variant",
                            values=["episodes_to_level", "auc", "reached_level"])  # fmt: skip
    wide = wide.dropna()
    e_step = wide[("episodes_to_level", "step")].to_numpy(float)
    e_epi = wide[("episodes_to_level", "episodic")].to_numpy(float)
    a_step = wide[("auc", "step")].to_numpy(float)
    a_epi = wide[("auc", "episodic")].to_numpy(float)
    m_step, m_epi = float(e_step.mean()), float(e_epi.mean())
    p_auc = float(stats.ttest_rel(a_epi, a_step).pvalue) if len(a_step) > 1 else float("nan")
    model = (dense if dense is not None else _dense(sizes, network)).model
    return {
        "network": network,
        "prunable_layers": len(prunable_layers(model)),
        "seeds": [int(s) for s in wide.index],
        "level": float(runs["level"].iloc[0]),
        "episodes_to_level_step": m_step,
        "episodes_to_level_episodic": m_epi,
        "ratio": m_epi / m_step if m_step > 0 else float("nan"),
        "ratio_ci95": _bootstrap_ratio(e_step, e_epi, n_boot, seed),
        "auc_step": float(a_step.mean()),
        "auc_episodic": float(a_epi.mean()),
        "p": _wilcoxon_exact(e_epi - e_step),
        "p_auc": p_auc,
        "share_reached_step": float(wide[("reached_level", "step")].mean()),
        "share_reached_episodic": float(wide[("reached_level", "episodic")].mean()),
        "horizon": sizes.net(network).episodes,
    }


def random_search_runs(
    sizes: AblationSizes,
    network: str,
    seeds: Sequence[int] | None = None,
    workers: int | None = None,
    dense: DenseModel | None = None,
) -> pd.DataFrame:
    """The default DQN and random search on ``network``, paired seeds (``timing_seeds``).

    The default DQN's runs are the reward-timing ablation's ``step`` runs (one cache entry).
    """
    seeds = sizes.timing_seeds if seeds is None else seeds
    return purl_runs(sizes, "agent", network, seeds=seeds,
                     variants=("default", "random_search"), workers=workers,
                     dense=dense)[0]  # fmt: skip


def random_search_vs_dqn(runs: pd.DataFrame) -> dict[str, Any]:
    """DQN minus random search on the re-scored yardstick (``stop`` split), paired by seed.

    Keys: ``network``, ``dqn_rescored`` / ``random_search_rescored`` (means), ``difference``
    (paired mean of dqn - random), ``ci95`` (t interval), ``p`` (paired t-test), ``p_wilcoxon``,
    ``n``; and the means of ``sparsity`` and ``test_accuracy`` of both
    (``dqn_sparsity``, ``random_search_sparsity``, ``dqn_test_accuracy``,
    ``random_search_test_accuracy``).
    """
    wide = runs.pivot_table(index="seed", columns="variant",
                            values=["yardstick_rescored", "sparsity", "test_accuracy"])  # fmt: skip
    wide = wide.dropna()
    dqn = wide[("yardstick_rescored", "default")].to_numpy(float)
    rs = wide[("yardstick_rescored", "random_search")].to_numpy(float)
    diff = paired_difference(dqn, rs)
    return {
        "network": str(runs["network"].iloc[0]),
        "dqn_rescored": float(dqn.mean()),
        "random_search_rescored": float(rs.mean()),
        "difference": float(diff["mean"]),
        "ci95": [float(x) for x in diff["ci95"]],
        "p": float(diff["p"]),
        "p_wilcoxon": float(diff["p_wilcoxon"]),
        "n": int(diff["n"]),
        "dqn_sparsity": float(wide[("sparsity", "default")].mean()),
        "random_search_sparsity": float(wide[("sparsity", "random_search")].mean()),
        "dqn_test_accuracy": float(wide[("test_accuracy", "default")].mean()),
        "random_search_test_accuracy": float(wide[("test_accuracy", "random_search")].mean()),
    }


def timing_lines(summary: dict[str, Any]) -> list[str]:
    """Plain sentences that state one network's reward-timing result from
    :func:`reward_timing_summary`'s dictionary (nothing typed in by hand)."""
    s = summary
    lo, hi = s["ratio_ci95"]
    censored = s["share_reached_step"] < 1 or s["share_reached_episodic"] < 1
    lines = [
        f"{s['network']} ({s['prunable_layers']} prunable layers, {len(s['seeds'])} paired seeds, "
        f"horizon {s['horizon']} episodes, level {s['level']:.2f}): the per-step reward reached "
        f"the level in {s['episodes_to_level_step']:.0f} episodes on average "
        f"({100 * s['share_reached_step']:.0f}% of seeds reached it), the end-of-episode reward "
        f"in {s['episodes_to_level_episodic']:.0f} ({100 * s['share_reached_episodic']:.0f}%); "
        f"ratio {s['ratio']:.2f} (95% bootstrap CI {lo:.2f} to {hi:.2f}; exact Wilcoxon "
        f"p = {s['p']:.3g}).",
        f"Area under the greedy curve (mean yardstick over training): {s['auc_step']:.2f} per step "
        f"vs {s['auc_episodic']:.2f} at the end of the episode (paired t p = {s['p_auc']:.3g}).",
    ]
    if censored:
        lines.append(
            "Runs that never reached the level count at the horizon, so those means, and a ratio "
            "built on them, are lower bounds."
        )
    return lines


def random_search_lines(result: dict[str, Any]) -> list[str]:
    """Plain sentences that state :func:`random_search_vs_dqn`'s result."""
    r = result
    lo, hi = r["ci95"]
    return [
        f"{r['network']}: re-scored on the stop split, the DQN's deployed policy scores "
        f"{r['dqn_rescored']:.2f} and random search's {r['random_search_rescored']:.2f} "
        f"(DQN minus random search {r['difference']:+.2f}, 95% CI {lo:+.2f} to {hi:+.2f}, "
        f"paired t p = {r['p']:.3g}, n = {r['n']}); sparsity {r['dqn_sparsity']:.3f} vs "
        f"{r['random_search_sparsity']:.3f}, test accuracy without fine-tuning "
        f"{r['dqn_test_accuracy']:.3f} vs {r['random_search_test_accuracy']:.3f}."
    ]
