"""NEON's networks: random MLP architectures, base-network training, neuron removal.

NEON (Hirsch & Katz 2022) prunes the hidden neurons of fully-connected classifiers. This module
holds everything about those networks that is not reinforcement learning:

* :class:`MLP` -- hidden blocks ``Linear -> [BatchNorm1d] -> activation -> [neuron mask] ->
  [Dropout]`` and a ``Linear`` head. :func:`as_mlp` converts a plain ``nn.Sequential`` of the
  same layer kinds, so users can prune their own networks.
* :func:`random_mlp_spec` -- NEON's random architecture generator (1-6 hidden layers, widths from
  a grid, dropout and batch-norm each with probability 1/3, ReLU 90% / Tanh 5% / Sigmoid 5%),
  ranges held in an :class:`ArchitectureSpace` so a small profile can shrink them.
* :func:`train_mlp` -- a fast training loop on preloaded tensors (Adam, mini-batches, early
  stopping on the validation split, best weights restored), used for the base networks and
  for the brief fine-tuning after every pruning action (optionally of some parameters only).
* :func:`base_network` -- a trained base network for (dataset, index), cached under
  ``cache_root()/neon/base`` keyed by :func:`~pruning_core.results.config_hash` of its config.
* Neuron removal. :func:`select_neurons` ranks a layer's live neurons by the **L1 norm of their
  incoming weights** (the row of the layer's ``Linear``) and keeps the largest; with batch-norm
  the ranking still uses the ``Linear`` rows (NEON's rule; the batch-norm scale is not folded
  in). :func:`remove_neurons` removes the others **structurally** (the ``Linear``, its
  ``BatchNorm1d`` and the next ``Linear`` become smaller; survivors keep their trained weights);
  :func:`mask_neurons` is the masking variant (a 0/1 buffer multiplies the block's output, the
  tensors keep their shapes). Before any fine-tuning both give the same outputs.
* :func:`prune_mlp` -- the one-call use of a trained NEON agent: no training, just one greedy
  episode of the shipped agent (``pruning_core/assets/neon_agent.pt``) on the given network.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pruning_core.config import cache_root
from pruning_core.masking import Masker
from pruning_core.results import cached, config_hash

__all__ = [
    "ACTIVATIONS",
    "ArchitectureSpace",
    "BaseNet",
    "HiddenBlock",
    "MLP",
    "MLPData",
    "MLPSpec",
    "MLPTrainConfig",
    "NoHiddenLayerError",
    "accuracy",
    "as_mlp",
    "base_network",
    "build_mlp",
    "count_params",
    "effective_params",
    "live_neurons",
    "mask_neurons",
    "materialize",
    "n_keep_for",
    "nonzero_params",
    "prune_mlp",
    "random_mlp_spec",
    "remove_neurons",
    "select_neurons",
    "top_neurons",
    "torch_threads",
    "train_mlp",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leakyrelu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "identity": nn.Identity,
}
"""Activation names understood by :class:`MLPSpec` (the generator draws the first three)."""

_ACT_NAME = {cls: name for name, cls in ACTIVATIONS.items()}


class NoHiddenLayerError(ValueError):
    """The model has no hidden ``Linear`` layer, so NEON has no neuron to remove."""


# ======================================================================================
# Architecture
# ======================================================================================


@dataclass(frozen=True)
class MLPSpec:
    """The architecture of one MLP: sizes and, per hidden layer, its extras."""

    n_features: int
    """Input features."""
    n_classes: int
    """Output classes (logits)."""
    hidden: tuple[int, ...]
    """Width of each hidden layer, input side first."""
    activations: tuple[str, ...]
    """Activation of each hidden layer (a key of :data:`ACTIVATIONS`)."""
    batchnorm: tuple[bool, ...]
    """Whether each hidden layer has a ``BatchNorm1d`` after its ``Linear``."""
    dropout: tuple[float, ...]
    """Dropout rate after each hidden layer (0 = none)."""

    def __post_init__(self) -> None:
        n = len(self.hidden)
        if not (len(self.activations) == len(self.batchnorm) == len(self.dropout) == n):
            raise ValueError("MLPSpec: hidden, activations, batchnorm and dropout differ in length")
        if self.n_features < 1 or self.n_classes < 1 or any(w < 1 for w in self.hidden):
            raise ValueError(f"MLPSpec: sizes must be >= 1, got {self}")

    @property
    def n_hidden(self) -> int:
        """Number of hidden layers."""
        return len(self.hidden)


@dataclass(frozen=True)
class ArchitectureSpace:
    """The ranges of NEON's random architecture generator.

    Defaults are the paper's (as read from the authors' code); smaller profiles shrink
    ``widths`` and ``max_layers`` and say so in their config.
    """

    min_layers: int = 1
    """Fewest hidden layers."""
    max_layers: int = 6
    """Most hidden layers."""
    widths: tuple[int, ...] = tuple(range(100, 1001, 100))
    """Grid each hidden layer's width is drawn from (uniformly, independently per layer)."""
    p_dropout: float = 1 / 3
    """Probability that a network has dropout after every hidden layer."""
    p_batchnorm: float = 1 / 3
    """Probability that a network has batch-norm in every hidden layer (independent of dropout)."""
    dropout_rate: float = 0.2
    """Dropout rate when a network has dropout (not stated in the paper; inferred)."""
    activation_probs: tuple[tuple[str, float], ...] = (
        ("relu", 0.9),
        ("tanh", 0.05),
        ("sigmoid", 0.05),
    )
    """Activation of a network (one for all its layers) and its probability."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_layers <= self.max_layers:
            raise ValueError(f"need 1 <= min_layers <= max_layers, got {self}")
        if not self.widths or min(self.widths) < 1:
            raise ValueError("widths must be a non-empty grid of positive ints")
        total = sum(p for _, p in self.activation_probs)
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"activation probabilities sum to {total}, not 1")


def random_mlp_spec(
    n_features: int,
    n_classes: int,
    rng: np.random.Generator | int,
    space: ArchitectureSpace | None = None,
) -> MLPSpec:
    """Draw one NEON architecture for a dataset with ``n_features`` inputs and ``n_classes``.

    Depth uniform in ``[min_layers, max_layers]``, each width uniform on ``space.widths``;
    dropout and batch-norm are switched on for the whole network, each independently with its
    probability; one activation per network drawn with ``space.activation_probs``. The same
    ``rng`` seed gives the same architecture.
    """
    space = space or ArchitectureSpace()
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    depth = int(rng.integers(space.min_layers, space.max_layers + 1))
    widths = tuple(int(w) for w in rng.choice(np.asarray(space.widths), size=depth))
    use_dropout = bool(rng.random() < space.p_dropout)
    use_bn = bool(rng.random() < space.p_batchnorm)
    names = [a for a, _ in space.activation_probs]
    probs = np.asarray([p for _, p in space.activation_probs], dtype=float)
    act = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    return MLPSpec(
        n_features=int(n_features),
        n_classes=int(n_classes),
        hidden=widths,
        activations=(act,) * depth,
        batchnorm=(use_bn,) * depth,
        dropout=((space.dropout_rate if use_dropout else 0.0),) * depth,
    )


# ======================================================================================
# The network
# ======================================================================================


class HiddenBlock(nn.Module):
    """``Linear -> [BatchNorm1d] -> activation -> [neuron mask] -> [Dropout]``.

    ``neuron_mask`` (None until :func:`mask_neurons` sets it) is a 0/1 float buffer, one entry
    per neuron, that multiplies the block's output: a masked neuron sends nothing onwards.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str | nn.Module = "relu",
        batchnorm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.bn: nn.BatchNorm1d | None = nn.BatchNorm1d(out_features) if batchnorm else None
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(f"unknown activation {activation!r}; known: {list(ACTIVATIONS)}")
            activation = ACTIVATIONS[activation]()
        self.act = activation
        self.dropout: nn.Dropout | None = nn.Dropout(dropout) if dropout > 0 else None
        self.register_buffer("neuron_mask", None)

    @property
    def width(self) -> int:
        """Neurons in the layer (masked ones included)."""
        return self.linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)
        if self.bn is not None:
            h = self.bn(h)
        h = self.act(h)
        if self.neuron_mask is not None:
            h = h * self.neuron_mask
        if self.dropout is not None:
            h = self.dropout(h)
        return h


