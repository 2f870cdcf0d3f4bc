"""What a pruning result is reported with: sparsity, parameter counts and theoretical FLOPs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from pruning_core.pruning.layers import PrunableLayer, effective_parameters, prunable_layers


@dataclass(frozen=True)
class SparsityReport:
    """What a pruning result is reported with: sparsity, parameters and theoretical FLOPs.

    FLOPs are multiply-accumulates of conv and linear layers for one input (the convention behind
    ResNet-50's "4.1 GFLOPs"); ``flops_nonzero`` counts only MACs with a nonzero weight.
    """

    per_layer: pd.DataFrame
    params_total: int
    params_nonzero: int
    params_prunable: int
    params_prunable_nonzero: int
    flops_dense: int
    flops_nonzero: int

    @property
    def sparsity_prunable(self) -> float:
        """Zero fraction of the prunable weights only (biases and batch-norm excluded)."""
        return 1.0 - self.params_prunable_nonzero / self.params_prunable

    @property
    def sparsity_total(self) -> float:
        """Zero fraction of every parameter of the model (biases and batch-norm included)."""
        return 1.0 - self.params_nonzero / self.params_total

    def as_dict(self) -> dict[str, float | int]:
        """The headline numbers as a flat dict (for JSON summaries and tables)."""
        return {
            "sparsity_prunable": self.sparsity_prunable,
            "sparsity_total": self.sparsity_total,
            "params_total": self.params_total,
            "params_nonzero": self.params_nonzero,
            "params_prunable": self.params_prunable,
            "params_prunable_nonzero": self.params_prunable_nonzero,
            "flops_dense": self.flops_dense,
            "flops_nonzero": self.flops_nonzero,
        }


def _conv_linear_macs(model: nn.Module, example_input: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Per conv/linear module: (dense MACs, nonzero-weight MACs) for one sample."""
    out: dict[str, tuple[int, int]] = {}
    handles = []

    def make_hook(name: str) -> Callable[[nn.Module, tuple, torch.Tensor], None]:
        def hook(m: nn.Module, _inp: tuple, output: torch.Tensor) -> None:
            w = m.weight
            nnz = int((w != 0).sum())
            if isinstance(m, nn.Conv2d):
                positions = output.shape[-1] * output.shape[-2]
            else:
                positions = output[0].numel() // m.out_features
            out[name] = (positions * w.numel(), positions * nnz)

        return hook

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_hook(make_hook(name)))
    was_training = model.training
    p = next(model.parameters(), None)
    x = example_input[:1] if p is None else example_input[:1].to(p.device)  # a CPU example, a GPU model
    try:
        model.eval()
        with torch.inference_mode():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return out


def sparsity_report(
    model: nn.Module,
    example_input: torch.Tensor | None = None,
    layers: Sequence[PrunableLayer] | None = None,
    include: Sequence[str | type[nn.Module]] | None = None,
    exclude: Sequence[str | type[nn.Module]] = (),
) -> SparsityReport:
    """Per-layer and total sparsity, parameter counts and (with an input) dense / nonzero FLOPs.

    "Prunable" means what it means to :class:`~pruning_core.pruning.masks.Masker`: the layers
    :func:`prunable_layers` returns for the same ``include`` / ``exclude`` (or ``layers``, e.g. a
    masker's), so the report and the masker count the same weights. Layers left dense by
    ``exclude`` still count in the whole-model totals (``params_total``).

    Args:
        model: the model, masked in place or exported with ``torch.nn.utils.prune``.
        example_input: one batch (only its first sample is used, moved to the model's device) to
            measure FLOPs; without it the FLOP columns are 0.
        layers: the prunable layers; default ``prunable_layers(model, include, exclude)``.
        include, exclude: name patterns or module types, as for :func:`prunable_layers`.
    """
    if layers is None:
        layers = prunable_layers(model, include=include, exclude=exclude)
    layers = list(layers)
    macs = _conv_linear_macs(model, example_input) if example_input is not None else {}
    rows = []
    for layer in layers:
        w = layer.module.weight  # the effective (masked) weight
        nnz = int((w != 0).sum())
        dense_f, nz_f = macs.get(layer.name, (0, 0))
        rows.append(
            {
                "layer": layer.name,
                "type": layer.kind,
                "shape": "x".join(map(str, w.shape)),
                "params": w.numel(),
                "nonzero": nnz,
                "sparsity": 1.0 - nnz / w.numel(),
                "flops_dense": dense_f,
                "flops_nonzero": nz_f,
            }
        )
    df = pd.DataFrame(rows)
    total = nonzero = 0
    for p in effective_parameters(model).values():  # weight, not weight_orig, when torch-pruned
        total += p.numel()
        nonzero += int((p != 0).sum())
    return SparsityReport(
        per_layer=df,
        params_total=total,
        params_nonzero=nonzero,
        params_prunable=int(df["params"].sum()),
        params_prunable_nonzero=int(df["nonzero"].sum()),
        flops_dense=sum(d for d, _ in macs.values()),
        flops_nonzero=sum(n for _, n in macs.values()),
    )

