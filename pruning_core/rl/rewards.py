"""Reward functions of the pruning MDPs, as pure functions of plain numbers.

* :func:`purl_reward` -- PuRL's shaped reward, paid after **every** pruning step (Gupta et al.
  2020): ``-beta * (max((A* - A) / A*, 0) + max((S* - S) / S*, 0))``. It is 0 once both the
  accuracy target ``A*`` and the sparsity target ``S*`` are met, and negative otherwise.
* :func:`purl_step_reward` -- the same reward under a schedule: ``"step"`` pays it at every step
  (PuRL), ``"episodic"`` pays 0 until the last step of the episode and then the reward of the
  final network (the AMC-style end-of-episode signal PuRL is contrasted with).
* :func:`neon_reward` -- NEON's reward for one structured (neuron-removal) step
  (Hirsch & Katz 2022).
* :func:`within_allowed_loss` -- NEON's "within C" test on its own, the one rule every method of
  the NEON study is stopped at ``C`` by (the reward's penalty, the guard, the baselines).
* :func:`neon_max_removed` and :func:`neon_unit_scale` -- the largest ``L`` one NEON action can
  remove (kept neurons round half up, so small layers lose more than ``1 - keep``) and the
  reward scale that bounds NEON's reward to [-1, 1] with it.

Keeping them pure (no model, no environment) lets notebooks plot reward surfaces and tests check
hand-computed values without building a network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import pandas as pd

from pruning_core.pruning.neurons import n_keep_for

__all__ = [
    "IMPROVEMENT_REWARDS",
    "REWARD_MODES",
    "neon_max_removed",
    "neon_reward",
    "neon_unit_scale",
    "purl_reward",
    "purl_reward_grid",
    "purl_step_reward",
    "within_allowed_loss",
]


RewardMode = Literal["step", "episodic"]


REWARD_MODES: tuple[str, ...] = ("step", "episodic")
"""``step``: PuRL's reward after every pruning step; ``episodic``: 0 until the last step."""


IMPROVEMENT_REWARDS: tuple[str, ...] = ("cubic", "linear")
"""What :func:`neon_reward` pays for a step after which accuracy is *above* the original (beyond
the noise margin): ``cubic``, ``+L**3`` (the paper's), or ``linear``, ``L`` as for a loss within
``C``. On a small reward split a rise is mostly noise, and the cubic bonus pays a gamble on it as
much as the penalty charges for losing (the switch tests that)."""


def _check_target(name: str, value: float) -> float:
    value = float(value)
    if not value > 0.0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number > 0 (it divides the gap): got {value}.")
    return value


def purl_reward(
    accuracy: float,
    sparsity: float,
    target_accuracy: float,
    target_sparsity: float,
    beta: float = 5.0,
) -> float:
    """PuRL's reward ``-beta * (max((A*-A)/A*, 0) + max((S*-S)/S*, 0))``.

    Args:
        accuracy: ``A``, accuracy of the (partly) pruned network on the validation subset.
        sparsity: ``S``, fraction of the prunable weights that are zero so far.
        target_accuracy: ``A*`` (> 0), in the same unit as ``accuracy`` (fractions or percent).
        target_sparsity: ``S*`` (> 0), a fraction like ``sparsity``.
        beta: scale of the penalty (PuRL uses 5).

    Returns:
        A number <= 0; exactly 0 when ``A >= A*`` and ``S >= S*``. Each relative shortfall
        counts linearly, so losing 1% of the target accuracy costs as much as missing 1% of the
        target sparsity.
    """
    a_star = _check_target("target_accuracy", target_accuracy)
    s_star = _check_target("target_sparsity", target_sparsity)
    gap_a = max((a_star - float(accuracy)) / a_star, 0.0)
    gap_s = max((s_star - float(sparsity)) / s_star, 0.0)
    return -float(beta) * (gap_a + gap_s)


def purl_step_reward(
    accuracy: float,
    sparsity: float,
    target_accuracy: float,
    target_sparsity: float,
    last_step: bool,
    mode: RewardMode = "step",
    beta: float = 5.0,
) -> float:
    """The reward an environment pays after one pruning step, under a reward schedule.

    ``mode="step"`` returns :func:`purl_reward` at every step. ``mode="episodic"`` returns 0.0
    before the last step and :func:`purl_reward` of the final network at ``last_step``.
    """
    if mode not in REWARD_MODES:
        raise ValueError(f"unknown reward mode {mode!r}: use one of {REWARD_MODES}.")
    if mode == "episodic" and not last_step:
        return 0.0
    return purl_reward(accuracy, sparsity, target_accuracy, target_sparsity, beta)


def within_allowed_loss(delta_pp: float, max_drop_pp: float, noise_margin_pp: float = 0.0) -> bool:
    """Whether an accuracy change ``delta_pp`` (points, new - original) is within NEON's ``C``.

    True when ``delta_pp >= -max(C, noise_margin_pp)``: the loss is at most ``C``, or so small
    that it counts as noise. It is exactly the case in which :func:`neon_reward` does *not* pay
    ``-L**3``, so a method stopped by this rule and the agent's reward agree on what "C" means.
    """
    if not max_drop_pp >= 0.0:
        raise ValueError(
            f"max_drop_pp (NEON's C, in percentage points) must be >= 0: got {max_drop_pp}."
        )
    if not noise_margin_pp >= 0.0:
        raise ValueError(f"noise_margin_pp must be >= 0: got {noise_margin_pp}.")
    return float(delta_pp) >= -max(float(max_drop_pp), float(noise_margin_pp)) - 1e-9


