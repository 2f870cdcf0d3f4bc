"""Notebook 04's evaluation: every method on every held-out network at every C (the agent for
that C), and the tables and summary built from those rows (means per method, paired tests,
per-layer reduction, timing, the shipped agents on their held-out group).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from pruning_core.config import progress
from pruning_core.data.splits import Splits
from pruning_core.methods.baselines import (
    BASELINES,
    global_l1_rounds,
    gmp_rounds,
    random_agent_episode,
    select_by_C,
    uniform_rounds,
)
from pruning_core.methods.neon import prune_mlp
from pruning_core.models.mlp import BaseNet
from pruning_core.rl.agents.a2c import ActorCriticAgent
from pruning_core.rl.agents.a2c_set import AgentsByC
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig, NeonTask
from pruning_core.rl.envs.neon_batched import NeonBatch
from pruning_core.rl.rollout import rollout
from pruning_core.runs import ArtefactKey, cached
from pruning_core.stats import finite_or_none
from pruning_core.studies.neon import (
    METHODS,
    SHIP_HOLDOUT_FOLD,
    STRUCTURAL,
    NeonStudySizes,
    agents_id,
    with_threads,
)
from pruning_core.studies.neon_constant import YARDSTICKS, network_columns
from pruning_core.studies.neon_report import layer_widths, mean_ci
from pruning_core.train.loop import evaluate

__all__ = [
    "EvalKey",
    "choose_best_C",
    "evaluate_study",
    "greedy_episode",
    "layer_reduction",
    "method_means",
    "paired_tests",
    "per_dataset_table",
    "row_from_report",
    "shipped_agent_unseen",
    "study_summary",
    "timing_study",
]


@dataclass(frozen=True)
class EvalKey(ArtefactKey):
    """One test network's evaluation rows: the agent, the base network and the settings."""

    KIND = "neon/eval"
    VERSION = 5  # 5: stored as plain lists (a DataFrame did not load, so every run rebuilt it)
    dataset: str
    index: int
    agent: str
    """The per-C agents' :attr:`AgentKey.hashname` joined (:func:`agents_id`)."""
    episodes: tuple[int, ...]
    """Episodes each per-C agent was trained for."""
    base: str
    """The base network's key."""
    C: tuple[float, ...]
    env: NeonEnvConfig

    @property
    def prefix(self) -> str:
        """Dataset and network index."""
        return f"{self.dataset}__{self.index}"


def greedy_episode(env: NeonEnv, agent: ActorCriticAgent, C: float, seed: int) -> dict[str, Any]:
    """One greedy episode of ``agent`` on ``env``'s task 0 at ``C``: its report and actions."""
    greedy = functools.partial(agent.act, greedy=True)
    ep = rollout(env, greedy, seed=seed, options={"task": 0, "C": C})
    rep = env.episode_report()
    rep["actions"] = "".join(map(str, ep.actions))
    return rep


def row_from_report(rep: dict[str, Any], model: torch.nn.Module, data: Splits, t0: float) -> dict:
    """A ``results.csv`` row of an episode report and its final ``model`` (test accuracy added;
    ``_test`` is dropped by the caller's table)."""
    test = evaluate(model, data.tensors("test"), batch_size=None)["top1"]
    return {
        "params_pruned": rep["params_pruned"],
        "compression": rep["compression"],
        "val_acc": rep["val_acc"],
        "delta_val_pp": rep["delta_val_pp"],
        "test_acc": test,
        "widths_final": "-".join(map(str, rep["widths_final"])),
        "actions": rep.get("actions", ""),
        "seconds": time.perf_counter() - t0,
        "_test": test,
    }


