"""NeonEnv: gymnasium contract, NEON's reward, structural vs mask mode, clear errors."""

from __future__ import annotations

import math
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from torch import nn

from pruning_core.data.splits import Splits
from pruning_core.models.mlp import MLPSpec, NoHiddenLayerError, build_mlp
from pruning_core.pruning.neurons import count_params
from pruning_core.rl.envs.neon import KEEP_FRACTIONS, NeonEnv, NeonEnvConfig, NeonTask
from pruning_core.rl.envs.neon_features import MAX_LAYERS, OBS_DIM
from pruning_core.rl.rewards import neon_reward
from pruning_core.train.loop import TrainConfig, fit

torch.set_num_threads(1)


def _data(n: int = 240, d: int = 6, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, d, generator=g)
    y = ((x[:, 0] + x[:, 1]) * 1.5).long().clamp(max=2)
    k = int(n * 0.7)
    return x[:k], y[:k], x[k:], y[k:]


def _splits(xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor) -> Splits:
    """NEON's data: the validation rows are both the reward and the early-stopping split."""
    return Splits("toy", 3, train=(xt, yt), reward=(xv, yv), stop=(xv, yv))


def _task(hidden: tuple[int, ...] = (16, 12), bn: bool = True, train: bool = True) -> NeonTask:
    xt, yt, xv, yv = _data()
    n = len(hidden)
    spec = MLPSpec(6, 3, hidden, ("relu",) * n, (bn,) * n, (0.0,) * n)
    model = build_mlp(spec, seed=0)
    if train:
        fit(model, (xt, yt), val_data=(xv, yv), cfg=TrainConfig.mlp(lr=1e-2, epochs=20, patience=5))
    return NeonTask.from_model(model, _splits(xt, yt, xv, yv), name="toy")


FAST = NeonEnvConfig(passes=2, ft=TrainConfig.mlp(max_steps=4, steps_per_check=2, patience=1, monitor="val_top1"),
                     stat_rows=50)  # fmt: skip


def test_check_env_passes() -> None:
    env = NeonEnv([_task()], FAST)
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (OBS_DIM,)
    assert env.action_space.n == len(KEEP_FRACTIONS) == 5


def test_registered_with_gymnasium() -> None:
    import pruning_core  # noqa: F401  (registers the ids)

    env = gym.make("pruning_core/Neon-v0", tasks=[_task(train=False)], config=FAST)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (OBS_DIM,)
    env.close()


@pytest.mark.parametrize(
    ("keep", "acc", "base", "C", "expected"),
    [
        (0.6, 0.80, 0.80, 1.0, 40.0),  # no change: within tolerance -> L
        (0.6, 0.795, 0.80, 1.0, 40.0),  # -0.5 pp, C = 1 -> L
        (0.6, 0.78, 0.80, 1.0, -64000.0),  # -2 pp > C -> -L^3
        (0.8, 0.81, 0.80, 0.0, 8000.0),  # +1 pp -> +L^3
        (0.9, 0.79, 0.80, 0.0, -1000.0),  # C = 0: any loss -> -L^3
        (0.7, 0.60, 0.80, 50.0, 30.0),  # -20 pp within C = 50 -> L
        (1.0, 0.50, 0.80, 0.0, -0.0),  # nothing removed: 0 whatever happens
    ],
)
def test_neon_reward_hand_values(keep, acc, base, C, expected) -> None:
    assert neon_reward(keep, acc, base, C) == pytest.approx(expected, abs=1e-6)


def test_step_reward_follows_the_formula() -> None:
    cfg = replace(FAST, finetune="none", passes=1)
    env = NeonEnv([_task()], cfg)
    env.reset(seed=0, options={"task": 0, "C": 1.0})
    base = env.task.base_val_acc
    _obs, r, term, _trunc, info = env.step(4)  # keep 60% of 16 -> 10 neurons
    L = (1 - 10 / 16) * 100
    delta = (info["accuracy"] - base) * 100
    expected = -(L**3) if delta < -1.0 else (L**3 if delta > 0 else L)
    assert r == pytest.approx(expected)
    assert env.model.blocks[0].width == 10 and not term
    _obs, r, term, _trunc, _info = env.step(0)  # keep everything: nothing removed
    assert r == 0.0 and term and env.model.blocks[1].width == 12


def test_episode_length_observation_bounds_and_originals_untouched() -> None:
    task = _task(hidden=(16, 12, 8))
    before = {k: v.clone() for k, v in task.model.state_dict().items()}
    env = NeonEnv([task], replace(FAST, passes=4))
    obs, _ = env.reset(seed=1)
    steps = 0
    done = False
    while not done:
        assert env.observation_space.contains(obs)
        obs, _r, done, _t, _info = env.step(4)
        steps += 1
    assert steps == 4 * 3
    rep = env.episode_report()
    assert rep["widths_final"] == [2, 1, 1]  # 16-10-6-4-2, 12-7-4-2-1, 8-5-3-2-1
    assert rep["compression"] > 3 and rep["params_pruned"] == count_params(env.final_model())
    for k, v in task.model.state_dict().items():
        assert torch.equal(v, before[k])


def test_mask_mode_equals_structural_mode_without_finetuning() -> None:
    task = _task(bn=True)
    reports = []
    for mode in ("structural", "mask"):
        env = NeonEnv([task], replace(FAST, finetune="none", mode=mode))
        env.reset(seed=0, options={"task": 0, "C": 5.0})
        done = False
        while not done:
            _o, _r, done, _t, _i = env.step(3)
        reports.append(env.episode_report())
    a, b = reports
    assert a["params_pruned"] == b["params_pruned"]
    assert a["val_acc"] == pytest.approx(b["val_acc"])
    assert a["widths_final"] == b["widths_final"]


