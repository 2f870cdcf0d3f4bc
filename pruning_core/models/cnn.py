"""Networks to prune.

CNN part (PuRL): torchvision's real ResNet-50 and MobileNet-V2, optionally with a stem adapted
to tiny inputs (8x8 digits, 32x32 CIFAR-10), optional ImageNet weights read from local files
only (never downloaded), and a small CNN for tutorials and fast tests.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision import models as tv_models

CNN_MODEL_NAMES: tuple[str, ...] = ("resnet50", "mobilenet_v2", "small_cnn", "resnet20")


IMAGENET_NUM_CLASSES = 1000


SMALL_INPUT_ADAPTATIONS: dict[str, str] = {
    "resnet50": (
        "ResNet-50 small-input stem: conv1 7x7/stride 2/padding 3 replaced by a freshly "
        "initialised 3x3/stride 1/padding 1 conv (64 channels) and the 3x3/stride 2 maxpool "
        "replaced by Identity, so layer1..layer4 see 8x8 -> 8, 4, 2, 1 (32x32 -> 32, 16, 8, 4); "
        "every other layer is torchvision's resnet50 unchanged."
    ),
    "mobilenet_v2": (
        "MobileNet-V2 small-input stem: stride 2 -> 1 in the first conv (features[0][0]) and "
        "in the depthwise conv of the first 24-channel block (features[2].conv[1][0]); no "
        "weight shapes change, so 8x8 inputs end at 1x1 after features (32x32 -> 4x4) instead "
        "of collapsing to 1x1 half-way through the network."
    ),
    "small_cnn": "small_cnn is built for small inputs; nothing is adapted.",
    "resnet20": "resnet20 is CIFAR-style (3x3 stem, no max-pool); nothing is adapted.",
}


def describe_adaptation(model_name: str) -> str:
    """One sentence saying what ``small_input=True`` changes in ``model_name`` (for notebooks)."""
    _check_name(model_name)
    return SMALL_INPUT_ADAPTATIONS[model_name]


def _check_name(name: str) -> None:
    if name not in CNN_MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(CNN_MODEL_NAMES)}")


def _imagenet_weights_enum(model_name: str) -> tv_models.WeightsEnum:
    if model_name == "resnet50":
        return tv_models.ResNet50_Weights.IMAGENET1K_V1
    if model_name == "mobilenet_v2":
        return tv_models.MobileNet_V2_Weights.IMAGENET1K_V1
    raise ValueError(f"no ImageNet weights for {model_name!r}; known: resnet50, mobilenet_v2")


def pretrained_weights_path(model_name: str) -> Path:
    """Where torchvision's IMAGENET1K_V1 file for ``model_name`` is expected in the hub cache.

    ``torch.hub.get_dir()/checkpoints/<file name of the weights URL>``; ``torch.hub.get_dir()``
    follows ``$TORCH_HOME`` (``$TORCH_HOME/hub``).
    """
    url = _imagenet_weights_enum(model_name).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle / zip / unpickler errors all mean "unusable file"
        raise RuntimeError(
            f"Could not read weights file {path} ({type(exc).__name__}: {exc}). It is probably "
            "corrupt or truncated: delete it and copy / re-download a fresh copy."
        ) from exc
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise RuntimeError(
            f"Weights file {path} does not hold a state_dict (mapping of names to tensors); "
            "delete it and copy / re-download the right file."
        )
    state = dict(obj)
    if state and all(
        k.startswith("module.") for k in state
    ):  # saved from (Distributed)DataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def load_pretrained_weights(
    model: nn.Module, path: str | os.PathLike[str], fresh_prefixes: Iterable[str] = ()
) -> list[str]:
    """Load a state_dict file into ``model``; returns the keys left freshly initialised.

    Keys starting with one of ``fresh_prefixes`` (layers replaced for another class count or
    a small-input stem) are loaded when the file has them with the same shape and otherwise
    kept as initialised. Any other key that is missing or has another shape means the file is
    not a checkpoint of this architecture: RuntimeError naming the file.
    """
    path = Path(path)
    state = _read_state_dict(path)
    prefixes = tuple(fresh_prefixes)
    to_load: dict[str, torch.Tensor] = {}
    fresh: list[str] = []
    missing: list[str] = []
    mismatched: list[str] = []
    for key, own in model.state_dict().items():
        theirs = state.get(key)
        replaceable = bool(prefixes) and key.startswith(prefixes)
        if theirs is None:
            if replaceable:
                fresh.append(key)
            elif not key.endswith("num_batches_tracked"):  # absent in old torchvision files
                missing.append(key)
        elif theirs.shape != own.shape:
            if replaceable:
                fresh.append(key)
            else:
                mismatched.append(f"{key}: file {tuple(theirs.shape)} vs model {tuple(own.shape)}")
        else:
            to_load[key] = theirs
    if missing or mismatched:
        raise RuntimeError(
            f"Weights file {path} does not match {type(model).__name__}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(mismatched)} shape mismatches (e.g. {mismatched[:3]}). The file is corrupt "
            "or for another model: delete it and copy / re-download the right one."
        )
    model.load_state_dict(to_load, strict=False)
    return fresh


def _resolve_weights(model_name: str, weights_path: str | os.PathLike[str] | None) -> Path:
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Pretrained {model_name} weights not found at {path}.")
        return path
    path = pretrained_weights_path(model_name)
    if not path.is_file():
        url = _imagenet_weights_enum(model_name).url
        raise FileNotFoundError(
            f"Pretrained {model_name} ImageNet weights not found at {path} (nothing is "
            f"downloaded at run time). Provide them by copying {path.name} (from {url}) to "
            f"{path}, or set TORCH_HOME so that $TORCH_HOME/hub/checkpoints/{path.name} "
            "exists, or pass weights_path=..."
        )
    return path


def build_resnet50(
    num_classes: int,
    small_input: bool = False,
    pretrained: bool = False,
    weights_path: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """torchvision's ResNet-50 with a ``num_classes`` fc layer.

    ``small_input=True``: conv1 becomes 3x3 / stride 1 / padding 1 and maxpool Identity (see
    ``SMALL_INPUT_ADAPTATIONS``); a checkpoint of such a model therefore only loads into
    ``build_resnet50(small_input=True)``. ``pretrained=True`` (or a ``weights_path``) loads the
    IMAGENET1K_V1 file from the local torch hub cache or ``weights_path`` on CPU, never
    downloading; the fc (if ``num_classes != 1000``) and the small-input conv1 stay freshly
    initialised, all other layers are loaded.
    """
    model = tv_models.resnet50(weights=None, num_classes=num_classes)
    fresh_prefixes: list[str] = []
    if small_input:
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
        fresh_prefixes.append("conv1.")
    if num_classes != IMAGENET_NUM_CLASSES:
        fresh_prefixes.append("fc.")
    if pretrained or weights_path is not None:
        path = _resolve_weights("resnet50", weights_path)
        load_pretrained_weights(model, path, fresh_prefixes)
    return model


def build_mobilenet_v2(
    num_classes: int,
    small_input: bool = False,
    pretrained: bool = False,
    weights_path: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """torchvision's MobileNet-V2 with a ``num_classes`` classifier.

    ``small_input=True`` sets stride 1 in the first conv and in the first 24-channel block's
    depthwise conv (see ``SMALL_INPUT_ADAPTATIONS``); no weight shape changes. ``pretrained``
    / ``weights_path`` as in :func:`build_resnet50`; only ``classifier.1`` stays fresh (when
    ``num_classes != 1000``).
    """
    model = tv_models.mobilenet_v2(weights=None, num_classes=num_classes)
    if small_input:
        stem_conv = model.features[0][0]
        stem_conv.stride = (1, 1)
        block = model.features[2]  # InvertedResidual 16 -> 24 channels, stride 2 in torchvision
        block.conv[1][0].stride = (1, 1)  # its depthwise 3x3 conv
        block.stride = 1
        block._is_cn = False  # keep torchvision's bookkeeping consistent with the new stride
    fresh_prefixes = ["classifier.1."] if num_classes != IMAGENET_NUM_CLASSES else []
    if pretrained or weights_path is not None:
        path = _resolve_weights("mobilenet_v2", weights_path)
        load_pretrained_weights(model, path, fresh_prefixes)
    return model


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU layers, a 2x2 adaptive pool and two Linear layers (any input size)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * 4, 4 * width),
            nn.ReLU(inplace=True),
            nn.Linear(4 * width, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_small_cnn(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """A small CNN for the MDP tutorial and fast tests on 8x8 digits (~23k params at width 16)."""
    return SmallCNN(num_classes=num_classes, in_channels=in_channels, width=width)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a shortcut (identity, or 1x1 conv + BN when the shape
    changes), then ReLU. The input is never modified in place (the prefix cache relies on it)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + (x if self.downsample is None else self.downsample(x))
        return torch.relu(out)


class ResNet20(nn.Sequential):
    """CIFAR-style ResNet-20 (He et al. 2016, section 4.2) as a chain of children.

    ``stem`` (3x3 conv-BN-ReLU, ``width`` channels), three stages of three :class:`BasicBlock`
    (``width``, ``2 width``, ``4 width`` channels; the first block of stages 2 and 3 has stride
    2 and a 1x1-conv + BN shortcut), global average pooling, flatten, ``fc``: 22 prunable layers
    (19 3x3 convs, 2 shortcut convs, fc). Being an ``nn.Sequential`` of those children, its
    forward is exactly the chain, so PuRL's prefix cache (:func:`sequential_modules`) cuts it
    into one stage per block.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> None:
        mods: list[tuple[str, nn.Module]] = [
            ("stem", nn.Sequential(
                nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width), nn.ReLU(),
            )),
        ]  # fmt: skip
        in_ch = width
        for stage, mult in enumerate((1, 2, 4)):
            for b in range(3):
                stride = 2 if stage > 0 and b == 0 else 1
                mods.append((f"block{stage + 1}_{b + 1}", BasicBlock(in_ch, width * mult, stride)))
                in_ch = width * mult
        mods += [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten(1)),
                 ("fc", nn.Linear(in_ch, num_classes))]  # fmt: skip
        super().__init__(OrderedDict(mods))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def build_resnet20(num_classes: int = 10, in_channels: int = 1, width: int = 16) -> nn.Module:
    """CIFAR-style ResNet-20 (:class:`ResNet20`) for small inputs: 22 prunable layers."""
    return ResNet20(num_classes=num_classes, in_channels=in_channels, width=width)


def build_model(name: str, num_classes: int, **kw: Any) -> nn.Module:
    """Build ``name`` in ``CNN_MODEL_NAMES`` with ``num_classes`` outputs.

    Keyword arguments go to the matching ``build_*`` function. For ``small_cnn`` and ``resnet20``,
    ``small_input`` is accepted and ignored (it is always small-input) so one call works for
    every name; ``pretrained`` / ``weights_path`` raise ValueError there (no ImageNet weights).
    """
    _check_name(name)
    if name == "resnet50":
        return build_resnet50(num_classes, **kw)
    if name == "mobilenet_v2":
        return build_mobilenet_v2(num_classes, **kw)
    kw = dict(kw)
    kw.pop("small_input", None)
    if kw.pop("pretrained", False) or kw.pop("weights_path", None) is not None:
        raise ValueError(f"{name} has no pretrained weights; pretrained/weights_path unsupported")
    if name == "resnet20":
        return build_resnet20(num_classes, **kw)
    return build_small_cnn(num_classes, **kw)

