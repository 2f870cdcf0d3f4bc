"""The pieces of NEON's actor-critic that hold no training state: the two networks, the
return and advantage estimators, and the observation standardiser that travels with an agent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ActorCritic", "ObsStandardizer", "discounted_returns", "gae"]


@dataclass(frozen=True)
class ObsStandardizer:
    """Per-feature standardisation ``(obs - mean) / std`` with statistics fixed once, from the
    observations of the training networks (the agent's warm-up episodes).

    A feature that never varied (``std`` below ``min_std``) is only centred, so it stays 0 on the
    training networks and does not blow up elsewhere. Saved with the agent, so a loaded agent
    applies the same transform at inference as in training.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    """Spread used as the divisor (1.0 where the feature never varied)."""
    raw_std: tuple[float, ...]
    """The measured per-feature standard deviation (a diagnostic: 0 teaches nothing)."""

    @classmethod
    def fit(cls, obs: np.ndarray, min_std: float = 1e-6) -> ObsStandardizer:
        """Statistics of ``obs`` (rows = observations)."""
        x = np.asarray(obs, dtype=np.float64).reshape(-1, np.asarray(obs).shape[-1])
        mean, sd = x.mean(0), x.std(0)
        div = np.where(sd > min_std, sd, 1.0)
        return cls(tuple(map(float, mean)), tuple(map(float, div)), tuple(map(float, sd)))

    def __call__(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The standardised observation(s) as a float32 tensor."""
        t = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        mean = torch.tensor(self.mean, dtype=torch.float32)
        std = torch.tensor(self.std, dtype=torch.float32)
        return (t - mean) / std

    def state(self) -> dict[str, Any]:
        """Plain lists, for a checkpoint."""
        return {"mean": list(self.mean), "std": list(self.std), "raw_std": list(self.raw_std)}

    @classmethod
    def from_state(cls, st: dict[str, Any] | None) -> ObsStandardizer | None:
        """The inverse of :meth:`state` (None stays None)."""
        if st is None:
            return None
        return cls(tuple(st["mean"]), tuple(st["std"]), tuple(st.get("raw_std", st["std"])))


class ActorCritic(nn.Module):
    """A policy network (logits) and a separate value network, each two tanh layers.

    They share no weights: with a shared trunk and one clipped gradient norm, the critic's
    large early errors dominate the update and the policy barely moves.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64) -> None:
        super().__init__()

        def mlp(out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                nn.Linear(hidden, out),
            )  # fmt: skip

        self.actor = mlp(n_actions)
        self.critic = mlp(1)
        nn.init.zeros_(self.actor[-1].weight)  # start from the uniform policy
        nn.init.zeros_(self.actor[-1].bias)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.actor(obs), self.critic(obs).squeeze(-1)


def discounted_returns(rewards: list[float] | np.ndarray, gamma: float) -> np.ndarray:
    """Monte-Carlo returns ``G_t = r_t + gamma * G_{t+1}`` of one episode."""
    out = np.zeros(len(rewards), dtype=np.float64)
    g = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = float(rewards[t]) + gamma * g
        out[t] = g
    return out


def gae(rewards: np.ndarray, values: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimates of one finished episode (value 0 after the end).

    ``lam = 1`` gives ``G_t - V(s_t)`` (Monte-Carlo return minus baseline); ``lam = 0`` the
    one-step TD error ``r_t + gamma * V(s_{t+1}) - V(s_t)``.
    """
    n = len(rewards)
    adv = np.zeros(n, dtype=np.float64)
    nxt_v, acc = 0.0, 0.0
    for t in range(n - 1, -1, -1):
        delta = rewards[t] + gamma * nxt_v - values[t]
        acc = delta + gamma * lam * acc
        adv[t] = acc
        nxt_v = values[t]
    return adv


