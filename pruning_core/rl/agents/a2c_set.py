"""NEON's agents as a set, one per allowed loss ``C`` (:class:`AgentsByC`), and the shipped set
(:func:`load_shipped_agents`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from pruning_core.rl.agents.a2c import A2CConfig, ActorCriticAgent
from pruning_core.rl.envs.neon_features import OBS_DIM
from pruning_core.runs import atomic_open, load_checkpoint

__all__ = ["SHIPPED_AGENT", "AgentsByC", "load_shipped_agent", "load_shipped_agents"]


SHIPPED_AGENT = Path(__file__).resolve().parents[2] / "assets" / "neon_agent.pt"
"""The trained NEON agents that ship with the package (see ``neon_agent.json`` beside it): one
agent per C (:class:`AgentsByC`), or, in files of earlier versions, one C-conditioned agent."""


class AgentsByC(Mapping[float, ActorCriticAgent]):
    """NEON's agents, one per allowed loss ``C`` (as in the paper), read as a mapping C -> agent.

    :meth:`for_C` picks the agent for a ``C``: the one trained at that ``C``, else the one of the
    largest trained ``C`` below it (it prunes no harder than that ``C`` allows), else the
    smallest. A single C-conditioned agent (files of earlier versions) serves every ``C``
    (:meth:`conditioned`).
    """

    KIND = "neon-a2c-per-C"

    def __init__(self, agents: Mapping[float, ActorCriticAgent]) -> None:
        if not agents:
            raise ValueError("AgentsByC needs at least one agent")
        self._agents = {float(C): a for C, a in sorted(agents.items())}
        self.shared = False
        """True when one C-conditioned agent serves every C."""

    @classmethod
    def conditioned(cls, agent: ActorCriticAgent) -> AgentsByC:
        """One C-conditioned agent used for every ``C``."""
        out = cls({0.0: agent})
        out.shared = True
        return out

    def __getitem__(self, C: float) -> ActorCriticAgent:
        return self._agents[float(C)]

    def __iter__(self) -> Iterator[float]:
        return iter(self._agents)

    def __len__(self) -> int:
        return len(self._agents)

    def for_C(self, C: float) -> ActorCriticAgent:
        """The agent for an allowed loss of ``C`` points (see the class docstring)."""
        if not float(C) >= 0.0:
            raise ValueError(f"C must be >= 0 percentage points, got {C}")
        if self.shared:
            return next(iter(self._agents.values()))
        below = [c for c in self._agents if c <= float(C)]
        return self._agents[max(below) if below else min(self._agents)]

    def export(self, path: str | Path) -> Path:
        """One small acting-only file with every agent (weights in float32, no optimiser)."""
        path = Path(path)
        st = {
            "kind": self.KIND,
            "agents": {f"{C:g}": a.state(include_optimizer=False) for C, a in self.items()},
        }
        with atomic_open(path, "wb") as fh:
            torch.save(st, fh)
        return path

    @classmethod
    def load(cls, path: str | Path) -> AgentsByC:
        """The agents of a file written by :meth:`export`, or a single agent's file
        (:meth:`ActorCriticAgent.export`) as a C-conditioned set."""
        st = load_checkpoint(path)
        if isinstance(st, dict) and st.get("kind") == cls.KIND:
            agents = {}
            for C, a in st["agents"].items():
                agent = ActorCriticAgent(a["obs_dim"], a["n_actions"], A2CConfig(**a["config"]))
                agent.load_state(a)
                agents[float(C)] = agent
            return cls(agents)
        return cls.conditioned(ActorCriticAgent.load(path))


def load_shipped_agents(path: str | Path | None = None) -> AgentsByC:
    """The NEON agents shipped in ``pruning_core/assets/neon_agent.pt`` (or ``path``)."""
    path = Path(path) if path is not None else SHIPPED_AGENT
    if not path.is_file():
        raise FileNotFoundError(
            f"no trained NEON agent at {path}. Build it with "
            "`python -m pruning_core.studies.neon ship`."
        )
    agents = AgentsByC.load(path)
    for agent in agents.values():
        if agent.obs_dim != OBS_DIM:
            raise ValueError(
                f"the agent at {path} expects {agent.obs_dim} observation numbers, NeonEnv "
                f"gives {OBS_DIM}: rebuild it with `python -m pruning_core.studies.neon ship`."
            )
    return agents


def load_shipped_agent(path: str | Path | None = None, C: float = 1.0) -> ActorCriticAgent:
    """The shipped NEON agent for an allowed loss of ``C`` points (:meth:`AgentsByC.for_C`)."""
    return load_shipped_agents(path).for_C(C)