def test_finetune_changed_layers_only_touches_them() -> None:
    task = _task(hidden=(16, 12, 8), bn=False)
    env = NeonEnv([task], replace(FAST, finetune="changed"))
    env.reset(seed=0)
    w_first = env.model.blocks[0].linear.weight.clone()
    env.step(0)  # layer 0 unchanged
    env.step(4)  # layer 1 shrinks: layer 1 and layer 2's Linear are fine-tuned
    assert torch.equal(env.model.blocks[0].linear.weight, w_first)


def test_clear_errors() -> None:
    env = NeonEnv([_task()], FAST)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for bad in (5, -1, 7):
        with pytest.raises(ValueError, match="out of range"):
            env.step(bad)
    for bad in (0.5, "a", None):
        with pytest.raises(ValueError, match="action"):
            env.step(bad)
    env.step(np.int64(1))  # numpy integers are fine
    xt, yt, xv, yv = _data()
    with pytest.raises(NoHiddenLayerError, match="no hidden"):
        NeonTask.from_model(nn.Sequential(nn.Linear(6, 3)), _splits(xt, yt, xv, yv))
    broken = _task(train=False).model
    with torch.no_grad():
        broken.head.weight.fill_(math.nan)
    with pytest.raises(FloatingPointError, match="NaN"):
        NeonTask.from_model(broken, _splits(xt, yt, xv, yv))
    deep = MLPSpec(6, 3, (4,) * (MAX_LAYERS + 1), ("relu",) * 11, (False,) * 11, (0.0,) * 11)
    with pytest.raises(ValueError, match="at most"):
        NeonTask.from_model(build_mlp(deep), _splits(xt, yt, xv, yv))
    with pytest.raises(ValueError, match="finetune"):
        NeonEnvConfig(finetune="some")
    with pytest.raises(ValueError, match="C must"):
        env.reset(options={"C": -1.0})


def test_nan_after_pruning_is_reported() -> None:
    task = _task()
    env = NeonEnv([task], replace(FAST, finetune="none"))
    env.reset(seed=0)
    with torch.no_grad():
        env.model.blocks[1].linear.weight.fill_(math.nan)
    with pytest.raises(FloatingPointError, match="NaN accuracy"):
        env.step(4)


def test_reward_noise_margin_and_removed_share_of_the_original_width() -> None:
    # a change inside the noise band earns L, neither +L^3 nor -L^3
    assert neon_reward(0.6, 0.905, 0.90, 1.0) == pytest.approx(40.0**3)
    assert neon_reward(0.6, 0.905, 0.90, 1.0, noise_margin_pp=1.0) == pytest.approx(40.0)
    assert neon_reward(0.6, 0.885, 0.90, 1.0, noise_margin_pp=2.0) == pytest.approx(40.0)
    assert neon_reward(0.6, 0.85, 0.90, 1.0, noise_margin_pp=2.0) == pytest.approx(-(40.0**3))
    with pytest.raises(ValueError, match="noise_margin_pp"):
        neon_reward(0.6, 0.9, 0.9, 1.0, noise_margin_pp=-1.0)
    # the linear improvement switch: a rise earns L, a loss beyond C still -L^3
    assert neon_reward(0.6, 0.92, 0.90, 1.0, improvement="linear") == pytest.approx(40.0)
    assert neon_reward(0.6, 0.85, 0.90, 1.0, improvement="linear") == pytest.approx(-(40.0**3))
    assert neon_reward(0.6, 0.895, 0.90, 1.0, improvement="linear") == pytest.approx(40.0)
    with pytest.raises(ValueError, match="improvement must be one of"):
        neon_reward(0.6, 0.9, 0.9, 1.0, improvement="quadratic")
    with pytest.raises(ValueError, match="improvement_reward must be one of"):
        NeonEnvConfig(improvement_reward="square")
    # within_weight w: within C (and a rise, under "linear") earns w * L^3, so removing L is
    # worth it exactly while P(over C) < w / (1 + w): at w = 1/9 and P = 0.1 the gamble is even
    w, L3 = 1 / 9, 40.0**3
    assert neon_reward(0.6, 0.895, 0.90, 1.0, within_weight=w) == pytest.approx(w * L3)
    assert neon_reward(0.6, 0.92, 0.90, 1.0, improvement="linear", within_weight=w) == pytest.approx(w * L3)
    assert neon_reward(0.6, 0.92, 0.90, 1.0, within_weight=w) == pytest.approx(L3)  # cubic rise
    assert neon_reward(0.6, 0.85, 0.90, 1.0, within_weight=w) == pytest.approx(-L3)
    assert 0.9 * (w * L3) + 0.1 * (-L3) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="within_weight"):
        neon_reward(0.6, 0.9, 0.9, 1.0, within_weight=-1.0)
    with pytest.raises(ValueError, match="within_weight"):
        NeonEnvConfig(within_weight=float("nan"))
    # two 40% cuts of a 16-neuron layer: 16 -> 10 -> 6; L of the second is 4/16 of the original
    rewards = {}
    for of in ("current", "original"):
        cfg = replace(FAST, finetune="none", passes=2, removed_of=of, noise_margin_pp=100.0)
        env = NeonEnv([_task()], cfg)
        env.reset(seed=0, options={"task": 0, "C": 1.0})
        rewards[of] = [env.step(4)[1] for _ in range(env.T)]
    n = env.n_hidden
    assert rewards["current"][0] == rewards["original"][0] == pytest.approx(37.5)
    assert rewards["current"][n] == pytest.approx(40.0)  # 4 of the 10 left
    assert rewards["original"][n] == pytest.approx(25.0)  # 4 of the original 16
    with pytest.raises(ValueError, match="removed_of"):
        NeonEnvConfig(removed_of="widest")
