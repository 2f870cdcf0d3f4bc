"""NEON as a method: trained base networks, and pruning a new network with a trained agent."""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pruning_core.config import progress, torch_threads
from pruning_core.data.splits import Splits
from pruning_core.models.mlp import (
    MLP,
    ArchitectureSpace,
    BaseNet,
    MLPSpec,
    arch_seed,
    as_mlp,
    build_mlp,
    random_mlp_spec,
    to_sequential,
)
from pruning_core.rl.agents.a2c import ActorCriticAgent
from pruning_core.rl.agents.a2c_set import AgentsByC, load_shipped_agents
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig, NeonTask
from pruning_core.rl.rollout import rollout
from pruning_core.runs import ArtefactKey, cached
from pruning_core.train.loop import TrainConfig, evaluate, fit, planned_steps

__all__ = [
    "REPORT_KEYS",
    "BaseNetKey",
    "NeonReport",
    "base_network",
    "prune_mlp",
]


@dataclass(frozen=True)
class BaseNetKey(ArtefactKey):
    """One NEON base network: dataset, index, seed, architecture space, training and data."""

    KIND = "neon/base"
    VERSION = 2
    dataset: str
    index: int
    seed: int
    space: ArchitectureSpace
    train: TrainConfig
    data: Any
    """What else decides the data (the row caps), from the caller."""
    n_train: int

    @property
    def prefix(self) -> str:
        """Dataset and index."""
        return f"{self.dataset}__{self.index}"


