"""Every size of the NEON study (notebook 04) per profile: datasets, networks, the MDP, the agent
preset and its stopping rule (:func:`neon_study_sizes`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pruning_core.config import by_profile, torch_threads
from pruning_core.models.mlp import ArchitectureSpace
from pruning_core.rl.agents.a2c import A2CConfig, a2c_preset
from pruning_core.rl.agents.convergence import ConvergenceRule, PlateauRule
from pruning_core.rl.envs.neon import NeonEnvConfig, default_finetune
from pruning_core.studies.ablations_sizes import GPU_CORES
from pruning_core.train.loop import TrainConfig

__all__ = [
    "CPU_BASE_BEST_EPOCH",
    "CPU_DATASETS",
    "CPU_MAX_EPISODES",
    "CPU_PER_NETWORK_EPISODE",
    "CPU_PIECES",
    "DATASET_SHAPES",
    "DEFAULT_PRESET",
    "GPU_MAX_EPISODES",
    "GPU_NETS_PER_DATASET",
    "IMPROVEMENT_REWARD",
    "NOISE_MARGIN_PP",
    "NeonStudySizes",
    "SMOKE_DATASETS",
    "cpu_time_estimate",
    "expected_macs",
    "neon_study_sizes",
    "time_estimate",
    "with_threads",
    "work_factors",
]


CPU_DATASETS: tuple[str, ...] = (
    "digits", "diamonds", "health_insurance", "telco_churn", "mlc_churn", "mpls_stops",
    "storms", "yrbss_gender", "ten_mile_race", "flchain_death", "spam7", "credit_data",
    "hpc_jobs", "chile_vote", "hmda_deny", "cells", "attrition", "credit_card",
)  # fmt: skip
"""18 suite datasets (3 folds of 6, like the paper's folds of 6): the first 18 in suite order with
at least 1,000 rows and no class above 90%, so a validation split resolves small accuracy changes.
The shipped agents are trained on these minus fold ``SHIP_HOLDOUT_FOLD``."""


SMOKE_DATASETS: tuple[str, ...] = ("spam7", "chile_vote", "breast_cancer", "train_choice")
"""Four small datasets for the smoke profile."""


CPU_MAX_EPISODES = 256
"""The cpu profile's cap on each (fold, C) agent's episodes (the plateau rule usually stops it
before; see the cost arithmetic in :func:`neon_study_sizes`' note)."""


GPU_NETS_PER_DATASET = 8
"""The gpu profile's random networks per dataset (the paper: 30; cpu: 5): as many as the 6-hour
budget allows (:mod:`~pruning_core.studies.gpu_budget`), see :func:`neon_study_sizes`' note."""


GPU_MAX_EPISODES = 384
"""The gpu profile's cap on each (fold, C) agent's episodes (1.5x the cpu's; the plateau rule
usually stops it before)."""


DEFAULT_PRESET = "standardized"
"""The agent preset of the study (:data:`~pruning_core.rl.agents.a2c.A2C_PRESETS`): standardised
observations, entropy 0.05, stopped on a validation plateau. ``paper`` is Hirsch & Katz's
setting; ``entropy_stop`` the earlier study setting (stopped on entropy collapse)."""


IMPROVEMENT_REWARD = "linear"
"""What a step after which the reward-split accuracy *rose* earns in the study: ``L``, as a step
within C (the paper's reward pays ``+L**3``). Chosen by the reward pilot
(:mod:`~pruning_core.studies.neon_pilot`, seed 100: other splits, architectures and folds than
the study's; ``results/cpu/pilots/neon_reward.json``) by its rule fixed beforehand: on 45
held-out networks at C = 1 the paper's reward ends 51% of them over C on test at x12.7 and
-1.85 pt; a linear rise 20% at x2.59 and -0.23 pt (the risk-calibrated ``within_weight = 1/9``:
31% at x4.27); at C = 5, 31% / 7% / 16%. A rise on a reward split of a few hundred rows is mostly
noise, and ``+L**3`` paid the agents to gamble on it."""


NOISE_MARGIN_PP = 0.5
"""The study's noise margin (points): a reward-split accuracy change this small earns ``L``,
neither ``+L**3`` nor ``-L**3``, and counts as within every ``C``. Below 1 so that ``C = 0`` and
``C = 1`` still differ."""


@dataclass(frozen=True)
class NeonStudySizes:
    """Every size of the study, derived from the profile (see :func:`neon_study_sizes`)."""

    profile: str
    datasets: tuple[str, ...]
    """Candidate datasets; those that pass the admission rule make the folds."""
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
    """Actor-critic hyperparameters (``agent.preset`` names the preset)."""
    max_agent_episodes: int
    """Cap on the training episodes of each (fold, C) agent; ``stop`` usually ends it before."""
    stop: ConvergenceRule | PlateauRule
    """When an agent's training stops (a validation plateau, or the earlier entropy rule)."""
    C_values: tuple[float, ...]
    """Allowed accuracy losses (pp); one agent is trained and tested per value."""
    per_network_episodes: int
    """Episodes of the per-network agent whose training time is measured."""
    val_nets_per_dataset: int = 1
    """Networks of each training dataset kept out of the agent's updates: the validation
    networks of the plateau rule (the last ones of each dataset)."""
    lockstep: int = 16
    """Episodes an agent plays at a time on the fast path (see ``ActorCriticAgent.train``)."""
    workers: int | None = None
    """Processes training the (fold, C) agents (None: one per core; 0: in this process)."""
    admit_min_gain_pp: float = 2.0
    """Admission: the best model must beat the majority class on the reward split by more than
    this many points (and by more than ``admit_se`` standard errors)."""
    admit_se: float = 2.0
    """Admission: standard errors of the majority-class accuracy the best model must beat it by."""
    max_drop_pp: float = 0.5
    """Best C: the largest mean compression whose mean validation change is >= -this."""
    seed: int = 0
    """Seed of folds, networks, agents and environments."""
    threads: int | None = 1
    """Torch threads while the study runs (1 is fastest for these small nets on a busy CPU)."""
    note: str = ""
    """How this profile departs from the paper, and (cpu, gpu) the arithmetic of its time."""


CPU_PIECES: dict[str, float] = {"base": 2.75, "episode": 0.65, "constant": 8.6, "eval": 13.7,
                                "rest_min": 1.0, "admitted": 14}  # fmt: skip
"""Measured costs (seconds) of the pieces of notebook 04 at cpu, on 2 busy cores with one thread
per process, from the committed cpu run (``results/cpu/04_neon_dense_study``: base networks'
``train_seconds``, the agents' per-episode ``seconds``, the papermill durations of the
constant-yardstick and evaluation cells over their networks) and a 2026-12-03 re-measurement
of agent episodes at these sizes (0.35 s, the larger 0.65 s kept): one base network, one agent
episode, one network's constant schedules, one held-out network's evaluation at all four C;
``rest_min`` the other cells (minutes); ``admitted`` the datasets admitted last run (of 18)."""


CPU_PER_NETWORK_EPISODE = 0.026
"""Measured seconds of one episode of the per-network agent of the timing cell at cpu (committed
cpu run, ``timing.csv``: 20 episodes in 0.52 s, 16 in lockstep on one network); counted apart
from ``rest_min`` only for the episodes a profile plays beyond the cpu's."""


CPU_BASE_BEST_EPOCH = 22.2
"""Mean best epoch of the committed cpu run's base networks (``base_networks.csv``; all 90
stopped early): a profile's base training is assumed to run this many epochs plus its patience."""


DATASET_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "digits": (987, 360, 61, 10), "diamonds": (11000, 4000, 22, 5),
    "health_insurance": (4064, 1479, 26, 2), "telco_churn": (3861, 1404, 40, 2),
    "mlc_churn": (2750, 1000, 42, 2), "mpls_stops": (11000, 4000, 50, 2),
    "storms": (10743, 3907, 7, 9), "yrbss_gender": (7462, 2714, 45, 2),
    "ten_mile_race": (4742, 1725, 23, 2), "flchain_death": (4329, 1575, 9, 2),
    "spam7": (1670, 608, 6, 2), "credit_data": (2448, 891, 26, 2), "hpc_jobs": (2381, 867, 26, 4),
    "chile_vote": (1387, 505, 14, 4), "hmda_deny": (1306, 476, 20, 2), "cells": (1110, 404, 56, 2),
    "attrition": (808, 294, 71, 2), "credit_card": (725, 264, 11, 2),
}  # fmt: skip
"""Training rows, validation rows (both halves), features and classes of each of
:data:`CPU_DATASETS` before any cap (``results/cpu/04_neon_dense_study/suite.csv``): what the
work scaling of :func:`work_factors` reads for a profile's row caps."""


def expected_macs(space: ArchitectureSpace, n_in: float, n_out: float) -> float:
    """Expected multiply-adds per row of a random network drawn from ``space`` (depth uniform,
    widths independent and uniform on the grid): ``n_in E[w] + (E[depth] - 1) E[w]^2 + E[w]
    n_out``. The unit of network size in which an episode's cost is scaled."""
    w = sum(space.widths) / len(space.widths)
    depth = (space.min_layers + space.max_layers) / 2
    return n_in * w + (depth - 1) * w * w + w * n_out


def _data_means(sizes: NeonStudySizes) -> dict[str, float]:
    """Mean capped training rows and validation-half rows, features and classes over the
    profile's datasets (those of :data:`DATASET_SHAPES`; all of them if none is listed)."""
    shapes = [DATASET_SHAPES[d] for d in sizes.datasets if d in DATASET_SHAPES]
    shapes = shapes or list(DATASET_SHAPES.values())

    def capped(n: float, cap: int | None) -> float:
        return n if cap is None else min(n, cap)

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs)

    return {
        "train": mean([capped(t, sizes.max_train_rows) for t, _, _, _ in shapes]),
        "val_half": mean([capped(v / 2, sizes.max_val_rows) for _, v, _, _ in shapes]),
        "features": mean([f for _, _, f, _ in shapes]),
        "classes": mean([c for _, _, _, c in shapes]),
    }


