"""Notebook 05, NEON's ablations on the corrected MDP of notebook 04 (issue 15).

Each **variant** changes one design choice of NEON against the study's configuration
(:func:`pruning_core.studies.neon.neon_study_sizes`): 1 pass over the layers instead of 4, no
random warm-up, masking instead of structural removal, fine-tuning the whole network instead of
the changed layers (:data:`NEON_VARIANTS`); :data:`MDP_VARIANTS` adds the two corrections of
issue 15 (``L`` against the layer's current width, no noise margin) for a caller that wants them.

**Setup: the study's, at one C.** Everything that is not the variant's change is notebook 04's:
the MDP (``sizes.env``: fine-tuning after each action, the noise margin, ``removed_of="original"``,
the disjoint ``reward`` split for the reward and ``stop`` split for early stopping), the base
networks (:func:`~pruning_core.studies.neon.build_base_networks`: random architectures trained to
convergence, cached under the study's keys, so notebook 04's networks are reused), only datasets
that pass the study's admission rule, the actor-critic's hyperparameters (``sizes.agent``) and
its fast path (:class:`~pruning_core.rl.envs.neon_batched.NeonBatch`, ``lockstep`` episodes at a
time). One agent per run is trained at ``C = 1`` point on the networks of a few datasets, and its
greedy policy then prunes each of those networks once (an ablation of design choices, not a
transfer test: notebook 04 tests transfer). Masking is not on the fast path
(``NeonBatch`` reproduces the structural mode only), so the ``mask`` variant plays
:class:`~pruning_core.rl.envs.neon.NeonEnv` episodes behind NeonBatch's interface
(:class:`EnvLockstep`: the same episode draws and the same ``lockstep`` episodes per policy, so
the agent trains on the same path, only slower); the ``backend`` column says which, and its
``seconds_per_episode`` is therefore not comparable with the others'.

**A fixed budget.** Every run trains for the same number of episodes (``episodes``, the warm-up
included), so each variant gets the same experience. The budget is one at which the default's
policy has converged by the study's rule: at cpu the study's agents (window 48, a check every 16
episodes, 16 warm-up episodes) converged after 80-128 episodes (11 of 12 agents of the corrected
study's first cpu run; the rule cannot fire before 80). Each row says whether the rule's entropy
test holds at the end (``entropy_converged``: the mean entropy of the last ``window`` learning
episodes is at most ``max_entropy_share`` of ``ln 5``) and the final entropy itself.

**Paired seeds.** Seed ``s`` is the agent's seed (initialisation, action sampling, the draw of
each episode's network) and the environment's (fine-tuning batch order, observation rows) in
every variant, so the variants' runs pair by seed (:mod:`pruning_core.studies.ablations_effects`).

Runs are independent jobs (:func:`~pruning_core.config.run_jobs`, one torch thread each) cached
under ``cache_root()/05_ablations/neon_mdp`` (:class:`NeonAblationKey`); a run interrupted in
training resumes from its checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from gymnasium.utils import seeding

from pruning_core.config import by_profile, no_progress, run_jobs
from pruning_core.data.splits import Splits
from pruning_core.models.mlp import BaseNet
from pruning_core.rl.agents.a2c import A2CConfig, ActorCriticAgent
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig, NeonTask
from pruning_core.rl.envs.neon_batched import BatchPolicy, NeonBatch, NeonEpisode
from pruning_core.rl.envs.neon_features import OBS_DIM
from pruning_core.runs import ArtefactKey, cached
from pruning_core.studies.ablations_sizes import CPU_NEON_EPISODE_SECONDS, GPU_CORES
from pruning_core.studies.neon import (
    NeonStudySizes,
    admit_study_datasets,
    build_base_networks,
    load_study_data,
    neon_study_sizes,
)
from pruning_core.studies.neon_sizes import work_factors
from pruning_core.studies.neon_suite import admitted
from pruning_core.train.loop import evaluate

__all__ = [
    "MDP_VARIANTS",
    "NEON_VARIANTS",
    "RUN_COLUMNS",
    "NeonAblationKey",
    "NeonAblationSizes",
    "NeonVariant",
    "neon_ablation",
    "neon_ablation_sizes",
    "neon_ablation_time_estimate",
    "EnvLockstep",
    "neon_ablation_tasks",
    "run_neon_variant",
]


@dataclass(frozen=True)
class NeonVariant:
    """One NEON configuration: overrides of the study's :class:`NeonEnvConfig` and warm-up."""

    name: str
    """Short name; ``default`` is the reference."""
    env: dict[str, Any] = field(default_factory=dict)
    """Overrides of the study's NeonEnvConfig (passes, mode, finetune, removed_of, ...)."""
    warmup: bool = True
    """The study's random warm-up episodes, or none."""
    label: str = ""
    """What the configuration is."""


