"""PuRL's state: per-layer descriptors and the observation features, and PuRL's action grids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from pruning_core.pruning.criteria import threshold_mask
from pruning_core.pruning.layers import PrunableLayer

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_RATIOS",
    "FEATURE_NAMES",
    "FEATURE_SETS",
    "alpha_sparsity_table",
    "feature_table",
    "layer_descriptors",
]


DEFAULT_ALPHAS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(23))
"""PuRL's 23 thresholds 0.0, 0.1, ..., 2.2 (multiples of the dense layer's weight std)."""


DEFAULT_RATIOS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(20))
"""The default sparsity-ratio grid 0.0, 0.05, ..., 0.95 of ``action_space="ratio"``."""


FEATURE_NAMES: tuple[str, ...] = (
    "position",
    "pass",
    "is_conv",
    "is_depthwise",
    "is_linear",
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "param_share",
    "param_count",
    "remaining_share",
    "weight_std",
    "weight_mean_abs",
    "weight_kurtosis",
    "layer_sparsity",
    "layer_density",
    "sparsity",
    "accuracy",
    "prev_action",
)
"""Every observation feature, in order (all in [0, 1] except ``accuracy`` in [0, 2]).

* ``position``: layer index / (number of layers - 1); ``pass``: visit / (passes - 1).
* ``is_conv`` / ``is_depthwise`` / ``is_linear``: one-hot layer type (depthwise = a conv with
  ``groups == in_channels > 1``).
* ``in_channels``, ``out_channels``: ``log2(c) / log2(max c)`` over the network's layers (features
  for ``Linear``); ``kernel_size``, ``stride``: divided by the network's largest.
* ``param_share``: the layer's share of all prunable weights; ``param_count``:
  ``log(numel) / log(max numel)``; ``remaining_share``: share of the prunable weights in the
  layers after this one in the current pass (how much sparsity is still reachable).
* ``weight_std``: dense std / the largest layer std; ``weight_mean_abs``: mean |w| / rms(w)
  (0.80 for a Gaussian); ``weight_kurtosis``: Pearson kurtosis ``k`` mapped to ``k / (k + 3)``
  (0.5 for a Gaussian, 0.375 for a uniform). All three from the dense weights as given.
* ``layer_sparsity`` / ``layer_density``: this layer's sparsity so far (nonzero only on later
  visits) and 1 minus it; ``sparsity``: sparsity of all prunable weights so far.
