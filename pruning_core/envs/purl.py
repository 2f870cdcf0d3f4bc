"""PuRL's pruning MDP as a gymnasium environment (Gupta et al. 2020).

One **step** prunes one prunable layer (``Conv2d`` / ``Linear``), in forward order; one
**episode** is one pass over the layers (``passes > 1``: a QLP-style variant that visits every
layer several times and prunes it further at each visit). After every step the environment
measures the accuracy ``A`` of the partly pruned network on a fixed validation subset (held out
of the training data, never the test split) and the sparsity ``S`` of all prunable weights so
far, and pays PuRL's shaped reward (:func:`pruning_core.rewards.purl_reward`), or, with
``reward_mode="episodic"``, 0 until the last step (AMC-style).

Actions (``Discrete``):

* ``action_space="alpha"`` (default, PuRL): 23 thresholds ``alpha in {0.0, 0.1, ..., 2.2}``;
  the layer loses every weight with ``|w| < alpha * std(w)``, ``std`` of the *dense* layer.
* ``action_space="ratio"``: a grid of explicit sparsity ratios (``ratios``), pruned by magnitude
  with exact counts.

Later visits (``passes > 1``) prune **relative to the weights that remain**: an alpha action
removes remaining weights with ``|w| < alpha * std(remaining nonzero weights)``, a ratio action
removes that fraction of the remaining weights (so after ratios ``r1`` then ``r2`` a layer has
sparsity ``1 - (1 - r1)(1 - r2)``). Masks only ever grow (pruned weights stay pruned), which is
QLP's "prune a little at each visit" without ever reviving a weight.

Speed: a reward costs one evaluation of the validation subset. The environment keeps the
tensors preloaded on the model's device, evaluates under ``torch.inference_mode``, restores the
dense weights in place at ``reset()`` and, when nothing is fine-tuned between steps, reuses the
already-final prefix of the network through a :class:`PrefixCache` (activations entering the
stage that holds the next layer to prune), so a step runs only the suffix of the network.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from pruning_core.agents.dqn import DQNConfig
from pruning_core.config import by_profile, cache_root, seed_everything
from pruning_core.masking import Masker, PrunableLayer, prunable_layers, ratio_mask
from pruning_core.results import cached, config_hash
from pruning_core.rewards import REWARD_MODES, purl_step_reward
from pruning_core.train import TrainConfig, fit

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_RATIOS",
    "DenseModel",
    "FEATURE_NAMES",
    "FEATURE_SETS",
    "MdpDesignSizes",
    "PrefixCache",
    "PuRLConfig",
    "PuRLEnv",
    "alpha_sparsity_table",
    "dense_digits_cnn",
    "feature_table",
    "layer_descriptors",
    "mdp_design_sizes",
    "sequential_modules",
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

_ACCURACY_HIGH = 2.0


@dataclass(frozen=True)
class PuRLConfig:
    """Everything that defines the PuRL MDP (the model and data are given separately)."""

    action_space: str = "alpha"
    """``alpha``: prune ``|w| < alpha * std(dense w)`` (PuRL); ``ratio``: prune an exact fraction."""
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    """Action grid of ``action_space="alpha"`` (multiples of the layer's weight std, >= 0)."""
    ratios: tuple[float, ...] = DEFAULT_RATIOS
    """Action grid of ``action_space="ratio"`` (sparsity ratios in [0, 1))."""
    passes: int = 1
    """Visits of every layer per episode; > 1 prunes further at each visit (QLP-style)."""
    target_accuracy: float | None = None
    """``A*``, a fraction in (0, 1]; ``None`` uses the dense network's validation accuracy."""
    target_sparsity: float = 0.8
    """``S*``, the sparsity of all prunable weights the reward asks for."""
    beta: float = 5.0
    """Scale of the reward (PuRL: 5)."""
    reward_mode: str = "step"
    """``step``: reward after every step (PuRL); ``episodic``: 0 until the last step (AMC-style)."""
    features: str | tuple[str, ...] = "full"
    """Observation features: a name in ``FEATURE_SETS`` or a tuple of names from ``FEATURE_NAMES``."""
    include: tuple[str, ...] | None = None
    """Only layers whose name matches one of these ``fnmatch`` patterns are pruned (None: all)."""
    exclude: tuple[str, ...] = ()
    """Layers whose name matches one of these patterns stay dense (e.g. ``("conv1", "fc")``)."""
    finetune_steps: int = 0
    """Mini-batches of SGD on the training data after each step, masks held (0: none, PuRL)."""
    finetune_lr: float = 0.01
    """Learning rate of that brief fine-tuning (SGD, momentum 0.9)."""
    finetune_batch_size: int = 64
    """Mini-batch size of that brief fine-tuning."""
    eval_batch_size: int = 1024
    """Batch size of the validation evaluation (the whole subset at once when it fits)."""
    prefix_cache: bool = True
    """Reuse the activations of the already-final prefix of the network between steps."""

    def __post_init__(self) -> None:
        if self.action_space not in ("alpha", "ratio"):
            raise ValueError(f"action_space must be 'alpha' or 'ratio': got {self.action_space!r}.")
        grid = self.alphas if self.action_space == "alpha" else self.ratios
        if len(grid) < 2:
            raise ValueError(f"the {self.action_space} grid needs at least 2 values: got {grid}.")
        if self.action_space == "alpha" and any(not a >= 0 for a in grid):
            raise ValueError(f"alphas must be >= 0: got {grid}.")
        if self.action_space == "ratio" and any(not 0 <= r < 1 for r in grid):
            raise ValueError(f"ratios must lie in [0, 1): got {grid}.")
        if self.passes < 1:
            raise ValueError(f"passes must be >= 1: got {self.passes}.")
        if self.reward_mode not in REWARD_MODES:
            raise ValueError(
                f"reward_mode must be one of {REWARD_MODES}: got {self.reward_mode!r}."
            )
        if not 0 < self.target_sparsity <= 1:
            raise ValueError(f"target_sparsity must lie in (0, 1]: got {self.target_sparsity}.")
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy must lie in (0, 1]: got {self.target_accuracy}.")
        resolve_features(self.features)
        if self.finetune_steps < 0 or self.eval_batch_size < 1 or self.finetune_batch_size < 1:
            raise ValueError("finetune_steps must be >= 0 and batch sizes >= 1.")

    @property
    def action_values(self) -> tuple[float, ...]:
        """The values the ``Discrete`` actions stand for (alphas or ratios)."""
        return self.alphas if self.action_space == "alpha" else self.ratios


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


# =============================================================================================
# Layer descriptors
# =============================================================================================


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
        std = w.std()
        absw = w.abs()
        kind = _layer_kind(layer.module)
        for a in alphas:
            rows.append(
                {
                    "index": i,
                    "layer": layer.name,
                    "type": kind,
                    "alpha": float(a),
                    "sparsity": float((absw < a * std).float().mean()),
                    "gaussian": math.erf(float(a) / math.sqrt(2.0)),
                }
            )
    return pd.DataFrame(rows)


# =============================================================================================
# Prefix cache
# =============================================================================================


def sequential_modules(model: nn.Module) -> list[nn.Module] | None:
    """A list of modules that, applied in order, compute ``model(x)``; None if none is known.

    Known decompositions: torchvision ``ResNet`` (stem, every block of layer1..layer4, pooling,
    flatten, fc) and ``MobileNetV2`` (every ``features[i]``, pooling, flatten, classifier);
    otherwise the model's children in registration order with ``nn.Sequential`` containers
    expanded (right for ``nn.Sequential`` models and for models whose forward chains their
    children, e.g. ``features`` then ``classifier``). A candidate is only *used* after
    :class:`PrefixCache` has checked that it reproduces ``model(x)`` bit for bit.
    """
    from torchvision.models import MobileNetV2, ResNet

    if isinstance(model, ResNet):
        return [
            model.conv1,
            model.bn1,
            model.relu,
            model.maxpool,
            *model.layer1,
            *model.layer2,
            *model.layer3,
            *model.layer4,
            model.avgpool,
            nn.Flatten(1),
            model.fc,
        ]
    if isinstance(model, MobileNetV2):
        return [
            *model.features,
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(1),
            *_expand(model.classifier),
        ]
    children = list(model.children())
    if not children:
        return None
    return _expand(model) if isinstance(model, nn.Sequential) else _expand_list(children)


def _expand(seq: nn.Module) -> list[nn.Module]:
    return _expand_list(list(seq.children())) if isinstance(seq, nn.Sequential) else [seq]


def _expand_list(mods: list[nn.Module]) -> list[nn.Module]:
    out: list[nn.Module] = []
    for m in mods:
        out.extend(_expand(m))
    return out


class PrefixCache:
    """Evaluate a model stage by stage, reusing the activations of an unchanged prefix.

    The model is cut into *stages*: each stage starts at a module holding a prunable layer and
    runs up to the next such module. If no layer in stages ``< k`` changed since the activations
    entering stage ``k`` were saved, the next evaluation starts there. The caller reports every
    weight change with :meth:`invalidate` (the stage of the changed layer; 0 for "anything may
    have changed": reset, fine-tuning) and names, at each evaluation, the stage whose input it
    will want next (``keep_stage``). Only one set of activations is held at a time.
    """

    def __init__(
        self,
        stages: list[list[nn.Module]],
        inputs: list[torch.Tensor],
        layer_stage: dict[str, int],
    ) -> None:
        self.stages = stages
        self.inputs = inputs
        self.layer_stage = layer_stage
        self.saved_stage = 0
        self.saved: list[torch.Tensor] = inputs
        self.stages_run = 0

    @classmethod
    def build(
        cls,
        model: nn.Module,
        layers: Sequence[PrunableLayer],
        inputs: list[torch.Tensor],
        modules: list[nn.Module] | None = None,
        check_samples: int = 8,
    ) -> PrefixCache | None:
        """Cut ``model`` into stages and check them; None (with a warning) when that fails.

        ``modules`` overrides :func:`sequential_modules`. The check runs a few samples through
        the stages and requires bit-identical logits to ``model(x)``, from every stage's saved
        input, with the saved input left untouched (no in-place op eats it).
        """
        mods = modules if modules is not None else sequential_modules(model)
        if not mods:
            return None
        ids = {id(layer.module): layer.name for layer in layers}
        stages: list[list[nn.Module]] = []
        layer_stage: dict[str, int] = {}
        for m in mods:
            inside = [ids[id(sub)] for sub in m.modules() if id(sub) in ids]
            if inside and stages and _holds_prunable(stages[-1], ids):
                stages.append([])
            if not stages:
                stages.append([])
            stages[-1].append(m)
            for name in inside:
                layer_stage.setdefault(name, len(stages) - 1)
        missing = [layer.name for layer in layers if layer.name not in layer_stage]
        if missing:
            warnings.warn(
                f"prefix cache disabled: layers {missing[:3]} are not in the model's sequential "
                "decomposition; every step runs the full forward pass.",
                stacklevel=3,
            )
            return None
        x = inputs[0][:check_samples]
        try:
            with torch.inference_mode():
                reference = model(x)
                acts = [x]
                a = x
                for stage in stages:
                    a = _run_stage(stage, a)
                    acts.append(a)
                ok = torch.equal(a, reference)
                for k in range(len(stages)):
                    if not ok:
                        break
                    start = acts[k].clone()
                    out = _run_stages(stages[k:], acts[k])
                    ok = torch.equal(out, reference) and torch.equal(start, acts[k])
        except Exception as exc:  # shapes of a wrong decomposition fail inside torch
            ok = False
            why = f"{type(exc).__name__}: {exc}"
        else:
            why = "its output differs from model(x)"
        if not ok:
            warnings.warn(
                f"prefix cache disabled for {type(model).__name__}: the sequential decomposition "
                f"does not reproduce the model ({why}); every step runs the full forward pass. "
                "Pass `stages=` (modules that compute the model in order) to enable it.",
                stacklevel=3,
            )
            return None
        return cls(stages, inputs, layer_stage)

    def invalidate(self, stage: int = 0) -> None:
        """A layer in ``stage`` changed: drop saved activations that depend on it."""
        if stage < self.saved_stage:
            self.saved_stage = 0
            self.saved = self.inputs

    def forward(self, keep_stage: int | None = None) -> list[torch.Tensor]:
        """Logits per input batch, starting from the saved activations.

        If ``keep_stage`` is at or after the saved stage, the activations entering it are saved
        for the next call.
        """
        start = self.saved_stage
        keep = keep_stage if keep_stage is not None and keep_stage >= start else None
        kept: list[torch.Tensor] = []
        outs = []
        for a in self.saved:
            for k in range(start, len(self.stages)):
                if k == keep:
                    kept.append(a)
                a = _run_stage(self.stages[k], a)
            outs.append(a)
        self.stages_run += len(self.stages) - start
        if keep is not None:
            self.saved_stage, self.saved = keep, kept
        return outs


def _holds_prunable(stage: list[nn.Module], ids: dict[int, str]) -> bool:
    return any(id(sub) in ids for m in stage for sub in m.modules())


def _run_stage(stage: list[nn.Module], a: torch.Tensor) -> torch.Tensor:
    for m in stage:
        a = m(a)
    return a


def _run_stages(stages: list[list[nn.Module]], a: torch.Tensor) -> torch.Tensor:
    for stage in stages:
        a = _run_stage(stage, a)
    return a


# =============================================================================================
# The environment
# =============================================================================================


def _as_tensors(data: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{what} must be a pair (x, y) of tensors: got {type(data).__name__}.")
    x, y = (torch.as_tensor(v) for v in data)
    if len(x) == 0:
        raise ValueError(
            f"{what} is empty: the reward needs accuracy on at least one held-out example. "
            "Hold a validation subset out of the training data (not the test split)."
        )
    if len(x) != len(y):
        raise ValueError(f"{what}: x has {len(x)} rows but y has {len(y)}.")
    return x, y.long()


class PuRLEnv(gym.Env):
    """PuRL: prune a network layer by layer; reward = PuRL's shaped reward at every step.

    Args:
        model: any torch model (eval mode is used; it is modified in place and restored to its
            dense weights by ``reset()``).
        val_data: ``(x, y)`` tensors of the validation subset the reward is measured on; held
            out of the training data, never the test split.
        config: the MDP's settings (:class:`PuRLConfig`).
        train_data: ``(x, y)`` tensors for the optional fine-tuning after each step.
        stages: modules that compute ``model(x)`` in order, for the prefix cache (default:
            :func:`sequential_modules`).
        layers: the prunable layers to visit (default: every Conv2d / Linear allowed by
            ``config.include`` / ``config.exclude``, in forward order).
        render_mode: only ``None`` (nothing to render).

    Raises:
        NoPrunableLayerError: the model has no prunable layer.
        ValueError: an empty validation set; an action out of range (in ``step``).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        model: nn.Module,
        val_data: tuple[torch.Tensor, torch.Tensor],
        config: PuRLConfig | None = None,
        train_data: tuple[torch.Tensor, torch.Tensor] | None = None,
        stages: list[nn.Module] | None = None,
        layers: Sequence[PrunableLayer] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        if render_mode is not None:
            raise ValueError(
                f"PuRLEnv renders nothing: render_mode must be None, got {render_mode!r}."
            )
        self.render_mode = render_mode
        self.config = cfg = config if config is not None else PuRLConfig()
        self.model = model
        try:
            self.device = next(model.parameters()).device
        except StopIteration:
            self.device = torch.device("cpu")
        x_val, y_val = _as_tensors(val_data, "val_data")
        self.x_val = x_val.to(self.device)
        self.y_val = y_val.to(self.device)
        if cfg.finetune_steps > 0:
            if train_data is None:
                raise ValueError("config.finetune_steps > 0 needs train_data=(x, y).")
            x_tr, y_tr = _as_tensors(train_data, "train_data")
            self.train_data: tuple[torch.Tensor, torch.Tensor] | None = (
                x_tr.to(self.device),
                y_tr.to(self.device),
            )
        else:
            self.train_data = None

        model.eval()
        if layers is None:
            layers = prunable_layers(
                model,
                include=list(cfg.include) if cfg.include is not None else None,
                exclude=list(cfg.exclude),
                example_input=self.x_val[:1],
            )
        self.masker = Masker(model, layers=layers)
        self.layers: list[PrunableLayer] = self.masker.layers
        self.layer_names: list[str] = [layer.name for layer in self.layers]
        self.num_layers = len(self.layers)
        self.episode_length = self.num_layers * cfg.passes
        self.action_values = np.asarray(cfg.action_values, dtype=np.float64)
        self._numel = np.array([layer.numel for layer in self.layers], dtype=np.int64)
        self._total = int(self._numel.sum())
        self._dense_std = [
            self.masker.dense_weight(n).detach().float().std() for n in self.layer_names
        ]

        # observation: static per-layer features + dynamic ones
        self.descriptors = layer_descriptors(self.layers)
        self._dense_zeros = self.descriptors["zeros"].to_numpy(np.int64).copy()
        static = static_features(self.descriptors)
        self.feature_names: tuple[str, ...] = resolve_features(cfg.features)
        self._col = {n: i for i, n in enumerate(FEATURE_NAMES)}
        self._static = np.zeros((self.num_layers, len(FEATURE_NAMES)), dtype=np.float32)
        for name in static.columns:
            self._static[:, self._col[name]] = static[name].to_numpy(np.float32)
        self._select = np.array([self._col[n] for n in self.feature_names], dtype=np.int64)
        high = np.ones(len(FEATURE_NAMES), dtype=np.float32)
        high[self._col["accuracy"]] = _ACCURACY_HIGH
        self.observation_space = spaces.Box(
            low=np.zeros(len(self._select), dtype=np.float32),
            high=high[self._select],
            dtype=np.float32,
        )
        self.action_space = spaces.Discrete(len(self.action_values))

        # evaluation
        bs = cfg.eval_batch_size
        self._val_batches = [self.x_val[i : i + bs] for i in range(0, len(self.x_val), bs)]
        self._val_targets = [self.y_val[i : i + bs] for i in range(0, len(self.y_val), bs)]
        self.cache: PrefixCache | None = None
        if cfg.prefix_cache and cfg.finetune_steps == 0:  # fine-tuning changes every layer
            self.cache = PrefixCache.build(model, self.layers, self._val_batches, stages)
        self.dense_accuracy = self._full_accuracy()
        if self.dense_accuracy <= 0 and cfg.target_accuracy is None:
            raise ValueError(
                "the dense model has 0 accuracy on val_data, so A* (the dense accuracy) is 0: "
                "train it first (PuRL prunes a trained network) or pass config.target_accuracy."
            )
        self._acc_ref = self.dense_accuracy if self.dense_accuracy > 0 else 1.0
        self.target_accuracy = (
            cfg.target_accuracy if cfg.target_accuracy is not None else self.dense_accuracy
        )
        self._needs_full_restore = False
        self._reset_state()

    # --- properties ------------------------------------------------------------------------
    @property
    def prefix_cache_enabled(self) -> bool:
        """Whether steps reuse the already-final prefix of the network (see PrefixCache)."""
        return self.cache is not None

    def layer_table(self) -> pd.DataFrame:
        """Per layer: raw descriptors and the normalised static features the agent sees."""
        return feature_table(self.descriptors)

    # --- evaluation ------------------------------------------------------------------------
    def _count_correct(self, logits: list[torch.Tensor]) -> float:
        correct = sum(
            int((out.argmax(dim=1) == y).sum())
            for out, y in zip(logits, self._val_targets, strict=True)
        )
        return correct / len(self.y_val)

    @torch.inference_mode()
    def _full_accuracy(self) -> float:
        return self._count_correct([self.model(x) for x in self._val_batches])

    def full_accuracy(self) -> float:
        """Accuracy of the model as it is now, by a plain full forward pass (no cache)."""
        self.model.eval()
        return self._full_accuracy()

    @torch.inference_mode()
    def _accuracy(self, keep_stage: int | None) -> float:
        if self.prefix_cache_enabled:
            return self._count_correct(self.cache.forward(keep_stage))  # type: ignore[union-attr]
        return self._full_accuracy()

    # --- gymnasium API ---------------------------------------------------------------------
    def _reset_state(self) -> None:
        self._t = 0
        self._prev_action = 0
        self._accuracy_now = self.dense_accuracy
        self._zeros = self._dense_zeros.copy()
        self._return = 0.0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Restore the dense weights (in place) and start a new episode at the first layer."""
        super().reset(seed=seed)
        self.masker.restore(weights_only=not self._needs_full_restore)
        self._needs_full_restore = False
        self.model.eval()
        if self.cache is not None:
            self.cache.invalidate(0)
        self._reset_state()
        return self._observation(0), self._info(layer=0, action_value=None)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Prune the current layer with ``action``; return (obs, reward, terminated, False, info)."""
        a = self._check_action(action)
        if self._t >= self.episode_length:
            raise RuntimeError("the episode is over (every layer was visited): call reset().")
        t = self._t
        li, visit = t % self.num_layers, t // self.num_layers
        value = float(self.action_values[a])
        self._prune(li, visit, value)
        if self.config.finetune_steps > 0:
            self._finetune()
        nxt = t + 1
        keep = None
        if nxt < self.episode_length and nxt % self.num_layers != 0 and self.cache is not None:
            keep = self.cache.layer_stage[self.layer_names[nxt % self.num_layers]]
        acc = self._accuracy(keep)
        self._accuracy_now = acc
        self._prev_action = a
        self._t = nxt
        terminated = nxt >= self.episode_length
        reward = purl_step_reward(
            acc,
            self.sparsity,
            self.target_accuracy,
            self.config.target_sparsity,
            last_step=terminated,
            mode=self.config.reward_mode,  # type: ignore[arg-type]
            beta=self.config.beta,
        )
        self._return += reward
        obs = self._observation(min(nxt, self.episode_length - 1))
        info = self._info(layer=li, action_value=value)
        info["pass"] = visit
        return obs, reward, terminated, False, info

    def _check_action(self, action: Any) -> int:
        n = len(self.action_values)
        try:
            a = int(action)
            ok = a == action and 0 <= a < n
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"invalid action {action!r}: PuRLEnv takes an integer in [0, {n - 1}] (index into "
                f"the {self.config.action_space} grid {tuple(self.action_values)})."
            )
        return a

    @torch.no_grad()
    def _prune(self, li: int, visit: int, value: float) -> None:
        layer = self.layers[li]
        w = layer.weight
        if self.config.action_space == "alpha":
            if visit == 0:
                thr = value * self._dense_std[li]
                mask = w.abs() >= thr
            else:
                remaining = w[w != 0].float()
                if remaining.numel() < 2:
                    return
                mask = w.abs() >= value * remaining.std()
        elif visit == 0:
            mask = ratio_mask(w, value)
        else:
            keep = w != 0
            vals = w[keep]
            sub = ratio_mask(vals, value) if vals.numel() else vals.bool()
            mask = keep.clone()
            mask[keep] = sub
        self.masker.set_mask(li, mask, from_dense=False)
        self._zeros[li] = int((w == 0).sum())
        if self.cache is not None:
            self.cache.invalidate(self.cache.layer_stage[layer.name])

    def _finetune(self) -> None:
        assert self.train_data is not None
        x, y = self.train_data
        cfg = self.config
        model = self.model
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=cfg.finetune_lr, momentum=0.9)
        model.train()
        with self.masker.hold(opt):
            for _ in range(cfg.finetune_steps):
                idx = torch.from_numpy(
                    self.np_random.integers(0, len(x), size=min(cfg.finetune_batch_size, len(x)))
                ).to(x.device)
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()
        self._needs_full_restore = True
        with torch.no_grad():
            self._zeros = np.array([int((la.weight == 0).sum()) for la in self.layers])
        if self.cache is not None:
            self.cache.invalidate(0)

    @property
    def sparsity(self) -> float:
        """Sparsity of all prunable weights now (from per-layer zero counts kept up to date)."""
        return float(self._zeros.sum()) / self._total

    def layer_sparsity(self) -> dict[str, float]:
        """Sparsity of each prunable layer now."""
        return {
            n: float(z / c)
            for n, z, c in zip(self.layer_names, self._zeros, self._numel, strict=True)
        }

    def _observation(self, t: int) -> np.ndarray:
        li, visit = t % self.num_layers, t // self.num_layers
        row = self._static[li].copy()
        c = self._col
        row[c["pass"]] = visit / (self.config.passes - 1) if self.config.passes > 1 else 0.0
        ls = self._zeros[li] / self._numel[li]
        row[c["layer_sparsity"]] = ls
        row[c["layer_density"]] = 1.0 - ls
        row[c["sparsity"]] = self.sparsity
        row[c["accuracy"]] = min(self._accuracy_now / self._acc_ref, _ACCURACY_HIGH)
        row[c["prev_action"]] = self._prev_action / (len(self.action_values) - 1)
        return row[self._select]

    def _info(self, layer: int, action_value: float | None) -> dict[str, Any]:
        return {
            "layer": self.layer_names[layer],
            "layer_index": layer,
            "step": self._t,
            "action_value": action_value,
            "accuracy": self._accuracy_now,
            "sparsity": self.sparsity,
            "dense_accuracy": self.dense_accuracy,
            "return": self._return,
            "layer_sparsity": self.layer_sparsity(),
        }

    def close(self) -> None:
        """Drop the cached activations (the model is left as it is)."""
        if self.cache is not None:
            self.cache.invalidate(0)

    # --- RNG state (for resumable agents) --------------------------------------------------
    def rng_state(self) -> dict[str, Any]:
        """The environment's RNG state (for checkpoints)."""
        return self.np_random.bit_generator.state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore an RNG state from :meth:`rng_state`."""
        self.np_random = np.random.Generator(np.random.PCG64())
        self.np_random.bit_generator.state = state


# =============================================================================================
# Notebook 01 (MDP design): sizes and the dense small CNN
# =============================================================================================


@dataclass(frozen=True)
class MdpDesignSizes:
    """Sizes of notebook 01 (MDP design), derived from the profile."""

    profile: str
    """The profile these sizes belong to."""
    seeds: tuple[int, ...]
    """Seeds of the DQN and random-policy runs (the same seeds for both)."""
    episodes: int
    """Episodes of DQN training, and of the random policy, per seed."""
    dense_epochs: int
    """Epochs of dense training of the small CNN on digits."""
    cnn_width: int
    """Width of the small CNN (channels of its first conv)."""
    target_sparsity: float
    """``S*`` of the reward (``A*`` is the dense validation accuracy)."""
    learning_starts: int
    """Env steps of random play before DQN updates start."""
    exploration_fraction: float
    """Fraction of all env steps over which epsilon decays."""
    feature_images: int
    """Validation images used to find ResNet-50's forward order (descriptors only)."""

    def dqn_config(self, seed: int) -> DQNConfig:
        """The DQN hyperparameters of the notebook's runs."""
        return DQNConfig(
            seed=seed,
            episodes=self.episodes,
            learning_starts=self.learning_starts,
            exploration_fraction=self.exploration_fraction,
            checkpoint_every=50,
        )

    def dense_train_config(self) -> TrainConfig:
        """Dense training of the small CNN."""
        return TrainConfig(epochs=self.dense_epochs, lr=0.05, batch_size=64, seed=0)


def mdp_design_sizes(profile: str) -> MdpDesignSizes:
    """Sizes for notebook 01 at ``profile`` (smoke: seconds; cpu: minutes; gpu: more seeds)."""
    return MdpDesignSizes(
        profile=profile,
        seeds=by_profile(profile, smoke=(0, 1), cpu=(0, 1, 2), gpu=(0, 1, 2, 3, 4)),
        episodes=by_profile(profile, smoke=60, cpu=600, gpu=1000),
        dense_epochs=by_profile(profile, smoke=8, cpu=30, gpu=30),
        cnn_width=16,
        target_sparsity=0.8,
        learning_starts=by_profile(profile, smoke=50, cpu=200, gpu=200),
        exploration_fraction=0.5,
        feature_images=2,
    )


@dataclass
class DenseModel:
    """A trained dense network with its data splits and training history."""

    model: nn.Module
    splits: Any
    history: pd.DataFrame
    path: Path


def dense_digits_cnn(sizes: MdpDesignSizes) -> DenseModel:
    """The small CNN trained densely on 8x8 digits, cached under ``cache_root()``.

    The cache key is a hash of the architecture, data and training config, so any change
    retrains instead of reusing a stale network.
    """
    from pruning_core.data.images import load_digits_splits
    from pruning_core.models import build_small_cnn

    splits = load_digits_splits(seed=0, image_size=8, channels=3)
    tcfg = sizes.dense_train_config()
    key = {
        "model": "small_cnn",
        "width": sizes.cnn_width,
        "data": splits.name,
        "split_seed": 0,
        "train": tcfg,
    }
    path = cache_root() / "dense" / f"small_cnn_{splits.name}_{config_hash(key)}.pt"

    def build() -> dict[str, Any]:
        seed_everything(tcfg.seed)
        model = build_small_cnn(
            num_classes=splits.num_classes, in_channels=3, width=sizes.cnn_width
        )
        hist = fit(
            model,
            (splits.x_train, splits.y_train),
            tcfg,
            val_data=(splits.x_val, splits.y_val),
            device="cpu",
            desc="dense small CNN",
        )
        return {"state_dict": model.state_dict(), "history": hist.to_dict("list")}

    blob = cached(path, build)
    model = build_small_cnn(num_classes=splits.num_classes, in_channels=3, width=sizes.cnn_width)
    model.load_state_dict(blob["state_dict"])
    return DenseModel(model.eval(), splits, pd.DataFrame(blob["history"]), path)
