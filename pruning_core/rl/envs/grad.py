"""Torch's grad mode inside the environments, whatever the caller's.

Collectors of RL libraries (TorchRL's, for one) step environments under ``torch.no_grad()`` or
``torch.inference_mode()``. NEON's and PuRL's steps fine-tune the network (backward passes), and
tensors made inside inference mode (pruned weights, masks, copies of the network) can never
enter autograd later. :func:`env_grad_mode` turns both off again around the environments'
``reset`` and ``step``, so a step does the same arithmetic and returns the same numbers under any
caller's mode; it only restores torch's default (the caller's mode is back on return).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["env_grad_mode"]


@contextlib.contextmanager
def env_grad_mode() -> Iterator[None]:
    """Gradients on and inference mode off inside (usable as a decorator: ``@env_grad_mode()``).

    Both are needed: ``torch.enable_grad()`` alone leaves inference mode on, where every new
    tensor is an inference tensor that a later backward pass refuses.
    """
    with torch.inference_mode(False), torch.enable_grad():
        yield
