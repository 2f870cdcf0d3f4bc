"""CNN builders: torchvision architectures, small-input stems, local-only pretrained weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from pruning_core.models.cnn import (
    SMALL_INPUT_ADAPTATIONS,
    build_mobilenet_v2,
    build_model,
    build_resnet50,
    build_small_cnn,
    describe_adaptation,
    pretrained_weights_path,
)


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to download weights fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private TORCH_HOME, so torch.hub.get_dir() is <tmp>/hub."""
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case something called set_dir
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


def _imagenet_state(name: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    fn = torchvision.models.resnet50 if name == "resnet50" else torchvision.models.mobilenet_v2
    return fn(weights=None).state_dict()


def _save_as_hub_file(name: str, state: dict[str, torch.Tensor]) -> Path:
    path = pretrained_weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


# --- architectures --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [("resnet50", torchvision.models.ResNet), ("mobilenet_v2", torchvision.models.MobileNetV2)],
)
def test_small_input_forward(name: str, cls: type) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, small_input=True).eval()
    assert isinstance(model, cls)
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 7)


def test_resnet50_small_input_stem() -> None:
    model = build_resnet50(10, small_input=True)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert model.conv1.padding == (1, 1) and isinstance(model.maxpool, nn.Identity)
    assert model.fc.out_features == 10
    std = build_resnet50(10)
    assert std.conv1.kernel_size == (7, 7) and isinstance(std.maxpool, nn.MaxPool2d)
    # everything except conv1 has torchvision's shapes
    small_shapes = {k: v.shape for k, v in model.state_dict().items()}
    std_shapes = {k: v.shape for k, v in std.state_dict().items()}
    assert small_shapes.keys() == std_shapes.keys()
    assert [k for k in small_shapes if small_shapes[k] != std_shapes[k]] == ["conv1.weight"]


def test_mobilenet_v2_small_input_strides() -> None:
    model = build_mobilenet_v2(10, small_input=True).eval()
    assert model.features[0][0].stride == (1, 1)
    assert model.features[2].conv[1][0].stride == (1, 1)
    assert model.classifier[1].out_features == 10
    with torch.inference_mode():
        assert model.features(torch.randn(1, 3, 8, 8)).shape[-2:] == (1, 1)
        assert model.features(torch.randn(1, 3, 32, 32)).shape[-2:] == (4, 4)
        # with torchvision's strides, 32x32 would already be 1x1 at the end of features
        plain = build_mobilenet_v2(10).eval()
        assert plain.features(torch.randn(1, 3, 32, 32)).shape[-2:] == (1, 1)


def test_describe_adaptation() -> None:
    text = describe_adaptation("resnet50")
    assert "conv1" in text and "maxpool" in text and "3x3" in text
    assert "features[2]" in describe_adaptation("mobilenet_v2")
    assert set(SMALL_INPUT_ADAPTATIONS) == {"resnet50", "mobilenet_v2", "small_cnn", "resnet20"}
    with pytest.raises(ValueError):
        describe_adaptation("vgg16")


def test_small_input_checkpoint_roundtrip(tmp_path: Path) -> None:
    """An exported small-input checkpoint loads into build_resnet50(small_input=True) only."""
    torch.manual_seed(0)
    model = build_resnet50(10, small_input=True)
    state = model.state_dict()
    fresh = build_resnet50(10, small_input=True)
    fresh.load_state_dict(state)  # strict
    assert torch.equal(fresh.conv1.weight, model.conv1.weight)
    with pytest.raises(RuntimeError, match="conv1.weight"):
        build_resnet50(10, small_input=False).load_state_dict(state)
    path = tmp_path / "small.pt"
    torch.save(state, path)
    loaded = build_resnet50(10, small_input=True, weights_path=path)
    assert torch.equal(loaded.conv1.weight, model.conv1.weight)
    assert torch.equal(loaded.fc.weight, model.fc.weight)


# --- small CNN and dispatch -----------------------------------------------------------


def test_small_cnn() -> None:
    model = build_small_cnn(num_classes=10, in_channels=3, width=8)
    assert model(torch.randn(4, 3, 8, 8)).shape == (4, 10)
    assert build_small_cnn(5, in_channels=1)(torch.randn(2, 1, 16, 16)).shape == (2, 5)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == 2


def test_build_model_dispatch() -> None:
    assert isinstance(build_model("small_cnn", 10, small_input=True, width=4), nn.Module)
    with pytest.raises(ValueError, match="resnet50.*mobilenet_v2.*small_cnn"):
        build_model("vgg16", 10)
    with pytest.raises(ValueError, match="pretrained"):
        build_model("small_cnn", 10, pretrained=True)


# --- pretrained weights (local only) --------------------------------------------------


def test_weights_path_follows_torch_home(torch_home: Path) -> None:
    assert pretrained_weights_path("resnet50") == (
        torch_home / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    )
    assert pretrained_weights_path("mobilenet_v2").name == "mobilenet_v2-b0353104.pth"


def test_resnet50_pretrained_from_hub_cache(torch_home: Path) -> None:
    state = _imagenet_state("resnet50")
    _save_as_hub_file("resnet50", state)
    full = build_resnet50(1000, pretrained=True)
    for key, value in full.state_dict().items():
        assert torch.equal(value, state[key]), key
    small = build_resnet50(10, small_input=True, pretrained=True)
    assert torch.equal(small.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    assert torch.equal(small.bn1.running_var, state["bn1.running_var"])
    assert small.conv1.weight.shape == (64, 3, 3, 3) and small.fc.out_features == 10


def test_mobilenet_v2_pretrained_from_hub_cache(torch_home: Path) -> None:
    state = _imagenet_state("mobilenet_v2")
    _save_as_hub_file("mobilenet_v2", state)
    model = build_mobilenet_v2(10, small_input=True, pretrained=True)
    assert torch.equal(model.features[0][0].weight, state["features.0.0.weight"])
    assert torch.equal(model.features[2].conv[1][0].weight, state["features.2.conv.1.0.weight"])
    assert model.classifier[1].weight.shape == (10, 1280)


def test_pretrained_missing(torch_home: Path) -> None:
    expected = torch_home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    with pytest.raises(FileNotFoundError) as info:
        build_mobilenet_v2(10, pretrained=True)
    assert str(expected) in str(info.value) and "TORCH_HOME" in str(info.value)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_resnet50(10, weights_path=torch_home / "nope.pth")


def test_pretrained_corrupt_file(torch_home: Path) -> None:
    path = pretrained_weights_path("mobilenet_v2")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(RuntimeError, match="delete") as info:
        build_mobilenet_v2(10, pretrained=True)
    assert str(path) in str(info.value)


def test_pretrained_missing_keys_or_wrong_arch(torch_home: Path) -> None:
    state = _imagenet_state("mobilenet_v2")
    del state["features.5.conv.0.0.weight"]
    path = _save_as_hub_file("mobilenet_v2", state)
    with pytest.raises(RuntimeError, match="features.5.conv.0.0.weight") as info:
        build_mobilenet_v2(10, pretrained=True)
    assert str(path) in str(info.value)
    with pytest.raises(RuntimeError, match="does not match"):
        build_resnet50(10, weights_path=path)
