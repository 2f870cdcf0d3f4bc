"""NEON's networks: the MLP, its random architectures, and the record of a trained one.

NEON (Hirsch & Katz 2022) prunes the hidden neurons of fully-connected classifiers:

* :class:`MLP` -- hidden blocks ``Linear -> [BatchNorm1d] -> activation -> [neuron mask] ->
  [Dropout]`` and a ``Linear`` head. :func:`as_mlp` converts a plain ``nn.Sequential`` of the
  same layer kinds, so users can prune their own networks, and :func:`to_sequential` converts
  back (the caller's layer names and order, so its ``state_dict`` keys stay the caller's).
* :func:`random_mlp_spec` -- NEON's random architecture generator (1-6 hidden layers, widths from
  a grid, dropout and batch-norm each with probability 1/3, ReLU 90% / Tanh 5% / Sigmoid 5%),
  ranges held in an :class:`ArchitectureSpace` so a small profile can shrink them.
* :class:`BaseNet` -- a trained base network and where it came from (what the cache stores).

Elsewhere along the data flow: training is :func:`pruning_core.train.loop.fit` with
``TrainConfig.mlp()``; neuron ranking and structural removal are in
:mod:`pruning_core.pruning.neurons`; cached base networks and the one-call
:func:`~pruning_core.methods.neon.prune_mlp` in :mod:`pruning_core.methods.neon`.
"""

from __future__ import annotations

import copy
import math
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from pruning_core.config import seeded

