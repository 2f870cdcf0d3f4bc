"""NEON's pruning MDP as a gymnasium environment (Hirsch & Katz 2022).

One **episode** prunes one trained MLP. One **step** visits one hidden layer, input side first;
with ``passes=4`` the episode cycles over the hidden layers four times (the layer sizes compound:
four actions of 0.6 leave 0.6**4 = 13% of a layer's neurons). An **action** keeps a fraction
``{1.0, 0.9, 0.8, 0.7, 0.6}`` of the layer's (live) neurons: those whose incoming weights have the
largest L1 norm (:func:`pruning_core.pruning.neurons.select_neurons`). The others are removed structurally
(``mode="structural"``: the Linear, its BatchNorm and the next Linear shrink) or masked
(``mode="mask"``). The network is then fine-tuned briefly with early stopping on the validation
split -- only the changed layers by default (``finetune="changed"``: the layer's Linear and
BatchNorm and the next Linear), or the whole network (``"all"``), or not at all (``"none"``) --
and its validation accuracy gives NEON's reward (:func:`pruning_core.rl.rewards.neon_reward`):
``-L**3`` if the accuracy fell more than ``C`` points below the original network's, ``+L**3`` if
it rose, else ``L``, with ``L`` the percentage of the layer's neurons removed by this step.

``C`` is drawn per episode from ``C_values`` (or set with ``reset(options={"C": c})``) and is
part of the observation, so one agent serves every ``C`` (the paper trains one agent per ``C``).

**Observation** (a fixed-size ``Box`` in [-5, 5], :data:`OBS_DIM` numbers): network-level
features (C, progress through the episode, depth, compression and validation-accuracy change so
far, input / output sizes), then for each of up to ``MAX_LAYERS = 10`` hidden-layer slots
(zero-padded) and once more for the current layer: topology (present, current, width and share
kept, input size, batch-norm, dropout, activation one-hot) and statistics of the incoming
weights of each neuron (mean, std, skew, kurtosis, min, max, L1, L2) and of the neuron's
activations on a fixed sample of training rows (the same eight), each averaged over the layer's
neurons. Unbounded statistics pass through ``sign(x) * log1p(|x|)`` and are clipped.

The test split never enters the environment: the reward reads the ``reward`` split and early
stopping the ``stop`` split (:class:`~pruning_core.data.splits.Splits`; disjoint rows for the
suite's tables and :func:`~pruning_core.data.tabular.prepare_table`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from pruning_core.data.splits import Splits
from pruning_core.models.mlp import MLP, BaseNet, as_mlp, build_mlp, random_mlp_spec
from pruning_core.pruning.neurons import (
    count_params,
    live_neurons,
    mask_neurons,
    materialize,
    remove_neurons,
    select_neurons,
)
from pruning_core.rl.envs.grad import env_grad_mode
from pruning_core.rl.envs.info import (
    RENDER_MODES,
    check_render_mode,
    make_info,
    parse_action,
    render_bars,
)
from pruning_core.rl.envs.neon_features import (
    LAYER_FEATURES,
    MAX_LAYERS,
    OBS_BOUND,
    OBS_DIM,
    layer_features,
)
from pruning_core.rl.rewards import (
    IMPROVEMENT_REWARDS,
    neon_reward,
    neon_unit_scale,
    within_allowed_loss,
)
from pruning_core.train.loop import TrainConfig, evaluate, fit

__all__ = [
    "KEEP_FRACTIONS",
    "NEON_ENV_ID",
    "NeonEnv",
    "NeonEnvConfig",
    "NeonTask",
    "UNIT_REWARD_SCALE",
]


NEON_ENV_ID = "pruning_core/Neon-v0"
"""Gymnasium id of :class:`NeonEnv`."""


KEEP_FRACTIONS: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6)
"""NEON's actions: the fraction of a layer's live neurons kept."""


UNIT_REWARD_SCALE: float = neon_unit_scale(KEEP_FRACTIONS)
"""``reward_scale`` that bounds NEON's reward to [-1, 1] for :data:`KEEP_FRACTIONS`: ``1 / 50**3``
(the largest ``L`` is 50: keeping 0.6 or 0.7 of 2 neurons, or 0.6 of 4, removes half)."""


@dataclass
class NeonTask:
    """One network to prune and the data it is fine-tuned and rewarded on.

    ``data`` never holds a test split: the reward reads ``reward``, the fine-tuning after an
    action stops early on ``stop`` (other rows, where the data give them) and the activation
    statistics come from ``train``.
    """

    name: str
    model: MLP
    data: Splits
    base_val_acc: float
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_model(
        cls, model: nn.Module, data: Splits, name: str = "task", **meta: Any
    ) -> NeonTask:
        """A task from a trained network (an :class:`MLP` or a plain ``nn.Sequential``) and
        its data's ``train``, ``reward`` and ``stop`` splits (a test split is dropped)."""
        mlp = copy.deepcopy(as_mlp(model)).eval()  # the task owns its network: the caller's is untouched
        if mlp.n_hidden > MAX_LAYERS:
            raise ValueError(f"the network has {mlp.n_hidden} hidden layers; at most {MAX_LAYERS}")
        if not data.has("stop"):
            raise ValueError(
                f"{data.name}: NEON's fine-tuning stops early, so the data need a stop split"
            )
        n_in = mlp.blocks[0].linear.in_features
        x_train, y_train = data.tensors("train")
        x_val, y_val = data.tensors("reward")
        x_stop, _ = data.tensors("stop")
        if x_train.ndim != 2 or any(x.shape[1] != n_in for x in (x_train, x_val, x_stop)):
            raise ValueError(
                f"the network expects {n_in} input features; got train {tuple(x_train.shape)}, "
                f"reward {tuple(x_val.shape)} and stop {tuple(x_stop.shape)}"
            )
        if len(y_val) == 0 or len(y_train) < 2 or data.n("stop") == 0:
            raise ValueError("need at least 2 training rows and 1 reward and stop row")
        what = f"{name}: the original network"
        acc = evaluate(mlp, (x_val, y_val), batch_size=None, what=what)["top1"]
        return cls(name, mlp, replace(data, test=None), acc, dict(meta))

    @classmethod
    def from_base(cls, base: BaseNet, data: Splits) -> NeonTask:
        """A task from a cached base network and its dataset's splits."""
        return cls.from_model(
            base.model(), data,
            name=f"{base.dataset}#{base.index}", dataset=base.dataset, index=base.index,
        )  # fmt: skip


