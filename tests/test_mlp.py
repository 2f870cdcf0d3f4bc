"""NEON's networks: random generator, structural removal vs masking, training, caching."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from pruning_core.config import torch_threads
from pruning_core.data.tabular import load_tabular
from pruning_core.methods.neon import base_network
from pruning_core.models.mlp import (
    ArchitectureSpace,
    MLPSpec,
    NoHiddenLayerError,
    as_mlp,
    build_mlp,
    random_mlp_spec,
)
from pruning_core.pruning.neurons import (
    count_params,
    effective_params,
    mask_neurons,
    materialize,
    n_keep_for,
    nonzero_params,
    remove_neurons,
    select_neurons,
)
from pruning_core.train.loop import TrainConfig, evaluate, fit


def _spec(batchnorm: bool, hidden: tuple[int, ...] = (12, 9, 7)) -> MLPSpec:
    n = len(hidden)
    acts = ("relu", "tanh", "sigmoid", "relu", "relu", "relu")[:n]
    return MLPSpec(5, 3, hidden, acts, (batchnorm,) * n, (0.3,) * n)


def _trained_bn_stats(model: nn.Module) -> None:
    """Give batch-norm layers non-trivial running statistics and affine parameters."""
    model.train()
    with torch.no_grad():
        for _ in range(10):
            model(torch.randn(32, 5) * 2 + 1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    model.eval()


@pytest.mark.parametrize("batchnorm", [False, True])
def test_structural_removal_matches_masked_network(batchnorm: bool) -> None:
    torch.manual_seed(0)
    model = build_mlp(_spec(batchnorm), seed=1)
    _trained_bn_stats(model)
    x = torch.randn(64, 5)
    structural, masked = copy.deepcopy(model), copy.deepcopy(model)
    for layer, keep in [(0, 0.6), (1, 0.7), (2, 0.8), (0, 0.6), (1, 0.9)]:  # two passes
        idx_s = select_neurons(structural, layer, keep)
        idx_m = select_neurons(masked, layer, keep)
        remove_neurons(structural, layer, idx_s)
        mask_neurons(masked, layer, idx_m)
    structural.eval()
    masked.eval()
    with torch.no_grad():
        out_s, out_m = structural(x), masked(x)
    assert torch.allclose(out_s, out_m, atol=1e-5)
    # the shapes really shrank and the counting agrees
    assert [b.width for b in structural.blocks] == [
        int(masked.blocks[i].neuron_mask.sum()) for i in range(3)
    ]
    assert count_params(structural) < count_params(model)
    assert effective_params(masked) == count_params(structural)
    assert torch.allclose(materialize(masked)(x), out_s, atol=1e-5)
    # the original network's outputs differ: the comparison is not vacuous
    assert not torch.allclose(model(x), out_s, atol=1e-3)


def test_removal_keeps_largest_incoming_l1_and_their_weights() -> None:
    model = build_mlp(_spec(False, (6, 4)), seed=0)
    with torch.no_grad():
        model.blocks[0].linear.weight.copy_(torch.arange(6.0)[:, None].repeat(1, 5) * 0.1)
    keep = select_neurons(model, 0, 0.5)
    assert keep.tolist() == [3, 4, 5]
    w_next = model.blocks[1].linear.weight[:, keep].clone()
    remove_neurons(model, 0, keep)
    assert model.blocks[0].linear.weight.shape == (3, 5)
    assert torch.equal(model.blocks[1].linear.weight, w_next)


def test_keep_counts_and_errors() -> None:
    assert n_keep_for(10, 0.6) == 6 and n_keep_for(5, 0.9) == 5 and n_keep_for(1, 0.6) == 1
    assert n_keep_for(3, 0.7) == 2
    model = build_mlp(_spec(False), seed=0)
    with pytest.raises(ValueError, match="keep_fraction"):
        n_keep_for(10, 0.0)
    with pytest.raises(IndexError):
        select_neurons(model, 3, 0.6)
    with pytest.raises(ValueError, match="at least one"):
        remove_neurons(model, 0, [])
    with pytest.raises(ValueError, match="distinct"):
        remove_neurons(model, 0, [0, 0, 1])


def test_random_generator_respects_ranges_and_seed() -> None:
    space = ArchitectureSpace(min_layers=1, max_layers=6, widths=(10, 20, 30))
    specs = [random_mlp_spec(7, 4, s, space) for s in range(600)]
    assert random_mlp_spec(7, 4, 123, space) == random_mlp_spec(7, 4, 123, space)
    assert random_mlp_spec(7, 4, 1, space) != random_mlp_spec(7, 4, 2, space)
    depths = Counter(s.n_hidden for s in specs)
    assert set(depths) == set(range(1, 7))
    assert all(w in space.widths for s in specs for w in s.hidden)
    assert all(s.n_features == 7 and s.n_classes == 4 for s in specs)
    acts = Counter(s.activations[0] for s in specs)
    assert set(acts) <= {"relu", "tanh", "sigmoid"}
    assert 0.84 < acts["relu"] / len(specs) < 0.95
    bn = np.mean([s.batchnorm[0] for s in specs])
    drop = np.mean([s.dropout[0] > 0 for s in specs])
    assert 0.27 < bn < 0.40 and 0.27 < drop < 0.40
    small = ArchitectureSpace(max_layers=2, widths=(16,))
    assert all(
        s.hidden in ((16,), (16, 16)) for s in (random_mlp_spec(3, 2, i, small) for i in range(50))
    )
    with pytest.raises(ValueError):
        ArchitectureSpace(min_layers=3, max_layers=2)


def test_as_mlp_converts_sequential_and_refuses_no_hidden_layer() -> None:
    torch.manual_seed(0)
    seq = nn.Sequential(
        nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 3)
    ).eval()
    mlp = as_mlp(seq).eval()
    x = torch.randn(10, 5)
    assert torch.allclose(mlp(x), seq(x), atol=1e-6)
    assert mlp.n_hidden == 1 and mlp.blocks[0].bn is not None
    with pytest.raises(NoHiddenLayerError, match="no hidden"):
        as_mlp(nn.Sequential(nn.Linear(5, 3)))
    with pytest.raises(TypeError):
        as_mlp(nn.Conv2d(1, 1, 3))


def test_mlp_training_learns_and_never_ends_worse_than_it_started() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 1).long()
    model = build_mlp(_spec(True, (16,)), seed=0)
    with torch_threads(1):
        before = evaluate(model, (x[200:], y[200:]), batch_size=None)["top1"]
        out = fit(
            model, (x[:200], y[:200]),
            TrainConfig.mlp(lr=1e-2, epochs=60, patience=10, monitor="val_top1"),
            val_data=(x[200:], y[200:]),
        )  # fmt: skip
    assert out.val_top1 == pytest.approx(evaluate(model, (x[200:], y[200:]), batch_size=None)["top1"])
    assert out.val_top1 >= before and out.val_top1 > 0.8
    # fine-tuning only some parameters leaves the others untouched
    frozen = model.blocks[0].linear.weight.clone()
    fit(model, (x[:200], y[:200]), TrainConfig.mlp(max_steps=5, steps_per_check=5),
        val_data=(x[200:], y[200:]), params=model.head.parameters())  # fmt: skip
    assert torch.equal(model.blocks[0].linear.weight, frozen)
    assert all(p.requires_grad for p in model.parameters())


def test_nonzero_params_counts_masks() -> None:
    model = build_mlp(_spec(False, (4,)), seed=0)
    with torch.no_grad():
        model.blocks[0].linear.weight[0].zero_()
    assert nonzero_params(model) == count_params(model) - 5


def test_base_network_is_cached_and_keyed_by_config(tmp_path) -> None:
    data = load_tabular("iris").splits({"train": 60})
    space = ArchitectureSpace(max_layers=2, widths=(8, 16))
    cfg = TrainConfig.mlp(epochs=3, patience=2)
    a = base_network(data, 0, space, cfg, cache_dir=tmp_path)
    b = base_network(data, 0, space, cfg, cache_dir=tmp_path)
    assert a.key == b.key and len(list(tmp_path.glob("*.pt"))) == 1
    for k, v in a.state_dict.items():
        assert torch.equal(v, b.state_dict[k])
    c = base_network(data, 0, space, replace(cfg, epochs=4), cache_dir=tmp_path)
    assert c.key != a.key and len(list(tmp_path.glob("*.pt"))) == 2


def test_corrupt_base_network_is_rebuilt(tmp_path) -> None:
    data = load_tabular("iris").splits({"train": 60})
    space = ArchitectureSpace(max_layers=2, widths=(8, 16))
    cfg = TrainConfig.mlp(epochs=3, patience=2)
    a = base_network(data, 0, space, cfg, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.pt")
    path.write_bytes(path.read_bytes()[:100])
    b = base_network(data, 0, space, cfg, cache_dir=tmp_path)
    assert b.key == a.key and path.with_name(path.name + ".corrupt").is_file()
    for k, v in a.state_dict.items():
        assert torch.equal(v, b.state_dict[k])
    assert a.model()(data.tensors("reward")[0]).shape == (data.n("reward"), 3)
