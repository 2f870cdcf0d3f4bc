"""NEON's baselines under one rule for C, and the admission of datasets to the NEON study."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from pruning_core.data.splits import Splits
from pruning_core.methods.baselines import (
    BASELINES,
    global_l1_keep,
    global_l1_rounds,
    gmp_rounds,
    random_agent_episode,
    select_by_C,
    uniform_rounds,
)
from pruning_core.models.mlp import MLPSpec, build_mlp
from pruning_core.pruning.neurons import count_params
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig, NeonTask
from pruning_core.rl.rewards import neon_reward, within_allowed_loss
from pruning_core.studies.neon import METHODS, STRUCTURAL, neon_study_sizes, study_folds
from pruning_core.studies.neon_suite import admit_datasets, admitted, reference_table
from pruning_core.train.loop import TrainConfig, fit

FT = TrainConfig.mlp(max_steps=10, steps_per_check=5, patience=1, monitor="val_top1")


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    centers = np.random.default_rng(99).normal(size=(3, 6))  # the same task in every split
    g = np.random.default_rng(seed)
    y = g.integers(0, 3, size=n)
    x = centers[y] + 0.7 * g.normal(size=(n, 6))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


@pytest.fixture(scope="module")
def data() -> Splits:
    return Splits("blobs", 3, train=_blobs(240, 0), reward=_blobs(90, 1), stop=_blobs(90, 2),
                  test=_blobs(90, 3))  # fmt: skip


@pytest.fixture(scope="module")
def net(data: Splits) -> torch.nn.Module:
    spec = MLPSpec(6, 3, (24, 12), ("relu", "relu"), (True, False), (0.0, 0.0))
    model = build_mlp(spec, seed=0)
    fit(model, data.tensors("train"), TrainConfig.mlp(epochs=30), val_data=data.tensors("stop"))
    return model


def test_within_allowed_loss_is_where_the_reward_does_not_punish() -> None:
    assert within_allowed_loss(-1.0, 1.0) and not within_allowed_loss(-1.01, 1.0)
    assert within_allowed_loss(-0.4, 0.0, noise_margin_pp=0.5)
    assert not within_allowed_loss(-0.6, 0.0, noise_margin_pp=0.5)
    assert within_allowed_loss(-1.0, 1.0000000000000009 - 1e-15)  # float noise is not a loss
    for C in (0.0, 1.0, 5.0):
        for margin in (0.0, 0.5):
            for delta in np.linspace(-8, 3, 45):
                r = neon_reward(0.6, 0.8 + delta / 100, 0.8, C, noise_margin_pp=margin)
                assert (r == -(40.0**3)) == (not within_allowed_loss(delta, C, margin))
    with pytest.raises(ValueError, match="must be >= 0"):
        within_allowed_loss(0.0, -1.0)


def test_select_by_C_stops_before_the_first_round_outside_C_with_the_margin() -> None:
    rounds = pd.DataFrame({"round": range(5), "delta_val_pp": [0.0, -0.3, -0.8, 0.2, -3.0]})
    assert int(select_by_C(rounds, 0.0)["round"]) == 0
    assert int(select_by_C(rounds, 0.0, noise_margin_pp=0.5)["round"]) == 1
    assert int(select_by_C(rounds, 1.0)["round"]) == 3  # no look past the first failure
    assert int(select_by_C(rounds, 5.0)["round"]) == 4


def test_global_l1_keep_ranks_by_mean_incoming_weight_over_all_layers() -> None:
    model = build_mlp(MLPSpec(2, 2, (3, 2), ("relu",) * 2, (False,) * 2, (0.0,) * 2), seed=0)
    with torch.no_grad():  # layer 0 has fan-in 2, layer 1 fan-in 3: means, not sums, compare
        model.blocks[0].linear.weight.copy_(torch.tensor([[1.0, 1.0], [0.2, 0.2], [0.5, 0.5]]))
        model.blocks[1].linear.weight.copy_(torch.tensor([[0.4, 0.4, 0.4], [0.1, 0.1, 0.1]]))
    keep = global_l1_keep(model, 3)
    assert [k.tolist() for k in keep] == [[0, 2], [0]]
    keep = global_l1_keep(model, 2)  # the best neuron of every layer comes first
    assert [k.tolist() for k in keep] == [[0], [0]]
    with pytest.raises(ValueError, match="n_keep must lie"):
        global_l1_keep(model, 1)


@pytest.mark.parametrize("fn", [uniform_rounds, global_l1_rounds])
def test_neuron_baselines_give_a_smaller_network(fn, data: Splits, net) -> None:
    before = [p.detach().clone() for p in net.parameters()]
    table = fn(net, data, rounds=3, ft=FT, min_keep_share=0.3)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert table["structural"].all() and (table["dense_params"] == table["params"]).all()
    assert table["params"].is_monotonic_decreasing and table["params"].iloc[-1] < table["params"][0]
    assert table["compression"].iloc[-1] == pytest.approx(count_params(net) / table["params"].iloc[-1])
    widths = [int(w) for w in table["widths"].iloc[-1].split("-")]
    assert sum(widths) <= round(0.3 * 36) + 1 and min(widths) >= 1
    assert table["delta_val_pp"][0] == 0.0


def test_global_magnitude_is_labelled_unstructured(data: Splits, net) -> None:
    table = gmp_rounds(net, data, rounds=2, ft=FT, max_sparsity=0.9)
    assert not table["structural"].any() and not BASELINES["gmp"]["structural"]
    assert "unstructured" in BASELINES["gmp"]["label"] and not STRUCTURAL["gmp"]
    assert (table["dense_params"] == count_params(net)).all()  # the tensors keep their shapes
    assert table["params"].iloc[-1] < 0.3 * count_params(net)
    assert set(BASELINES) <= set(METHODS)


def test_schedules_stop_at_the_first_round_outside_C(data: Splits, net) -> None:
    table = uniform_rounds(net, data, rounds=6, ft=replace(FT, max_steps=1), min_keep_share=0.01,
                           stop_below_pp=0.0, noise_margin_pp=0.0)  # fmt: skip
    ok = [within_allowed_loss(d, 0.0) for d in table["delta_val_pp"]]
    assert all(ok[:-1]) and (len(table) == 7 or not ok[-1])


def test_random_agent_guarded_at_C_never_leaves_C_on_the_reward_split(data: Splits, net) -> None:
    task = NeonTask.from_model(net, data, name="blobs")
    env = NeonEnv([task], NeonEnvConfig(passes=2, ft=FT, guard=True, noise_margin_pp=0.5))
    actions = {}
    for C in (0.0, 1.0, 50.0):
        rep = random_agent_episode(env, seed=3, task=0, C=C)
        assert within_allowed_loss(rep["delta_val_pp"], C, 0.5)
        actions[C] = [s["action"] for s in rep["steps"]]
    assert actions[0.0] == actions[1.0] == actions[50.0]  # paired across C


def test_step_params_are_the_pruned_layer_its_norm_and_the_next_linear(net) -> None:
    got = {id(p) for p in net.step_params([0])}
    b0, b1 = net.blocks
    want = [*b0.linear.parameters(), *b0.bn.parameters(), *b1.linear.parameters()]
    assert got == {id(p) for p in want}
    assert {id(p) for p in net.step_params([0, 1])} == {id(p) for p in net.parameters()}
    with pytest.raises(IndexError):
        net.step_params([2])


def test_admission_rule_keeps_only_clear_wins_over_the_majority_class() -> None:
    refs = pd.DataFrame({
        "dataset": ["easy", "chance", "small"],
        "n_reward": [400, 400, 25],
        "majority_reward": [0.5, 0.8, 0.5],
        "logreg_reward": [0.9, 0.81, 0.6],
        "net_reward": [0.92, 0.80, 0.55],
        "majority_se_pp": [2.5, 2.0, 10.0],
    })  # fmt: skip
    out = admit_datasets(refs, min_gain_pp=2.0, se=2.0)
    assert admitted(out) == ["easy"]
    assert out.loc[0, "best_model"] == "networks" and out.loc[0, "gain_pp"] == pytest.approx(42.0)
    assert out.loc[2, "needed_pp"] == pytest.approx(20.0)  # the SE term decides on few rows
    assert out.loc[1, "reason"].startswith("no model clearly beats the majority class")
    with pytest.raises(ValueError):
        admit_datasets(refs, min_gain_pp=-1.0)


def test_reference_table_measures_every_model_on_the_reward_rows(data: Splits) -> None:
    base = pd.DataFrame({"dataset": ["blobs"] * 2, "val_acc": [0.7, 0.9], "test_acc": [0.6, 0.8],
                         "stopped_early": [True, False]})  # fmt: skip
    t = reference_table({"blobs": data}, base)
    y = data.tensors("train")[1].numpy()
    yr = data.tensors("reward")[1].numpy()
    assert t.loc[0, "majority_reward"] == pytest.approx(np.mean(yr == np.bincount(y).argmax()))
    assert t.loc[0, "net_reward"] == pytest.approx(0.8) and t.loc[0, "n_reward"] == len(yr)
    assert t.loc[0, "logreg_reward"] > t.loc[0, "majority_reward"]
    assert t.loc[0, "nets_stopped_early"] == 1
    with pytest.raises(ValueError, match="no base networks"):
        reference_table({"other": data}, base)


def test_study_uses_the_fixed_mdp_and_converged_base_networks() -> None:
    for profile in ("smoke", "cpu"):
        s = neon_study_sizes(profile)
        assert s.env.removed_of == "original" and 0 < s.env.noise_margin_pp < 1
        assert s.base_train.restore_best and s.base_train.epochs >= 300
    with pytest.raises(ValueError, match="at least 2"):
        study_folds(neon_study_sizes("smoke"), ["spam7"])
    assert len(study_folds(neon_study_sizes("cpu"), ["a", "b"])) == 2
