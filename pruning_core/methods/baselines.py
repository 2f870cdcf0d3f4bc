"""Baselines that NEON is compared with, on the same networks and the same fine-tuning.

* :func:`gmp_rounds` -- global L1 magnitude pruning with retraining: one magnitude threshold over
  the weights of every ``Linear`` (hidden layers and head; biases and batch-norm stay dense),
  raised over ``rounds`` rounds on a geometric schedule up to ``max_sparsity``, each round
  followed by the same brief fine-tuning as a NEON step (whole network, masks held fixed).
  Its size is counted as **nonzero parameters**, so its compression is comparable with NEON's
  (original parameters / remaining parameters).
* :func:`uniform_rounds` -- uniform structural neuron pruning: every hidden layer keeps the same
  share of its original neurons (largest incoming-weight L1 norm), lowered over ``rounds`` rounds
  geometrically down to NEON's smallest reachable share (``0.6 ** passes``), each round fine-tuned.
* :func:`select_by_C` -- both schedules are run once; for an allowed loss ``C`` the baseline keeps
  the last round before the first one whose validation accuracy is more than ``C`` points below
  the original (the validation split decides, as for NEON; the test split is only reported).
* :func:`random_agent_episode` -- uniformly random actions through the same :class:`NeonEnv`.

``rounds`` defaults to NEON's number of steps (``passes`` x hidden layers), so every method gets
the same number of fine-tunings of the same length.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
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
from pruning_core.rl.rollout import rollout, uniform_random
from pruning_core.train.loop import TrainConfig, evaluate, fit

__all__ = [
    "gmp_rounds",
    "random_agent_episode",
    "select_by_C",
    "uniform_rounds",
]


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


def gmp_rounds(
    model: MLP,
    data: Splits,
    rounds: int,
    ft: TrainConfig,
    max_sparsity: float = 0.99,
    stop_below_pp: float | None = None,
    min_keep: float = 0.01,
) -> pd.DataFrame:
    """Iterative global magnitude pruning with retraining; one row per round (round 0 = dense).

    ``data`` needs preloaded ``train``, ``reward``, ``stop`` and ``test`` splits: each round
    fine-tunes on ``train`` stopping early on ``stop``; ``reward`` gives the validation accuracy
    the schedule is selected by and ``test`` the reported one. Sparsity after round
    ``r`` is ``1 - (1 - max_sparsity) ** (r / rounds)`` of all Linear weights; ``min_keep``
    keeps that share of each layer's largest weights (no layer collapses). ``stop_below_pp``
    ends the schedule once validation accuracy is that many points below the original.
    """
    model = copy.deepcopy(model)
    layers = prunable_layers(model, types=(nn.Linear,))
    masker = Masker(model, layers=layers)
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
        if stop_below_pp is not None and row["delta_val_pp"] < -stop_below_pp:
            break
    df = pd.DataFrame(rows)
    df["seconds"] = time.perf_counter() - t0
    return df


def uniform_rounds(
    model: MLP,
    data: Splits,
    rounds: int,
    ft: TrainConfig,
    min_keep_share: float = 0.6**4,
    stop_below_pp: float | None = None,
) -> pd.DataFrame:
    """Uniform structural neuron pruning with retraining; one row per round (round 0 = dense).

    After round ``r`` every hidden layer keeps ``min_keep_share ** (r / rounds)`` of its original
    neurons (rounded half up, at least one), chosen by incoming-weight L1 norm among the neurons
    still present; then the whole network is fine-tuned.
    """
    model = copy.deepcopy(model)
    widths0 = [b.width for b in model.blocks]
    params0 = count_params(model)
    rows = [_round_row(0, model, params0, params0, data)]
    t0 = time.perf_counter()
    for r in range(1, rounds + 1):
        share = min_keep_share ** (r / rounds)
        changed = False
        for layer, w0 in enumerate(widths0):
            target = n_keep_for(w0, share)
            width = model.blocks[layer].width
            if target < width:
                remove_neurons(model, layer, top_neurons(model, layer, target))
                changed = True
        if changed:
            fit(model, data.tensors("train"), replace(ft, seed=ft.seed + r),
                val_data=data.tensors("stop"))  # fmt: skip
        row = _round_row(r, model, params0, count_params(model), data, rows[0])
        row["keep_share"] = share
        row["widths"] = "-".join(str(b.width) for b in model.blocks)
        rows.append(row)
        if stop_below_pp is not None and row["delta_val_pp"] < -stop_below_pp:
            break
    df = pd.DataFrame(rows)
    df["seconds"] = time.perf_counter() - t0
    return df


def select_by_C(rounds: pd.DataFrame, C: float) -> pd.Series:
    """The row of the last round before the first whose validation accuracy fell more than ``C``
    points below the original (round 0, the unpruned network, when round 1 already did)."""
    ok = rounds["delta_val_pp"] >= -float(C) - 1e-9
    bad = np.flatnonzero(~ok.to_numpy())
    last = (bad[0] - 1) if len(bad) else len(rounds) - 1
    return rounds.iloc[max(int(last), 0)]


def random_agent_episode(env: Any, seed: int = 0, **reset_options: Any) -> dict[str, Any]:
    """One episode of uniformly random actions through ``env``; returns its episode report."""
    policy = uniform_random(int(env.action_space.n), np.random.default_rng(seed))
    rollout(env, policy, seed=seed, options=reset_options or None)
    return env.episode_report()

