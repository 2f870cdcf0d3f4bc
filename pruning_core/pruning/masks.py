"""The one masking API: prunable layers, magnitude masks, baselines, fine-tuning with fixed masks.

Everything in the repository prunes through this module:

* :func:`prunable_layers` finds the layers to prune (``Conv2d`` and ``Linear`` by default), with
  include / exclude by name pattern or type, optionally in forward (execution) order.
* Mask makers: :func:`threshold_mask` (PuRL's action, ``|w| >= alpha * std(w)`` kept) and
  :func:`ratio_mask` (an exact sparsity ratio via ``torch.kthvalue``).
* Neurons (structured): :func:`top_l1_neurons` picks a layer's output neurons with the largest
  L1 norm of incoming weights, :func:`neuron_mask` turns kept indices into a per-neuron mask
  (NEON's masking variant; removing neurons structurally is surgery, in
  :mod:`pruning_core.pruning.neurons`).
* Baselines: :func:`global_magnitude_masks` (one threshold over all prunable weights, with an
  optional minimum kept per layer against layer collapse) and :func:`uniform_magnitude_masks`.
* :class:`Masker` holds a model's dense weights and current masks: it applies masks in place,
  restores the dense weights in place (fast, no deepcopy, no disk), keeps masks applied during
  fine-tuning (:meth:`Masker.hold`), prunes the current (fine-tuned) weights further
  (``from_dense=False``: iterative GMP, PuRL with fine-tuning) or relative to the weights that
  remain (``relative_to="remaining"``: PuRL's later passes), and converts to and from
  ``torch.nn.utils.prune``.
* ``torch.nn.utils.prune``'s format (``weight_orig`` + ``weight_mask``) is read here only:
  :func:`torch_pruned`, :func:`weight_parameter`, :func:`merge_torch_prune` and
  :func:`effective_parameters`, used by the exports and reports.
* :func:`sparsity_report` counts sparsity (prunable layers and whole model), parameters and
  theoretical FLOPs (dense and nonzero) of conv / linear layers.

A mask is a boolean tensor shaped like the weight: ``True`` = kept, ``False`` = pruned.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import prune

DEFAULT_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)
"""Layer types pruned by default: convolutions and fully-connected layers."""


Masks = dict[str, torch.Tensor]
"""Layer name -> boolean mask shaped like that layer's weight (True = kept)."""

RelativeTo = Literal["dense", "remaining"]
"""What a layer-wise action is measured against: the dense layer, or the weights left in it."""


class NoPrunableLayerError(ValueError):
    """Raised when a model has no layer that the chosen selection can prune."""


# --- torch.nn.utils.prune's format: weight = weight_orig * weight_mask --------------------------
_ORIG = "weight_orig"
_MASK = "weight_mask"


def torch_pruned(module: nn.Module) -> bool:
    """Whether ``torch.nn.utils.prune`` re-parametrises the module's weight.

    Its format: the trainable values in ``weight_orig`` (a parameter), the mask in ``weight_mask``
    (a buffer), and ``weight`` recomputed as their product before every forward pass. Looked up
    in the module's registries rather than by ``hasattr``, which raises and catches an
    ``AttributeError`` for every unpruned layer (PuRL's step reads layer weights often).
    """
    return _ORIG in module._parameters and _MASK in module._buffers


def weight_parameter(module: nn.Module) -> torch.Tensor:
    """The tensor an optimiser trains as the module's weight: ``weight_orig`` under
    ``torch.nn.utils.prune``, else ``weight``."""
    return getattr(module, _ORIG) if torch_pruned(module) else module.weight


