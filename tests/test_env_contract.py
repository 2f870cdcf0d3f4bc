"""The environments as other RL libraries use them: ownership of the model, vector envs,
gymnasium's conventions (make, render modes), one info schema that array-based readers take,
steps under a collector's no_grad / inference_mode, clear errors, the README quick start.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pruning_core  # noqa: F401  (registers the ids)
from pruning_core.data.splits import Splits
from pruning_core.models.mlp import MLPSpec, build_mlp
from pruning_core.pruning.layers import NoPrunableLayerError
from pruning_core.pruning.masks import Masker
from pruning_core.pruning.neurons import n_keep_for
from pruning_core.pruning.report import sparsity_report
from pruning_core.rl.envs.info import INFO_KEYS
from pruning_core.rl.envs.neon import (
    KEEP_FRACTIONS,
    UNIT_REWARD_SCALE,
    NeonEnv,
    NeonEnvConfig,
    NeonTask,
)
from pruning_core.rl.envs.neon_batched import NeonBatch, replay_batch
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rewards import neon_max_removed, neon_reward, neon_unit_scale
from pruning_core.train.loop import TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_thread")

PURL_ID, NEON_ID = "pruning_core/PuRL-v0", "pruning_core/Neon-v0"
README = Path(__file__).resolve().parent.parent / "docs" / "quickstart.md"


def cnn() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10),
    ).eval()  # fmt: skip
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.bias.zero_()
    return net


def labelled(model: nn.Module, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs labelled by the model itself: a 'trained' model with accuracy 1."""
    x = torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        return x, model(x).argmax(1).clone()


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(model: nn.Module, ref: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())


def play(env: gym.Env, actions: list[int]) -> tuple[list[float], list[dict]]:
    env.reset(seed=0)
    out = [env.step(a) for a in actions]
    return [float(r) for _, r, _, _, _ in out], [i for *_, i in out]


PATTERNS = [[22, 22, 22, 22], [0, 0, 0, 0], [11, 3, 22, 7]]


# --- ownership: the caller's model is never changed; vector envs do not share a model -----


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_caller_model_unchanged_and_two_envs_on_one_model(prefix_cache: bool) -> None:
    model = cnn()
    data = labelled(model)
    dense = state(model)
    cfg = PuRLConfig(prefix_cache=prefix_cache)
    single = {tuple(p): play(PuRLEnv(cnn(), labelled(cnn()), cfg), p)[0] for p in PATTERNS}
    a, b = PuRLEnv(model, data, cfg), PuRLEnv(model, data, cfg)
    for pa, pb in [(PATTERNS[0], PATTERNS[1]), (PATTERNS[2], PATTERNS[0])]:
        a.reset(seed=0)
        b.reset(seed=0)
        ra, rb = [], []
        for x, y in zip(pa, pb, strict=True):  # interleaved steps on one model object
            ra.append(a.step(x)[1])
            rb.append(b.step(y)[1])
        assert ra == single[tuple(pa)] and rb == single[tuple(pb)]
        assert same_state(model, dense), "the caller's model was pruned"
    a.close()
    b.close()
    assert same_state(model, dense)
    fresh = PuRLEnv(model, data, cfg)  # an env built on it next sees a dense model
    assert fresh.dense_accuracy == 1.0


def test_copy_model_false_prunes_in_place_refuses_sharing_and_restores() -> None:
    model = cnn()
    data = labelled(model)
    dense = state(model)
    env = PuRLEnv(model, data, copy_model=False)
    with pytest.raises(ValueError, match="already pruned in place"):
        PuRLEnv(model, data, copy_model=False)
    play(env, [22, 22, 22, 22])
    assert not same_state(model, dense)  # in place, as documented
    env.close()
    assert same_state(model, dense)
    PuRLEnv(model, data, copy_model=False).close()  # released by close()


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("prefix_cache", [True, False])
def test_gymnasium_vector_envs_match_single_envs(mode: str, prefix_cache: bool) -> None:
    model = cnn()
    cfg = PuRLConfig(prefix_cache=prefix_cache)
    venv = gym.make_vec(PURL_ID, num_envs=2, vectorization_mode=mode, model=model,
                        val_data=labelled(model), config=cfg)  # fmt: skip
    try:
        venv.reset(seed=[0, 1])
        rewards = [venv.step(np.array([x, y]))[1] for x, y in zip(*PATTERNS[:2], strict=True)]
    finally:
        venv.close()
    got = np.array(rewards).T
    for i, pattern in enumerate(PATTERNS[:2]):
        want, _ = play(PuRLEnv(cnn(), labelled(cnn()), cfg), pattern)
        assert got[i].tolist() == pytest.approx(want, abs=0)


