"""The device policy (issue: every masked fine-tune crashed on a CUDA host): which device each
profile runs on, what a run records, CUDA's determinism flags, CPU-only workers that never
create a CUDA context, the masks' hold under real FakeTensorMode, and the ImageNet / DDP splits."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from pruning_core import devices
from pruning_core.config import seeded
from pruning_core.devices import (
    DeviceUnavailableError,
    cuda_info,
    resolve_device,
    set_cuda_determinism,
    to_cpu,
)
from pruning_core.pruning.masks import Masker
from pruning_core.runs import device_info
from pruning_core.studies import purl as ps
from pruning_core.train.ddp import _datasets


@pytest.fixture
def no_override(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("DEVICE", raising=False)
    return monkeypatch


def _pretend_gpu(monkeypatch: pytest.MonkeyPatch, n: int = 1) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


# --- the policy ------------------------------------------------------------------------------


def test_small_profiles_run_on_the_cpu_even_with_a_gpu(no_override: pytest.MonkeyPatch) -> None:
    _pretend_gpu(no_override)
    assert resolve_device("smoke").type == "cpu"
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("gpu").type == "cuda"


def test_gpu_profile_without_cuda_stops_saying_why(no_override: pytest.MonkeyPatch) -> None:
    no_override.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailableError, match="PROFILE=gpu needs a CUDA GPU") as info:
        resolve_device("gpu")
    assert "driver" in str(info.value) and "PROFILE=cpu" in str(info.value)
    no_override.setattr(torch.version, "cuda", None)
    with pytest.raises(DeviceUnavailableError, match="CPU-only build"):
        resolve_device("gpu")
    # the study stops at its first cell, before any data is read
    with pytest.raises(DeviceUnavailableError):
        ps.purl_study_sizes("resnet50", "gpu")
    assert ps.purl_study_sizes("resnet50", "gpu", device="cpu").device == "cpu"


def test_device_override(no_override: pytest.MonkeyPatch) -> None:
    no_override.setenv("DEVICE", "cuda")
    no_override.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailableError, match="DEVICE=cuda"):
        resolve_device("smoke")
    _pretend_gpu(no_override)
    assert resolve_device("smoke").type == "cuda"  # the quick check of the GPU path
    assert ps.purl_study_sizes("mobilenet_v2", "smoke").device == "cuda"
    no_override.setenv("DEVICE", "cuda:3")
    with pytest.raises(DeviceUnavailableError, match="1 GPU"):
        resolve_device("smoke")
    no_override.setenv("DEVICE", "cpu")
    assert resolve_device("gpu").type == "cpu"
    no_override.setenv("DEVICE", "tpu-please")
    with pytest.raises(ValueError, match="not a device"):
        resolve_device("cpu")
    assert resolve_device("cpu", "cpu").type == "cpu"  # an explicit argument wins


def test_cuda_info_and_device_info_without_cuda(no_override: pytest.MonkeyPatch) -> None:
    no_override.setattr(torch.cuda, "is_available", lambda: False)
    info = cuda_info()
    assert info["available"] is False and info["gpus"] == [] and info["driver"] is None
    assert info["torch_cuda"] == torch.version.cuda
    run = device_info("gpu")
    assert run["gpus"] == [] and run["cuda_info"] == info
    assert run["device"] is None and "needs a CUDA GPU" in run["policy"]["error"]
    assert device_info("cpu")["device"] == "cpu"


def test_cuda_info_names_the_gpus_driver_and_versions(no_override: pytest.MonkeyPatch) -> None:
    _pretend_gpu(no_override, 2)

    class Props:
        name, total_memory, major, minor = "NVIDIA H100 80GB HBM3", 80 * 2**30, 9, 0

    no_override.setattr(torch.cuda, "get_device_properties", lambda i: Props())
    no_override.setattr(devices, "_driver_version", lambda: "580.65.06")
    no_override.setattr(torch.backends.cudnn, "is_available", lambda: True)
    no_override.setattr(torch.backends.cudnn, "version", lambda: 91000)
    info = cuda_info()
    assert [g["name"] for g in info["gpus"]] == ["NVIDIA H100 80GB HBM3"] * 2
    assert info["gpus"][0]["memory_gib"] == 80.0 and info["gpus"][0]["capability"] == "9.0"
    assert info["driver"] == "580.65.06" and info["cudnn"] == 91000


# --- determinism, RNGs, results --------------------------------------------------------------


def test_set_cuda_determinism_sets_every_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    try:
        set_cuda_determinism()
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)


def test_study_sets_the_determinism_flags_on_cuda_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(ps, "set_cuda_determinism", lambda: calls.append(1))
    sizes = ps.purl_study_sizes("mobilenet_v2", "smoke", device="cpu")
    assert ps.study_device(sizes).type == "cpu" and calls == []
    assert ps.study_device(replace(sizes, device="cuda")).type == "cuda" and calls == [1]


def test_seeded_creates_no_cuda_context_in_a_cpu_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with GPUs, a process that has not touched CUDA: seeded() must not fork (and so
    initialise) every GPU's RNG."""
    _pretend_gpu(monkeypatch, 8)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    forked: list[Any] = []
    real_fork = torch.random.fork_rng

    def spy(devices: Any = None, **kw: Any) -> Any:
        forked.append(list(devices or []))
        return real_fork(devices=[], **kw)

    monkeypatch.setattr(torch.random, "fork_rng", spy)
    with seeded(3):
        pass
    assert forked == [[]]
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with seeded(3):
        pass
    assert forked[-1] == list(range(8))