def evaluate_network(
    sizes: NeonStudySizes, base: BaseNet, data: Splits, agents: AgentsByC, fold: int
) -> pd.DataFrame:
    """Prune one test network with the agent for each C (``agents.for_C``) and every baseline at
    each C; one row each.

    The C rule and the fine-tuning are the same for all (:mod:`pruning_core.methods.baselines`):
    ``neon_guard`` and the random agent undo an action that leaves C (the env's guard), the
    schedules stop before their first round that does, all with the env's noise margin.
    """
    task = NeonTask.from_base(base, data)
    cfg = replace(sizes.env, C_values=sizes.C_values)
    env = NeonEnv([task], cfg)
    guarded = NeonEnv([task], replace(cfg, guard=True))
    orig = base.model()
    common = network_columns(base, data, fold)
    rows = []
    for method, e in (("neon", env), ("neon_guard", guarded)):
        for C in sizes.C_values:
            t0 = time.perf_counter()
            rep = greedy_episode(e, agents.for_C(C), C, sizes.seed)
            rows.append({**common, "method": method, "C": C,
                         **row_from_report(rep, e.final_model(), data, t0)})  # fmt: skip
    for C in sizes.C_values:  # the same random actions at every C (one seed), guarded at C
        t0 = time.perf_counter()
        rep = random_agent_episode(guarded, seed=sizes.seed + 17, task=0, C=C)
        rep["actions"] = "".join(str(s["action"]) for s in rep["steps"])
        rows.append({**common, "method": "random", "C": C,
                     **row_from_report(rep, guarded.final_model(), data, t0)})  # fmt: skip
    rounds = sizes.env.passes * base.spec.n_hidden
    kw = {"stop_below_pp": max(sizes.C_values), "noise_margin_pp": sizes.env.noise_margin_pp}
    floor = min(sizes.env.keep_fractions) ** sizes.env.passes
    ft = sizes.env.ft
    schedules = {
        "uniform": lambda: uniform_rounds(orig, data, rounds, ft, min_keep_share=floor, **kw),
        "global_l1": lambda: global_l1_rounds(orig, data, rounds, ft, min_keep_share=floor, **kw),
        "gmp": lambda: gmp_rounds(orig, data, rounds, ft, **kw),
    }
    for method, fn in schedules.items():
        t0 = time.perf_counter()
        table = fn()
        secs = time.perf_counter() - t0
        for C in sizes.C_values:
            sel = select_by_C(table, C, sizes.env.noise_margin_pp)
            pruned = int(sel["round"]) > 0 and "widths" in sel
            rows.append(
                {
                    **common,
                    "method": method,
                    "C": C,
                    "params_pruned": int(sel["params"]),
                    "compression": float(sel["compression"]),
                    "val_acc": float(sel["val_acc"]),
                    "delta_val_pp": float(sel["delta_val_pp"]),
                    "test_acc": float(sel["test_acc"]),
                    "widths_final": sel["widths"] if pruned else common["widths_orig"],
                    "actions": f"round {int(sel['round'])}/{rounds}",
                    "seconds": secs,
                }
            )
    df = pd.DataFrame(rows).drop(columns=["_test"], errors="ignore")
    df["delta_test_pp"] = (df["test_acc"] - df["test_acc_orig"]) * 100
    df["structural"] = df["method"].map(STRUCTURAL)
    return df


@with_threads
def evaluate_study(
    sizes: NeonStudySizes,
    data: dict[str, Splits],
    nets: dict[tuple[str, int], BaseNet],
    folds: list[list[str]],
    agents: list[AgentsByC],
) -> pd.DataFrame:
    """Every held-out network of every fold, pruned by the fold's agents (one per C) and the
    baselines.

    Each network's rows are cached (keyed by the agents and the evaluation settings).
    """
    jobs = []
    for k, names in enumerate(folds):
        train_names = [d for f in folds for d in f if d not in names]
        akey = agents_id(sizes, train_names, f"fold{k}")
        for d in names:
            for i in range(sizes.test_nets_per_dataset):
                jobs.append((k, d, i, akey))
    frames = []
    for k, d, i, akey in progress(jobs, desc="evaluate", unit="net"):
        episodes = tuple(agents[k][C].episodes_done for C in sizes.C_values)
        path = EvalKey(d, i, akey, episodes, nets[(d, i)].key, sizes.C_values, sizes.env).path()
        rows = cached(  # plain lists: a DataFrame does not load with weights_only
            path,
            lambda k=k, d=d, i=i: evaluate_network(
                sizes, nets[(d, i)], data[d], agents[k], k
            ).to_dict(orient="list"),
        )
        frames.append(pd.DataFrame(rows))
    return pd.concat(frames, ignore_index=True)


