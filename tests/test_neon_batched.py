"""NEON's fast path (NeonBatch): the env's results bit for bit, shared prefixes computed once,
the A2C hook, clear refusals."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pruning_core.data.splits import Splits
from pruning_core.models.mlp import MLPSpec, build_mlp
from pruning_core.rl.agents.a2c import A2CConfig, ActorCriticAgent
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig, NeonTask
from pruning_core.rl.envs.neon_batched import NeonBatch, finetune_like_fit, replay_batch
from pruning_core.rl.rollout import replay, rollout
from pruning_core.train.loop import TrainConfig, fit

torch.set_num_threads(1)


def _task(seed: int = 0, bn: bool = False, dropout: float = 0.0, act: str = "relu") -> NeonTask:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(200, 5, generator=g)
    y = ((x[:, 0] + x[:, 1]) * 1.5).long().clamp(max=2)
    train, val = (x[:140], y[:140]), (x[140:], y[140:])
    spec = MLPSpec(5, 3, (14, 10), (act, act), (bn, bn), (dropout, dropout))
    model = build_mlp(spec, seed=seed)
    fit(model, train, TrainConfig.mlp(lr=1e-2, epochs=8), val_data=val)
    data = Splits("toy", 3, train=train, reward=val, stop=val)
    return NeonTask.from_model(model, data, name=f"toy{seed}")


FT = TrainConfig.mlp(max_steps=6, steps_per_check=2, patience=1, monitor="val_top1")
CFG = NeonEnvConfig(passes=2, C_values=(0.0, 5.0), ft=FT, stat_rows=60)
SEQUENCES = [[4, 4, 4, 4], [4, 4, 1, 2], [0, 3, 0, 3], [2, 0, 4, 1], [4, 4, 1, 2], [1, 1, 1, 1]]


def _env_episodes(env: NeonEnv, task: int, C: float) -> list[tuple]:
    out = []
    for s in SEQUENCES:
        ep = rollout(env, replay(s), options={"task": task, "C": C}, keep_observations=True)
        out.append((ep, env.episode_report()))
    return out


@pytest.mark.parametrize(
    ("task_kw", "cfg"),
    [
        ({}, CFG),  # ReLU, fine-tuning the changed layers (the default)
        ({"bn": True, "dropout": 0.3}, CFG),  # batch-norm statistics and dropout draws
        ({"act": "tanh", "dropout": 0.2}, replace(CFG, finetune="all", removed_of="original")),
        ({"bn": True}, replace(CFG, finetune="none", guard=True, noise_margin_pp=1.0)),
        ({}, replace(CFG, improvement_reward="linear", within_weight=1 / 9)),
    ],
    ids=["relu-changed", "bn-dropout", "tanh-all-original", "none-guard", "risk-calibrated"],
)
def test_fast_path_gives_the_env_results_bit_for_bit(task_kw: dict, cfg: NeonEnvConfig) -> None:
    """Same actions and seed: the same rewards, observations, infos and episode reports as
    NeonEnv, exactly (the fine-tuning runs the same kernels in the same order, so no float
    tolerance is needed)."""
    tasks = [_task(0, **task_kw), _task(1, **task_kw)]
    for task, C in ((0, 0.0), (1, 5.0)):
        expected = _env_episodes(NeonEnv(tasks, cfg), task, C)
        batch = NeonBatch(tasks, cfg)
        got = batch.play(replay_batch(SEQUENCES), starts=[(task, C)] * len(SEQUENCES))
        for (ep, report), fast in zip(expected, got, strict=True):
            assert fast.actions == ep.actions
            assert fast.rewards == ep.rewards
            assert fast.report == report
            for a, b in zip(ep.observations[:-1], fast.observations, strict=True):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(ep.observations[-1], fast.final_observation)
            assert fast.infos == ep.infos


def test_shared_prefixes_are_computed_once_and_the_tasks_stay_untouched() -> None:
    task = _task()
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    batch = NeonBatch(task, CFG, cache_mb=0)  # no cache: only episodes of the same call share
    rng_state = torch.get_rng_state()
    first = batch.play(replay_batch(SEQUENCES), starts=[(0, 0.0)] * len(SEQUENCES))
    assert torch.equal(torch.get_rng_state(), rng_state)  # dropout drew from a scoped seed
    # distinct prefixes: 4 of length 1 (4, 0, 2, 1), 4 of 2 (44, 03, 20, 11), 5 of 3, 5 of 4
    assert batch.stats["nodes"] == 4 + 4 + 5 + 5
    assert batch.stats["reused"] == 4 * len(SEQUENCES) - batch.stats["nodes"]
    assert first[1].rewards == first[4].rewards  # the same actions: the same episode
    # with a cache, a second call (another C too) reuses every network it has seen
    cached = NeonBatch(task, CFG)
    cached.play(replay_batch(SEQUENCES), starts=[(0, 0.0)] * len(SEQUENCES))
    nodes = cached.stats["nodes"]
    again = cached.play(replay_batch(SEQUENCES), starts=[(0, 5.0)] * len(SEQUENCES))
    assert cached.stats["nodes"] == nodes
    assert [e.report["val_acc"] for e in again] == [e.report["val_acc"] for e in first]
    for k, v in task.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert task.model.training is False


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"monitor": "val_loss", "weight_decay": 1e-3, "label_smoothing": 0.1},
        {"restore_best": False, "check_start": False, "patience": None, "max_steps": 5},
    ],
)
def test_finetune_like_fit_matches_fit(overrides: dict) -> None:
    task = _task(bn=True, dropout=0.3)
    cfg = replace(FT, seed=11, **overrides)
    models = [task.model, copy.deepcopy(task.model)]
    train, val = task.data.tensors("train"), task.data.tensors("stop")
    fit(models[0], train, cfg, val_data=val, params=list(models[0].blocks[1].parameters()))
    finetune_like_fit(models[1], list(models[1].blocks[1].parameters()), train, val, cfg)
    theirs = models[1].state_dict()
    for k, v in models[0].state_dict().items():
        assert torch.equal(v, theirs[k]), k


def _agent_tasks() -> list[NeonTask]:
    return [_task(0), _task(1, bn=True, dropout=0.3)]


def test_a2c_on_the_fast_path_trains_the_env_agent() -> None:
    cfg = A2CConfig(warmup_episodes=3, seed=3)
    env = NeonEnv(_agent_tasks(), CFG)
    slow = ActorCriticAgent.for_env(env, cfg)
    slow.train(env, 8)
    fast = ActorCriticAgent.for_env(env, cfg)
    fast.train(NeonBatch(_agent_tasks(), CFG), 8, lockstep=1)
    for k, v in slow.net.state_dict().items():
        assert torch.equal(v, fast.net.state_dict()[k]), k
    cols = ["task", "C", "return", "compression", "delta_val_pp", "warmup"]
    assert slow.log()[cols].equals(fast.log()[cols])


def test_a2c_lockstep_groups_resume_like_an_uninterrupted_run(tmp_path: Path) -> None:
    cfg = A2CConfig(warmup_episodes=2, seed=5)
    straight = ActorCriticAgent(NeonBatch(_task(), CFG).obs_dim, 5, cfg)
    log = straight.train(NeonBatch(_task(), CFG), 7, lockstep=3)
    assert len(log) == 7 and log["warmup"].sum() == 2
    ckpt = tmp_path / "agent.pt"
    first = ActorCriticAgent(straight.obs_dim, 5, cfg)
    first.train(NeonBatch(_task(), CFG), 4, lockstep=3, checkpoint_path=ckpt, checkpoint_every=2)
    resumed = ActorCriticAgent(straight.obs_dim, 5, cfg)
    log2 = resumed.train(
        NeonBatch(_task(), CFG), 7, lockstep=3, checkpoint_path=ckpt, checkpoint_every=2
    )
    assert len(log2) == 7
    # groups end at checkpoints (2 + 2 + 2 + 1 episodes, not 3 + 3 + 1): the resumed run is
    # the uninterrupted run with the same checkpoints
    again = ActorCriticAgent(straight.obs_dim, 5, cfg)
    again.train(
        NeonBatch(_task(), CFG), 7, lockstep=3, checkpoint_path=tmp_path / "b.pt",
        checkpoint_every=2,
    )  # fmt: skip
    for k, v in again.net.state_dict().items():
        assert torch.equal(v, resumed.net.state_dict()[k]), k
    assert again.log()["return"].equals(log2["return"])


def test_clear_refusals() -> None:
    task = _task()
    with pytest.raises(ValueError, match="structural"):
        NeonBatch(task, replace(CFG, mode="mask"))
    with pytest.raises(ValueError, match="Adam"):
        NeonBatch(task, replace(CFG, ft=replace(FT, optimizer="sgd")))
    batch = NeonBatch(task, CFG)
    with pytest.raises(ValueError, match="out of range"):
        batch.play(lambda obs, ids: [7] * len(ids), n=2)
    with pytest.raises(ValueError, match="whole number"):
        batch.play(lambda obs, ids: [0.5] * len(ids), n=1)
    with pytest.raises(ValueError, match="actions for"):
        batch.play(lambda obs, ids: [0], n=2)
    with pytest.raises(IndexError, match="out of range"):
        batch.play(replay_batch([[0] * 4]), starts=[(3, 0.0)])
    with pytest.raises(ValueError, match="C must"):
        batch.play(replay_batch([[0] * 4]), starts=[(0, -1.0)])
    with pytest.raises(ValueError, match="lockstep"):
        ActorCriticAgent(batch.obs_dim, 5).train(batch, 2, lockstep=0)