class MLP(nn.Module):
    """A fully-connected classifier: hidden :class:`HiddenBlock` s and a ``Linear`` head."""

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        sizes = (spec.n_features, *spec.hidden)
        self.blocks = nn.ModuleList(
            HiddenBlock(
                sizes[i], sizes[i + 1], spec.activations[i], spec.batchnorm[i], spec.dropout[i]
            )
            for i in range(spec.n_hidden)
        )
        self.head = nn.Linear(sizes[-1], spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    @property
    def n_hidden(self) -> int:
        """Number of hidden layers."""
        return len(self.blocks)

    def next_linear(self, layer: int) -> nn.Linear:
        """The ``Linear`` that reads hidden layer ``layer``'s output."""
        return self.blocks[layer + 1].linear if layer + 1 < len(self.blocks) else self.head

    def spec(self) -> MLPSpec:
        """The current architecture (widths after any structural removal)."""
        return MLPSpec(
            n_features=self.blocks[0].linear.in_features if self.blocks else self.head.in_features,
            n_classes=self.head.out_features,
            hidden=tuple(b.width for b in self.blocks),
            activations=tuple(
                _ACT_NAME.get(type(b.act), type(b.act).__name__.lower()) for b in self.blocks
            ),
            batchnorm=tuple(b.bn is not None for b in self.blocks),
            dropout=tuple(b.dropout.p if b.dropout is not None else 0.0 for b in self.blocks),
        )


def build_mlp(spec: MLPSpec, seed: int | None = None) -> MLP:
    """An :class:`MLP` of ``spec`` with PyTorch's default initialisation (seeded when given)."""
    if seed is None:
        return MLP(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLP(spec)


def as_mlp(model: nn.Module) -> MLP:
    """Return ``model`` as an :class:`MLP` (a copy when converted; an MLP is returned as is).

    Accepts an :class:`MLP` or an ``nn.Sequential`` of ``Linear``, ``BatchNorm1d``,
    parameter-free activations and ``Dropout`` (an optional leading ``Flatten``); the last
    ``Linear`` is the head. Raises :class:`NoHiddenLayerError` when there is no hidden
    ``Linear`` and ``TypeError`` for other layer kinds.
    """
    if isinstance(model, MLP):
        if model.n_hidden == 0:
            raise NoHiddenLayerError(
                "the MLP has no hidden Linear layer (only its head): NEON removes hidden neurons, "
                "so there is nothing to prune."
            )
        return model
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"cannot prune a {type(model).__name__}: pass a pruning_core.mlp.MLP or an "
            "nn.Sequential of Linear / BatchNorm1d / activation / Dropout layers."
        )
    groups: list[list[nn.Module]] = []
    for i, m in enumerate(model):
        if isinstance(m, nn.Flatten) and i == 0:
            continue
        if isinstance(m, nn.Linear):
            groups.append([m])
        elif not groups:
            raise TypeError(f"layer {i} ({type(m).__name__}) comes before the first Linear")
        elif isinstance(m, (nn.BatchNorm1d, nn.Dropout)) or not any(True for _ in m.parameters()):
            groups[-1].append(m)
        else:
            raise TypeError(
                f"layer {i} ({type(m).__name__}) has parameters and is not Linear / BatchNorm1d: "
                "only plain MLPs can be converted."
            )
    if len(groups) < 2:
        raise NoHiddenLayerError(
            f"the model has {len(groups)} Linear layer(s) and so no hidden layer: NEON removes "
            "hidden neurons (between two Linear layers), so there is nothing to prune."
        )
    blocks = []
    for g in groups[:-1]:
        lin = g[0]
        bn = next((m for m in g if isinstance(m, nn.BatchNorm1d)), None)
        drop = next((m for m in g if isinstance(m, nn.Dropout)), None)
        acts = [m for m in g[1:] if not isinstance(m, (nn.BatchNorm1d, nn.Dropout))]
        if len(acts) > 1:
            raise TypeError(f"more than one activation after a Linear: {acts}")
        block = HiddenBlock(
            lin.in_features,
            lin.out_features,
            copy.deepcopy(acts[0]) if acts else nn.Identity(),
            batchnorm=bn is not None,
            dropout=drop.p if drop is not None else 0.0,
        )
        block.linear = copy.deepcopy(lin)
        if bn is not None:
            block.bn = copy.deepcopy(bn)
        blocks.append(block)
    if len(groups[-1]) > 1:
        raise TypeError("layers after the last Linear (the head) are not supported")
    spec = MLPSpec(
        n_features=blocks[0].linear.in_features,
        n_classes=groups[-1][0].out_features,
        hidden=tuple(b.width for b in blocks),
        activations=("relu",) * len(blocks),
        batchnorm=tuple(b.bn is not None for b in blocks),
        dropout=tuple(b.dropout.p if b.dropout is not None else 0.0 for b in blocks),
    )
    out = MLP(spec)
    out.blocks = nn.ModuleList(blocks)
    out.head = copy.deepcopy(groups[-1][0])
    dev = next(model.parameters()).device
    return out.to(dev)


# ======================================================================================
# Counting
# ======================================================================================


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


# ======================================================================================
# Neuron removal
# ======================================================================================


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
    live = live_neurons(model, layer)
    k = max(1, min(int(k), len(live)))
    w = model.blocks[layer].linear.weight.detach().abs().cpu()
    if layer > 0 and model.blocks[layer - 1].neuron_mask is not None:
        w = w[:, live_neurons(model, layer - 1)]  # masked inputs carry nothing: not counted
    scores = w.sum(dim=1)[live]
    top = torch.topk(scores, k, largest=True, sorted=False).indices
    return live[top].sort().values


def _check_layer(model: MLP, layer: int) -> None:
    if not isinstance(model, MLP):
        raise TypeError(f"expected a pruning_core.mlp.MLP, got {type(model).__name__} (use as_mlp)")
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
    new = nn.Linear(lin.in_features, idx.numel(), bias=lin.bias is not None).to(lin.weight)
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
    new_next = nn.Linear(idx.numel(), nxt.out_features, bias=nxt.bias is not None).to(nxt.weight)
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

    Shapes do not change; the mask composes with earlier masks (a masked neuron stays masked).
    """
    _check_layer(model, layer)
    block = model.blocks[layer]
    dev = block.linear.weight.device
    mask = torch.zeros(block.width, device=dev)
    idx = torch.as_tensor(keep, dtype=torch.long).flatten().to(dev)
    if idx.numel() == 0:
        raise ValueError("cannot mask every neuron of a layer: keep at least one")
    mask[idx] = 1.0
    if block.neuron_mask is not None:
        mask = mask * block.neuron_mask
    block.neuron_mask = mask
    return model


# ======================================================================================
# Training
# ======================================================================================


@dataclass(frozen=True)
class MLPTrainConfig:
    """Training of base networks and the brief fine-tuning after a pruning action."""

    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 64
    """Mini-batch size."""
    max_epochs: int = 100
    """Most passes over the training rows (the paper trains 100 epochs)."""
    steps_per_check: int | None = None
    """Optimiser steps between two validation checks; None = one epoch."""
    patience: int = 5
    """Checks without a better validation score before stopping early."""
    max_steps: int | None = None
    """Cap on optimiser steps (a brief fine-tuning); None = ``max_epochs`` epochs."""
    monitor: str = "val_loss"
    """``val_loss`` or ``val_acc``: the early-stopping score (the best weights are restored)."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    seed: int = 0
    """Seed of the mini-batch order."""

    def __post_init__(self) -> None:
        if self.monitor not in ("val_loss", "val_acc"):
            raise ValueError(f"monitor must be 'val_loss' or 'val_acc', got {self.monitor!r}")


@torch.inference_mode()
def _eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    was = model.training
    model.eval()
    try:
        logits = model(x)
        loss = float(F.cross_entropy(logits, y))
        acc = int((logits.argmax(1) == y).sum()) / len(y)
    finally:
        model.train(was)
    return loss, acc


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy (a fraction) in eval mode; FloatingPointError when the outputs are NaN."""
    if len(y) == 0:
        raise ValueError("accuracy() got no rows")
    loss, acc = _eval(model, x, y)
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"the network's loss is {loss} (NaN/inf outputs): its weights diverged; lower the "
            "fine-tuning learning rate."
        )
    return acc


def _adam(params: list[nn.Parameter], cfg: MLPTrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: leave as is), then restore.

    NEON's networks are small: one thread is as fast as two on an idle machine and many times
    faster on a busy one (threads that wait for a shared core spin).
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train_mlp(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    cfg: MLPTrainConfig,
    params: Iterable[nn.Parameter] | None = None,
    masker: Masker | None = None,
) -> dict[str, float]:
    """Train with Adam and early stopping on the validation split; restore the best weights.

    The starting weights count as a candidate (check 0), so the result is never worse on the
    monitored validation score than the network it started from. ``params`` restricts training
    to some parameters (NEON fine-tunes only the changed layers by default); the others are
    frozen for the call. With a ``masker`` its weight masks are held fixed (the GMP baseline).
    Returns the best validation accuracy and loss, checks and steps run.
    """
    params = list(model.parameters()) if params is None else list(params)
    trainable = {id(p) for p in params}
    frozen = [p for p in model.parameters() if id(p) not in trainable and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    opt = _adam(params, cfg)
    hold = masker.hold(opt) if masker is not None else None
    n = len(x_train)
    gen = torch.Generator().manual_seed(cfg.seed)
    per_epoch = max(1, n // cfg.batch_size)
    check_every = cfg.steps_per_check or per_epoch
    max_steps = cfg.max_epochs * per_epoch
    if cfg.max_steps is not None:
        max_steps = min(max_steps, cfg.max_steps)

    def score(loss: float, acc: float) -> tuple[float, float]:
        return (acc, -loss) if cfg.monitor == "val_acc" else (-loss, acc)

    loss0, acc0 = _eval(model, x_val, y_val)
    best = score(loss0, acc0) if math.isfinite(loss0) else (-math.inf, -math.inf)
    best_state = copy.deepcopy(model.state_dict())
    best_loss, best_acc = loss0, acc0
    bad = checks = step = 0
    perm = torch.randperm(n, generator=gen)
    pos = 0
    model.train()
    try:
        while step < max_steps:
            for _ in range(check_every):
                if pos + cfg.batch_size > n:
                    perm = torch.randperm(n, generator=gen)
                    pos = 0
                idx = perm[pos : pos + cfg.batch_size]
                pos += cfg.batch_size
                if len(idx) < 2:  # batch-norm needs two rows
                    continue
                loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if step >= max_steps:
                    break
            checks += 1
            vloss, vacc = _eval(model, x_val, y_val)
            if not math.isfinite(vloss):
                break  # diverged: keep the best weights seen so far
            s = score(vloss, vacc)
            if s > best:
                best, bad = s, 0
                best_state = copy.deepcopy(model.state_dict())
                best_loss, best_acc = vloss, vacc
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
    finally:
        for p in frozen:
            p.requires_grad_(True)
        if hold is not None:
            hold.remove()
    model.load_state_dict(best_state)
    model.eval()
    return {"val_acc": best_acc, "val_loss": best_loss, "checks": checks, "steps": step}


# ======================================================================================
# Data and cached base networks
# ======================================================================================


@dataclass
class MLPData:
    """Preloaded float32 / int64 tensors of one dataset's three splits (rows capped)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def n_features(self) -> int:
        """Input features."""
        return int(self.x_train.shape[1])

    @classmethod
    def from_tabular(
        cls,
        name: str,
        seed: int = 0,
        max_train_rows: int | None = None,
        max_val_rows: int | None = None,
        max_test_rows: int | None = None,
    ) -> MLPData:
        """Load suite dataset ``name`` (:func:`pruning_core.data.tabular.load_tabular`) as tensors.

        Row caps take a fixed-seed random subset of a split (the same subset for every call).
        """
        from pruning_core.data.tabular import load_tabular

        ds = load_tabular(name, seed=seed)
        rng = np.random.default_rng(zlib.crc32(name.encode()) + seed)

        def cap(x: np.ndarray, y: np.ndarray, m: int | None) -> tuple[torch.Tensor, torch.Tensor]:
            if m is not None and len(y) > m:
                idx = np.sort(rng.choice(len(y), size=m, replace=False))
                x, y = x[idx], y[idx]
            return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)

        xt, yt = cap(ds.X_train, ds.y_train, max_train_rows)
        xv, yv = cap(ds.X_val, ds.y_val, max_val_rows)
        xs, ys = cap(ds.X_test, ds.y_test, max_test_rows)
        return cls(name, xt, yt, xv, yv, xs, ys, ds.n_classes)


