"""Every size of the NEON study (notebook 04) per profile: datasets, networks, the MDP, the agent
preset and its stopping rule (:func:`neon_study_sizes`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pruning_core.config import by_profile, torch_threads
from pruning_core.models.mlp import ArchitectureSpace
from pruning_core.rl.agents.a2c import A2CConfig, a2c_preset
from pruning_core.rl.agents.convergence import ConvergenceRule, PlateauRule
from pruning_core.rl.envs.neon import NeonEnvConfig, default_finetune
from pruning_core.train.loop import TrainConfig

__all__ = [
    "CPU_DATASETS",
    "CPU_MAX_EPISODES",
    "CPU_PIECES",
    "DEFAULT_PRESET",
    "NOISE_MARGIN_PP",
    "NeonStudySizes",
    "SMOKE_DATASETS",
    "cpu_time_estimate",
    "neon_study_sizes",
    "with_threads",
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


DEFAULT_PRESET = "standardized"
"""The agent preset of the study (:data:`~pruning_core.rl.agents.a2c.A2C_PRESETS`): standardised
observations, entropy 0.05, stopped on a validation plateau. ``paper`` is Hirsch & Katz's
setting; ``entropy_stop`` the earlier study setting (stopped on entropy collapse)."""


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
    """How this profile departs from the paper, and (cpu) the arithmetic of its time."""


CPU_PIECES: dict[str, float] = {"base": 2.75, "episode": 0.65, "constant": 8.6, "eval": 13.7,
                                "rest_min": 1.0, "admitted": 14}  # fmt: skip
"""Measured costs (seconds) of the pieces of notebook 04 at cpu, on 2 busy cores with one thread
per process, from the committed cpu run (``results/cpu/04_neon_dense_study``: base networks'
``train_seconds``, the agents' per-episode ``seconds``, the papermill durations of the
constant-yardstick and evaluation cells over their networks) and a 2026-12-03 re-measurement
of agent episodes at these sizes (0.35 s, the larger 0.65 s kept): one base network, one agent
episode, one network's constant schedules, one held-out network's evaluation at all four C;
``rest_min`` the other cells (minutes); ``admitted`` the datasets admitted last run (of 18)."""


def cpu_time_estimate(
    sizes: NeonStudySizes, pieces: dict[str, float] | None = None
) -> tuple[float, str]:
    """Minutes notebook 04 takes cold at ``sizes`` from the measured :data:`CPU_PIECES`, and
    the sentence with its arithmetic."""
    p = pieces or CPU_PIECES
    n_cand, n_adm = len(sizes.datasets), int(p["admitted"])
    n_base = n_cand * sizes.nets_per_dataset
    n_agents = sizes.n_folds * len(sizes.C_values)
    checks = sizes.max_agent_episodes // sizes.stop.check_every
    n_val = n_adm * (sizes.n_folds - 1) // sizes.n_folds * sizes.val_nets_per_dataset
    per_agent = (sizes.max_agent_episodes + checks * n_val) * p["episode"]
    n_const, n_test = n_adm * sizes.nets_per_dataset, n_adm * sizes.test_nets_per_dataset
    t = {"base": n_base * p["base"] / 60, "agents": n_agents * per_agent / 2 / 60,
         "const": n_const * p["constant"] / 60, "eval": n_test * p["eval"] / 60}  # fmt: skip
    total = sum(t.values()) + p["rest_min"]
    text = (
        f"Time cold on 2 cores, from measured pieces: base networks {p['base']} s x {n_base} = "
        f"{t['base']:.0f} min; agents {n_agents} x ({sizes.max_agent_episodes} episodes + {checks} "
        f"checks x {n_val} validation nets) x {p['episode']} s / 2 workers = {t['agents']:.0f} min; "
        f"constant yardstick {p['constant']} s x {n_const} nets = {t['const']:.0f} min; evaluation "
        f"{p['eval']} s x {n_test} held-out nets = {t['eval']:.0f} min; other cells "
        f"{p['rest_min']:.0f} min: about {total:.0f} min (at most, when no agent plateaus early)."
    )
    return total, text


def neon_study_sizes(profile: str, seed: int = 0, preset: str = DEFAULT_PRESET) -> NeonStudySizes:
    """The study's sizes for ``profile`` (smoke / cpu / gpu) with the agent ``preset``
    (``entropy_stop`` also restores the earlier entropy-collapse stopping rule)."""
    C_values = (0.0, 1.0, 5.0, 50.0)
    ft = by_profile(
        profile,
        smoke=replace(default_finetune(), steps_per_check=10, max_steps=20),
        cpu=default_finetune(),
        gpu=replace(default_finetune(), steps_per_check=50, max_steps=250, patience=2),
    )
    env = NeonEnvConfig(
        passes=4, C_values=C_values, ft=ft,
        stat_rows=by_profile(profile, smoke=200, cpu=500, gpu=3000), seed=seed,
        removed_of="original",  # L against the layer's original width: a 4th cut pays less
        noise_margin_pp=NOISE_MARGIN_PP,
    )  # fmt: skip
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
    agent = a2c_preset(preset, warmup_episodes=by_profile(profile, smoke=2, cpu=16, gpu=48),
                       seed=seed)  # fmt: skip
    if preset == "entropy_stop":
        stop: ConvergenceRule | PlateauRule = by_profile(
            profile,
            smoke=ConvergenceRule(window=8, check_every=4, probe_tasks=2),
            cpu=ConvergenceRule(window=48, check_every=16, probe_tasks=6),
            gpu=ConvergenceRule(window=200, check_every=32, probe_tasks=24, max_entropy_share=0.3),
        )
    else:
        stop = by_profile(
            profile,
            smoke=PlateauRule(check_every=4, patience=2, min_checks=3),
            cpu=PlateauRule(check_every=32, patience=4, min_checks=6),
            gpu=PlateauRule(check_every=64, patience=8, min_checks=10),
        )
    max_episodes = by_profile(profile, smoke=16, cpu=CPU_MAX_EPISODES, gpu=3000)
    sizes = NeonStudySizes(
        profile=profile,
        datasets=by_profile(profile, smoke=SMOKE_DATASETS, cpu=CPU_DATASETS, gpu=CPU_DATASETS),
        n_folds=by_profile(profile, smoke=2, cpu=3, gpu=3),
        nets_per_dataset=by_profile(profile, smoke=2, cpu=5, gpu=30),
        test_nets_per_dataset=by_profile(profile, smoke=1, cpu=3, gpu=6),
        val_nets_per_dataset=by_profile(profile, smoke=1, cpu=1, gpu=6),
        max_train_rows=by_profile(profile, smoke=400, cpu=3000, gpu=None),
        max_val_rows=by_profile(profile, smoke=200, cpu=1500, gpu=None),
        max_test_rows=by_profile(profile, smoke=300, cpu=None, gpu=None),
        space=space, base_train=base_train, env=env, agent=agent,
        max_agent_episodes=max_episodes, stop=stop, C_values=C_values,
        per_network_episodes=by_profile(profile, smoke=2, cpu=20, gpu=300),
        lockstep=16, workers=by_profile(profile, smoke=0, cpu=None, gpu=None), seed=seed,
    )  # fmt: skip
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
        gpu=(f"gpu: the paper's architecture space and 30 networks per dataset (24 train, 6 "
             f"validation / test), agent preset {preset!r}"),  # fmt: skip
    )
    if profile == "cpu":
        note += cpu_time_estimate(sizes)[1]
    return replace(sizes, note=note)


T = TypeVar("T")


def with_threads(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn(sizes, ...)`` with ``sizes.threads`` torch threads (see :func:`torch_threads`)."""

    @functools.wraps(fn)
    def wrapper(sizes: NeonStudySizes, *args: Any, **kwargs: Any) -> T:
        with torch_threads(sizes.threads):
            return fn(sizes, *args, **kwargs)

    return wrapper
