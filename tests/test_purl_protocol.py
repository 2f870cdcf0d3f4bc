"""The pieces of the PuRL study's protocol (issue 14): gradual magnitude pruning, random search
with PuRL's budget, paired statistics, one-thread worker processes, and the report tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from torch import nn

from pruning_core.config import run_jobs
from pruning_core.methods.purl_baselines import (
    GradualMagnitude,
    cubic_sparsity,
    one_shot_masks,
    random_search,
)
from pruning_core.models.cnn import build_model
from pruning_core.pruning.layers import prunable_layers
from pruning_core.pruning.masks import Masker
from pruning_core.stats import paired_difference
from pruning_core.studies import purl_jobs as pj
from pruning_core.studies import purl_report as pr
from pruning_core.train.loop import TrainConfig, fit


def _data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long() + 2 * (x[:, 1].mean(dim=(1, 2)) > 0).long()
    return x, y


def _small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model("small_cnn", 4)


# --- gradual magnitude pruning ---------------------------------------------------------------


def test_cubic_schedule_starts_at_zero_ends_at_final_and_never_decreases() -> None:
    values = [cubic_sparsity(t, 100, 0.8, updates=10) for t in range(0, 130)]
    assert values[0] == 0.0
    assert all(v == 0.8 for v in values[100:])
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert len(set(values)) == 11  # ten updates on the ramp, then the final value
    assert values[50] > 0.8 * 0.5  # cubic: most of the pruning happens early


def test_gradual_pruning_in_fit_reaches_the_exact_sparsity_and_keeps_only_settled_weights() -> None:
    model = _small_cnn()
    mk = Masker(model)
    total = sum(layer.numel for layer in mk.layers)
    settled_at: list[int] = []
    sched = GradualMagnitude(mk, 0.7, ramp_steps=12, updates=4)

    def on_step(step: int) -> bool:
        done = sched(step)
        if done and not settled_at:
            settled_at.append(step)
        return done

    cfg = TrainConfig(epochs=6, lr=1e-3, optimizer="adam", batch_size=16, restore_best=True,
                      patience=1, check_start=False)  # fmt: skip
    res = fit(model, _data(), cfg, val_data=_data(64, 1), masker=mk, on_step=on_step)
    zeros = sum(int((layer.weight == 0).sum()) for layer in mk.layers)
    assert zeros == round(0.7 * total)  # exact, and held through the rest of training
    assert settled_at == [12]
    # the weights kept are from a check at or after the ramp: the final sparsity is in place
    assert res.checks >= 2 and mk.sparsity() == pytest.approx(0.7, abs=1 / total)


def test_unsettled_checks_neither_stop_early_nor_become_the_best() -> None:
    model = _small_cnn()
    cfg = TrainConfig(epochs=5, lr=1e-3, optimizer="adam", batch_size=96, patience=1, restore_best=True)
    res = fit(model, _data(), cfg, val_data=_data(64, 1), on_step=lambda step: step >= 5)
    # patience 1 would stop after the second check if unsettled checks counted; every epoch is
    # one step here, and checks 1-4 are unsettled, so training runs all five epochs
    assert res.steps == 5 and res.checks == 5


# --- random search ---------------------------------------------------------------------------


def test_random_search_spends_purl_s_budget_and_its_masks_reproduce_its_choice() -> None:
    model = _small_cnn()
    fit(model, _data(), TrainConfig(epochs=2, lr=1e-3, optimizer="adam", batch_size=32))
    reward = _data(48, 2)
    a = random_search(model, reward, 0.6, 0.3, episodes=6, seed=3)
    b = random_search(model, reward, 0.6, 0.3, episodes=6, seed=3)
    assert len(a.log) == 6 and a.episodes == 6
    assert len(a.actions) == len(prunable_layers(model))  # one action per layer and episode
    assert a.actions == b.actions  # seeded
    best = a.log.loc[a.log["return"].idxmax()]
    assert a.sparsity == pytest.approx(best["final_sparsity"])
    assert a.reward_accuracy == pytest.approx(best["final_accuracy"])
    zeros = sum(int((~m).sum()) for m in a.masks.values())
    assert zeros / sum(m.numel() for m in a.masks.values()) == pytest.approx(a.sparsity)
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(),
                                                   _trained_copy().state_dict().values(), strict=True))  # fmt: skip


def _trained_copy() -> nn.Module:
    model = _small_cnn()
    fit(model, _data(), TrainConfig(epochs=2, lr=1e-3, optimizer="adam", batch_size=32))
    return model


def test_random_search_rejects_an_empty_budget() -> None:
    with pytest.raises(ValueError, match="at least one episode"):
        random_search(_small_cnn(), _data(8), 0.5, None, episodes=0)


def test_one_shot_masks_have_exactly_the_sparsity_asked_for() -> None:
    layers = prunable_layers(_small_cnn())
    total = sum(layer.numel for layer in layers)
    for method in ("global", "uniform"):
        masks = one_shot_masks(method, layers, 0.75)
        zeros = sum(int((~m).sum()) for m in masks.values())
        assert abs(zeros - 0.75 * total) <= len(layers)
    with pytest.raises(ValueError, match="global"):
        one_shot_masks("random", layers, 0.5)


# --- statistics ------------------------------------------------------------------------------


def test_paired_difference_matches_scipy_and_handles_constant_differences() -> None:
    a = [91.2, 90.1, 92.4, 89.9, 90.6]
    b = [90.0, 90.3, 91.1, 89.0, 90.1]
    d = paired_difference(a, b)
    assert d["n"] == 5
    assert d["mean"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert d["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert d["p_wilcoxon"] == pytest.approx(stats.wilcoxon(np.subtract(a, b)).pvalue)
    lo, hi = d["ci95"]
    assert lo < d["mean"] < hi
    same = paired_difference([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert same["ci95"] == [0.5, 0.5] and same["p"] == 0.0
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1.0, 2.0], [1.0])
    assert math.isnan(paired_difference([1.0, math.nan], [0.0, 0.0])["p"])  # one pair left


# --- one thread per job ----------------------------------------------------------------------


def train_job(seed: int) -> list[float]:
    """A small training run (module level, so spawned workers can import it)."""
    torch.manual_seed(seed)
    model = build_model("small_cnn", 4)
    fit(model, _data(256, seed), TrainConfig(epochs=3, lr=1e-2, optimizer="adam", batch_size=32, seed=seed))
    return [float(p.detach().double().sum()) for p in model.parameters()]


def test_jobs_give_the_same_numbers_in_worker_processes_and_inline_whatever_the_threads() -> None:
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        inline = run_jobs(train_job, [0, 1, 2], workers=0)
        assert torch.get_num_threads() == 2  # restored after the one-thread inline run
        pooled = run_jobs(train_job, [0, 1, 2], workers=2)
    finally:
        torch.set_num_threads(old)
    assert pooled == inline  # bit for bit, in the order of the jobs
    assert inline[0] != inline[1]


# --- report tables ---------------------------------------------------------------------------


def _rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(5):
        for target in (0.8, 0.9):
            base = 0.90 - (target - 0.8) + rng.normal(0, 0.003)
            for i, method in enumerate(("PuRL", "global one-shot", "uniform one-shot", "gradual (cubic)")):
                rows.append({"method": method, "seed": seed, "target": target,
                             "sparsity_prunable": target - 0.01, "top1": base - 0.01 * i})  # fmt: skip
    return pd.DataFrame(rows)


def test_paired_table_is_purl_minus_each_baseline_by_seed() -> None:
    rows = _rows()
    paired = pr.paired_table(rows)
    assert len(paired) == 6  # 3 baselines x 2 targets
    g = paired[(paired["baseline"] == "uniform one-shot") & (paired["target"] == 0.8)].iloc[0]
    assert g["purl_minus_baseline_pp"] == pytest.approx(2.0)  # PuRL is 2 points above on every seed
    assert g["ci_low"] == pytest.approx(2.0) and g["p"] < 1e-10


def test_drop_table_and_goals_follow_the_numbers() -> None:
    rows = _rows()
    drops = pr.drop_table(rows, dense_top1=0.905).set_index("target")
    purl = rows[(rows["method"] == "PuRL") & (rows["target"] == 0.8)]
    assert drops.loc[0.8, "drop_pp"] == pytest.approx(100 * (0.905 - purl["top1"].mean()))
    assert drops.loc[0.8, "drop_lo"] < drops.loc[0.8, "drop_pp"] < drops.loc[0.8, "drop_hi"]
    summary = {"model": "resnet50", "purl_sparsity_prunable": 0.79,
               "purl_drop_pp": {"mean": 0.5, "ci95": [0.2, 0.8]},
               "paired": {"global one-shot": {"purl_minus_baseline_pp": -0.4, "ci95": [-0.9, -0.1]}}}  # fmt: skip
    goals = pr.goals(summary).set_index("check")["met"].tolist()
    assert goals == [False, True, "baseline better"]  # 79% < 80%; drop interval below 1 point


def failing_job(x: int) -> int:
    """Fails on one input (module level, for the worker processes)."""
    if x == 2:
        raise ValueError(f"job {x} failed")
    return x * 10


def test_a_failing_job_stops_the_run_with_its_error() -> None:
    assert run_jobs(failing_job, [0, 1, 3], workers=2) == [0, 10, 30]
    with pytest.raises(ValueError, match="job 2 failed"):
        run_jobs(failing_job, [0, 1, 2, 3], workers=2)
    with pytest.raises(ValueError, match="job 2 failed"):
        run_jobs(failing_job, [2, 3], workers=0)


def test_study_sizes_and_jobs_reject_what_they_cannot_run() -> None:
    from pruning_core.studies import purl as ps

    with pytest.raises(ValueError, match="unknown model 'vgg16'"):
        ps.purl_study_sizes("vgg16", "cpu")
    sizes = ps.purl_study_sizes("mobilenet_v2", "smoke")
    with pytest.raises(ValueError, match="use 'purl' or 'controls'"):
        pj.study_job(pj.StudyJob(sizes, 0, sizes.headline_target, part="baselines"))
    # at cpu ResNet-50 runs its headline target only; MobileNet-V2 keeps two operating points
    assert ps.purl_study_sizes("resnet50", "cpu").targets == (0.8,)
    assert ps.purl_study_sizes("mobilenet_v2", "cpu").targets == (0.5, 0.7)
