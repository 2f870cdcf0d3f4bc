"""Ablations (notebook 05): the plateau, the statistics, the NEON-reward wrapper, tiny runs."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from pruning_core.data.splits import Splits
from pruning_core.figures.ablations import plot_runs
from pruning_core.rl.envs.purl import PuRLEnv
from pruning_core.rl.rewards import neon_reward, purl_reward
from pruning_core.stats import finite_or_none, holm, t_interval, welch_effect
from pruning_core.studies.ablations import (
    NeonRewardWrapper,
    ablation_sizes,
    yardstick,
)
from pruning_core.studies.ablations_neon import NEON_VARIANTS, neon_ablation
from pruning_core.studies.ablations_report import (
    common_level_episodes,
    effects,
    episodes_to_level,
    episodes_to_plateau,
    findings,
    ranking,
    summarise,
)
from pruning_core.studies.mdp_design import DenseModel

# TinyNet's forward is not a plain chain of its children, so PuRLEnv runs it without the cache.
pytestmark = pytest.mark.filterwarnings("ignore:prefix cache disabled:UserWarning")

# --- episodes to plateau ---------------------------------------------------------------------


def test_plateau_step_curve_hand_checked() -> None:
    ep = list(range(8))
    v = [0, 0, 5, 10, 10, 10, 10, 10]
    # window 1: start 0, final (last 2 points) 10, threshold 9.5 -> first at episode 3
    assert episodes_to_plateau(ep, v, window=1, final_fraction=0.25) == 3.0
    # window 3: trailing means 0, 0, 1.67, 5, 8.33, 10, ... -> first >= 9.5 at episode 5
    assert episodes_to_plateau(ep, v, window=3, final_fraction=0.25) == 5.0


def test_plateau_invariant_to_shift_and_scale_and_uses_episode_labels() -> None:
    ep = [0, 10, 20, 30, 40, 50, 60, 70]
    v = np.array([0, 0, 5, 10, 10, 10, 10, 10], dtype=float)
    for w in (1, 3):
        base = episodes_to_plateau(ep, v, window=w)
        assert episodes_to_plateau(ep, 2.0 * v - 100.0, window=w) == base
    assert episodes_to_plateau(ep, v, window=1) == 30.0


def test_plateau_edge_cases() -> None:
    ep = [0, 1, 2, 3, 4]
    assert episodes_to_plateau(ep, [-1, -1, -1, -1, -1]) == 0.0  # flat: nothing to learn
    assert episodes_to_plateau(ep, [-1, -2, -3, -4, -5]) == 0.0  # only got worse
    # final window (last point) = 10, smoothed curve never reaches 9.5 -> last episode
    assert episodes_to_plateau(ep, [0, 0, 0, 0, 10], window=3, final_fraction=0.2) == 4.0
    # a noisy curve: 95% of the way from -4 to the mean of the last 2 (-1.5) is -1.625
    v = [-4, -1, -4, -1.5, -1.5, -1.5]
    assert episodes_to_plateau(list(range(6)), v, window=1, final_fraction=0.3) == 1.0
    with pytest.raises(ValueError):
        episodes_to_plateau([0, 1], [0.0])
    with pytest.raises(ValueError):
        episodes_to_plateau([0, 1], [0.0, 1.0], window=0)


def test_common_level_compares_speed_on_one_scale() -> None:
    # A rises early and keeps improving; B rises later to a worse final level.
    curves = pd.DataFrame(
        {
            "seed": [0] * 8,
            "variant": ["A"] * 4 + ["B"] * 4,
            "episode": [0, 1, 2, 3] * 2,
            "yardstick": [-4, -2, -2, -1, -4, -4, -2, -2],
        }
    )
    # own final levels: A -1 (threshold -1.15, reached at 3), B -2 (threshold -2.1, at 2)
    a, b = curves[curves.variant == "A"], curves[curves.variant == "B"]
    assert episodes_to_plateau(a.episode, a.yardstick, window=1) == 3.0
    assert episodes_to_plateau(b.episode, b.yardstick, window=1) == 2.0
    # one level both reach: -4 + 0.95 * (-2 + 4) = -2.1 -> A at 1, B at 2
    common = common_level_episodes(curves, window=1).set_index("variant")
    assert common["common_level"].tolist() == pytest.approx([-2.1, -2.1])
    assert common.loc["A", "episodes_to_common_level"] == 1.0
    assert common.loc["B", "episodes_to_common_level"] == 2.0
    assert episodes_to_level([0, 1, 2], [-3, -3, -3], -1.0) == 2.0  # never: last episode


# --- statistics ------------------------------------------------------------------------------


def test_t_interval_hand_checked() -> None:
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)  # t(0.975, 2) * sd 1 / sqrt(3)
    assert m == 2.0
    assert lo == pytest.approx(2.0 - half, abs=1e-5)
    assert hi == pytest.approx(2.0 + half, abs=1e-5)
    m, lo, hi = t_interval([5.0])
    assert m == 5.0 and math.isnan(lo) and math.isnan(hi)
    assert t_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert all(math.isnan(x) for x in t_interval([]))


def test_welch_effect_matches_scipy() -> None:
    a, b = [1.0, 2.0, 4.0, 3.5], [0.0, 0.5, 1.0]
    e = welch_effect(a, b)
    assert e["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    assert e["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert e["ci_low"] == pytest.approx(e["diff"] - half)
    assert e["ci_high"] == pytest.approx(e["diff"] + half)
    # zero variance on both sides: the difference is exact
    assert welch_effect([1.0, 1.0], [1.0, 1.0])["p_value"] == 1.0
    z = welch_effect([2.0, 2.0], [1.0, 1.0])
    assert (z["diff"], z["ci_low"], z["ci_high"], z["p_value"]) == (1.0, 1.0, 1.0, 0.0)
    assert math.isnan(welch_effect([1.0], [1.0, 2.0])["p_value"])


def test_holm_hand_checked() -> None:
    out = holm(np.array([0.01, 0.04, 0.03, math.nan]))
    np.testing.assert_allclose(out[:3], [0.03, 0.06, 0.06])
    assert math.isnan(out[3])


def test_effects_and_ranking() -> None:
    runs = pd.DataFrame(
        {
            "ablation": ["state"] * 9,
            "variant": ["default"] * 3 + ["small"] * 3 + ["big"] * 3,
            "seed": [0, 1, 2] * 3,
            "yardstick": [-2.0, -2.1, -1.9, -2.05, -2.0, -1.95, -4.0, -4.2, -3.8],
        }
    )
    eff = effects(runs, ["yardstick"])
    assert list(eff["variant"]) == ["small", "big"]
    rank = ranking([eff], {"purl": "yardstick"})
    assert list(rank["variant"]) == ["big", "small"] and list(rank["rank"]) == [1, 2]
    assert rank.loc[0, "diff"] == pytest.approx(-2.0)
    assert rank.loc[0, "p_value"] < 0.01 and rank.loc[1, "p_value"] > 0.5
    s = summarise(runs, ["yardstick"])
    assert set(s.columns) == {"variant", "metric", "n", "mean", "ci_low", "ci_high"}
    assert finite_or_none([1.0, math.nan]) == [1.0, None]


def _purl_runs(ablation: str, variants: dict[str, list[float]], **const: float) -> pd.DataFrame:
    """Per-seed PuRL runs with the given yardsticks (other metrics constant unless given)."""
    rows = []
    for variant, ys in variants.items():
        for seed, y in enumerate(ys):
            rows.append({"ablation": ablation, "variant": variant, "seed": seed, "yardstick": y,
                         "sparsity": 0.5, "test_accuracy": 0.9, "late_collapses": 0.0,
                         "episodes_to_plateau": 40.0, "seconds": 1.0, **const})  # fmt: skip
    return pd.DataFrame(rows)


def test_findings_are_computed_from_the_tables() -> None:
    timing = _purl_runs("reward_timing", {"step": [-1.0, -1.2, -1.1], "episodic": [-2.0] * 3})
    timing["episodes_to_common_level"] = [50.0, 60.0, 90.0, 100.0, 60.0, 95.0]  # 2 firsts, 1 tie
    agent = _purl_runs("agent", {"default": [-2.0, -2.1, -1.9], "random_search": [-0.5] * 3})
    agent.loc[agent["variant"] == "default", "late_collapses"] = [0.0, 0.5, 0.0]
    shape = _purl_runs("reward_shape", {"default": [-2.0, -2.1, -1.9], "neon_C1": [-3.0] * 3})
    action = _purl_runs("action_space", {"default": [-2.0, -2.1, -1.9], "passes_3": [-2.0] * 3})
    action.loc[action["variant"] == "passes_3", ["episodes_to_plateau", "seconds"]] = [90.0, 3.0]
    action.loc[action.index[-1], "episodes_to_plateau"] = 88.0  # Welch needs some spread
    neon = pd.DataFrame(
        {"ablation": "neon", "variant": ["default"] * 2 + ["passes_1"] * 2, "seed": [0, 1] * 2,
         "compression": [6.0, 6.0, 2.0, 2.0], "train_compression": [5.0, 5.0, 2.0, 2.0],
         "delta_val_pp": [-1.0] * 4, "seconds_per_episode": [0.1, 0.1, 0.05, 0.05]}
    )  # fmt: skip
    runs = {"reward_timing": timing, "reward_shape": shape, "action_space": action,
            "agent": agent, "neon": neon}  # fmt: skip
    eff = pd.concat(
        [effects(r, ["yardstick", "episodes_to_plateau"], default=d)
         for r, d in [(timing, "step"), (shape, "default"), (action, "default"), (agent, "default")]],
        ignore_index=True,
    )  # fmt: skip
    rank = ranking([eff], {"purl": "yardstick"})
    text = findings(runs, eff, rank)
    assert "per-step reward 67, end-of-episode reward 85" in text
    assert "first with 2 of 3 seeds (1 tie)" in text
    assert "agent:random_search moves the yardstick from -2.00 to -0.50" in text
    # random search beats both DQN configurations; the shape/action defaults are not counted twice
    assert "random search beats 5 of the 5 DQN configurations" in text
    assert "in 17% of its late evaluations" in text
    assert "action_space:passes_3 89 vs 40" in text and "Three passes cost 3.0x" in text
    assert "passes_1 x2.0 (greedy x2.0, validation -1.0 pp, 0.50x the time per episode)" in text
    with pytest.raises(KeyError, match="neon"):
        findings({k: v for k, v in runs.items() if k != "neon"}, eff, rank)


def test_plot_runs_does_not_depend_on_the_global_rng() -> None:
    """The seed dots' jitter is seeded: the same runs give the same figure, and the caller's
    numpy RNG stream is left where it was."""
    import io

    import matplotlib.pyplot as plt

    runs = _purl_runs("state", {"default": [-2.0, -2.1, -1.9], "qlp": [-1.5, -1.7, -1.6]})
    summary = summarise(runs, ["yardstick"])
    svgs = []
    for seed in (1, 2):
        np.random.seed(seed)
        fig = plot_runs(runs, summary, ["yardstick"])
        assert fig.axes[0].get_xlim() == (-0.5, 1.5)
        buf = io.StringIO()
        with plt.rc_context({"svg.hashsalt": "t"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
        plt.close(fig)
        svgs.append(buf.getvalue())
        after = np.random.random()
        np.random.seed(seed)
        assert after == np.random.random()
    assert svgs[0] == svgs[1]


# --- a tiny PuRL problem ---------------------------------------------------------------------


@pytest.fixture
def tiny_dense(tiny_net: torch.nn.Module, tmp_path: Path) -> DenseModel:
    """The conftest TinyNet with labels it predicts itself (dense accuracy 1)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 3, 8, 8, generator=g)
    tiny_net.eval()
    with torch.no_grad():
        y = tiny_net(x).argmax(1)
    splits = Splits("tiny", 10, train=(x[:48], y[:48]), reward=(x[:48], y[:48]), test=(x[48:], y[48:]))
    return DenseModel(tiny_net, splits, pd.DataFrame(), tmp_path / "tiny_dense.pt")


