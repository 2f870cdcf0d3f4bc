"""RL agents: DQN for PuRL (:mod:`pruning_core.agents.dqn`)."""

from __future__ import annotations

from pruning_core.agents.dqn import (
    DQNAgent,
    DQNConfig,
    GreedyRollout,
    greedy_policy,
    random_policy,
    train,
)

__all__ = ["DQNAgent", "DQNConfig", "GreedyRollout", "greedy_policy", "random_policy", "train"]