def method_means(results: pd.DataFrame) -> pd.DataFrame:
    """Mean compression and accuracy changes per method and C, and the share of networks whose
    test accuracy fell more than C (``share_drop_over_C``)."""
    results = results.assign(over_C=results["delta_test_pp"] < -results["C"].fillna(np.inf))
    g = results.assign(C=results["C"].fillna(-1.0)).groupby(["method", "C"], sort=False)
    out = g.agg(
        n=("compression", "size"),
        mean_compression=("compression", "mean"),
        median_compression=("compression", "median"),
        geo_mean_compression=("compression", lambda s: float(np.exp(np.log(s).mean()))),
        mean_delta_test_pp=("delta_test_pp", "mean"),
        std_delta_test_pp=("delta_test_pp", "std"),
        mean_delta_val_pp=("delta_val_pp", "mean"),
        share_drop_over_C=("over_C", "mean"),
        mean_seconds=("seconds", "mean"),
    ).reset_index()
    out["structural"] = out["method"].map(STRUCTURAL)
    out["C"] = out["C"].where(out["C"] >= 0)
    order = {m: i for i, m in enumerate(METHODS)}
    return out.sort_values(["method", "C"], key=lambda s: s.map(order) if s.name == "method" else s)


def choose_best_C(means: pd.DataFrame, max_drop_pp: float = 0.5, method: str = "neon") -> float:
    """The agent's best C: the largest mean compression whose mean *validation* change is >=
    ``-max_drop_pp`` (chosen without the test split); else the C that loses least."""
    neon = means[means["method"] == method]
    ok = neon[neon["mean_delta_val_pp"] >= -max_drop_pp]
    if len(ok):
        return float(ok.sort_values("mean_compression").iloc[-1]["C"])
    return float(neon.sort_values("mean_delta_val_pp").iloc[-1]["C"])


def _at(results: pd.DataFrame, method: str, C: float) -> pd.DataFrame:
    sub = results[(results["method"] == method) & (results["C"] == C)]
    return sub.set_index(["dataset", "net"]).sort_index()


def per_dataset_table(results: pd.DataFrame, best_C: float) -> pd.DataFrame:
    """Per held-out dataset (and the mean over networks): compression and test change of NEON
    at ``best_C`` and of each baseline at the same C."""
    parts = []
    for m in METHODS:
        sub = _at(results, m, best_C).groupby(level="dataset")[["compression", "delta_test_pp"]]
        parts.append(sub.mean().add_prefix(f"{m}_"))
    table = pd.concat(parts, axis=1)
    table.insert(0, "fold", results.groupby("dataset")["fold"].first())
    table.insert(1, "networks", _at(results, "neon", best_C).groupby(level="dataset").size())
    table = table.reset_index()
    mean = {"dataset": "mean (networks)", "fold": "", "networks": int(table["networks"].sum())}
    for m in METHODS:
        sub = _at(results, m, best_C)
        mean[f"{m}_compression"] = sub["compression"].mean()
        mean[f"{m}_delta_test_pp"] = sub["delta_test_pp"].mean()
    return pd.concat([table, pd.DataFrame([mean])], ignore_index=True)


