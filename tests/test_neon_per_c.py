"""NEON's agents per C: the convergence rule (stops when the policy entropy has fallen, not
before), the entropy logged per episode, one agent per C chosen by C (``AgentsByC``,
``prune_mlp``), and the study's agent keys per C."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from neon_toy import TOY_CFG, toy_task

from pruning_core.methods.neon import prune_mlp
from pruning_core.rl.agents.a2c import A2CConfig, ActorCriticAgent, ConvergenceRule
from pruning_core.rl.agents.a2c_set import AgentsByC, load_shipped_agents
from pruning_core.rl.envs.neon import NeonEnv
from pruning_core.rl.envs.neon_batched import NeonBatch
from pruning_core.rl.envs.neon_features import OBS_DIM
from pruning_core.studies.neon import agent_key, neon_study_sizes, train_shipped_agents

torch.set_num_threads(1)


FAST = A2CConfig(lr=0.05, entropy_coef=0.0, warmup_episodes=2, normalize_advantages=True, seed=0)
"""A learner that commits quickly: its policy entropy falls within a few dozen episodes."""


def test_rule_reads_the_entropy_window_and_the_probes() -> None:
    rule = ConvergenceRule(window=3, max_entropy_share=0.5)
    h = math.log(5)
    assert not rule.entropy_converged([0.1, 0.1], 5)  # fewer than a window
    assert not rule.entropy_converged([0.1, h, h], 5)  # the window's mean is too high
    assert rule.entropy_converged([h, h, 0.1, 0.2, 0.3], 5)  # only the last window counts
    assert not rule.returns_stable(None, 1.0)
    assert rule.returns_stable(1.0, 1.0 + rule.return_tol / 2)
    assert not rule.returns_stable(1.0, 1.0 + 2 * rule.return_tol)


def test_training_stops_when_the_entropy_has_fallen_and_not_before() -> None:
    rule = ConvergenceRule(window=4, check_every=4, max_entropy_share=0.3, probe_tasks=1)
    agent = ActorCriticAgent(OBS_DIM, 5, FAST)
    log = agent.train(NeonBatch(toy_task(), TOY_CFG), 200, lockstep=4, stop=rule)
    assert agent.converged_at is not None and agent.converged_at < 200
    assert len(log) == agent.converged_at  # stopped there
    assert log["entropy"].notna().all()  # logged for every episode
    learn = log[~log["warmup"]]
    threshold = rule.max_entropy_share * math.log(5)
    assert learn["entropy"].tail(rule.window).mean() <= threshold
    assert learn["entropy"].head(rule.window).mean() > threshold  # it had to fall first
    probes = log.dropna(subset=["greedy_return"])
    assert len(probes) >= 2  # a converged agent needs two agreeing probes
    for e in probes["episode"]:  # a probe is only played once the entropy test passes
        window = learn[learn["episode"] <= e]["entropy"].tail(rule.window)
        assert window.mean() <= threshold
    # an unreachable threshold: no probe, the cap stops training
    never = ActorCriticAgent(OBS_DIM, 5, FAST)
    log2 = never.train(
        NeonBatch(toy_task(), TOY_CFG), 24, lockstep=4, stop=ConvergenceRule(4, 0.0, check_every=4)
    )
    assert never.converged_at is None and len(log2) == 24
    assert "greedy_return" not in log2 or log2["greedy_return"].isna().all()


def test_a_converged_agent_resumes_without_training_further(tmp_path: Path) -> None:
    rule = ConvergenceRule(window=4, check_every=4, max_entropy_share=0.3, probe_tasks=1)
    ckpt = tmp_path / "a.pt"
    first = ActorCriticAgent(OBS_DIM, 5, FAST)
    first.train(NeonBatch(toy_task(), TOY_CFG), 200, lockstep=4, stop=rule, checkpoint_path=ckpt)
    again = ActorCriticAgent(OBS_DIM, 5, FAST)
    log = again.train(NeonBatch(toy_task(), TOY_CFG), 200, lockstep=4, stop=rule, checkpoint_path=ckpt)
    assert again.converged_at == first.converged_at == len(log)


def test_the_rule_needs_the_fast_path() -> None:
    with pytest.raises(ValueError, match="NeonBatch"):
        ActorCriticAgent(OBS_DIM, 5).train(NeonEnv([toy_task()], TOY_CFG), 2, stop=ConvergenceRule())


def _agent(seed: int) -> ActorCriticAgent:
    return ActorCriticAgent(OBS_DIM, 5, A2CConfig(seed=seed))


def test_agents_by_C_pick_the_agent_for_C_and_round_trip(tmp_path: Path) -> None:
    agents = AgentsByC({0.0: _agent(0), 1.0: _agent(1), 5.0: _agent(5), 50.0: _agent(50)})
    assert agents.for_C(5.0) is agents[5.0]
    assert agents.for_C(3.0) is agents[1.0]  # the largest trained C below: no harder pruning
    assert agents.for_C(100.0) is agents[50.0]
    with pytest.raises(ValueError):
        agents.for_C(-1.0)
    path = agents.export(tmp_path / "agents.pt")
    back = load_shipped_agents(path)
    assert sorted(back) == [0.0, 1.0, 5.0, 50.0] and not back.shared
    obs = np.random.default_rng(0).uniform(-1, 1, OBS_DIM)
    for C in back:
        np.testing.assert_allclose(back[C].policy(obs), agents[C].policy(obs), rtol=1e-6)
    single = _agent(3).export(tmp_path / "single.pt")  # a file of an earlier version
    old = load_shipped_agents(single)
    assert old.shared and old.for_C(0.0) is old.for_C(50.0)


def test_prune_mlp_uses_the_agent_for_C() -> None:
    task = toy_task()
    d = task.data
    mlp = task.model
    agents = {0.0: _agent(0), 5.0: _agent(5)}
    kw = {"passes": 1, "ft": TOY_CFG.ft, "stat_rows": 40}
    for C, expect in ((0.0, 0.0), (1.0, 0.0), (5.0, 5.0), (9.0, 5.0)):
        _, rep = prune_mlp(mlp, *d.tensors("train"), *d.tensors("reward"), C=C, agent=agents, **kw)
        assert rep["agent_C"] == expect
        _, direct = prune_mlp(
            mlp, *d.tensors("train"), *d.tensors("reward"), C=C, agent=agents[expect], **kw
        )
        assert direct["actions"] == rep["actions"] and direct["agent_C"] is None


def test_the_study_trains_one_agent_per_C() -> None:
    sizes = neon_study_sizes("smoke")
    keys = [agent_key(sizes, ["spam7"], "fold0", C) for C in sizes.C_values]
    assert len({k.hashname for k in keys}) == len(sizes.C_values)
    for C in sizes.C_values:
        k = agent_key(sizes, ["spam7"], "fold0", C)
        assert k.C == C and k.env.C_values == (C,)  # each agent sees only its own C
    for profile in ("smoke", "cpu", "gpu"):  # a stopping rule and a cap in every profile
        s = neon_study_sizes(profile)
        assert s.max_agent_episodes > s.agent.warmup_episodes + s.stop.min_checks * s.stop.check_every


def test_shipped_agents_are_one_per_C_and_never_saw_their_held_out_group(tmp_path: Path) -> None:
    # retrained here at smoke size only, into tmp_path: the committed asset stays as it is
    path = tmp_path / "neon_agent.pt"
    card = train_shipped_agents("smoke", path)
    agents = load_shipped_agents(path)
    sizes = neon_study_sizes("smoke")
    assert sorted(agents) == list(sizes.C_values) and not agents.shared
    assert json.loads(path.with_suffix(".json").read_text())["agent_keys"] == card["agent_keys"]
    assert card["held_out_datasets"] and not set(card["held_out_datasets"]) & set(card["datasets"])
    assert sorted(card["agent_keys"]) == sorted(f"{C:g}" for C in sizes.C_values)
    task = toy_task()
    d = task.data
    kw = {"passes": 1, "ft": TOY_CFG.ft, "stat_rows": 40}
    for C in sizes.C_values:
        _, rep = prune_mlp(task.model, *d.tensors("train"), *d.tensors("reward"), C=C,
                           agent=agents, **kw)  # fmt: skip
        assert rep["agent_C"] == C
