"""PuRLEnv: the gymnasium contract, rewards, sparsity bookkeeping, reset and the prefix cache."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from torch import nn

import pruning_core  # noqa: F401  (registers pruning_core/PuRL-v0)
from pruning_core.pruning.criteria import threshold_mask
from pruning_core.pruning.layers import NoPrunableLayerError
from pruning_core.rl.envs.prefix_cache import PrefixCache, sequential_modules
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.envs.purl_features import DEFAULT_ALPHAS, FEATURE_NAMES, layer_descriptors
from pruning_core.rl.rewards import neon_reward, purl_reward, purl_step_reward
from pruning_core.studies.mdp_design import mdp_design_sizes

pytestmark = pytest.mark.usefixtures("one_thread")


def seq_net() -> nn.Module:
    """A small nn.Sequential CNN (the prefix cache decomposes it); zero biases, so that its
    predictions depend on the input."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 32),
        nn.ReLU(),
        nn.Linear(32, 10),
    ).eval()
    with torch.no_grad():
        for m in net:
            if getattr(m, "bias", None) is not None and not isinstance(m, nn.BatchNorm2d):
                m.bias.zero_()
    return net


def data_for(model: nn.Module, n: int = 48, size: int = 8, seed: int = 1) -> tuple:
    """Random inputs labelled by the dense model itself, so its accuracy is exactly 1."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    with torch.inference_mode():
        y = model.eval()(x).argmax(1)
    return x, y.clone()


@pytest.fixture
def env() -> PuRLEnv:
    model = seq_net()
    return PuRLEnv(model, data_for(model), PuRLConfig(target_sparsity=0.8))


def play(env: PuRLEnv, actions: list[int]) -> list[tuple]:
    out = []
    env.reset(seed=0)
    for a in actions:
        out.append(env.step(a))
    return out


# --- gymnasium contract -------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [
        PuRLConfig(),
        PuRLConfig(action_space="ratio", passes=2, features="qlp", reward_mode="episodic"),
        PuRLConfig(features="no_accuracy", finetune_steps=1),
    ],
)
def test_check_env_passes(cfg: PuRLConfig) -> None:
    model = seq_net()
    x, y = data_for(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's warnings count as failures too
        check_env(PuRLEnv(model, (x, y), cfg, train_data=(x, y)), skip_render_check=True)


def test_gymnasium_make_and_spaces() -> None:
    model = seq_net()
    env = gym.make(
        "pruning_core/PuRL-v0", model=model, val_data=data_for(model), config=PuRLConfig()
    )
    obs, info = env.reset(seed=0)
    assert env.action_space.n == 23
    assert obs.shape == (len(FEATURE_NAMES),) and obs.dtype == np.float32
    assert obs in env.observation_space
    steps = 0
    done = False
    while not done:
        obs, r, done, trunc, info = env.step(env.action_space.sample())
        assert obs in env.observation_space and not trunc
        steps += 1
    assert steps == env.unwrapped.num_layers == 5
    assert env.unwrapped.feature_names == FEATURE_NAMES
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)  # with a spec: render-mode and close checks too


def test_feature_sets_and_layer_types(env: PuRLEnv) -> None:
    model = seq_net()
    qlp = PuRLEnv(model, data_for(model), PuRLConfig(features="qlp"))
    assert qlp.feature_names == ("position", "layer_density")
    assert qlp.observation_space.shape == (2,)
    no_acc = PuRLEnv(model, data_for(model), PuRLConfig(features="no_accuracy"))
    assert "accuracy" not in no_acc.feature_names
    assert len(no_acc.feature_names) == len(FEATURE_NAMES) - 1
    assert list(env.descriptors["type"]) == ["conv", "conv", "depthwise", "linear", "linear"]
    table = env.layer_table()
    assert table["f_param_share"].sum() == pytest.approx(1.0)
    assert ((table.filter(like="f_") >= 0) & (table.filter(like="f_") <= 1)).all().all()
    with pytest.raises(ValueError, match="unknown feature"):
        PuRLConfig(features="everything")


def test_layer_descriptors_statistics() -> None:
    model = nn.Sequential(nn.Linear(400, 300))
    with torch.no_grad():
        model[0].weight.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(0))
    env_layers = PuRLEnv(
        model,
        (torch.randn(4, 400), torch.zeros(4, dtype=torch.long)),
        PuRLConfig(target_accuracy=0.5),
        copy_model=False,  # layers of `model` itself, not of the environment's copy
    ).layers
    d = layer_descriptors(env_layers).iloc[0]
    assert d["weight_std"] == pytest.approx(0.1, rel=0.02)
    assert d["weight_kurtosis"] == pytest.approx(3.0, abs=0.1)  # Gaussian
    assert d["weight_mean_abs"] / d["weight_rms"] == pytest.approx(math.sqrt(2 / math.pi), abs=0.01)


# --- rewards ------------------------------------------------------------------------------


def test_purl_reward_hand_values() -> None:
    # A = 0.9, A* = 1.0 -> 0.1; S = 0.4, S* = 0.8 -> 0.5; -5 * 0.6 = -3
    assert purl_reward(0.9, 0.4, 1.0, 0.8) == pytest.approx(-3.0)
    assert purl_reward(0.95, 0.9, 0.9, 0.8) == 0.0  # both targets met: no penalty
    assert purl_reward(0.5, 0.8, 1.0, 0.8, beta=2.0) == pytest.approx(-1.0)
    assert purl_step_reward(0.9, 0.4, 1.0, 0.8, last_step=False, mode="episodic") == 0.0
    assert purl_step_reward(0.9, 0.4, 1.0, 0.8, last_step=True, mode="episodic") == pytest.approx(
        -3.0
    )
    assert purl_step_reward(0.9, 0.4, 1.0, 0.8, last_step=False) == pytest.approx(-3.0)
    with pytest.raises(ValueError):
        purl_reward(0.9, 0.4, 0.0, 0.8)
    with pytest.raises(ValueError):
        purl_step_reward(0.9, 0.4, 1.0, 0.8, last_step=True, mode="sometimes")  # type: ignore[arg-type]


def test_neon_reward_hand_values() -> None:
    # keep 0.7 -> L = 30
    assert neon_reward(0.7, 0.80, 0.90, max_drop_pp=5.0) == pytest.approx(-27000.0)  # lost 10pp
    assert neon_reward(0.7, 0.91, 0.90, max_drop_pp=5.0) == pytest.approx(27000.0)  # improved
    assert neon_reward(0.7, 0.87, 0.90, max_drop_pp=5.0) == pytest.approx(30.0)  # within C
    assert neon_reward(0.7, 0.90, 0.90, max_drop_pp=0.0) == pytest.approx(30.0)  # delta == 0
    assert neon_reward(1.0, 0.10, 0.90, max_drop_pp=1.0) == 0.0  # nothing removed
    with pytest.raises(ValueError):
        neon_reward(1.5, 0.9, 0.9, 1.0)


@pytest.mark.parametrize("mode", ["step", "episodic"])
def test_env_reward_matches_formula(mode: str) -> None:
    model = seq_net()
    env = PuRLEnv(model, data_for(model), PuRLConfig(target_sparsity=0.6, reward_mode=mode))
    assert env.dense_accuracy == 1.0 and env.target_accuracy == 1.0
    results = play(env, [3, 15, 22, 18, 7])
    for i, (_, r, term, _, info) in enumerate(results):
        a, s = info["accuracy"], info["sparsity"]
        by_hand = -5.0 * (max((1.0 - a) / 1.0, 0.0) + max((0.6 - s) / 0.6, 0.0))
        if mode == "episodic" and i < len(results) - 1:
            assert r == 0.0 and not term
        else:
            assert r == pytest.approx(by_hand, abs=1e-12)
    assert results[-1][2] is True
    assert results[-1][4]["return"] == pytest.approx(sum(r for _, r, *_ in results))


def test_target_accuracy_config() -> None:
    model = seq_net()
    env = PuRLEnv(model, data_for(model), PuRLConfig(target_accuracy=0.5, target_sparsity=0.5))
    _, r, *_, info = env.step(0)
    expected = -5.0 * (max(0.5 - info["accuracy"], 0.0) / 0.5 + (0.5 - info["sparsity"]) / 0.5)
    assert r == pytest.approx(expected)


# --- pruning bookkeeping ------------------------------------------------------------------


def test_sparsity_after_action_equals_masking(env: PuRLEnv) -> None:
    env.reset(seed=0)
    actions = [5, 12, 20, 9, 22]
    for li, a in enumerate(actions):
        dense = env.masker.dense_weight(env.layer_names[li]).clone()
        _, _, _, _, info = env.step(a)
        assert dict(zip(env.layer_names, info["layer_sparsity"], strict=True)) == (
            env.masker.layer_sparsity()
        )
        assert info["sparsity"] == env.masker.sparsity()
        expected = threshold_mask(dense, DEFAULT_ALPHAS[a])
        assert torch.equal(env.masker.masks[env.layer_names[li]], expected)
        assert info["action_value"] == DEFAULT_ALPHAS[a]
    assert env.sparsity > 0.5


def test_ratio_actions_and_passes() -> None:
    model = seq_net()
    cfg = PuRLConfig(action_space="ratio", ratios=(0.0, 0.5, 0.9), passes=2)
    env = PuRLEnv(model, data_for(model), cfg)
    assert env.episode_length == 10
    env.reset(seed=0)
    for _ in range(5):
        _, _, term, _, info = env.step(1)  # 50% of each layer
    assert not term
    for name, s in zip(env.layer_names, info["layer_sparsity"], strict=True):
        n = env.masker.by_name[name].numel
        assert s == round(0.5 * n) / n
    obs = env._observation(env._t)
    assert obs[env.feature_names.index("pass")] == 1.0
    for _ in range(5):
        _, _, term, _, info = env.step(1)  # half of what remains
    assert term
    for name, s in zip(env.layer_names, info["layer_sparsity"], strict=True):
        n = env.masker.by_name[name].numel
        left = n - round(0.5 * n)
        assert s == (n - (left - round(0.5 * left))) / n
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_alpha_later_visit_prunes_relative_to_remaining() -> None:
    model = seq_net()
    env = PuRLEnv(model, data_for(model), PuRLConfig(passes=2))
    env.reset(seed=0)
    for _ in range(5):
        env.step(10)  # alpha 1.0 of the dense std
    first = env.layer_sparsity()
    w = env.layers[0].weight.detach().clone()
    env.step(10)  # second visit of layer 0: alpha 1.0 of the remaining weights' std
    remaining = w[w != 0]
    expected = ((w == 0) | (w.abs() < 1.0 * remaining.std())).float().mean()
    assert env.layer_sparsity()[env.layer_names[0]] == pytest.approx(float(expected))
    assert env.layer_sparsity()[env.layer_names[0]] > first[env.layer_names[0]]


def test_reset_restores_dense_accuracy_and_weights(env: PuRLEnv) -> None:
    dense = {k: v.clone() for k, v in env.model.state_dict().items()}
    _, info0 = env.reset(seed=0)
    assert info0["accuracy"] == env.dense_accuracy and info0["sparsity"] == 0.0
    play(env, [22, 22, 22, 22, 22])
    assert env.full_accuracy() < env.dense_accuracy
    _, info = env.reset()
    assert all(torch.equal(v, dense[k]) for k, v in env.model.state_dict().items())
    assert env.full_accuracy() == env.dense_accuracy
    assert info["sparsity"] == 0.0 and env.masker.masks == {}


def test_finetuning_variant_and_full_restore() -> None:
    model = seq_net()
    x, y = data_for(model)
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    env = PuRLEnv(model, (x, y), PuRLConfig(finetune_steps=3), train_data=(x, y))
    assert not env.prefix_cache_enabled
    env.reset(seed=0)
    for a in [12, 12, 12, 12, 12]:
        _, _, _, _, info = env.step(a)
        assert info["accuracy"] == env.full_accuracy()
        assert dict(zip(env.layer_names, info["layer_sparsity"], strict=True)) == (
            env.masker.layer_sparsity()
        )
    assert not torch.equal(env.model[1].weight, dense["1.weight"])  # fine-tuned between steps
    env.reset()
    assert all(torch.equal(v, dense[k]) for k, v in env.model.state_dict().items())
    with pytest.raises(ValueError, match="train_data"):
        PuRLEnv(model, (x, y), PuRLConfig(finetune_steps=1))


# --- the prefix cache ---------------------------------------------------------------------


def _assert_cache_exact(env: PuRLEnv, actions: list[int], accuracy: bool = True) -> None:
    """After every step the cached logits equal a full forward pass bit for bit."""
    assert env.prefix_cache_enabled
    env.reset(seed=0)
    for a in actions:
        _, _, _, _, info = env.step(a)
        if accuracy:
            assert info["accuracy"] == env.full_accuracy()
        with torch.inference_mode():
            cached = torch.cat(env.cache.forward(keep_stage=None))
            full = env.model(env.x_val)
        assert torch.equal(cached, full)


def test_prefix_cache_is_exact_sequential(env: PuRLEnv) -> None:
    assert len(env.cache.stages) == 5
    rng = np.random.default_rng(0)
    for _ in range(3):  # several episodes: reset must invalidate the cache
        _assert_cache_exact(env, [int(a) for a in rng.integers(8, 23, size=5)])
    model = seq_net()
    two = PuRLEnv(model, data_for(model), PuRLConfig(passes=2))
    _assert_cache_exact(two, [int(a) for a in rng.integers(5, 23, size=10)])


def test_prefix_cache_saves_work(env: PuRLEnv) -> None:
    env.reset(seed=0)
    env.cache.stages_run = 0
    for _ in range(5):
        env.step(10)
    # full forward at every step would run 5 * 5 stages; reuse runs 5 + 4 + 3 + 2 + 1
    assert env.cache.stages_run == 15


def test_prefix_cache_kept_when_an_action_prunes_nothing() -> None:
    model = seq_net()
    env = PuRLEnv(model, data_for(model), PuRLConfig(passes=2))
    env.reset(seed=0)
    for _ in range(5):
        env.step(10)
    saved = env.cache.saved_stage
    assert saved > 0
    env.cache.stages_run = 0
    _, _, _, _, info = env.step(0)  # layer 0 again, alpha 0: no weight changes
    assert env.cache.stages_run == len(env.cache.stages) - saved  # the prefix was reused
    assert info["accuracy"] == env.full_accuracy()
    env.cache.stages_run = 0
    _, _, _, _, info = env.step(22)  # layer 1 loses weights: the saved activations depend on it
    assert env.cache.stages_run == len(env.cache.stages)
    assert info["accuracy"] == env.full_accuracy()


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "small_cnn"])
def test_prefix_cache_is_exact_torchvision(name: str) -> None:
    from pruning_core.models.cnn import build_model

    torch.manual_seed(0)
    model = build_model(name, num_classes=10, small_input=True).eval()
    x, y = data_for(model, n=2, size=8)
    env = PuRLEnv(model, (x, y), PuRLConfig(target_accuracy=0.5))
    assert env.cache is not None
    stages = {"resnet50": 18, "mobilenet_v2": 20, "small_cnn": 5}[name]
    assert len(env.cache.stages) == stages
    rng = np.random.default_rng(1)
    actions = [int(a) for a in rng.integers(0, 23, size=env.episode_length)]
    _assert_cache_exact(env, actions, accuracy=False)  # logits compared: stricter and cheaper


def test_prefix_cache_falls_back_for_functional_forward(tiny_net: nn.Module) -> None:
    x, y = data_for(tiny_net)
    assert sequential_modules(tiny_net) is not None  # a candidate exists, but it is wrong
    with pytest.warns(UserWarning, match="prefix cache disabled"):
        env = PuRLEnv(tiny_net, (x, y), PuRLConfig())
    assert env.cache is None and not env.prefix_cache_enabled
    env.reset(seed=0)
    for a in [10, 20, 15]:
        _, _, _, _, info = env.step(a)
        assert info["accuracy"] == env.full_accuracy()


def test_prefix_cache_rejects_inplace_stage() -> None:
    class EatsInput(nn.Module):
        """Returns its input unchanged but zeroes the tensor it was given."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x.clone()
            x.zero_()
            return y

    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 3)).eval()
    layers = PuRLEnv(
        model,
        (torch.randn(5, 4), torch.zeros(5, dtype=torch.long)),
        PuRLConfig(target_accuracy=0.5),
        copy_model=False,  # layers of `model` itself, not of the environment's copy
    ).layers
    good = [model[0], nn.Sequential(nn.Identity(), model[1])]
    assert PrefixCache.build(model, layers, [torch.randn(5, 4)], modules=good) is not None
    bad = [model[0], nn.Sequential(EatsInput(), model[1])]  # same output, but eats its input
    with pytest.warns(UserWarning, match="prefix cache disabled"):
        assert PrefixCache.build(model, layers, [torch.randn(5, 4)], modules=bad) is None


