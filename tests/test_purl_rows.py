"""The rows issue 26 adds to notebooks 02 and 03: random search at PuRL's sparsity, the best
uniform-alpha policy, Holm and the minimum detectable difference, gradual pruning's mask
updates, and fine-tuning that never ends below its start."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from pruning_core.methods.purl_baselines import (
    GradualMagnitude,
    best_uniform_alpha,
    gradual_plan,
    layer_amounts,
    random_search,
    scale_to_sparsity,
    uniform_alpha_table,
)
from pruning_core.models.cnn import build_model
from pruning_core.pruning.layers import prunable_layers
from pruning_core.pruning.masks import Masker
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rollout import replay, rollout
from pruning_core.stats import holm, min_detectable_difference
from pruning_core.studies import purl_report as pr
from pruning_core.train.batchnorm import use_batch_statistics
from pruning_core.train.loop import TrainConfig, evaluate, fit


def _data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long() + 2 * (x[:, 1].mean(dim=(1, 2)) > 0).long()
    return x, y


def _trained() -> nn.Module:
    torch.manual_seed(0)
    model = build_model("small_cnn", 4)
    fit(model, _data(256), TrainConfig(epochs=3, lr=1e-2, optimizer="adam", batch_size=32))
    return model


# --- random search at PuRL's sparsity --------------------------------------------------------


@pytest.mark.parametrize("target", [0.3, 0.55, 0.8])
def test_bisection_brings_a_policy_to_the_target_sparsity_keeping_its_allocation(target: float) -> None:
    model = _trained()
    rs = random_search(model, _data(48, 2), 0.6, 0.3, episodes=4, seed=1)
    layers = prunable_layers(model)
    amounts = layer_amounts(rs.masks)
    masks, scale, sparsity = scale_to_sparsity(layers, amounts, target)
    zeros = sum(int((~m).sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    assert sparsity == pytest.approx(zeros / total)
    assert abs(sparsity - target) <= 1e-3
    # one scale for every layer: the per-layer amounts keep their order (below the cap)
    got = layer_amounts(masks)
    pruned = [k for k, v in amounts.items() if v > 0 and scale * v < 0.98]
    for a in pruned:
        assert got[a] == pytest.approx(min(scale * amounts[a], 0.99), abs=2 / rs.masks[a].numel())


def test_bisection_at_scale_one_reproduces_the_policy_and_refuses_a_dense_one() -> None:
    model = _trained()
    rs = random_search(model, _data(48, 2), 0.6, 0.3, episodes=3, seed=0)
    layers = prunable_layers(model)
    _, scale, sparsity = scale_to_sparsity(layers, layer_amounts(rs.masks), rs.sparsity)
    assert sparsity == pytest.approx(rs.sparsity, abs=1e-3) and scale == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="prunes no layer"):
        scale_to_sparsity(layers, {layer.name: 0.0 for layer in layers}, 0.5)


# --- the best uniform alpha ------------------------------------------------------------------


def test_uniform_alpha_table_is_what_the_env_measures_at_the_last_step() -> None:
    model = _trained()
    reward = _data(64, 3)
    cfg = PuRLConfig(target_sparsity=0.5, target_accuracy=0.4, alphas=(0.0, 0.5, 1.0, 2.0))
    table = uniform_alpha_table(model, reward, cfg)
    env = PuRLEnv(use_batch_statistics(model), reward, cfg)
    for a, row in enumerate(table.itertuples()):
        ep = rollout(env, replay([a] * env.episode_length))
        assert row.accuracy == pytest.approx(float(ep.info["accuracy"]), abs=1e-12)
        assert row.sparsity == pytest.approx(float(ep.info["sparsity"]), abs=1e-12)
        assert row.reward == pytest.approx(ep.rewards[-1], abs=1e-9)
    env.close()
    best, masks = best_uniform_alpha(model, reward, cfg)
    top = table.sort_values(["reward", "accuracy"], ascending=False).iloc[0]
    assert best["alpha"] == top["alpha"] and best["reward"] == table["reward"].max()
    zeros = sum(int((~m).sum()) for m in masks.values())
    assert zeros / sum(m.numel() for m in masks.values()) == pytest.approx(best["sparsity"])


# --- statistics ------------------------------------------------------------------------------


def test_holm_matches_a_hand_computation() -> None:
    # sorted 0.01, 0.03, 0.04, 0.2 -> 4*0.01, max(0.04, 3*0.03), max(0.09, 2*0.04), max(0.09, 0.2)
    assert np.allclose(holm([0.01, 0.04, 0.03, 0.2]), [0.04, 0.09, 0.09, 0.2])
    assert np.allclose(holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1


def test_min_detectable_difference_has_80_percent_power() -> None:
    sd, n = 2.0, 8
    mdd = min_detectable_difference(sd, n)
    assert mdd == pytest.approx((stats.t.ppf(0.975, 7) + stats.t.ppf(0.8, 7)) * sd / math.sqrt(n))
    # exact power of the paired t-test at that difference (noncentral t): about 0.8
    crit = stats.t.ppf(0.975, n - 1)
    power = 1 - stats.nct.cdf(crit, n - 1, mdd / (sd / math.sqrt(n)))
    assert 0.78 < power < 0.82
    assert min_detectable_difference(sd, 100) == pytest.approx((1.96 + 0.8416) * sd / 10, rel=0.02)
    assert math.isnan(min_detectable_difference(sd, 1))


def test_paired_table_adds_holm_and_the_detectable_difference_over_the_study() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for seed in range(6):
        for i, method in enumerate(("PuRL", "global one-shot", "random search", "best uniform alpha")):
            rows.append({"method": method, "seed": seed, "target": 0.8,
                         "sparsity_prunable": 0.6 if method == "best uniform alpha" else 0.85,
                         "top1": 0.8 - 0.003 * i + rng.normal(0, 0.004)})  # fmt: skip
    paired = pr.paired_table(pd.DataFrame(rows))
    assert np.allclose(paired["p_holm"], holm(paired["p"]))
    assert (paired["p_holm"] >= paired["p"]).all()
    ua = paired.set_index("baseline").loc["best uniform alpha"]
    assert ua["baseline_sparsity"] == 0.6 and ua["purl_sparsity"] == 0.85
    assert paired["min_detectable_pp"].gt(0).all()


# --- gradual magnitude pruning ---------------------------------------------------------------


def test_gradual_plan_updates_the_mask_at_the_stated_steps_and_ends_at_the_target() -> None:
    assert gradual_plan(96, 0.75, 8) == (72, 9)
    assert gradual_plan(188, 0.75, 12) == (132, 11)
    ramp, updates = gradual_plan(40, 0.75, 5)  # 30 steps of ramp, 10 of recovery
    model = build_model("small_cnn", 4)
    mk = Masker(model)
    sched = GradualMagnitude(mk, 0.6, ramp, updates)
    changes, sparsity = [], 0.0
    cfg = TrainConfig(epochs=None, max_steps=40, lr=1e-3, optimizer="adam", batch_size=16)

    def on_step(step: int) -> bool:
        nonlocal sparsity
        done = sched(step)
        if mk.sparsity() != sparsity:
            changes.append(step)
            sparsity = mk.sparsity()
        return done

    res = fit(model, _data(), cfg, masker=mk, on_step=on_step)
    assert res.steps == 40
    assert changes == list(range(5, 31, 5))  # every 5 steps over the ramp, never after
    total = sum(layer.numel for layer in mk.layers)
    zeros = sum(int((layer.weight == 0).sum()) for layer in mk.layers)
    assert zeros == round(0.6 * total)


# --- fine-tuning never ends below its start --------------------------------------------------


def test_finetune_with_check_start_never_returns_worse_than_its_start() -> None:
    model = _trained()
    stop = _data(128, 5)
    start = evaluate(model, stop)["top1"]
    # a learning rate that wrecks the network: the start must win on the stop split
    cfg = TrainConfig(epochs=3, lr=5.0, optimizer="adam", weight_decay=0.0, batch_size=32, patience=2,
                      restore_best=True, check_start=True, monitor="val_top1")  # fmt: skip
    fit(model, _data(256, 4), cfg, val_data=stop)
    assert evaluate(model, stop)["top1"] >= start


def test_noise_floor_reports_the_control_sd_and_a_detectable_difference_from_purl_s_spread() -> None:
    rows = pd.DataFrame([{"method": m, "seed": s, "target": 0.8, "top1": t}
                         for s, (p, c) in enumerate([(0.80, 0.81), (0.78, 0.81), (0.82, 0.81), (0.79, 0.81)])
                         for m, t in (("PuRL", p), ("dense + fine-tuning", c))])  # fmt: skip
    floor = pr.noise_floor(rows, 0.8, 10_000)
    sd = 100 * rows[rows["method"] == "PuRL"]["top1"].std()
    assert floor["control_seed_sd_pp"] == pytest.approx(0.0)  # the same control on every seed
    assert floor["min_detectable_pp"] == pytest.approx(min_detectable_difference(math.sqrt(2) * sd, 4))
    assert "not detectable" in pr.noise_line(floor, 4)
