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
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from pruning_core.config import progress
from pruning_core.pruning.criteria import Masks, global_magnitude_masks, uniform_magnitude_masks
from pruning_core.pruning.layers import PrunableLayer
from pruning_core.pruning.masks import Masker
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rollout import replay, rollout, uniform_random
from pruning_core.train.batchnorm import use_batch_statistics

__all__ = ["GradualMagnitude", "MIN_KEEP", "RandomSearchResult", "one_shot_masks", "random_search"]


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
