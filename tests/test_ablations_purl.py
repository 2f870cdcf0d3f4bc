"""Notebook 05's PuRL ablations on one footing: ResNet-20, speed metrics, re-scoring, caching."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pruning_core.data.splits import Splits
from pruning_core.models.cnn import build_model, build_resnet20
from pruning_core.pruning.layers import prunable_layers
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rollout import replay, rollout
from pruning_core.studies import ablations
from pruning_core.studies.ablations import (
    PURL_VARIANTS,
    RUN_COLUMNS,
    AblationSizes,
    NetworkSizes,
    ablation_sizes,
    purl_runs,
    run_purl_variant,
    state_features,
)
from pruning_core.studies.ablations_networks import network_level, uniform_policies, yardstick
from pruning_core.studies.ablations_report import auc, episodes_to_fixed_level
from pruning_core.studies.ablations_timing import (
    random_search_runs,
    random_search_vs_dqn,
    reward_timing,
    reward_timing_summary,
    timing_lines,
)
from pruning_core.studies.mdp_design import DenseModel, dense_digits_cnn, mdp_design_sizes
from pruning_core.train.loop import evaluate

# TinyNet's forward is not a plain chain of its children, so PuRLEnv runs it without the cache.
pytestmark = pytest.mark.filterwarnings("ignore:prefix cache disabled:UserWarning")


# --- ResNet-20 ----------------------------------------------------------------------------------


def test_resnet20_has_22_prunable_layers_and_the_prefix_cache_reproduces_it(one_thread) -> None:
    torch.manual_seed(0)
    model = build_resnet20(10, 1, 4).eval()
    assert len(prunable_layers(model)) == 22
    assert len(prunable_layers(build_model("resnet20", 10, width=4))) == 22
    x = torch.randn(64, 1, 14, 14)
    y = torch.randint(0, 10, (64,))  # untrained: targets given, any labels will do
    env = PuRLEnv(model, (x, y), PuRLConfig(target_accuracy=0.5))
    assert env.num_layers == 22 and env.prefix_cache_enabled
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(env.episode_length):
        _, _, _, _, info = env.step(int(rng.integers(0, 12)))
        assert info["accuracy"] == env.full_accuracy()  # the cached suffix is exact
    full_passes = env.episode_length * len(env.cache.stages)
    assert 0 < env.cache.stages_run < full_passes  # and the prefix was reused


def test_the_dense_networks_do_not_depend_on_the_threads_of_the_process_that_trains_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notebooks 01 and 05 share the small CNN, and 05 trains its dense networks in the kernel or
    in a one-thread worker, whichever needs them first: the weights must be the same either way."""
    sizes = mdp_design_sizes("smoke")
    old = torch.get_num_threads()
    weights = {}
    try:
        for threads in (2, 1):
            monkeypatch.setenv("PRUNING_CORE_CACHE", str(tmp_path / f"cache{threads}"))
            torch.set_num_threads(threads)
            weights[threads] = dense_digits_cnn(sizes).model.state_dict()
            assert torch.get_num_threads() == threads  # restored after training
    finally:
        torch.set_num_threads(old)
    assert weights[1].keys() == weights[2].keys()
    for name, value in weights[1].items():
        assert torch.equal(value, weights[2][name]), name


# --- speed metrics --------------------------------------------------------------------------------


def test_auc_is_a_trapezoid_per_episode() -> None:
    assert auc([0, 10, 20], [0.0, 1.0, 1.0]) == pytest.approx((5 + 10) / 20)
    assert auc([5], [-2.0]) == -2.0
    # a faster curve to the same final level has the larger area
    assert auc([0, 10, 20, 30], [-5, -1, -1, -1]) > auc([0, 10, 20, 30], [-5, -5, -1, -1])