NEON_VARIANTS: list[NeonVariant] = [
    NeonVariant("default", label="notebook 04's NEON: 4 passes, warm-up, structural, "
                                 "fine-tune changed layers"),  # fmt: skip
    NeonVariant("passes_1", env={"passes": 1}, label="1 pass"),
    NeonVariant("no_warmup", warmup=False, label="no warm-up"),
    NeonVariant("mask", env={"mode": "mask"}, label="masking instead of removal (NeonEnv)"),
    NeonVariant("finetune_all", env={"finetune": "all"}, label="fine-tune the whole network"),
]
"""The NEON ablation's configurations; the first is the default."""


MDP_VARIANTS: list[NeonVariant] = [
    NeonVariant("removed_of_current", env={"removed_of": "current"},
                label="L against the layer's current width (the authors' code)"),  # fmt: skip
    NeonVariant("no_noise_margin", env={"noise_margin_pp": 0.0},
                label="no noise margin (the paper's rule)"),  # fmt: skip
]
"""Optional extra variants: the two corrections of issue 15 undone (not run by default)."""


RUN_COLUMNS: tuple[str, ...] = (
    "ablation", "variant", "label", "seed", "compression", "log_compression", "delta_test_pp",
    "delta_val_pp", "delta_stop_pp", "within_C_share", "policy_entropy", "entropy_converged",
    "episodes", "seconds_per_episode", "networks", "backend",
)  # fmt: skip
"""The columns of :func:`neon_ablation`'s run table, the same for every variant."""


@dataclass(frozen=True)
class NeonAblationSizes:
    """The NEON ablation's sizes (see :func:`neon_ablation_sizes`); the rest is ``study``'s."""

    profile: str
    study: NeonStudySizes
    """Notebook 04's sizes for the profile: env, agent, base networks, data caps, rule."""
    datasets: tuple[str, ...]
    """Candidate datasets (those the study's admission rule rejects are dropped)."""
    nets_per_dataset: int
    """Base networks per dataset (the study's first ones: the same cache entries)."""
    seeds: tuple[int, ...]
    """Seeds of every variant (paired across variants)."""
    episodes: int
    """Training episodes of every run, warm-up included."""
    C: float = 1.0
    """The allowed loss (points) the agents train and are evaluated at."""
    workers: int | None = None
    """Processes running the runs (None: one per core; 0: in this process)."""
    variants: tuple[str, ...] = ()
    """Names of the variants run at this profile (empty: all of :data:`NEON_VARIANTS`)."""
    note: str = ""