def paired_tests(results: pd.DataFrame, best_C: float, agent: str = "neon") -> pd.DataFrame:
    """Paired t-tests (``scipy.stats.ttest_rel``) of the agent (``neon`` or ``neon_guard``) at
    ``best_C`` against each yardstick present and each baseline (at the same C), on compression,
    log-compression and test accuracy change, paired by network."""
    neon = _at(results, agent, best_C)
    rows = []
    present = set(results["method"])
    for m in [m for m in YARDSTICKS if m in present] + list(BASELINES):
        other = _at(results, m, best_C).reindex(neon.index)
        for metric in ("compression", "log_compression", "delta_test_pp"):
            col = "compression" if metric == "log_compression" else metric
            a, b = neon[col].to_numpy(float), other[col].to_numpy(float)
            if metric == "log_compression":
                a, b = np.log(a), np.log(b)
            if len(a) >= 2 and np.any(a != b):
                res = stats.ttest_rel(a, b)
                t, p = float(res.statistic), float(res.pvalue)
            else:
                t = p = math.nan
            rows.append(
                {
                    "agent": agent,
                    "baseline": m,
                    "metric": metric,
                    "C": best_C,
                    "n": len(a),
                    "neon_mean": float(np.mean(a)),
                    "baseline_mean": float(np.mean(b)),
                    "mean_diff": float(np.mean(a - b)),
                    "t": t,
                    "p": p,
                }
            )
    return pd.DataFrame(rows)


def layer_reduction(results: pd.DataFrame, best_C: float, by: str = "layer") -> pd.DataFrame:
    """Share of neurons kept (of the layer's original width) for the agent and the structural
    baselines at ``best_C``, grouped ``by`` hidden-layer position (``"layer"``, 1 = next to the
    input) or by the layer's original width (``"orig_width"``): the mean over layers with a
    percentile-bootstrap 95% interval (``low``, ``high``, within [0, 1]) and how many layers."""
    methods = [m for m in METHODS if STRUCTURAL[m]]
    df = layer_widths(results, best_C, methods)
    rows = []
    for (m, key), g in df.groupby(["method", by], sort=False):
        mean, low, high = mean_ci(g["kept_share"])
        rows.append({"method": m, by: key, "kept_share": mean, "low": low, "high": high,
                     "layers": len(g), "mean_orig_width": float(g["orig_width"].mean())})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["method", by]).reset_index(drop=True)


@with_threads
def timing_study(
    sizes: NeonStudySizes,
    data: dict[str, Splits],
    nets: dict[tuple[str, int], BaseNet],
    folds: list[list[str]],
    agents: list[AgentsByC],
    C: float,
) -> pd.DataFrame:
    """Wall time to prune one unseen network with the fold-0 agent for ``C``
    (:func:`prune_mlp`, no training) against training a fresh agent on that one network for
    ``per_network_episodes`` episodes on the same fast path the study's agents train on
    (measured), plus that cost extrapolated to 300 episodes (AMC's per-network budget, which
    the paper compares with)."""

    name = folds[0][0]
    base, d = nets[(name, 0)], data[name]
    t0 = time.perf_counter()
    small, rep = prune_mlp(
        base.model(), *d.tensors("train"), *d.tensors("reward"), C=C,
        passes=sizes.env.passes, agent=agents[0], seed=sizes.seed,
        X_stop=d.tensors("stop")[0], y_stop=d.tensors("stop")[1],
        ft=sizes.env.ft, stat_rows=sizes.env.stat_rows,
        removed_of=sizes.env.removed_of, noise_margin_pp=sizes.env.noise_margin_pp,
    )  # fmt: skip
    prune_s = time.perf_counter() - t0
    task = NeonTask.from_base(base, d)
    env = NeonBatch([task], replace(sizes.env, C_values=(float(C),)))
    fresh = ActorCriticAgent(env.obs_dim, env.n_actions, replace(sizes.agent, seed=sizes.seed + 1))
    t0 = time.perf_counter()
    fresh.train(env, sizes.per_network_episodes, desc="per-network agent", lockstep=sizes.lockstep)
    train_s = time.perf_counter() - t0
    per_ep = train_s / max(sizes.per_network_episodes, 1)
    return pd.DataFrame(
        [
            {"what": "prune with trained agent (1 greedy episode)", "dataset": name,
             "episodes": 1, "seconds": prune_s, "measured": True,
             "compression": rep["compression"]},
            {"what": f"train per-network agent ({sizes.per_network_episodes} episodes)",
             "dataset": name, "episodes": sizes.per_network_episodes, "seconds": train_s,
             "measured": True, "compression": math.nan},
            {"what": "train per-network agent (300 episodes, extrapolated)", "dataset": name,
             "episodes": 300, "seconds": per_ep * 300, "measured": False,
             "compression": math.nan},
        ]
    )  # fmt: skip