def default_finetune() -> TrainConfig:
    """The brief fine-tuning after each action: Adam 1e-3, batch 64, <= 3 checks of 20 steps,
    early stopping on validation accuracy (patience 1; the best of the checks is kept)."""
    return TrainConfig.mlp(
        lr=1e-3, batch_size=64, epochs=1000, steps_per_check=20, patience=1,
        monitor="val_top1", max_steps=60,
    )  # fmt: skip


@dataclass(frozen=True)
class NeonEnvConfig:
    """Settings of :class:`NeonEnv` (the paper's where known)."""

    passes: int = 4
    """Visits of every hidden layer per episode (NEON: 1 or 4)."""
    keep_fractions: tuple[float, ...] = KEEP_FRACTIONS
    """The actions: shares of a layer's live neurons kept."""
    C_values: tuple[float, ...] = (0.0, 1.0, 5.0, 50.0)
    """Allowed accuracy losses (percentage points) an episode's C is drawn from."""
    mode: str = "structural"
    """``structural`` (neurons removed, layers shrink) or ``mask`` (neurons masked)."""
    finetune: str = "changed"
    """``changed`` (the layer, its batch-norm and the next Linear), ``all`` or ``none``."""
    ft: TrainConfig = field(default_factory=default_finetune)
    """Fine-tuning after each action that removed neurons."""
    stat_rows: int = 500
    """Training rows whose activations feed the observation (the paper uses up to 3,000)."""
    guard: bool = False
    """Undo an action after which validation accuracy is no longer within C of the original
    (:func:`~pruning_core.rl.rewards.within_allowed_loss`, noise margin included; an
    inference-time safety net, not part of NEON; the reward still sees the attempted action)."""
    seed: int = 0
    """Seed of the activation-statistics rows and the fine-tuning batch order."""
    removed_of: str = "current"
    """What the reward's ``L`` (percent of neurons removed) is measured against: ``current``, the
    layer's live neurons before the step (the authors' code: a fourth 40% cut pays as much as the
    first), or ``original``, the layer's width in the unpruned network."""
    noise_margin_pp: float = 0.0
    """Accuracy changes within this many points earn ``L``, neither ``+L**3`` nor ``-L**3`` (see
    :func:`~pruning_core.rl.rewards.neon_reward`; 0 is the paper's rule)."""
    improvement_reward: str = "cubic"
    """What a step after which accuracy rose beyond the noise margin earns: ``cubic``
    (``+L**3``, the paper's) or ``linear`` (``L``); see
    :data:`~pruning_core.rl.rewards.IMPROVEMENT_REWARDS`."""
    within_weight: float = 0.0
    """0: a step within C earns ``L`` (the paper's); ``w > 0``: ``w * L**3``, so a step is worth
    its risk while the chance of ending over C is below ``w / (1 + w)`` (see
    :func:`~pruning_core.rl.rewards.neon_reward`)."""
    reward_scale: float = 1.0
    """Multiplies the reward. 1 is the paper's (``L**3`` up to 125,000 for the default actions:
    rounding half up, keeping 0.6 or 0.7 of a 2-neuron layer removes ``L = 50`` percent);
    :data:`UNIT_REWARD_SCALE` (``1 / 50**3``; :func:`~pruning_core.rl.rewards.neon_unit_scale`
    for other actions) puts it in [-1, 1], the scale off-the-shelf agents' defaults expect.
    ``1 / 40**3`` allows up to ``(50/40)**3``, about 1.95, in size."""

    def __post_init__(self) -> None:
        if self.passes < 1:
            raise ValueError(f"passes must be >= 1, got {self.passes}")
        if self.mode not in ("structural", "mask"):
            raise ValueError(f"mode must be 'structural' or 'mask', got {self.mode!r}")
        if self.finetune not in ("changed", "all", "none"):
            raise ValueError(f"finetune must be 'changed', 'all' or 'none', got {self.finetune!r}")
        if self.removed_of not in ("current", "original"):
            raise ValueError(f"removed_of must be 'current' or 'original', got {self.removed_of!r}")
        if not self.noise_margin_pp >= 0:
            raise ValueError(f"noise_margin_pp must be >= 0, got {self.noise_margin_pp}")
        if self.improvement_reward not in IMPROVEMENT_REWARDS:
            raise ValueError(
                f"improvement_reward must be one of {IMPROVEMENT_REWARDS}, "
                f"got {self.improvement_reward!r}"
            )
        if not (self.within_weight >= 0 and math.isfinite(self.within_weight)):
            raise ValueError(f"within_weight must be finite and >= 0, got {self.within_weight}")
        if not self.reward_scale > 0:
            raise ValueError(f"reward_scale must be > 0, got {self.reward_scale}")
        if not self.C_values or min(self.C_values) < 0:
            raise ValueError(f"C_values must be non-empty and >= 0, got {self.C_values}")
        if not self.keep_fractions or not all(0 < k <= 1 for k in self.keep_fractions):
            raise ValueError(f"keep_fractions must lie in (0, 1], got {self.keep_fractions}")


