"""The masking API: exact sparsity, held masks, torch.nn.utils.prune interop, reports, errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from pruning_core.pruning.criteria import (
    global_magnitude_masks,
    neuron_mask,
    random_masks,
    ratio_mask,
    threshold_mask,
    top_l1_neurons,
)
from pruning_core.pruning.layers import (
    NoPrunableLayerError,
    effective_parameters,
    merge_torch_prune,
    prunable_layers,
    torch_pruned,
    weight_parameter,
)
from pruning_core.pruning.masks import Masker
from pruning_core.pruning.report import sparsity_report


def test_prunable_layers_default_include_exclude(tiny_net: nn.Module) -> None:
    names = [layer.name for layer in prunable_layers(tiny_net)]
    assert names == ["conv1", "conv2", "fc"]
    assert [layer.name for layer in prunable_layers(tiny_net, exclude=["conv1", "fc"])] == [
        "conv2"
    ]
    assert [layer.name for layer in prunable_layers(tiny_net, include=[nn.Linear])] == [
        "fc"
    ]
    assert [layer.name for layer in prunable_layers(tiny_net, types=(nn.BatchNorm2d,))] == [
        "bn1"
    ]


def test_forward_order_differs_from_registration() -> None:
    class Reversed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.late = nn.Linear(4, 2)
            self.early = nn.Linear(3, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.late(self.early(x))

    m = Reversed()
    assert [layer.name for layer in prunable_layers(m)] == ["late", "early"]
    ordered = prunable_layers(m, example_input=torch.zeros(1, 3))
    assert [layer.name for layer in ordered] == ["early", "late"]


def test_no_prunable_layer_error_says_what_to_do() -> None:
    with pytest.raises(NoPrunableLayerError, match="types="):
        prunable_layers(nn.Sequential(nn.ReLU(), nn.Dropout()))
    with pytest.raises(NoPrunableLayerError):
        Masker(nn.Sequential(nn.Linear(2, 2)), exclude=["*"])


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.8, 0.9, 0.99])
def test_ratio_mask_exact_sparsity(sparsity: float) -> None:
    w = torch.randn(37, 53)
    mask = ratio_mask(w, sparsity)
    assert int((~mask).sum()) == round(sparsity * w.numel())
    # every pruned weight is no larger than every kept one
    if sparsity > 0:
        assert w.abs()[~mask].max() <= w.abs()[mask].min()


def test_ratio_mask_exact_with_ties() -> None:
    w = torch.tensor([0.5] * 10 + [1.0] * 10)
    mask = ratio_mask(w, 0.25)  # 5 of the 10 tied 0.5s
    assert int((~mask).sum()) == 5
    assert mask[10:].all()


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_sparsity_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ratio_mask(torch.randn(10), bad)


def test_threshold_mask_alpha() -> None:
    w = torch.randn(1000)
    std = w.std()
    m = threshold_mask(w, 1.0)
    assert torch.equal(m, w.abs() >= std)
    assert threshold_mask(w, 0.0).all()
    # larger alpha prunes more
    assert (~threshold_mask(w, 2.0)).sum() > (~m).sum()
    with pytest.raises(ValueError, match="alpha"):
        threshold_mask(w, -0.1)


def test_masker_alpha_uses_dense_std_and_reports_sparsity(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    dense = tiny_net.conv2.weight.detach().clone()
    mk.prune_alpha("conv2", 1.0)
    mk.prune_alpha("conv2", 0.5)  # replaces, measured on the dense weights, not compounded
    expected = dense.abs() >= 0.5 * dense.std()
    assert torch.equal(tiny_net.conv2.weight != 0, expected)
    assert mk.layer_sparsity()["conv2"] == pytest.approx(1 - expected.float().mean().item())


def test_global_matches_torch_global_unstructured(tiny_net: nn.Module) -> None:
    ref = copy.deepcopy(tiny_net)
    layers = prunable_layers(ref)
    prune.global_unstructured(
        [(layer.module, "weight") for layer in layers],
        pruning_method=prune.L1Unstructured,
        amount=0.7,
    )
    mk = Masker(tiny_net)
    ours = mk.global_magnitude(0.7)
    for layer in layers:
        assert torch.equal(ours[layer.name], layer.module.weight_mask.bool()), layer.name
    assert mk.sparsity() == pytest.approx(0.7, abs=1 / sum(lay.numel for lay in mk.layers))


def test_global_min_keep_prevents_collapse() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(100, 100), nn.Linear(100, 10))
    with torch.no_grad():
        net[1].weight.mul_(1e-3)  # tiny weights: plain GMP would remove the whole layer
    plain = global_magnitude_masks(prunable_layers(net), 0.9)
    assert int(plain["1"].sum()) == 0
    kept = global_magnitude_masks(prunable_layers(net), 0.9, min_keep=0.05)
    assert int(kept["1"].sum()) == 50
    total_pruned = sum(int((~m).sum()) for m in kept.values())
    assert total_pruned == round(0.9 * (100 * 100 + 100 * 10))


def test_uniform_every_layer_same_ratio(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    mk.uniform(0.6)
    for name, s in mk.layer_sparsity().items():
        n = mk.by_name[name].numel
        assert s == pytest.approx(round(0.6 * n) / n), name


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
def test_zeros_stay_zero_through_optimiser_steps(tiny_net: nn.Module, opt_name: str) -> None:
    mk = Masker(tiny_net)
    mk.global_magnitude(0.8)
    zero_before = {n: (mk.by_name[n].weight == 0).clone() for n in mk.by_name}
    if opt_name == "sgd":
        opt = torch.optim.SGD(tiny_net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    else:
        opt = torch.optim.AdamW(tiny_net.parameters(), lr=0.01, weight_decay=1e-2)
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    with mk.hold(opt):
        for _ in range(20):
            opt.zero_grad()
            nn.functional.cross_entropy(tiny_net(x), y).backward()
            opt.step()
    for n, z in zero_before.items():
        w = mk.by_name[n].weight
        assert torch.all(w[z] == 0), n
        assert torch.any(w[~z] != 0), n
    assert mk.sparsity() == pytest.approx(0.8, abs=1e-3)
    # without the hold, the same optimiser revives pruned weights: the test can fail
    opt.zero_grad()
    nn.functional.cross_entropy(tiny_net(x), y).backward()
    opt.step()
    assert mk.sparsity() < 0.8


def test_restore_in_place_without_copying_model(tiny_net: nn.Module) -> None:
    x = torch.randn(4, 3, 8, 8)
    tiny_net.eval()
    with torch.no_grad():
        dense_out = tiny_net(x).clone()
    mk = Masker(tiny_net)
    param_ids = [id(p) for p in tiny_net.parameters()]
    mk.global_magnitude(0.9)
    with torch.no_grad():
        tiny_net.bn1.running_mean.add_(1.0)
        assert not torch.allclose(tiny_net(x), dense_out)
    mk.restore()
    assert [id(p) for p in tiny_net.parameters()] == param_ids
    with torch.no_grad():
        assert torch.equal(tiny_net(x), dense_out)
    assert mk.masks == {}


def test_torch_prune_export_and_remove(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    masks = mk.global_magnitude(0.5)
    pruned_values = {n: mk.by_name[n].module.weight.detach().clone() for n in masks}
    mk.export_torch_prune()
    assert prune.is_pruned(tiny_net)
    for n, m in masks.items():
        module = mk.by_name[n].module
        assert torch.equal(module.weight_mask.bool(), m)
        assert torch.equal(module.weight, pruned_values[n])
        prune.remove(module, "weight")
        assert not hasattr(module, "weight_orig")
        assert torch.equal(module.weight, pruned_values[n])
    assert not prune.is_pruned(tiny_net)


def test_torch_prune_import(tiny_net: nn.Module) -> None:
    layers = prunable_layers(tiny_net)
    prune.l1_unstructured(tiny_net.conv2, "weight", amount=0.3)
    prune.random_unstructured(tiny_net.fc, "weight", amount=0.6)
    expected = {
        "conv2": tiny_net.conv2.weight_mask.bool().clone(),
        "fc": tiny_net.fc.weight_mask.bool().clone(),
    }
    mk = Masker(tiny_net, layers=layers)
    got = mk.import_torch_prune()
    assert set(got) == {"conv2", "fc"}
    for n in got:
        assert torch.equal(got[n], expected[n])
    assert not prune.is_pruned(tiny_net)
    assert mk.layer_sparsity()["fc"] == pytest.approx(0.6, abs=1e-3)


def test_same_seed_same_masks() -> None:
    def run(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
        g = torch.Generator().manual_seed(seed)
        out = Masker(net).global_magnitude(0.75)
        out.update(
            {
                f"r{k}": v
                for k, v in random_masks(prunable_layers(net), 0.5, g).items()
            }
        )
        return out

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_sparsity_report_counts_and_flops(tiny_net: nn.Module) -> None:
    x = torch.randn(2, 3, 8, 8)
    dense = sparsity_report(tiny_net, x)
    # conv1: 8x8 positions * 8*3*3*3; conv2: 4x4 * 16*8*3*3; fc: 256*10
    assert dense.flops_dense == 64 * 216 + 16 * 1152 + 2560
    assert dense.flops_nonzero == dense.flops_dense
    assert dense.params_total == sum(p.numel() for p in tiny_net.parameters())
    assert dense.sparsity_prunable == 0.0
    mk = Masker(tiny_net)
    mk.uniform(0.5)
    rep = sparsity_report(tiny_net, x)
    assert rep.sparsity_prunable == pytest.approx(0.5, abs=1e-3)
    assert rep.sparsity_total < rep.sparsity_prunable  # biases and batch-norm stay dense
    assert rep.flops_nonzero == pytest.approx(dense.flops_dense / 2, rel=0.01)
    assert list(rep.per_layer["layer"]) == ["conv1", "conv2", "fc"]
    # the same numbers when the masks live in torch.nn.utils.prune's format
    mk.export_torch_prune()
    rep2 = sparsity_report(tiny_net, x)
    assert rep2.as_dict() == rep.as_dict()


def test_mask_shape_and_index_errors(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    with pytest.raises(ValueError, match="shape"):
        mk.set_mask("fc", torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(IndexError, match="3 prunable layers"):
        mk.prune_alpha(5, 1.0)
    with pytest.raises(KeyError, match="not a prunable layer"):
        mk.prune_alpha("bn1", 1.0)


def _fine_tune_like(layer: nn.Module, seed: int = 1) -> None:
    """Move a layer's nonzero weights as training with held masks would (zeros stay zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = layer.weight
        w.add_(0.05 * torch.randn(w.shape, generator=g) * (w != 0))


