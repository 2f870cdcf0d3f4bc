"""The NEON study (notebook 04) as functions, so the notebook holds only parameters and prose.

Protocol (cross-dataset, as in Hirsch & Katz 2022): the study's datasets are split into folds;
for each fold an agent is trained on the networks of the *other* folds' datasets and tested on
the networks of the held-out fold's datasets, which it never saw. On every test network the
agent prunes once per allowed loss ``C`` (one greedy episode, no training), and three baselines
prune the same network with the same fine-tuning: global L1 magnitude pruning with retraining
(GMP), uniform structural neuron pruning, and a random agent (:mod:`pruning_core.baselines`).
Compression is original parameters / remaining parameters (all parameters; nonzero ones for
GMP); accuracy change is measured on the test split, in percentage points.

Everything expensive is cached under ``cache_root()/neon`` at the path its key (a hash of its
config) derives: base networks (:func:`pruning_core.methods.neon.base_network`), fold agents
(:class:`AgentKey`, checkpoints that resume) and each test network's evaluation
(:class:`EvalKey`), so an interrupted run resumes where it stopped.

``python -m pruning_core.studies.neon ship`` trains the agent that ships in
``pruning_core/assets/neon_agent.pt`` (:func:`train_shipped_agent`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from scipy import stats

from pruning_core.config import by_profile, progress, torch_threads
from pruning_core.data.splits import Splits
from pruning_core.data.tabular import load_tabular
from pruning_core.methods.baselines import (
    gmp_rounds,
    random_agent_episode,
    select_by_C,
    uniform_rounds,
)
from pruning_core.methods.neon import base_network, prune_mlp
from pruning_core.models.mlp import ArchitectureSpace, BaseNet
from pruning_core.pruning.neurons import count_params
from pruning_core.rl.agents.a2c import SHIPPED_AGENT, A2CConfig, ActorCriticAgent
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig, NeonTask, default_finetune
from pruning_core.rl.rollout import rollout
from pruning_core.runs import ArtefactKey, atomic_write_text, cached, git_info
from pruning_core.stats import finite_or_none
from pruning_core.train.loop import TrainConfig, evaluate

__all__ = [
    "CPU_DATASETS",
    "AgentKey",
    "EvalKey",
    "NeonStudySizes",
    "SMOKE_DATASETS",
    "build_base_networks",
    "choose_best_C",
    "evaluate_study",
    "layer_reduction",
    "load_study_data",
    "make_folds",
    "method_means",
    "neon_study_sizes",
    "paired_tests",
    "per_dataset_table",
    "study_summary",
    "timing_study",
    "train_fold_agents",
    "train_shipped_agent",
]


CPU_DATASETS: tuple[str, ...] = (
    "digits", "diamonds", "health_insurance", "telco_churn", "mlc_churn", "mpls_stops",
    "storms", "yrbss_gender", "ten_mile_race", "flchain_death", "spam7", "credit_data",
    "hpc_jobs", "chile_vote", "hmda_deny", "cells", "attrition", "credit_card",
)  # fmt: skip
"""18 suite datasets (3 folds of 6, like the paper's folds of 6): the first 18 in suite order with
at least 1,000 rows and no class above 90%, so a validation split resolves small accuracy changes.
The shipped agent is trained on these, so the other suite datasets stay unseen by it."""


SMOKE_DATASETS: tuple[str, ...] = ("spam7", "chile_vote", "breast_cancer", "train_choice")
"""Four small datasets for the smoke profile."""


T = TypeVar("T")


METHODS: tuple[str, ...] = ("neon", "neon_guard", "gmp", "uniform", "random")
"""Method names in the result tables. ``neon_guard`` is the same agent with an inference-time
guard that undoes any action whose validation accuracy falls more than C below the original."""


AGENTS: tuple[str, ...] = ("neon", "neon_guard")


@dataclass(frozen=True)
class NeonStudySizes:
    """Every size of the study, derived from the profile (see :func:`neon_study_sizes`)."""

    profile: str
    datasets: tuple[str, ...]
    """Datasets of the study (all folds)."""
    n_folds: int
    """Folds of datasets; each fold's datasets are tested by an agent trained on the others."""
    nets_per_dataset: int
    """Random networks trained per dataset (the paper: 30)."""
    test_nets_per_dataset: int
    """Networks of each held-out dataset that are pruned and reported."""
    max_train_rows: int | None
    """Cap on training rows per dataset (fixed-seed subset)."""
    max_val_rows: int | None
    """Cap on validation rows (the ``reward`` split, which is also the ``stop`` split)."""
    max_test_rows: int | None
    """Cap on test rows (reported accuracy only)."""
    space: ArchitectureSpace
    """Random-architecture ranges."""
    base_train: TrainConfig
    """Training of the base networks."""
    env: NeonEnvConfig
    """The MDP (passes, actions, fine-tuning, observation rows)."""
    agent: A2CConfig
    """Actor-critic hyperparameters."""
    episodes_per_fold: int
    """Training episodes of each fold's agent."""
    C_values: tuple[float, ...]
    """Allowed accuracy losses (pp) the agent is trained and tested with."""
    per_network_episodes: int
    """Episodes of the per-network agent whose training time is measured."""
    ship_episodes: int
    """Training episodes of the shipped agent (all study datasets)."""
    max_drop_pp: float = 0.5
    """Best C: the largest mean compression whose mean validation change is >= -this."""
    seed: int = 0
    """Seed of folds, networks, agents and environments."""
    threads: int | None = 1
    """Torch threads while the study runs (1 is fastest for these small nets on a busy CPU)."""
    note: str = ""
    """How this profile departs from the paper."""


def neon_study_sizes(profile: str, seed: int = 0) -> NeonStudySizes:
    """The study's sizes for ``profile`` (smoke / cpu / gpu)."""
    C_values = (0.0, 1.0, 5.0, 50.0)
    ft = by_profile(
        profile,
        smoke=replace(default_finetune(), steps_per_check=10, max_steps=20),
        cpu=default_finetune(),
        gpu=replace(default_finetune(), steps_per_check=50, max_steps=250, patience=2),
    )
    env = NeonEnvConfig(
        passes=4,
        C_values=C_values,
        ft=ft,
        stat_rows=by_profile(profile, smoke=200, cpu=500, gpu=3000),
        seed=seed,
    )
    space = by_profile(
        profile,
        smoke=ArchitectureSpace(max_layers=2, widths=(16, 32)),
        cpu=ArchitectureSpace(max_layers=6, widths=(64, 128, 192, 256)),
        gpu=ArchitectureSpace(),
    )
    base_train = by_profile(
        profile,
        smoke=TrainConfig.mlp(epochs=8, patience=2),
        cpu=TrainConfig.mlp(epochs=25, patience=3),
        gpu=TrainConfig.mlp(epochs=100, patience=10),
    )
    agent = A2CConfig(
        warmup_episodes=by_profile(profile, smoke=2, cpu=10, gpu=50),
        gae_lambda=0.0,  # one-step TD advantages: MC returns learn too slowly at this budget
        seed=seed,
    )
    note = by_profile(
        profile,
        smoke="smoke: 4 datasets, 2 folds, tiny nets (<= 2 layers of 16-32), a few episodes",
        cpu=(
            "cpu: 18 offline datasets (3 folds of 6) instead of 28 OpenML ones, 2 networks per "
            "dataset instead of 30, widths 64-256 instead of 100-1000, base nets trained <= 25 "
            "epochs on <= 3,000 rows, fine-tuning <= 60 Adam steps per action, one C-conditioned "
            "agent per fold instead of one agent per C, one-step TD advantages instead of "
            "Monte-Carlo returns"
        ),
        gpu="gpu: the paper's architecture space and training; 28-dataset-scale folds need OpenML files",
    )
    return NeonStudySizes(
        profile=profile,
        datasets=by_profile(profile, smoke=SMOKE_DATASETS, cpu=CPU_DATASETS, gpu=CPU_DATASETS),
        n_folds=by_profile(profile, smoke=2, cpu=3, gpu=3),
        nets_per_dataset=by_profile(profile, smoke=1, cpu=2, gpu=30),
        test_nets_per_dataset=by_profile(profile, smoke=1, cpu=1, gpu=6),
        max_train_rows=by_profile(profile, smoke=400, cpu=3000, gpu=None),
        max_val_rows=by_profile(profile, smoke=200, cpu=1500, gpu=None),
        max_test_rows=by_profile(profile, smoke=300, cpu=None, gpu=None),
        space=space,
        base_train=base_train,
        env=env,
        agent=agent,
        episodes_per_fold=by_profile(profile, smoke=4, cpu=150, gpu=2000),
        C_values=C_values,
        per_network_episodes=by_profile(profile, smoke=2, cpu=20, gpu=300),
        ship_episodes=by_profile(profile, smoke=4, cpu=400, gpu=3000),
        seed=seed,
        note=note,
    )


def _with_threads(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn(sizes, ...)`` with ``sizes.threads`` torch threads (see :func:`torch_threads`)."""

    @functools.wraps(fn)
    def wrapper(sizes: NeonStudySizes, *args: Any, **kwargs: Any) -> T:
        with torch_threads(sizes.threads):
            return fn(sizes, *args, **kwargs)

    return wrapper


def _data_key(sizes: NeonStudySizes) -> dict[str, Any]:
    return {"train": sizes.max_train_rows, "val": sizes.max_val_rows, "test": sizes.max_test_rows}


def load_study_data(
    sizes: NeonStudySizes, datasets: Sequence[str] | None = None
) -> dict[str, Splits]:
    """Each dataset's splits as tensors (rows capped as the profile says)."""
    names = list(datasets or sizes.datasets)
    caps = {"train": sizes.max_train_rows, "reward": sizes.max_val_rows, "test": sizes.max_test_rows}
    return {
        n: load_tabular(n, sizes.seed).splits(caps)
        for n in progress(names, desc="datasets", unit="ds")
    }


@_with_threads
def build_base_networks(
    sizes: NeonStudySizes, data: dict[str, Splits]
) -> tuple[dict[tuple[str, int], BaseNet], pd.DataFrame]:
    """Train (or load from the cache) every base network; returns them and a table."""
    nets: dict[tuple[str, int], BaseNet] = {}
    rows = []
    jobs = [(n, i) for n in data for i in range(sizes.nets_per_dataset)]
    for name, i in progress(jobs, desc="base networks", unit="net"):
        b = base_network(
            data[name], i, sizes.space, sizes.base_train, sizes.seed, data_key=_data_key(sizes)
        )
        nets[(name, i)] = b
        rows.append(
            {
                "dataset": name,
                "net": i,
                "hidden": "-".join(map(str, b.spec.hidden)),
                "n_hidden": b.spec.n_hidden,
                "activation": b.spec.activations[0],
                "batchnorm": b.spec.batchnorm[0],
                "dropout": b.spec.dropout[0],
                "params": count_params(b.model()),
                "val_acc": b.val_acc,
                "test_acc": b.test_acc,
                "epochs": b.epochs,
                "train_seconds": b.train_seconds,
            }
        )
    return nets, pd.DataFrame(rows)


def make_folds(datasets: Sequence[str], n_folds: int, seed: int = 0) -> list[list[str]]:
    """Split datasets into ``n_folds`` folds (a seeded shuffle dealt round-robin)."""
    if not 2 <= n_folds <= len(datasets):
        raise ValueError(f"need 2 <= n_folds <= {len(datasets)} datasets, got {n_folds}")
    order = list(datasets)
    np.random.default_rng(seed).shuffle(order)
    return [sorted(order[k::n_folds], key=list(datasets).index) for k in range(n_folds)]


def _tasks(
    names: Sequence[str], nets: dict[tuple[str, int], BaseNet], data: dict[str, Splits]
) -> list[NeonTask]:
    return [NeonTask.from_base(b, data[d]) for (d, _i), b in nets.items() if d in names]


@dataclass(frozen=True)
class AgentKey(ArtefactKey):
    """One NEON agent: the networks it trains on and its env and agent configs.

    Its path is the agent's resumable checkpoint (the training log is the ``.csv`` beside it).
    """

    KIND = "neon/agents"
    VERSION = 1
    label: str
    """``fold<k>`` or ``shipped``."""
    train: tuple[str, ...]
    """The datasets of the networks it trains on (sorted)."""
    nets: int
    space: ArchitectureSpace
    base: TrainConfig
    env: NeonEnvConfig
    agent: A2CConfig
    data: dict[str, Any]
    """The row caps of the data."""

    @property
    def prefix(self) -> str:
        """The label."""
        return self.label


@dataclass(frozen=True)
class EvalKey(ArtefactKey):
    """One test network's evaluation rows: the agent, the base network and the settings."""

    KIND = "neon/eval"
    VERSION = 2
    dataset: str
    index: int
    agent: str
    """The agent's :attr:`AgentKey.hashname`."""
    episodes: int
    """Episodes the agent was trained for."""
    base: str
    """The base network's key."""
    C: tuple[float, ...]
    env: NeonEnvConfig

    @property
    def prefix(self) -> str:
        """Dataset and network index."""
        return f"{self.dataset}__{self.index}"


def _agent_key(sizes: NeonStudySizes, train_names: Sequence[str], label: str) -> AgentKey:
    return AgentKey(
        label, tuple(sorted(train_names)), sizes.nets_per_dataset, sizes.space, sizes.base_train,
        replace(sizes.env, C_values=sizes.C_values), sizes.agent, _data_key(sizes),
    )  # fmt: skip


@_with_threads
def train_agent(
    sizes: NeonStudySizes,
    tasks: list[NeonTask],
    episodes: int,
    checkpoint: Path,
    desc: str = "agent",
) -> tuple[ActorCriticAgent, pd.DataFrame]:
    """Train (or resume) an actor-critic on ``tasks``; the checkpoint makes it resumable."""
    env = NeonEnv(tasks, replace(sizes.env, C_values=sizes.C_values))
    agent = ActorCriticAgent.for_env(env, sizes.agent)
    log = agent.train(
        env,
        episodes,
        checkpoint_path=checkpoint,
        log_path=checkpoint.with_suffix(".csv"),
        checkpoint_every=5,
        desc=desc,
    )
    return agent, log


@_with_threads
def train_fold_agents(
    sizes: NeonStudySizes,
    data: dict[str, Splits],
    nets: dict[tuple[str, int], BaseNet],
    folds: list[list[str]],
) -> tuple[list[ActorCriticAgent], pd.DataFrame]:
    """One agent per fold, trained on the other folds' networks; returns agents and the log."""
    agents, logs = [], []
    for k, test_names in enumerate(folds):
        train_names = [d for f in folds for d in f if d not in test_names]
        ckpt = _agent_key(sizes, train_names, f"fold{k}").path()
        agent, log = train_agent(
            sizes, _tasks(train_names, nets, data), sizes.episodes_per_fold, ckpt, f"agent fold {k}"
        )
        log = log.assign(fold=k)
        agents.append(agent)
        logs.append(log)
    return agents, pd.concat(logs, ignore_index=True)


def _greedy_episode(env: NeonEnv, agent: ActorCriticAgent, C: float, seed: int) -> dict[str, Any]:
    greedy = functools.partial(agent.act, greedy=True)
    ep = rollout(env, greedy, seed=seed, options={"task": 0, "C": C})
    rep = env.episode_report()
    rep["actions"] = "".join(map(str, ep.actions))
    return rep


def _row_from_report(rep: dict[str, Any], model: torch.nn.Module, data: Splits, t0: float) -> dict:
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
    sizes: NeonStudySizes, base: BaseNet, data: Splits, agent: ActorCriticAgent, fold: int
) -> pd.DataFrame:
    """Prune one test network with the agent (each C) and the three baselines; one row each."""
    task = NeonTask.from_base(base, data)
    env = NeonEnv([task], replace(sizes.env, C_values=sizes.C_values))
    orig = base.model()
    test0 = evaluate(orig, data.tensors("test"), batch_size=None)["top1"]
    common = {
        "fold": fold,
        "dataset": base.dataset,
        "net": base.index,
        "n_hidden": base.spec.n_hidden,
        "params_orig": count_params(orig),
        "val_acc_orig": task.base_val_acc,
        "test_acc_orig": test0,
        "widths_orig": "-".join(map(str, base.spec.hidden)),
    }
    rows = []
    guarded = NeonEnv([task], replace(sizes.env, C_values=sizes.C_values, guard=True))
    for method, e in (("neon", env), ("neon_guard", guarded)):
        for C in sizes.C_values:
            t0 = time.perf_counter()
            rep = _greedy_episode(e, agent, C, sizes.seed)
            rows.append({**common, "method": method, "C": C,
                         **_row_from_report(rep, e.final_model(), data, t0)})  # fmt: skip
    t0 = time.perf_counter()
    rep = random_agent_episode(env, seed=sizes.seed + 17, task=0, C=sizes.C_values[0])
    rows.append({**common, "method": "random", "C": math.nan,
                 **_row_from_report(rep, env.final_model(), data, t0)})  # fmt: skip
    rounds = sizes.env.passes * base.spec.n_hidden
    stop = max(sizes.C_values)
    ft = sizes.env.ft
    for method, fn in (
        ("gmp", lambda: gmp_rounds(orig, data, rounds, ft, stop_below_pp=stop)),
        (
            "uniform",
            lambda: uniform_rounds(
                orig,
                data,
                rounds,
                ft,
                min_keep_share=min(sizes.env.keep_fractions) ** sizes.env.passes,
                stop_below_pp=stop,
            ),
        ),  # fmt: skip
    ):
        t0 = time.perf_counter()
        table = fn()
        secs = time.perf_counter() - t0
        for C in sizes.C_values:
            sel = select_by_C(table, C)
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
                    "widths_final": sel.get("widths", common["widths_orig"])
                    if int(sel["round"]) > 0
                    else common["widths_orig"],
                    "actions": f"round {int(sel['round'])}/{rounds}",
                    "seconds": secs,
                }
            )
    df = pd.DataFrame(rows).drop(columns=["_test"], errors="ignore")
    df["delta_test_pp"] = (df["test_acc"] - df["test_acc_orig"]) * 100
    return df