def stat_rows(task: NeonTask, config: NeonEnvConfig, task_id: int) -> torch.Tensor:
    """The training rows whose activations feed the observation: ``config.stat_rows`` of them,
    drawn with ``config.seed + task_id`` and kept in their order (the env and the batched path
    draw the same rows)."""
    g = torch.Generator().manual_seed(config.seed + task_id)
    x_train, _ = task.data.tensors("train")
    n = min(config.stat_rows, len(x_train))
    idx = torch.randperm(len(x_train), generator=g)[:n].sort().values
    return x_train[idx]


def _default_task(seed: int = 0) -> NeonTask:
    """A small synthetic task (3 classes, 8 features, a 2-layer MLP) so that
    ``gymnasium.make("pruning_core/Neon-v0")`` works without arguments."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 8))
    y = rng.integers(0, 3, size=600)
    x = (centers[y] + 0.8 * rng.normal(size=(600, 8))).astype(np.float32)
    x = (x - x.min(0)) / (x.max(0) - x.min(0))
    xt, yt = torch.as_tensor(x[:400]), torch.as_tensor(y[:400])
    xv, yv = torch.as_tensor(x[400:]), torch.as_tensor(y[400:])
    data = Splits("synthetic", 3, train=(xt, yt), reward=(xv, yv), stop=(xv, yv))
    spec = random_mlp_spec(8, 3, 0)
    spec = replace(spec, hidden=(32, 16), activations=("relu",) * 2, batchnorm=(True, False),
                   dropout=(0.0, 0.0))  # fmt: skip
    model = build_mlp(spec, seed=seed)
    fit(model, (xt, yt), TrainConfig.mlp(epochs=15, patience=3, seed=seed), val_data=(xv, yv))
    return NeonTask.from_model(model, data, name="synthetic")


class NeonEnv(gym.Env):
    """NEON's MDP over a pool of (network, data) tasks; see the module docstring.

    ``reset()`` draws a task and a ``C`` (``options={"task": i, "C": c}`` fixes them) and copies
    the task's network; ``step(a)`` prunes the current layer with ``keep_fractions[a]``. The
    original networks are never modified. After an episode, :meth:`final_model` is the pruned
    network (structural even in mask mode) and :meth:`episode_report` summarises it.
    """

    metadata: dict[str, Any] = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(
        self,
        tasks: Sequence[NeonTask] | NeonTask | None = None,
        config: NeonEnvConfig | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.render_mode = check_render_mode("NeonEnv", render_mode)
        self.config = config or NeonEnvConfig()
        if tasks is None:
            tasks = [_default_task(self.config.seed)]
        elif isinstance(tasks, NeonTask):
            tasks = [tasks]
        self.tasks = list(tasks)
        if not self.tasks:
            raise ValueError("NeonEnv needs at least one task")
        self.action_space = spaces.Discrete(len(self.config.keep_fractions))
        self.observation_space = spaces.Box(
            -OBS_BOUND, OBS_BOUND, shape=(OBS_DIM,), dtype=np.float32
        )
        self._stat_rows: dict[int, torch.Tensor] = {}
        self.model: MLP | None = None
        self._done = True

    # --- helpers ---------------------------------------------------------------------------
    def _rows_for_stats(self, task_id: int) -> torch.Tensor:
        if task_id not in self._stat_rows:
            self._stat_rows[task_id] = stat_rows(self.tasks[task_id], self.config, task_id)
        return self._stat_rows[task_id]

    @torch.no_grad()
    def _activations(self) -> list[torch.Tensor]:
        """Each hidden block's output (after activation and mask; eval mode) on the stat rows."""
        assert self.model is not None
        p = next(self.model.parameters())
        x = self._rows_for_stats(self.task_id).to(p.device)  # CPU rows, the model's device
        outs = []
        self.model.eval()
        for block in self.model.blocks:
            x = block(x)
            outs.append(x)
        return outs

    def _params(self) -> int:
        assert self.model is not None
        if self.config.mode == "structural":
            return count_params(self.model)
        return count_params(materialize(self.model))

    def _layer_order(self) -> list[int]:
        return list(range(self.n_hidden)) * self.config.passes

    def _observation(self) -> np.ndarray:
        assert self.model is not None
        t = min(self.t, self.T - 1)
        layer = self.order[t]
        C = self.C
        delta = (self.val_acc - self.task.base_val_acc) * 100
        g = [
            math.log1p(C) / math.log1p(50.0),
            min(C / 50.0, 2.0),
            (t // self.n_hidden) / self.config.passes,
            t / self.T,
            layer / MAX_LAYERS,
            self.n_hidden / MAX_LAYERS,
            math.log(self.params0 / self.params) / math.log(100.0),
            self.val_acc,
            float(np.clip(delta / 10.0, -OBS_BOUND, OBS_BOUND)),
            float(np.tanh((delta + C) / 2.0)),
            math.log10(self.params) / 7.0,
            math.log10(self.task.data.n_features + 1) / 3.0,
            min(self.task.model.head.out_features / 10.0, 2.0),
            self.task.base_val_acc,
        ]
        acts = self._activations()
        blocks = np.zeros((MAX_LAYERS + 1, len(LAYER_FEATURES)), dtype=np.float32)
        for i in range(self.n_hidden):
            blocks[i] = layer_features(self.model, i, self.widths0[i], i == layer, acts[i])
        blocks[MAX_LAYERS] = blocks[layer]
        obs = np.concatenate([np.asarray(g, dtype=np.float32), blocks.ravel()])
        return np.clip(obs, -OBS_BOUND, OBS_BOUND).astype(np.float32)

    def _trainable(self, layer: int) -> list[nn.Parameter]:
        assert self.model is not None
        if self.config.finetune == "all":
            return list(self.model.parameters())
        return self.model.step_params([layer])

    # --- gymnasium API ---------------------------------------------------------------------
    @env_grad_mode()
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode on a (random or given) task with a (random or given) C (in torch's
        default grad mode whatever the caller's: :func:`~.grad.env_grad_mode`)."""
        super().reset(seed=seed)
        options = options or {}
        task_id = options.get("task")
        if task_id is None:
            task_id = int(self.np_random.integers(len(self.tasks)))
        if not 0 <= int(task_id) < len(self.tasks):
            raise IndexError(f"task {task_id} out of range: {len(self.tasks)} tasks")
        C = options.get("C")
        if C is None:
            C = float(self.np_random.choice(np.asarray(self.config.C_values, dtype=float)))
        if not float(C) >= 0.0:
            raise ValueError(f"C must be >= 0 percentage points, got {C}")
        self.task_id = int(task_id)
        self.task = self.tasks[self.task_id]
        self.C = float(C)
        self.model = copy.deepcopy(self.task.model).eval()
        self.n_hidden = self.model.n_hidden
        self.order = self._layer_order()
        self.T = len(self.order)
        self.t = 0
        self.widths0 = [b.width for b in self.model.blocks]
        self.params0 = count_params(self.model)
        self.params = self.params0
        self.val_acc = self.task.base_val_acc
        self.log: list[dict[str, Any]] = []
        self._done = False
        return self._observation(), self._info(0.0, 0, keep=math.nan, undone=False)

    def _info(self, reward: float, t: int, keep: float, undone: bool) -> dict[str, Any]:
        """The shared schema (:mod:`pruning_core.rl.envs.info`) for step ``t`` of the episode
        (its layer and pass; after ``reset``: the first step's) plus NEON's own keys."""
        layer = self.order[t]
        return make_info(
            step=self.t,
            layer=layer,
            layer_name=f"hidden{layer}",
            pass_=t // self.n_hidden,
            sparsity=1.0 - self.params / self.params0,
            compression=self.params0 / self.params,
            accuracy=self.val_acc,
            step_reward=reward,
            task=self.task.name,
            C=self.C,
            params=self.params,
            delta_val_pp=(self.val_acc - self.task.base_val_acc) * 100,
            keep=float(keep),
            undone=bool(undone),
        )

    def render(self) -> str | np.ndarray | None:
        """``ansi``: each hidden layer's width now against its original width, as text;
        ``rgb_array``: the same share kept as a bar chart (an (H, W, 3) uint8 image)."""
        if self.model is None:
            raise RuntimeError("call reset() before render()")
        widths = [b.width for b in self.model.blocks]
        if self.config.mode == "mask":
            widths = [len(live_neurons(self.model, i)) for i in range(self.n_hidden)]
        kept = [w / w0 for w, w0 in zip(widths, self.widths0, strict=True)]
        title = (f"{self.task.name}, C={self.C:g}: step {self.t}/{self.T}, "
                 f"x{self.params0 / self.params:.2f} compression, val acc {self.val_acc:.3f}")  # fmt: skip
        names = [f"hidden{i} ({w}/{w0})" for i, (w, w0) in enumerate(zip(widths, self.widths0, strict=True))]  # fmt: skip
        return render_bars(self.render_mode, title, names, kept, "share of neurons kept")

    @env_grad_mode()
    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Prune the current layer to ``keep_fractions[action]``, fine-tune, reward (in torch's
        default grad mode whatever the caller's, so under a collector's ``torch.no_grad()`` or
        ``torch.inference_mode()`` too)."""
        if self._done or self.model is None:
            raise RuntimeError("the episode is over (or never started): call reset() first")
        a = parse_action(action, self.action_space.n, f"keep fractions {self.config.keep_fractions}")
        keep = self.config.keep_fractions[a]
        layer = self.order[self.t]
        n_before = len(live_neurons(self.model, layer))
        keep_idx = select_neurons(self.model, layer, keep) if keep < 1.0 else None
        n_after = n_before if keep_idx is None else len(keep_idx)
        prev = None
        undone = False
        if n_after < n_before:
            if self.config.guard:
                prev = (copy.deepcopy(self.model), self.val_acc, self.params)
            if self.config.mode == "structural":
                remove_neurons(self.model, layer, keep_idx)
            else:
                mask_neurons(self.model, layer, keep_idx)
            if self.config.finetune != "none":
                ft = replace(self.config.ft, seed=self.config.seed + 7919 * self.t)
                fit(
                    self.model, self.task.data.tensors("train"), ft,
                    val_data=self.task.data.tensors("stop"), params=self._trainable(layer),
                )  # fmt: skip
            self.val_acc = evaluate(
                self.model, self.task.data.tensors("reward"), batch_size=None,
                what=f"{self.task.name}: the network after pruning layer {layer}",
            )["top1"]  # fmt: skip
            self.params = self._params()
        if self.config.removed_of == "current":
            removed_share = 1.0 - n_after / n_before
        else:
            removed_share = (n_before - n_after) / self.widths0[layer]
        reward = self.config.reward_scale * float(
            neon_reward(1.0 - removed_share, self.val_acc, self.task.base_val_acc, self.C,
                        noise_margin_pp=self.config.noise_margin_pp,
                        improvement=self.config.improvement_reward,
                        within_weight=self.config.within_weight)
        )  # fmt: skip
        delta = (self.val_acc - self.task.base_val_acc) * 100
        if prev is not None and not within_allowed_loss(delta, self.C, self.config.noise_margin_pp):
            self.model, self.val_acc, self.params = prev
            undone = True
        row = {
            "t": self.t,
            "pass": self.t // self.n_hidden,
            "layer": layer,
            "action": a,
            "keep": keep,
            "n_before": n_before,
            "n_after": n_before if undone else n_after,
            "val_acc": self.val_acc,
            "params": self.params,
            "reward": reward,
            "undone": undone,
        }
        self.log.append(row)
        t = self.t
        self.t += 1
        terminated = self.t >= self.T
        self._done = terminated
        obs = self._observation() if not terminated else self._final_obs()
        return (
            obs,
            reward,
            terminated,
            False,
            self._info(reward, t, keep=keep, undone=undone),
        )

    def _final_obs(self) -> np.ndarray:
        t, self.t = self.t, self.T - 1
        try:
            return self._observation()
        finally:
            self.t = t

    # --- results ---------------------------------------------------------------------------
    def final_model(self) -> MLP:
        """The current (after an episode: the pruned) network, with masked neurons removed."""
        if self.model is None:
            raise RuntimeError("call reset() first")
        return materialize(self.model) if self.config.mode == "mask" else copy.deepcopy(self.model)

    def episode_report(self) -> dict[str, Any]:
        """Parameters, compression, validation accuracies, widths and the per-step log."""
        if self.model is None:
            raise RuntimeError("call reset() first")
        final = self.final_model()
        return {
            "task": self.task.name,
            "C": self.C,
            "passes": self.config.passes,
            "mode": self.config.mode,
            "finetune": self.config.finetune,
            "params_orig": self.params0,
            "params_pruned": count_params(final),
            "compression": self.params0 / count_params(final),
            "val_acc_orig": self.task.base_val_acc,
            "val_acc": self.val_acc,
            "delta_val_pp": (self.val_acc - self.task.base_val_acc) * 100,
            "widths_orig": list(self.widths0),
            "widths_final": [b.width for b in final.blocks],
            "return": float(sum(r["reward"] for r in self.log)),
            "steps": list(self.log),
        }

