"""The NEON study (notebook 04) as functions, so the notebook holds only parameters and prose.

Protocol (cross-dataset, as in Hirsch & Katz 2022): the study's datasets are split into folds;
for each fold and each allowed loss ``C`` an agent is trained (one agent per ``C``, as in the
paper) on the networks of the *other* folds' datasets and tested on the networks of the held-out
fold's datasets, which it never saw. An agent trains on NEON's fast path
(:class:`~pruning_core.rl.envs.neon_batched.NeonBatch`) until its greedy return on validation
networks kept out of its updates plateaus (:class:`~pruning_core.rl.agents.convergence.PlateauRule`)
or its episode cap; sizes are in :mod:`.neon_sizes`, diagnostics in :mod:`.neon_diagnostics`; the
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
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pruning_core.config import progress, run_jobs, torch_threads
from pruning_core.data.splits import Splits
from pruning_core.data.tabular import load_tabular
from pruning_core.methods.baselines import BASELINES
from pruning_core.methods.neon import base_network
from pruning_core.models.mlp import ArchitectureSpace, BaseNet
from pruning_core.pruning.neurons import count_params
from pruning_core.rl.agents.a2c import A2CConfig, ActorCriticAgent
from pruning_core.rl.agents.a2c_set import SHIPPED_AGENT, AgentsByC
from pruning_core.rl.agents.convergence import ConvergenceRule, PlateauRule
from pruning_core.rl.envs.neon import NeonEnvConfig, NeonTask
from pruning_core.rl.envs.neon_batched import NeonBatch
from pruning_core.runs import ArtefactKey, atomic_write_text, git_info, resume_checkpoint
from pruning_core.studies.neon_diagnostics import agent_convergence
from pruning_core.studies.neon_sizes import (
    CPU_DATASETS,
    NOISE_MARGIN_PP,
    SMOKE_DATASETS,
    NeonStudySizes,
    neon_study_sizes,
    with_threads,
)
from pruning_core.studies.neon_suite import admit_datasets, admitted, reference_table
from pruning_core.train.loop import TrainConfig

__all__ = [
    "AgentKey",
    "CPU_DATASETS",
    "NeonStudySizes",
    "SHIP_HOLDOUT_FOLD",
    "SMOKE_DATASETS",
    "admit_study_datasets",
    "admitted_study",
    "NOISE_MARGIN_PP",
    "agent_convergence",
    "split_tasks",
    "with_threads",
    "build_base_networks",
    "load_study_data",
    "make_folds",
    "neon_study_sizes",
    "study_folds",
    "train_agents",
    "train_fold_agents",
    "train_shipped_agents",
]


SHIP_HOLDOUT_FOLD = 0
"""The fold whose datasets the shipped agents never see: they are that fold's agents (trained on
the other folds), and the notebook reports them on it (``shipped_agent_unseen``)."""


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


def admitted_study(
    sizes: NeonStudySizes,
) -> tuple[dict[str, Splits], dict[tuple[str, int], BaseNet], list[list[str]]]:
    """Notebook 04's sections 1-3 without their tables: the admitted datasets' splits, their base
    networks (trained or from the cache) and the folds."""
    data = load_study_data(sizes)
    nets, base_table = build_base_networks(sizes, data)
    ok = set(admitted(admit_study_datasets(sizes, data, base_table)))
    names = [n for n in sizes.datasets if n in ok]
    nets = {k: b for k, b in nets.items() if k[0] in ok}
    return {n: data[n] for n in names}, nets, study_folds(sizes, names)


def make_folds(datasets: Sequence[str], n_folds: int, seed: int = 0) -> list[list[str]]:
    """Split datasets into ``n_folds`` folds (a seeded shuffle dealt round-robin)."""
    if not 2 <= n_folds <= len(datasets):
        raise ValueError(f"need 2 <= n_folds <= {len(datasets)} datasets, got {n_folds}")
    order = list(datasets)
    np.random.default_rng(seed).shuffle(order)
    return [sorted(order[k::n_folds], key=list(datasets).index) for k in range(n_folds)]


def split_tasks(
    sizes: NeonStudySizes,
    names: Sequence[str],
    nets: dict[tuple[str, int], BaseNet],
    data: dict[str, Splits],
) -> tuple[list[NeonTask], list[NeonTask]]:
    """The networks of the datasets ``names`` as tasks: those the agent updates on, and the
    validation ones (the last ``val_nets_per_dataset`` of each dataset), kept out of the updates
    for the plateau rule (none when the stopping rule needs none)."""
    n_val = sizes.val_nets_per_dataset if isinstance(sizes.stop, PlateauRule) else 0
    cut = sizes.nets_per_dataset - n_val
    if cut < 1:
        raise ValueError(f"{sizes.nets_per_dataset} nets per dataset leave none to train on")
    train = [NeonTask.from_base(b, data[d]) for (d, i), b in nets.items() if d in names and i < cut]
    val = [NeonTask.from_base(b, data[d]) for (d, i), b in nets.items() if d in names and i >= cut]
    return train, val


@dataclass(frozen=True)
class AgentKey(ArtefactKey):
    """One NEON agent: the networks it trains on and its env and agent configs.

    Its path is the agent's resumable checkpoint (the training log is the ``.csv`` beside it).
    """

    KIND = "neon/agents"
    VERSION = 3
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
    stop: ConvergenceRule | PlateauRule
    lockstep: int
    val_nets: int = 0
    """Validation networks per training dataset (kept out of the updates)."""

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
        sizes.val_nets_per_dataset if isinstance(sizes.stop, PlateauRule) else 0,
    )  # fmt: skip


def agents_id(sizes: NeonStudySizes, train_names: Sequence[str], label: str) -> str:
    """One name for the set of per-C agents trained on ``train_names`` (their keys joined)."""
    return "+".join(agent_key(sizes, train_names, label, C).hashname for C in sizes.C_values)


def train_agent(
    sizes: NeonStudySizes,
    tasks: list[NeonTask],
    val_tasks: list[NeonTask],
    C: float,
    checkpoint: Path,
    desc: str = "agent",
) -> tuple[ActorCriticAgent, pd.DataFrame]:
    """Train (or resume) the actor-critic for ``C`` on ``tasks`` (NEON's fast path) until the
    profile's stopping rule (a plateau of the greedy return on ``val_tasks``, which never enter
    an update) or episode cap stops it; the checkpoint makes it resumable and the per-episode
    log (entropy, actions, ``val_return`` at checks) is the ``.csv`` beside it."""
    env = NeonBatch(tasks, replace(sizes.env, C_values=(float(C),)))
    val_env = NeonBatch(val_tasks, replace(sizes.env, C_values=(float(C),))) if val_tasks else None
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
            val_env=val_env,
        )
    return agent, log


def _agent_job(
    job: tuple[NeonStudySizes, list[NeonTask], list[NeonTask], float, Path, str],
) -> None:
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
        tasks, val = split_tasks(sizes, names, nets, data)
        for C in sizes.C_values:
            ckpt = agent_key(sizes, names, label, C).path()
            where.append((label, C, ckpt))
            if not _agent_finished(sizes, ckpt):
                jobs.append((sizes, tasks, val, float(C), ckpt, f"agent {label} C={C:g}"))
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


def train_shipped_agents(profile: str = "cpu", path: str | Path = SHIPPED_AGENT) -> dict[str, Any]:
    """Write the agents of fold :data:`SHIP_HOLDOUT_FOLD` (one per C, trained on the admitted
    datasets minus that fold; the same cache keys as the study's, so trained once) to ``path``
    (acting-only, float32), with a JSON card beside it that says how they were made and which
    datasets they never saw."""
    t0 = time.perf_counter()
    sizes = neon_study_sizes(profile)
    data, nets, folds = admitted_study(sizes)
    k = SHIP_HOLDOUT_FOLD
    train_names = _train_names(folds, k)
    [agents], log = train_agents(sizes, data, nets, [(f"fold{k}", train_names)])
    path = Path(path)
    agents.export(path)
    log = log.assign(fold=k)
    conv = agent_convergence(sizes, log)
    preset = sizes.agent.preset
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
        "agent_preset": preset,
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