@dataclass
class BaseNet:
    """A trained base network and where it came from (what the cache stores)."""

    dataset: str
    index: int
    spec: MLPSpec
    state_dict: dict[str, torch.Tensor]
    val_acc: float
    test_acc: float
    train_seconds: float
    epochs: float
    key: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def model(self) -> MLP:
        """A fresh :class:`MLP` holding the trained weights (eval mode)."""
        m = MLP(self.spec)
        m.load_state_dict(self.state_dict)
        return m.eval()


def arch_seed(dataset: str, index: int, seed: int = 0) -> int:
    """A stable seed for network ``index`` of ``dataset`` (independent of Python's hash salt)."""
    return (zlib.crc32(f"{dataset}/{index}".encode()) + 1_000_003 * seed) % 2**31


def base_network(
    data: MLPData,
    index: int,
    space: ArchitectureSpace,
    train_cfg: MLPTrainConfig,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    data_key: Any = None,
) -> BaseNet:
    """Network ``index`` of dataset ``data``: a random architecture, trained, cached.

    The cache key is :func:`config_hash` of the dataset name, index, seed, architecture space,
    training config and ``data_key`` (the row caps), so any change builds a new network and an
    interrupted study resumes from the networks already trained.
    """
    cfg = {
        "v": 1,
        "dataset": data.name,
        "index": index,
        "seed": seed,
        "space": asdict(space),
        "train": asdict(train_cfg),
        "data": data_key,
        "n_train": len(data.y_train),
    }
    key = config_hash(cfg)
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "neon" / "base"
    path = folder / f"{data.name}__{index}__{key}.pt"

    def build() -> dict[str, Any]:
        s = arch_seed(data.name, index, seed)
        spec = random_mlp_spec(data.n_features, data.n_classes, s, space)
        model = build_mlp(spec, seed=s)
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):  # dropout draws from the global RNG
            torch.manual_seed(s)
            hist = train_mlp(
                model, data.x_train, data.y_train, data.x_val, data.y_val,
                MLPTrainConfig(**{**asdict(train_cfg), "seed": s}),
            )  # fmt: skip
        secs = time.perf_counter() - t0
        return {
            "dataset": data.name,
            "index": index,
            "spec": asdict(spec),
            "state_dict": model.state_dict(),
            "val_acc": accuracy(model, data.x_val, data.y_val),
            "test_acc": accuracy(model, data.x_test, data.y_test),
            "train_seconds": secs,
            "epochs": hist["steps"] / max(1, len(data.y_train) // train_cfg.batch_size),
            "key": key,
        }

    obj = cached(path, build, log=lambda m: None)
    spec_d = dict(obj["spec"])
    for k in ("hidden", "activations", "batchnorm", "dropout"):
        spec_d[k] = tuple(spec_d[k])
    return BaseNet(
        dataset=obj["dataset"],
        index=obj["index"],
        spec=MLPSpec(**spec_d),
        state_dict=obj["state_dict"],
        val_acc=obj["val_acc"],
        test_acc=obj["test_acc"],
        train_seconds=obj["train_seconds"],
        epochs=obj["epochs"],
        key=obj["key"],
    )


# ======================================================================================
# One-call pruning with the shipped agent
# ======================================================================================


def _tensor(a: Any, dtype: torch.dtype) -> torch.Tensor:
    return (
        a.to(dtype) if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a), dtype=dtype)
    )


