"""Export pruned models: plain state_dicts with zeros in place, and compact sparse storage.

A pruned checkpoint should open anywhere: :func:`plain_state_dict` strips any
``torch.nn.utils.prune`` re-parametrisation so the file loads into an unmodified model and anyone
can recount its zeros. Unstructured zeros in dense tensors save no space by themselves, so
:func:`save_compact` stores every mostly-zero tensor as a bitmask plus its nonzero values (about
``1/32 + density`` of the dense size for float32) and :func:`load_compact` restores the exact dense
tensors.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pruning_core.pruning.layers import merge_torch_prune
from pruning_core.runs import atomic_open, load_checkpoint

COMPACT_FORMAT = "pruning_core.compact.v1"


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict with pruning made permanent: ``weight`` keys, zeros in place.

    Works on a model masked in place or one carrying ``torch.nn.utils.prune`` hooks (the model
    itself is left unchanged).
    """
    return {k: v.detach().clone() for k, v in merge_torch_prune(model.state_dict()).items()}


def _tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def save_compact(
    model_or_state: nn.Module | dict[str, torch.Tensor], path: str | Path, min_sparsity: float = 0.3
) -> dict[str, int]:
    """Save a state_dict with every tensor sparser than ``min_sparsity`` as bitmask + values.

    Returns sizes in bytes: ``dense`` (a plain ``torch.save``), ``compact`` (this file).
    """
    state = (
        plain_state_dict(model_or_state)
        if isinstance(model_or_state, nn.Module)
        else model_or_state
    )
    packed: dict[str, object] = {}
    for key, t in state.items():
        t = t.detach().cpu()
        if t.is_floating_point() and t.numel() >= 64:
            nz = t != 0
            density = float(nz.float().mean())
            if 1.0 - density >= min_sparsity:
                bits = np.packbits(nz.flatten().numpy())
                packed[key] = {
                    "shape": tuple(t.shape),
                    "dtype": str(t.dtype).removeprefix("torch."),
                    "bits": torch.from_numpy(bits),
                    "values": t[nz].clone(),
                }
                continue
        packed[key] = t
    buf = io.BytesIO()
    torch.save({"format": COMPACT_FORMAT, "state": packed}, buf)
    with atomic_open(path, "wb") as fh:
        fh.write(buf.getvalue())
    dense = io.BytesIO()
    torch.save(state, dense)
    return {"dense": len(dense.getvalue()), "compact": len(buf.getvalue())}


def load_compact(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a file written by :func:`save_compact` back into an ordinary dense state_dict."""
    blob = load_checkpoint(path)
    if not isinstance(blob, dict) or blob.get("format") != COMPACT_FORMAT:
        raise ValueError(
            f"{path} is not a compact checkpoint ({COMPACT_FORMAT}); load it with torch.load(path, weights_only=True) instead."
        )
    state = {}
    for key, v in blob["state"].items():
        if isinstance(v, dict):
            n = int(np.prod(v["shape"])) if v["shape"] else 1
            nz = torch.from_numpy(np.unpackbits(v["bits"].numpy(), count=n).astype(bool))
            dense = torch.zeros(n, dtype=getattr(torch, v["dtype"]))
            dense[nz] = v["values"]
            state[key] = dense.view(v["shape"])
        else:
            state[key] = v
    return state

