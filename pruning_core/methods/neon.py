"""NEON as a method: trained base networks, and pruning a new network with a trained agent."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pruning_core.config import torch_threads
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
)
from pruning_core.rl.agents.a2c import ActorCriticAgent, AgentsByC, load_shipped_agents
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig, NeonTask
from pruning_core.rl.rollout import rollout
from pruning_core.runs import ArtefactKey, cached
from pruning_core.train.loop import TrainConfig, evaluate, fit, planned_steps

__all__ = [
    "BaseNetKey",
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


def _tensor(a: Any, dtype: torch.dtype) -> torch.Tensor:
    return (
        a.to(dtype) if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a), dtype=dtype)
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
    **env_kw: Any,
) -> tuple[MLP, dict[str, Any]]:
    """Prune the hidden neurons of a trained MLP with a trained NEON agent -- no training.

    One greedy episode of the agent for ``C`` walks the hidden layers ``passes`` times: ``agent``
    is one agent (used as it is), or agents per C (a mapping C -> agent, e.g.
    :class:`~pruning_core.rl.agents.a2c.AgentsByC`), of which the one trained at ``C`` is used
    (else the one of the largest trained C below ``C``: :meth:`AgentsByC.for_C`); by default the
    agents shipped in ``pruning_core/assets/neon_agent.pt``. Each action
    keeps 100 / 90 / 80 / 70 / 60 % of a layer's neurons (largest incoming-weight L1 norm),
    removes the rest structurally and fine-tunes briefly on ``X_train`` with early stopping on
    ``X_stop`` / ``y_stop`` when given (other rows than ``X_val``, so the reward never reads the
    rows early stopping chose the weights on), else on ``X_val`` (inputs scaled as for training;
    the test split is never needed). The reward reads ``X_val``. ``C`` is the
    accuracy, in percentage points, you accept to lose. ``guard=True`` undoes any action after
    which the validation accuracy fell more than ``C`` below the original (not part of NEON).

    ``threads`` torch threads are used meanwhile (1: fastest for small MLPs; None: as set).
    Further keyword arguments go to :class:`~pruning_core.rl.envs.neon.NeonEnvConfig` (e.g.
    ``ft=...`` for the fine-tuning budget, ``stat_rows=...``).

    Returns ``(smaller_model, report)``; the input model is not modified. The report holds the
    parameter counts, the compression (original / pruned parameters), validation accuracies
    before and after, the kept widths, the per-step log and ``agent_C`` (the C the agent used
    was trained for; None for a single agent or a C-conditioned one).
    """

    mlp = copy.deepcopy(as_mlp(model)).cpu().eval()
    val = (_tensor(X_val, torch.float32), _tensor(y_val, torch.long))
    if (X_stop is None) != (y_stop is None):
        raise ValueError("give both X_stop and y_stop, or neither")
    stop = val if X_stop is None else (_tensor(X_stop, torch.float32), _tensor(y_stop, torch.long))
    data = Splits(
        "user", mlp.head.out_features,
        train=(_tensor(X_train, torch.float32), _tensor(y_train, torch.long)),
        reward=val, stop=stop,
    )  # fmt: skip
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
    with torch_threads(threads):
        greedy = partial(agent.act, greedy=True)
        ep = rollout(env, greedy, seed=seed, options={"task": 0, "C": float(C)})
        actions = [int(a) for a in ep.actions]
        pruned = env.final_model().eval()
        report = env.episode_report()
    report["actions"] = actions
    report["agent_C"] = agent_C
    report["keep_per_step"] = [env.config.keep_fractions[a] for a in actions]
    report["seconds"] = time.perf_counter() - t0
    return pruned, report