@_with_threads
def evaluate_study(
    sizes: NeonStudySizes,
    data: dict[str, Splits],
    nets: dict[tuple[str, int], BaseNet],
    folds: list[list[str]],
    agents: list[ActorCriticAgent],
) -> pd.DataFrame:
    """Every held-out network of every fold, pruned by the fold's agent and the baselines.

    Each network's rows are cached (keyed by the agent and the evaluation settings).
    """
    jobs = []
    for k, names in enumerate(folds):
        train_names = [d for f in folds for d in f if d not in names]
        akey = _agent_key(sizes, train_names, f"fold{k}").hashname
        for d in names:
            for i in range(sizes.test_nets_per_dataset):
                jobs.append((k, d, i, akey))
    frames = []
    for k, d, i, akey in progress(jobs, desc="evaluate", unit="net"):
        path = EvalKey(
            d, i, akey, agents[k].episodes_done, nets[(d, i)].key, sizes.C_values, sizes.env
        ).path()
        df = cached(
            path, lambda k=k, d=d, i=i: evaluate_network(sizes, nets[(d, i)], data[d], agents[k], k)
        )
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def method_means(results: pd.DataFrame) -> pd.DataFrame:
    """Mean compression and accuracy changes per method and C (random: one row, C empty)."""
    g = results.assign(C=results["C"].fillna(-1.0)).groupby(["method", "C"], sort=False)
    out = g.agg(
        n=("compression", "size"),
        mean_compression=("compression", "mean"),
        median_compression=("compression", "median"),
        geo_mean_compression=("compression", lambda s: float(np.exp(np.log(s).mean()))),
        mean_delta_test_pp=("delta_test_pp", "mean"),
        std_delta_test_pp=("delta_test_pp", "std"),
        mean_delta_val_pp=("delta_val_pp", "mean"),
        mean_seconds=("seconds", "mean"),
    ).reset_index()
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
    sub = results[results["method"] == method]
    if method != "random":
        sub = sub[sub["C"] == C]
    return sub.set_index(["dataset", "net"]).sort_index()