def test_episodes_to_fixed_level_ignores_the_final_level_and_censors() -> None:
    ep = [0, 10, 20, 30, 40, 50]
    low = [-5, -2, -2, -2, -2, -2]  # same speed, different final levels
    high = [-5, -2, -2, -2, -1, -0.5]
    assert episodes_to_fixed_level(ep, low, -2.0, window=1) == (True, 10.0)
    assert episodes_to_fixed_level(ep, high, -2.0, window=1) == (True, 10.0)
    # with the trailing mean of 3 the start's -5 delays both alike
    assert episodes_to_fixed_level(ep, low, -2.0, 3) == episodes_to_fixed_level(ep, high, -2.0, 3)
    assert episodes_to_fixed_level(ep, low, -2.0, 3) == (True, 30.0)
    assert episodes_to_fixed_level(ep, low, -1.0, 3) == (False, 50.0)  # censored at the horizon


# --- a tiny PuRL problem --------------------------------------------------------------------------


@pytest.fixture
def tiny_dense(tiny_net: torch.nn.Module, tmp_path: Path) -> DenseModel:
    """The conftest TinyNet with labels it predicts itself on reward / test, and a ``stop`` split
    whose labels are half wrong (so its accuracy differs from the reward split's)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(144, 3, 8, 8, generator=g)
    tiny_net.eval()
    with torch.no_grad():
        y = tiny_net(x).argmax(1)
    y_stop = y[96:].clone()
    y_stop[::2] = (y_stop[::2] + 1) % 10
    splits = Splits("tiny", 10, train=(x[:48], y[:48]), reward=(x[:48], y[:48]),
                    stop=(x[96:], y_stop), test=(x[48:96], y[48:96]))  # fmt: skip
    return DenseModel(tiny_net, splits, pd.DataFrame(), tmp_path / "tiny_dense.pt")


def _tiny_sizes() -> AblationSizes:
    s = ablation_sizes("smoke")
    net = NetworkSizes("small_cnn", episodes=4, eval_every=2, learning_starts=4,
                       buffer_size=200, small_buffer=5, episodic_horizon=6,
                       episodic_n_step=3, episodic_dqn={"gamma": 1.0})  # fmt: skip
    return replace(s, small_cnn=net, timing_seeds=(0, 1), ablation_seeds=(0, 1))


def test_tiny_ablation_runs_have_the_common_columns_and_are_cached(
    tiny_dense: DenseModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _tiny_sizes()
    runs = state_features(sizes, workers=0, dense=tiny_dense)
    assert list(runs.columns) == list(RUN_COLUMNS)
    assert len(runs) == 3 * 2
    assert list(dict.fromkeys(runs["variant"])) == ["default", "qlp", "no_accuracy"]
    assert list(runs["seed"]) == [0, 1] * 3  # paired seeds
    assert runs["yardstick_rescored"].le(0).all() and runs["sparsity"].between(0, 1).all()
    assert runs["episodes_to_level"].isin([0, 2, 4]).all()
    assert runs["level"].nunique() == 1

    def boom(*_a, **_k):
        raise AssertionError("recomputed a cached run")

    monkeypatch.setattr(ablations, "_train_dqn", boom)
    again = state_features(sizes, workers=0, dense=tiny_dense)  # loads: seconds included
    pd.testing.assert_frame_equal(runs, again)


def test_rescoring_uses_the_stop_split(tiny_dense: DenseModel) -> None:
    sizes = _tiny_sizes()
    for variant in (PURL_VARIANTS["agent"][0], PURL_VARIANTS["agent"][-1]):  # DQN, random search
        res = run_purl_variant(sizes, "small_cnn", tiny_dense, variant, 0)
        d = res["deployed"]
        env = PuRLEnv(tiny_dense.model, tiny_dense.splits.tensors("reward"))
        ep = rollout(env, replay(d["actions"]))
        assert ep.info["accuracy"] == pytest.approx(d["val_accuracy"])
        held = evaluate(env.model, tiny_dense.splits.tensors("stop"))["top1"]
        dense_held = evaluate(tiny_dense.model, tiny_dense.splits.tensors("stop"))["top1"]
        assert d["heldout_accuracy"] == pytest.approx(held)
        assert dense_held < 0.6  # the stop labels are half wrong: not the reward split
        assert d["yardstick_rescored"] == pytest.approx(
            yardstick(held, d["sparsity"], dense_held)
        )
        assert d["test_accuracy"] == pytest.approx(
            evaluate(env.model, tiny_dense.splits.tensors("test"))["top1"]
        )
    rs = pd.DataFrame(
        run_purl_variant(sizes, "small_cnn", tiny_dense, PURL_VARIANTS["agent"][-1], 0)["curve"]
    )
    assert list(rs["episode"]) == [2, 4] and rs["yardstick"].is_monotonic_increasing


def test_reward_timing_summary_and_random_search_vs_dqn(tiny_dense: DenseModel) -> None:
    sizes = _tiny_sizes()
    runs, curves = reward_timing(sizes, "small_cnn", workers=0, dense=tiny_dense)
    assert set(runs["variant"]) == {"step", "episodic"}
    assert set(curves[curves["variant"] == "step"]["episode"]) == {0, 2, 4}
    epi = runs[runs["variant"] == "episodic"]
    # the end-of-episode arm runs to its own horizon unless it reached the level (then it stops)
    for _, row in epi.iterrows():
        c = curves[(curves["variant"] == "episodic") & (curves["seed"] == row["seed"])]
        assert row["horizon"] == 6
        assert c["episode"].max() == (row["episodes_to_level"] if row["reached_level"] else 6)
    summary = reward_timing_summary(sizes, "small_cnn", runs, n_boot=200, dense=tiny_dense)
    keys = {"network", "prunable_layers", "seeds", "level", "episodes_to_level_step",
            "episodes_to_level_episodic", "ratio", "ratio_ci95", "auc_step", "auc_episodic",
            "p", "share_reached_step", "share_reached_episodic", "estimator",
            "episodes_to_level_step_ci95", "episodes_to_level_episodic_ci95",
            "censored_share_step", "censored_share_episodic", "horizon_episodic",
            "horizon_rule", "ratio_restricted"}  # fmt: skip
    assert keys <= set(summary)
    assert summary["estimator"] == "kaplan_meier_median"
    assert 0 <= summary["censored_share_episodic"] <= 1
    assert summary["horizon_episodic"] == sizes.net("small_cnn").horizon
    assert len(summary["ratio_ci95"]) == 2 and len(summary["episodes_to_level_step_ci95"]) == 2
    assert all(isinstance(x, str) and x for x in timing_lines(summary))
    assert summary["seeds"] == [0, 1]
    assert summary["prunable_layers"] == len(prunable_layers(tiny_dense.model))
    assert summary["level"] == pytest.approx(network_level(sizes, "small_cnn", tiny_dense))
    assert summary["level"] == pytest.approx(uniform_policies(tiny_dense)["yardstick"].max())
    rs = random_search_runs(sizes, "small_cnn", workers=0, dense=tiny_dense)
    # the default DQN's runs are the reward-timing step runs (one cache entry)
    step = runs[runs["variant"] == "step"].reset_index(drop=True)
    dqn = rs[rs["variant"] == "default"].reset_index(drop=True)
    assert list(dqn["yardstick_rescored"]) == list(step["yardstick_rescored"])
    out = random_search_vs_dqn(rs)
    assert {"network", "dqn_rescored", "random_search_rescored", "difference", "ci95", "p",
            "n"} <= set(out)  # fmt: skip
    assert out["n"] == 2
    assert out["difference"] == pytest.approx(out["dqn_rescored"] - out["random_search_rescored"])


def test_sizes_fit_the_plan() -> None:
    s = ablation_sizes("cpu")
    assert len(s.timing_seeds) >= 10 and set(s.ablation_seeds) <= set(s.timing_seeds)
    assert s.small_cnn.episodes >= 400
    for n in (s.small_cnn, s.resnet20):
        assert n.eval_episodes[0] == 0 and n.eval_episodes[-1] == n.episodes
        assert n.buffer_size >= n.episodes * (5 if n.network == "small_cnn" else 22)
    assert not set(s.timing_seeds) & {100, 101, 102}  # the pilot's seeds
    assert purl_runs is ablations.purl_runs and PuRLConfig().reward_mode == "step"