def neon_ablation_sizes(profile: str) -> NeonAblationSizes:
    """The NEON ablation's sizes for ``profile`` (smoke / cpu / gpu).

    cpu: 4 admitted datasets of the study with 1 network each (spam7, chile_vote, storms,
    credit_data: 5, 3, 4 and 4 hidden layers of 64-256, so 1 pass and 4 passes differ), 128
    episodes (the study's cpu agents converged by 80-128), 5 paired seeds. Measured for one seed,
    one process, one thread, on a 2-core machine busy with another 2-process job: default 39 s,
    passes_1 18 s, no_warm-up 69 s, mask 273 s (NeonEnv, 2.1 s per episode), finetune_all 61 s.
    The whole cpu profile (every notebook) must fit 2 hours, so the cpu profile leaves ``mask``
    out (60% of the cost: NeonBatch has no masking mode) and runs the other four variants at 5
    seeds, about 190 s of work per seed; the gpu profile runs all five at 10 seeds on 12 networks
    with the cpu's 128 episodes (notebook 04's gpu networks and MDP are the cpu's, so the
    measured cost per episode holds; its time is in the gpu ``note``, from
    :func:`neon_ablation_time_estimate`, within the 6-hour gpu budget of
    :mod:`pruning_core.studies.gpu_budget`). smoke: 2 tiny networks, 8 episodes, 2 seeds, about
    13 s.
    """
    study = neon_study_sizes(profile, preset="entropy_stop")  # its variants compare the earlier setting
    # and the paper's reward (+L**3 for a rise), which 05's committed NEON ablation ran
    study = replace(study, env=replace(study.env, improvement_reward="cubic"))
    sizes = NeonAblationSizes(
        profile=profile,
        study=study,
        datasets=by_profile(
            profile,
            smoke=("spam7", "chile_vote"),
            cpu=("spam7", "chile_vote", "storms", "credit_data"),
            gpu=("spam7", "chile_vote", "storms", "credit_data", "diamonds", "cells"),
        ),
        nets_per_dataset=by_profile(profile, smoke=1, cpu=1, gpu=2),
        seeds=tuple(range(by_profile(profile, smoke=2, cpu=5, gpu=10))),
        episodes=by_profile(profile, smoke=8, cpu=128, gpu=128),
        C=1.0,
        workers=by_profile(profile, smoke=0, cpu=None, gpu=None),
        variants=by_profile(
            profile,
            smoke=(),
            cpu=("default", "passes_1", "no_warmup", "finetune_all"),
            gpu=(),
        ),
        note=by_profile(
            profile,
            smoke="smoke: 2 tiny networks, 8 episodes, 2 seeds: checks the plumbing only",
            cpu="cpu: 4 networks of notebook 04, 128 episodes per agent, 5 paired seeds, C = 1; "
            "masking (NeonEnv, 60% of the cost) is left to the gpu profile",
            gpu="gpu: 12 networks (2 of each of 6 datasets), 128 episodes per agent (the cpu's), "
            "10 paired seeds, C = 1, all five variants (masking included)",
        ),
    )
    if profile == "gpu":
        sizes = replace(sizes, note=f"{sizes.note}. {neon_ablation_time_estimate(sizes, GPU_CORES)[1]}")
    return sizes


def neon_ablation_time_estimate(sizes: NeonAblationSizes, cores: int = 2) -> tuple[float, str]:
    """Minutes of NEON's ablation on ``cores`` one-thread workers, and the sentence with its
    arithmetic: seeds x episodes x the measured seconds per episode of each variant at cpu
    sizes (:data:`~pruning_core.studies.ablations_sizes.CPU_NEON_EPISODE_SECONDS`), times the
    study's work per episode against the cpu's (:func:`~.neon_sizes.work_factors`, an
    assumption), spread over the workers longest first. The base networks are notebook 04's
    (cached when it ran first, as ``run_all.sh`` runs them); the final greedy prunes are left out."""
    names = sizes.variants or tuple(v.name for v in NEON_VARIANTS)
    f = work_factors(sizes.study)["episode"]
    per_run = {v: sizes.episodes * CPU_NEON_EPISODE_SECONDS[v] * f for v in names}
    core_s = len(sizes.seeds) * sum(per_run.values())
    longest = max(per_run.values())
    total = (core_s / cores + longest) / 60
    scale = "" if math.isclose(f, 1.0, rel_tol=1e-3) else f" x {f:.2f} (work per episode against the cpu's)"
    text = (
        f"Time on {cores} cores, from measured seconds per episode at cpu sizes "
        f"({', '.join(f'{v} {CPU_NEON_EPISODE_SECONDS[v]}' for v in names)}){scale}: "
        f"{len(sizes.seeds)} seeds x {sizes.episodes} episodes = {core_s:,.0f} core-s / {cores} "
        f"workers + the longest run ({longest:.0f} s) = about {total:.0f} min (assumed: a core "
        f"as fast as the measured machine's; the base networks from notebook 04's cache)"
    )
    return total, text


