"""Neurons of NEON's MLPs: ranking by incoming-weight L1 norm, structural removal, masking,
parameter counts.

:func:`select_neurons` keeps a layer's live neurons with the largest L1 norm of their incoming
weights (the row of the layer's ``Linear``; batch-norm scale not folded in, as in NEON), ranked by
the masking API's :func:`~pruning_core.pruning.masks.top_l1_neurons`. :func:`mask_neurons` is the
masking variant: its mask is the masking API's :func:`~pruning_core.pruning.masks.neuron_mask`,
held as a 0/1 buffer that multiplies the block's output. :func:`remove_neurons` is **surgery, not
masking**: it removes the other neurons structurally (the ``Linear``, its ``BatchNorm1d`` and the
next ``Linear`` become smaller; survivors keep their weights), so no mask remains to hold.
Before any fine-tuning both give the same outputs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import skip_init

from pruning_core.models.mlp import MLP
from pruning_core.pruning.criteria import neuron_mask, top_l1_neurons

__all__ = [
    "count_params",
    "effective_params",
    "live_neurons",
    "mask_neurons",
    "materialize",
    "n_keep_for",
    "nonzero_params",
    "remove_neurons",
    "select_neurons",
    "top_neurons",
]


def count_params(model: nn.Module) -> int:
    """All parameters of ``model`` (weights, biases, batch-norm scales and shifts)."""
    return sum(p.numel() for p in model.parameters())


def nonzero_params(model: nn.Module) -> int:
    """Parameters that are not exactly zero (the size of a model pruned by masks)."""
    return sum(int(torch.count_nonzero(p)) for p in model.parameters())


def live_neurons(model: MLP, layer: int) -> torch.Tensor:
    """Indices of the neurons of hidden layer ``layer`` that are not masked."""
    block = model.blocks[layer]
    if block.neuron_mask is None:
        return torch.arange(block.width)
    return torch.nonzero(block.neuron_mask > 0).flatten().cpu()


def materialize(model: MLP) -> MLP:
    """A copy of ``model`` with every masked neuron removed structurally (same outputs)."""
    out = copy.deepcopy(model)
    for layer in range(out.n_hidden):
        if out.blocks[layer].neuron_mask is not None:
            keep = live_neurons(out, layer)
            out.blocks[layer].neuron_mask = None
            remove_neurons(out, layer, keep)
    return out


def effective_params(model: MLP) -> int:
    """Parameters the network would have with its masked neurons removed structurally."""
    if all(b.neuron_mask is None for b in model.blocks):
        return count_params(model)
    return count_params(materialize(model))


def n_keep_for(n: int, keep_fraction: float) -> int:
    """Neurons kept when ``keep_fraction`` of ``n`` is kept: rounded half up, at least 1."""
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must lie in (0, 1], got {keep_fraction}")
    return max(1, min(n, math.floor(keep_fraction * n + 0.5)))


def select_neurons(model: MLP, layer: int, keep_fraction: float) -> torch.Tensor:
    """Sorted indices of the neurons of ``layer`` to keep: the live ones whose incoming weights
    have the largest L1 norm (``keep_fraction`` of the live neurons, rounded half up, >= 1)."""
    _check_layer(model, layer)
    return top_neurons(model, layer, n_keep_for(len(live_neurons(model, layer)), keep_fraction))


@torch.no_grad()
def top_neurons(model: MLP, layer: int, k: int) -> torch.Tensor:
    """Sorted indices of the ``k`` live neurons of ``layer`` with the largest incoming L1 norm."""
    _check_layer(model, layer)
    live_inputs = None
    if layer > 0 and model.blocks[layer - 1].neuron_mask is not None:
        live_inputs = live_neurons(model, layer - 1)  # masked inputs carry nothing: not counted
    return top_l1_neurons(
        model.blocks[layer].linear.weight, k, live_neurons(model, layer), live_inputs
    )


def _check_layer(model: MLP, layer: int) -> None:
    if not isinstance(model, MLP):
        raise TypeError(f"expected a pruning_core.models.mlp.MLP, got {type(model).__name__} (use as_mlp)")
    if not 0 <= layer < model.n_hidden:
        raise IndexError(f"hidden layer {layer} out of range: the MLP has {model.n_hidden}")


@torch.no_grad()
def remove_neurons(model: MLP, layer: int, keep: torch.Tensor | Sequence[int]) -> MLP:
    """Structurally keep only neurons ``keep`` of hidden layer ``layer`` (in place; returns it).

    The layer's ``Linear`` loses rows, its ``BatchNorm1d`` (weights, biases and running
    statistics) the same entries, its neuron mask too, and the next ``Linear`` loses the matching
    columns. Surviving neurons keep their trained values, so the outputs are those of the
    network with the other neurons masked.
    """
    _check_layer(model, layer)
    block = model.blocks[layer]
    idx = torch.as_tensor(keep, dtype=torch.long).flatten().to(block.linear.weight.device)
    if idx.numel() == 0:
        raise ValueError("cannot remove every neuron of a layer: keep at least one")
    if int(idx.min()) < 0 or int(idx.max()) >= block.width or idx.unique().numel() != idx.numel():
        raise ValueError(f"keep indices must be distinct and in [0, {block.width})")
    lin = block.linear
    # skip_init: the weights are copied next, so no random initialisation (and no global RNG draw)
    new = skip_init(nn.Linear, lin.in_features, idx.numel(), bias=lin.bias is not None,
                    device=lin.weight.device, dtype=lin.weight.dtype)  # fmt: skip
    new.weight.copy_(lin.weight[idx])
    if lin.bias is not None:
        new.bias.copy_(lin.bias[idx])
    new.weight.requires_grad_(lin.weight.requires_grad)
    block.linear = new
    if block.bn is not None:
        old = block.bn
        bn = nn.BatchNorm1d(
            idx.numel(),
            eps=old.eps,
            momentum=old.momentum,
            affine=old.affine,
            track_running_stats=old.track_running_stats,
        ).to(lin.weight)
        if old.affine:
            bn.weight.copy_(old.weight[idx])
            bn.bias.copy_(old.bias[idx])
        if old.track_running_stats:
            bn.running_mean.copy_(old.running_mean[idx])
            bn.running_var.copy_(old.running_var[idx])
            bn.num_batches_tracked.copy_(old.num_batches_tracked)
        bn.train(old.training)
        block.bn = bn
    if block.neuron_mask is not None:
        block.neuron_mask = block.neuron_mask[idx].clone()
    nxt = model.next_linear(layer)
    new_next = skip_init(nn.Linear, idx.numel(), nxt.out_features, bias=nxt.bias is not None,
                         device=nxt.weight.device, dtype=nxt.weight.dtype)  # fmt: skip
    new_next.weight.copy_(nxt.weight[:, idx])
    if nxt.bias is not None:
        new_next.bias.copy_(nxt.bias)
    if layer + 1 < model.n_hidden:
        model.blocks[layer + 1].linear = new_next
    else:
        model.head = new_next
    return model


@torch.no_grad()
def mask_neurons(model: MLP, layer: int, keep: torch.Tensor | Sequence[int]) -> MLP:
    """Masking variant of :func:`remove_neurons`: zero the output of every neuron not in ``keep``.

    Shapes do not change; the mask (:func:`~pruning_core.pruning.masks.neuron_mask`) composes
    with earlier masks (a masked neuron stays masked).
    """
    _check_layer(model, layer)
    block = model.blocks[layer]
    w = block.linear.weight
    block.neuron_mask = neuron_mask(w, keep, previous=block.neuron_mask).to(w.dtype)
    return model