def test_stable_baselines3_vector_helper_matches_single_envs() -> None:
    model = cnn()
    venv = make_vec_env(PURL_ID, n_envs=2, seed=0,
                        env_kwargs={"model": model, "val_data": labelled(model)})  # fmt: skip
    venv.reset()
    rewards = [venv.step(np.array([x, y]))[1] for x, y in zip(PATTERNS[2], PATTERNS[0], strict=True)]
    venv.close()
    got = np.array(rewards).T
    for i, pattern in enumerate([PATTERNS[2], PATTERNS[0]]):
        want, _ = play(PuRLEnv(cnn(), labelled(cnn())), pattern)
        np.testing.assert_array_equal(got[i], np.float32(want))  # SB3 keeps rewards as float32
    assert venv.render_mode == "rgb_array"  # what the helper asks for, and now gets


def neon_task(seed: int = 0) -> NeonTask:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 300)
    x = (np.eye(3)[y] @ rng.normal(size=(3, 6)) + 0.3 * rng.normal(size=(300, 6))).astype(np.float32)
    xt, yt = torch.as_tensor(x[:200]), torch.as_tensor(y[:200])
    xv, yv = torch.as_tensor(x[200:]), torch.as_tensor(y[200:])
    data = Splits("toy", 3, train=(xt, yt), reward=(xv, yv), stop=(xv, yv))
    mlp = build_mlp(MLPSpec(6, 3, (16, 8), ("relu",) * 2, (False,) * 2, (0.0,) * 2), seed=0)
    fit(mlp, (xt, yt), TrainConfig.mlp(epochs=30), val_data=(xv, yv))
    return NeonTask.from_model(mlp, data)


def test_neon_vector_env_matches_single_envs_and_leaves_the_network() -> None:
    task = neon_task()
    dense = state(task.model)
    cfg = NeonEnvConfig(passes=1, finetune="none", C_values=(1.0,))
    venv = gym.make_vec(NEON_ID, num_envs=2, vectorization_mode="sync", tasks=[task], config=cfg)
    venv.reset(seed=[0, 0])
    got = np.array([venv.step(np.array([4, 0]))[1], venv.step(np.array([2, 4]))[1]]).T
    venv.close()
    for i, pattern in enumerate([[4, 2], [0, 4]]):
        assert got[i].tolist() == pytest.approx(play(NeonEnv([task], cfg), pattern)[0], abs=0)
    assert same_state(task.model, dense)


def test_neon_task_does_not_hold_the_callers_network() -> None:
    task = neon_task()
    caller = task.model
    other = NeonTask.from_model(caller, task.data)
    assert other.model is not caller


# --- gymnasium's conventions and the one info schema --------------------------------------


def test_make_without_arguments_says_what_to_pass() -> None:
    with pytest.raises(TypeError, match=r"model=.*val_data=.*gymnasium.make"):
        gym.make(PURL_ID)
    gym.make(NEON_ID).close()  # NEON has a built-in toy task


@pytest.mark.parametrize("env_id", [PURL_ID, NEON_ID])
def test_render_modes(env_id: str) -> None:
    model = cnn()
    kw = {"model": model, "val_data": labelled(model)} if env_id == PURL_ID else {}
    assert set(gym.make(env_id, **kw).metadata["render_modes"]) == {"ansi", "rgb_array"}
    env = gym.make(env_id, render_mode="ansi", **kw)
    env.reset(seed=0)
    env.step(4)
    text = env.render()
    assert isinstance(text, str) and "step 1" in text
    env = gym.make(env_id, render_mode="rgb_array", **kw)
    env.reset(seed=0)
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.std() > 0
    cls = PuRLEnv if env_id == PURL_ID else NeonEnv
    with pytest.raises(ValueError, match="renders"):
        cls(render_mode="video", **kw)


