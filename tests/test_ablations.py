"""Ablations (notebook 05): the t interval, the per-variant figure, the NEON-reward wrapper."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pruning_core.data.splits import Splits
from pruning_core.figures.ablations import plot_runs
from pruning_core.rl.envs.purl import PuRLEnv
from pruning_core.rl.rewards import neon_reward, purl_reward
from pruning_core.stats import t_interval
from pruning_core.studies.ablations import NeonRewardWrapper, yardstick
from pruning_core.studies.ablations_report import summarise
from pruning_core.studies.mdp_design import DenseModel

# TinyNet's forward is not a plain chain of its children, so PuRLEnv runs it without the cache.
pytestmark = pytest.mark.filterwarnings("ignore:prefix cache disabled:UserWarning")

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


def test_plot_runs_does_not_depend_on_the_global_rng() -> None:
    """The seed dots' jitter is seeded: the same runs give the same figure, and the caller's
    numpy RNG stream is left where it was."""
    import io

    import matplotlib.pyplot as plt

    values = {"default": [-2.0, -2.1, -1.9], "qlp": [-1.5, -1.7, -1.6]}
    runs = pd.DataFrame(
        [{"variant": v, "seed": s, "yardstick": y} for v, ys in values.items() for s, y in enumerate(ys)]
    )
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