* ``accuracy``: validation accuracy after the previous step / dense accuracy (1 at reset).
* ``prev_action``: index of the previous action / (number of actions - 1); 0 at reset.
"""


FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "full": FEATURE_NAMES,
    "qlp": ("position", "layer_density"),
    "no_accuracy": tuple(n for n in FEATURE_NAMES if n != "accuracy"),
}
"""Named feature subsets: ``full``; ``qlp`` (QLP's state: layer index and layer density only);
``no_accuracy`` (everything but the accuracy so far, for the state ablation)."""


def resolve_features(features: str | Sequence[str]) -> tuple[str, ...]:
    """Feature names of a preset (``full`` / ``qlp`` / ``no_accuracy``) or an explicit tuple."""
    if isinstance(features, str):
        if features not in FEATURE_SETS:
            raise ValueError(
                f"unknown feature set {features!r}: use one of {list(FEATURE_SETS)} or a tuple of "
                f"names from FEATURE_NAMES."
            )
        return FEATURE_SETS[features]
    names = tuple(features)
    unknown = [n for n in names if n not in FEATURE_NAMES]
    if unknown or not names:
        raise ValueError(
            f"unknown feature names {unknown} (or none given); known: {FEATURE_NAMES}."
        )
    return names


def _layer_kind(module: nn.Module) -> str:
    if isinstance(module, nn.modules.conv._ConvNd):
        if module.groups > 1 and module.groups == module.in_channels:
            return "depthwise"
        return "conv"
    return "linear"


def _pair_max(v: int | tuple[int, ...]) -> int:
    return int(max(v)) if isinstance(v, tuple) else int(v)


@torch.no_grad()
def layer_descriptors(layers: Sequence[PrunableLayer]) -> pd.DataFrame:
    """Raw descriptors of the prunable layers: type, channels, kernel, stride, size, weight stats.

    One row per layer in the given order. Weight statistics are of the weights as they are now
    (for an environment: the dense weights it was built from).
    """
    rows = []
    for i, layer in enumerate(layers):
        m = layer.module
        w = layer.weight.detach().double().flatten()
        kind = _layer_kind(m)
        if isinstance(m, nn.modules.conv._ConvNd):
            c_in, c_out = m.in_channels, m.out_channels
            k, s = _pair_max(m.kernel_size), _pair_max(m.stride)
        else:
            c_in = int(getattr(m, "in_features", w.numel()))
            c_out = int(getattr(m, "out_features", 1))
            k = s = 1
        std = float(w.std()) if w.numel() > 1 else 0.0
        rms = float(w.pow(2).mean().sqrt())
        centred = w - w.mean()
        var = float(centred.pow(2).mean())
        kurt = float(centred.pow(4).mean()) / var**2 if var > 0 else 3.0
        rows.append(
            {
                "index": i,
                "layer": layer.name,
                "type": kind,
                "in_channels": int(c_in),
                "out_channels": int(c_out),
                "kernel_size": k,
                "stride": s,
                "params": int(w.numel()),
                "weight_std": std,
                "weight_mean_abs": float(w.abs().mean()),
                "weight_rms": rms,
                "weight_kurtosis": kurt,
                "zeros": int((w == 0).sum()),
            }
        )
    return pd.DataFrame(rows)


def _log_ratio(values: np.ndarray) -> np.ndarray:
    top = float(np.log2(max(values.max(), 1)))
    return np.log2(np.maximum(values, 1)) / top if top > 0 else np.zeros_like(values, float)


def static_features(desc: pd.DataFrame) -> pd.DataFrame:
    """The normalised per-layer features that do not change during an episode (see FEATURE_NAMES)."""
    n = len(desc)
    params = desc["params"].to_numpy(float)
    total = params.sum()
    after = (total - np.cumsum(params)) / total
    out = pd.DataFrame(index=desc.index)
    out["position"] = np.arange(n) / max(n - 1, 1)
    out["is_conv"] = (desc["type"] == "conv").astype(float)
    out["is_depthwise"] = (desc["type"] == "depthwise").astype(float)
    out["is_linear"] = (desc["type"] == "linear").astype(float)
    out["in_channels"] = _log_ratio(desc["in_channels"].to_numpy(float))
    out["out_channels"] = _log_ratio(desc["out_channels"].to_numpy(float))
    out["kernel_size"] = desc["kernel_size"] / desc["kernel_size"].max()
    out["stride"] = desc["stride"] / desc["stride"].max()
    out["param_share"] = params / total
    top = math.log(params.max())
    out["param_count"] = np.log(params) / top if top > 0 else 0.0
    out["remaining_share"] = after
    std_max = desc["weight_std"].max()
    out["weight_std"] = desc["weight_std"] / std_max if std_max > 0 else 0.0
    rms = desc["weight_rms"].replace(0.0, np.nan)
    out["weight_mean_abs"] = (desc["weight_mean_abs"] / rms).fillna(0.0)
    k = desc["weight_kurtosis"]
    out["weight_kurtosis"] = k / (k + 3.0)
    return out.clip(0.0, 1.0).astype(float)


def feature_table(desc: pd.DataFrame) -> pd.DataFrame:
    """Descriptors plus their normalised static features as ``f_<name>`` columns."""
    return pd.concat([desc, static_features(desc).add_prefix("f_")], axis=1)


def alpha_sparsity_table(
    layers: Sequence[PrunableLayer], alphas: Sequence[float] = DEFAULT_ALPHAS
) -> pd.DataFrame:
    """Sparsity each alpha action gives each layer, measured, next to the Gaussian prediction.

    For weights ``w ~ N(0, s^2)`` the share with ``|w| < alpha * s`` is ``erf(alpha / sqrt 2)``
    (column ``gaussian``); layers far from Gaussian (e.g. uniform initialisation, where it is
    ``alpha / sqrt 3``) deviate from it.
    """
    rows = []
    for i, layer in enumerate(layers):
        w = layer.weight.detach().float()
        kind = _layer_kind(layer.module)
        for a in alphas:
            rows.append(
                {
                    "index": i,
                    "layer": layer.name,
                    "type": kind,
                    "alpha": float(a),
                    "sparsity": float((~threshold_mask(w, a)).float().mean()),
                    "gaussian": math.erf(float(a) / math.sqrt(2.0)),
                }
            )
    return pd.DataFrame(rows)

