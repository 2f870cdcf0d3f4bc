"""Kaplan-Meier episodes-to-level, the ratio interval and the horizon rule (notebook 05)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pruning_core.rl.agents.dqn_nstep import nstep_transitions
from pruning_core.studies.ablations_km import horizon_rule, km_median, ratio_interval


def test_km_median_matches_a_hand_computation() -> None:
    # events at 10, 20, 30, 50; censored at 20 and 40. At risk / events:
    # t=10: 6/1 -> S = 5/6; t=20: 5/1 -> S = 4/6 (the run censored at 20 is still at risk);
    # t=30: 3/1 -> S = 4/6 * 2/3 = 4/9 <= 0.5: the median is 30; t=50: 1/1 -> S = 0.
    t = [10, 20, 20, 30, 40, 50]
    r = [True, True, False, True, False, True]
    km = km_median(t, r, horizon=50)
    assert km["median"] == 30
    assert km["censored_share"] == pytest.approx(2 / 6)
    # restricted mean: 10*1 + 10*5/6 + 10*4/6 + 20*4/9 (S stays 4/9 from 30 to 50)
    assert km["restricted_mean"] == pytest.approx(10 + 10 * 5 / 6 + 10 * 4 / 6 + 20 * 4 / 9)
    lo, hi = km["ci95"]
    assert lo <= 30 and (math.isnan(hi) or hi >= 30)


def test_km_median_undefined_when_fewer_than_half_reach() -> None:
    km = km_median([600, 600, 600, 250], [False, False, False, True], horizon=600)
    assert math.isnan(km["median"]) and km["censored_share"] == 0.75
    none = km_median([600, 600], [False, False], horizon=600)
    assert math.isnan(none["median"]) and none["restricted_mean"] == 600


def test_km_median_without_censoring_is_the_sample_median_step() -> None:
    km = km_median([30, 10, 20, 40], [True] * 4)
    assert km["median"] == 20  # S(20) = 0.5: the first time S <= 0.5
    assert km["restricted_mean"] == pytest.approx(np.mean([30, 10, 20, 40]))


def test_ratio_interval_covers_a_known_ratio_and_flags_unbounded() -> None:
    rng = np.random.default_rng(0)
    step = rng.integers(90, 110, size=12).astype(float)
    epi = 3 * step + rng.integers(-5, 5, size=12)
    out = ratio_interval((step, [True] * 12), (epi, [True] * 12), n_boot=500)
    lo, hi = out["ci95"]
    assert lo <= out["ratio"] <= hi and lo > 2.8 and hi < 3.2
    never = ratio_interval((step, [True] * 12), ([600.0] * 12, [False] * 12), n_boot=200)
    assert math.isnan(never["ratio"]) and never["ci95"][1] is None
    assert never["undefined_share"] == 1.0
    assert never["ratio_restricted"] == pytest.approx(600 / step.mean())


def test_horizon_rule() -> None:
    assert horizon_rule([170, 180, 190], 540)["met"]
    assert not horizon_rule([170, 180, 190], 539)["met"]
    assert horizon_rule([170, 180, 190], 600)["required"] == pytest.approx(540)


def test_nstep_transitions_carry_the_terminal_reward_back() -> None:
    r = [0.0, 0.0, 0.0, -4.0]
    mc = nstep_transitions(r, n=4, gamma=1.0)
    assert [g for _, g, _ in mc] == [-4.0] * 4 and [k for *_, k in mc] == [3, 3, 3, 3]
    two = nstep_transitions(r, n=2, gamma=0.5)
    assert [(t, g, k) for t, g, k in two] == [(0, 0.0, 1), (1, 0.0, 2), (2, -2.0, 3), (3, -4.0, 3)]