def study_summary(
    sizes: NeonStudySizes,
    means: pd.DataFrame,
    tests: pd.DataFrame,
    timing: pd.DataFrame,
    best_C: float,
    n_datasets: int,
    n_networks: int,
    convergence: pd.DataFrame,
    shipped_unseen: dict[str, Any],
    best_C_guard: float | None = None,
    goals: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The headline numbers for ``summary.json`` (NaN written as null).

    ``goals`` is :func:`~pruning_core.studies.neon_report.neon_goals`'s dictionary (the issue's
    three goals, measured), written as it is.

    ``per_C`` holds, for each C, the agents' means over the held-out networks and
    ``policy_entropy``, the mean over folds of each agent's final entropy
    (:func:`~pruning_core.studies.neon.agent_convergence`, ``convergence``), with the share of
    agents that converged before the cap; ``shipped_agent_unseen`` is
    :func:`shipped_agent_unseen`'s dictionary.

    The headline (``mean_compression``, ``mean_delta_acc_pp``) is the plain NEON agent at its
    best C; ``neon_guard`` holds the guarded variant at its own best C; ``baselines`` hold each
    baseline at the agent's best C (its label, whether it is structural, and ``per_C``).
    "Ahead of every baseline" compares with the structural ones (the unstructured baseline's
    nonzero count is not a smaller network).
    """

    def pick(m: str, C: float) -> dict[str, float]:
        r = means[(means["method"] == m) & (means["C"] == C)].iloc[0]
        return {"mean_compression": float(r["mean_compression"]),
                "mean_delta_acc_pp": float(r["mean_delta_test_pp"]),
                "mean_delta_val_pp": float(r["mean_delta_val_pp"]),
                "share_drop_over_C": float(r["share_drop_over_C"])}  # fmt: skip

    def verdict(agent: dict[str, float], C: float) -> dict[str, bool]:
        others = [pick(m, C) for m, b in BASELINES.items() if b["structural"]]
        return {
            "goal_met": bool(
                agent["mean_compression"] >= 24.59 and agent["mean_delta_acc_pp"] >= -0.5
            ),
            "ahead_of_every_baseline": all(
                agent["mean_compression"] > b["mean_compression"]
                and agent["mean_delta_acc_pp"] >= b["mean_delta_acc_pp"] - 1e-9
                for b in others
            ),
        }

    neon = pick("neon", best_C)
    baselines = {
        m: {**pick(m, best_C), "label": b["label"], "structural": b["structural"],
            "per_C": {f"{C:g}": pick(m, C) for C in sizes.C_values}}
        for m, b in BASELINES.items()
    }  # fmt: skip
    per_C = {f"{C:g}": {**pick("neon", C), **_entropy_at(convergence, C)} for C in sizes.C_values}
    gC = best_C if best_C_guard is None else best_C_guard
    guard = {"best_C": gC, **pick("neon_guard", gC), **verdict(pick("neon_guard", gC), gC),
             "per_C": {f"{C:g}": pick("neon_guard", C) for C in sizes.C_values}}  # fmt: skip
    ttests = {
        f"{r.agent}_vs_{r.baseline}_{r.metric}": {"t": r.t, "p": r.p, "mean_diff": r.mean_diff}
        for r in tests.itertuples()
    }
    out: dict[str, Any] = {
        "n_datasets": n_datasets,
        "n_networks": n_networks,
        "best_C": best_C,
        "mean_compression": neon["mean_compression"],
        "mean_delta_acc_pp": neon["mean_delta_acc_pp"],
        "mean_delta_val_pp": neon["mean_delta_val_pp"],
        "per_C": per_C,
        "baselines": baselines,
        **{f"{m}_mean_compression": b["mean_compression"] for m, b in baselines.items()},
        **{f"{m}_mean_delta_acc_pp": b["mean_delta_acc_pp"] for m, b in baselines.items()},
        "neon_guard": guard,
        "ttests": ttests,
        "goal_compression": 24.59,
        **verdict(neon, best_C),
        "prune_seconds": float(timing.iloc[0]["seconds"]),
        "per_network_agent_seconds": float(timing.iloc[1]["seconds"]),
        "per_network_agent_episodes": int(timing.iloc[1]["episodes"]),
        "max_agent_episodes": sizes.max_agent_episodes,
        "mean_agent_episodes": float(convergence["episodes"].mean()),
        "share_agents_converged": float(convergence["converged_at"].notna().mean()),
        "shipped_agent_unseen": shipped_unseen,
        "goals": dict(goals or {}),
    }
    return finite_or_none(out)


def _entropy_at(convergence: pd.DataFrame, C: float) -> dict[str, float]:
    sub = convergence[convergence["C"] == C]
    return {
        "policy_entropy": float(sub["final_entropy"].mean()),
        "policy_entropy_share": float(sub["entropy_share"].mean()),
        "share_agents_converged": float(sub["converged_at"].notna().mean()),
        "mean_agent_episodes": float(sub["episodes"].mean()),
    }


def shipped_agent_unseen(
    sizes: NeonStudySizes,
    results: pd.DataFrame,
    folds: Sequence[Sequence[str]],
    convergence: pd.DataFrame,
    shipped_card: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The shipped agents on the group of datasets they never saw: fold
    :data:`~pruning_core.studies.neon.SHIP_HOLDOUT_FOLD`, whose agents
    (:func:`~pruning_core.studies.neon.train_shipped_agents` exports them) trained on the other
    folds. ``per_C`` has the keys of the study's (NEON rows of that fold only);
    ``same_as_shipped_file`` says whether ``shipped_card`` (the JSON card beside the shipped
    file) lists these very agents (same keys: same profile, data and code version)."""
    k = SHIP_HOLDOUT_FOLD
    rows = results[(results["fold"] == k) & (results["method"] == "neon")]
    means = method_means(rows)
    conv = convergence[convergence["fold"] == k]
    per_C = {}
    for C in sizes.C_values:
        r = means[means["C"] == C].iloc[0]
        per_C[f"{C:g}"] = {"mean_compression": float(r["mean_compression"]),
                           "mean_delta_acc_pp": float(r["mean_delta_test_pp"]),
                           "share_drop_over_C": float(r["share_drop_over_C"]),
                           **_entropy_at(conv, C)}  # fmt: skip
    train_names = [d for f in folds for d in f if d not in folds[k]]
    ids = agents_id(sizes, train_names, f"fold{k}").split("+")
    listed = list((shipped_card or {}).get("agent_keys", {}).values())
    return {
        "datasets": list(folds[k]),
        "train_datasets": train_names,
        "n_networks": int(len(rows) // max(len(sizes.C_values), 1)),
        "per_C": per_C,
        "agent_keys": dict(zip([f"{C:g}" for C in sizes.C_values], ids, strict=True)),
        "same_as_shipped_file": bool(listed) and sorted(listed) == sorted(ids),
    }
