"""Sparse-kernel inference gives the same outputs as the masked dense model."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from pruning_core.pruning.masks import Masker
from pruning_core.pruning.sparse import SparseConv2d, SparseLinear, latency, to_sparse_inference


def test_sparse_model_matches_dense(tiny_net: nn.Module) -> None:
    Masker(tiny_net).uniform(0.8)
    tiny_net.eval()
    x = torch.randn(3, 3, 8, 8)
    sp = to_sparse_inference(tiny_net)
    assert isinstance(sp.conv1, SparseConv2d) and isinstance(sp.fc, SparseLinear)
    with torch.inference_mode():
        torch.testing.assert_close(sp(x), tiny_net(x), rtol=1e-4, atol=1e-5)
    assert latency(sp, x, repeats=2) > 0


def test_resnet_block_with_stride_and_padding() -> None:
    torch.manual_seed(0)
    m = torchvision.models.resnet18(num_classes=10).eval()
    Masker(m).global_magnitude(0.9)
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(to_sparse_inference(m)(x), m(x), rtol=1e-3, atol=1e-4)


def test_dense_layers_and_depthwise_stay_dense() -> None:
    m = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Flatten(), nn.Linear(4, 2))
    sp = to_sparse_inference(m)
    assert isinstance(sp[0], nn.Conv2d) and isinstance(sp[2], nn.Linear)
    with pytest.raises(ValueError, match="groups=1"):
        SparseConv2d(m[0])
