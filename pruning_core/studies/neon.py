"""The NEON study (notebook 04) as functions, so the notebook holds only parameters and prose.

Protocol (cross-dataset, as in Hirsch & Katz 2022): the study's datasets are split into folds;
for each fold and each allowed loss ``C`` an agent is trained (one agent per ``C``, as in the
paper) on the networks of the *other* folds' datasets and tested on the networks of the held-out
fold's datasets, which it never saw. An agent trains on NEON's fast path
(:class:`~pruning_core.rl.envs.neon_batched.NeonBatch`) until its policy has converged (the
profile's :class:`~pruning_core.rl.agents.a2c.ConvergenceRule`) or its episode cap; the
``(fold, C)`` agents train in parallel processes (:func:`~pruning_core.config.run_jobs`, one
thread each, so the agents do not depend on the number of workers). On every test network the
agent for each ``C`` prunes once (one greedy episode, no training), and the baselines
prune the same network under the same rule for ``C`` and with the same fine-tuning
(:mod:`pruning_core.methods.baselines`): uniform and global L1-norm neuron pruning (structural),
global magnitude weight pruning (unstructured) and a random agent. Compression is original
parameters / remaining parameters (all parameters; nonzero ones for the unstructured baseline,
whose network is not smaller); accuracy change is measured on the test split, in points.

The datasets of a profile are *candidates*: :mod:`pruning_core.studies.neon_suite` compares
each one's base networks with a logistic regression and the majority class on the ``reward``
split, and only datasets where a model clearly beats the majority class enter the folds.

Everything expensive is cached under ``cache_root()/neon`` at the path its key (a hash of its
config) derives: base networks (:func:`pruning_core.methods.neon.base_network`), fold agents
(:class:`AgentKey`, checkpoints that resume) and each test network's evaluation
(:class:`EvalKey`), so an interrupted run resumes where it stopped.

``python -m pruning_core.studies.neon ship`` writes the agents that ship in
``pruning_core/assets/neon_agent.pt`` (:func:`train_shipped_agents`): the agents of fold
:data:`SHIP_HOLDOUT_FOLD`, trained on the admitted datasets minus that fold, which stays a
held-out group on which the notebook reports them (``shipped_agent_unseen``).
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from pruning_core.config import by_profile, progress, run_jobs, torch_threads
from pruning_core.data.splits import Splits
from pruning_core.data.tabular import load_tabular
from pruning_core.methods.baselines import BASELINES
from pruning_core.methods.neon import base_network
from pruning_core.models.mlp import ArchitectureSpace, BaseNet
from pruning_core.pruning.neurons import count_params
from pruning_core.rl.agents.a2c import (
    SHIPPED_AGENT,
    A2CConfig,
    ActorCriticAgent,
    AgentsByC,
    ConvergenceRule,
)
from pruning_core.rl.envs.neon import NeonEnvConfig, NeonTask, default_finetune
from pruning_core.rl.envs.neon_batched import NeonBatch
from pruning_core.runs import ArtefactKey, atomic_write_text, git_info, resume_checkpoint
from pruning_core.studies.neon_suite import admit_datasets, admitted, reference_table
from pruning_core.train.loop import TrainConfig

__all__ = [
    "AgentKey",
    "CPU_DATASETS",
    "NeonStudySizes",
    "SHIP_HOLDOUT_FOLD",
    "SMOKE_DATASETS",
    "admit_study_datasets",
    "agent_convergence",
    "build_base_networks",
    "load_study_data",
    "make_folds",
    "neon_study_sizes",
    "study_folds",
    "train_agents",
    "train_fold_agents",
    "train_shipped_agents",
]


CPU_DATASETS: tuple[str, ...] = (
    "digits", "diamonds", "health_insurance", "telco_churn", "mlc_churn", "mpls_stops",
    "storms", "yrbss_gender", "ten_mile_race", "flchain_death", "spam7", "credit_data",
    "hpc_jobs", "chile_vote", "hmda_deny", "cells", "attrition", "credit_card",
)  # fmt: skip
"""18 suite datasets (3 folds of 6, like the paper's folds of 6): the first 18 in suite order with
at least 1,000 rows and no class above 90%, so a validation split resolves small accuracy changes.
The shipped agents are trained on these minus fold :data:`SHIP_HOLDOUT_FOLD`."""


AGENT_LR = 7e-3
"""Adam learning rate of the study's agents (the paper: 1e-3; see :func:`neon_study_sizes`)."""


CPU_MAX_EPISODES = 256
"""The cpu profile's cap on each (fold, C) agent's episodes. Sized from measured costs (one
thread, a busy 2-core machine, cpu-profile networks): about 0.45 s per episode while the policy
is near uniform, under 0.07 s once it has converged (its episodes repeat, the fast path reuses
them); development agents converged after 64-80 episodes. 12 agents (3 folds x 4 C) on 2
workers: about 2.5 minutes when they converge like that, at most about 11.5 minutes when none
does (12 x 256 x 0.45 s / 2), which with the evaluation (about 7 minutes in the previous cpu
run), the base networks and the timing keeps notebook 04 at about 12-21 minutes."""


SMOKE_DATASETS: tuple[str, ...] = ("spam7", "chile_vote", "breast_cancer", "train_choice")
"""Four small datasets for the smoke profile."""


T = TypeVar("T")


SHIP_HOLDOUT_FOLD = 0
"""The fold whose datasets the shipped agents never see: they are that fold's agents (trained on
the other folds), and the notebook reports them on it (``shipped_agent_unseen``)."""


NOISE_MARGIN_PP = 0.5
"""The study's noise margin (points): a reward-split accuracy change this small earns ``L``,
neither ``+L**3`` nor ``-L**3``, and counts as within every ``C``. Below 1 so that ``C = 0`` and
``C = 1`` still differ."""


YARDSTICK_LABELS: dict[str, str] = {
    "constant": "best constant keep (chosen on training nets)",
    "constant_guard": "best constant keep + guard at C",
    "schedule": "best keep per pass (chosen on training nets)",
    "oracle_constant": "oracle constant per network (reward split)",
}
"""The yardstick every agent must beat (:mod:`pruning_core.studies.neon_constant`): NEON's own
action space played without looking at the observation."""


METHODS: tuple[str, ...] = ("neon", "neon_guard", *YARDSTICK_LABELS, "uniform", "global_l1",
                            "gmp", "random")  # fmt: skip
"""Method names in the result tables. ``neon_guard`` is the same agent with an inference-time
guard that undoes any action after which the reward-split accuracy is no longer within C;
then the constant-policy yardsticks (:data:`YARDSTICK_LABELS`); the baselines are
:data:`pruning_core.methods.baselines.BASELINES` (``gmp`` is unstructured)."""


METHOD_LABELS: dict[str, str] = {
    "neon": "NEON agent",
    "neon_guard": "NEON agent + guard at C",
    **YARDSTICK_LABELS,
    **{m: str(b["label"]) for m, b in BASELINES.items()},
}
"""What tables and figures call each method."""


STRUCTURAL: dict[str, bool] = {"neon": True, "neon_guard": True,
                               **dict.fromkeys(YARDSTICK_LABELS, True),
                               **{m: bool(b["structural"]) for m, b in BASELINES.items()}}  # fmt: skip
"""Whether a method's compression is a smaller network (False: nonzero weights only)."""


AGENTS: tuple[str, ...] = ("neon", "neon_guard")


@dataclass(frozen=True)
class NeonStudySizes:
    """Every size of the study, derived from the profile (see :func:`neon_study_sizes`)."""

    profile: str
    datasets: tuple[str, ...]
    """Candidate datasets; those that pass the admission rule
    (:func:`pruning_core.studies.neon_suite.admit_datasets`) make the folds."""
    n_folds: int
    """Folds of datasets; each fold's datasets are tested by an agent trained on the others."""
    nets_per_dataset: int
    """Random networks trained per dataset (the paper: 30)."""
    test_nets_per_dataset: int
    """Networks of each held-out dataset that are pruned and reported."""
    max_train_rows: int | None
    """Cap on training rows per dataset (fixed-seed subset)."""
    max_val_rows: int | None
    """Cap on the rows of each validation half: the ``reward`` and the ``stop`` split."""
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
    max_agent_episodes: int
    """Cap on the training episodes of each (fold, C) agent; ``stop`` usually ends it before."""
    stop: ConvergenceRule
    """When an agent's policy has converged and its training stops."""
    C_values: tuple[float, ...]
    """Allowed accuracy losses (pp); one agent is trained and tested per value."""
    per_network_episodes: int
    """Episodes of the per-network agent whose training time is measured."""
    lockstep: int = 16
    """Episodes an agent plays at a time on the fast path (see ``ActorCriticAgent.train``)."""
    workers: int | None = None
    """Processes training the (fold, C) agents (None: one per core; 0: in this process)."""
    admit_min_gain_pp: float = 2.0
    """Admission: the best model must beat the majority class on the reward split by more than
    this many points (and by more than ``admit_se`` standard errors)."""
    admit_se: float = 2.0
    """Admission: standard errors of the majority-class accuracy on the reward split the best
    model must beat it by (with ``admit_min_gain_pp``, the larger of the two)."""
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
        removed_of="original",  # L against the layer's original width: a 4th cut pays less
        noise_margin_pp=NOISE_MARGIN_PP,
    )
    space = by_profile(
        profile,
        smoke=ArchitectureSpace(max_layers=2, widths=(16, 32)),
        cpu=ArchitectureSpace(max_layers=6, widths=(64, 128, 192, 256)),
        gpu=ArchitectureSpace(),
    )
    base_train = by_profile(  # to convergence: early stopping ends it, the cap rarely does
        profile,
        smoke=TrainConfig.mlp(epochs=300, patience=10),
        cpu=TrainConfig.mlp(epochs=500, patience=10),
        gpu=TrainConfig.mlp(epochs=500, patience=20),
    )
    agent = A2CConfig(
        warmup_episodes=by_profile(profile, smoke=2, cpu=16, gpu=48),
        gae_lambda=0.0,  # one-step TD advantages: MC returns learn too slowly at this budget
        # at the paper's Adam 1e-3 and rewards / 40^3 the policy hardly moves in a few hundred
        # episodes (entropy 1.609 -> 1.58 of ln 5 = 1.609 in 192 episodes, one measured agent):
        # advantages normalised per episode (RMS) and Adam 7e-3 let it converge in about 100
        lr=AGENT_LR,
        normalize_advantages=True,
        seed=seed,
    )
    stop = by_profile(
        profile,
        smoke=ConvergenceRule(window=8, check_every=4, probe_tasks=2),
        cpu=ConvergenceRule(window=48, check_every=16, probe_tasks=6),
        gpu=ConvergenceRule(window=200, check_every=32, probe_tasks=24, max_entropy_share=0.3),
    )
    max_episodes = by_profile(profile, smoke=16, cpu=CPU_MAX_EPISODES, gpu=3000)
    note = by_profile(
        profile,
        smoke="smoke: 4 datasets, 2 folds, tiny nets (<= 2 layers of 16-32), a few episodes",
        cpu=(
            "cpu: 18 offline datasets (3 folds of 6) instead of 28 OpenML ones, 2 networks per "
            "dataset instead of 30, widths 64-256 instead of 100-1000, base nets trained to "
            "convergence (early stopping, <= 500 epochs) on <= 3,000 rows, fine-tuning <= 60 Adam "
            "steps per action, one agent per (fold, C) trained until its policy converged or "
            "CAP episodes, one-step TD advantages instead of Monte-Carlo returns, advantages "
            "normalised per episode and Adam 7e-3 instead of 1e-3"
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
        max_agent_episodes=max_episodes,
        stop=stop,
        C_values=C_values,
        per_network_episodes=by_profile(profile, smoke=2, cpu=20, gpu=300),
        lockstep=16,
        workers=by_profile(profile, smoke=0, cpu=None, gpu=None),
        seed=seed,
        note=note.replace("CAP", str(max_episodes)),
    )


def with_threads(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn(sizes, ...)`` with ``sizes.threads`` torch threads (see :func:`torch_threads`)."""

    @functools.wraps(fn)
    def wrapper(sizes: NeonStudySizes, *args: Any, **kwargs: Any) -> T:
        with torch_threads(sizes.threads):
            return fn(sizes, *args, **kwargs)

    return wrapper


def _caps(sizes: NeonStudySizes) -> dict[str, int | None]:
    return {"train": sizes.max_train_rows, "reward": sizes.max_val_rows,
            "stop": sizes.max_val_rows, "test": sizes.max_test_rows}  # fmt: skip


def _data_key(sizes: NeonStudySizes) -> dict[str, Any]:
    return {"rows": _caps(sizes), "reward_stop": "disjoint"}


def load_study_data(
    sizes: NeonStudySizes, datasets: Sequence[str] | None = None
) -> dict[str, Splits]:
    """Each dataset's splits as tensors (rows capped as the profile says); ``reward`` and
    ``stop`` are disjoint halves of the validation rows (checked here)."""
    names = list(datasets or sizes.datasets)
    caps = _caps(sizes)
    out = {
        n: load_tabular(n, sizes.seed).splits(caps)
        for n in progress(names, desc="datasets", unit="ds")
    }
    for n, d in out.items():
        rows = d.meta.get("rows", {})
        if d.stop is d.reward or set(rows.get("reward", ())) & set(rows.get("stop", ())):
            raise RuntimeError(f"{n}: the reward and stop splits share rows")
    return out


@with_threads
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
                "stop_acc": b.meta.get("stop_acc", float("nan")),
                "test_acc": b.test_acc,
                "epochs": b.epochs,
                "best_epoch": b.meta.get("best_epoch", float("nan")),
                "stopped_early": b.meta.get("stopped_early"),
                "train_seconds": b.train_seconds,
            }
        )
    return nets, pd.DataFrame(rows)


def admit_study_datasets(
    sizes: NeonStudySizes, data: dict[str, Splits], base_table: pd.DataFrame
) -> pd.DataFrame:
    """The reference table of every candidate with the admission rule applied
    (:func:`~pruning_core.studies.neon_suite.admit_datasets` at the profile's thresholds)."""
    refs = reference_table(data, base_table)
    return admit_datasets(refs, sizes.admit_min_gain_pp, sizes.admit_se)


def study_folds(sizes: NeonStudySizes, datasets: Sequence[str]) -> list[list[str]]:
    """Folds of the admitted ``datasets``: the profile's ``n_folds``, fewer when fewer datasets
    are left (each fold needs one); ValueError when fewer than two datasets are left."""
    if len(datasets) < 2:
        raise ValueError(
            f"only {len(datasets)} dataset(s) passed the admission rule ({list(datasets)}): the "
            "cross-dataset protocol needs at least 2; add candidates to the profile"
        )
    return make_folds(datasets, min(sizes.n_folds, len(datasets)), sizes.seed)


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
    VERSION = 2
    label: str
    """``fold<k>``."""
    C: float
    """The allowed loss (pp) it is trained for (one agent per C)."""
    train: tuple[str, ...]
    """The datasets of the networks it trains on (sorted)."""
    nets: int
    space: ArchitectureSpace
    base: TrainConfig
    env: NeonEnvConfig
    agent: A2CConfig
    data: dict[str, Any]
    """The row caps of the data."""
    max_episodes: int
    stop: ConvergenceRule
    lockstep: int

    @property
    def prefix(self) -> str:
        """The label and C."""
        return f"{self.label}_C{self.C:g}"


def agent_key(
    sizes: NeonStudySizes, train_names: Sequence[str], label: str, C: float
) -> AgentKey:
    """The key (and so the checkpoint path) of the agent for ``C`` trained on ``train_names``."""
    return AgentKey(
        label, float(C), tuple(sorted(train_names)), sizes.nets_per_dataset, sizes.space,
        sizes.base_train, replace(sizes.env, C_values=(float(C),)), sizes.agent,
        _data_key(sizes), sizes.max_agent_episodes, sizes.stop, sizes.lockstep,
    )  # fmt: skip


def agents_id(sizes: NeonStudySizes, train_names: Sequence[str], label: str) -> str:
    """One name for the set of per-C agents trained on ``train_names`` (their keys joined)."""
    return "+".join(agent_key(sizes, train_names, label, C).hashname for C in sizes.C_values)


def train_agent(
    sizes: NeonStudySizes, tasks: list[NeonTask], C: float, checkpoint: Path, desc: str = "agent"
) -> tuple[ActorCriticAgent, pd.DataFrame]:
    """Train (or resume) the actor-critic for ``C`` on ``tasks`` (NEON's fast path) until the
    profile's convergence rule or episode cap stops it; the checkpoint makes it resumable and
    the per-episode log (entropy included) is the ``.csv`` beside it."""
    env = NeonBatch(tasks, replace(sizes.env, C_values=(float(C),)))
    agent = ActorCriticAgent(env.obs_dim, env.n_actions, sizes.agent)
    with torch_threads(sizes.threads):
        log = agent.train(
            env,
            sizes.max_agent_episodes,
            checkpoint_path=checkpoint,
            log_path=checkpoint.with_suffix(".csv"),
            checkpoint_every=4 * sizes.stop.check_every,
            desc=desc,
            lockstep=sizes.lockstep,
            stop=sizes.stop,
        )
    return agent, log


def _agent_job(job: tuple[NeonStudySizes, list[NeonTask], float, Path, str]) -> None:
    """One (fold, C) agent, for :func:`run_jobs` (the agent is read back from its checkpoint)."""
    train_agent(*job)


def _agent_finished(sizes: NeonStudySizes, checkpoint: Path) -> bool:
    state = resume_checkpoint(checkpoint)
    return state is not None and (
        state.get("converged_at") is not None
        or int(state.get("episodes_done", 0)) >= sizes.max_agent_episodes
    )


def train_agents(
    sizes: NeonStudySizes,
    data: dict[str, Splits],
    nets: dict[tuple[str, int], BaseNet],
    groups: Sequence[tuple[str, Sequence[str]]],
) -> tuple[list[AgentsByC], pd.DataFrame]:
    """Per ``(label, train_names)`` group, one agent per C trained on the networks of
    ``train_names``; unfinished agents train in ``sizes.workers`` processes. Returns the agents
    per group and their logs (columns ``group`` and ``C_agent`` added)."""
    jobs, where = [], []
    for label, names in groups:
        tasks = _tasks(names, nets, data)
        for C in sizes.C_values:
            ckpt = agent_key(sizes, names, label, C).path()
            where.append((label, C, ckpt))
            if not _agent_finished(sizes, ckpt):
                jobs.append((sizes, tasks, float(C), ckpt, f"agent {label} C={C:g}"))
    if jobs:
        run_jobs(_agent_job, jobs, workers=sizes.workers, desc="agents (fold, C)")
    agents: dict[str, dict[float, ActorCriticAgent]] = {label: {} for label, _ in groups}
    logs = []
    for label, C, ckpt in where:
        agent = ActorCriticAgent.load(ckpt)
        agents[label][float(C)] = agent
        logs.append(agent.log().assign(group=label, C_agent=float(C)))
    return [AgentsByC(agents[label]) for label, _ in groups], pd.concat(logs, ignore_index=True)


def _train_names(folds: list[list[str]], k: int) -> list[str]:
    return [d for f in folds for d in f if d not in folds[k]]


def train_fold_agents(
    sizes: NeonStudySizes,
    data: dict[str, Splits],
    nets: dict[tuple[str, int], BaseNet],
    folds: list[list[str]],
) -> tuple[list[AgentsByC], pd.DataFrame]:
    """Per fold, one agent per C trained on the other folds' networks; the agents per fold and
    the training log (``fold`` and ``C_agent`` columns; ``entropy`` per episode)."""
    groups = [(f"fold{k}", _train_names(folds, k)) for k in range(len(folds))]
    agents, log = train_agents(sizes, data, nets, groups)
    log["fold"] = log.pop("group").str.removeprefix("fold").astype(int)
    return agents, log


def agent_convergence(sizes: NeonStudySizes, log: pd.DataFrame) -> pd.DataFrame:
    """Per (fold, C) agent: episodes played, the episode its policy converged at (NaN: the cap
    stopped it), the mean policy entropy of its last ``stop.window`` learning episodes (and that
    share of the uniform policy's), its last greedy probe and its training seconds."""
    rows = []
    h_max = float(np.log(len(sizes.env.keep_fractions)))
    for (k, C), g in log.groupby(["fold", "C_agent"], sort=True):
        learn = g[~g["warmup"].astype(bool)]
        ent = float(learn["entropy"].tail(sizes.stop.window).mean()) if len(learn) else h_max
        conv = g["converged"] if "converged" in g else pd.Series(False, index=g.index)
        conv_at = g.loc[conv.astype("boolean").fillna(False).astype(bool), "episode"]
        greedy = g["greedy_return"].dropna() if "greedy_return" in g else pd.Series(dtype=float)
        rows.append(
            {
                "fold": int(k),
                "C": float(C),
                "episodes": int(g["episode"].max()),
                "converged_at": float(conv_at.iloc[0]) if len(conv_at) else float("nan"),
                "final_entropy": ent,
                "entropy_share": ent / h_max,
                "last_greedy_return": float(greedy.iloc[-1]) if len(greedy) else float("nan"),
                "train_seconds": float(g["seconds"].sum()),
            }
        )
    return pd.DataFrame(rows)


def train_shipped_agents(profile: str = "cpu", path: str | Path = SHIPPED_AGENT) -> dict[str, Any]:
    """Write the agents of fold :data:`SHIP_HOLDOUT_FOLD` (one per C, trained on the admitted
    datasets minus that fold; the same cache keys as the study's, so trained once) to ``path``
    (acting-only, float32), with a JSON card beside it that says how they were made and which
    datasets they never saw."""
    t0 = time.perf_counter()
    sizes = neon_study_sizes(profile)
    data = load_study_data(sizes)
    nets, base_table = build_base_networks(sizes, data)
    names = [n for n in sizes.datasets if n in set(admitted(admit_study_datasets(sizes, data, base_table)))]
    folds = study_folds(sizes, names)
    k = SHIP_HOLDOUT_FOLD
    train_names = _train_names(folds, k)
    [agents], log = train_agents(sizes, data, nets, [(f"fold{k}", train_names)])
    path = Path(path)
    agents.export(path)
    log = log.assign(fold=k)
    conv = agent_convergence(sizes, log)
    card = {
        "what": "NEON actor-critic agents, one per C, for pruning hidden neurons of MLPs",
        "file": path.name,
        "bytes": path.stat().st_size,
        "made_by": f"pruning_core.studies.neon.train_shipped_agents(profile={profile!r})",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_info(),
        "profile": profile,
        "C_values": list(sizes.C_values),
        "agent_keys": {f"{C:g}": agent_key(sizes, train_names, f"fold{k}", C).hashname
                       for C in sizes.C_values},  # fmt: skip
        "datasets": train_names,
        "held_out_datasets": folds[k],
        "networks": sum(d in train_names for d, _ in nets),
        "episodes": {f"{C:g}": a.episodes_done for C, a in agents.items()},
        "converged_at": {f"{C:g}": a.converged_at for C, a in agents.items()},
        "final_entropy": {f"{r.C:g}": r.final_entropy for r in conv.itertuples()},
        "obs_dim": next(iter(agents.values())).obs_dim,
        "n_actions": next(iter(agents.values())).n_actions,
        "keep_fractions": list(sizes.env.keep_fractions),
        "env": asdict(sizes.env),
        "agent": asdict(sizes.agent),
        "stop": asdict(sizes.stop),
        "max_episodes": sizes.max_agent_episodes,
        "space": asdict(sizes.space),
        "base_train": asdict(sizes.base_train),
        "train_seconds": time.perf_counter() - t0,
    }
    atomic_write_text(path.with_suffix(".json"), json.dumps(card, indent=2, default=str) + "\n")
    return card


def _main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ship", help="train the shipped agents and write them to pruning_core/assets")
    s.add_argument("--profile", default="cpu")
    s.add_argument("--out", default=str(SHIPPED_AGENT))
    args = p.parse_args(argv)
    if args.cmd == "ship":
        card = train_shipped_agents(args.profile, args.out)
        keys = ("file", "bytes", "episodes", "converged_at", "held_out_datasets")
        print(json.dumps({k: card[k] for k in keys}, indent=2))


if __name__ == "__main__":  # pragma: no cover
    _main()