def neon_ablation_tasks(
    sizes: NeonAblationSizes,
) -> tuple[dict[str, Splits], list[BaseNet], pd.DataFrame]:
    """The ablation's data and base networks (the study's functions and cache entries) and the
    admission table of its candidate datasets; ValueError if none is admitted."""
    study = replace(sizes.study, nets_per_dataset=sizes.nets_per_dataset)
    data = load_study_data(study, sizes.datasets)
    nets, table = build_base_networks(study, data)
    ok = set(admitted(admit_study_datasets(study, data, table)))
    if not ok:
        raise ValueError(f"none of {sizes.datasets} passes the study's admission rule")
    bases = [b for (d, _i), b in nets.items() if d in ok]
    return {d: data[d] for d in data if d in ok}, bases, table.assign(admitted=table["dataset"].isin(ok))


@dataclass(frozen=True)
class NeonAblationKey(ArtefactKey):
    """One NEON ablation run: the base networks, the env and agent configs, the budget, C."""

    KIND = "05_ablations/neon_mdp"
    VERSION = 1
    variant: str
    bases: tuple[str, ...]
    """The base networks' keys."""
    env: NeonEnvConfig
    agent: A2CConfig
    episodes: int
    lockstep: int
    C: float
    window: int
    """The convergence rule's window (the final entropy's)."""
    data: dict[str, Any]
    """The row caps of the data."""

    @property
    def prefix(self) -> str:
        """Variant and seed."""
        return f"{self.variant}-seed{self.agent.seed}"


def _configs(sizes: NeonAblationSizes, variant: NeonVariant, seed: int) -> tuple[NeonEnvConfig, A2CConfig]:
    env = replace(sizes.study.env, C_values=(float(sizes.C),), seed=seed, **variant.env)
    agent = replace(sizes.study.agent, seed=seed)
    if not variant.warmup:
        agent = replace(agent, warmup_episodes=0)
    return env, agent


def run_key(sizes: NeonAblationSizes, bases: Sequence[BaseNet], variant: NeonVariant,
            seed: int) -> NeonAblationKey:  # fmt: skip
    """The cache key of one run."""
    env, agent = _configs(sizes, variant, seed)
    s = sizes.study
    caps = {"train": s.max_train_rows, "val": s.max_val_rows, "test": s.max_test_rows}
    return NeonAblationKey(
        variant.name, tuple(b.key for b in bases), env, agent, sizes.episodes, s.lockstep,
        float(sizes.C), s.stop.window, {"rows": caps, "reward_stop": "disjoint"},
    )  # fmt: skip


class EnvLockstep(NeonBatch):
    """:class:`NeonEnv` behind :class:`NeonBatch`'s interface, for configurations the fast path
    does not reproduce (``mode="mask"``): ``play`` runs one NeonEnv per episode, in lockstep,
    and calls the policy as ``NeonBatch.play`` does (the same episodes' tasks and Cs drawn from
    the same generator, the same policy calls in the same order), so an agent trains on it
    exactly as on the fast path -- ``lockstep`` episodes per policy -- only slower."""

    def __init__(self, tasks: Sequence[NeonTask], config: NeonEnvConfig) -> None:  # noqa: D107
        # NeonBatch.__init__ refuses mask mode; set what its other methods read
        self.config = config
        self.tasks = list(tasks)
        if not self.tasks:
            raise ValueError("EnvLockstep needs at least one task")
        self.n_actions = len(config.keep_fractions)
        self.obs_dim = OBS_DIM
        self.np_random, _ = seeding.np_random(None)
        self.stats = {"nodes": 0, "finetunes": 0, "reused": 0, "steps": 0, "episodes": 0}

    def play(
        self,
        policy: BatchPolicy,
        n: int | None = None,
        starts: Sequence[tuple[int | None, float | None]] | None = None,
    ) -> list[NeonEpisode]:
        """As :meth:`NeonBatch.play`, each episode on its own :class:`NeonEnv`."""
        eps, envs, obs = [], [], []
        for t, c in self.draw_starts(n, starts):
            env = NeonEnv(self.tasks, self.config)
            o, _ = env.reset(options={"task": t, "C": c})
            eps.append(NeonEpisode(t, c))
            envs.append(env)
            obs.append(o)
        done = [False] * len(eps)
        while not all(done):
            live = [i for i, d in enumerate(done) if not d]
            actions = policy(np.stack([obs[i] for i in live]), live)
            for i, a in zip(live, actions, strict=True):
                eps[i].observations.append(obs[i])
                eps[i].actions.append(int(a))
                o, r, term, trunc, info = envs[i].step(int(a))
                eps[i].rewards.append(float(r))
                eps[i].infos.append(info)
                obs[i] = o
                done[i] = term or trunc
                self.stats["steps"] += 1
        for ep, env, o in zip(eps, envs, obs, strict=True):
            ep.final_observation = o
            ep.report = env.episode_report()
            ep.final_network = env.final_model()
            self.stats["episodes"] += 1
        return eps


