"""NEON's actor-critic: returns, learning on a toy task, save / load / resume, the shipped agent."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from gymnasium import spaces

from pruning_core.data.splits import Splits
from pruning_core.data.tabular import load_tabular
from pruning_core.methods.neon import prune_mlp
from pruning_core.models.mlp import MLPSpec, build_mlp
from pruning_core.pruning.neurons import count_params
from pruning_core.rl.agents.a2c import A2CConfig, ActorCriticAgent, discounted_returns, gae
from pruning_core.rl.agents.a2c_set import SHIPPED_AGENT, load_shipped_agent
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig, NeonTask
from pruning_core.rl.envs.neon_features import OBS_DIM
from pruning_core.studies.neon import CPU_DATASETS
from pruning_core.train.loop import TrainConfig, evaluate, fit

torch.set_num_threads(1)


class Bandit(gym.Env):
    """Three steps per episode; action 2 pays 1, the others 0. A learner must prefer 2."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1, 1, shape=(4,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(4, dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.full(4, self.np_random.uniform(-1, 1), dtype=np.float32)
        return obs, float(action == 2), self.t >= 3, False, {}


def test_returns_by_hand() -> None:
    np.testing.assert_allclose(discounted_returns([1.0, 0.0, 2.0], 0.5), [1.5, 1.0, 2.0])
    r, v = np.array([1.0, 0.0, 2.0]), np.array([0.5, 0.25, 1.0])
    np.testing.assert_allclose(gae(r, v, 0.5, 1.0), discounted_returns(r, 0.5) - v)
    np.testing.assert_allclose(gae(r, v, 0.5, 0.0), [1 + 0.125 - 0.5, 0 + 0.5 - 0.25, 2 - 1])


def test_agent_learns_a_bandit_and_warmup_is_uniform() -> None:
    env = Bandit()
    agent = ActorCriticAgent.for_env(
        env, A2CConfig(lr=3e-2, warmup_episodes=5, reward_scale=1.0, entropy_coef=0.0)
    )
    assert np.allclose(agent.policy(np.zeros(4)), 1 / 3)  # uniform before training
    log = agent.train(env, 5)
    assert log["warmup"].all()
    assert np.allclose(agent.policy(np.zeros(4)), 1 / 3, atol=1e-6)  # critic-only updates
    agent.train(env, 80)
    assert agent.policy(np.zeros(4))[2] > 0.8
    assert agent.act(np.zeros(4), greedy=True) == 2


def _tiny_env(seed: int = 0) -> NeonEnv:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(160, 5, generator=g)
    y = (x[:, 0] > 0.5).long()
    spec = MLPSpec(5, 2, (12, 8), ("relu", "relu"), (False, True), (0.0, 0.0))
    model = build_mlp(spec, seed=0)
    fit(model, (x[:110], y[:110]), val_data=(x[110:], y[110:]), cfg=TrainConfig.mlp(lr=1e-2, epochs=10))
    val = (x[110:], y[110:])
    task = NeonTask.from_model(model, Splits("tiny", 2, train=(x[:110], y[:110]), reward=val, stop=val))
    cfg = NeonEnvConfig(passes=1, ft=TrainConfig.mlp(max_steps=3, steps_per_check=3), stat_rows=40)
    return NeonEnv([task], cfg)


def test_resume_gives_the_same_agent_as_an_uninterrupted_run(tmp_path: Path) -> None:
    cfg = A2CConfig(warmup_episodes=2, seed=3)
    straight = ActorCriticAgent.for_env(env := _tiny_env(), cfg)
    straight.train(env, 6)

    ckpt, log_csv = tmp_path / "agent.pt", tmp_path / "log.csv"
    first = ActorCriticAgent.for_env(env1 := _tiny_env(), cfg)
    first.train(env1, 4, checkpoint_path=ckpt, log_path=log_csv, checkpoint_every=2)
    assert ckpt.is_file() and len(pd.read_csv(log_csv)) == 4
    resumed = ActorCriticAgent.for_env(env2 := _tiny_env(), cfg)  # a fresh process, in effect
    log = resumed.train(env2, 6, checkpoint_path=ckpt, log_path=log_csv)
    assert resumed.episodes_done == 6 and len(log) == 6 and len(pd.read_csv(log_csv)) == 6
    for k, v in straight.net.state_dict().items():
        assert torch.allclose(v, resumed.net.state_dict()[k]), k
    pd.testing.assert_series_equal(straight.log()["return"], log["return"])
    # a finished checkpoint is reused as is
    again = ActorCriticAgent.for_env(_tiny_env(), cfg)
    again.train(_tiny_env(), 6, checkpoint_path=ckpt)
    assert again.episodes_done == 6


