"""Run an unstructured-pruned CNN through torch's sparse kernels, to measure what zeros buy.

Zeros in dense tensors save no time: a dense convolution multiplies them all the same. This
module converts a pruned model for inference so that each ``Conv2d`` (groups = 1) becomes an
``unfold`` (im2col) followed by a CSR sparse x dense matrix product, and each ``Linear`` a CSR
product. :func:`latency` times a model; the bench compares the two honestly, whichever way it falls
(on CPUs, sparse kernels usually pay off only at very high sparsity and large layers).
"""

from __future__ import annotations

import copy
import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn


class SparseConv2d(nn.Module):
    """A ``Conv2d`` whose weight is a CSR matrix ``(out, in * kh * kw)``: im2col + sparse matmul."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.groups != 1:
            raise ValueError("SparseConv2d supports groups=1 only; depthwise convs stay dense.")
        if isinstance(conv.padding, str):
            raise ValueError("SparseConv2d needs numeric padding.")
        self.kernel_size = conv.kernel_size
        self.stride = conv.stride
        self.padding = conv.padding
        self.dilation = conv.dilation
        self.out_channels = conv.out_channels
        w = conv.weight.detach().reshape(conv.out_channels, -1)
        self.weight = w.to_sparse_csr()
        self.bias = None if conv.bias is None else conv.bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)  # N, CK, L
        ck, positions = cols.shape[1], cols.shape[2]
        dense_cols = cols.transpose(0, 1).reshape(ck, n * positions)
        out = torch.sparse.mm(self.weight, dense_cols)  # out_ch, N*L
        out = out.reshape(self.out_channels, n, positions).transpose(0, 1)
        oh = (
            h + 2 * self.padding[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1
        ) // self.stride[0] + 1
        ow = (
            w + 2 * self.padding[1] - self.dilation[1] * (self.kernel_size[1] - 1) - 1
        ) // self.stride[1] + 1
        out = out.reshape(n, self.out_channels, oh, ow)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out


class SparseLinear(nn.Module):
    """A ``Linear`` whose weight is a CSR matrix."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight = linear.weight.detach().to_sparse_csr()
        self.bias = None if linear.bias is None else linear.bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        out = torch.sparse.mm(self.weight, x.reshape(-1, x.shape[-1]).T).T
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*lead, -1)


def to_sparse_inference(model: nn.Module, min_sparsity: float = 0.5) -> nn.Module:
    """A copy of ``model`` (eval mode) whose layers sparser than ``min_sparsity`` use CSR kernels."""
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    out = copy.deepcopy(model).eval()
    for name, module in list(out.named_modules()):
        if (
            isinstance(module, nn.Conv2d)
            and module.groups == 1
            and not isinstance(module.padding, str)
        ):
            new: nn.Module = SparseConv2d(module)
        elif isinstance(module, nn.Linear):
            new = SparseLinear(module)
        else:
            continue
        if float((module.weight == 0).float().mean()) < min_sparsity:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, child, new)
    return out


@torch.inference_mode()
def latency(model: nn.Module, x: torch.Tensor, repeats: int = 5, warmup: int = 1) -> float:
    """Median seconds of ``model(x)`` in eval mode over ``repeats`` runs after ``warmup``."""
    model.eval()
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