def test_neon_reward_wrapper_recomputes_the_reward(tiny_dense: DenseModel) -> None:
    env = PuRLEnv(tiny_dense.model, tiny_dense.splits.tensors("reward"))
    wrapped = NeonRewardWrapper(env, C=1.0, scale=1.0)
    wrapped.reset(seed=0)
    _, r, _, _, info = wrapped.step(10)  # alpha 1.0 on the first layer
    removed = info["layer_sparsity"][info["layer"]]
    assert r == pytest.approx(neon_reward(1 - removed, info["accuracy"], 1.0, 1.0))
    _, r0, _, _, info = wrapped.step(0)  # alpha 0: removes nothing, earns 0
    assert r0 == 0.0
    assert yardstick(0.5, 0.4, 1.0) == pytest.approx(purl_reward(0.5, 0.4, 1.0, 0.8, 5.0))


# --- a tiny NEON run -------------------------------------------------------------------------


def test_tiny_neon_ablation_columns() -> None:
    sizes = replace(
        ablation_sizes("smoke"), seeds=(0,), neon_datasets=("spam7",), neon_episodes=2
    )
    runs, nets = neon_ablation(sizes)
    assert list(runs["variant"]) == [v.name for v in NEON_VARIANTS]
    for col in ("compression", "delta_test_pp", "delta_val_pp", "seconds_per_episode"):
        assert runs[col].notna().all()
    assert runs["compression"].ge(1.0).all()
    assert set(nets["dataset"]) == {"spam7"}
    # both variants prune; whether their trained agents end with the same greedy policy is
    # not a property: fine-tuning a masked network and a structurally smaller one sums in a
    # different order, so an accuracy can move by one row and a 2-episode agent diverge (the
    # two modes' equivalence for the same actions is tested in test_neon_env)
    comp = runs.set_index("variant")["compression"]
    assert comp["mask"] > 1.0 and comp["default"] > 1.0