__all__ = [
    "ACTIVATIONS",
    "ArchitectureSpace",
    "BaseNet",
    "HiddenBlock",
    "MLP",
    "MLPSpec",
    "NoHiddenLayerError",
    "as_mlp",
    "build_mlp",
    "random_mlp_spec",
    "to_sequential",
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

    def step_params(self, layers: Sequence[int]) -> list[nn.Parameter]:
        """The parameters a pruning step at hidden ``layers`` changes, each once, in model order:
        each layer's ``Linear`` and batch-norm and the ``Linear`` that reads it. What NEON's
        ``finetune="changed"`` trains, and what every baseline of the NEON study trains too."""
        for layer in layers:
            if not 0 <= layer < len(self.blocks):
                raise IndexError(f"hidden layer {layer} out of range: the MLP has {len(self.blocks)}")
        chosen: list[nn.Module] = []
        for layer in sorted(set(layers)):
            block = self.blocks[layer]
            chosen += [block.linear, *([block.bn] if block.bn is not None else []),
                       self.next_linear(layer)]  # fmt: skip
        ids = {id(p) for m in chosen for p in m.parameters()}
        return [p for p in self.parameters() if id(p) in ids]

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
    with seeded(seed):
        return MLP(spec)


def _linear_groups(model: nn.Sequential) -> list[list[tuple[str, nn.Module]]]:
    """The children of a plain MLP ``nn.Sequential`` grouped by ``Linear``: each group is one
    ``Linear`` and the layers after it, as ``(child name, module)`` pairs (a leading ``Flatten``
    is in no group). Raises ``TypeError`` for layers an MLP cannot hold."""
    groups: list[list[tuple[str, nn.Module]]] = []
    for i, (key, m) in enumerate(model.named_children()):
        if isinstance(m, nn.Flatten) and i == 0:
            continue
        if isinstance(m, nn.Linear):
            groups.append([(key, m)])
        elif not groups:
            raise TypeError(f"layer {i} ({type(m).__name__}) comes before the first Linear")
        elif isinstance(m, (nn.BatchNorm1d, nn.Dropout)) or not any(True for _ in m.parameters()):
            groups[-1].append((key, m))
        else:
            raise TypeError(
                f"layer {i} ({type(m).__name__}) has parameters and is not Linear / BatchNorm1d: "
                "only plain MLPs can be converted."
            )
    return groups


def as_mlp(model: nn.Module) -> MLP:
    """Return ``model`` as an :class:`MLP` (a copy when converted; an MLP is returned as is).

    Accepts an :class:`MLP` or an ``nn.Sequential`` of ``Linear``, ``BatchNorm1d``,
    parameter-free activations and ``Dropout`` (an optional leading ``Flatten``); the last
    ``Linear`` is the head. Raises :class:`NoHiddenLayerError` when there is no hidden
    ``Linear`` and ``TypeError`` for other layer kinds. Converting draws nothing from torch's
    global RNG: the MLP's skeleton is built on the ``meta`` device and its layers are copies of
    the caller's. :func:`to_sequential` turns the result back into the caller's form.
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
            f"cannot prune a {type(model).__name__}: pass a pruning_core.models.mlp.MLP or an "
            "nn.Sequential of Linear / BatchNorm1d / activation / Dropout layers."
        )
    groups = [[m for _, m in g] for g in _linear_groups(model)]
    if len(groups) < 2:
        raise NoHiddenLayerError(
            f"the model has {len(groups)} Linear layer(s) and so no hidden layer: NEON removes "
            "hidden neurons (between two Linear layers), so there is nothing to prune."
        )
    if len(groups[-1]) > 1:
        raise TypeError("layers after the last Linear (the head) are not supported")
    acts = []
    for g in groups[:-1]:
        a = [m for m in g[1:] if not isinstance(m, (nn.BatchNorm1d, nn.Dropout))]
        if len(a) > 1:
            raise TypeError(f"more than one activation after a Linear: {a}")
        acts.append(copy.deepcopy(a[0]) if a else nn.Identity())
    spec = MLPSpec(
        n_features=groups[0][0].in_features,
        n_classes=groups[-1][0].out_features,
        hidden=tuple(g[0].out_features for g in groups[:-1]),
        activations=("relu",) * len(acts),  # the spec's names; the copied modules are used
        batchnorm=tuple(any(isinstance(m, nn.BatchNorm1d) for m in g) for g in groups[:-1]),
        dropout=tuple(
            next((m.p for m in g if isinstance(m, nn.Dropout)), 0.0) for g in groups[:-1]
        ),
    )
    with torch.device("meta"):  # a skeleton: default initialisation would draw random numbers
        out = MLP(spec)
    for block, g, act in zip(out.blocks, groups[:-1], acts, strict=True):
        block.linear = copy.deepcopy(g[0])
        bn = next((m for m in g if isinstance(m, nn.BatchNorm1d)), None)
        block.bn = copy.deepcopy(bn) if bn is not None else None
        block.act = act
    out.head = copy.deepcopy(groups[-1][0])
    dev = next(model.parameters()).device
    return out.to(dev)


def to_sequential(mlp: MLP, like: nn.Sequential | None = None) -> nn.Sequential:
    """``mlp`` as a plain ``nn.Sequential`` (copies of its layers; ``mlp`` is not changed).

    With ``like``, the ``nn.Sequential`` that :func:`as_mlp` converted, the result has its
    layers, names and order (``Flatten``, activations and ``Dropout`` copied from it), so its
    ``state_dict`` keys are those of ``like`` and the caller's code keeps working; only the
    widths differ after pruning. Without ``like``: ``Linear -> [BatchNorm1d] -> activation ->
    [Dropout]`` per hidden layer, then the head. Neurons masked in place (``neuron_mask``) are
    folded into the next ``Linear`` (its input columns zeroed), which computes the same outputs.
    """
    blocks = [copy.deepcopy(b) for b in mlp.blocks]
    head = copy.deepcopy(mlp.head)
    with torch.no_grad():
        for i, b in enumerate(blocks):
            if b.neuron_mask is not None:
                reader = blocks[i + 1].linear if i + 1 < len(blocks) else head
                reader.weight.mul_(b.neuron_mask.to(reader.weight.dtype))
                b.neuron_mask = None
    if like is None:
        layers: list[nn.Module] = []
        for b in blocks:
            layers += [b.linear, *([b.bn] if b.bn is not None else []), b.act]
            layers += [b.dropout] if b.dropout is not None else []
        return nn.Sequential(*layers, head).train(mlp.training)
    groups = _linear_groups(like)
    if len(groups) != len(blocks) + 1:
        raise ValueError(
            f"like has {len(groups)} Linear layers, the MLP {len(blocks) + 1}: pass the "
            "nn.Sequential the MLP was converted from"
        )
    swap: dict[str, nn.Module] = {}
    for g, b in zip(groups, [*blocks, None], strict=True):
        for key, m in g:
            if isinstance(m, nn.Linear):
                swap[key] = b.linear if b is not None else head
            elif isinstance(m, nn.BatchNorm1d) and b is not None and b.bn is not None:
                swap[key] = b.bn
    children = {k: swap.get(k, copy.deepcopy(m)) for k, m in like.named_children()}
    return nn.Sequential(OrderedDict(children)).train(mlp.training)


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

