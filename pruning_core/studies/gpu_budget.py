"""The gpu profile's time budget: every notebook's estimate on one GPU machine (one H100-class
GPU, 16 CPU cores), run one after another as ``PROFILE=gpu ./run_all.sh`` does, and their sum
(:func:`gpu_budget`), so the figures in ``docs/performance.md`` come from code.

Notebooks 02 and 03 run on the GPU: their budget is :func:`~.purl_jobs.work_units` (the most
work, no early stopping) times the cost of one optimiser step and one env step from counted
kernels (:data:`H100_STEP_SECONDS`; ``pytest -m gpu -s`` measures them), one job at a time
(:func:`~.purl_jobs.budget_hours` with ``parallel=1``): the study runs four jobs at once on the
GPU, which can only be faster, so this is the worst case. Notebooks 01, 04 and 05 run on the
CPU cores at every profile: 01 scaled from its measured cpu time, 04 and 05 from the measured
costs of their pieces (:func:`~.neon_sizes.time_estimate`,
:func:`~.ablations_budget.purl_time_estimate`, :func:`~.ablations_neon.neon_ablation_time_estimate`).
Nothing here was measured on a GPU machine.

``python -m pruning_core.studies.gpu_budget`` prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from pruning_core.studies import purl as ps
from pruning_core.studies import purl_jobs as pj
from pruning_core.studies.ablations_budget import purl_time_estimate
from pruning_core.studies.ablations_neon import neon_ablation_sizes, neon_ablation_time_estimate
from pruning_core.studies.ablations_sizes import GPU_CORES, ablation_sizes
from pruning_core.studies.mdp_design import mdp_design_sizes
from pruning_core.studies.neon_sizes import neon_study_sizes, time_estimate

__all__ = [
    "BUDGET_HOURS",
    "CPU_MINUTES_01",
    "FASHION_MNIST_TRAIN",
    "GPU_CORES",
    "H100_STEP_SECONDS",
    "PRUNABLE_LAYERS",
    "TARGET_HOURS",
    "BudgetRow",
    "budget_markdown",
    "gpu_budget",
    "mdp_minutes",
    "purl_minutes",
]


BUDGET_HOURS = 6.0
"""The whole gpu profile must run within this on one H100-class GPU machine."""


TARGET_HOURS = 5.5
"""What the gpu sizes aim at by the estimate (a margin under :data:`BUDGET_HOURS`)."""


H100_STEP_SECONDS: dict[str, tuple[float, float]] = {
    "resnet50": (0.015, 0.006),
    "mobilenet_v2": (0.013, 0.005),
}
"""Seconds per training step (batch 256, 28x28) and per env step (1,000 reward images, the DQN's
updates included) on an H100, from counted kernels per step: an estimate, not a measurement
(``pytest -m gpu -s`` measures both on a GPU)."""


PRUNABLE_LAYERS: dict[str, int] = {"resnet50": 52, "mobilenet_v2": 34}
"""Prunable layers (env steps per episode) of each model with the study's dense layers kept."""


FASHION_MNIST_TRAIN = 60_000
"""Fashion-MNIST's training images; the reward and stop splits are drawn from them."""


CPU_MINUTES_01 = 1.7
"""Measured cold time of notebook 01 at cpu on 2 cores (``docs/performance.md``)."""


@dataclass(frozen=True)
class BudgetRow:
    """One notebook's estimate at a profile."""

    notebook: str
    minutes: float
    device: str
    """Where its work runs (``GPU`` or ``CPU``)."""
    how: str
    """The arithmetic, in words."""
    basis: str = ""
    """What the estimate rests on, in a few words (the table's last column)."""