def base_network(
    data: Splits,
    index: int,
    space: ArchitectureSpace,
    train_cfg: TrainConfig,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    data_key: Any = None,
) -> BaseNet:
    """Network ``index`` of dataset ``data``: a random architecture, trained, cached.

    Trained to convergence as ``train_cfg`` says (the study: early stopping on the ``stop``
    split after ``patience`` checks without a better validation loss, the best weights kept,
    a generous epoch cap); ``meta`` records whether it stopped early (``stopped_early``; False:
    the cap ended it), its best epoch and its accuracy on the ``stop`` split.

    The cache path is the :class:`BaseNetKey` of the dataset name, index, seed, architecture
    space, training config and ``data_key`` (the row caps), so any change builds a new network
    and an interrupted study resumes from the networks already trained. ``cache_dir`` replaces
    the key's folder under ``cache_root()``.
    """
    desc = BaseNetKey(data.name, index, seed, space, train_cfg, data_key, data.n("train"))
    key = desc.hashname
    path = desc.path(cache_dir)

    def build() -> dict[str, Any]:
        s = arch_seed(data.name, index, seed)
        spec = random_mlp_spec(data.n_features, data.num_classes, s, space)
        model = build_mlp(spec, seed=s)
        t0 = time.perf_counter()
        res = fit(  # dropout is seeded from the config's seed inside fit
            model, data.tensors("train"), replace(train_cfg, seed=s),
            val_data=data.tensors("stop"),
        )  # fmt: skip
        secs = time.perf_counter() - t0
        _, planned = planned_steps(data.tensors("train"), train_cfg)
        hist = [r for r in res.rows if "val_loss" in r and np.isfinite(r["val_loss"])]
        best = min(hist, key=lambda r: r["val_loss"])["epoch"] if hist else float("nan")
        return {
            "dataset": data.name,
            "index": index,
            "spec": asdict(spec),
            "state_dict": model.state_dict(),
            "val_acc": evaluate(model, data.tensors("reward"), batch_size=None)["top1"],
            "test_acc": evaluate(model, data.tensors("test"), batch_size=None)["top1"],
            "train_seconds": secs,
            "epochs": res.steps / max(1, data.n("train") // train_cfg.batch_size),
            "key": key,
            "meta": {
                "stop_acc": evaluate(model, data.tensors("stop"), batch_size=None)["top1"],
                "stopped_early": bool(res.steps < planned),
                "best_epoch": float(best),
            },
        }

    obj = cached(path, build)
    spec_d = dict(obj["spec"])
    for k in ("hidden", "activations", "batchnorm", "dropout"):
        spec_d[k] = tuple(spec_d[k])
    return BaseNet(
        dataset=obj["dataset"],
        index=obj["index"],
        spec=MLPSpec(**spec_d),
        state_dict=obj["state_dict"],
        val_acc=obj["val_acc"],
        test_acc=obj["test_acc"],
        train_seconds=obj["train_seconds"],
        epochs=obj["epochs"],
        key=obj["key"],
        meta=dict(obj.get("meta", {})),
    )


REPORT_KEYS: dict[str, str] = {
    "task": "the task's name (``user``)",
    "C": "the accuracy loss allowed, in percentage points",
    "passes": "visits of every hidden layer",
    "mode": "``structural`` or ``mask`` (the returned network is structural either way)",
    "finetune": "what was fine-tuned after each action (``changed``, ``all``, ``none``)",
    "params_orig": "parameters of the original network",
    "params_pruned": "parameters of the pruned network",
    "compression": "``params_orig / params_pruned``",
    "val_acc_orig": "accuracy of the original network on ``X_val`` (a fraction)",
    "val_acc": "accuracy of the pruned network on ``X_val``",
    "delta_val_pp": "``val_acc - val_acc_orig`` in percentage points",
    "widths_orig": "hidden widths before",
    "widths_final": "hidden widths after",
    "return": "the episode's summed reward",
    "steps": "the per-step log, one dict per action (``t``, ``pass``, ``layer``, ``action``, "
    "``keep``, ``n_before``, ``n_after``, ``val_acc``, ``params``, ``reward``, ``undone``); "
    "as a table: :attr:`NeonReport.log`",
    "actions": "the action index of each step",
    "agent_C": "the C the agent used was trained for (None: one agent for every C)",
    "keep_per_step": "the share of a layer's neurons each action kept",
    "seconds": "wall time of the episode",
}
"""The keys of the report :func:`prune_mlp` returns, and what each holds."""


class NeonReport(dict):  # type: ignore[type-arg]
    """What :func:`prune_mlp` did: a dict with the keys of :data:`REPORT_KEYS`, a readable
    :meth:`summary` (also what ``print(report)`` shows) and the per-step log as a table
    (:attr:`log`)."""

    @property
    def log(self) -> pd.DataFrame:
        """The ``steps`` as a table, one row per action."""
        return pd.DataFrame(self["steps"])

    def summary(self) -> str:
        """A few lines: what was pruned, parameters, widths and validation accuracy."""
        agent = f" (agent trained at C={self['agent_C']:g})" if self.get("agent_C") is not None else ""
        undone = sum(bool(s.get("undone")) for s in self["steps"])
        return "\n".join([
            f"NEON pruned {len(self['widths_orig'])} hidden layer(s) at C={self['C']:g} pt{agent}: "
            f"{self['passes']} pass(es), {len(self['steps'])} steps ({undone} undone), "
            f"{self['seconds']:.1f} s",
            f"  parameters      {self['params_orig']:,} -> {self['params_pruned']:,} "
            f"(compression {self['compression']:.2f}x)",
            f"  hidden widths   {self['widths_orig']} -> {self['widths_final']}",
            f"  val accuracy    {100 * self['val_acc_orig']:.2f}% -> {100 * self['val_acc']:.2f}% "
            f"({self['delta_val_pp']:+.2f} pt; C allows -{self['C']:g})",
        ])  # fmt: skip

    def __str__(self) -> str:
        return self.summary()


SMALL_SPLIT_ROWS = 30
"""Fewer early-stopping rows than this get a warning: one row is more than 3 pt of accuracy."""


def _features(a: Any, what: str) -> torch.Tensor:
    """``a`` (tensor, array, DataFrame, nested list) as a float32 matrix, or a clear error."""
    if isinstance(a, DataLoader | Dataset):
        raise TypeError(
            f"{what} is a {type(a).__name__}: prune_mlp fine-tunes on preloaded rows, so pass "
            "arrays or tensors, e.g. `X, y = map(torch.cat, zip(*loader))`."
        )
    if isinstance(a, torch.Tensor):
        if a.is_floating_point() or a.dtype in (torch.int64, torch.int32, torch.int16,
                                                torch.int8, torch.uint8, torch.bool):  # fmt: skip
            return a.detach().cpu().to(torch.float32)
        raise TypeError(f"{what} is a {a.dtype} tensor: pass real-valued features")
    arr = np.asarray(a)
    try:
        arr = arr.astype(np.float32)
    except (TypeError, ValueError):
        bad = next((v for v in arr.ravel() if not _is_number(v)), None)
        raise TypeError(
            f"{what} holds non-numeric values (e.g. {bad!r}): encode text columns first, e.g. "
            "with pruning_core.prepare_table (one-hot, scaled, fitted on the training rows)."
        ) from None
    return torch.from_numpy(arr)


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _labels(a: Any, what: str) -> torch.Tensor:
    """``a`` as int64 class indices, or a clear error (strings, fractions, a DataLoader)."""
    if isinstance(a, DataLoader | Dataset):
        raise TypeError(f"{what} is a {type(a).__name__}: pass the labels as an array or tensor.")
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.dtype.kind in "OUS":
        if not all(_is_number(v) for v in arr.ravel()):
            shown = ", ".join(repr(v) for v in list(dict.fromkeys(arr.ravel().tolist()))[:3])
            raise TypeError(
                f"{what} holds strings ({shown}, ...): labels must be class indices 0..K-1. "
                "Encode them, e.g. `classes, y = np.unique(y, return_inverse=True)` (the same "
                "classes for every split), or prepare your table with pruning_core.prepare_table."
            )
        arr = arr.astype(np.float64)
    if arr.dtype.kind == "f" and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise ValueError(f"{what} holds values that are not whole class indices 0..K-1")
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one label per row (1-D): got shape {arr.shape}")
    return torch.from_numpy(arr.astype(np.int64))


def _check_split(
    x: torch.Tensor, y: torch.Tensor, names: tuple[str, str], n_classes: int
) -> None:
    xn, yn = names
    if len(x) != len(y):
        raise ValueError(f"{xn} has {len(x)} rows but {yn} has {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{xn} is empty")
    bad = ~torch.isfinite(x)
    if bad.any():
        rows = torch.nonzero(bad.reshape(len(x), -1).any(1)).flatten()
        raise ValueError(
            f"{xn} has {int(bad.sum())} NaN / infinite values in {len(rows)} rows (first: row "
            f"{int(rows[0])}): impute them first (pruning_core.prepare_table fills numeric gaps "
            "with the training median); the network's outputs and its fine-tuning would be NaN."
        )
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(
            f"{yn} holds label {lo if lo < 0 else hi}, but the model has {n_classes} outputs: "
            f"labels must lie in 0..{n_classes - 1} (one output per class)."
        )


def _check_inputs(
    mlp: MLP, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
    stop: tuple[torch.Tensor, torch.Tensor] | None, C: float,
) -> None:  # fmt: skip
    """Errors for inputs prune_mlp cannot use, warnings for inputs that make its answer weak."""
    n_classes = mlp.head.out_features
    if not (isinstance(C, int | float) and np.isfinite(C) and C >= 0):
        raise ValueError(f"C is the accuracy loss you accept, in points (>= 0): got {C!r}")
    _check_split(*train, ("X_train", "y_train"), n_classes)
    _check_split(*val, ("X_val", "y_val"), n_classes)
    if stop is not None:
        _check_split(*stop, ("X_stop", "y_stop"), n_classes)
    if len(torch.unique(train[1])) < 2:
        raise ValueError(
            f"y_train holds one class only (label {int(train[1][0])}): NEON keeps the accuracy "
            "of a classifier, which needs at least two classes."
        )
    n_val = len(val[1])
    if C > 0 and 100.0 / n_val > C:  # (C=0 refuses any loss: the step size does not matter)
        warnings.warn(
            f"X_val has {n_val} rows: one row is {100 / n_val:.3g} pt of accuracy, coarser than "
            f"C={C:g} pt, so the C rule only sees the accuracy in {100 / n_val:.3g}-pt steps. "
            f"Use more validation rows (at least {int(np.ceil(100 / C))} for C={C:g}).",
            stacklevel=3,
        )
    if stop is not None and len(stop[1]) < SMALL_SPLIT_ROWS:
        warnings.warn(
            f"X_stop has {len(stop[1])} rows: early stopping of each fine-tuning judges that "
            f"few (one row is {100 / len(stop[1]):.3g} pt).",
            stacklevel=3,
        )
    classes = torch.bincount(val[1])
    if int((classes > 0).sum()) < 2:
        warnings.warn(
            "y_val holds one class only: its accuracy cannot tell the network from one that "
            "always predicts that class, so the reward cannot see what pruning costs. Give "
            "validation rows of every class.",
            stacklevel=3,
        )
        return
    acc = evaluate(mlp, val, batch_size=None, what="the model")["top1"]
    majority = float(classes.max()) / n_val
    if acc <= majority:
        warnings.warn(
            f"the model's accuracy on X_val is {acc:.3f}, no better than always predicting the "
            f"most frequent class ({majority:.3f}): it looks untrained (or X_val is not scaled "
            "as its training data were). NEON prunes a trained network: train it first.",
            stacklevel=3,
        )


def prune_mlp(
    model: nn.Module,
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    C: float = 1.0,
    passes: int = 4,
    agent: ActorCriticAgent | Mapping[float, ActorCriticAgent] | None = None,
    finetune: str = "changed",
    mode: str = "structural",
    guard: bool = False,
    seed: int = 0,
    threads: int | None = 1,
    X_stop: Any = None,
    y_stop: Any = None,
    progress_bar: bool = True,
    **env_kw: Any,
) -> tuple[nn.Module, NeonReport]:
    """Prune the hidden neurons of a trained MLP with a trained NEON agent -- no training.

    ``model`` is an ``nn.Sequential`` of ``Linear`` / ``BatchNorm1d`` / activation /
    ``Dropout`` layers or an :class:`~pruning_core.models.mlp.MLP`; the pruned network comes
    back in the same form: a Sequential with the caller's layer names and order (so its
    ``state_dict`` keys are the caller's; only the widths shrink), an MLP for an MLP. The input
    model is not modified and the global RNGs are untouched.

    One greedy episode of the agent for ``C`` walks the hidden layers ``passes`` times: ``agent``
    is one agent (used as it is), or agents per C (a mapping C -> agent, e.g.
    :class:`~pruning_core.rl.agents.a2c_set.AgentsByC`), of which the one trained at ``C`` is used
    (else the one of the largest trained C below ``C``: :meth:`AgentsByC.for_C`); by default the
    agents shipped in ``pruning_core/assets/neon_agent.pt``. Each action
    keeps 100 / 90 / 80 / 70 / 60 % of a layer's neurons (largest incoming-weight L1 norm),
    removes the rest structurally and fine-tunes briefly on ``X_train`` with early stopping on
    ``X_stop`` / ``y_stop`` when given (other rows than ``X_val``, so the reward never reads the
    rows early stopping chose the weights on), else on ``X_val`` (inputs scaled as for training;
    the test split is never needed). The reward reads ``X_val``. ``C`` is the
    accuracy, in percentage points, you accept to lose. ``guard=True`` undoes any action after
    which the validation accuracy fell more than ``C`` below the original (not part of NEON).

    Features are arrays, tensors or DataFrames of numbers; labels class indices 0..K-1 for a
    model with K outputs. Strings, NaN, out-of-range labels, one class or a ``DataLoader`` raise
    an error that names the fix; a model no better than the majority class on ``X_val`` and
    validation rows too few to resolve ``C`` (one row of 40 is 2.5 pt) give a warning.

    ``threads`` torch threads are used meanwhile (1: fastest for small MLPs; None: as set).
    ``progress_bar`` shows one bar over the steps (off with ``PRUNING_CORE_PROGRESS=0``).
    Further keyword arguments go to :class:`~pruning_core.rl.envs.neon.NeonEnvConfig` (e.g.
    ``ft=...`` for the fine-tuning budget, ``stat_rows=...``).

    Returns ``(pruned_model, report)``: the report is a :class:`NeonReport`, a dict with the
    keys of :data:`REPORT_KEYS` (parameter counts, ``compression``, ``val_acc_orig`` and
    ``val_acc``, the widths, the per-step log ``steps``, ``actions``, ``agent_C``: the C the
    agent used was trained for) whose ``print`` is a short summary.
    """
    mlp = copy.deepcopy(as_mlp(model)).cpu().eval()
    if (X_stop is None) != (y_stop is None):
        raise ValueError("give both X_stop and y_stop, or neither")
    train = (_features(X_train, "X_train"), _labels(y_train, "y_train"))
    val = (_features(X_val, "X_val"), _labels(y_val, "y_val"))
    given_stop = (
        None if X_stop is None else (_features(X_stop, "X_stop"), _labels(y_stop, "y_stop"))
    )
    n_in = mlp.blocks[0].linear.in_features
    for x, name in ((train[0], "X_train"), (val[0], "X_val")):
        if x.ndim != 2 or x.shape[1] != n_in:
            raise ValueError(
                f"the network expects {n_in} input features per row; {name} has shape "
                f"{tuple(x.shape)}"
            )
    _check_inputs(mlp, train, val, given_stop, C)
    stop = val if given_stop is None else given_stop
    data = Splits("user", mlp.head.out_features, train=train, reward=val, stop=stop)
    task = NeonTask.from_model(mlp, data, name="user")
    env = NeonEnv(
        [task],
        NeonEnvConfig(passes=passes, C_values=(float(C),), finetune=finetune, mode=mode,
                      guard=guard, **env_kw),
    )  # fmt: skip
    agent_C: float | None = None
    if agent is None or isinstance(agent, Mapping):
        if agent is None:
            by_C = load_shipped_agents()
        else:
            by_C = agent if isinstance(agent, AgentsByC) else AgentsByC(agent)
        chosen = by_C.for_C(C)
        if not by_C.shared:
            agent_C = next(c for c, a in by_C.items() if a is chosen)
        agent = chosen
    t0 = time.perf_counter()
    bar = progress(
        total=env.config.passes * mlp.n_hidden, desc=f"NEON prune (C={C:g})", unit="step",
        **({} if progress_bar else {"disable": True}),
    )  # fmt: skip
    with torch_threads(threads), bar:
        greedy = partial(agent.act, greedy=True)
        ep = rollout(env, greedy, seed=seed, options={"task": 0, "C": float(C)},
                     on_step=lambda _t: bar.update(1))  # fmt: skip
        actions = [int(a) for a in ep.actions]
        pruned = env.final_model().eval()
        report = NeonReport(env.episode_report())
    report["actions"] = actions
    report["agent_C"] = agent_C
    report["keep_per_step"] = [env.config.keep_fractions[a] for a in actions]
    report["seconds"] = time.perf_counter() - t0
    out: nn.Module = to_sequential(pruned, like=model) if isinstance(model, nn.Sequential) else pruned
    return out, report
