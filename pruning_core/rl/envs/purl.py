"""PuRL's pruning MDP as a gymnasium environment (Gupta et al. 2020).

One **step** prunes one prunable layer (``Conv2d`` / ``Linear``), in forward order; one
**episode** is one pass over the layers (``passes > 1``: a QLP-style variant that visits every
layer several times and prunes it further at each visit). After every step the environment
measures the accuracy ``A`` of the partly pruned network on a fixed validation subset (held out
of the training data, never the test split) and the sparsity ``S`` of all prunable weights so
far, and pays PuRL's shaped reward (:func:`pruning_core.rl.rewards.purl_reward`), or, with
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
stage that holds the next layer to prune), so a step runs only the suffix of the network. Across
episodes, a :class:`~pruning_core.rl.envs.purl_memo.PrefixMemo` remembers what each action
prefix computed (``memo_mb``), so a prefix the policy has played before costs no forward pass:
the rewards and observations are bit for bit those computed without it.
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from gymnasium import spaces
from torch import nn
from torch.utils.data import DataLoader

from pruning_core.pruning.layers import PrunableLayer, prunable_layers
from pruning_core.pruning.masks import Masker, RelativeTo
from pruning_core.rl.envs.grad import env_grad_mode
from pruning_core.rl.envs.info import (
    RENDER_MODES,
    check_render_mode,
    make_info,
    parse_action,
    render_bars,
)
from pruning_core.rl.envs.prefix_cache import PrefixCache
from pruning_core.rl.envs.purl_features import (
    DEFAULT_ALPHAS,
    DEFAULT_RATIOS,
    FEATURE_NAMES,
    feature_table,
    layer_descriptors,
    resolve_features,
    static_features,
)
from pruning_core.rl.envs.purl_memo import PrefixMemo
from pruning_core.rl.rewards import REWARD_MODES, purl_step_reward
from pruning_core.train.loop import TrainConfig, evaluate, fit

__all__ = [
    "PuRLConfig",
    "PuRLEnv",
]


_ACCURACY_HIGH = 2.0


PURL_ENV_ID = "pruning_core/PuRL-v0"
"""Gymnasium id of :class:`PuRLEnv` (registered by ``import pruning_core``)."""


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

    def finetune_config(self) -> TrainConfig:
        """The brief fine-tuning after each step as a training config: ``finetune_steps`` steps
        of SGD (momentum 0.9, no Nesterov, no decay, constant lr) on ``finetune_batch_size`` rows
        drawn with replacement (from the environment's ``np_random``), masks held."""
        return TrainConfig(
            epochs=None, max_steps=self.finetune_steps, lr=self.finetune_lr, optimizer="sgd",
            momentum=0.9, nesterov=False, weight_decay=0.0, schedule="constant", amp=False,
            batch_size=self.finetune_batch_size, sampling="replacement",
        )  # fmt: skip

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


_IN_PLACE: weakref.WeakKeyDictionary[nn.Module, weakref.ref] = weakref.WeakKeyDictionary()
"""Model -> the live environment that prunes it in place (``copy_model=False``)."""


def _as_tensors(data: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, DataLoader):
        raise TypeError(
            f"{what} is a DataLoader: PuRLEnv measures the same rows at every step, so pass them "
            "preloaded as a pair of tensors, e.g. `x, y = map(torch.cat, zip(*loader))` and "
            f"`{what}=(x, y)` (a few hundred held-out examples are enough)."
        )
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


def _own_copy(
    model: nn.Module, stages: list[nn.Module] | None, layers: Sequence[PrunableLayer] | None
) -> tuple[nn.Module, list[nn.Module] | None, list[PrunableLayer] | None]:
    """A deep copy of ``model``, with ``stages`` and ``layers`` pointing into the copy."""
    names = {id(m): n for n, m in model.named_modules()}
    twin = copy.deepcopy(model)
    modules = dict(twin.named_modules())

    def same(m: nn.Module, what: str) -> nn.Module:
        if id(m) not in names:
            raise ValueError(f"{what} must be submodules of the model (or pass copy_model=False).")
        return modules[names[id(m)]]

    new_stages = [same(m, "stages") for m in stages] if stages is not None else None
    new_layers = (
        [PrunableLayer(la.name, same(la.module, "layers")) for la in layers]
        if layers is not None else None
    )  # fmt: skip
    return twin, new_stages, new_layers


class PuRLEnv(gym.Env):
    """PuRL: prune a network layer by layer; reward = PuRL's shaped reward at every step.

    Args:
        model: a trained torch model. The environment prunes its own copy (``copy_model=True``),
            so the caller's model is never changed and several environments (a vector env) can
            share one model object.
        val_data: ``(x, y)`` tensors of the validation subset the reward is measured on; held
            out of the training data, never the test split.
        config: the MDP's settings (:class:`PuRLConfig`).
        train_data: ``(x, y)`` tensors for the optional fine-tuning after each step.
        stages: modules that compute ``model(x)`` in order, for the prefix cache (default:
            :func:`sequential_modules`).
        layers: the prunable layers to visit (default: every Conv2d / Linear allowed by
            ``config.include`` / ``config.exclude``, in forward order).
        render_mode: ``None``, ``"ansi"`` (per-layer sparsity as text) or ``"rgb_array"`` (the
            same as a bar chart).
        copy_model: ``False`` prunes ``model`` itself (saves the memory of a copy): it is
            modified during episodes, restored to its dense weights by ``reset()`` and
            ``close()``, and no second environment may prune it at the same time.
        memo_mb: megabytes of activations the cross-episode prefix memo may hold (0: off).
            Without fine-tuning between steps a step's accuracy and cached activations depend
            only on the episode's actions so far, so a repeated prefix is looked up, not
            recomputed (the same numbers bit for bit). Ignored when ``finetune_steps > 0``.

    Raises:
        TypeError: ``model`` or ``val_data`` missing; ``val_data`` not a pair of tensors.
        NoPrunableLayerError: the model has no prunable layer.
        ValueError: an empty validation set; a model no better than the majority class on it
            (untrained); an action out of range (in ``step``).
        FloatingPointError: the model's outputs are NaN.
    """

    metadata: dict[str, Any] = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(
        self,
        model: nn.Module | None = None,
        val_data: tuple[torch.Tensor, torch.Tensor] | None = None,
        config: PuRLConfig | None = None,
        train_data: tuple[torch.Tensor, torch.Tensor] | None = None,
        stages: list[nn.Module] | None = None,
        layers: Sequence[PrunableLayer] | None = None,
        render_mode: str | None = None,
        copy_model: bool = True,
        memo_mb: float = 256.0,
    ) -> None:
        super().__init__()
        self.render_mode = check_render_mode("PuRLEnv", render_mode)
        if model is None or val_data is None:
            raise TypeError(
                "PuRLEnv needs model= (a trained torch model) and val_data= (x, y) tensors held "
                "out of its training data, e.g. gymnasium.make('pruning_core/PuRL-v0', "
                "model=cnn, val_data=(x_val, y_val), config=PuRLConfig(target_sparsity=0.8))."
            )
        self.config = cfg = config if config is not None else PuRLConfig()
        self.copy_model = copy_model
        if copy_model:
            model, stages, layers = _own_copy(model, stages, layers)
        else:
            owner = _IN_PLACE.get(model)
            if owner is not None and owner() is not None:
                raise ValueError(
                    "this model is already pruned in place by another PuRLEnv (copy_model=False):"
                    " two environments on one model corrupt each other's rewards. Use "
                    "copy_model=True (the default), or close() the other environment first."
                )
            _IN_PLACE[model] = weakref.ref(self)
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
        if memo_mb < 0 or not math.isfinite(memo_mb):
            raise ValueError(f"memo_mb must be a finite number >= 0 (0 turns the memo off): got {memo_mb}.")
        self.memo: PrefixMemo | None = None
        if memo_mb > 0 and cfg.finetune_steps == 0:  # fine-tuning makes steps depend on the rng
            self.memo = PrefixMemo(int(memo_mb * 2**20), self._val_batches)
        self.dense_accuracy = self._full_accuracy()
        majority = float(torch.bincount(self.y_val.cpu()).max()) / len(self.y_val)
        if self.dense_accuracy <= majority and cfg.target_accuracy is None:
            if not copy_model:
                _IN_PLACE.pop(model, None)
            raise ValueError(
                f"the model's accuracy on val_data is {self.dense_accuracy:.3f}, no better than "
                f"always predicting the most frequent class ({majority:.3f}): it looks untrained, "
                "and PuRL's reward would ask to keep chance-level accuracy. Train it first (PuRL "
                "prunes a trained network), check that val_data matches the model's input, or "
                "set config.target_accuracy yourself."
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
        """Top-1 of logits already computed (by the prefix cache) for the validation batches."""
        return evaluate(nn.Identity(), zip(logits, self._val_targets, strict=True))["top1"]

    def _full_accuracy(self) -> float:
        batches = zip(self._val_batches, self._val_targets, strict=True)
        return evaluate(self.model, batches, what="the network being pruned")["top1"]

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
        self._prefix: tuple[int, ...] = ()

    @env_grad_mode()
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Restore the dense weights (in place) and start a new episode at the first layer (in
        torch's default grad mode whatever the caller's: :func:`~.grad.env_grad_mode`)."""
        super().reset(seed=seed)
        self.masker.restore(weights_only=not self._needs_full_restore)
        self._needs_full_restore = False
        self.model.eval()
        if self.cache is not None:
            self.cache.invalidate(0)
        self._reset_state()
        return self._observation(0), self._info(0, math.nan, 0.0)

    @env_grad_mode()
    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Prune the current layer with ``action``; return (obs, reward, terminated, False, info).

        Runs in torch's default grad mode whatever the caller's (:func:`~.grad.env_grad_mode`),
        so the fine-tuning of ``finetune_steps > 0`` works under a collector's
        ``torch.no_grad()`` or ``torch.inference_mode()``."""
        a = parse_action(
            action, len(self.action_values),
            f"index into the {self.config.action_space} grid {tuple(self.action_values)}",
        )  # fmt: skip
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
        acc = self._measure(a, keep)
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
        return obs, reward, terminated, False, self._info(t, value, reward)

    def _measure(self, action: int, keep: int | None) -> float:
        """Accuracy after the step just pruned: looked up when this episode's action prefix was
        played before (the prefix cache is put back as that step left it), else computed."""
        self._prefix = (*self._prefix, action)
        if self.memo is None:
            return self._accuracy(keep)
        entry = self.memo.get(self._prefix)
        if entry is not None:
            if self.cache is not None:
                self.cache.restore(entry.saved_stage, list(entry.saved))
            return entry.accuracy
        acc = self._accuracy(keep)
        stage, saved = self.cache.state() if self.cache is not None else (0, [])
        self.memo.put(self._prefix, acc, stage, saved)
        return acc

    def _prune(self, li: int, visit: int, value: float) -> None:
        """Apply the action through the masker: the first visit is measured against the dense
        layer, later ones against the weights that remain; masks only grow."""
        layer = self.layers[li]
        relative_to: RelativeTo = "dense" if visit == 0 else "remaining"
        if self.config.action_space == "alpha":
            self.masker.prune_alpha(li, value, relative_to=relative_to, from_dense=False)
        else:
            self.masker.prune_ratio(li, value, relative_to=relative_to, from_dense=False)
        zeros = int((layer.weight == 0).sum())
        # masks only zero weights: the same zero count means the same weights, and the cached
        # activations after this layer are still exact
        if zeros != self._zeros[li] and self.cache is not None:
            self.cache.invalidate(self.cache.layer_stage[layer.name])
        self._zeros[li] = zeros

    def _finetune(self) -> None:
        assert self.train_data is not None
        fit(self.model, self.train_data, self.config.finetune_config(), masker=self.masker,
            rng=self.np_random)  # fmt: skip
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

    def _info(self, t: int, action_value: float, reward: float) -> dict[str, Any]:
        """The shared schema (:mod:`pruning_core.rl.envs.info`) for step ``t`` of the episode
        (its layer and pass; after ``reset``: the first step's) plus PuRL's own keys;
        ``layer_sparsity`` is an array in ``layer_names`` order."""
        li, visit = t % self.num_layers, t // self.num_layers
        nonzero = self._total - int(self._zeros.sum())
        return make_info(
            step=self._t,
            layer=li,
            layer_name=self.layer_names[li],
            pass_=visit,
            sparsity=self.sparsity,
            compression=self._total / nonzero if nonzero else math.inf,
            accuracy=self._accuracy_now,
            step_reward=reward,
            action_value=float(action_value),
            dense_accuracy=float(self.dense_accuracy),
            target_accuracy=float(self.target_accuracy),
            target_sparsity=float(self.config.target_sparsity),
            layer_sparsity=(self._zeros / self._numel).astype(np.float64),
            **{"return": float(self._return)},
        )

    def render(self) -> str | np.ndarray | None:
        """``ansi``: each prunable layer's sparsity so far as text; ``rgb_array``: the same as a
        bar chart (an (H, W, 3) uint8 image)."""
        title = (f"step {self._t}/{self.episode_length}: sparsity {self.sparsity:.1%} "
                 f"(target {self.config.target_sparsity:.0%}), accuracy {self._accuracy_now:.3f} "
                 f"(dense {self.dense_accuracy:.3f})")  # fmt: skip
        values = list(self.layer_sparsity().values())
        return render_bars(self.render_mode, title, self.layer_names, values, "sparsity")

    def close(self) -> None:
        """Drop the cached activations; with ``copy_model=False`` restore the model's dense
        weights and release it for another environment."""
        if self.cache is not None:
            self.cache.invalidate(0)
        owner = _IN_PLACE.get(self.model) if not self.copy_model else None
        if owner is not None and owner() is self:
            self.masker.restore(weights_only=not self._needs_full_restore)
            del _IN_PLACE[self.model]

    # --- RNG state (for resumable agents) --------------------------------------------------
    def rng_state(self) -> dict[str, Any]:
        """The environment's RNG state (for checkpoints)."""
        return self.np_random.bit_generator.state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore an RNG state from :meth:`rng_state`."""
        self.np_random = np.random.Generator(np.random.PCG64())
        self.np_random.bit_generator.state = state