def _greedy(
    env: NeonBatch, agent: ActorCriticAgent, n_tasks: int, C: float
) -> list[tuple[dict[str, Any], Any]]:
    """One greedy episode per task: its report and the pruned network."""
    out = agent.run_batch(env, n_tasks, greedy=True, starts=[(i, C) for i in range(n_tasks)])
    return [(ep.report, ep.final_network) for _traj, ep in out]


def run_neon_variant(
    sizes: NeonAblationSizes,
    data: dict[str, Splits],
    bases: Sequence[BaseNet],
    variant: NeonVariant,
    seed: int,
) -> dict[str, Any]:
    """Train (or load) one variant at one seed for ``sizes.episodes`` episodes; then its greedy
    policy prunes every network once at ``C``. Returns the per-network rows, the training log
    and the timing (cached; an interrupted training resumes from its checkpoint)."""
    path = run_key(sizes, bases, variant, seed).path()

    def build() -> dict[str, Any]:
        env_cfg, agent_cfg = _configs(sizes, variant, seed)
        tasks = [NeonTask.from_base(b, data[b.dataset]) for b in bases]
        batched = env_cfg.mode == "structural"  # NeonBatch reproduces the structural mode only
        env = NeonBatch(tasks, env_cfg) if batched else EnvLockstep(tasks, env_cfg)
        agent = ActorCriticAgent(OBS_DIM, len(env_cfg.keep_fractions), agent_cfg)
        ckpt = path.with_name(path.stem + ".train.pt")
        with no_progress():  # cached() runs the build with one torch thread
            log = agent.train(
                env, sizes.episodes, checkpoint_path=ckpt,
                checkpoint_every=4 * sizes.study.lockstep, lockstep=sizes.study.lockstep,
            )  # fmt: skip
            rows = []
            for b, task, (rep, model) in zip(
                bases, tasks, _greedy(env, agent, len(tasks), float(sizes.C)), strict=True
            ):
                d = data[b.dataset]
                orig = task.model
                acc = {s: evaluate(orig, d.tensors(s), batch_size=None)["top1"] for s in ("stop", "test")}
                new = {s: evaluate(model, d.tensors(s), batch_size=None)["top1"] for s in ("stop", "test")}
                rows.append(
                    {
                        "dataset": b.dataset,
                        "net": b.index,
                        "n_hidden": b.spec.n_hidden,
                        "params_orig": rep["params_orig"],
                        "params_pruned": rep["params_pruned"],
                        "compression": rep["compression"],
                        "delta_val_pp": rep["delta_val_pp"],
                        "delta_stop_pp": (new["stop"] - acc["stop"]) * 100,
                        "delta_test_pp": (new["test"] - acc["test"]) * 100,
                        "test_acc_orig": acc["test"],
                        "test_acc": new["test"],
                        "greedy_return": rep["return"],
                        "widths": "-".join(map(str, rep["widths_orig"])) + " -> "
                                  + "-".join(map(str, rep["widths_final"])),  # fmt: skip
                    }
                )
        for p in (ckpt, ckpt.with_name(ckpt.name + ".sha256")):
            p.unlink(missing_ok=True)
        seconds = float(log["seconds"].sum())  # playing the episodes (resumed runs included)
        return {
            "networks": rows,
            "log": log.to_dict("list"),
            "seconds": seconds,
            "seconds_per_episode": seconds / max(agent.episodes_done, 1),
            "episodes": agent.episodes_done,
            "backend": "NeonBatch" if batched else "NeonEnv (EnvLockstep)",
        }

    return cached(path, build)


