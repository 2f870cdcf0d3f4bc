"""The :class:`Masker`: a model's dense weights and current masks, held through training.

It applies masks in place and restores the dense weights in place (fast: no deepcopy, no disk),
keeps masks applied during fine-tuning (:meth:`Masker.hold`: pruned weights stay exactly zero
under any optimiser), prunes the current (fine-tuned) weights further (``from_dense=False``:
iterative GMP, PuRL with fine-tuning) or relative to the weights that remain
(``relative_to="remaining"``: PuRL's later passes), and converts to and from
``torch.nn.utils.prune``. Which layers are prunable is :mod:`.layers`' business; which weights a
criterion keeps is :mod:`.criteria`'s; reports are in :mod:`.report`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import prune

from pruning_core.pruning.criteria import Masks, alpha_mask, global_magnitude_masks, ratio_mask
from pruning_core.pruning.layers import (
    DEFAULT_TYPES,
    TORCH_PRUNE_MASK,
    TORCH_PRUNE_ORIG,
    PrunableLayer,
    prunable_layers,
    torch_pruned,
)
from pruning_core.pruning.report import SparsityReport, sparsity_report

RelativeTo = Literal["dense", "remaining"]
"""What a layer-wise action is measured against: the dense layer, or the weights left in it."""


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

    The masks and the snapshot live on the model's device and follow it: a masker built on the
    CPU for a model that ``fit`` then moves to a GPU moves them there at its next use (one
    device comparison per call), so ``hold`` never multiplies CUDA weights by CPU masks.
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
        self._index_dense()
        self._dense_std: dict[str, torch.Tensor] = {}  # filled on first use by prune_alpha
        self._device = self._model_device()

    def _index_dense(self) -> None:
        self._dense_weights = {
            layer.name: self._dense[self._weight_key(layer)] for layer in self.layers
        }

    def _model_device(self) -> torch.device | None:
        return self.layers[0].weight.device if self.layers else None

    @torch.no_grad()
    def to(self, device: torch.device | str) -> Masker:
        """Move the masks and the dense snapshot to ``device`` (the model itself is moved by
        ``model.to``; the masker follows it on its own, so this is rarely needed)."""
        dev = torch.device(device)
        self._dense = {k: v.to(dev) for k, v in self._dense.items()}
        self._index_dense()
        self._dense_std = {k: v.to(dev) for k, v in self._dense_std.items()}
        self.masks = {k: v.to(dev) for k, v in self.masks.items()}
        self._device = dev
        return self

    def _follow(self) -> None:
        """Move masks and snapshot to where the model's weights are now, if they moved."""
        dev = self._model_device()
        if dev is not None and dev != self._device:
            self.to(dev)

    def _weight_key(self, layer: PrunableLayer) -> str:
        suffix = TORCH_PRUNE_ORIG if torch_pruned(layer.module) else "weight"
        return f"{layer.name}.{suffix}"

    def dense_weight(self, name: str) -> torch.Tensor:
        """The snapshot (dense) weight of layer ``name``."""
        self._follow()
        return self._dense_weights[name]

    @torch.no_grad()
    def restore(self, weights_only: bool = False) -> None:
        """Copy the dense state back in place and clear the masks.

        ``weights_only=True`` restores only the prunable weights (enough when nothing else was
        trained since the snapshot, and faster); otherwise every parameter and buffer.
        """
        self._follow()
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
        self._follow()
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
        self._follow()
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
        self.set_mask(target.name, alpha_mask(w, alpha, std), from_dense=from_dense)
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
        self._follow()
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
        self._follow()
        masks = {n: ratio_mask(w, sparsity) for n, w in self._dense_weights.items()}
        self.set_masks(masks)
        return masks

    @torch.no_grad()
    def apply(self) -> None:
        """Re-zero every pruned weight (cheap; called after each optimiser step by :meth:`hold`)."""
        self._follow()
        for name, mask in self.masks.items():
            self.by_name[name].weight.mul_(mask)

    @torch.no_grad()
    def mask_grads(self) -> None:
        """Zero the gradients of pruned weights."""
        self._follow()
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

    def report(self, example_input: torch.Tensor | None = None) -> SparsityReport:
        """:func:`~pruning_core.pruning.report.sparsity_report` over this masker's layers."""
        return sparsity_report(self.model, example_input, layers=self.layers)

    # --- torch.nn.utils.prune interop -------------------------------------------------------
    def export_torch_prune(self) -> None:
        """Re-parametrise masked layers the ``torch.nn.utils.prune`` way (``weight_orig`` + ``weight_mask``).

        Afterwards ``prune.is_pruned(model)`` is true and ``prune.remove(module, "weight")`` makes
        the zeros permanent. The unpruned values kept in ``weight_orig`` are the dense weights.
        """
        self._follow()
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
        self._follow()
        found: Masks = {}
        for layer in self.layers:
            module = layer.module
            if torch_pruned(module):
                found[layer.name] = getattr(module, TORCH_PRUNE_MASK).detach().bool().clone()
                if make_permanent:
                    prune.remove(module, "weight")
        self.masks.update(found)
        self.apply()
        return found