def test_to_cpu_walks_nested_results() -> None:
    out = to_cpu({"a": [torch.ones(2, requires_grad=True)], "b": (torch.zeros(1), 3), "c": "x"})
    assert not out["a"][0].requires_grad and out["b"][1] == 3 and out["c"] == "x"


# --- masks under real FakeTensorMode ---------------------------------------------------------


def test_mask_hold_follows_the_model_to_cuda_under_fake_tensor_mode(tiny_net: nn.Module) -> None:
    """The masker is built on the CPU, then the model goes to (fake) CUDA, as fit(device=cuda)
    moves it: holding the masks through an optimiser step must not multiply CUDA weights by
    CPU masks (FakeTensorMode raises FakeTensorDeviceMismatchError, as CUDA would)."""
    mk = Masker(tiny_net)
    mk.global_magnitude(0.5)
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    with mode:
        # Module.to cannot swap fake parameters, so move them the way it would
        for mod in tiny_net.modules():
            for k, p in list(mod._parameters.items()):
                mod._parameters[k] = nn.Parameter(mode.from_tensor(p).to("cuda"))
            for k, b in list(mod._buffers.items()):
                if b is not None:
                    mod._buffers[k] = mode.from_tensor(b).to("cuda")
        opt = torch.optim.SGD(tiny_net.parameters(), lr=0.1, momentum=0.9)
        for p in tiny_net.parameters():
            p.grad = torch.ones_like(p)
        with mk.hold(opt):
            opt.step()
        assert all(m.device.type == "cuda" for m in mk.masks.values())
        assert mk.dense_weight("conv1").device.type == "cuda"
        mk.restore()  # the dense snapshot followed too


# --- loaders inside pool workers, ImageNet splits, DDP job paths -----------------------------


def test_no_loader_workers_inside_a_daemonic_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ps.loader_workers() == ps.LOADER_WORKERS

    class Daemon:
        daemon = True

    monkeypatch.setattr(ps.mp, "current_process", lambda: Daemon())
    assert ps.loader_workers() == 0
    assert ps.purl_study_sizes("resnet50", "gpu", device="cpu").workers == 4


def _write_imagenet(root: Path, classes: int = 3, n_train: int = 10) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", 1)):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(d / f"{i}.png")


def test_imagenet_reward_and_stop_are_stratified_and_the_ddp_job_sees_the_same_splits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_imagenet(tmp_path)
    monkeypatch.setenv("DATA_ROOT", str(tmp_path))
    sizes = replace(ps.purl_study_sizes("resnet50", "smoke", device="cpu"), dataset="imagenet",
                    image_size=16, reward_subset=6, stop_subset=6, train_limit=None)  # fmt: skip
    data = ps.load_study_data(sizes)
    _, y_reward = data.tensors("reward")
    stop_labels = [data.stop[i][1] for i in range(len(data.stop))]
    # every class in both (a cut of the class-sorted hold-out gave the reward class 0 only)
    assert sorted(y_reward.tolist()) == [0, 0, 1, 1, 2, 2]
    assert sorted(stop_labels) == [0, 0, 1, 1, 2, 2]
    train_idx, stop_idx = set(data.train.indices), set(data.stop.indices)
    assert not train_idx & stop_idx and data.n("train") == 30 - 12
    # the DDP job rebuilds exactly the study's train and stop splits from its spec
    spec = ps.imagenet_spec(sizes, data)
    assert spec["val_size"] == 6 and spec["stop_size"] == 6 and spec["train_size"] == 18
    train, stop = _datasets(spec)
    assert set(train.indices) == train_idx and set(stop.indices) == stop_idx
    with pytest.raises(ValueError, match="different splits"):
        _datasets({**spec, "train_size": 17})


def test_ddp_job_paths_name_the_whole_config() -> None:
    sizes = ps.purl_study_sizes("resnet50", "smoke", device="cpu")
    base = ps.DdpJobKey("resnet50", "PuRL", "abc", sizes.finetune, 0, "data", 1.0)
    others = [replace(base, masks="def"), replace(base, seed=1), replace(base, method="global one-shot"),
              replace(base, finetune=replace(sizes.finetune, lr=1.0))]  # fmt: skip
    paths = {k.path() for k in [base, *others]}
    assert len(paths) == 5  # two targets give two mask digests: two files, never one

