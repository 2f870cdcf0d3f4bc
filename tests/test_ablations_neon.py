"""NEON's ablations on notebook 04's MDP (pruning_core.studies.ablations_neon)."""

from __future__ import annotations

import time
from dataclasses import replace

import pandas as pd
import pytest
import torch

from pruning_core.config import PROFILES
from pruning_core.data.splits import Splits
from pruning_core.models.mlp import MLPSpec, build_mlp
from pruning_core.rl.agents.a2c import A2CConfig, ActorCriticAgent
from pruning_core.rl.envs.neon import NeonEnvConfig, NeonTask
from pruning_core.rl.envs.neon_batched import NeonBatch, replay_batch
from pruning_core.studies.ablations_effects import effects_table
from pruning_core.studies.ablations_neon import (
    NEON_VARIANTS,
    RUN_COLUMNS,
    EnvLockstep,
    neon_ablation,
    neon_ablation_sizes,
)
from pruning_core.studies.neon import NOISE_MARGIN_PP, neon_study_sizes
from pruning_core.train.loop import TrainConfig, fit

torch.set_num_threads(1)


def _task(seed: int = 0) -> NeonTask:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(200, 5, generator=g)
    y = ((x[:, 0] + x[:, 1]) * 1.5).long().clamp(max=2)
    train, val = (x[:140], y[:140]), (x[140:], y[140:])
    spec = MLPSpec(5, 3, (14, 10), ("relu", "relu"), (True, False), (0.0, 0.0))
    model = build_mlp(spec, seed=seed)
    fit(model, train, TrainConfig.mlp(lr=1e-2, epochs=8), val_data=val)
    return NeonTask.from_model(model, Splits("toy", 3, train=train, reward=val, stop=val),
                               name=f"toy{seed}")  # fmt: skip


FT = TrainConfig.mlp(max_steps=6, steps_per_check=2, patience=1, monitor="val_top1")
CFG = NeonEnvConfig(passes=2, C_values=(1.0,), ft=FT, stat_rows=60, removed_of="original",
                    noise_margin_pp=0.5)  # fmt: skip


def test_env_lockstep_trains_the_agent_the_fast_path_trains() -> None:
    """Structural mode, where both exist: an agent trained on EnvLockstep (NeonEnv episodes,
    lockstep groups) is the one trained on NeonBatch, weights and log, so the mask variant
    differs from the default by its mode only, not by the training path."""
    tasks = [_task(0), _task(1)]
    cfg = A2CConfig(warmup_episodes=2, seed=4, gae_lambda=0.0, normalize_advantages=True, lr=7e-3)
    fast = ActorCriticAgent(NeonBatch(tasks, CFG).obs_dim, 5, cfg)
    fast.train(NeonBatch(tasks, CFG), 8, lockstep=4)
    slow = ActorCriticAgent(NeonBatch(tasks, CFG).obs_dim, 5, cfg)
    slow.train(EnvLockstep(tasks, CFG), 8, lockstep=4)
    for k, v in fast.net.state_dict().items():
        assert torch.equal(v, slow.net.state_dict()[k]), k
    cols = ["task", "C", "return", "compression", "delta_val_pp", "warmup"]
    assert fast.log()[cols].equals(slow.log()[cols])


def test_env_lockstep_plays_mask_mode() -> None:
    tasks = [_task(0)]
    seqs = [[4, 4, 4, 4], [0, 3, 0, 3]]
    masked = EnvLockstep(tasks, replace(CFG, mode="mask"))
    eps = masked.play(replay_batch(seqs), starts=[(0, 1.0)] * 2)
    structural = NeonBatch(tasks, CFG).play(replay_batch(seqs), starts=[(0, 1.0)] * 2)
    for m, s in zip(eps, structural, strict=True):
        assert m.report["mode"] == "mask" and m.report["compression"] > 1.0
        assert m.report["params_pruned"] == s.report["params_pruned"]  # same neurons go
        assert [b.width for b in m.final_network.blocks] == m.report["widths_final"]
    with pytest.raises(ValueError, match="structural"):
        NeonBatch(tasks, replace(CFG, mode="mask"))


@pytest.mark.parametrize("profile", PROFILES)
def test_sizes_are_the_study_s_at_one_C(profile: str) -> None:
    s = neon_ablation_sizes(profile)
    study = neon_study_sizes(profile, preset="entropy_stop")  # 05 ablates the earlier setting
    # the study's sizes but the paper's reward for a rise, which 05's committed ablation ran
    assert s.study == replace(study, env=replace(study.env, improvement_reward="cubic"))
    assert study.env.improvement_reward == "linear"
    assert s.study.env.removed_of == "original"
    assert s.study.env.noise_margin_pp == NOISE_MARGIN_PP
    assert s.C == 1.0 and len(s.seeds) >= 2
    assert s.episodes > s.study.agent.warmup_episodes
    assert NEON_VARIANTS[0].name == "default"
    assert len({v.name for v in NEON_VARIANTS}) == len(NEON_VARIANTS)


def test_tiny_neon_ablation_rows_pair_by_seed_and_resume_from_the_cache() -> None:
    sizes = replace(neon_ablation_sizes("smoke"), datasets=("spam7",), seeds=(0, 1), episodes=3)
    variants = [v for v in NEON_VARIANTS if v.name in ("default", "passes_1", "mask")]
    runs, nets = neon_ablation(sizes, variants)
    assert list(runs.columns) == list(RUN_COLUMNS)
    assert list(runs["variant"]) == ["default"] * 2 + ["passes_1"] * 2 + ["mask"] * 2
    assert list(runs["seed"]) == [0, 1] * 3
    assert runs["compression"].ge(1.0).all() and runs["episodes"].eq(3).all()
    for col in ("log_compression", "delta_test_pp", "delta_val_pp", "delta_stop_pp",
                "within_C_share", "policy_entropy", "seconds_per_episode"):  # fmt: skip
        assert runs[col].notna().all(), col
    assert runs["within_C_share"].between(0, 1).all()
    assert set(runs.loc[runs.variant == "mask", "backend"]) == {"NeonEnv (EnvLockstep)"}
    assert set(runs.loc[runs.variant != "mask", "backend"]) == {"NeonBatch"}
    assert set(nets["dataset"]) == {"spam7"} and len(nets) == len(runs)
    t0 = time.perf_counter()
    again, _ = neon_ablation(sizes, variants)
    assert time.perf_counter() - t0 < 30
    pd.testing.assert_frame_equal(runs, again)
    eff = effects_table(runs, {"compression": "ratio", "delta_test_pp": "difference",
                               "within_C_share": "share"})  # fmt: skip
    assert set(eff["variant"]) == {"passes_1", "mask"} and eff["n"].eq(2).all()
    assert (eff.loc[eff.kind == "ratio", "ci_low"].dropna() > 0).all()