def prune_mlp(
    model: nn.Module,
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    C: float = 1.0,
    passes: int = 4,
    agent: Any = None,
    finetune: str = "changed",
    mode: str = "structural",
    guard: bool = False,
    seed: int = 0,
    threads: int | None = 1,
    **env_kw: Any,
) -> tuple[MLP, dict[str, Any]]:
    """Prune the hidden neurons of a trained MLP with a trained NEON agent -- no training.

    One greedy episode of ``agent`` (default: the agent shipped in
    ``pruning_core/assets/neon_agent.pt``) walks the hidden layers ``passes`` times; each action
    keeps 100 / 90 / 80 / 70 / 60 % of a layer's neurons (largest incoming-weight L1 norm),
    removes the rest structurally and fine-tunes briefly on ``X_train`` with early stopping on
    ``X_val`` (inputs scaled as for training; the test split is never needed). ``C`` is the
    accuracy, in percentage points, you accept to lose. ``guard=True`` undoes any action after
    which the validation accuracy fell more than ``C`` below the original (not part of NEON).

    ``threads`` torch threads are used meanwhile (1: fastest for small MLPs; None: as set).
    Further keyword arguments go to :class:`~pruning_core.envs.neon.NeonEnvConfig` (e.g.
    ``ft=...`` for the fine-tuning budget, ``stat_rows=...``).

    Returns ``(smaller_model, report)``; the input model is not modified. The report holds the
    parameter counts, the compression (original / pruned parameters), validation accuracies
    before and after, the kept widths and the per-step log.
    """
    from pruning_core.agents.actor_critic import load_shipped_agent
    from pruning_core.envs.neon import NeonEnv, NeonEnvConfig, NeonTask

    mlp = copy.deepcopy(as_mlp(model)).cpu().eval()
    task = NeonTask.from_model(
        mlp,
        _tensor(X_train, torch.float32), _tensor(y_train, torch.long),
        _tensor(X_val, torch.float32), _tensor(y_val, torch.long),
        name="user",
    )  # fmt: skip
    env = NeonEnv(
        [task],
        NeonEnvConfig(passes=passes, C_values=(float(C),), finetune=finetune, mode=mode,
                      guard=guard, **env_kw),
    )  # fmt: skip
    agent = agent if agent is not None else load_shipped_agent()
    t0 = time.perf_counter()
    with torch_threads(threads):
        obs, _ = env.reset(seed=seed, options={"task": 0, "C": float(C)})
        done = False
        actions = []
        while not done:
            action = agent.act(obs, greedy=True)
            actions.append(int(action))
            obs, _r, term, trunc, _info = env.step(action)
            done = term or trunc
        pruned = env.final_model().eval()
        report = env.episode_report()
    report["actions"] = actions
    report["keep_per_step"] = [env.config.keep_fractions[a] for a in actions]
    report["seconds"] = time.perf_counter() - t0
    return pruned, report
