"""Checkpoints of NEON's actor-critic: everything to resume a training run (network, optimiser,
episode counter, every random state, the log, the observation statistics, the best check), or,
without the optimiser, to act (:class:`Checkpointed`, a mixin of
:class:`~pruning_core.rl.agents.a2c.ActorCriticAgent`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from pruning_core.rl.agents.a2c_config import A2CConfig
from pruning_core.rl.agents.a2c_net import ObsStandardizer
from pruning_core.runs import atomic_open, load_checkpoint, save_checkpoint

__all__ = ["Checkpointed"]


class Checkpointed:
    """State, load, save and export for an agent with ``config``, ``net``, ``opt``, ``rng``,
    ``torch_gen``, ``episodes_done``, ``converged_at``, ``obs_norm``, ``best``, ``log_rows``
    and ``env_rng_state``."""

    config: A2CConfig
    obs_dim: int
    n_actions: int
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    rng: Any
    torch_gen: torch.Generator
    episodes_done: int
    converged_at: int | None
    obs_norm: ObsStandardizer | None
    best: dict[str, Any] | None
    log_rows: list[dict[str, Any]]
    env_rng_state: dict[str, Any] | None

    # --- persistence -----------------------------------------------------------------------
    def state(self, include_optimizer: bool = True) -> dict[str, Any]:
        """Everything needed to resume (or, without the optimiser, to act)."""
        st: dict[str, Any] = {
            "kind": "neon-a2c",
            "config": asdict(self.config),
            "obs_dim": self.obs_dim,
            "n_actions": self.n_actions,
            "net": {k: v.detach().clone() for k, v in self.net.state_dict().items()},
            "episodes_done": self.episodes_done,
            "converged_at": self.converged_at,
            "obs_norm": None if self.obs_norm is None else self.obs_norm.state(),
        }
        if include_optimizer:
            st.update(
                optimizer=self.opt.state_dict(),
                rng=self.rng.bit_generator.state,
                torch_gen=self.torch_gen.get_state(),
                torch_rng=torch.get_rng_state(),
                env_rng=self.env_rng_state,
                log=list(self.log_rows),
                best=self.best,
            )
        return st

    def load_state(self, st: dict[str, Any]) -> None:
        """Restore a :meth:`state` (checks that the sizes match)."""
        if st.get("kind") != "neon-a2c":
            raise ValueError("not a NEON actor-critic checkpoint")
        if st["obs_dim"] != self.obs_dim or st["n_actions"] != self.n_actions:
            raise ValueError(
                f"checkpoint is for obs_dim={st['obs_dim']}, n_actions={st['n_actions']}; this "
                f"agent has {self.obs_dim}, {self.n_actions}"
            )
        self.net.load_state_dict(st["net"])
        self.episodes_done = int(st.get("episodes_done", 0))
        conv = st.get("converged_at")
        self.converged_at = None if conv is None else int(conv)
        self.obs_norm = ObsStandardizer.from_state(st.get("obs_norm"))
        if self.config.standardize_obs and self.obs_norm is None and self.episodes_done:
            raise ValueError("checkpoint of a standardize_obs agent without its statistics")
        if "optimizer" in st:
            self.opt.load_state_dict(st["optimizer"])
            self.rng.bit_generator.state = st["rng"]
            self.torch_gen.set_state(st["torch_gen"])
            torch.set_rng_state(st["torch_rng"])
            self.env_rng_state = st.get("env_rng")
            self.log_rows = list(st.get("log", []))
            self.best = st.get("best")

    def save(self, path: str | Path, include_optimizer: bool = True) -> Path:
        """Write a checkpoint (atomic, SHA-256 checked); without the optimiser for shipping."""
        return save_checkpoint(path, self.state(include_optimizer))

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """An agent from a checkpoint written by :meth:`save` (or the shipped file)."""
        st = load_checkpoint(path)
        if not isinstance(st, dict) or st.get("kind") != "neon-a2c":
            raise ValueError(f"{path} is not a NEON actor-critic checkpoint")
        agent = cls(st["obs_dim"], st["n_actions"], A2CConfig(**st["config"]))
        agent.load_state(st)
        return agent

    def export(self, path: str | Path) -> Path:
        """Write a small acting-only file (weights in float32, config; no optimiser, no log)."""
        path = Path(path)
        with atomic_open(path, "wb") as fh:
            torch.save(self.state(include_optimizer=False), fh)
        return path
