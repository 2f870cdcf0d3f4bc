"""rollout: one episode of a policy, its record, truncation, seeding and the on_step order."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

from pruning_core.rl.rollout import Episode, Transition, replay, rollout, uniform_random


class CountEnv(gym.Env):
    """``length`` steps; the reward is the action, the observation ``[t, noise from np_random]``.

    ``log`` records every reset and step, so tests can check what happened in which order.
    """

    def __init__(self, length: int = 5, log: list[tuple] | None = None) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = spaces.Discrete(4)
        self.length = length
        self.log = log if log is not None else []
        self._t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self._t, self.np_random.random()])

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self._t = 0
        self.log.append(("reset", seed, options))
        return self._obs(), {"start": True, "options": options}

    def step(self, action: Any) -> tuple:
        self.log.append(("step", self._t, action))
        self._t += 1
        info = {"t": self._t}
        return self._obs(), float(action), self._t >= self.length, False, info


def test_length_return_and_infos() -> None:
    env = CountEnv(length=5)
    ep = rollout(env, replay([1, 2, 3, 0, 2]), options={"x": 1})
    assert isinstance(ep, Episode)
    assert ep.length == 5
    assert ep.actions == [1, 2, 3, 0, 2]
    assert ep.rewards == [1.0, 2.0, 3.0, 0.0, 2.0]
    assert ep.episode_return == 8.0
    assert ep.terminated and not ep.truncated
    assert [i["t"] for i in ep.infos] == [1, 2, 3, 4, 5]
    assert ep.info == {"t": 5}
    assert ep.reset_info == {"start": True, "options": {"x": 1}}
    assert ep.observations is None
    assert ep.seconds >= 0.0
    assert env.log[0] == ("reset", None, {"x": 1})


def test_keep_observations() -> None:
    env = CountEnv(length=3)
    ep = rollout(env, replay([0, 0, 0]), seed=1, keep_observations=True)
    assert ep.observations is not None and len(ep.observations) == ep.length + 1
    assert [o[0] for o in ep.observations] == [0, 1, 2, 3]


def test_truncation_ends_the_episode() -> None:
    env = TimeLimit(CountEnv(length=100), max_episode_steps=3)
    ep = rollout(env, lambda _obs: 1)
    assert ep.length == 3
    assert ep.truncated and not ep.terminated
    assert ep.episode_return == 3.0


def test_seed_reproducibility() -> None:
    def play(env_seed: int, policy_seed: int) -> Episode:
        env = CountEnv(length=6)
        policy = uniform_random(4, np.random.default_rng(policy_seed))
        return rollout(env, policy, seed=env_seed, keep_observations=True)

    a, b = play(3, 7), play(3, 7)
    assert a.actions == b.actions
    np.testing.assert_array_equal(np.stack(a.observations), np.stack(b.observations))
    # uniform_random draws one rng.integers(n) per step, in step order
    assert a.actions == np.random.default_rng(7).integers(4, size=6).tolist()
    assert all(type(x) is int for x in a.actions)
    c = play(4, 8)
    assert c.actions != a.actions
    assert not np.array_equal(np.stack(c.observations), np.stack(a.observations))


def test_unseeded_reset_continues_the_env_rng() -> None:
    env = CountEnv(length=2)
    first = rollout(env, replay([0, 0]), seed=5, keep_observations=True)
    second = rollout(env, replay([0, 0]), keep_observations=True)
    again = CountEnv(length=2)
    again.reset(seed=5)
    again.step(0)
    again.step(0)
    obs, _ = again.reset()
    np.testing.assert_array_equal(second.observations[0], obs)
    assert not np.array_equal(second.observations[0], first.observations[0])


def test_policy_step_and_callback_order() -> None:
    log: list[tuple] = []
    env = CountEnv(length=3, log=log)
    seen: list[np.ndarray] = []
    transitions: list[Transition] = []

    def policy(obs: np.ndarray) -> int:
        log.append(("policy", int(obs[0])))
        seen.append(obs)
        return 2

    def on_step(tr: Transition) -> None:
        log.append(("on_step", tr.t))
        transitions.append(tr)

    ep = rollout(env, policy, seed=0, on_step=on_step)
    assert log == [
        ("reset", 0, None),
        ("policy", 0), ("step", 0, 2), ("on_step", 0),
        ("policy", 1), ("step", 1, 2), ("on_step", 1),
        ("policy", 2), ("step", 2, 2), ("on_step", 2),
    ]  # fmt: skip
    assert [tr.obs is o for tr, o in zip(transitions, seen, strict=True)] == [True] * 3
    assert [tr.next_obs is o for tr, o in zip(transitions[:-1], seen[1:], strict=True)] == [True] * 2
    assert [tr.terminated for tr in transitions] == [False, False, True]
    assert [tr.reward for tr in transitions] == ep.rewards
    assert transitions[-1].info is ep.info


def test_replay_too_short_raises() -> None:
    with pytest.raises(RuntimeError, match="longer than the actions"):
        rollout(CountEnv(length=3), replay([1]))
