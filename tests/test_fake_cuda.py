"""The GPU code paths, tested without a GPU: models and data on the stand-in CUDA device of
:mod:`fake_cuda` (any op that mixes a CUDA and a CPU tensor raises, as on a GPU). Each test also
runs on a real GPU where one exists (the ``cuda`` case, ``@pytest.mark.gpu``): the quick check.

Covered: a masked fine-tune (masks built on the CPU, the model moved by ``fit``), gradual pruning,
the sparsity / FLOP report with a CPU example, the study's test metrics and its prune-and-fine-tune
with CPU results, a PuRL environment step (at most two host syncs per step) and the study's
search on the device, and a NEON environment step.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch
from fake_cuda import CudaStandIn, cpu_tensors, fake_cuda
from torch import nn

from pruning_core.data.splits import Splits
from pruning_core.methods.purl_baselines import GradualMagnitude
from pruning_core.models.cnn import build_model
from pruning_core.pruning.layers import prunable_layers
from pruning_core.pruning.masks import Masker
from pruning_core.pruning.report import sparsity_report
from pruning_core.rl.envs.neon import NeonEnv
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.studies import purl as ps
from pruning_core.studies import purl_jobs as pj
from pruning_core.train.loop import TrainConfig, fit

pytestmark = pytest.mark.filterwarnings("ignore:.*(CUDA is not available|Disabling autocast).*")


@pytest.fixture(params=["fake", pytest.param("cuda", marks=pytest.mark.gpu)])
def gpu(request: pytest.FixtureRequest) -> Iterator[dict[str, int] | None]:
    """The device under test: the stand-in (its op / sync counters) or a real GPU (None)."""
    if request.param == "cuda":
        yield None
        return
    with fake_cuda() as mode:
        yield mode.stats


def _data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 8, 8, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long() + 2 * (x[:, 1].mean(dim=(1, 2)) > 0).long()
    return x, y


def _trained_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model("small_cnn", 4)
    fit(model, _data(), TrainConfig(epochs=4, lr=0.01, batch_size=16, amp=False), device="cpu")
    return model


@pytest.fixture(scope="module")
def cnn() -> nn.Module:
    return _trained_cnn()


def _on_cuda(t: torch.Tensor) -> bool:
    return t.device.type == "cuda"


def _held(mk: Masker) -> bool:
    return all(bool((mk.by_name[n].weight[~m] == 0).all()) for n, m in mk.masks.items())


# --- the harness itself ----------------------------------------------------------------------


def test_the_stand_in_fails_as_cuda_does() -> None:
    with fake_cuda():
        a = torch.ones(3).to("cuda")
        assert isinstance(a, CudaStandIn) and _on_cuda(a) and _on_cuda(a * 2)
        with pytest.raises(RuntimeError, match="same device"):
            a * torch.ones(3)
        assert float((a * torch.tensor(2.0)).sum()) == 6.0  # a 0-dim CPU tensor is a scalar
        assert a.cpu().device.type == "cpu" and not isinstance(a.cpu(), CudaStandIn)
        assert a[torch.tensor([0, 2])].shape == (2,)  # CPU indices, as on a GPU
        with pytest.raises(TypeError, match="numpy"):
            a.numpy()
        with pytest.raises(TypeError, match="pickled"):
            pickle.dumps(a)
        m = nn.Linear(3, 2)
        p = m.weight
        m.to("cuda")
        assert m.weight is p and _on_cuda(p)  # the parameter objects move in place, as on a GPU
        assert cpu_tensors({"w": m.weight}) == ["['w']"]


# --- fine-tuning with masks held -------------------------------------------------------------


def test_masked_fine_tune_on_the_gpu(gpu: dict[str, int] | None, cnn: nn.Module) -> None:
    """Masks built on the CPU, fit() moves the model to CUDA: the hold must follow (it
    multiplied CUDA weights by CPU masks)."""
    model = copy.deepcopy(cnn)
    mk = Masker(model)
    mk.global_magnitude(0.7)
    cfg = TrainConfig(epochs=2, lr=0.01, batch_size=16, amp=True, patience=1, restore_best=True)
    res = fit(model, _data(), cfg, val_data=_data(32, 1), masker=mk, device="cuda")
    assert _on_cuda(next(model.parameters())) and all(_on_cuda(m) for m in mk.masks.values())
    assert _held(mk) and abs(mk.sparsity() - 0.7) < 0.01 and res.steps > 0
    mk.restore()  # the dense snapshot followed the model too
    assert mk.sparsity() < 0.05


def test_gradual_pruning_on_the_gpu(gpu: dict[str, int] | None, cnn: nn.Module) -> None:
    model = copy.deepcopy(cnn)
    mk = Masker(model)
    sched = GradualMagnitude(mk, 0.6, ramp_steps=6, updates=3)  # its all-ones masks: CPU
    fit(model, _data(), TrainConfig(epochs=2, lr=0.01, batch_size=16, amp=False), masker=mk,
        on_step=sched, device="cuda")  # fmt: skip
    assert _held(mk) and abs(mk.sparsity() - 0.6) < 0.01


# --- reports ---------------------------------------------------------------------------------


def test_sparsity_and_flop_report_of_a_gpu_model(gpu: dict[str, int] | None, cnn: nn.Module) -> None:
    model = copy.deepcopy(cnn)
    mk = Masker(model)
    mk.global_magnitude(0.5)
    cpu_report = mk.report(_data(1)[0])
    model.to("cuda")
    rep = sparsity_report(model, _data(1)[0], layers=mk.layers)  # a CPU example, a GPU model
    assert rep.as_dict() == cpu_report.as_dict() and rep.flops_nonzero < rep.flops_dense
    ordered = prunable_layers(model, example_input=_data(1)[0])  # forward order, CPU example
    assert [la.name for la in ordered] == [la.name for la in mk.layers]


def _splits() -> Splits:
    return Splits("toy", 4, train=_data(64, 0), reward=_data(32, 1), stop=_data(32, 2),
                  test=_data(48, 3))  # fmt: skip


def _sizes(device: str) -> ps.PurlStudySizes:
    base = ps.purl_study_sizes("resnet50", "smoke", device="cpu")
    ft = TrainConfig(epochs=2, lr=1e-3, batch_size=16, patience=1, optimizer="adam",
                     weight_decay=0.0, restore_best=True)  # fmt: skip
    return replace(base, model="small_cnn", dense_layers=(), finetune=ft, device=device,
                   search_episodes=2, dqn={"learning_starts": 4, "batch_size": 4})  # fmt: skip


def test_study_test_metrics_of_the_dense_control_on_the_gpu(
    gpu: dict[str, int] | None, cnn: nn.Module
) -> None:
    cpu = ps.test_metrics(cnn, _splits())
    model = copy.deepcopy(cnn).to("cuda")
    out = ps.test_metrics(model, _splits())
    assert out["flops_dense"] == cpu["flops_dense"] > 0
    assert out["top1"] == pytest.approx(cpu["top1"], abs=1 / 48)


@pytest.mark.parametrize("method", ["global one-shot", ps.CONTROL, "gradual (cubic)"])
def test_study_prune_and_fine_tune_runs_on_the_gpu_and_returns_cpu_tensors(
    gpu: dict[str, int] | None, cnn: nn.Module, method: str
) -> None:
    from pruning_core.methods.purl_baselines import one_shot_masks

    masks: dict[str, torch.Tensor] | float
    if method == ps.CONTROL:
        masks = {}
    elif method == "gradual (cubic)":
        masks = 0.6
    else:
        masks = one_shot_masks("global", prunable_layers(cnn), 0.6)  # on the CPU
    before = None if gpu is None else gpu["cuda_ops"]
    res = ps.prune_finetune(method, masks, cnn, _sizes("cuda"), _splits(), seed=0, keep_state=True)
    if gpu is not None:
        assert gpu["cuda_ops"] > before + 1000  # the fine-tuning ran on the device
    assert cpu_tensors(res.__dict__) == [] and res.state
    pickle.dumps(res.__dict__)  # what a worker returns and the cache saves: no CUDA tensor
    if method != ps.CONTROL:
        assert res.final["sparsity_prunable"] == pytest.approx(0.6, abs=0.01)


# --- the environments ------------------------------------------------------------------------


def test_purl_env_step_on_the_gpu_with_two_host_syncs(
    gpu: dict[str, int] | None, cnn: nn.Module
) -> None:
    model = copy.deepcopy(cnn).to("cuda")
    env = PuRLEnv(model, _data(64, 1), PuRLConfig(target_accuracy=0.2))  # CPU reward rows
    env.reset(seed=0)
    assert _on_cuda(env.x_val)
    syncs = None if gpu is None else gpu["syncs"]
    for a in (3, 8, 12, 5):
        obs, reward, *_ = env.step(a)
    assert obs.shape == env.observation_space.shape and torch.isfinite(torch.tensor(reward))
    if gpu is not None:
        # the agent needs the sparsity and the accuracy: one zero count and one evaluate() read
        # per step (evaluate read its loss and hits per batch: three)
        assert gpu["syncs"] - syncs <= 2 * 4
    assert 0 < env.sparsity < 1


def test_study_search_runs_its_environment_on_the_device(
    gpu: dict[str, int] | None, cnn: nn.Module
) -> None:
    """The study's PuRL search (the GPU sat idle: the environment pruned a CPU copy)."""
    before = None if gpu is None else gpu["cuda_ops"]
    search = pj.search_purl(cnn, _sizes("cuda"), _splits(), seed=0, target=0.5, a_star=0.2)
    if gpu is not None:
        assert gpu["cuda_ops"] > before + 500
    assert search.masks and cpu_tensors(search.masks) == []
    assert next(cnn.parameters()).device.type == "cpu"  # the caller's model stays where it was


