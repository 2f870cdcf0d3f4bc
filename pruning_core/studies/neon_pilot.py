"""NEON's reward pilot (issue 25 item 2): a reward switch tested on a pilot seed, never the study's.

The committed 04 study's unguarded agents end over ``C`` on the *reward* split itself on 29% of
the held-out networks at ``C = 1`` (36% on test), while 24% end more than the noise margin
*above* their original reward-split accuracy (7% on test): the paper's ``+L**3`` for a rise pays a
gamble on the reward split's noise as much as ``-L**3`` charges for a loss. Each *variant* of
:data:`VARIANTS` changes one field of the study's MDP (:class:`~pruning_core.rl.envs.neon.
NeonEnvConfig`); everything else is notebook 04's (:func:`~pruning_core.studies.neon_sizes.
neon_study_sizes`), at the pilot's ``seed``: other data splits, other random architectures,
other folds, so nothing of the study's held-out networks enters the choice.

Per variant, the fold agents (one per C) train as the study's do (the plateau rule on the
training datasets' validation networks); each plays its greedy policy once on every held-out
network of its fold. ``python -m pruning_core.studies.neon_pilot`` writes
``results/<profile>/pilots/neon_reward.csv`` (one row per variant, C and network) and
``neon_reward.json`` (per variant and C: compression, test change, the shares over C on the
reward and test splits, distinct greedy strings, and the variant against the paper's reward
paired by network and clustered by dataset).

**The decision rule, fixed before the pilot ran:** a variant replaces the paper's reward in the
study when, at C = 1 on the pilot's held-out networks, its share of networks over C on test is at
least 10 points below the paper's, its mean compression is at least the committed study's best
constant keep's (x1.83 at C = 1), and at C = 5 its share over C is no higher than the paper's;
of several such variants, the one with the lowest share over C at C = 1.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from pruning_core.config import progress, results_root
from pruning_core.rl.envs.neon import NeonEnv, NeonTask
from pruning_core.runs import write_csv, write_json
from pruning_core.studies import neon as ns
from pruning_core.studies.neon_constant import cluster_compare, network_columns
from pruning_core.studies.neon_eval import greedy_episode, row_from_report

__all__ = ["PILOT_SEED", "VARIANTS", "heldout_greedy", "pilot_sizes", "pilot_summary", "run_pilot"]

PILOT_SEED = 100
"""The pilot's seed (data splits, architectures, folds, agents): the study runs seed 0."""

VARIANTS: dict[str, dict[str, Any]] = {
    "paper": {"improvement_reward": "cubic", "within_weight": 0.0},  # +L**3 for a rise
    "linear_improvement": {"improvement_reward": "linear"},  # a rise earns L
    # within C (or a rise) earns L**3 / 9 against -L**3 over C: removing L is worth its risk
    # while the chance of ending over C is below 10%, the share
    "risk_10pct": {"improvement_reward": "linear", "within_weight": 1 / 9},
}
"""Variant name -> overrides of the study's NeonEnvConfig."""


def pilot_sizes(
    profile: str, variant: str, seed: int = PILOT_SEED, C_values: Sequence[float] = (1.0, 5.0)
) -> ns.NeonStudySizes:
    """Notebook 04's sizes at ``seed`` with the variant's env overrides, at ``C_values`` only."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {sorted(VARIANTS)}")
    sizes = ns.neon_study_sizes(profile, seed=seed)
    Cs = tuple(float(c) for c in C_values)
    return replace(sizes, C_values=Cs, env=replace(sizes.env, C_values=Cs, **VARIANTS[variant]))


def heldout_greedy(
    sizes: ns.NeonStudySizes,
    data: dict[str, Any],
    nets: dict[tuple[str, int], Any],
    folds: list[list[str]],
    agents: list[Any],
    label: str,
) -> pd.DataFrame:
    """Every held-out network of every fold pruned once by its fold's greedy agent at each C."""
    rows = []
    jobs = [(k, d, i) for k, names in enumerate(folds) for d in names
            for i in range(sizes.test_nets_per_dataset)]  # fmt: skip
    for k, d, i in progress(jobs, desc=f"held-out ({label})", unit="net"):
        base = nets[(d, i)]
        env = NeonEnv([NeonTask.from_base(base, data[d])], sizes.env)
        common = network_columns(base, data[d], k)
        for C in sizes.C_values:
            t0 = time.perf_counter()
            rep = greedy_episode(env, agents[k].for_C(C), C, sizes.seed)
            row = row_from_report(rep, env.final_model(), data[d], t0)
            row.pop("_test")
            rows.append({**common, "method": label, "C": C, **row,
                         "agent_episodes": agents[k][C].episodes_done})  # fmt: skip
    df = pd.DataFrame(rows)
    df["delta_test_pp"] = (df["test_acc"] - df["test_acc_orig"]) * 100
    return df