def neon_reward(
    keep_fraction: float,
    accuracy: float,
    base_accuracy: float,
    max_drop_pp: float,
    noise_margin_pp: float = 0.0,
    *,
    improvement: str = "cubic",
    within_weight: float = 0.0,
) -> float:
    """NEON's reward for removing ``1 - keep_fraction`` of a layer's neurons.

    With ``L = (1 - keep_fraction) * 100`` (percent of neurons removed) and
    ``delta = (accuracy - base_accuracy) * 100`` (change in percentage points, accuracies given
    as fractions in [0, 1]):

    * ``delta < -max_drop_pp`` (lost more than allowed): ``-L**3``;
    * ``delta > 0`` (the smaller network is better): ``+L**3`` (``improvement="cubic"``, the
      paper's) or ``L`` (``"linear"``, :data:`IMPROVEMENT_REWARDS`);
    * otherwise (within the allowed loss): ``L``, or ``within_weight * L**3`` when
      ``within_weight > 0`` (the "within" value; a rise under ``"linear"`` earns it too).

    ``max_drop_pp`` is NEON's ``C``: the accuracy, in percentage points, the user accepts to lose
    (the paper uses 0, 1, 5 and 50). Keeping every neuron (``L = 0``) earns 0 in every case.
    ``noise_margin_pp`` (default 0: the paper's rule) is a band of accuracy changes treated as
    noise: ``|delta| <= noise_margin_pp`` earns ``L``, neither ``+L**3`` nor ``-L**3`` (a change
    of a row or two on a small validation split says nothing about the network).

    ``within_weight = w > 0`` calibrates the risk a step may take: ``w * L**3`` against
    ``-L**3`` makes removing ``L`` worth it while the chance of ending over ``C`` is below
    ``w / (1 + w)`` (``w = 1/9``: 10%); with the paper's ``L`` it must be below ``1 / L**2``.
    """
    keep = float(keep_fraction)
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep_fraction must lie in [0, 1]: got {keep}.")
    if not max_drop_pp >= 0.0:
        raise ValueError(
            f"max_drop_pp (NEON's C, in percentage points) must be >= 0: got {max_drop_pp}."
        )
    if not noise_margin_pp >= 0.0:
        raise ValueError(f"noise_margin_pp must be >= 0: got {noise_margin_pp}.")
    if improvement not in IMPROVEMENT_REWARDS:
        raise ValueError(f"improvement must be one of {IMPROVEMENT_REWARDS}: got {improvement!r}.")
    if not (within_weight >= 0.0 and math.isfinite(within_weight)):
        raise ValueError(f"within_weight must be a finite number >= 0: got {within_weight}.")
    removed = (1.0 - keep) * 100.0
    within = within_weight * removed**3 if within_weight > 0 else removed
    delta = (float(accuracy) - float(base_accuracy)) * 100.0
    if abs(delta) <= noise_margin_pp:
        return within
    if not within_allowed_loss(delta, max_drop_pp, noise_margin_pp):
        return -(removed**3)
    if delta > 0.0 and improvement == "cubic":
        return removed**3
    return within


_MAX_WIDTH = 100_000


def neon_max_removed(keep_fractions: Sequence[float]) -> float:
    """The largest ``L`` (percent of a layer's live neurons removed) of one NEON step, over the
    actions ``keep_fractions`` and every layer width.

    A step keeps ``n_keep_for(n, keep)`` of ``n`` neurons (rounded half up, at least 1), so a
    small layer can lose more than ``1 - keep``: keeping 0.6 or 0.7 of 2 neurons (or 0.6 of 4)
    removes half. For NEON's actions ``(1.0, 0.9, 0.8, 0.7, 0.6)`` it is 50, not 40. It bounds
    ``L`` under ``removed_of="original"`` too (a share of the original width is at most the
    share of the live neurons). Widths past the point where ``1 - keep + 0.5 / n`` (an upper
    bound of the removed share) can no longer beat the best are not tried; past 100,000
    neurons that upper bound is returned, so the value is never below the true largest ``L``.
    """
    if not keep_fractions:
        raise ValueError("keep_fractions must not be empty.")
    best = 0.0
    for keep in keep_fractions:
        keep = float(keep)
        best_k = 0.0
        for n in range(1, _MAX_WIDTH + 1):
            if 1.0 - keep + 0.5 / n <= best_k:
                break
            best_k = max(best_k, (n - n_keep_for(n, keep)) / n)
        else:
            best_k = max(best_k, 1.0 - keep + 0.5 / _MAX_WIDTH)
        best = max(best, best_k)
    return 100.0 * best


def neon_unit_scale(keep_fractions: Sequence[float]) -> float:
    """The ``reward_scale`` that puts NEON's reward in [-1, 1] for these actions:
    ``1 / neon_max_removed(keep_fractions)**3`` (``1 / 50**3`` for NEON's actions; ``1 / 40**3``
    allows rewards up to ``(50 / 40)**3``, about 1.95, in size)."""
    top = neon_max_removed(keep_fractions)
    if top <= 0.0:
        raise ValueError(f"no action removes a neuron: keep_fractions={tuple(keep_fractions)}.")
    return 1.0 / max(top, 1.0) ** 3


def purl_reward_grid(
    accuracies: Sequence[float],
    sparsities: Sequence[float],
    target_accuracy: float,
    target_sparsity: float,
    beta: float = 5.0,
) -> pd.DataFrame:
    """:func:`purl_reward` on a grid, one row per (accuracy, sparsity): the reward surface."""
    rows = [
        {
            "accuracy": float(a),
            "sparsity": float(s),
            "reward": purl_reward(a, s, target_accuracy, target_sparsity, beta),
        }
        for a in accuracies
        for s in sparsities
    ]
    return pd.DataFrame(rows)