def _work(sizes: NeonStudySizes) -> dict[str, float]:
    """The work of one episode's action and of one base network, in rows x multiply-adds."""
    d, ft, bt = _data_means(sizes), sizes.env.ft, sizes.base_train
    macs = expected_macs(sizes.space, d["features"], d["classes"])
    steps = ft.max_steps or 0
    checks = steps // (ft.steps_per_check or max(steps, 1)) + int(ft.check_start)
    # fine-tuning (forward + backward ~ 3 passes over each batch), its checks on the stop half,
    # the reward evaluation on the reward half and the observation's activation rows
    rows = 3 * ft.batch_size * steps + (checks + 1) * d["val_half"] + sizes.env.stat_rows
    epochs = min(bt.epochs or CPU_BASE_BEST_EPOCH, CPU_BASE_BEST_EPOCH + (bt.patience or 0))
    return {"macs": macs, "action_rows": rows, "base_rows": d["train"] * epochs}


def work_factors(sizes: NeonStudySizes, reference: NeonStudySizes | None = None) -> dict[str, float]:
    """How much more work than at ``reference`` (default: the cpu profile, where
    :data:`CPU_PIECES` was measured) one agent episode (``episode``) and one base network
    (``base``) are at ``sizes``, with the factors they multiply: network size (``macs``,
    :func:`expected_macs`), rows passed per action (``action_rows``: fine-tuning steps x batch x
    3, the checks, the reward split, the observation rows) and training rows x epochs
    (``base_rows``). Assumptions, not measurements: cost proportional to this work."""
    w, r = _work(sizes), _work(reference or _study_sizes("cpu"))
    f = {k: w[k] / r[k] for k in w}
    return {**f, "episode": f["macs"] * f["action_rows"], "base": f["macs"] * f["base_rows"]}


