"""NEON's actor-critic hyperparameters (:class:`A2CConfig`) and its named settings
(:data:`A2C_PRESETS`: ``paper`` is Hirsch & Katz's)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

__all__ = ["A2CConfig", "A2C_PRESETS", "a2c_preset"]


@dataclass(frozen=True)
class A2CConfig:
    """Hyperparameters of the advantage actor-critic."""

    lr: float = 1e-3
    """Adam learning rate (NEON: 1e-3)."""
    gamma: float = 0.99
    """Discount of the Monte-Carlo returns (NEON: 0.99)."""
    hidden: int = 64
    """Width of the two hidden layers of the actor and of the critic (64: the saved agent is
    about 200 KB)."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus (keeps the policy exploring)."""
    value_coef: float = 0.5
    """Weight of the critic's squared error in the loss."""
    episodes_per_update: int = 1
    """Episodes per gradient update (NEON: 1)."""
    warmup_episodes: int = 10
    """First episodes with uniform random actions; only the critic learns from them."""
    reward_scale: float = 40.0**3
    """NEON's rewards are divided by this before learning (40**3: keep 0.6 of a wide layer;
    rounding lets a small layer lose up to 50%, see
    :func:`~pruning_core.rl.rewards.neon_max_removed`)."""
    gae_lambda: float = 1.0
    """Advantage estimator: 1.0 = Monte-Carlo return minus value (NEON); < 1 bootstraps (GAE)."""
    normalize_advantages: bool = False
    """Divide a batch's advantages by their root mean square (not centred: with one short
    episode per update, centring would cancel the episode's overall signal). Off by default:
    Adam already normalises the step size."""
    max_grad_norm: float = 1.0
    """Gradient clipping, applied to the actor and the critic separately."""
    standardize_obs: bool = False
    """Standardise each observation feature with statistics fixed from the warm-up episodes
    (training networks only); saved with the agent (needs ``warmup_episodes >= 1``)."""
    preset: str = "custom"
    """The name of the :data:`A2C_PRESETS` entry this config came from (recorded in run
    configs)."""
    seed: int = 0
    """Seed of the network initialisation, the action sampling and the environment."""


A2C_PRESETS: dict[str, A2CConfig] = {
    "paper": A2CConfig(preset="paper"),
    "entropy_stop": A2CConfig(lr=7e-3, gae_lambda=0.0, normalize_advantages=True,
                              preset="entropy_stop"),
    "standardized": A2CConfig(lr=7e-3, gae_lambda=0.0, normalize_advantages=True,
                              standardize_obs=True, entropy_coef=0.05, preset="standardized"),
}  # fmt: skip
"""Named agent settings. ``paper``: Hirsch & Katz (Adam 1e-3, Monte-Carlo returns, rewards only
scaled, raw observations, entropy 0.01). ``entropy_stop``: the earlier study setting (Adam 7e-3,
one-step TD advantages normalised per episode), whose agents collapsed to one constant action
string. ``standardized``: that plus standardised observations and entropy 0.05, the study's
default (measured: held-out validation return and per-network policies, see notebook 04)."""


def a2c_preset(name: str, **overrides: Any) -> A2CConfig:
    """The :data:`A2C_PRESETS` entry ``name`` with ``overrides`` (``seed``, ``warmup_episodes``...)."""
    if name not in A2C_PRESETS:
        raise ValueError(f"unknown A2C preset {name!r}; known: {sorted(A2C_PRESETS)}")
    return replace(A2C_PRESETS[name], **overrides)
