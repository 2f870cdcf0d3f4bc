"""The gpu profile's stated budget: the whole of it (notebooks 01-05 one after another on one
GPU machine with 16 cores) fits 6 hours by the estimate, every gpu size that defines a study is at
least the cpu's, and the docs quote the code's table."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pruning_core.models.mlp import ArchitectureSpace
from pruning_core.studies import gpu_budget as gb
from pruning_core.studies import purl as ps
from pruning_core.studies.ablations_budget import (
    CPU_NOTEBOOK_MINUTES,
    CPU_RUN_SECONDS,
    purl_run_counts,
    purl_time_estimate,
)
from pruning_core.studies.ablations_neon import neon_ablation_sizes, neon_ablation_time_estimate
from pruning_core.studies.ablations_sizes import ablation_sizes
from pruning_core.studies.mdp_design import mdp_design_sizes
from pruning_core.studies.neon_sizes import (
    cpu_time_estimate,
    neon_study_sizes,
    time_estimate,
    work_factors,
)

ROOT = Path(__file__).resolve().parents[1]


def test_the_whole_gpu_profile_fits_the_budget() -> None:
    rows = gb.gpu_budget()
    assert [r.notebook[:2] for r in rows] == ["01", "02", "03", "04", "05"]
    total_h = sum(r.minutes for r in rows) / 60
    assert total_h <= gb.BUDGET_HOURS, gb.budget_markdown(rows)
    assert all(r.minutes > 0 and r.how for r in rows)


def test_growing_the_gpu_profile_past_the_budget_is_seen() -> None:
    """The paper's widths (the earlier gpu profile) would blow the budget: the estimate scales."""
    gpu = neon_study_sizes("gpu")
    wide = replace(gpu, space=ArchitectureSpace())
    assert work_factors(wide)["episode"] > 5
    assert time_estimate(wide, gb.GPU_CORES)[0] > 60 * gb.BUDGET_HOURS
    more = replace(gpu, nets_per_dataset=3 * gpu.nets_per_dataset)
    assert time_estimate(more, gb.GPU_CORES)[0] > time_estimate(gpu, gb.GPU_CORES)[0]


def test_gpu_sizes_are_at_least_the_cpu_sizes() -> None:
    cpu, gpu = neon_study_sizes("cpu"), neon_study_sizes("gpu")
    assert gpu.nets_per_dataset > cpu.nets_per_dataset
    assert gpu.max_agent_episodes > cpu.max_agent_episodes
    for f in ("test_nets_per_dataset", "val_nets_per_dataset", "n_folds", "per_network_episodes"):
        assert getattr(gpu, f) >= getattr(cpu, f), f
    assert set(cpu.datasets) <= set(gpu.datasets) and gpu.C_values == cpu.C_values
    assert work_factors(gpu)["episode"] >= 1 and work_factors(gpu)["base"] >= 1

    a_cpu, a_gpu = ablation_sizes("cpu"), ablation_sizes("gpu")
    assert len(a_gpu.timing_seeds) >= len(a_cpu.timing_seeds)
    assert len(a_gpu.ablation_seeds) >= len(a_cpu.ablation_seeds)
    for net in ("small_cnn", "resnet20"):
        assert a_gpu.net(net).episodes >= a_cpu.net(net).episodes
        assert a_gpu.net(net).horizon >= a_cpu.net(net).horizon

    n_cpu, n_gpu = neon_ablation_sizes("cpu"), neon_ablation_sizes("gpu")
    assert len(n_gpu.seeds) >= len(n_cpu.seeds) and n_gpu.episodes >= n_cpu.episodes
    assert n_gpu.nets_per_dataset >= n_cpu.nets_per_dataset
    assert set(n_cpu.datasets) <= set(n_gpu.datasets)
    assert not n_gpu.variants or set(n_cpu.variants) <= set(n_gpu.variants)

    m_cpu, m_gpu = mdp_design_sizes("cpu"), mdp_design_sizes("gpu")
    assert len(m_gpu.seeds) >= len(m_cpu.seeds) and m_gpu.episodes >= m_cpu.episodes

    for model in ("resnet50", "mobilenet_v2"):
        p_cpu = ps.purl_study_sizes(model, "cpu", device="cpu")
        p_gpu = ps.purl_study_sizes(model, "gpu", device="cpu")
        assert len(p_gpu.seeds) >= len(p_cpu.seeds)
        assert p_gpu.search_episodes >= p_cpu.search_episodes
        assert set(p_cpu.targets) <= set(p_gpu.targets)


def test_the_cpu_estimate_is_the_committed_one() -> None:
    """Generalising the estimate left the cpu profile's number and sentence as committed."""
    sizes = neon_study_sizes("cpu")
    minutes, text = cpu_time_estimate(sizes)
    assert time_estimate(sizes, 2) == (minutes, text) and round(minutes) == 46
    assert text.startswith("Time cold on 2 cores, from measured pieces: base networks 2.75 s x 90")
    config = ROOT / "results" / "cpu" / "04_neon_dense_study" / "config.json"
    if config.is_file():
        assert text in json.loads(config.read_text())["config"]["note"]


def test_05_estimate_reads_every_run_and_bounds_the_measured_cpu_time() -> None:
    for profile in ("cpu", "gpu"):
        assert set(purl_run_counts(ablation_sizes(profile))) <= set(CPU_RUN_SECONDS)
    gpu = purl_run_counts(ablation_sizes("gpu"))
    assert sum(gpu.values()) == 2 * sum(purl_run_counts(ablation_sizes("cpu")).values())
    cpu_min = purl_time_estimate(ablation_sizes("cpu"))[0]
    cpu_min += neon_ablation_time_estimate(neon_ablation_sizes("cpu"))[0]
    assert CPU_NOTEBOOK_MINUTES <= cpu_min <= 1.2 * CPU_NOTEBOOK_MINUTES
    with pytest.raises(ValueError, match="cpu budgets"):
        a = ablation_sizes("gpu")
        purl_time_estimate(replace(a, resnet20=replace(a.resnet20, episodes=600)))


def test_notes_carry_the_gpu_estimates() -> None:
    assert "Time cold on 16 cores" in neon_study_sizes("gpu").note
    assert "ablations_budget.purl_time_estimate" in ablation_sizes("gpu").note
    assert "PuRL part on 16 cores" in purl_time_estimate(ablation_sizes("gpu"), 16)[1]
    assert "Time on 16 cores" in neon_ablation_sizes("gpu").note


def test_prunable_layers_are_the_models() -> None:
    from pruning_core.models.cnn import build_model
    from pruning_core.pruning.masks import Masker

    for model, n in gb.PRUNABLE_LAYERS.items():
        assert len(Masker(build_model(model, 10), exclude=ps.DENSE_LAYERS[model]).layers) == n


def test_the_docs_quote_the_budget_table() -> None:
    rows = gb.gpu_budget()
    perf = (ROOT / "docs" / "performance.md").read_text()
    assert gb.budget_markdown(rows) in perf, "rerun python -m pruning_core.studies.gpu_budget"
    total = f"about {sum(r.minutes for r in rows) / 60:.1f} h by the estimate"
    assert total in " ".join((ROOT / "README.md").read_text().split())