def pilot_summary(results: pd.DataFrame, reference: str = "paper", seed: int = 0) -> dict:
    """Per variant and C: means, shares over C (reward split and test), distinct greedy strings,
    and the variant against ``reference`` (:func:`~pruning_core.studies.neon_constant.
    cluster_compare`: paired by network, bootstrap over datasets)."""
    out: dict[str, Any] = {}
    for (m, C), g in results.groupby(["method", "C"]):
        entry = {
            "n_networks": int(len(g)),
            "n_datasets": int(g["dataset"].nunique()),
            "mean_compression": float(g["compression"].mean()),
            "geo_mean_compression": float(np.exp(np.log(g["compression"]).mean())),
            "mean_delta_test_pp": float(g["delta_test_pp"].mean()),
            "mean_delta_val_pp": float(g["delta_val_pp"].mean()),
            "share_over_C_val": float((g["delta_val_pp"] < -C).mean()),
            "share_over_C_test": float((g["delta_test_pp"] < -C).mean()),
            "share_rise_val": float((g["delta_val_pp"] > 0).mean()),
            "distinct_strings": int(g["actions"].astype(str).nunique()),
            "agent_episodes": float(g.drop_duplicates("fold")["agent_episodes"].mean()),
        }
        if m != reference and reference in set(results["method"]):
            entry["vs_reference"] = cluster_compare(results, m, reference, C, seed=seed)
        out.setdefault(str(m), {})[f"{C:g}"] = entry
    return out


def run_pilot(
    profile: str = "cpu", variants: Sequence[str] = tuple(VARIANTS), seed: int = PILOT_SEED,
    C_values: Sequence[float] = (1.0, 5.0),
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Train and evaluate every variant; write the pilot's csv and json; return both."""
    t0 = time.perf_counter()
    # the data, base networks and folds do not depend on the reward: set up once
    data, nets, folds = ns.admitted_study(pilot_sizes(profile, variants[0], seed, C_values))
    frames, seconds = [], {}
    for v in variants:
        tv = time.perf_counter()
        sizes = pilot_sizes(profile, v, seed, C_values)
        agents, _ = ns.train_fold_agents(sizes, data, nets, folds)
        frames.append(heldout_greedy(sizes, data, nets, folds, agents, v))
        seconds[v] = time.perf_counter() - tv
    results = pd.concat(frames, ignore_index=True)
    summary = {
        "what": "NEON reward pilot: greedy fold agents on held-out networks, pilot seed",
        "seed": seed, "profile": profile, "C_values": [float(c) for c in C_values],
        "variants": {v: VARIANTS[v] for v in variants}, "seconds": seconds,
        "total_seconds": time.perf_counter() - t0, "per_variant": pilot_summary(results, seed=seed),
    }  # fmt: skip
    out = results_root() / profile / "pilots"
    write_csv(out / "neon_reward.csv", results)
    write_json(out / "neon_reward.json", summary, allow_nan=True)  # a CI of 1 dataset is NaN
    return results, summary


def _main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=sorted(VARIANTS))
    p.add_argument("--seed", type=int, default=PILOT_SEED)
    p.add_argument("--C", nargs="+", type=float, default=[1.0, 5.0])
    args = p.parse_args(argv)
    _, summary = run_pilot(args.profile, args.variants, args.seed, args.C)
    print(json.dumps(summary["per_variant"], indent=1)[:4000])


if __name__ == "__main__":  # pragma: no cover
    _main()
