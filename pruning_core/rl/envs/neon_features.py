"""NEON's observation: topology and weight / activation statistics of the network and of the
current layer, squashed into a fixed-size vector.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pruning_core.models.mlp import MLP
from pruning_core.pruning.neurons import (
    live_neurons,
)

__all__ = [
    "GLOBAL_FEATURES",
    "LAYER_FEATURES",
    "MAX_LAYERS",
    "OBS_DIM",
    "layer_features",
]


MAX_LAYERS = 10
"""Hidden-layer slots in the observation (deeper networks are refused)."""


STAT_NAMES = ("mean", "std", "skew", "kurtosis", "min", "max", "l1", "l2")


GLOBAL_FEATURES: tuple[str, ...] = (
    "C_log", "C_over_50", "pass_frac", "step_frac", "layer_frac", "depth_frac",
    "log_compression", "val_acc", "delta_pp", "slack_to_C", "log_params", "log_features",
    "classes_frac", "base_val_acc",
)  # fmt: skip
"""Names of the network-level observation features."""


LAYER_FEATURES: tuple[str, ...] = (
    "present", "current", "kept_share", "log_width", "log_in", "batchnorm", "dropout",
    "act_relu", "act_tanh", "act_other",
    *(f"w_{s}" for s in STAT_NAMES), *(f"a_{s}" for s in STAT_NAMES),
)  # fmt: skip
"""Names of the per-layer observation features (one block per slot, one for the current layer)."""


OBS_DIM = len(GLOBAL_FEATURES) + (MAX_LAYERS + 1) * len(LAYER_FEATURES)
"""Length of the observation vector."""


OBS_BOUND = 5.0


def _squash(x: float) -> float:
    """``sign(x) * log1p(|x|)``, clipped to the observation bound (NaN -> 0)."""
    if not math.isfinite(x):
        return 0.0 if math.isnan(x) else math.copysign(OBS_BOUND, x)
    return float(np.clip(math.copysign(math.log1p(abs(x)), x), -OBS_BOUND, OBS_BOUND))


def _moment_stats(v: torch.Tensor, dim: int) -> torch.Tensor:
    """Per-row (``dim=1``) or per-column (``dim=0``) mean, std, skew, kurtosis, min, max, L1, L2,
    then averaged over the other dimension: 8 numbers."""
    v = v.double()
    n = v.shape[dim]
    mean = v.mean(dim)
    cen = v - (mean.unsqueeze(dim))
    var = (cen**2).mean(dim)
    std = var.sqrt()
    safe = torch.where(std > 1e-12, std, torch.ones_like(std))
    skew = torch.where(std > 1e-12, (cen**3).mean(dim) / safe**3, torch.zeros_like(std))
    kurt = torch.where(std > 1e-12, (cen**4).mean(dim) / safe**4 - 3.0, torch.zeros_like(std))
    l1 = v.abs().sum(dim) / max(n, 1) ** 0.5  # scale-free in the fan-in (mean |v| * sqrt(n))
    l2 = v.pow(2).sum(dim).sqrt()
    stats = torch.stack([mean, std, skew, kurt, v.amin(dim), v.amax(dim), l1, l2])
    return stats.mean(dim=1)


@torch.no_grad()
def layer_features(
    model: MLP,
    layer: int,
    orig_width: int,
    current: bool,
    activations: torch.Tensor | None,
) -> np.ndarray:
    """The observation block of hidden layer ``layer`` (see :data:`LAYER_FEATURES`)."""
    block = model.blocks[layer]
    live = live_neurons(model, layer)
    width = len(live)
    w = block.linear.weight.detach()[live.to(block.linear.weight.device)]
    act_name = type(block.act).__name__.lower()
    topo = [
        1.0,
        1.0 if current else 0.0,
        width / max(orig_width, 1),
        math.log2(width + 1) / 10.0,
        math.log2(block.linear.in_features + 1) / 10.0,
        1.0 if block.bn is not None else 0.0,
        1.0 if block.dropout is not None else 0.0,
        1.0 if act_name == "relu" else 0.0,
        1.0 if act_name == "tanh" else 0.0,
        0.0 if act_name in ("relu", "tanh") else 1.0,
    ]
    wstats = [_squash(float(s)) for s in _moment_stats(w, dim=1)]
    if activations is not None:
        a = activations[:, live.to(activations.device)]
        astats = [_squash(float(s)) for s in _moment_stats(a.T, dim=1)]
    else:
        astats = [0.0] * len(STAT_NAMES)
    return np.asarray(topo + wstats + astats, dtype=np.float32)

