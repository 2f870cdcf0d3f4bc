"""Baselines NEON is compared with, on the same networks, under the same rules.

Four baselines (:data:`BASELINES` holds each one's label and kind):

* :func:`uniform_rounds` -- **uniform neuron pruning** (structural): after round ``r`` every
  hidden layer keeps ``min_keep_share ** (r / rounds)`` of its original neurons, those with the
  largest incoming-weight L1 norm (NEON's ranking); the layers really shrink.
* :func:`global_l1_rounds` -- **global L1-norm neuron pruning** (structural): one ranking of the
  neurons of every hidden layer by the *mean* absolute incoming weight (the L1 norm divided by
  the fan-in, so layers of different input width compare), the same shares of all hidden neurons
  as the uniform schedule, at least one neuron per layer; the layers really shrink.
* :func:`gmp_rounds` -- **global magnitude weight pruning** (**unstructured**): one magnitude
  threshold over every ``Linear`` weight (biases and batch-norm stay dense), raised over the
  rounds on a geometric schedule. Its size is the count of *nonzero* parameters: the tensors keep
  their shapes, so its compression is not a smaller network (column ``structural`` is False).
* the **random agent** -- uniformly random actions through the same :class:`NeonEnv`
  (:func:`random_agent_episode`); with the env's ``guard`` it is held to ``C`` by the rule below.

**One rule for C** (:func:`~pruning_core.rl.rewards.within_allowed_loss`, the very test NEON's
reward pays ``-L**3`` on): a pruning step is kept only while the network's accuracy on the
``reward`` split stays within ``max(C, noise margin)`` points of the original's. The schedules
end at their first step that breaks it (their later steps only cut deeper; :func:`select_by_C`
picks that point from one run, for every ``C``); agents (NEON with the guard, the random agent)
undo that step and go on. The ``test`` split is only reported.

**One fine-tuning** (the same as NEON's ``finetune="changed"``): after every pruning step the
parameters of the layers that step changed (:meth:`~pruning_core.models.mlp.MLP.step_params`:
each pruned ``Linear``, its batch-norm and the ``Linear`` that reads it; every ``Linear`` for
GMP, whose threshold moves in all of them) are trained with the same :class:`TrainConfig`
(NEON's ``ft``), early stopping on the ``stop`` split with the best weights kept, seeded from
the round. ``rounds`` defaults to NEON's number of steps (``passes`` x hidden layers), so each
method gets the same number of fine-tunings of the same length.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from pruning_core.data.splits import Splits
from pruning_core.models.mlp import MLP
from pruning_core.pruning.layers import prunable_layers
from pruning_core.pruning.masks import Masker
from pruning_core.pruning.neurons import (
    count_params,
    n_keep_for,
    nonzero_params,
    remove_neurons,
    top_neurons,
)
from pruning_core.rl.rewards import within_allowed_loss
from pruning_core.rl.rollout import rollout, uniform_random
from pruning_core.train.loop import TrainConfig, evaluate, fit

__all__ = [
    "BASELINES",
    "global_l1_rounds",
    "global_l1_keep",
    "gmp_rounds",
    "random_agent_episode",
    "select_by_C",
    "uniform_rounds",
]


BASELINES: dict[str, dict[str, Any]] = {
    "uniform": {"label": "uniform neurons (structural)", "structural": True},
    "global_l1": {"label": "global L1 neurons (structural)", "structural": True},
    "gmp": {"label": "global magnitude weights (unstructured, nonzero count)",
            "structural": False},
    "random": {"label": "random agent (structural, guarded at C)", "structural": True},
}  # fmt: skip
"""Each baseline's label (what every table and figure calls it) and whether it gives a smaller
network (``structural``) or only zeros in tensors of the original shapes."""


def _round_row(
    r: int,
    model: nn.Module,
    params0: int,
    params: int,
    data: Splits,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row of a pruning schedule; ``base`` is round 0's row (None: this is round 0)."""
    val = evaluate(model, data.tensors("reward"), batch_size=None)["top1"]
    test = evaluate(model, data.tensors("test"), batch_size=None)["top1"]
    base_val, base_test = (val, test) if base is None else (base["val_acc"], base["test_acc"])
    return {
        "round": r,
        "params": params,
        "compression": params0 / params,
        "val_acc": val,
        "test_acc": test,
        "delta_val_pp": (val - base_val) * 100,
        "delta_test_pp": (test - base_test) * 100,
    }


def _check(rounds: int, data: Splits) -> None:
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    for s in ("train", "reward", "stop", "test"):
        if not data.has(s):
            raise ValueError(f"{data.name}: the baselines need a {s!r} split")


