"""No public call changes global state it does not restore, and the same seed gives the same result.

Global state: Python's, NumPy's and torch's RNGs, torch's thread count and default dtype.
Randomness flows from arguments (seeds, generators), so a call made twice gives the same answer
however much random drawing happened around it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from pruning_core.config import seeded
from pruning_core.data.images import load_digits_splits
from pruning_core.data.tabular import load_tabular
from pruning_core.methods.baselines import gmp_rounds, uniform_rounds
from pruning_core.methods.neon import prune_mlp
from pruning_core.methods.purl import purl_prune
from pruning_core.models.cnn import build_small_cnn
from pruning_core.models.mlp import MLPSpec, as_mlp, build_mlp
from pruning_core.rl.agents.a2c import A2CConfig, ActorCriticAgent
from pruning_core.rl.agents.dqn import DQNConfig
from pruning_core.train.loop import TrainConfig, fit


def global_state() -> tuple:
    return (
        random.getstate(),
        np.random.get_state()[1].tobytes(),
        torch.get_rng_state().clone(),
        torch.get_num_threads(),
        torch.get_default_dtype(),
    )


def assert_leaves_global_state(call: Callable[[], Any]) -> Any:
    """Run ``call`` twice, with different global RNG states around it: no leak either way."""
    out = []
    for noise in (1, 2):
        torch.manual_seed(noise)
        np.random.seed(noise)
        random.seed(noise)
        before = global_state()
        out.append(call())
        after = global_state()
        assert before[0] == after[0], "Python's random state changed"
        assert before[1] == after[1], "NumPy's global RNG state changed"
        assert torch.equal(before[2], after[2]), "torch's global RNG state changed"
        assert before[3:] == after[3:], "torch threads or default dtype changed"
    return out


def dropout_mlp(n_features: int, n_classes: int) -> nn.Module:
    spec = MLPSpec(n_features, n_classes, (32, 16), ("relu", "relu"), (False, False), (0.3, 0.3))
    return build_mlp(spec, seed=0)


def params_of(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_seeded_restores_and_reproduces() -> None:
    def draw() -> tuple:
        with seeded(5):
            return random.random(), float(np.random.rand()), float(torch.rand(1))

    a, b = assert_leaves_global_state(draw)
    assert a == b


def test_fit_with_dropout() -> None:
    data = load_tabular("iris").splits()

    def call() -> list[torch.Tensor]:
        model = dropout_mlp(data.n_features, data.num_classes)
        fit(model, data.tensors("train"), TrainConfig.mlp(epochs=3, seed=4),
            val_data=data.tensors("stop"))  # fmt: skip
        return params_of(model)

    a, b = assert_leaves_global_state(call)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("baseline", [gmp_rounds, uniform_rounds])
def test_magnitude_and_uniform_baselines(baseline: Callable[..., Any]) -> None:
    data = load_tabular("wine").splits()
    model = dropout_mlp(data.n_features, data.num_classes)
    fit(model, data.tensors("train"), TrainConfig.mlp(epochs=20), val_data=data.tensors("stop"))
    ft = TrainConfig.mlp(max_steps=20, steps_per_check=10, patience=1)
    a, b = assert_leaves_global_state(lambda: baseline(model, data, rounds=2, ft=ft))
    assert a.drop(columns=["seconds"], errors="ignore").equals(
        b.drop(columns=["seconds"], errors="ignore")
    )


def test_agent_construction_and_prune_mlp() -> None:
    a, b = assert_leaves_global_state(lambda: params_of(ActorCriticAgent(10, 5, A2CConfig()).net))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    data = load_tabular("breast_cancer").splits()
    model = dropout_mlp(data.n_features, data.num_classes)
    fit(model, data.tensors("train"), TrainConfig.mlp(epochs=10), val_data=data.tensors("stop"))
    x, y = data.tensors("train")
    xv, yv = data.tensors("stop")

    def call() -> tuple:
        small, report = prune_mlp(model, x, y, xv, yv, C=1.0, passes=1)
        return report["actions"], params_of(small)

    (acts_a, pa), (acts_b, pb) = assert_leaves_global_state(call)
    assert acts_a == acts_b and all(torch.equal(u, v) for u, v in zip(pa, pb, strict=True))


def users_sequential(n_features: int, n_classes: int) -> nn.Sequential:
    """A network as a user writes it (built here under a fixed seed, outside the checks)."""
    with seeded(0):
        return nn.Sequential(
            nn.Linear(n_features, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, n_classes),
        )  # fmt: skip


def test_converting_and_pruning_a_users_sequential() -> None:
    """``as_mlp`` once built default-initialised ``nn.Linear`` layers (random draws) before
    copying the caller's weights in: ``prune_mlp`` on a Sequential moved the caller's RNG."""
    data = load_tabular("iris").splits()
    model = users_sequential(data.n_features, data.num_classes)
    a, b = assert_leaves_global_state(lambda: params_of(as_mlp(model)))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    fit(model, data.tensors("train"), TrainConfig.mlp(epochs=60, patience=None),
        val_data=data.tensors("stop"))  # fmt: skip
    x, y = data.tensors("train")
    xv, yv = data.tensors("reward")

    def call() -> tuple:
        small, report = prune_mlp(model, x, y, xv, yv, C=5.0, passes=1)
        return report["actions"], params_of(small)

    (acts_a, pa), (acts_b, pb) = assert_leaves_global_state(call)
    assert acts_a == acts_b and all(torch.equal(u, v) for u, v in zip(pa, pb, strict=True))


def test_purl_prune(tmp_path) -> None:
    data = load_digits_splits(seed=0)
    with seeded(0):
        cnn = build_small_cnn(num_classes=10, in_channels=3, width=8)
    fit(cnn, data.tensors("train"), TrainConfig(epochs=2, lr=2e-3, optimizer="adam"))
    reward = data.tensors("reward")
    runs = iter(["a", "b"])

    def call() -> dict[str, torch.Tensor]:
        masks, _ = purl_prune(cnn, reward, episodes=4, dqn_config=DQNConfig(learning_starts=5),
                              work_dir=tmp_path / next(runs))  # fmt: skip
        return masks

    a, b = assert_leaves_global_state(call)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
