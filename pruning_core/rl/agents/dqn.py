"""Deep Q-learning (DQN) for PuRL, in one readable file (CleanRL style).

Experience replay, a target network (hard or soft updates), a linear epsilon-greedy schedule,
the Huber loss, gradient-norm clipping and an optional Double-DQN target. Every hyperparameter
lives in :class:`DQNConfig`.

:func:`train` works on any gymnasium environment with a ``Box`` observation and a ``Discrete``
action space. It logs one CSV row per episode and checkpoints everything that determines the
rest of the run (networks, optimiser, replay buffer, the agent's and the environment's RNG
states, counters, the log so far), so an interrupted run resumes from its last checkpoint and
ends bit for bit where an uninterrupted run with the same seed ends.

Every episode is played by :func:`pruning_core.rl.rollout.rollout`; in :func:`train` its
``on_step`` callback fills the replay buffer and makes the TD updates between the steps.

After training, :func:`greedy_policy` plays one greedy episode (for PuRL: the per-layer actions,
masks and sparsities); :func:`random_policy` is the baseline with the same number of episodes.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from pruning_core.config import progress, seeded
from pruning_core.rl.rollout import Transition, rollout, uniform_random
from pruning_core.runs import load_checkpoint, resume_checkpoint, save_checkpoint, write_csv

__all__ = [
    "DQNAgent",
    "DQNConfig",
    "GreedyRollout",
    "LOG_COLUMNS",
    "QNetwork",
    "ReplayBuffer",
    "greedy_policy",
    "linear_epsilon",
    "random_policy",
    "train",
]


LOG_COLUMNS: tuple[str, ...] = (
    "episode",
    "return",
    "final_sparsity",
    "final_accuracy",
    "epsilon",
    "steps",
    "loss",
    "seconds",
    "wall_seconds",
)
"""Columns of the per-episode log (``loss``: mean TD loss of the episode's updates, NaN before
learning starts; ``seconds``: the episode's wall time; ``wall_seconds``: since the run began)."""


@dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of DQN (defaults suit PuRL on a small network)."""

    seed: int = 0
    """Seed of the network initialisation, the agent's RNG and the first ``env.reset``."""
    episodes: int = 300
    """Episodes of training (the schedule is defined over all of them, also when resumed)."""
    learning_rate: float = 1e-3
    """Adam learning rate of the Q-network."""
    buffer_size: int = 20_000
    """Transitions kept in the replay buffer (oldest overwritten first)."""
    batch_size: int = 64
    """Transitions per gradient step, sampled uniformly from the buffer."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 1.0
    """Target-network update rate: 1.0 copies the Q-network (hard update), < 1 is Polyak averaging."""
    target_update_interval: int = 100
    """Env steps between target-network updates."""
    start_epsilon: float = 1.0
    """Exploration rate at the first step."""
    end_epsilon: float = 0.05
    """Exploration rate after the decay."""
    exploration_fraction: float = 0.5
    """Fraction of all env steps (episodes x episode length) over which epsilon decays linearly."""
    learning_starts: int = 200
    """Env steps of pure data collection before the first gradient step."""
    train_frequency: int = 1
    """Env steps between gradient phases."""
    gradient_steps: int = 1
    """Gradient steps per phase."""
    max_grad_norm: float = 10.0
    """Gradient-norm clipping of the Q-network (inf: none)."""
    huber_delta: float = 1.0
    """Delta of the Huber (smooth L1) TD loss."""
    double_dqn: bool = True
    """Double DQN: the online network picks the next action, the target network values it."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden layer widths of the Q-network (ReLU MLP)."""
    checkpoint_every: int = 10
    """Episodes between checkpoints (the last episode is always checkpointed)."""
    episode_length: int | None = None
    """Steps per episode used for the epsilon schedule; None reads ``env.unwrapped.episode_length``
    (PuRLEnv) or measures the first episode."""


class QNetwork(nn.Module):
    """A ReLU MLP from observation features to one Q-value per action."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: tuple[int, ...]) -> None:
        super().__init__()
        dims = (obs_dim, *hidden_sizes)
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], n_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values, shape (batch, n_actions)."""
        return self.net(obs)


@dataclass
class ReplayBuffer:
    """A ring buffer of transitions held in NumPy arrays (cheap to checkpoint)."""

    obs: np.ndarray
    next_obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    pos: int = 0
    full: bool = False

    @classmethod
    def empty(cls, capacity: int, obs_dim: int) -> ReplayBuffer:
        """A buffer for ``capacity`` transitions of ``obs_dim`` features."""
        return cls(
            obs=np.zeros((capacity, obs_dim), np.float32),
            next_obs=np.zeros((capacity, obs_dim), np.float32),
            actions=np.zeros(capacity, np.int64),
            rewards=np.zeros(capacity, np.float32),
            dones=np.zeros(capacity, np.float32),
        )

    def __len__(self) -> int:
        return len(self.actions) if self.full else self.pos

    def add(
        self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, done: bool
    ) -> None:
        """Store one transition (``done``: terminated, so no bootstrap from ``next_obs``)."""
        i = self.pos
        self.obs[i], self.next_obs[i] = obs, next_obs
        self.actions[i], self.rewards[i], self.dones[i] = action, reward, float(done)
        self.pos = (i + 1) % len(self.actions)
        self.full = self.full or self.pos == 0

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        """A uniform batch (obs, actions, rewards, next_obs, dones) as tensors."""
        idx = rng.integers(0, len(self), size=batch_size)
        return (
            torch.from_numpy(self.obs[idx]),
            torch.from_numpy(self.actions[idx]),
            torch.from_numpy(self.rewards[idx]),
            torch.from_numpy(self.next_obs[idx]),
            torch.from_numpy(self.dones[idx]),
        )


def linear_epsilon(cfg: DQNConfig, step: int, total_steps: int) -> float:
    """Epsilon at env step ``step``: linear from start to end over the exploration fraction."""
    span = max(cfg.exploration_fraction * total_steps, 1.0)
    frac = min(step / span, 1.0)
    return cfg.start_epsilon + frac * (cfg.end_epsilon - cfg.start_epsilon)


@dataclass
class DQNAgent:
    """A trained (or training) DQN agent: its config, Q-network and per-episode log."""

    cfg: DQNConfig
    q_net: QNetwork
    obs_dim: int
    n_actions: int
    log: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(LOG_COLUMNS)))

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of one observation."""
        x = torch.as_tensor(np.asarray(obs, np.float32)).unsqueeze(0)
        return self.q_net(x)[0].numpy()

    def act(self, obs: np.ndarray) -> int:
        """The greedy action (ties: the lowest index)."""
        return int(np.argmax(self.q_values(obs)))

    def save(self, path: str | Path) -> Path:
        """Save config, Q-network and log (atomically, SHA-256 checked)."""
        return save_checkpoint(
            path,
            {
                "cfg": asdict(self.cfg),
                "q_net": self.q_net.state_dict(),
                "obs_dim": self.obs_dim,
                "n_actions": self.n_actions,
                "log": self.log.to_dict("list"),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> DQNAgent:
        """Load an agent saved with :meth:`save` (on the CPU)."""
        blob = load_checkpoint(path)
        cfg = _config_from_dict(blob["cfg"])
        q = QNetwork(blob["obs_dim"], blob["n_actions"], cfg.hidden_sizes)
        q.load_state_dict(blob["q_net"])
        return cls(cfg, q, blob["obs_dim"], blob["n_actions"], pd.DataFrame(blob["log"]))


def _config_from_dict(d: dict[str, Any]) -> DQNConfig:
    d = dict(d)
    d["hidden_sizes"] = tuple(d["hidden_sizes"])
    return DQNConfig(**d)


def _make_q(cfg: DQNConfig, obs_dim: int, n_actions: int) -> QNetwork:
    with seeded(cfg.seed):
        return QNetwork(obs_dim, n_actions, cfg.hidden_sizes)


def _spaces(env: gym.Env) -> tuple[int, int]:
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise TypeError(f"DQN needs a Discrete action space: got {env.action_space}.")
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise TypeError(f"DQN needs a Box observation space: got {env.observation_space}.")
    return int(np.prod(env.observation_space.shape)), int(env.action_space.n)


def _env_rng_state(env: gym.Env) -> dict[str, Any]:
    return env.unwrapped.np_random.bit_generator.state


def _set_env_rng_state(env: gym.Env, state: dict[str, Any]) -> None:
    bitgen = getattr(np.random, state["bit_generator"])()
    bitgen.state = state
    env.unwrapped.np_random = np.random.Generator(bitgen)


def _episode_length(env: gym.Env, cfg: DQNConfig) -> int | None:
    if cfg.episode_length is not None:
        return cfg.episode_length
    n = getattr(env.unwrapped, "episode_length", None)
    return int(n) if n is not None else None


def train(
    env: gym.Env,
    cfg: DQNConfig,
    log_path: str | Path | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = True,
    stop_after: int | None = None,
    desc: str | None = None,
) -> DQNAgent:
    """Train a DQN agent on ``env`` for ``cfg.episodes`` episodes.

    Args:
        env: a gymnasium environment (Box observations, Discrete actions), e.g. PuRLEnv.
        cfg: the hyperparameters.
        log_path: CSV of one row per episode (``LOG_COLUMNS``), rewritten atomically at every
            checkpoint and at the end.
        checkpoint_path: where the full training state is saved every ``cfg.checkpoint_every``
            episodes and at the end; with ``resume=True`` an existing checkpoint is loaded and
            training continues from it (to the same end as an uninterrupted run).
        resume: load ``checkpoint_path`` if it exists (a corrupt one is set aside as
            ``<name>.corrupt``: training starts afresh); False starts afresh (and overwrites it).
        stop_after: stop (checkpointed) after this many episodes in total, as if interrupted;
            a later call with ``resume=True`` finishes the run.
        desc: progress-bar label.

    Returns:
        The agent (Q-network and the log so far).
    """
    obs_dim, n_actions = _spaces(env)
    q_net = _make_q(cfg, obs_dim, n_actions)
    target = _make_q(cfg, obs_dim, n_actions)
    target.load_state_dict(q_net.state_dict())
    optimizer = torch.optim.Adam(q_net.parameters(), lr=cfg.learning_rate)
    buffer = ReplayBuffer.empty(cfg.buffer_size, obs_dim)
    rng = np.random.default_rng(cfg.seed)
    episode = global_step = 0
    wall_before = 0.0
    rows: list[dict[str, Any]] = []
    ep_len = _episode_length(env, cfg)
    env_state: dict[str, Any] | None = None

    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    state = resume_checkpoint(ckpt) if ckpt is not None and resume else None
    if state is not None:
        if state["cfg"] != asdict(cfg):
            raise ValueError(
                f"checkpoint {ckpt} was made with another DQNConfig; delete it or pass "
                "resume=False to start afresh."
            )
        q_net.load_state_dict(state["q_net"])
        target.load_state_dict(state["target"])
        optimizer.load_state_dict(state["optimizer"])
        buffer = ReplayBuffer(**state["buffer"])
        rng.bit_generator.state = state["rng"]
        episode, global_step = state["episode"], state["global_step"]
        wall_before = state["wall_seconds"]
        rows = state["rows"]
        ep_len = state["episode_length"]
        env_state = state["env_rng"]

    def checkpoint() -> None:
        if log_path is not None:
            write_csv(log_path, pd.DataFrame(rows, columns=list(LOG_COLUMNS)))
        if ckpt is None:
            return
        save_checkpoint(
            ckpt,
            {
                "cfg": asdict(cfg),
                "q_net": q_net.state_dict(),
                "target": target.state_dict(),
                "optimizer": optimizer.state_dict(),
                "buffer": asdict(buffer),
                "rng": rng.bit_generator.state,
                "env_rng": _env_rng_state(env),
                "episode": episode,
                "global_step": global_step,
                "wall_seconds": wall_before + (time.perf_counter() - t_start),
                "rows": rows,
                "episode_length": ep_len,
            },
        )

    losses: list[float] = []  # TD losses of the current episode
    eps = cfg.start_epsilon

    def explore(obs: np.ndarray) -> int:
        """Epsilon-greedy on the Q-network, epsilon by the global step."""
        nonlocal eps
        if ep_len is not None:
            eps = linear_epsilon(cfg, global_step, cfg.episodes * ep_len)
        if rng.random() < eps:
            return int(rng.integers(n_actions))
        with torch.no_grad():
            q = q_net(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))
        return int(q.argmax(dim=1)[0])

    def learn(tr: Transition) -> None:
        """Store the transition, then the TD updates and target syncs that are due."""
        nonlocal global_step
        buffer.add(tr.obs, tr.action, tr.reward, tr.next_obs, tr.terminated)
        global_step += 1
        if global_step >= cfg.learning_starts and global_step % cfg.train_frequency == 0:
            for _ in range(cfg.gradient_steps):
                losses.append(_td_step(cfg, q_net, target, optimizer, buffer, rng))
        if global_step % cfg.target_update_interval == 0:
            _update_target(q_net, target, cfg.tau)

    end = cfg.episodes if stop_after is None else min(stop_after, cfg.episodes)
    t_start = time.perf_counter()
    bar = progress(total=cfg.episodes, initial=episode, desc=desc or "DQN", unit="ep")
    try:
        while episode < end:
            t_ep = time.perf_counter()
            if episode > 0 and env_state is not None:  # first episode after a resume
                _set_env_rng_state(env, env_state)
                env_state = None
            losses.clear()
            eps = cfg.start_epsilon
            ep = rollout(env, explore, seed=cfg.seed if episode == 0 else None, on_step=learn)
            if ep_len is None:
                ep_len = ep.length
            episode += 1
            rows.append(
                {
                    "episode": episode,
                    "return": ep.episode_return,
                    "final_sparsity": float(ep.info.get("sparsity", np.nan)),
                    "final_accuracy": float(ep.info.get("accuracy", np.nan)),
                    "epsilon": eps,
                    "steps": ep.length,
                    "loss": float(np.mean(losses)) if losses else float("nan"),
                    "seconds": time.perf_counter() - t_ep,
                    "wall_seconds": wall_before + (time.perf_counter() - t_start),
                }
            )
            bar.update(1)
            bar.set_postfix(ret=round(ep.episode_return, 3), eps=round(eps, 3), refresh=False)
            if episode % cfg.checkpoint_every == 0 or episode == end:
                checkpoint()
    finally:
        bar.close()
    log = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    if log_path is not None:  # also when a finished run is loaded from its checkpoint
        write_csv(log_path, log)
    return DQNAgent(cfg, q_net, obs_dim, n_actions, log)


def _td_step(
    cfg: DQNConfig,
    q_net: QNetwork,
    target: QNetwork,
    optimizer: torch.optim.Optimizer,
    buffer: ReplayBuffer,
    rng: np.random.Generator,
) -> float:
    obs, actions, rewards, next_obs, dones = buffer.sample(rng, cfg.batch_size)
    with torch.no_grad():
        if cfg.double_dqn:
            next_a = q_net(next_obs).argmax(dim=1, keepdim=True)
            next_q = target(next_obs).gather(1, next_a).squeeze(1)
        else:
            next_q = target(next_obs).max(dim=1).values
        td_target = rewards + cfg.gamma * next_q * (1.0 - dones)
    q_sa = q_net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
    loss = F.huber_loss(q_sa, td_target, delta=cfg.huber_delta)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm)
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def _update_target(q_net: QNetwork, target: QNetwork, tau: float) -> None:
    for p, tp in zip(q_net.parameters(), target.parameters(), strict=True):
        if tau >= 1.0:
            tp.copy_(p)
        else:
            tp.mul_(1.0 - tau).add_(p, alpha=tau)


@dataclass
class GreedyRollout:
    """One greedy episode: the action per step and, for PuRL, the resulting masks."""

    actions: list[int]
    action_values: list[float]
    layers: list[str]
    rewards: list[float]
    layer_sparsity: dict[str, float]
    masks: dict[str, torch.Tensor]
    sparsity: float
    accuracy: float

    @property
    def episode_return(self) -> float:
        """Sum of the rewards of the episode."""
        return float(sum(self.rewards))

    def table(self) -> pd.DataFrame:
        """One row per step: layer, action index and value, reward, the layer's final sparsity."""
        return pd.DataFrame(
            {
                "step": range(len(self.actions)),
                "layer": self.layers,
                "action": self.actions,
                "action_value": self.action_values,
                "reward": self.rewards,
                "layer_sparsity": [self.layer_sparsity.get(n, np.nan) for n in self.layers],
            }
        )


