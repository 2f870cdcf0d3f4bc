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
  split unless the sizes name a number). Runs that never get there are censored at their
  horizon (``reached_level`` False), and the summary's estimate is the Kaplan-Meier median
  (:mod:`.ablations_km`), which uses censored runs correctly, not a mean that counts them at
  the horizon.

**Each arm has its own piloted DQN.** The per-step arm is the ablations' default DQN (one-step
Double DQN, its budget piloted on seeds 100 and 101). The end-of-episode arm learns from
n-step returns (``episodic_n_step``: the episode length, so Monte-Carlo returns) undiscounted
(``episodic_dqn``), runs up to ``episodic_horizon`` episodes (at least 3x the per-step arm's
mean episodes-to-level: :func:`~.ablations_km.horizon_rule`) and stops once it reaches the
level. :func:`pilot_episodic` reruns the pilot of its settings.

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
from pruning_core.studies.ablations_km import horizon_rule, km_median, ratio_interval
from pruning_core.studies.mdp_design import DenseModel

__all__ = [
    "PILOT_SEEDS",
    "PILOT_CANDIDATES",
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


PILOT_CANDIDATES: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {
    "small_cnn": {"mc_n5_gamma1": (5, {"gamma": 1.0}), "onestep_default": (1, {})},
    "resnet20": {
        "n5_gamma1": (5, {"gamma": 1.0}),
        "mc_n22_gamma1": (22, {"gamma": 1.0}),
        "mc_n22_gamma1_explore70_eps10": (22, {"gamma": 1.0, "exploration_fraction": 0.7,
                                               "end_epsilon": 0.1}),
        "onestep_gamma1_explore70_eps10": (1, {"gamma": 1.0, "exploration_fraction": 0.7,
                                               "end_epsilon": 0.1}),
    },
}
"""The end-of-episode arm's pilot candidates, ``name: (n_step, DQN overrides)``, as run (small
CNN to 450 episodes; ResNet-20 to 300 and 600; results in :func:`~.ablations_sizes.ablation_sizes`):
``pilot_episodic(ablation_sizes("cpu"), net, PILOT_CANDIDATES[net], horizon=...)``."""


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
    n_boot: int = 2000,
    seed: int = 0,
    dense: DenseModel | None = None,
) -> dict[str, Any]:
    """The reward-timing result on one network, from :func:`reward_timing`'s runs table.

    Episodes-to-level are **Kaplan-Meier medians** (:func:`~.ablations_km.km_median`, runs that
    never reached the level censored at their horizon; ``estimator``):
    ``episodes_to_level_step`` / ``_episodic`` (NaN when fewer than half the runs reached it)
    with ``episodes_to_level_step_ci95`` / ``_episodic_ci95``, ``restricted_mean_step`` /
    ``_episodic`` (area under the KM curve to the horizon), ``censored_share_step`` /
    ``_episodic``; ``ratio`` (episodic / step of the medians) with ``ratio_ci95`` (paired
    bootstrap over seeds, ``n_boot`` resamples drawn with ``seed``; upper end None when
    unbounded) and ``ratio_restricted`` (of the restricted means: a lower bound while the
    episodic arm is censored). Also ``network``, ``prunable_layers``, ``seeds``, ``level``,
    ``auc_step`` / ``auc_episodic`` (over the step arm's episodes), ``p`` (exact Wilcoxon on
    the per-seed episodes-to-level, censored at the horizon), ``p_auc`` (paired t on AUC),
    ``share_reached_step`` / ``_episodic``, ``horizon`` (step arm), ``horizon_episodic`` and
    ``horizon_rule`` (:func:`~.ablations_km.horizon_rule`: at least 3x the step arm's mean).
    """
    wide = runs.pivot_table(index="seed", columns="variant",
                            values=["episodes_to_level", "auc", "reached_level"])  # fmt: skip
    wide = wide.dropna()
    e_step = wide[("episodes_to_level", "step")].to_numpy(float)
    e_epi = wide[("episodes_to_level", "episodic")].to_numpy(float)
    r_step = wide[("reached_level", "step")].to_numpy(float) > 0.5
    r_epi = wide[("reached_level", "episodic")].to_numpy(float) > 0.5
    a_step = wide[("auc", "step")].to_numpy(float)
    a_epi = wide[("auc", "episodic")].to_numpy(float)
    n = sizes.net(network)
    km_s = km_median(e_step, r_step, n.episodes)
    km_e = km_median(e_epi, r_epi, n.horizon)
    ratio = ratio_interval((e_step, r_step), (e_epi, r_epi), n_boot=n_boot, seed=seed)
    p_auc = float(stats.ttest_rel(a_epi, a_step).pvalue) if len(a_step) > 1 else float("nan")
    model = (dense if dense is not None else _dense(sizes, network)).model
    return {
        "network": network,
        "prunable_layers": len(prunable_layers(model)),
        "seeds": [int(s) for s in wide.index],
        "level": float(runs["level"].iloc[0]),
        "estimator": "kaplan_meier_median",
        "episodes_to_level_step": km_s["median"],
        "episodes_to_level_step_ci95": km_s["ci95"],
        "episodes_to_level_episodic": km_e["median"],
        "episodes_to_level_episodic_ci95": km_e["ci95"],
        "restricted_mean_step": km_s["restricted_mean"],
        "restricted_mean_episodic": km_e["restricted_mean"],
        "censored_share_step": km_s["censored_share"],
        "censored_share_episodic": km_e["censored_share"],
        "ratio": ratio["ratio"],
        "ratio_ci95": ratio["ci95"],
        "ratio_restricted": ratio["ratio_restricted"],
        "auc_step": float(a_step.mean()),
        "auc_episodic": float(a_epi.mean()),
        "p": _wilcoxon_exact(e_epi - e_step),
        "p_auc": p_auc,
        "share_reached_step": float(r_step.mean()),
        "share_reached_episodic": float(r_epi.mean()),
        "horizon": n.episodes,
        "horizon_episodic": n.horizon,
        "horizon_rule": horizon_rule(e_step, n.horizon),
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


def _num(x: float | None, fmt: str = ".0f") -> str:
    return "undefined" if x is None or not np.isfinite(x) else format(x, fmt)


def timing_lines(summary: dict[str, Any]) -> list[str]:
    """Plain sentences that state one network's reward-timing result from
    :func:`reward_timing_summary`'s dictionary (nothing typed in by hand)."""
    s = summary
    lo, hi = s["ratio_ci95"]
    cs, ce = s["episodes_to_level_step_ci95"], s["episodes_to_level_episodic_ci95"]
    rule = s["horizon_rule"]
    lines = [
        f"{s['network']} ({s['prunable_layers']} prunable layers, {len(s['seeds'])} paired seeds, "
        f"level {s['level']:.2f}): the per-step reward reached the level in a Kaplan-Meier median "
        f"of {_num(s['episodes_to_level_step'])} episodes (95% CI {_num(cs[0])} to {_num(cs[1])}; "
        f"{100 * s['share_reached_step']:.0f}% of seeds within {s['horizon']}), the end-of-episode "
        f"reward in {_num(s['episodes_to_level_episodic'])} (95% CI {_num(ce[0])} to "
        f"{_num(ce[1])}; {100 * s['share_reached_episodic']:.0f}% within "
        f"{s['horizon_episodic']}).",
        f"The end-of-episode arm ran up to {s['horizon_episodic']} episodes, "
        f"{s['horizon_episodic'] / max(rule['required'] / rule['factor'], 1e-9):.1f}x the per-step "
        f"arm's mean episodes-to-level (the rule asks at least {rule['factor']:.0f}x: "
        f"{'met' if rule['met'] else 'NOT met'}).",
    ]
    if np.isfinite(s["ratio"]):
        lines.append(
            f"Ratio of medians (end-of-episode / per-step) {s['ratio']:.2f}, 95% paired bootstrap "
            f"CI {_num(lo, '.2f')} to {_num(hi, '.2f') if hi is not None else 'unbounded'} "
            f"(exact Wilcoxon p = {s['p']:.3g})."
        )
    else:
        lines.append(
            f"Fewer than half the end-of-episode runs reached the level within "
            f"{s['horizon_episodic']} episodes, so its median, and the ratio, are not identified: "
            f"the end-of-episode reward did not learn to the level in this budget. The ratio of "
            f"restricted means, a lower bound, is {s['ratio_restricted']:.2f}."
        )
    lines.append(
        f"Area under the greedy curve over the first {s['horizon']} episodes (mean yardstick): "
        f"{s['auc_step']:.2f} per step vs {s['auc_episodic']:.2f} at the end of the episode "
        f"(paired t p = {s['p_auc']:.3g})."
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
