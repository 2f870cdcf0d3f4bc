"""The fixes for NEON agents that collapsed to one constant action string: standardised
observations applied identically in training, acting and after loading; a stopping rule that
stops on a plateau of the validation return and never reads the entropy; dataset-clustered
bootstrap intervals; per-network policies that can differ; the study's diagnostics."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from neon_toy import TOY_CFG, toy_task

from pruning_core.rl.agents.a2c import (
    A2C_PRESETS,
    A2CConfig,
    ActorCriticAgent,
    ConvergenceRule,
    ObsStandardizer,
    PlateauRule,
    a2c_preset,
)
from pruning_core.rl.envs.neon_batched import NeonBatch
from pruning_core.rl.envs.neon_features import OBS_DIM
from pruning_core.stats import cluster_bootstrap
from pruning_core.studies import neon_diagnostics as nd
from pruning_core.studies.neon_report import method_intervals
from pruning_core.studies.neon_sizes import neon_study_sizes

torch.set_num_threads(1)


STD = A2CConfig(lr=0.02, warmup_episodes=3, standardize_obs=True, seed=0)


def _trained(episodes: int = 8) -> ActorCriticAgent:
    agent = ActorCriticAgent(OBS_DIM, 5, STD)
    agent.train(NeonBatch([toy_task(0), toy_task(1, 24)], TOY_CFG), episodes, lockstep=4)
    return agent


def test_the_statistics_come_from_the_warm_up_and_the_transform_is_the_one_of_acting() -> None:
    agent = _trained()
    norm = agent.obs_norm
    assert norm is not None and len(norm.mean) == OBS_DIM
    obs = np.random.default_rng(0).uniform(-1, 1, (3, OBS_DIM)).astype(np.float32)
    expect = (obs - np.asarray(norm.mean)) / np.asarray(norm.std)
    np.testing.assert_allclose(agent._obs(obs).numpy(), expect, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        logits, _ = agent.net(torch.as_tensor(expect, dtype=torch.float32))
    np.testing.assert_allclose(agent.policy(obs[0]), torch.softmax(logits[0], -1).numpy(), rtol=1e-5)


def test_an_update_sees_the_standardised_observations() -> None:
    agent = _trained()
    twin = copy.deepcopy(agent)  # the same agent fed pre-standardised observations, no transform
    twin.config = A2CConfig(**{**agent.config.__dict__, "standardize_obs": False})
    rng = np.random.default_rng(1)
    obs = rng.uniform(-1, 1, (4, OBS_DIM)).astype(np.float32)
    ep = {"actions": np.array([0, 1, 2, 3]), "rewards": np.array([1.0, -2.0, 0.5, 3.0]) * 40**3}
    agent.update([{**ep, "obs": obs}])
    twin.update([{**ep, "obs": agent._obs(obs).numpy()}])
    for a, b in zip(agent.net.parameters(), twin.net.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_a_loaded_agent_applies_the_same_transform(tmp_path: Path) -> None:
    agent = _trained()
    obs = np.random.default_rng(2).uniform(-1, 1, OBS_DIM)
    for path in (agent.save(tmp_path / "a.pt"), agent.export(tmp_path / "b.pt")):
        back = ActorCriticAgent.load(path)
        assert back.obs_norm == agent.obs_norm
        np.testing.assert_allclose(back.policy(obs), agent.policy(obs), rtol=1e-6)
    st = agent.state()
    st["obs_norm"] = None  # a checkpoint that lost its statistics is refused, not misread
    with pytest.raises(ValueError, match="statistics"):
        ActorCriticAgent(OBS_DIM, 5, STD).load_state(st)


def test_a_feature_that_never_varies_is_only_centred() -> None:
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    n = ObsStandardizer.fit(x)
    assert n.raw_std == (1.0, 0.0) and n.std == (1.0, 1.0)
    np.testing.assert_allclose(n(x).numpy(), [[-1.0, 0.0], [1.0, 0.0]])


def test_the_plateau_rule_reads_validation_returns_only() -> None:
    rule = PlateauRule(check_every=4, patience=2, min_delta=0.01, min_checks=3)
    assert not rule.plateaued([0.1, 0.2])  # too few checks
    assert not rule.plateaued([0.1, 0.2, 0.3, 0.4])  # still rising
    assert rule.plateaued([0.1, 0.5, 0.5, 0.505])  # no rise above min_delta in 2 checks
    assert rule.plateaued([0.5, 0.2, 0.1])  # falling


def test_training_stops_on_a_plateau_while_the_entropy_is_still_high() -> None:
    # lr 0: the policy stays uniform (entropy ln 5), so the greedy return never changes
    frozen = A2CConfig(lr=0.0, warmup_episodes=2, standardize_obs=True)
    rule = PlateauRule(check_every=4, patience=2, min_checks=3)
    agent = ActorCriticAgent(OBS_DIM, 5, frozen)
    log = agent.train(NeonBatch([toy_task(0)], TOY_CFG), 200, lockstep=4, stop=rule,
                      val_env=NeonBatch([toy_task(1)], TOY_CFG))  # fmt: skip
    assert agent.converged_at == 12 == len(log)  # checks at 4, 8, 12: a plateau at the third
    assert log["val_return"].notna().sum() == 3
    assert log["entropy"].dropna().min() > 0.99 * math.log(5)  # never collapsed
    # the entropy rule would not have stopped it: it needs the entropy to fall
    old = ActorCriticAgent(OBS_DIM, 5, replace_cfg(frozen, standardize_obs=False))
    log2 = old.train(NeonBatch([toy_task(0)], TOY_CFG), 24, lockstep=4,
                     stop=ConvergenceRule(window=4, check_every=4, probe_tasks=1))  # fmt: skip
    assert old.converged_at is None and len(log2) == 24


def replace_cfg(cfg: A2CConfig, **kw: object) -> A2CConfig:
    return A2CConfig(**{**cfg.__dict__, **kw})


def test_the_plateau_rule_needs_validation_networks() -> None:
    with pytest.raises(ValueError, match="val_env"):
        ActorCriticAgent(OBS_DIM, 5, STD).train(NeonBatch([toy_task()], TOY_CFG), 4, stop=PlateauRule())


def test_the_cluster_bootstrap_resamples_clusters_not_rows() -> None:
    values = [0.0] * 100 + [1.0]  # dataset a: 100 networks at 0; dataset b: one at 1
    clusters = ["a"] * 100 + ["b"]
    mean, low, high = cluster_bootstrap([values], clusters, np.mean, seed=0, resamples=2000)
    assert mean == pytest.approx(1 / 101)
    assert high == 1.0  # a quarter of the resamples draw b twice: the mean is then 1
    assert low == 0.0
    # rows resampled alone would never get near 1
    _, _, row_high = cluster_bootstrap([values], range(101), np.mean, seed=0, resamples=2000)
    assert row_high < 0.1


def test_study_intervals_are_clustered_by_dataset() -> None:
    res = pd.DataFrame({"method": "neon", "C": 1.0, "dataset": ["a"] * 50 + ["b"] * 50,
                        "net": range(100), "compression": [1.0] * 50 + [3.0] * 50,
                        "delta_test_pp": 0.0})  # fmt: skip
    iv = method_intervals(res).iloc[0]
    assert iv["n_datasets"] == 2 and iv["comp_low"] == 1.0 and iv["comp_high"] == 3.0


def test_per_network_policies_can_differ() -> None:
    small, wide = toy_task(0, 8), toy_task(1, 64)
    agent = ActorCriticAgent(OBS_DIM, 5, STD)
    agent.obs_norm = ObsStandardizer.fit(np.stack([
        NeonBatch([t], TOY_CFG)._observation(0, NeonBatch([t], TOY_CFG)._root(0), 50.0) for t in (small, wide)
    ]))  # fmt: skip
    k = nd.FEATURE_NAMES.index("log_params")
    with torch.no_grad():  # a policy that reads one feature: many parameters -> keep least
        for layer in agent.net.actor:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.zero_()
                layer.bias.zero_()
        agent.net.actor[0].weight[0, k] = 3.0
        agent.net.actor[2].weight[0, 0] = 3.0
        agent.net.actor[4].weight[0, 0] = 5.0
        agent.net.actor[4].weight[4, 0] = -5.0
    env = NeonBatch([small, wide], TOY_CFG)
    eps = agent.run_batch(env, 2, greedy=True, starts=[(0, 50.0), (1, 50.0)])
    strings = ["".join(map(str, e.actions)) for _t, e in eps]
    assert strings[0] != strings[1]
    table = nd.policy_strings(pd.DataFrame({"method": "neon", "C": 50.0, "actions": strings}))
    assert set(table["n_distinct"]) == {2}


def test_presets_and_the_study_record_which_is_used() -> None:
    paper = A2C_PRESETS["paper"]
    assert (paper.lr, paper.gae_lambda, paper.normalize_advantages, paper.standardize_obs) == (
        1e-3, 1.0, False, False)  # fmt: skip
    new = a2c_preset("standardized", seed=3)
    assert new.standardize_obs and new.entropy_coef == 0.05 and new.seed == 3
    assert neon_study_sizes("cpu").agent.preset == "standardized"
    old = neon_study_sizes("cpu", preset="entropy_stop")
    assert isinstance(old.stop, ConvergenceRule) and not old.agent.standardize_obs
    assert isinstance(neon_study_sizes("cpu", preset="paper").stop, PlateauRule)
    with pytest.raises(ValueError):
        a2c_preset("nope")
    cpu, gpu = neon_study_sizes("cpu"), neon_study_sizes("gpu")
    assert cpu.nets_per_dataset >= 5 and cpu.test_nets_per_dataset >= 2
    assert gpu.nets_per_dataset > cpu.nets_per_dataset  # the gpu profile's size: tests/test_gpu_budget.py
    assert gpu.val_nets_per_dataset >= cpu.val_nets_per_dataset


def test_diagnostics_read_the_training_log() -> None:
    agent = ActorCriticAgent(OBS_DIM, 5, STD)
    rule = PlateauRule(check_every=4, patience=2, min_checks=3)
    log = agent.train(NeonBatch([toy_task(0)], TOY_CFG), 16, lockstep=4, stop=rule,
                      val_env=NeonBatch([toy_task(1)], TOY_CFG)).assign(fold=0, C_agent=50.0)  # fmt: skip
    curves = nd.validation_curves(log)
    assert len(curves) == log["val_return"].notna().sum() and curves["entropy"].notna().all()
    freq = nd.action_frequencies(log, 5, bins=2)
    assert np.allclose(freq[[f"a{i}" for i in range(5)]].sum(axis=1), 1.0)
    spread = nd.feature_spread([toy_task(0, 8), toy_task(1, 64)], TOY_CFG, {50.0: agent})
    assert len(spread) == OBS_DIM and "std_C50" in spread
    assert spread.set_index("feature").loc["log_params", "std_across_nets"] > 0
    sizes = neon_study_sizes("smoke")
    conv = nd.agent_convergence(sizes, log)
    assert conv["best_val_return"].iloc[0] == log["val_return"].max()


def test_the_checkpoint_holds_the_best_checks_weights(tmp_path: Path) -> None:
    agent = ActorCriticAgent(OBS_DIM, 5, STD)
    rule = PlateauRule(check_every=4, patience=2, min_checks=3)
    ckpt = tmp_path / "a.pt"
    agent.train(NeonBatch([toy_task(0)], TOY_CFG), 16, lockstep=4, stop=rule, checkpoint_path=ckpt,
                val_env=NeonBatch([toy_task(1)], TOY_CFG))  # fmt: skip
    assert agent.best is not None
    back = ActorCriticAgent.load(ckpt)
    for k, v in agent.best["net"].items():
        torch.testing.assert_close(back.net.state_dict()[k], v)
