"""n-step DQN: :mod:`.dqn`'s agent with n-step returns, for rewards paid late in the episode.

With PuRL's end-of-episode reward (``reward_mode="episodic"``) every step's reward is 0 but the
last; one-step TD has to carry that reward back one layer per target update, over all of an
episode's steps. With ``n_step`` = the episode length and ``gamma`` = 1 every stored target is
the episode's Monte-Carlo return (no bootstrapping): the terminal reward reaches every layer at
once. Shorter ``n`` mixes: ``G = sum_k gamma^k r_(t+k) + gamma^n max_a Q'(s_(t+n), a)``.

Everything else is :mod:`.dqn`'s (the Q-network, replay buffer, epsilon schedule, Huber TD
step with Double DQN, target updates): :func:`train_nstep` stores n-step transitions in the
same buffer and runs ``_td_step`` with the discount ``gamma ** n``. Instead of checkpoints it
calls ``on_eval(episode, agent)`` after each episode in ``evals`` (0: before training); the
callback returns True to stop early.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from pruning_core.rl.agents.dqn import (
    LOG_COLUMNS,
    DQNAgent,
    DQNConfig,
    ReplayBuffer,
    _make_q,
    _spaces,
    _td_step,
    _update_target,
    linear_epsilon,
)
from pruning_core.rl.rollout import Transition, rollout

__all__ = ["nstep_transitions", "train_nstep"]


def nstep_transitions(
    rewards: Sequence[float], n: int, gamma: float
) -> list[tuple[int, float, int]]:
    """``(t, G_t, k)`` for each step of a finished episode: the n-step return from ``t`` and the
    index ``k`` of the step whose next state it bootstraps from (``t + min(n, T - t) - 1``)."""
    T = len(rewards)
    out = []
    for t in range(T):
        k = min(t + n, T) - 1
        g = sum(gamma**j * float(rewards[t + j]) for j in range(k - t + 1))
        out.append((t, g, k))
    return out


def train_nstep(
    env: Any,
    cfg: DQNConfig,
    n_step: int,
    evals: Sequence[int] = (),
    on_eval: Callable[[int, DQNAgent], bool] | None = None,
) -> DQNAgent:
    """Train a DQN with ``n_step`` returns on ``env`` for ``cfg.episodes`` episodes.

    Transitions enter the buffer when their episode ends (an n-step return needs the next n
    rewards); gradient steps and target updates follow the env steps as in :func:`.dqn.train`.
    ``on_eval(episode, agent)`` runs after each episode listed in ``evals``; True stops.
    """
    if n_step < 1:
        raise ValueError(f"n_step must be >= 1, got {n_step}")
    obs_dim, n_actions = _spaces(env)
    q_net = _make_q(cfg, obs_dim, n_actions)
    target = _make_q(cfg, obs_dim, n_actions)
    target.load_state_dict(q_net.state_dict())
    optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.learning_rate)
    buffer = ReplayBuffer.empty(cfg.buffer_size, obs_dim)
    td_cfg = replace(cfg, gamma=cfg.gamma**n_step)
    rng = np.random.default_rng(cfg.seed)
    ep_len = int(cfg.episode_length or env.unwrapped.episode_length)
    total = cfg.episodes * ep_len
    rows: list[dict[str, Any]] = []
    agent = DQNAgent(cfg, q_net, obs_dim, n_actions)
    state = {"step": 0, "eps": cfg.start_epsilon}
    pending: deque[Transition] = deque()
    losses: list[float] = []
    eval_at = set(evals)

    def explore(obs: np.ndarray) -> int:
        state["eps"] = linear_epsilon(cfg, state["step"], total)
        if rng.random() < state["eps"]:
            return int(rng.integers(n_actions))
        with torch.no_grad():
            q = q_net(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))
        return int(q.argmax(dim=1)[0])

    def learn(tr: Transition) -> None:
        pending.append(tr)
        if tr.terminated or tr.truncated:
            eps = list(pending)
            for t, g, k in nstep_transitions([e.reward for e in eps], n_step, cfg.gamma):
                last = eps[k]
                buffer.add(eps[t].obs, eps[t].action, g, last.next_obs, last.terminated)
            pending.clear()
        state["step"] += 1
        step = state["step"]
        if step >= cfg.learning_starts and step % cfg.train_frequency == 0 and len(buffer):
            for _ in range(cfg.gradient_steps):
                losses.append(_td_step(td_cfg, q_net, target, optimizer, buffer, rng))
        if step % cfg.target_update_interval == 0:
            _update_target(q_net, target, cfg.tau)

    t0 = time.perf_counter()
    if 0 in eval_at and on_eval is not None and on_eval(0, agent):
        return agent
    for episode in range(1, cfg.episodes + 1):
        t_ep = time.perf_counter()
        losses.clear()
        ep = rollout(env, explore, seed=cfg.seed if episode == 1 else None, on_step=learn)
        rows.append({
            "episode": episode, "return": ep.episode_return,
            "final_sparsity": float(ep.info.get("sparsity", np.nan)),
            "final_accuracy": float(ep.info.get("accuracy", np.nan)),
            "epsilon": state["eps"], "steps": ep.length,
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "seconds": time.perf_counter() - t_ep, "wall_seconds": time.perf_counter() - t0,
        })  # fmt: skip
        agent.log = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
        if episode in eval_at and on_eval is not None and on_eval(episode, agent):
            break
    return agent