def per_dataset_table(results: pd.DataFrame, best_C: float) -> pd.DataFrame:
    """Per held-out dataset (and the mean over networks): compression and test change of NEON
    at ``best_C`` and of each baseline (GMP and uniform at the same C)."""
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
    ``best_C`` against each baseline (at the same C), on compression, log-compression and test
    accuracy change, paired by network."""
    neon = _at(results, agent, best_C)
    rows = []
    for m in ("gmp", "uniform", "random"):
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
                    "C": best_C if m != "random" else math.nan,
                    "n": len(a),
                    "neon_mean": float(np.mean(a)),
                    "baseline_mean": float(np.mean(b)),
                    "mean_diff": float(np.mean(a - b)),
                    "t": t,
                    "p": p,
                }
            )
    return pd.DataFrame(rows)


def layer_reduction(results: pd.DataFrame, best_C: float) -> pd.DataFrame:
    """Share of neurons kept per hidden-layer position, NEON (best C) and uniform (same C)."""
    rows = []
    for m in ("neon", "neon_guard", "uniform", "random"):
        sub = results[results["method"] == m]
        if m != "random":
            sub = sub[sub["C"] == best_C]
        for r in sub.itertuples():
            w0 = [int(v) for v in str(r.widths_orig).split("-")]
            w1 = [int(v) for v in str(r.widths_final).split("-")]
            for pos, (a, b) in enumerate(zip(w0, w1, strict=True)):
                rows.append({"method": m, "layer": pos + 1, "n_hidden": len(w0), "kept": b / a})
    df = pd.DataFrame(rows)
    return (
        df.groupby(["method", "layer"])
        .agg(kept_share=("kept", "mean"), networks=("kept", "size"))
        .reset_index()
    )


@_with_threads
def timing_study(
    sizes: NeonStudySizes,
    data: dict[str, Splits],
    nets: dict[tuple[str, int], BaseNet],
    folds: list[list[str]],
    agents: list[ActorCriticAgent],
    C: float,
) -> pd.DataFrame:
    """Wall time to prune one unseen network with the fold-0 agent (:func:`prune_mlp`, no
    training) against training a fresh agent on that one network for
    ``per_network_episodes`` episodes (measured), plus that cost extrapolated to 300 episodes
    (AMC's per-network budget, which the paper compares with)."""

    name = folds[0][0]
    base, d = nets[(name, 0)], data[name]
    t0 = time.perf_counter()
    small, rep = prune_mlp(
        base.model(), *d.tensors("train"), *d.tensors("reward"), C=C,
        passes=sizes.env.passes, agent=agents[0], seed=sizes.seed,
        ft=sizes.env.ft, stat_rows=sizes.env.stat_rows,
    )  # fmt: skip
    prune_s = time.perf_counter() - t0
    task = NeonTask.from_base(base, d)
    env = NeonEnv([task], replace(sizes.env, C_values=sizes.C_values))
    fresh = ActorCriticAgent.for_env(env, replace(sizes.agent, seed=sizes.seed + 1))
    t0 = time.perf_counter()
    fresh.train(env, sizes.per_network_episodes, desc="per-network agent")
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
    best_C_guard: float | None = None,
) -> dict[str, Any]:
    """The headline numbers for ``summary.json`` (NaN written as null).

    The headline (``mean_compression``, ``mean_delta_acc_pp``) is the plain NEON agent at its
    best C; ``neon_guard`` holds the guarded variant at its own best C; ``baselines`` hold GMP
    and uniform at the agent's best C and the random agent.
    """

    def pick(m: str, C: float | None) -> dict[str, float]:
        sub = means[means["method"] == m]
        if C is not None:
            sub = sub[sub["C"] == C]
        r = sub.iloc[0]
        return {"mean_compression": float(r["mean_compression"]),
                "mean_delta_acc_pp": float(r["mean_delta_test_pp"]),
                "mean_delta_val_pp": float(r["mean_delta_val_pp"])}  # fmt: skip

    def verdict(agent: dict[str, float], C: float) -> dict[str, bool]:
        others = [pick("gmp", C), pick("uniform", C), pick("random", None)]
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
    baselines = {"gmp": pick("gmp", best_C), "uniform": pick("uniform", best_C),
                 "random": pick("random", None)}  # fmt: skip
    per_C = {f"{C:g}": pick("neon", C) for C in sizes.C_values}
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
        "episodes_per_fold": sizes.episodes_per_fold,
    }
    return finite_or_none(out)


