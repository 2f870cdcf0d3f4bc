"""The baselines PuRL is compared with, on the same network, the same dense layers and data.

* :func:`one_shot_masks` -- magnitude pruning in one shot from the trained network: ``global``
  (one threshold over every prunable weight, a few weights kept per layer so none collapses;
  Gupta et al. 2022's strong baseline) or ``uniform`` (the same ratio in every layer).
* :class:`GradualMagnitude` -- gradual magnitude pruning (Zhu & Gupta, 2017): during fine-tuning
  the global magnitude threshold rises on a cubic schedule from 0 to the final sparsity, then the
  network trains on with the masks fixed. It plugs into :func:`~pruning_core.train.loop.fit` as
  its ``on_step``, so it spends the same training budget as the one-shot methods' fine-tuning.
* :func:`random_search` -- the search PuRL must beat to be worth its cost: uniformly random
  policies through the same :class:`~pruning_core.rl.envs.purl.PuRLEnv` for the same number of
  episodes (so the same number of network evaluations); the policy with the best PuRL return on
  the reward subset is chosen, and, like PuRL's, re-scored later on data that did not choose it.
  :func:`scale_to_sparsity` brings its choice to another method's sparsity (one scale of its
  per-layer amounts, found by bisection), so that it is compared at equal sparsity.
* :func:`best_uniform_alpha` -- the constant policy of PuRL's action space: one alpha for every
  layer, chosen on the reward subset by PuRL's own reward (the yardstick an agent must beat).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from pruning_core.config import progress
from pruning_core.pruning.criteria import (
    Masks,
    global_magnitude_masks,
    ratio_mask,
    uniform_magnitude_masks,
)
from pruning_core.pruning.layers import PrunableLayer, prunable_layers
from pruning_core.pruning.masks import Masker
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rewards import purl_reward
from pruning_core.rl.rollout import replay, rollout, uniform_random
from pruning_core.train.batchnorm import use_batch_statistics
from pruning_core.train.loop import evaluate

__all__ = [
    "GradualMagnitude",
    "MIN_KEEP",
    "RandomSearchResult",
    "best_uniform_alpha",
    "gradual_plan",
    "one_shot_masks",
    "random_search",
    "scale_to_sparsity",
    "uniform_alpha_table",
]


MIN_KEEP = 0.01
"""Share of each layer's largest weights that global magnitude pruning always keeps."""


def one_shot_masks(method: str, layers: Sequence[PrunableLayer], sparsity: float) -> Masks:
    """Masks of one-shot magnitude pruning (``global`` or ``uniform``) at exactly ``sparsity``."""
    if method == "global":
        return global_magnitude_masks(layers, sparsity, min_keep=MIN_KEEP)
    if method == "uniform":
        return uniform_magnitude_masks(layers, sparsity)
    raise ValueError(f"unknown one-shot method {method!r}: use 'global' or 'uniform'")


def cubic_sparsity(step: int, ramp_steps: int, final: float, updates: int) -> float:
    """Zhu & Gupta's schedule ``s_t = s_f (1 - (1 - t/T)^3)``, held between ``updates`` updates.

    ``t`` is rounded down to the last of ``updates`` equally spaced pruning steps in ``[0, T]``,
    so the masks change ``updates`` times; from ``T`` on the sparsity is ``final``.
    """
    if ramp_steps <= 0 or step >= ramp_steps:
        return final
    every = ramp_steps / max(updates, 1)
    t = int(step / every) * every
    return final * (1.0 - (1.0 - t / ramp_steps) ** 3)