# --- errors -------------------------------------------------------------------------------


def test_clear_errors(env: PuRLEnv) -> None:
    env.reset(seed=0)
    for bad in (23, -1, 2.5, "a"):
        with pytest.raises(ValueError, match=r"\[0, 22\]"):
            env.step(bad)
    no_layers = nn.Sequential(nn.ReLU(), nn.Flatten())
    with pytest.raises(NoPrunableLayerError):
        PuRLEnv(no_layers, (torch.randn(4, 3), torch.zeros(4, dtype=torch.long)), PuRLConfig())
    model = seq_net()
    with pytest.raises(ValueError, match="empty"):
        PuRLEnv(model, (torch.empty(0, 3, 8, 8), torch.empty(0, dtype=torch.long)), PuRLConfig())
    with pytest.raises(ValueError, match="action_space"):
        PuRLConfig(action_space="channels")
    with pytest.raises(ValueError, match="ratios"):
        PuRLConfig(action_space="ratio", ratios=(0.0, 1.0))


def test_sizes_from_profile() -> None:
    smoke, cpu = mdp_design_sizes("smoke"), mdp_design_sizes("cpu")
    assert len(cpu.seeds) >= 3 and cpu.episodes > smoke.episodes
    with pytest.raises(ValueError):
        mdp_design_sizes("laptop")
