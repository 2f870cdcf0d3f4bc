"""The episode loop: :func:`rollout` plays one episode of a policy through a gymnasium env.

Every place that plays episodes (training the agents, greedy evaluations, random baselines,
benchmarks) goes through :func:`rollout`, so there is one loop to read and to test.

**The policy protocol** (:class:`Policy`): any callable ``policy(obs) -> action``. It is called
once per step, with the observation the env returned last (from ``reset`` at the first step),
and its action goes straight to ``env.step``. A policy that draws random numbers draws them in
that order, one call per step, so a seeded policy replays the same episode; it must not reset or
step the env itself. A bound method (``dqn_agent.act``), a ``functools.partial`` (``partial(
a2c_agent.act, greedy=True)``) or a lambda all qualify; :func:`uniform_random` and
:func:`replay` build the two common ones that hold no network.

**Interleaved learning**: ``on_step(transition)`` is called after each ``env.step`` (before the
policy is asked for the next action) with a :class:`Transition`, so an off-policy learner (the
DQN's replay buffer and TD updates) learns inside the episode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

__all__ = ["Episode", "Policy", "Transition", "replay", "rollout", "uniform_random"]


class Policy(Protocol):
    """``policy(obs) -> action``: called once per step with the current observation."""

    def __call__(self, obs: Any, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Transition:
    """One step, as ``on_step`` receives it: ``obs`` is the observation the action was chosen on."""

    t: int
    """Index of the step in the episode (0 for the first)."""
    obs: Any
    action: Any
    reward: float
    next_obs: Any
    terminated: bool
    truncated: bool
    info: dict[str, Any]


@dataclass
class Episode:
    """What one episode did: one entry per step in ``actions``, ``rewards`` and ``infos``."""

    actions: list[Any] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    reset_info: dict[str, Any] = field(default_factory=dict)
    """The info ``env.reset`` returned."""
    observations: list[Any] | None = None
    """With ``keep_observations``: the ``length + 1`` observations, from reset's to the last
    step's, as the env returned them (not copied); otherwise None."""
    terminated: bool = False
    truncated: bool = False
    seconds: float = 0.0
    """Wall time of the steps (policy, ``env.step``, ``on_step``), the reset not included."""

    @property
    def length(self) -> int:
        """Number of steps."""
        return len(self.actions)

    @property
    def episode_return(self) -> float:
        """Undiscounted sum of the rewards, added in step order."""
        total = 0.0
        for r in self.rewards:
            total += r
        return total

    @property
    def info(self) -> dict[str, Any]:
        """The last step's info (where the env reports how the episode ended)."""
        return self.infos[-1]


def rollout(
    env: gym.Env,
    policy: Policy,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    keep_observations: bool = False,
    on_step: Callable[[Transition], None] | None = None,
) -> Episode:
    """Play one episode of ``policy`` from ``env.reset(seed=seed, options=options)``.

    The episode ends when the env reports ``terminated`` or ``truncated``. The env is left in
    its final state (for PuRL and NEON: the pruned network). Random numbers are drawn in this
    order: the env's at reset, then per step the policy's, the env's in ``step``, and
    ``on_step``'s.

    Args:
        env: a gymnasium environment.
        policy: ``obs -> action`` (see :class:`Policy`).
        seed: passed to ``env.reset`` (None: the env's RNG goes on where it is).
        options: passed to ``env.reset``.
        keep_observations: record every observation in :attr:`Episode.observations`.
        on_step: called with each step's :class:`Transition` right after ``env.step``.

    Returns:
        The :class:`Episode`.
    """
    obs, reset_info = env.reset(seed=seed, options=options)
    ep = Episode(reset_info=reset_info, observations=[obs] if keep_observations else None)
    t0 = time.perf_counter()
    done = False
    while not done:
        action = policy(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        ep.actions.append(action)
        ep.rewards.append(float(reward))
        ep.infos.append(info)
        if ep.observations is not None:
            ep.observations.append(next_obs)
        if on_step is not None:
            on_step(
                Transition(
                    ep.length - 1, obs, action, float(reward), next_obs, bool(terminated),
                    bool(truncated), info,
                )
            )  # fmt: skip
        obs = next_obs
        ep.terminated, ep.truncated = bool(terminated), bool(truncated)
        done = ep.terminated or ep.truncated
    ep.seconds = time.perf_counter() - t0
    return ep


def uniform_random(n: int, rng: np.random.Generator) -> Policy:
    """Uniformly random actions ``0 .. n-1``, one ``rng.integers(n)`` draw per step."""
    return lambda _obs: int(rng.integers(n))


def replay(actions: Iterable[Any]) -> Policy:
    """An open-loop policy: the given actions in order, whatever the observation."""
    it = iter(actions)

    def policy(_obs: Any) -> Any:
        try:
            return next(it)
        except StopIteration:
            raise RuntimeError("replay: the episode is longer than the actions given") from None

    return policy
