"""What can be pruned: the prunable layers of a model (``Conv2d`` / ``Linear`` by default, include /
exclude by name pattern or type, optionally in forward order), and the one place that reads
``torch.nn.utils.prune``'s format (``weight_orig`` + ``weight_mask``) for exports and reports.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

DEFAULT_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)
"""Layer types pruned by default: convolutions and fully-connected layers."""


class NoPrunableLayerError(ValueError):
    """Raised when a model has no layer that the chosen selection can prune."""


TORCH_PRUNE_ORIG = "weight_orig"


TORCH_PRUNE_MASK = "weight_mask"


def torch_pruned(module: nn.Module) -> bool:
    """Whether ``torch.nn.utils.prune`` re-parametrises the module's weight.

    Its format: the trainable values in ``weight_orig`` (a parameter), the mask in ``weight_mask``
    (a buffer), and ``weight`` recomputed as their product before every forward pass. Looked up
    in the module's registries rather than by ``hasattr``, which raises and catches an
    ``AttributeError`` for every unpruned layer (PuRL's step reads layer weights often).
    """
    return TORCH_PRUNE_ORIG in module._parameters and TORCH_PRUNE_MASK in module._buffers


def weight_parameter(module: nn.Module) -> torch.Tensor:
    """The tensor an optimiser trains as the module's weight: ``weight_orig`` under
    ``torch.nn.utils.prune``, else ``weight``."""
    return getattr(module, TORCH_PRUNE_ORIG) if torch_pruned(module) else module.weight


def merge_torch_prune(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Named tensors (e.g. a state_dict) with ``torch.nn.utils.prune``'s pairs folded into plain
    weights.

    Each ``<prefix>weight_orig`` becomes ``<prefix>weight = weight_orig * weight_mask`` in its
    place, and ``<prefix>weight_mask`` is dropped; every other entry is passed through (not
    copied). The result loads into an unmodified model.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if key.endswith(TORCH_PRUNE_MASK):
            continue
        if key.endswith(TORCH_PRUNE_ORIG):
            prefix = key[: -len(TORCH_PRUNE_ORIG)]
            out[prefix + "weight"] = value * tensors[prefix + TORCH_PRUNE_MASK]
        else:
            out[key] = value
    return out


@torch.no_grad()
def effective_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameters as an unpruned model of the same shape holds them.

    Under ``torch.nn.utils.prune`` the effective ``weight`` (``weight_orig * weight_mask``)
    replaces ``weight_orig``, so counts of parameters and of zeros are the same in either format.
    """
    named = dict(model.named_parameters())
    named.update((n, b) for n, b in model.named_buffers() if n.endswith(TORCH_PRUNE_MASK))
    return merge_torch_prune(named)


@dataclass(frozen=True)
class PrunableLayer:
    """A layer that can be pruned: its qualified name in the model and the module itself."""

    name: str
    module: nn.Module

    @property
    def weight(self) -> torch.Tensor:
        """The layer's weight parameter (``weight_orig`` while ``torch.nn.utils.prune`` owns it)."""
        return weight_parameter(self.module)

    @property
    def numel(self) -> int:
        """Number of weights in the layer."""
        return self.weight.numel()

    @property
    def kind(self) -> str:
        """The module's class name, e.g. ``Conv2d``."""
        return type(self.module).__name__


def _matches(name: str, module: nn.Module, selectors: Iterable[str | type[nn.Module]]) -> bool:
    for sel in selectors:
        if isinstance(sel, str):
            if fnmatch.fnmatchcase(name, sel):
                return True
        elif isinstance(module, sel):
            return True
    return False


def forward_order(model: nn.Module, example_input: torch.Tensor) -> list[str]:
    """Names of the modules in the order a forward pass on ``example_input`` (moved to the
    model's device) first calls them."""
    p = next(model.parameters(), None)
    if p is not None:
        example_input = example_input.to(p.device)
    order: list[str] = []
    handles = []
    for name, module in model.named_modules():
        if name:

            def hook(_m: nn.Module, _i: object, _o: object, name: str = name) -> None:
                if name not in order:
                    order.append(name)

            handles.append(module.register_forward_hook(hook))
    was_training = model.training
    try:
        model.eval()
        with torch.inference_mode():
            model(example_input)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return order


def prunable_layers(
    model: nn.Module,
    types: Sequence[type[nn.Module]] = DEFAULT_TYPES,
    include: Iterable[str | type[nn.Module]] | None = None,
    exclude: Iterable[str | type[nn.Module]] | None = None,
    example_input: torch.Tensor | None = None,
) -> list[PrunableLayer]:
    """Find the layers to prune.

    Args:
        model: any torch model.
        types: module types that are prunable (default ``Conv2d`` and ``Linear``).
        include: if given, only layers matching one of these name patterns (``fnmatch``, e.g.
            ``"layer1.*"``) or types are kept.
        exclude: layers matching one of these patterns or types are left dense, e.g.
            ``exclude=["conv1", "fc"]`` keeps ResNet's first conv and classifier dense.
        example_input: if given, layers are returned in forward (execution) order, measured with
            one forward pass; otherwise in registration order (the same for torchvision models).

    Raises:
        NoPrunableLayerError: when nothing is left to prune.
    """
    include = list(include) if include is not None else None
    exclude = list(exclude) if exclude is not None else []
    layers = []
    for name, module in model.named_modules():
        if not name or not isinstance(module, tuple(types)):
            continue
        if getattr(module, "weight", None) is None and not torch_pruned(module):
            continue
        if include is not None and not _matches(name, module, include):
            continue
        if _matches(name, module, exclude):
            continue
        layers.append(PrunableLayer(name, module))
    if not layers:
        kinds = ", ".join(t.__name__ for t in types)
        raise NoPrunableLayerError(
            f"{type(model).__name__} has no prunable layer: looked for modules of type {kinds}"
            f" (include={include}, exclude={exclude or None}). Pass `types=` with the layer types "
            "to prune, or loosen `include` / `exclude`."
        )
    if example_input is not None:
        rank = {n: i for i, n in enumerate(forward_order(model, example_input))}
        layers.sort(key=lambda layer: rank.get(layer.name, len(rank)))
    return layers

