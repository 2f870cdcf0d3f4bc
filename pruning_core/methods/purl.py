"""PuRL as one call: train a DQN on the pruning MDP of a model and return its greedy policy's masks.

:func:`purl_prune` is to PuRL what :func:`pruning_core.methods.neon.prune_mlp` is to NEON: give
it a trained model and a reward subset (``(x, y)`` tensors held out of the training data, never
the test split), get back per-layer masks and a report. The search checkpoints into a folder
derived from its configuration, so an interrupted call resumes where it stopped.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from pruning_core.pruning.criteria import Masks
from pruning_core.rl.agents.dqn import DQNConfig, greedy_policy, train
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.runs import ArtefactKey, weights_fingerprint
from pruning_core.train.batchnorm import use_batch_statistics

__all__ = ["SearchKey", "SearchResult", "purl_prune"]


@dataclass(frozen=True)
class SearchKey(ArtefactKey):
    """One PuRL search: its folder holds the DQN's checkpoint (``dqn.pt``) and log (``log.csv``)."""

    KIND = "purl_search"
    VERSION = 1
    SUFFIX = ""
    model: str
    """The model's class name."""
    env: PuRLConfig
    dqn: DQNConfig
    n: int
    """Size of the reward subset."""
    dense: float
    """Fingerprint of the model's weights."""

    @property
    def prefix(self) -> str:
        """Model class and seed."""
        return f"{self.model}-seed{self.dqn.seed}"


@dataclass
class SearchResult:
    """The outcome of one PuRL search: the greedy policy's masks and the training log."""

    seed: int
    masks: Masks
    policy: pd.DataFrame
    log: pd.DataFrame
    seconds: float
    episodes: int
    reward_accuracy: float
    sparsity: float


def purl_prune(
    model: nn.Module,
    reward_data: tuple[torch.Tensor, torch.Tensor],
    target_sparsity: float = 0.8,
    target_accuracy: float | None = None,
    episodes: int = 100,
    seed: int = 0,
    env_config: PuRLConfig | None = None,
    dqn_config: DQNConfig | None = None,
    work_dir: str | Path | None = None,
    desc: str | None = None,
) -> tuple[Masks, SearchResult]:
    """Search per-layer pruning thresholds for a trained ``model`` with PuRL's DQN.

    ``reward_data`` is the ``(x, y)`` subset the reward's accuracy is measured on;
    ``target_accuracy`` (``A*``, a fraction) defaults to the dense accuracy on it. The model is
    not modified: the search runs on a copy whose batch-norm layers use batch statistics (so the
    reward sees what the masks keep, not stale running statistics). ``env_config`` and
    ``dqn_config`` override the MDP and the agent (their targets, episodes and seed are set from
    the arguments). Returns ``(masks, result)``: the masks by layer name, and the greedy policy,
    training log, wall time and reward-subset accuracy and sparsity of the masks.
    """
    env_cfg = replace(
        env_config or PuRLConfig(), target_sparsity=target_sparsity, target_accuracy=target_accuracy
    )
    dqn_cfg = replace(dqn_config or DQNConfig(), seed=seed, episodes=episodes)
    env = PuRLEnv(use_batch_statistics(copy.deepcopy(model)), reward_data, env_cfg)
    key = SearchKey(
        type(model).__name__, env_cfg, dqn_cfg, len(reward_data[0]), weights_fingerprint(model)
    )
    folder = Path(work_dir) if work_dir is not None else key.path()
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    agent = train(
        env, dqn_cfg, log_path=folder / "log.csv", checkpoint_path=folder / "dqn.pt",
        desc=desc or f"PuRL search seed {seed}",
    )  # fmt: skip
    rollout = greedy_policy(agent, env, seed=seed)
    seconds = time.perf_counter() - t0
    log = agent.log.copy()
    if "wall_seconds" in log and len(log):
        seconds = max(seconds, float(log["wall_seconds"].iloc[-1]))
    env.close()
    result = SearchResult(
        seed=seed,
        masks=rollout.masks,
        policy=rollout.table(),
        log=log,
        seconds=seconds,
        episodes=dqn_cfg.episodes,
        reward_accuracy=rollout.accuracy,
        sparsity=rollout.sparsity,
    )
    return result.masks, result