def gradual_plan(total_steps: int, ramp_share: float, every: int) -> tuple[int, int]:
    """``(ramp_steps, updates)`` of gradual pruning in a budget of ``total_steps`` optimiser steps:
    a mask update every ``every`` steps over the first ``ramp_share`` of the budget (the ramp is
    rounded down to a whole number of updates, at least one), then recovery at the final sparsity
    for the rest. With :func:`cubic_sparsity` the masks change at steps ``every, 2 every, ...,
    ramp_steps`` and nowhere else."""
    if every < 1 or not 0.0 < ramp_share <= 1.0:
        raise ValueError(f"need every >= 1 and ramp_share in (0, 1], got {every}, {ramp_share}")
    updates = max(1, int(ramp_share * total_steps) // every)
    return updates * every, updates


@dataclass
class GradualMagnitude:
    """Gradual global magnitude pruning as ``fit``'s ``on_step``: masks follow a cubic schedule.

    Give it the :class:`Masker` that ``fit`` holds (its masks start all ones), the final
    sparsity, the optimiser steps of the ramp and the number of mask updates on it. Each update
    recomputes global magnitude masks on the *current* weights (pruned weights are zero, so
    masks only shrink). Returns ``True`` once the final sparsity is in place: early stopping and
    best-weight selection only judge the network from then on.
    """

    masker: Masker
    final: float
    ramp_steps: int
    updates: int = 10
    current: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.final < 1.0:
            raise ValueError(f"final sparsity must be in [0, 1), got {self.final}")
        self.masker.set_masks(
            {layer.name: torch.ones_like(layer.weight, dtype=torch.bool) for layer in self.masker.layers}
        )

    def __call__(self, step: int) -> bool:
        target = cubic_sparsity(step, self.ramp_steps, self.final, self.updates)
        if target > self.current + 1e-12:
            with torch.no_grad():
                masks = global_magnitude_masks(self.masker.layers, target, min_keep=MIN_KEEP)
            self.masker.set_masks(masks, from_dense=False)
            self.current = target
        return step >= self.ramp_steps


@dataclass
class RandomSearchResult:
    """The policy random search chose, and what every episode it tried scored."""

    seed: int
    masks: Masks
    actions: list[int]
    episodes: int
    log: pd.DataFrame
    """One row per episode: return, sparsity and reward-subset accuracy at its end."""
    reward_accuracy: float
    sparsity: float
    seconds: float


def random_search(
    model: nn.Module,
    reward_data: tuple[torch.Tensor, torch.Tensor],
    target_sparsity: float,
    target_accuracy: float | None,
    episodes: int,
    seed: int = 0,
    env_config: PuRLConfig | None = None,
    desc: str | None = None,
) -> RandomSearchResult:
    """Uniformly random PuRL policies for ``episodes`` episodes; the best PuRL return wins.

    The environment is built exactly as :func:`~pruning_core.methods.purl.purl_prune` builds
    PuRL's (a copy of ``model`` with batch statistics, the same reward subset, targets and MDP),
    so both methods make the same number of network evaluations on the same data.
    """
    if episodes < 1:
        raise ValueError(f"random search needs at least one episode, got {episodes}")
    cfg = replace(
        env_config or PuRLConfig(), target_sparsity=target_sparsity, target_accuracy=target_accuracy
    )
    env = PuRLEnv(use_batch_statistics(copy.deepcopy(model)), reward_data, cfg)
    policy = uniform_random(int(env.action_space.n), np.random.default_rng(seed))
    rows, best, best_actions = [], -np.inf, None
    t0 = time.perf_counter()
    try:
        for episode in progress(range(episodes), desc=desc or f"random search seed {seed}", unit="ep"):
            ep = rollout(env, policy, seed=seed if episode == 0 else None)
            info = ep.info
            rows.append({"episode": episode + 1, "return": ep.episode_return,
                         "final_sparsity": float(info["sparsity"]), "final_accuracy": float(info["accuracy"])})  # fmt: skip
            if ep.episode_return > best:
                best, best_actions = ep.episode_return, [int(a) for a in ep.actions]
        assert best_actions is not None
        ep = rollout(env, replay(best_actions), seed=seed)
        masks = {k: v.detach().clone().cpu() for k, v in env.masker.masks.items()}
        info = ep.info
    finally:
        env.close()
    return RandomSearchResult(
        seed=seed, masks=masks, actions=best_actions, episodes=episodes, log=pd.DataFrame(rows),
        reward_accuracy=float(info["accuracy"]), sparsity=float(info["sparsity"]),
        seconds=time.perf_counter() - t0,
    )  # fmt: skip


def layer_amounts(masks: Masks) -> dict[str, float]:
    """Each layer's pruned share under ``masks`` (False = pruned)."""
    return {k: 1.0 - float(m.float().mean()) for k, m in masks.items()}


def _scaled_zeros(amounts: Sequence[float], sizes: Sequence[int], scale: float, cap: float) -> int:
    return sum(round(min(scale * a, cap) * n) for a, n in zip(amounts, sizes, strict=True))


def scale_to_sparsity(
    layers: Sequence[PrunableLayer], amounts: Mapping[str, float], target: float,
    tol: float = 1e-3, cap: float = 1.0 - MIN_KEEP, iters: int = 80,
) -> tuple[Masks, float, float]:  # fmt: skip
    """Masks that prune ``min(c * amount, cap)`` of each layer's smallest weights, ``c`` found by
    bisection so that the sparsity of ``layers`` is ``target`` (within ``tol``).

    ``amounts`` are a policy's per-layer pruned shares (:func:`layer_amounts`; a layer absent or at
    0 stays dense): one scale keeps the policy's allocation across layers while moving its
    overall sparsity. Returns ``(masks, scale, sparsity)``; with a target beyond what the capped
    scale can reach, the closest reachable sparsity (the caller labels the row with it).
    """
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target sparsity must lie in [0, 1), got {target}")
    a = [float(amounts.get(layer.name, 0.0)) for layer in layers]
    n = [layer.weight.numel() for layer in layers]
    total = sum(n)
    if max(a, default=0.0) <= 0.0:
        raise ValueError("the policy prunes no layer: no scale of it reaches a sparsity above 0")
    lo, hi = 0.0, cap / min(x for x in a if x > 0)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if _scaled_zeros(a, n, mid, cap) / total < target:
            lo = mid
        else:
            hi = mid
        if abs(_scaled_zeros(a, n, hi, cap) / total - target) <= tol:
            break
    c = min((lo, hi), key=lambda v: abs(_scaled_zeros(a, n, v, cap) / total - target))
    masks = {layer.name: ratio_mask(layer.weight, min(c * x, cap)) for layer, x in zip(layers, a, strict=True)}
    zeros = sum(int((~m).sum()) for m in masks.values())
    return masks, c, zeros / total


def _env_masker(model: nn.Module, reward_data: tuple[torch.Tensor, torch.Tensor], config: PuRLConfig) -> Masker:
    """A :class:`Masker` over the layers PuRL's environment prunes with ``config``."""
    include = list(config.include) if config.include is not None else None
    return Masker(model, layers=prunable_layers(model, include=include, exclude=list(config.exclude),
                                                example_input=reward_data[0][:1]))  # fmt: skip


@torch.no_grad()
def uniform_alpha_table(
    model: nn.Module, reward_data: tuple[torch.Tensor, torch.Tensor], config: PuRLConfig
) -> pd.DataFrame:
    """Every constant policy of PuRL's action space (one alpha at every layer) as PuRL's
    environment scores its last step: alpha, sparsity, reward-subset accuracy (batch-norm batch
    statistics) and PuRL's reward against ``config``'s ``A*`` and ``S*``. One forward pass per
    alpha: the final network of the episode ``[a] * layers`` is every layer pruned at ``a``."""
    if config.action_space != "alpha":
        raise ValueError("uniform-alpha policies need action_space='alpha'")
    m = use_batch_statistics(copy.deepcopy(model))
    masker = _env_masker(m, reward_data, config)
    rows = []
    for alpha in config.action_values:
        for i in range(len(masker.layers)):
            masker.prune_alpha(i, alpha)
        acc = evaluate(m, reward_data, batch_size=config.eval_batch_size)["top1"]
        sp = masker.sparsity()
        a_star = config.target_accuracy if config.target_accuracy is not None else math.nan
        rows.append({"alpha": float(alpha), "sparsity": sp, "accuracy": acc,
                     "reward": purl_reward(acc, sp, a_star, config.target_sparsity, config.beta)
                     if config.target_accuracy is not None else math.nan})  # fmt: skip
    return pd.DataFrame(rows)


def best_uniform_alpha(
    model: nn.Module, reward_data: tuple[torch.Tensor, torch.Tensor], config: PuRLConfig
) -> tuple[dict[str, float], Masks]:
    """The best constant policy by PuRL's rule on the reward subset, and its masks.

    The highest final PuRL reward (0 once ``A*`` and ``S*`` are both met); ties broken by the
    higher reward-subset accuracy, then the smaller alpha. Returns its row of
    :func:`uniform_alpha_table` and its masks (on the CPU).
    """
    if config.target_accuracy is None:
        raise ValueError("best_uniform_alpha needs config.target_accuracy (A*)")
    table = uniform_alpha_table(model, reward_data, config)
    best = table.sort_values(["reward", "accuracy", "alpha"], ascending=[False, False, True]).iloc[0]
    m = copy.deepcopy(model)
    masker = _env_masker(m, reward_data, config)
    for i in range(len(masker.layers)):
        masker.prune_alpha(i, float(best["alpha"]))
    masks = {k: v.detach().clone().cpu() for k, v in masker.masks.items()}
    return {k: float(best[k]) for k in ("alpha", "sparsity", "accuracy", "reward")}, masks