def _stops(row: dict[str, Any], stop_below_pp: float | None, noise_margin_pp: float) -> bool:
    return stop_below_pp is not None and not within_allowed_loss(
        row["delta_val_pp"], stop_below_pp, noise_margin_pp
    )


def gmp_rounds(
    model: MLP,
    data: Splits,
    rounds: int,
    ft: TrainConfig,
    max_sparsity: float = 0.99,
    stop_below_pp: float | None = None,
    min_keep: float = 0.01,
    noise_margin_pp: float = 0.0,
) -> pd.DataFrame:
    """Global magnitude **weight** pruning (unstructured) with retraining; one row per round
    (round 0 = dense).

    Sparsity after round ``r`` is ``1 - (1 - max_sparsity) ** (r / rounds)`` of all Linear
    weights; ``min_keep`` keeps that share of each layer's largest weights (no layer collapses).
    Each round fine-tunes every parameter (the threshold moves in every Linear) with the masks
    held. ``params`` counts nonzero parameters; ``dense_params`` what the network still stores.
    ``stop_below_pp`` ends the schedule at the first round outside that loss (see the module).
    """
    _check(rounds, data)
    model = copy.deepcopy(model)
    masker = Masker(model, layers=prunable_layers(model, types=(nn.Linear,)))
    params0 = count_params(model)
    rows = [_round_row(0, model, params0, params0, data)]
    t0 = time.perf_counter()
    for r in range(1, rounds + 1):
        sparsity = 1.0 - (1.0 - max_sparsity) ** (r / rounds)
        masker.global_magnitude(sparsity, min_keep=min_keep, from_dense=False)
        fit(model, data.tensors("train"), replace(ft, seed=ft.seed + r),
            val_data=data.tensors("stop"), masker=masker)  # fmt: skip
        masker.apply()
        row = _round_row(r, model, params0, nonzero_params(model), data, rows[0])
        row["sparsity"] = sparsity
        rows.append(row)
        if _stops(row, stop_below_pp, noise_margin_pp):
            break
    df = pd.DataFrame(rows)
    df["dense_params"] = params0
    df["structural"] = False
    df["seconds"] = time.perf_counter() - t0
    return df


def _neuron_rounds(
    model: MLP,
    data: Splits,
    rounds: int,
    ft: TrainConfig,
    min_keep_share: float,
    stop_below_pp: float | None,
    noise_margin_pp: float,
    plan: Callable[[MLP, list[int], float], list[torch.Tensor | None]],
) -> pd.DataFrame:
    """A structural neuron schedule: ``plan(model, widths0, share)`` gives each layer's kept
    neuron indices (None: unchanged); the changed layers are removed and fine-tuned."""
    _check(rounds, data)
    if not 0.0 < min_keep_share <= 1.0:
        raise ValueError(f"min_keep_share must lie in (0, 1], got {min_keep_share}")
    if not isinstance(model, MLP):
        raise TypeError(f"expected a pruning_core.models.mlp.MLP, got {type(model).__name__}")
    model = copy.deepcopy(model)
    widths0 = [b.width for b in model.blocks]
    params0 = count_params(model)
    rows = [_round_row(0, model, params0, params0, data)]
    t0 = time.perf_counter()
    for r in range(1, rounds + 1):
        share = min_keep_share ** (r / rounds)
        keeps = plan(model, widths0, share)
        changed = [layer for layer, keep in enumerate(keeps) if keep is not None]
        for layer in changed:
            remove_neurons(model, layer, keeps[layer])  # type: ignore[arg-type]
        if changed:
            fit(model, data.tensors("train"), replace(ft, seed=ft.seed + r),
                val_data=data.tensors("stop"), params=model.step_params(changed))  # fmt: skip
        row = _round_row(r, model, params0, count_params(model), data, rows[0])
        row["keep_share"] = share
        row["widths"] = "-".join(str(b.width) for b in model.blocks)
        rows.append(row)
        if _stops(row, stop_below_pp, noise_margin_pp):
            break
    df = pd.DataFrame(rows)
    df["dense_params"] = df["params"]
    df["structural"] = True
    df["seconds"] = time.perf_counter() - t0
    return df


def _uniform_plan(model: MLP, widths0: list[int], share: float) -> list[torch.Tensor | None]:
    keeps: list[torch.Tensor | None] = []
    for layer, w0 in enumerate(widths0):
        target = n_keep_for(w0, share)
        width = model.blocks[layer].width
        keeps.append(top_neurons(model, layer, target) if target < width else None)
    return keeps


