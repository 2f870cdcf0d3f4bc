"""Pruned checkpoints load into unmodified models; compact storage is exact and smaller."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from pruning_core.pruning.export import load_compact, plain_state_dict, save_compact
from pruning_core.pruning.masks import Masker
from pruning_core.pruning.report import sparsity_report


def _pruned(tiny_net: nn.Module, sparsity: float = 0.9) -> Masker:
    mk = Masker(tiny_net)
    mk.global_magnitude(sparsity)
    return mk


def test_plain_state_dict_from_torch_prune_loads_into_fresh_model(tiny_net: nn.Module) -> None:
    mk = _pruned(tiny_net)
    mk.export_torch_prune()
    state = plain_state_dict(tiny_net)
    assert not any(k.endswith(("weight_orig", "weight_mask")) for k in state)
    fresh = type(tiny_net)()
    fresh.load_state_dict(state)  # strict: an unmodified model takes it
    assert sparsity_report(fresh).sparsity_prunable == pytest.approx(0.9, abs=1e-3)


def test_compact_roundtrip_exact_and_smaller(tiny_net: nn.Module, tmp_path: Path) -> None:
    _pruned(tiny_net)
    path = tmp_path / "pruned.pt"
    sizes = save_compact(tiny_net, path)
    assert sizes["compact"] < 0.5 * sizes["dense"]
    back = load_compact(path)
    for k, v in tiny_net.state_dict().items():
        assert torch.equal(back[k], v), k
    fresh = type(tiny_net)()
    fresh.load_state_dict(back)


def test_load_compact_rejects_other_files(tmp_path: Path) -> None:
    p = tmp_path / "x.pt"
    torch.save({"a": torch.zeros(2)}, p)
    with pytest.raises(ValueError, match="not a compact checkpoint"):
        load_compact(p)