def _x(f: float) -> str:
    return "" if math.isclose(f, 1.0, rel_tol=1e-3) else f" x {f:.2f}"


def time_estimate(
    sizes: NeonStudySizes, cores: int = 2, pieces: dict[str, float] | None = None
) -> tuple[float, str]:
    """Minutes notebook 04 takes cold at ``sizes`` on ``cores`` CPU cores, and the sentence
    with its arithmetic: the measured :data:`CPU_PIECES` scaled by :func:`work_factors`. The
    (fold, C) agents train in parallel, one per worker (``sizes.workers``, None: one per core);
    base networks, the constant yardstick and the evaluation run in the notebook's process."""
    p = pieces or CPU_PIECES
    ref = _study_sizes("cpu")
    f = work_factors(sizes, ref)
    n_cand, n_adm = len(sizes.datasets), int(p["admitted"])
    n_base = n_cand * sizes.nets_per_dataset
    n_agents = sizes.n_folds * len(sizes.C_values)
    workers = max(1, min(cores if sizes.workers is None else sizes.workers, n_agents))
    rounds = math.ceil(n_agents / workers)
    checks = sizes.max_agent_episodes // sizes.stop.check_every
    n_val = n_adm * (sizes.n_folds - 1) // sizes.n_folds * sizes.val_nets_per_dataset
    ep = p["episode"] * f["episode"]
    per_agent = (sizes.max_agent_episodes + checks * n_val) * ep
    n_const, n_test = n_adm * sizes.nets_per_dataset, n_adm * sizes.test_nets_per_dataset
    extra = max(0, sizes.per_network_episodes - ref.per_network_episodes)
    t = {"base": n_base * p["base"] * f["base"] / 60, "agents": rounds * per_agent / 60,
         "const": n_const * p["constant"] * f["episode"] / 60,
         "eval": n_test * p["eval"] * f["episode"] / 60,
         "rest": p["rest_min"] + extra * CPU_PER_NETWORK_EPISODE * f["episode"] / 60}  # fmt: skip
    total = sum(t.values())
    e = _x(f["episode"])
    par = (f"/ {workers} workers" if rounds * workers == n_agents
           else f"in {rounds} round{'s' * (rounds > 1)} of {workers} workers")  # fmt: skip
    rest = f"{p['rest_min']:.0f} min" + (
        f" + {extra} more per-network agent episodes x {CPU_PER_NETWORK_EPISODE} s{e} = "
        f"{t['rest']:.0f} min" if extra else "")  # fmt: skip
    scaled = any(not math.isclose(v, 1.0, rel_tol=1e-3) for v in f.values())
    text = (
        f"Time cold on {cores} cores, from measured pieces{' scaled by work' if scaled else ''}: "
        f"base networks {p['base']} s{_x(f['base'])} x {n_base} = {t['base']:.0f} min; agents "
        f"{n_agents} x ({sizes.max_agent_episodes} episodes + {checks} checks x {n_val} validation "
        f"nets) x {p['episode']} s{e} {par} = {t['agents']:.0f} min; constant yardstick "
        f"{p['constant']} s{e} x {n_const} nets = {t['const']:.0f} min; evaluation {p['eval']} s{e} "
        f"x {n_test} held-out nets = {t['eval']:.0f} min; other cells {rest}: about "
        f"{total:.0f} min (at most, when no agent plateaus early)."
    )
    if not scaled and cores != 2:
        text += (
            f" Measured: the pieces' seconds, at cpu sizes on 2 busy cores (CPU_PIECES), which "
            f"these sizes share per network and per episode. Assumed: a core as fast as the "
            f"measured machine's, {n_adm} admitted datasets."
        )
    if scaled:
        text += (
            f" Measured: the pieces' seconds, at cpu sizes on 2 busy cores (CPU_PIECES). Assumed: "
            f"cost proportional to work, a core as fast as the measured machine's, {n_adm} "
            f"admitted datasets; work per episode x {f['episode']:.2f} (network multiply-adds "
            f"x {f['macs']:.2f}, rows per action x {f['action_rows']:.2f}), per base network "
            f"x {f['base']:.2f} (training rows x epochs x {f['base_rows']:.2f})."
        )
    return total, text


