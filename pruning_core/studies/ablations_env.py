"""The PuRL environment of notebook 05's runs: a fresh env per run (NEON's reward as a
wrapper), one played episode and the deployed network re-scored on data that chose nothing."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np

from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rewards import neon_reward
from pruning_core.rl.rollout import Policy, rollout
from pruning_core.studies.ablations_networks import yardstick
from pruning_core.studies.mdp_design import DenseModel
from pruning_core.train.loop import evaluate

__all__ = ["NeonRewardWrapper", "make_env", "play", "rescore"]


class NeonRewardWrapper(gym.Wrapper):
    """PuRLEnv paying NEON's reward instead of PuRL's (recomputed from the step's info).

    ``L`` is the share of the layer's remaining weights this step removed (in percent), the
    accuracy change is against the dense network: ``neon_reward(1 - L/100, A, A_dense, C)``,
    divided by ``scale`` (40**3, as NEON's agent does) so the DQN sees rewards of order 1.
    """

    def __init__(self, env: PuRLEnv, C: float = 1.0, scale: float = 40.0**3) -> None:
        super().__init__(env)
        self.C = float(C)
        self.scale = float(scale)
        self._prev = np.zeros(0)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the env and the per-layer sparsity memory."""
        obs, info = self.env.reset(**kwargs)
        self._prev = info["layer_sparsity"].copy()
        return obs, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Step the env and replace its reward with NEON's (in ``info["step_reward"]`` too)."""
        obs, _r, terminated, truncated, info = self.env.step(action)
        layer = info["layer"]
        before, after = float(self._prev[layer]), float(info["layer_sparsity"][layer])
        removed = (after - before) / (1.0 - before) if before < 1.0 else 0.0
        self._prev = info["layer_sparsity"].copy()
        r = neon_reward(
            1.0 - min(max(removed, 0.0), 1.0), info["accuracy"], info["dense_accuracy"], self.C
        )
        reward = r / self.scale
        return obs, reward, terminated, truncated, {**info, "step_reward": np.float64(reward)}



def make_env(dense: DenseModel, purl: dict[str, Any], reward: str) -> gym.Env:
    """A fresh PuRLEnv on a private copy of the dense network (wrapped for NEON's reward)."""
    env = PuRLEnv(
        copy.deepcopy(dense.model),
        dense.splits.tensors("reward"),
        PuRLConfig(**purl),
    )
    return NeonRewardWrapper(env) if reward == "neon" else env


def play(env: gym.Env, policy: Policy) -> dict[str, Any]:
    """One episode of ``policy``; the yardstick (reward split) and what the final network is."""
    ep = rollout(env, policy)
    info = ep.info
    return {
        "yardstick": yardstick(info["accuracy"], info["sparsity"], env.unwrapped.dense_accuracy),
        "sparsity": float(info["sparsity"]),
        "val_accuracy": float(info["accuracy"]),
        "actions": [int(a) for a in ep.actions],
    }


def rescore(env: gym.Env, dense: DenseModel, played: dict[str, Any]) -> dict[str, Any]:
    """The deployed policy (the env holds its final network) re-scored on ``stop`` and ``test``.

    ``yardstick_rescored`` uses the accuracy on ``stop`` and the dense network's accuracy on
    ``stop`` as ``A*``: data that chose neither the policy (reward split) nor its episode.
    """
    model = env.unwrapped.model
    held = float(evaluate(model, dense.splits.tensors("stop"))["top1"])
    dense_held = float(evaluate(dense.model, dense.splits.tensors("stop"))["top1"])
    return {
        "yardstick_reward": played["yardstick"],
        "sparsity": played["sparsity"],
        "val_accuracy": played["val_accuracy"],
        "heldout_accuracy": held,
        "dense_heldout_accuracy": dense_held,
        "yardstick_rescored": yardstick(held, played["sparsity"], dense_held),
        "test_accuracy": float(evaluate(model, dense.splits.tensors("test"))["top1"]),
        "actions": played["actions"],
    }
