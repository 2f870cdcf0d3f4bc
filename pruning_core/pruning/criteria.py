"""Mask makers: which weights a criterion keeps. A mask is a boolean tensor shaped like the weight
(``True`` = kept). PuRL's threshold (``|w| >= alpha * std(w)``), exact ratios (``torch.kthvalue``,
ties broken exactly), neurons by incoming-weight L1 norm (NEON), and the magnitude baselines:
global (one threshold over every prunable weight, with a minimum kept per layer) and uniform.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pruning_core.pruning.layers import PrunableLayer

Masks = dict[str, torch.Tensor]
"""Layer name -> boolean mask shaped like that layer's weight (True = kept)."""


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
    return alpha_mask(weight, alpha, ref.detach().float().std())


def alpha_mask(weight: torch.Tensor, alpha: float, std: torch.Tensor) -> torch.Tensor:
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