def merge_torch_prune(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Named tensors (e.g. a state_dict) with ``torch.nn.utils.prune``'s pairs folded into plain
    weights.

    Each ``<prefix>weight_orig`` becomes ``<prefix>weight = weight_orig * weight_mask`` in its
    place, and ``<prefix>weight_mask`` is dropped; every other entry is passed through (not
    copied). The result loads into an unmodified model.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if key.endswith(_MASK):
            continue
        if key.endswith(_ORIG):
            prefix = key[: -len(_ORIG)]
            out[prefix + "weight"] = value * tensors[prefix + _MASK]
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
    named.update((n, b) for n, b in model.named_buffers() if n.endswith(_MASK))
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
    """Names of the modules in the order a forward pass on ``example_input`` first calls them."""
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


def _check_sparsity(sparsity: float) -> float:
    sparsity = float(sparsity)
    if not (0.0 <= sparsity < 1.0) or sparsity != sparsity:
        raise ValueError(
            f"sparsity must lie in [0, 1): got {sparsity}. It is the fraction of weights set to "
            "zero; 1.0 would remove every weight of the layer."
        )
    return sparsity


def threshold_mask(
    weight: torch.Tensor, alpha: float, reference: torch.Tensor | None = None
) -> torch.Tensor:
    """PuRL's action: prune weights with ``|w| < alpha * std(reference)`` (Han et al. 2015).

    ``reference`` defaults to ``weight``; PuRL measures the standard deviation on the dense layer.
    ``alpha = 0`` keeps everything.
    """
    ref = weight if reference is None else reference
    return _alpha_mask(weight, alpha, ref.detach().float().std())


def _alpha_mask(weight: torch.Tensor, alpha: float, std: torch.Tensor) -> torch.Tensor:
    """``|weight| >= alpha * std`` for a standard deviation already measured (and cached)."""
    alpha = float(alpha)
    if not alpha >= 0.0:
        raise ValueError(f"alpha must be >= 0 (a multiple of the layer's weight std): got {alpha}.")
    return weight.detach().abs() >= alpha * std


def ratio_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune exactly ``round(sparsity * numel)`` weights of smallest magnitude.

    The threshold comes from ``torch.kthvalue``; ties at the threshold are broken by position
    (the later ones are kept), so the count is exact even with repeated magnitudes.
    """
    sparsity = _check_sparsity(sparsity)
    flat = weight.detach().abs().flatten()
    k = round(sparsity * flat.numel())
    return _prune_k_smallest(flat, k).view_as(weight)


def _prune_k_smallest(flat: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean keep-mask of ``flat`` with exactly the ``k`` smallest values pruned."""
    if k <= 0:
        return torch.ones_like(flat, dtype=torch.bool)
    if k >= flat.numel():
        return torch.zeros_like(flat, dtype=torch.bool)
    thr = flat.float().kthvalue(k).values
    keep = flat > thr
    surplus = int((~keep).sum()) - k  # tied values at the threshold pruned beyond k
    if surplus > 0:
        tied = (flat == thr).nonzero().flatten()
        keep[tied[-surplus:]] = True
    return keep


def top_l1_neurons(
    weight: torch.Tensor,
    k: int,
    live: torch.Tensor | None = None,
    live_inputs: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sorted indices of the ``k`` output neurons (dim 0 of ``weight``) whose incoming weights
    have the largest L1 norm: NEON's ranking, the structured counterpart of :func:`ratio_mask`.

    ``live`` restricts the candidates (default: every neuron), ``live_inputs`` the input columns
    counted (default: all; masked inputs carry nothing). ``k`` is clamped to ``[1, len(live)]``.
    Indices are on the CPU.
    """
    w = weight.detach().abs().cpu()
    if live is None:
        live = torch.arange(w.shape[0])
    if live_inputs is not None:
        w = w[:, live_inputs]
    k = max(1, min(int(k), len(live)))
    scores = w.flatten(1).sum(dim=1)[live]
    top = torch.topk(scores, k, largest=True, sorted=False).indices
    return live[top].sort().values


def neuron_mask(
    weight: torch.Tensor,
    keep: torch.Tensor | Sequence[int],
    previous: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean mask over a layer's output neurons (dim 0 of ``weight``): True for ``keep``.

    ``previous`` (an earlier neuron mask, boolean or 0/1) is composed with it, so a masked neuron
    stays masked. A neuron mask multiplies the layer's *outputs* (after any activation), which a
    mask on the weights cannot express (``sigmoid(0) != 0``).

    Raises:
        ValueError: ``keep`` is empty or holds an index outside ``[0, weight.shape[0])``.
    """
    width = weight.shape[0]
    idx = torch.as_tensor(keep, dtype=torch.long).flatten().to(weight.device)
    if idx.numel() == 0:
        raise ValueError("cannot mask every neuron of a layer: keep at least one")
    if int(idx.min()) < 0 or int(idx.max()) >= width:
        raise ValueError(f"neuron indices to keep must lie in [0, {width})")
    mask = torch.zeros(width, dtype=torch.bool, device=weight.device)
    mask[idx] = True
    if previous is not None:
        mask &= previous.to(mask.device) != 0
    return mask


def _min_keep_count(min_keep: int | float, numel: int) -> int:
    if isinstance(min_keep, float) and 0.0 < min_keep < 1.0:
        return max(1, round(min_keep * numel))
    return min(int(min_keep), numel)


def global_magnitude_masks(
    layers: Sequence[PrunableLayer],
    sparsity: float,
    min_keep: int | float = 0,
) -> Masks:
    """Global magnitude pruning (GMP): one magnitude threshold over all prunable weights.

    Exactly ``round(sparsity * total)`` weights are pruned. ``min_keep`` (a count, or a fraction
    of each layer when a float in (0, 1)) keeps at least that many of each layer's largest
    weights, so no layer collapses; the budget they keep is taken from the other layers, and the
    total sparsity stays exact. With ``min_keep=0`` the masks equal
    ``prune.global_unstructured(..., pruning_method=prune.L1Unstructured, amount=sparsity)``.
    """
    sparsity = _check_sparsity(sparsity)
    weights = {layer.name: layer.weight.detach().abs().flatten() for layer in layers}
    total = sum(w.numel() for w in weights.values())
    k_total = round(sparsity * total)
    masks: Masks = {}
    free = dict(weights)
    budget = k_total
    while free:
        flat = torch.cat(list(free.values()))
        keep = _prune_k_smallest(flat, budget)
        chunks = dict(zip(free, keep.split([w.numel() for w in free.values()]), strict=True))
        collapsed = [
            n for n, c in chunks.items() if int(c.sum()) < _min_keep_count(min_keep, c.numel())
        ]
        if not collapsed:
            masks.update(chunks)
            break
        for n in collapsed:  # pin these layers at their minimum and re-split the budget
            w = free.pop(n)
            n_keep = _min_keep_count(min_keep, w.numel())
            masks[n] = _prune_k_smallest(w, w.numel() - n_keep)
            budget -= w.numel() - n_keep
        budget = max(budget, 0)
    return {layer.name: masks[layer.name].view_as(layer.weight) for layer in layers}


def uniform_magnitude_masks(layers: Sequence[PrunableLayer], sparsity: float) -> Masks:
    """Uniform layer-wise magnitude pruning: the same sparsity ratio in every layer."""
    return {layer.name: ratio_mask(layer.weight, sparsity) for layer in layers}


def random_masks(
    layers: Sequence[PrunableLayer], sparsity: float, generator: torch.Generator | None = None
) -> Masks:
    """Random unstructured pruning at a uniform ratio: a floor any method should beat."""
    sparsity = _check_sparsity(sparsity)
    out = {}
    for layer in layers:
        scores = torch.rand(layer.weight.shape, generator=generator)
        out[layer.name] = ratio_mask(scores, sparsity)
    return out


class MaskHold:
    """Hooks that keep pruned weights at exactly zero while an optimiser trains the model.

    Gradients of pruned weights are zeroed before each step (so momentum buffers and Adam
    moments never build up for them) and the masks are re-applied after each step (so weight
    decay or any other update cannot revive them). Call :meth:`remove` to detach.
    """

    def __init__(self, masker: Masker, optimizer: torch.optim.Optimizer) -> None:
        self._masker = masker

        def before(_opt: torch.optim.Optimizer, _a: object, _k: object) -> None:
            masker.mask_grads()

        def after(_opt: torch.optim.Optimizer, _a: object, _k: object) -> None:
            masker.apply()

        self._handles = [
            optimizer.register_step_pre_hook(before),
            optimizer.register_step_post_hook(after),
        ]

    def remove(self) -> None:
        """Stop holding the masks."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> MaskHold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


@dataclass(frozen=True)
class _DenseView:
    """A stand-in for :class:`PrunableLayer` over a detached weight tensor."""

    name: str
    weight: torch.Tensor


class Masker:
    """A model's prunable layers, a snapshot of its dense state, and the current masks.

    The snapshot is taken once at construction (or by :meth:`snapshot`); :meth:`restore` copies
    it back in place, which is what an RL environment does at every ``reset()``: no deepcopy of
    the model and no disk round trip.
    """

    def __init__(
        self,
        model: nn.Module,
        types: Sequence[type[nn.Module]] = DEFAULT_TYPES,
        include: Iterable[str | type[nn.Module]] | None = None,
        exclude: Iterable[str | type[nn.Module]] | None = None,
        example_input: torch.Tensor | None = None,
        layers: Sequence[PrunableLayer] | None = None,
    ) -> None:
        self.model = model
        self.layers: list[PrunableLayer] = (
            list(layers)
            if layers is not None
            else prunable_layers(model, types, include, exclude, example_input)
        )
        self.by_name = {layer.name: layer for layer in self.layers}
        self.masks: Masks = {}
        self._dense: dict[str, torch.Tensor] = {}
        self.snapshot()

    # --- dense state -----------------------------------------------------------------------
    def snapshot(self) -> None:
        """Remember the model's current parameters and buffers as its dense state."""
        with torch.no_grad():
            self._dense = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self._dense_weights = {
            layer.name: self._dense[self._weight_key(layer)] for layer in self.layers
        }
        self._dense_std: dict[str, torch.Tensor] = {}  # filled on first use by prune_alpha

    def _weight_key(self, layer: PrunableLayer) -> str:
        suffix = _ORIG if torch_pruned(layer.module) else "weight"
        return f"{layer.name}.{suffix}"

    def dense_weight(self, name: str) -> torch.Tensor:
        """The snapshot (dense) weight of layer ``name``."""
        return self._dense_weights[name]

    @torch.no_grad()
    def restore(self, weights_only: bool = False) -> None:
        """Copy the dense state back in place and clear the masks.

        ``weights_only=True`` restores only the prunable weights (enough when nothing else was
        trained since the snapshot, and faster); otherwise every parameter and buffer.
        """
        if weights_only:
            for layer in self.layers:
                layer.weight.copy_(self._dense_weights[layer.name])
        else:
            state = self.model.state_dict()
            for k, v in self._dense.items():
                state[k].copy_(v)
        self.masks = {}

    # --- masks -----------------------------------------------------------------------------
    def _layer(self, name_or_index: str | int) -> PrunableLayer:
        if isinstance(name_or_index, int):
            if not 0 <= name_or_index < len(self.layers):
                raise IndexError(
                    f"layer index {name_or_index} out of range: the model has "
                    f"{len(self.layers)} prunable layers (0..{len(self.layers) - 1})."
                )
            return self.layers[name_or_index]
        try:
            return self.by_name[name_or_index]
        except KeyError:
            raise KeyError(
                f"{name_or_index!r} is not a prunable layer; known: {list(self.by_name)[:8]}..."
            ) from None

    @torch.no_grad()
    def set_mask(self, layer: str | int, mask: torch.Tensor, from_dense: bool = True) -> None:
        """Give one layer a mask and apply it in place.

        ``from_dense=True`` writes ``dense * mask`` (the mask replaces any earlier one);
        ``False`` multiplies the current weights (the mask composes with earlier pruning).
        """
        target = self._layer(layer)
        weight = target.weight  # read once: a property, and PuRL's step calls this often
        if mask.shape != weight.shape:
            raise ValueError(
                f"mask for {target.name} has shape {tuple(mask.shape)}, weight has "
                f"{tuple(weight.shape)}"
            )
        mask = mask.to(device=weight.device, dtype=torch.bool)
        if from_dense:
            weight.copy_(self._dense_weights[target.name].to(weight.device))
        elif target.name in self.masks:
            mask = mask & self.masks[target.name]
        self.masks[target.name] = mask
        weight.mul_(mask)

    def set_masks(self, masks: Mapping[str, torch.Tensor], from_dense: bool = True) -> None:
        """Apply several masks at once (layer name -> mask)."""
        for name, mask in masks.items():
            self.set_mask(name, mask, from_dense=from_dense)

    def _source(
        self, target: PrunableLayer, relative_to: RelativeTo, from_dense: bool
    ) -> torch.Tensor:
        """The weights a layer-wise action thresholds (detached, so no autograd graph is built):
        the dense snapshot, or the current ones."""
        if relative_to not in ("dense", "remaining"):
            raise ValueError(f"relative_to must be 'dense' or 'remaining': got {relative_to!r}.")
        if relative_to == "remaining" and from_dense:
            raise ValueError(
                "relative_to='remaining' prunes what is left of the current weights: "
                "pass from_dense=False."
            )
        return self._dense_weights[target.name] if from_dense else target.weight.detach()

    def prune_alpha(
        self,
        layer: str | int,
        alpha: float,
        relative_to: RelativeTo = "dense",
        from_dense: bool = True,
    ) -> torch.Tensor:
        """PuRL's action on one layer: prune ``|w| < alpha * std``; returns the layer's mask now.

        ``relative_to="dense"``: ``std`` of the dense (snapshot) layer, PuRL's first visit (cached,
        so repeated actions do not recompute it). ``"remaining"``: ``std`` of the layer's nonzero
        weights now, a later visit pruning relative to what is left (a layer with fewer than two
        left is left as it is). ``from_dense=True`` thresholds the dense weights and replaces any
        earlier mask; ``False`` thresholds the current weights (fine-tuned values are kept) and
        composes with the earlier mask, so pruned weights stay pruned.
        """
        target = self._layer(layer)
        w = self._source(target, relative_to, from_dense)
        if relative_to == "dense":
            std = self._dense_std.get(target.name)
            if std is None:
                std = self._dense_weights[target.name].float().std()
                self._dense_std[target.name] = std
        else:
            remaining = w[w != 0]
            if remaining.numel() < 2:
                return self.masks.get(target.name, torch.ones_like(w, dtype=torch.bool))
            std = remaining.float().std()
        self.set_mask(target.name, _alpha_mask(w, alpha, std), from_dense=from_dense)
        return self.masks[target.name]

    def prune_ratio(
        self,
        layer: str | int,
        sparsity: float,
        relative_to: RelativeTo = "dense",
        from_dense: bool = True,
    ) -> torch.Tensor:
        """Prune an exact share of one layer by magnitude; returns the layer's mask now.

        ``relative_to="dense"``: ``round(sparsity * numel)`` of the layer's weights are pruned;
        ``"remaining"``: that share of its nonzero weights now (ratios ``r1`` then ``r2`` leave
        sparsity ``1 - (1 - r1)(1 - r2)``). ``from_dense`` as in :meth:`prune_alpha`.
        """
        target = self._layer(layer)
        w = self._source(target, relative_to, from_dense)
        if relative_to == "dense":
            mask = ratio_mask(w, sparsity)
        else:
            keep = w != 0
            mask = keep.clone()
            mask[keep] = ratio_mask(w[keep], sparsity)
        self.set_mask(target.name, mask, from_dense=from_dense)
        return self.masks[target.name]

    def global_magnitude(
        self, sparsity: float, min_keep: int | float = 0, from_dense: bool = True
    ) -> Masks:
        """Apply global magnitude pruning (see :func:`global_magnitude_masks`); returns the masks.

        ``from_dense=True`` ranks the dense weights and replaces earlier masks; ``False`` ranks the
        current (e.g. fine-tuned) weights and composes with earlier masks: iterative GMP with
        retraining, where ``sparsity`` is still that of all prunable weights.
        """
        layers = (
            [_DenseView(layer.name, self._dense_weights[layer.name]) for layer in self.layers]
            if from_dense
            else self.layers
        )
        masks = global_magnitude_masks(layers, sparsity, min_keep)  # type: ignore[arg-type]
        self.set_masks(masks, from_dense=from_dense)
        return {name: self.masks[name] for name in masks}

    def uniform(self, sparsity: float) -> Masks:
        """Apply uniform layer-wise magnitude pruning to the dense weights."""
        masks = {n: ratio_mask(w, sparsity) for n, w in self._dense_weights.items()}
        self.set_masks(masks)
        return masks

    @torch.no_grad()
    def apply(self) -> None:
        """Re-zero every pruned weight (cheap; called after each optimiser step by :meth:`hold`)."""
        for name, mask in self.masks.items():
            self.by_name[name].weight.mul_(mask)

    @torch.no_grad()
    def mask_grads(self) -> None:
        """Zero the gradients of pruned weights."""
        for name, mask in self.masks.items():
            g = self.by_name[name].weight.grad
            if g is not None:
                g.mul_(mask)

    def hold(self, optimizer: torch.optim.Optimizer) -> MaskHold:
        """Keep the masks applied through every step of ``optimizer``; returns a removable handle."""
        self.apply()
        return MaskHold(self, optimizer)

    def layer_sparsity(self) -> dict[str, float]:
        """Fraction of exactly-zero weights in each prunable layer (measured, not from masks)."""
        return {layer.name: float((layer.weight == 0).sum()) / layer.numel for layer in self.layers}

    def sparsity(self) -> float:
        """Fraction of exactly-zero weights over all prunable layers."""
        zeros = sum(int((layer.weight == 0).sum()) for layer in self.layers)
        return zeros / sum(layer.numel for layer in self.layers)

    # --- torch.nn.utils.prune interop -------------------------------------------------------
    def export_torch_prune(self) -> None:
        """Re-parametrise masked layers the ``torch.nn.utils.prune`` way (``weight_orig`` + ``weight_mask``).

        Afterwards ``prune.is_pruned(model)`` is true and ``prune.remove(module, "weight")`` makes
        the zeros permanent. The unpruned values kept in ``weight_orig`` are the dense weights.
        """
        for name, mask in self.masks.items():
            module = self.by_name[name].module
            if torch_pruned(module):
                prune.remove(module, "weight")
            with torch.no_grad():
                module.weight.copy_(self._dense_weights[name])
            prune.custom_from_mask(module, "weight", mask)

    def import_torch_prune(self, make_permanent: bool = True) -> Masks:
        """Read the masks of layers pruned with ``torch.nn.utils.prune`` into this masker.

        With ``make_permanent`` the re-parametrisation is removed (``prune.remove``) so that the
        layer holds plain zeroed weights again and this masker owns the masks.
        """
        found: Masks = {}
        for layer in self.layers:
            module = layer.module
            if torch_pruned(module):
                found[layer.name] = getattr(module, _MASK).detach().bool().clone()
                if make_permanent:
                    prune.remove(module, "weight")
        self.masks.update(found)
        self.apply()
        return found