def test_neon_env_step_on_the_gpu(gpu: dict[str, int] | None) -> None:
    from test_neon_env import FAST, _task

    task = _task()
    task.model.to("cuda")
    env = NeonEnv([task], FAST)
    obs, _ = env.reset(seed=0)
    for a in (1, 2, 0, 1):
        obs, reward, terminated, _, info = env.step(a)
    assert _on_cuda(next(env.model.parameters())) and obs.shape == env.observation_space.shape
    assert terminated and info["compression"] >= 1


@pytest.mark.slow
def test_smoke_study_job_on_the_stand_in() -> None:
    """One whole study job of the smoke profile with ``device="cuda"`` (dense training, PuRL's
    search, the baselines, random search, the control), on the stand-in: no mixed-device op
    anywhere, and what the worker returns holds no CUDA tensor and pickles."""
    sizes = replace(ps.purl_study_sizes("mobilenet_v2", "smoke", device="cpu"), device="cuda")
    with fake_cuda() as mode:
        for part in ("purl", "controls"):
            job = pj.StudyJob(sizes, 0, sizes.headline_target, keep_state=part == "purl", part=part)
            out = pj.study_job(job)
            assert cpu_tensors(out) == [] and all(0 <= r["top1"] <= 1 for r in out["rows"])
            pickle.dumps(out)
        assert mode.stats["cuda_ops"] > 10_000
