"""On a real GPU (``@pytest.mark.gpu``, skipped without CUDA): the quick check of the GPU path
and the measurement behind the gpu profile's budget. ``pytest -m gpu -s`` prints the measured
costs. The same paths run on the stand-in CUDA device everywhere (tests/test_fake_cuda.py)."""

from __future__ import annotations

import copy
import time
from dataclasses import replace

import pytest
import torch
from fake_cuda import cpu_tensors

from pruning_core.devices import cuda_info, resolve_device
from pruning_core.models.cnn import build_model
from pruning_core.pruning.masks import Masker
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.studies import purl as ps
from pruning_core.studies import purl_jobs as pj
from pruning_core.train.loop import TrainConfig, fit

BUDGET_HOURS = 6.0
"""The whole gpu profile on one H100-class GPU."""

DQN_SECONDS = 0.0025
"""CPU time of one environment step's DQN work (4 gradient steps of a 128x128 MLP, batch 64)."""


def test_work_units_count_the_study() -> None:
    sizes = ps.purl_study_sizes("resnet50", "gpu", device="cpu")
    w = pj.work_units(sizes, 54_000, 52)
    assert w["finetunes"] == 4 * 30 + 3 * 10  # + random search, control, best uniform alpha per seed
    assert w["finetune_steps"] == 150 * 15 * 211 and w["dense_steps"] == 30 * 211
    assert w["env_steps"] == 40 * 150 * 52
    assert pj.budget_hours(w, 0.015, 0.006) == pytest.approx(2.52, abs=0.01)


@pytest.mark.gpu
def test_the_policy_and_the_record_on_a_gpu() -> None:
    assert resolve_device("gpu").type == "cuda"
    info = cuda_info()
    assert info["gpus"] and info["gpus"][0]["name"] and info["torch_cuda"]


@pytest.mark.gpu
@pytest.mark.slow
def test_smoke_study_job_on_cuda() -> None:
    """``DEVICE=cuda PROFILE=smoke`` for one study job: the dense network, PuRL's search, the
    baselines and their fine-tunings on the GPU, every output on the CPU."""
    sizes = ps.purl_study_sizes("mobilenet_v2", "smoke", device="cuda")
    for part in ("purl", "controls"):
        job = pj.StudyJob(sizes, 0, sizes.headline_target, keep_state=part == "purl", part=part)
        out = pj.study_job(job)
        assert cpu_tensors(out) == [] and all(0 <= r["top1"] <= 1 for r in out["rows"])


def _step_seconds(name: str, steps: int = 30) -> float:
    torch.manual_seed(0)
    model = build_model(name, 10)
    mk = Masker(model, exclude=ps.DENSE_LAYERS[name])
    mk.global_magnitude(0.8)
    x, y = torch.randn(256 * 4, 3, 28, 28), torch.randint(0, 10, (256 * 4,))
    cfg = TrainConfig(epochs=None, max_steps=5, batch_size=256, lr=5e-4, optimizer="adam",
                      weight_decay=0.0)  # fmt: skip
    fit(model, (x, y), cfg, masker=mk, device="cuda")  # warm-up (cuDNN, allocator)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fit(model, (x, y), replace(cfg, max_steps=steps), masker=mk, device="cuda")
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def _env_step_seconds(name: str, steps: int = 40) -> float:
    torch.manual_seed(0)
    model = build_model(name, 10).to("cuda").eval()
    x, y = torch.randn(1000, 3, 28, 28), torch.randint(0, 10, (1000,))
    env = PuRLEnv(copy.deepcopy(model), (x, y), PuRLConfig(exclude=ps.DENSE_LAYERS[name],
                                                              target_accuracy=0.1))  # fmt: skip
    env.reset(seed=0)
    t0 = time.perf_counter()
    n = 0
    while n < steps:
        _, _, done, _, _ = env.step(n % 10)
        n += 1
        if done:
            env.reset()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n + DQN_SECONDS


@pytest.mark.gpu
@pytest.mark.slow
def test_purl_notebooks_fit_the_gpu_budget() -> None:
    """Notebooks 02 and 03 at gpu, one job at a time and no early stopping (the worst case),
    from measured step costs: within the budget. Prints the numbers for the README."""
    total = 0.0
    for name, layers in (("resnet50", 52), ("mobilenet_v2", 34)):
        sizes = ps.purl_study_sizes(name, "gpu")
        work = pj.work_units(sizes, 60_000 - sizes.reward_subset - sizes.stop_subset, layers)
        step, env_step = _step_seconds(name), _env_step_seconds(name)
        hours = pj.budget_hours(work, step, env_step)
        total += hours
        print(f"{name}: {step * 1000:.1f} ms / training step, {env_step * 1000:.1f} ms / env "
              f"step, {work}: {hours:.2f} h serial")  # fmt: skip
    print(f"02 + 03 at gpu: {total:.2f} h serial, worst case")
    assert total <= BUDGET_HOURS