def test_corrupt_checkpoint_is_set_aside_and_training_starts_afresh(tmp_path: Path) -> None:
    cfg = A2CConfig(warmup_episodes=2, seed=3)
    straight = ActorCriticAgent.for_env(env := Bandit(), cfg)
    straight.train(env, 8)
    ckpt = tmp_path / "agent.pt"
    ActorCriticAgent.for_env(env1 := Bandit(), cfg).train(env1, 4, checkpoint_path=ckpt)
    ckpt.write_bytes(b"garbage")
    rebuilt = ActorCriticAgent.for_env(env2 := Bandit(), cfg)
    log = rebuilt.train(env2, 8, checkpoint_path=ckpt)
    assert len(log) == 8 and (tmp_path / "agent.pt.corrupt").is_file()
    for k, v in straight.net.state_dict().items():
        assert torch.equal(v, rebuilt.net.state_dict()[k]), k


def test_save_load_and_export(tmp_path: Path) -> None:
    agent = ActorCriticAgent(OBS_DIM, 5, A2CConfig(seed=1))
    agent.save(tmp_path / "a.pt")
    small = agent.export(tmp_path / "small.pt")
    for path in (tmp_path / "a.pt", small):
        back = ActorCriticAgent.load(path)
        obs = np.random.default_rng(0).uniform(-1, 1, OBS_DIM)
        np.testing.assert_allclose(back.policy(obs), agent.policy(obs), rtol=1e-6)
    assert small.stat().st_size < 300_000
    with pytest.raises(ValueError, match="observation"):
        agent.act(np.zeros(OBS_DIM + 1))
    with pytest.raises(FileNotFoundError, match="studies.neon ship"):
        load_shipped_agent(tmp_path / "missing.pt")


def test_shipped_agent_prunes_an_unseen_network_in_one_call() -> None:
    assert SHIPPED_AGENT.is_file(), "build it: python -m pruning_core.studies.neon ship"
    card = json.loads(SHIPPED_AGENT.with_suffix(".json").read_text())
    # one agent per C (acting-only, float32): small enough to ship inside the package
    assert SHIPPED_AGENT.stat().st_size < 250_000 * len(card["C_values"])
    episodes = card["episodes"]  # per C (a dict) since agents are trained per C
    assert (sum(episodes.values()) if isinstance(episodes, dict) else episodes) > 0
    assert card["obs_dim"] == OBS_DIM
    name = "breast_cancer"
    assert name not in card["datasets"] and name not in CPU_DATASETS  # never seen in training
    d = load_tabular(name).splits()
    spec = MLPSpec(
        d.n_features, d.num_classes, (64, 64), ("relu", "relu"), (False, False), (0.0, 0.0)
    )
    model = build_mlp(spec, seed=0)
    (x_train, y_train), (x_val, y_val) = d.tensors("train"), d.tensors("reward")
    x_test, y_test = d.tensors("test")
    fit(model, (x_train, y_train), val_data=(x_val, y_val), cfg=TrainConfig.mlp(epochs=40))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small, report = prune_mlp(
        model, x_train.numpy(), y_train.numpy(), x_val.numpy(), y_val.numpy(), C=5.0,
        passes=4, ft=replace(NeonEnvConfig().ft, max_steps=30),
    )  # fmt: skip
    assert count_params(small) < count_params(model)
    assert report["compression"] == pytest.approx(count_params(model) / count_params(small))
    majority = float(np.bincount(y_train.numpy()).max() / len(y_train))
    assert evaluate(small, (x_test, y_test), batch_size=None)["top1"] > majority + 0.05
    assert small(x_test[:3]).shape == (3, 2)
    for k, v in model.state_dict().items():  # the caller's model is not modified
        assert torch.equal(v, before[k])


def test_shipped_agents_choose_per_network_on_tables_they_never_saw() -> None:
    """The earlier shipped agents kept the same share at every step of every network (one
    constant per C); the agents shipped now read the network: at C = 1 three networks of two
    unseen tables do not all get the same keep fractions."""
    card = json.loads(SHIPPED_AGENT.with_suffix(".json").read_text())
    kept = set()
    for name, hidden in [("breast_cancer", (64, 64)), ("wine", (128, 32, 16)),
                         ("breast_cancer", (256, 128, 64))]:  # fmt: skip
        assert name not in card["datasets"] and name not in CPU_DATASETS
        d = load_tabular(name).splits()
        n = len(hidden)
        model = build_mlp(MLPSpec(d.n_features, d.num_classes, hidden, ("relu",) * n,
                                  (False,) * n, (0.0,) * n), seed=0)  # fmt: skip
        fit(model, d.tensors("train"), val_data=d.tensors("reward"), cfg=TrainConfig.mlp(epochs=40))
        (xt, yt), (xv, yv) = d.tensors("train"), d.tensors("reward")
        _, report = prune_mlp(model, xt.numpy(), yt.numpy(), xv.numpy(), yv.numpy(), C=1.0,
                              ft=replace(NeonEnvConfig().ft, max_steps=30))  # fmt: skip
        kept.add(tuple(sorted({s["keep"] for s in report["steps"]})))
    assert len(kept) >= 2, f"one keep schedule on every network: {kept}"