def _final_entropy(log: pd.DataFrame, window: int) -> float:
    """Mean policy entropy of the last ``window`` learning (non-warm-up) episodes."""
    if "entropy" not in log or "warmup" not in log:
        return math.nan
    learn = log[~log["warmup"].astype(bool)]["entropy"].dropna()
    return float(learn.tail(window).mean()) if len(learn) else math.nan


def run_row(
    sizes: NeonAblationSizes, variant: NeonVariant, seed: int, res: dict[str, Any]
) -> dict[str, Any]:
    """One run's row of :data:`RUN_COLUMNS`: means over its networks, its final entropy."""
    per = pd.DataFrame(res["networks"])
    log = pd.DataFrame(res["log"])
    rule = sizes.study.stop
    ent = _final_entropy(log, rule.window)
    n_learn = int((~log["warmup"].astype(bool)).sum()) if "warmup" in log else 0
    return {
        "ablation": "neon",
        "variant": variant.name,
        "label": variant.label,
        "seed": seed,
        "compression": float(per["compression"].mean()),
        "log_compression": float(np.log(per["compression"]).mean()),
        "delta_test_pp": float(per["delta_test_pp"].mean()),
        "delta_val_pp": float(per["delta_val_pp"].mean()),
        "delta_stop_pp": float(per["delta_stop_pp"].mean()),
        "within_C_share": float((per["delta_test_pp"] >= -sizes.C).mean()),
        "policy_entropy": ent,
        "entropy_converged": bool(
            n_learn >= rule.window and ent <= rule.max_entropy_share * math.log(len(sizes.study.env.keep_fractions))
        ),
        "episodes": int(res["episodes"]),
        "seconds_per_episode": float(res["seconds_per_episode"]),
        "networks": len(per),
        "backend": res["backend"],
    }


def _job(job: tuple[NeonAblationSizes, dict[str, Splits], list[BaseNet], NeonVariant, int]) -> None:
    """One run, for :func:`run_jobs` (the result is read back from the cache)."""
    run_neon_variant(*job)


def neon_ablation(
    sizes: NeonAblationSizes, variants: Sequence[NeonVariant] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every variant (default: those ``sizes.variants`` names, all when empty) at every seed
    (runs not yet cached go to ``sizes.workers`` processes, one torch thread each). Returns the run table (:data:`RUN_COLUMNS`, one row per variant and
    seed) and the per-network table (one row per variant, seed and network: compression,
    accuracy changes on the reward, stop and test splits, widths before -> after)."""
    if variants is None:
        variants = [v for v in NEON_VARIANTS if not sizes.variants or v.name in sizes.variants]
    if not variants or variants[0].name != "default":
        raise ValueError("the first variant must be the default")
    data, bases, _table = neon_ablation_tasks(sizes)
    todo = [(v, s) for v in variants for s in sizes.seeds]
    jobs = [(sizes, data, bases, v, s) for v, s in todo
            if not run_key(sizes, bases, v, s).path().is_file()]  # fmt: skip
    if jobs:
        run_jobs(_job, jobs, workers=sizes.workers, desc="NEON ablation runs")
    rows, nets = [], []
    for v, s in todo:
        res = run_neon_variant(sizes, data, bases, v, s)
        rows.append(run_row(sizes, v, s, res))
        nets.append(pd.DataFrame(res["networks"]).assign(variant=v.name, seed=s))
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS)), pd.concat(nets, ignore_index=True)