def cpu_time_estimate(
    sizes: NeonStudySizes, pieces: dict[str, float] | None = None
) -> tuple[float, str]:
    """Minutes notebook 04 takes cold at ``sizes`` on the 2-core machine from the measured
    :data:`CPU_PIECES`, and the sentence with its arithmetic (:func:`time_estimate`)."""
    return time_estimate(sizes, 2, pieces)


@functools.cache
def _study_sizes(profile: str, seed: int = 0, preset: str = DEFAULT_PRESET) -> NeonStudySizes:
    """:func:`neon_study_sizes` without the note (the reference of :func:`work_factors`)."""
    C_values = (0.0, 1.0, 5.0, 50.0)
    ft = by_profile(
        profile,
        smoke=replace(default_finetune(), steps_per_check=10, max_steps=20),
        cpu=default_finetune(),
        gpu=default_finetune(),
    )
    env = NeonEnvConfig(
        passes=4, C_values=C_values, ft=ft,
        stat_rows=by_profile(profile, smoke=200, cpu=500, gpu=500), seed=seed,
        removed_of="original",  # L against the layer's original width: a 4th cut pays less
        noise_margin_pp=NOISE_MARGIN_PP,
        improvement_reward=IMPROVEMENT_REWARD,
    )  # fmt: skip
    space = by_profile(
        profile,
        smoke=ArchitectureSpace(max_layers=2, widths=(16, 32)),
        cpu=ArchitectureSpace(max_layers=6, widths=(64, 128, 192, 256)),
        gpu=ArchitectureSpace(max_layers=6, widths=(64, 128, 192, 256)),
    )
    base_train = by_profile(  # to convergence: early stopping ends it, the cap rarely does
        profile,
        smoke=TrainConfig.mlp(epochs=300, patience=10),
        cpu=TrainConfig.mlp(epochs=500, patience=10),
        gpu=TrainConfig.mlp(epochs=500, patience=10),
    )
    agent = a2c_preset(preset, warmup_episodes=by_profile(profile, smoke=2, cpu=16, gpu=16),
                       seed=seed)  # fmt: skip
    if preset == "entropy_stop":
        stop: ConvergenceRule | PlateauRule = by_profile(
            profile,
            smoke=ConvergenceRule(window=8, check_every=4, probe_tasks=2),
            cpu=ConvergenceRule(window=48, check_every=16, probe_tasks=6),
            gpu=ConvergenceRule(window=48, check_every=16, probe_tasks=6),
        )
    else:
        stop = by_profile(
            profile,
            smoke=PlateauRule(check_every=4, patience=2, min_checks=3),
            cpu=PlateauRule(check_every=32, patience=4, min_checks=6),
            gpu=PlateauRule(check_every=32, patience=4, min_checks=6),
        )
    max_episodes = by_profile(profile, smoke=16, cpu=CPU_MAX_EPISODES, gpu=GPU_MAX_EPISODES)
    sizes = NeonStudySizes(
        profile=profile,
        datasets=by_profile(profile, smoke=SMOKE_DATASETS, cpu=CPU_DATASETS, gpu=CPU_DATASETS),
        n_folds=by_profile(profile, smoke=2, cpu=3, gpu=3),
        nets_per_dataset=by_profile(profile, smoke=2, cpu=5, gpu=GPU_NETS_PER_DATASET),
        test_nets_per_dataset=by_profile(profile, smoke=1, cpu=3, gpu=3),
        val_nets_per_dataset=by_profile(profile, smoke=1, cpu=1, gpu=1),
        max_train_rows=by_profile(profile, smoke=400, cpu=3000, gpu=3000),
        max_val_rows=by_profile(profile, smoke=200, cpu=1500, gpu=1500),
        max_test_rows=by_profile(profile, smoke=300, cpu=None, gpu=None),
        space=space, base_train=base_train, env=env, agent=agent,
        max_agent_episodes=max_episodes, stop=stop, C_values=C_values,
        per_network_episodes=by_profile(profile, smoke=2, cpu=20, gpu=300),
        lockstep=16, workers=by_profile(profile, smoke=0, cpu=None, gpu=None), seed=seed,
    )  # fmt: skip
    return sizes