def test_prune_alpha_from_current_weights_keeps_them_and_composes(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    dense = tiny_net.conv2.weight.detach().clone()
    first = mk.prune_alpha("conv2", 0.5).clone()
    _fine_tune_like(tiny_net.conv2)
    now = tiny_net.conv2.weight.detach().clone()
    # relative to the dense layer (its std), on the current weights, composing with the mask
    got = mk.prune_alpha("conv2", 1.0, relative_to="dense", from_dense=False)
    expected = first & (now.abs() >= 1.0 * dense.float().std())
    assert torch.equal(got, expected)
    assert torch.equal(mk.masks["conv2"], expected)
    assert torch.equal(tiny_net.conv2.weight, now * expected)  # fine-tuned values kept
    assert not torch.equal(expected, threshold_mask(dense, 1.0))  # not the dense answer


def test_prune_alpha_relative_to_remaining(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    dense = tiny_net.fc.weight.detach().clone()
    mk.prune_alpha("fc", 0.5)
    w = tiny_net.fc.weight.detach().clone()
    remaining = w[w != 0]
    got = mk.prune_alpha("fc", 1.0, relative_to="remaining", from_dense=False)
    expected = (w != 0) & (w.abs() >= 1.0 * remaining.float().std())
    assert torch.equal(got, expected)
    assert int((tiny_net.fc.weight == 0).sum()) == int((~expected).sum())
    assert int((~expected).sum()) > int((w == 0).sum())  # it pruned further
    # the std of what remains is larger than the dense one: more goes than at 1.0 dense std
    assert int((~expected).sum()) > int((~threshold_mask(dense, 1.0)).sum())


def test_prune_alpha_remaining_leaves_a_nearly_empty_layer(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    keep_one = torch.zeros_like(tiny_net.fc.weight, dtype=torch.bool)
    keep_one[0, 0] = True
    mk.set_mask("fc", keep_one)
    before = tiny_net.fc.weight.detach().clone()
    got = mk.prune_alpha("fc", 2.0, relative_to="remaining", from_dense=False)
    assert torch.equal(got, keep_one)
    assert torch.equal(tiny_net.fc.weight, before)


def test_dense_std_cache_follows_snapshot(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    mk.prune_alpha("fc", 1.0)  # caches the std of the first snapshot
    mk.restore()
    with torch.no_grad():
        tiny_net.fc.weight.mul_(torch.linspace(0.1, 3.0, tiny_net.fc.weight.numel()).view_as(
            tiny_net.fc.weight))
    mk.snapshot()
    new_dense = tiny_net.fc.weight.detach().clone()
    assert torch.equal(mk.prune_alpha("fc", 1.0), threshold_mask(new_dense, 1.0))


def test_relative_to_errors(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    with pytest.raises(ValueError, match="from_dense=False"):
        mk.prune_alpha("fc", 1.0, relative_to="remaining")
    with pytest.raises(ValueError, match="from_dense=False"):
        mk.prune_ratio("fc", 0.5, relative_to="remaining")
    with pytest.raises(ValueError, match="relative_to"):
        mk.prune_ratio("fc", 0.5, relative_to="layer")  # type: ignore[arg-type]


def test_prune_ratio_relative_to_remaining_compounds_exactly(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    n = tiny_net.conv2.weight.numel()
    first = mk.prune_ratio("conv2", 0.5, from_dense=False).clone()
    assert int((~first).sum()) == round(0.5 * n)
    _fine_tune_like(tiny_net.conv2)
    w = tiny_net.conv2.weight.detach().clone()
    got = mk.prune_ratio("conv2", 0.5, relative_to="remaining", from_dense=False)
    left = n - round(0.5 * n)
    assert int(got.sum()) == left - round(0.5 * left)  # sparsity 1 - (1 - 0.5)(1 - 0.5)
    assert not (got & ~first).any()  # pruned weights stay pruned
    kept, dropped = w[got].abs(), w[first & ~got].abs()
    assert kept.min() >= dropped.max()  # the smallest remaining ones went
    # relative to the dense layer instead: 50% of all weights, already reached
    again = mk.prune_ratio("conv2", 0.5, relative_to="dense", from_dense=False)
    assert torch.equal(again, got)


def test_global_magnitude_from_current_weights_composes(tiny_net: nn.Module) -> None:
    mk = Masker(tiny_net)
    first = {n: m.clone() for n, m in mk.global_magnitude(0.5).items()}
    for layer in mk.layers:
        _fine_tune_like(layer.module)
    expected = global_magnitude_masks(mk.layers, 0.8, min_keep=0.01)
    now = {layer.name: layer.weight.detach().clone() for layer in mk.layers}
    got = mk.global_magnitude(0.8, min_keep=0.01, from_dense=False)
    for name, m in got.items():
        assert torch.equal(m, expected[name] & first[name])
        assert torch.equal(mk.by_name[name].weight, now[name] * m)
    total = sum(layer.numel for layer in mk.layers)
    assert mk.sparsity() == pytest.approx(0.8, abs=1 / total)
    # from the dense weights the fine-tuned values are lost
    dense = mk.global_magnitude(0.8, min_keep=0.01)
    assert any(not torch.equal(dense[n], got[n]) for n in got)


def test_neuron_mask_keeps_indices_and_composes() -> None:
    w = torch.zeros(6, 4)
    first = neuron_mask(w, [0, 2, 3, 5])
    assert first.dtype == torch.bool
    assert first.tolist() == [True, False, True, True, False, True]
    second = neuron_mask(w, torch.tensor([1, 2, 5]), previous=first.float())
    assert second.tolist() == [False, False, True, False, False, True]
    with pytest.raises(ValueError, match="at least one"):
        neuron_mask(w, [])
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        neuron_mask(w, [6])
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        neuron_mask(w, [-1])


def test_top_l1_neurons_ranks_rows_of_live_inputs() -> None:
    w = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 0.0, 9.0], [2.0, 2.0, 0.0], [-3.0, 0.0, 0.0], [0.5, 0.5, 0.5]]
    )
    assert top_l1_neurons(w, 2).tolist() == [1, 2]
    assert top_l1_neurons(w, 2, live_inputs=torch.tensor([0, 1])).tolist() == [2, 3]
    assert top_l1_neurons(w, 2, live=torch.tensor([0, 3, 4])).tolist() == [3, 4]
    assert top_l1_neurons(w, 0).tolist() == [1]  # at least one
    assert top_l1_neurons(w, 99).tolist() == [0, 1, 2, 3, 4]
    conv = torch.zeros(3, 2, 3, 3)
    conv[1] = 1.0
    conv[2, 0] = 3.0
    assert top_l1_neurons(conv, 1).tolist() == [2]
    assert top_l1_neurons(conv, 1, live_inputs=torch.tensor([1])).tolist() == [1]


def test_torch_prune_format_has_one_reader(tiny_net: nn.Module) -> None:
    assert not torch_pruned(tiny_net.fc)
    assert weight_parameter(tiny_net.fc) is tiny_net.fc.weight
    prune.l1_unstructured(tiny_net.fc, "weight", amount=0.4)
    assert torch_pruned(tiny_net.fc)
    assert weight_parameter(tiny_net.fc) is tiny_net.fc.weight_orig
    state = merge_torch_prune(tiny_net.state_dict())
    assert "fc.weight" in state and not any(k.endswith(("_orig", "_mask")) for k in state)
    assert set(state) == set(type(tiny_net)().state_dict())  # loads into an unpruned net
    assert torch.equal(state["fc.weight"], tiny_net.fc.weight_orig * tiny_net.fc.weight_mask)
    params = effective_parameters(tiny_net)
    assert set(params) == {n for n, _ in type(tiny_net)().named_parameters()}
    assert torch.equal(params["fc.weight"], state["fc.weight"])
    assert int((params["fc.weight"] == 0).sum()) == round(0.4 * tiny_net.fc.weight.numel())
    assert params["fc.weight"].grad_fn is None