def purl_minutes(model: str, profile: str = "gpu") -> tuple[float, str]:
    """Minutes of notebook 02 (``resnet50``) or 03 (``mobilenet_v2``) at ``profile`` on one
    H100-class GPU, one job at a time and no early stopping (the worst case), and its arithmetic.
    Fashion-MNIST only (ValueError when ``DATA_ROOT`` makes the profile ImageNet's)."""
    sizes = ps.purl_study_sizes(model, profile, device="cpu")
    if sizes.dataset != "fashion_mnist":
        raise ValueError(f"the budget covers Fashion-MNIST, not {sizes.dataset!r} (unset DATA_ROOT)")
    n_train = FASHION_MNIST_TRAIN - sizes.reward_subset - sizes.stop_subset
    work = pj.work_units(sizes, n_train, PRUNABLE_LAYERS[model])
    step, env_step = H100_STEP_SECONDS[model]
    minutes = pj.budget_hours(work, step, env_step) * 60
    steps = work["dense_steps"] + work["finetune_steps"]
    how = (f"{steps:,} optimiser steps x {step * 1000:.0f} ms + {work['env_steps']:,} env steps x "
           f"{env_step * 1000:.0f} ms ({work['finetunes']} fine-tunes of at most "
           f"{sizes.finetune.epochs} epochs, one job at a time)")  # fmt: skip
    return minutes, how


def mdp_minutes(profile: str = "gpu") -> tuple[float, str]:
    """Minutes of notebook 01 at ``profile`` (on the CPU): its measured cpu time scaled by the
    DQN episodes it plays (seeds x episodes; dense training counted as if it scaled too)."""
    s, c = mdp_design_sizes(profile), mdp_design_sizes("cpu")
    f = len(s.seeds) * s.episodes / (len(c.seeds) * c.episodes)
    return CPU_MINUTES_01 * f, (f"{CPU_MINUTES_01} min measured at cpu x {f:.2f} (seeds x "
                                f"episodes: {len(s.seeds)} x {s.episodes} against "
                                f"{len(c.seeds)} x {c.episodes})")  # fmt: skip


def gpu_budget(cores: int = GPU_CORES) -> list[BudgetRow]:
    """Every notebook's estimate at the gpu profile on one GPU machine with ``cores`` CPU
    cores, in ``run_all.sh``'s order (one notebook after another)."""
    m01, how01 = mdp_minutes("gpu")
    rows = [BudgetRow("01 MDP design", m01, "1 CPU core", how01,
                      "measured cpu time x the DQN episodes played")]  # fmt: skip
    for nb, model in (("02 ResNet-50", "resnet50"), ("03 MobileNet-V2", "mobilenet_v2")):
        minutes, how = purl_minutes(model)
        step, env_step = H100_STEP_SECONDS[model]
        rows.append(BudgetRow(nb, minutes, "GPU", how,
                              f"counted kernels ({step * 1000:.0f} / {env_step * 1000:.0f} ms a "
                              f"training / env step), one job at a time, no early stopping"))  # fmt: skip
    m04, how04 = time_estimate(neon_study_sizes("gpu"), cores)
    rows.append(BudgetRow("04 NEON", m04, f"{cores} CPU cores", how04,
                          "measured cpu pieces, no agent stopping early"))  # fmt: skip
    purl05, how_p = purl_time_estimate(ablation_sizes("gpu"), cores)
    neon05, how_n = neon_ablation_time_estimate(neon_ablation_sizes("gpu"), cores)
    rows.append(BudgetRow("05 ablations", purl05 + neon05, f"{cores} CPU cores",
                          f"{how_p} NEON's ablation: {how_n}.",
                          f"measured cpu run costs: PuRL {purl05:.0f} min + NEON {neon05:.0f} min"))  # fmt: skip
    return rows


def budget_markdown(rows: list[BudgetRow] | None = None) -> str:
    """The budget as a Markdown table (notebook, where it runs, estimate, basis) with its total."""
    rows = gpu_budget() if rows is None else rows
    total = sum(r.minutes for r in rows)
    lines = ["| notebook | runs on | estimate | from |", "|---|---|---|---|"]
    lines += [f"| {r.notebook} | {r.device} | {r.minutes:.0f} min | {r.basis} |" for r in rows]
    lines.append(f"| **whole gpu profile** | | **{total / 60:.1f} h** ({total:.0f} min) | "
                 f"budget {BUDGET_HOURS:g} h, one notebook after another |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    budget = gpu_budget()
    print(budget_markdown(budget))
    for r in budget:
        print(f"\n{r.notebook}: {r.how}")