@pytest.mark.parametrize("env_id", [PURL_ID, NEON_ID])
def test_one_info_schema(env_id: str) -> None:
    model = cnn()
    kw = {"model": model, "val_data": labelled(model)} if env_id == PURL_ID else {}
    env = gym.make(env_id, **kw)
    _, info = env.reset(seed=0)
    assert tuple(info)[: len(INFO_KEYS)] == INFO_KEYS
    assert info["step"] == 0 and info["sparsity"] == 0.0 and info["compression"] == 1.0
    assert info["layer"] == 0 and info["pass"] == 0 and info["step_reward"] == 0.0
    _, reward, *_, info = env.step(4)
    assert tuple(info)[: len(INFO_KEYS)] == INFO_KEYS and info["step"] == 1
    assert info["step_reward"] == reward and 0 < info["sparsity"] < 1 and info["compression"] > 1
    assert info["compression"] == pytest.approx(1 / (1 - info["sparsity"]), rel=0.5)
    assert "reward" not in info  # a collector's own key for the reward step returns
    names = env.unwrapped.layer_names if env_id == PURL_ID else ["hidden0", "hidden1"]
    assert info["layer"] == 0 and info["layer_name"] == names[0]


# --- what third-party collectors do: step under no_grad, stack info values with numpy -----


def purl_finetuning() -> PuRLEnv:
    model = cnn()
    cfg = PuRLConfig(finetune_steps=3, finetune_batch_size=16)
    return PuRLEnv(model, labelled(model), cfg, train_data=labelled(cnn(), 96))


def neon_finetuning() -> NeonEnv:
    ft = TrainConfig.mlp(max_steps=6, steps_per_check=2, patience=1, monitor="val_top1")
    return NeonEnv([neon_task()], NeonEnvConfig(passes=2, C_values=(1.0,), ft=ft))


ENVS: dict[str, Callable[[], gym.Env]] = {"purl": purl_finetuning, "neon": neon_finetuning}
MODES = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode}