def greedy_policy(agent: DQNAgent, env: gym.Env, seed: int | None = None) -> GreedyRollout:
    """Play one episode with the agent's greedy actions and report what it pruned.

    The environment is left in the final (pruned) state, so the masks can be fine-tuned next.
    """
    ep = rollout(env, agent.act, seed=seed)
    grid = getattr(env.unwrapped, "action_values", None)
    info = ep.info
    masker = getattr(env.unwrapped, "masker", None)
    masks = {k: v.detach().clone().cpu() for k, v in masker.masks.items()} if masker else {}
    names = getattr(env.unwrapped, "layer_names", None)
    per_layer = info.get("layer_sparsity")  # PuRL: an array in layer_names order
    return GreedyRollout(
        actions=ep.actions,
        action_values=[float(grid[a]) if grid is not None else float(a) for a in ep.actions],
        layers=[str(inf.get("layer_name", t)) for t, inf in enumerate(ep.infos)],
        rewards=ep.rewards,
        layer_sparsity=(
            {n: float(s) for n, s in zip(names, per_layer, strict=True)}
            if names is not None and per_layer is not None else {}
        ),  # fmt: skip
        masks=masks,
        sparsity=float(info.get("sparsity", np.nan)),
        accuracy=float(info.get("accuracy", np.nan)),
    )


def random_policy(
    env: gym.Env,
    episodes: int,
    seed: int = 0,
    log_path: str | Path | None = None,
    desc: str | None = None,
) -> pd.DataFrame:
    """The baseline: uniformly random actions for ``episodes`` episodes, logged like :func:`train`."""
    _, n_actions = _spaces(env)
    policy = uniform_random(n_actions, np.random.default_rng(seed))
    rows = []
    t_start = time.perf_counter()
    for episode in progress(range(episodes), desc=desc or "random", unit="ep"):
        t_ep = time.perf_counter()
        ep = rollout(env, policy, seed=seed if episode == 0 else None)
        rows.append(
            {
                "episode": episode + 1,
                "return": ep.episode_return,
                "final_sparsity": float(ep.info.get("sparsity", np.nan)),
                "final_accuracy": float(ep.info.get("accuracy", np.nan)),
                "epsilon": 1.0,
                "steps": ep.length,
                "loss": float("nan"),
                "seconds": time.perf_counter() - t_ep,
                "wall_seconds": time.perf_counter() - t_start,
            }
        )
    df = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    if log_path is not None:
        write_csv(log_path, df)
    return df