def train_shipped_agent(
    profile: str = "cpu", path: str | Path = SHIPPED_AGENT, episodes: int | None = None
) -> dict[str, Any]:
    """Train an agent on every network of the profile's datasets and export it to ``path``
    (acting-only, float32), with a JSON card beside it that says how it was made."""
    t0 = time.perf_counter()
    sizes = neon_study_sizes(profile)
    episodes = episodes or sizes.ship_episodes
    data = load_study_data(sizes)
    nets, _ = build_base_networks(sizes, data)
    ckpt = _agent_key(sizes, list(sizes.datasets), "shipped").path()
    agent, log = train_agent(
        sizes, _tasks(sizes.datasets, nets, data), episodes, ckpt, "shipped agent"
    )
    path = Path(path)
    agent.export(path)
    tail = log.tail(max(10, len(log) // 10))
    card = {
        "what": "NEON actor-critic agent (C-conditioned) for pruning hidden neurons of MLPs",
        "file": path.name,
        "bytes": path.stat().st_size,
        "made_by": f"pruning_core.studies.neon.train_shipped_agent(profile={profile!r})",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_info(),
        "profile": profile,
        "episodes": agent.episodes_done,
        "datasets": list(sizes.datasets),
        "networks": len(nets),
        "obs_dim": agent.obs_dim,
        "n_actions": agent.n_actions,
        "keep_fractions": list(sizes.env.keep_fractions),
        "C_values_trained": list(sizes.C_values),
        "env": asdict(sizes.env),
        "agent": asdict(sizes.agent),
        "space": asdict(sizes.space),
        "base_train": asdict(sizes.base_train),
        "last_episodes_mean_compression": float(tail["compression"].mean()),
        "last_episodes_mean_delta_val_pp": float(tail["delta_val_pp"].mean()),
        "train_seconds": time.perf_counter() - t0,
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(card, indent=2, default=str) + "\n")
    return card


def _main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ship", help="train the shipped agent and write it to pruning_core/assets")
    s.add_argument("--profile", default="cpu")
    s.add_argument("--episodes", type=int, default=None)
    s.add_argument("--out", default=str(SHIPPED_AGENT))
    args = p.parse_args(argv)
    if args.cmd == "ship":
        card = train_shipped_agent(args.profile, args.out, args.episodes)
        print(json.dumps({k: card[k] for k in ("file", "bytes", "episodes", "networks")}, indent=2))


if __name__ == "__main__":  # pragma: no cover
    _main()