def episode(env: gym.Env, mode: Callable[[], contextlib.AbstractContextManager]) -> list[tuple]:
    """A collector's loop: reset and every step of one episode (actions 4, 2, 4, ...) under
    ``mode``; returns (obs, reward, terminated, info) of each, the reset's first."""
    with mode():
        caller = (torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        obs, info = env.reset(seed=0)
        out = [(obs, 0.0, False, info)]
        done, t = False, 0
        while not done:
            obs, reward, done, _, info = env.step(4 if t % 2 == 0 else 2)
            out.append((obs, reward, done, info))
            t += 1
        assert (torch.is_grad_enabled(), torch.is_inference_mode_enabled()) == caller  # restored
    return out


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("name", list(ENVS))
def test_fine_tuning_steps_run_under_no_grad_and_inference_mode(name: str, mode: str) -> None:
    """TorchRL's collector steps envs under torch.no_grad() (or inference_mode): the env's own
    fine-tuning turns gradients back on, and the episode is the one of a plain caller, bit for
    bit."""
    plain = episode(ENVS[name](), contextlib.nullcontext)
    got = episode(ENVS[name](), MODES[mode])
    assert len(got) == len(plain) > 2
    for (o1, r1, d1, i1), (o2, r2, d2, i2) in zip(plain, got, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert (r1, d1) == (r2, d2)
        assert i1.keys() == i2.keys()
        for k in i1:
            np.testing.assert_array_equal(i1[k], i2[k])


@pytest.mark.parametrize("mode", list(MODES))
def test_neon_fast_path_runs_under_no_grad_and_inference_mode(mode: str) -> None:
    task = neon_task()
    ft = TrainConfig.mlp(max_steps=6, steps_per_check=2, patience=1, monitor="val_top1")
    cfg = NeonEnvConfig(passes=1, C_values=(1.0,), ft=ft)
    plain = NeonBatch([task], cfg).play(replay_batch([[4, 4]]), starts=[(0, 1.0)])[0]
    with MODES[mode]():
        got = NeonBatch([task], cfg).play(replay_batch([[4, 4]]), starts=[(0, 1.0)])[0]
    assert got.rewards == plain.rewards and got.infos == plain.infos


def stack_like_a_collector(infos: list[dict]) -> dict[str, np.ndarray]:
    """What array-based readers do with a run of infos: TorchRL's default_info_dict_reader reads
    ``value.dtype`` of each and makes a tensor of the numbers; Tianshou and vector envs stack
    each key's values with numpy."""
    keys = list(infos[0])
    out = {}
    for info in infos:
        assert list(info) == keys, "every info has the same keys, in the same order"
        for k, v in info.items():
            assert isinstance(v, (np.generic, np.ndarray)), f"{k}: {type(v).__name__} has no dtype"
            assert v.dtype != np.dtype("O"), k
            assert type(v) is type(infos[0][k]) and v.dtype.kind == infos[0][k].dtype.kind, k
            if v.dtype.kind != "U":
                torch.as_tensor(v)  # the reader's tensor
    for k in keys:
        out[k] = np.asarray([info[k] for info in infos])
        assert out[k].dtype != np.dtype("O") and out[k].shape[0] == len(infos), k
    return out


@pytest.mark.parametrize("name", list(ENVS))
def test_info_values_are_what_array_readers_take(name: str) -> None:
    infos = [info for *_, info in episode(ENVS[name](), torch.no_grad)]
    cols = stack_like_a_collector(infos)
    assert cols["layer"].dtype == np.int64 and cols["step"].tolist() == list(range(len(infos)))
    assert cols["step_reward"].dtype == np.float64 and cols["pass"].dtype == np.int64
    assert cols["layer_name"].dtype.kind == "U"
    if name == "purl":
        env = purl_finetuning()
        assert cols["layer_sparsity"].shape == (len(infos), env.num_layers)
        assert np.isnan(cols["action_value"][0]) and not np.isnan(cols["action_value"][1:]).any()
    else:
        assert cols["undone"].dtype == np.bool_ and np.isnan(cols["keep"][0])
        assert cols["keep"][1:].tolist() == [0.6, 0.8, 0.6, 0.8]
        assert cols["layer"].tolist() == [0, 0, 1, 0, 1]
        assert cols["pass"].tolist() == [0, 0, 0, 1, 1]


def test_layer_is_the_same_type_in_both_envs() -> None:
    _, purl_info = purl_finetuning().reset(seed=0)
    _, neon_info = NeonEnv([neon_task()]).reset(seed=0)
    for key in INFO_KEYS:
        assert type(purl_info[key]) is type(neon_info[key]), key


def test_scaled_neon_reward() -> None:
    task = neon_task()
    cfg = NeonEnvConfig(passes=1, finetune="none", C_values=(1.0,))
    paper, _ = play(NeonEnv([task], cfg), [4, 4])
    scaled, _ = play(NeonEnv([task], replace(cfg, reward_scale=1 / 40**3)), [4, 4])
    assert scaled == pytest.approx([r / 40**3 for r in paper])
    assert max(abs(r) for r in scaled) <= 1.0
    with pytest.raises(ValueError, match="reward_scale"):
        NeonEnvConfig(reward_scale=0.0)


def test_the_unit_reward_scale_bounds_the_reward_by_one() -> None:
    """Kept neurons round half up, so a small layer loses more than 1 - keep: keeping 0.6 of 2
    neurons removes 50%, and 1/40**3 lets the reward reach (50/40)**3. The documented unit scale
    is the true bound: the largest L over every width up to 2,000, cubed."""
    worst = max(100 * (n - n_keep_for(n, k)) / n for k in KEEP_FRACTIONS for n in range(1, 2001))
    assert neon_max_removed(KEEP_FRACTIONS) == pytest.approx(worst) == pytest.approx(50.0)
    assert UNIT_REWARD_SCALE == neon_unit_scale(KEEP_FRACTIONS) == pytest.approx(1 / 50**3)
    half = n_keep_for(2, 0.6) / 2  # the share of a 2-neuron layer kept at keep 0.6
    assert neon_reward(half, 0.5, 0.9, 1.0) * UNIT_REWARD_SCALE == pytest.approx(-1.0)
    assert neon_reward(half, 0.95, 0.9, 1.0) * UNIT_REWARD_SCALE == pytest.approx(1.0)
    assert abs(neon_reward(half, 0.5, 0.9, 1.0)) / 40**3 > 1.9  # what 1/40**3 gives here
    for keeps in [(0.5,), (0.3, 0.9), (0.95,)]:  # other action sets: a bound too
        top = max(100 * (n - n_keep_for(n, k)) / n for k in keeps for n in range(1, 2001))
        assert neon_max_removed(keeps) >= top - 1e-9 and neon_max_removed(keeps) <= top + 1e-2
    # in the env: a network of widths (4, 2) loses half of each layer at keep 0.6
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    x = np.eye(3)[y] @ rng.normal(size=(3, 6)) + 0.3 * rng.normal(size=(200, 6))
    x = x.astype(np.float32)
    xt, yt = torch.as_tensor(x[:140]), torch.as_tensor(y[:140])
    xv, yv = torch.as_tensor(x[140:]), torch.as_tensor(y[140:])
    mlp = build_mlp(MLPSpec(6, 3, (4, 2), ("relu",) * 2, (False,) * 2, (0.0,) * 2), seed=0)
    fit(mlp, (xt, yt), TrainConfig.mlp(epochs=30), val_data=(xv, yv))
    data = Splits("toy", 3, train=(xt, yt), reward=(xv, yv), stop=(xv, yv))
    task = NeonTask.from_model(mlp, data)
    cfg = NeonEnvConfig(passes=1, finetune="none", C_values=(0.0,), reward_scale=UNIT_REWARD_SCALE)
    env = NeonEnv([task], cfg)
    rewards, _ = play(env, [4, 4])
    assert [(r["n_before"], r["n_after"]) for r in env.log] == [(4, 2), (2, 1)]
    assert all(abs(r) <= 1.0 for r in rewards)


# --- one definition of "prunable" -----------------------------------------------------------


def test_report_and_masker_count_the_same_prunable_weights() -> None:
    model = cnn()
    masker = Masker(model, exclude=["0", "8"])  # first conv and classifier dense
    masker.global_magnitude(0.8)
    x, _ = labelled(model)
    report = sparsity_report(model, x, exclude=["0", "8"])
    assert report.sparsity_prunable == pytest.approx(masker.sparsity(), abs=0)
    assert report.per_layer["layer"].tolist() == [la.name for la in masker.layers]
    assert masker.report(x).sparsity_prunable == report.sparsity_prunable
    everything = sparsity_report(model, x)  # no exclusions: every conv / linear layer counts
    assert everything.params_prunable > report.params_prunable


# --- bad input gets a clear error that says what to do --------------------------------------


@pytest.mark.filterwarnings("ignore:prefix cache disabled")
def test_bad_inputs() -> None:
    model = cnn()
    x, y = labelled(model)
    with pytest.raises(TypeError, match="DataLoader.*torch.cat"):
        PuRLEnv(model, DataLoader(TensorDataset(x, y), batch_size=8))
    untrained = cnn()
    with torch.no_grad():
        untrained[-1].weight.zero_()  # predicts class 0 for everything
    with pytest.raises(ValueError, match="untrained"):
        PuRLEnv(untrained, (x, torch.full_like(y, 3)))
    with pytest.raises(NoPrunableLayerError):
        PuRLEnv(nn.Sequential(nn.Flatten(), nn.ReLU()), (x, y))
    env = PuRLEnv(model, (x, y))
    env.reset(seed=0)
    for bad in (23, -1, 1.5, "a"):
        with pytest.raises(ValueError, match="invalid action"):
            env.step(bad)
    broken = cnn()
    with torch.no_grad():
        broken[-1].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError):
        PuRLEnv(broken, (x, y))


# --- the README's quick start runs as written -----------------------------------------------


@pytest.mark.slow
def test_readme_quick_start_runs() -> None:
    text = README.read_text()
    section = text.split("## Quick start: the environments with an agent of your own", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README lost its quick start"
    exec(compile("\n".join(blocks), "README.md", "exec"), {"__name__": "readme"})