def neon_study_sizes(profile: str, seed: int = 0, preset: str = DEFAULT_PRESET) -> NeonStudySizes:
    """The study's sizes for ``profile`` (smoke / cpu / gpu) with the agent ``preset``
    (``entropy_stop`` also restores the earlier entropy-collapse stopping rule); the note says
    how the profile departs from the paper and (cpu, gpu) the arithmetic of its time."""
    sizes = _study_sizes(profile, seed, preset)
    max_episodes = sizes.max_agent_episodes
    paper_widths = work_factors(replace(sizes, space=ArchitectureSpace()))["episode"]
    note = by_profile(
        profile,
        smoke="smoke: 4 datasets, 2 folds, 2 tiny nets per dataset (<= 2 layers of 16-32), a few episodes",
        cpu=(
            "cpu: 18 offline datasets (3 folds of 6) instead of 28 OpenML ones, 5 networks per "
            "dataset instead of 30 (4 train + 1 validation per training dataset, 3 reported per "
            "held-out dataset), widths 64-256 instead of 100-1000, base nets trained to "
            "convergence on <= 3,000 rows, fine-tuning <= 60 Adam steps per action, one agent per "
            f"(fold, C), agent preset {preset!r} (paper: 'paper'), stopped on a plateau of the "
            f"validation return or {max_episodes} episodes. "
        ),
        gpu=(
            f"gpu: the cpu study's datasets, networks and MDP (widths 64-256 instead of 100-1000, "
            f"base nets on <= 3,000 rows, fine-tuning <= 60 Adam steps per action, "
            f"{sizes.env.stat_rows} observation rows instead of up to 3,000) with "
            f"{sizes.nets_per_dataset} networks per dataset instead of 30 (cpu: 5; "
            f"{sizes.nets_per_dataset - sizes.val_nets_per_dataset} train + "
            f"{sizes.val_nets_per_dataset} validation per training dataset, "
            f"{sizes.test_nets_per_dataset} reported per held-out dataset), one agent per (fold, "
            f"C), agent preset {preset!r} (paper: 'paper'), stopped on a plateau of the "
            f"validation return or {max_episodes} episodes (cpu: {CPU_MAX_EPISODES}), the "
            f"per-network agent timed over {sizes.per_network_episodes} episodes. Why: the whole "
            f"gpu profile must fit 6 hours on one GPU machine (pruning_core.studies.gpu_budget), "
            f"notebooks 02 and 03 take most of it on the GPU, and this notebook runs on "
            f"the CPU, its base networks, yardstick and evaluation in one process; the paper's "
            f"widths alone make an episode x {paper_widths:.0f} the work. "
        ),
    )
    if profile in ("cpu", "gpu"):
        note += time_estimate(sizes, by_profile(profile, smoke=2, cpu=2, gpu=GPU_CORES))[1]
    return replace(sizes, note=note)


T = TypeVar("T")


def with_threads(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn(sizes, ...)`` with ``sizes.threads`` torch threads (see :func:`torch_threads`)."""

    @functools.wraps(fn)
    def wrapper(sizes: NeonStudySizes, *args: Any, **kwargs: Any) -> T:
        with torch_threads(sizes.threads):
            return fn(sizes, *args, **kwargs)

    return wrapper