@torch.no_grad()
def global_l1_keep(model: MLP, n_keep: int) -> list[torch.Tensor]:
    """Sorted kept neuron indices of each hidden layer when ``n_keep`` neurons are kept over all
    hidden layers together: the largest mean absolute incoming weights (L1 norm / fan-in), the
    best neuron of every layer kept first so that no layer is emptied."""
    if not isinstance(model, MLP):
        raise TypeError(f"expected a pruning_core.models.mlp.MLP, got {type(model).__name__}")
    widths = [b.width for b in model.blocks]
    if not len(widths) <= n_keep <= sum(widths):
        raise ValueError(f"n_keep must lie in [{len(widths)}, {sum(widths)}], got {n_keep}")
    scores = [b.linear.weight.detach().abs().mean(dim=1).cpu() for b in model.blocks]
    layer_of = torch.cat([torch.full((w,), i) for i, w in enumerate(widths)])
    index_of = torch.cat([torch.arange(w) for w in widths])
    flat = torch.cat(scores).clone()
    chosen = torch.zeros(len(flat), dtype=torch.bool)
    start = 0
    for w, s in zip(widths, scores, strict=True):
        chosen[start + int(torch.argmax(s))] = True
        start += w
    rest = n_keep - len(widths)
    if rest > 0:
        flat[chosen] = -torch.inf
        chosen[torch.topk(flat, rest).indices] = True
    return [index_of[chosen & (layer_of == i)].sort().values for i in range(len(widths))]


def _global_plan(model: MLP, widths0: list[int], share: float) -> list[torch.Tensor | None]:
    n_keep = max(len(widths0), n_keep_for(sum(widths0), share))
    widths = [b.width for b in model.blocks]
    if n_keep >= sum(widths):
        return [None] * len(widths)
    keeps = global_l1_keep(model, n_keep)
    return [k if len(k) < w else None for k, w in zip(keeps, widths, strict=True)]


def uniform_rounds(
    model: MLP,
    data: Splits,
    rounds: int,
    ft: TrainConfig,
    min_keep_share: float = 0.6**4,
    stop_below_pp: float | None = None,
    noise_margin_pp: float = 0.0,
) -> pd.DataFrame:
    """Uniform structural neuron pruning with retraining; one row per round (round 0 = dense).

    After round ``r`` every hidden layer keeps ``min_keep_share ** (r / rounds)`` of its original
    neurons (rounded half up, at least one), chosen by incoming-weight L1 norm among the neurons
    still present; then the changed layers are fine-tuned (see the module).
    """
    return _neuron_rounds(model, data, rounds, ft, min_keep_share, stop_below_pp,
                          noise_margin_pp, _uniform_plan)  # fmt: skip


def global_l1_rounds(
    model: MLP,
    data: Splits,
    rounds: int,
    ft: TrainConfig,
    min_keep_share: float = 0.6**4,
    stop_below_pp: float | None = None,
    noise_margin_pp: float = 0.0,
) -> pd.DataFrame:
    """Global L1-norm structural neuron pruning with retraining; one row per round.

    After round ``r`` the network keeps ``min_keep_share ** (r / rounds)`` of all its original
    hidden neurons, chosen over all layers together by :func:`global_l1_keep`, so the shares per
    layer differ; the changed layers are fine-tuned (see the module).
    """
    return _neuron_rounds(model, data, rounds, ft, min_keep_share, stop_below_pp,
                          noise_margin_pp, _global_plan)  # fmt: skip


def select_by_C(rounds: pd.DataFrame, C: float, noise_margin_pp: float = 0.0) -> pd.Series:
    """The row of the last round before the first that is no longer within ``C`` (and the noise
    margin) on the reward split (round 0, the unpruned network, when round 1 already is not)."""
    ok = np.array([within_allowed_loss(d, C, noise_margin_pp) for d in rounds["delta_val_pp"]])
    bad = np.flatnonzero(~ok)
    last = (bad[0] - 1) if len(bad) else len(rounds) - 1
    return rounds.iloc[max(int(last), 0)]


def random_agent_episode(env: Any, seed: int = 0, **reset_options: Any) -> dict[str, Any]:
    """One episode of uniformly random actions through ``env``; returns its episode report
    (with the env's ``guard`` on, an action that leaves ``C`` is undone, as for NEON)."""
    policy = uniform_random(int(env.action_space.n), np.random.default_rng(seed))
    rollout(env, policy, seed=seed, options=reset_options or None)
    return env.episode_report()
