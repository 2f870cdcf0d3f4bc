"""What notebook 05 costs at any profile: the measured cpu cost of each run times the runs a
profile plans, spread over its cores (:func:`purl_time_estimate`), summed with the rest of the
gpu profile by :mod:`~pruning_core.studies.gpu_budget`.

A module of its own because counting the runs needs the study plan
(:mod:`~pruning_core.studies.ablations`), which itself reads the sizes.
"""

from __future__ import annotations

from pruning_core.studies.ablations import PURL_VARIANTS, study_plan
from pruning_core.studies.ablations_neon import neon_ablation_sizes
from pruning_core.studies.ablations_sizes import (
    CPU_NEON_EPISODE_SECONDS,
    NETWORKS,
    AblationSizes,
    ablation_sizes,
)

__all__ = [
    "CPU_NOTEBOOK_MINUTES",
    "CPU_RUN_SECONDS",
    "purl_run_counts",
    "purl_time_estimate",
]


CPU_RUN_SECONDS: dict[tuple[str, str], float] = {
    ("small_cnn", "step"): 5.47, ("small_cnn", "episodic"): 1.40,
    ("small_cnn", "random_search"): 4.87, ("small_cnn", "beta_1"): 7.37,
    ("small_cnn", "A*_0.95"): 7.75, ("small_cnn", "S*_0.9"): 9.40, ("small_cnn", "neon_C1"): 8.71,
    ("small_cnn", "qlp"): 8.58, ("small_cnn", "no_accuracy"): 10.27,
    ("small_cnn", "alpha_12"): 8.23, ("small_cnn", "alpha_6"): 6.69,
    ("small_cnn", "ratio_20"): 8.86, ("small_cnn", "passes_3"): 19.33, ("small_cnn", "dqn"): 5.63,
    ("small_cnn", "replay_small"): 6.74, ("small_cnn", "eps_fast"): 8.65,
    ("resnet20", "step"): 26.59, ("resnet20", "episodic"): 66.25,
    ("resnet20", "random_search"): 25.39,
}  # fmt: skip
"""Measured mean seconds of one PuRL ablation run per (network, variant) in the committed cpu
run (``results/cpu/05_ablations/*_runs*.csv``, column ``seconds``; one thread, two workers on
the 2-core machine). ``step`` is every ablation's ``default``. The gpu profile runs the same
networks and RL budgets, so a run costs the same there; only the number of seeds changes."""


CPU_NOTEBOOK_MINUTES = 23.3
"""Measured cold wall time of notebook 05 at cpu on 2 cores (``docs/performance.md``); less its
runs (:data:`CPU_RUN_SECONDS`, :data:`CPU_NEON_EPISODE_SECONDS` over 2 workers) it gives the
minutes of the other cells (dense networks, levels, statistics, figures)."""


def purl_run_counts(sizes: AblationSizes) -> dict[tuple[str, str], int]:
    """Distinct PuRL runs notebook 05 computes at ``sizes`` per (network, variant): the runs of
    :func:`~pruning_core.studies.ablations.study_plan`, each ablation's ``default`` counted as
    the ``step`` run it is."""
    runs: set[tuple[str, str, int]] = set()
    for ablation, network, seeds, names in study_plan(sizes):
        for v in PURL_VARIANTS[ablation]:
            if names is None or v.name in names:
                name = "step" if v.name == "default" else v.name
                runs.update((network, name, s) for s in seeds)
    counts: dict[tuple[str, str], int] = {}
    for network, name, _ in runs:
        counts[(network, name)] = counts.get((network, name), 0) + 1
    return counts


def _other_minutes() -> float:
    """Minutes of notebook 05's cells other than its runs: the measured cpu wall time less the
    runs' measured seconds over its 2 workers."""
    purl = sum(n * CPU_RUN_SECONDS[k] for k, n in purl_run_counts(ablation_sizes("cpu")).items())
    neon = neon_ablation_sizes("cpu")
    variants = neon.variants or tuple(CPU_NEON_EPISODE_SECONDS)
    neon_s = sum(len(neon.seeds) * neon.episodes * CPU_NEON_EPISODE_SECONDS[v] for v in variants)
    return max(0.0, CPU_NOTEBOOK_MINUTES - (purl + neon_s) / 2 / 60)


def purl_time_estimate(sizes: AblationSizes, cores: int = 2) -> tuple[float, str]:
    """Minutes of notebook 05 without NEON's ablation on ``cores`` one-thread workers, and the
    sentence with its arithmetic: the distinct runs (:func:`purl_run_counts`) at their measured
    cpu cost (:data:`CPU_RUN_SECONDS`; the runs at the cpu profile's networks and budgets only),
    spread over the workers longest first, plus the other cells (:data:`CPU_NOTEBOOK_MINUTES`)."""
    counts = purl_run_counts(sizes)
    for network in NETWORKS:
        n = sizes.net(network)
        ref = ablation_sizes("cpu").net(network)
        if (n.episodes, n.horizon) != (ref.episodes, ref.horizon):
            raise ValueError(f"{network}: the measured run costs hold at the cpu budgets only")
    core_s = sum(n * CPU_RUN_SECONDS[k] for k, n in counts.items())
    longest = max(CPU_RUN_SECONDS[k] for k in counts)
    runs_min = (core_s / cores + longest) / 60  # longest first: at most the mean load + one run
    other = _other_minutes()
    total = runs_min + other
    n_runs = sum(counts.values())
    text = (
        f"PuRL part on {cores} cores, from measured run costs (committed cpu run, the same "
        f"networks and budgets): {n_runs} distinct runs ({len(sizes.timing_seeds)} timing seeds on "
        f"both networks, {len(sizes.ablation_seeds)} seeds of the other ablations) = "
        f"{core_s:,.0f} core-s / {cores} workers + the longest run ({longest:.0f} s) = "
        f"{runs_min:.0f} min; other cells (dense networks, levels, statistics, figures: the "
        f"measured cpu notebook less its runs) {other:.1f} min: about {total:.0f} min. Assumed: "
        f"a core as fast as the measured machine's (2 busy cores)."
    )
    return total, text
