"""``prune_mlp`` as a user meets it: their own ``nn.Sequential`` back, a report with the keys
it documents and a summary, a progress bar, and a clear error or warning for each bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pruning_core.config import seeded
from pruning_core.models.mlp import as_mlp, to_sequential


def users_sequential(n_features: int = 5, n_classes: int = 3) -> nn.Sequential:
    with seeded(0):
        return nn.Sequential(
            nn.Flatten(), nn.Linear(n_features, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Dropout(0.2),
            nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, n_classes),
        ).eval()  # fmt: skip


def test_to_sequential_round_trips_a_users_sequential() -> None:
    seq = users_sequential()
    with torch.no_grad():  # non-trivial batch-norm statistics
        seq[2].running_mean.uniform_(-1, 1)
        seq[2].running_var.uniform_(0.5, 2)
    x = torch.randn(7, 5)
    mlp = as_mlp(seq).eval()
    back = to_sequential(mlp, like=seq)
    assert isinstance(back, nn.Sequential) and not back.training
    assert [type(m) for m in back] == [type(m) for m in seq]
    assert list(back.state_dict()) == list(seq.state_dict())  # loads into the caller's code
    seq.load_state_dict(back.state_dict())
    assert torch.allclose(back(x), seq(x)) and torch.allclose(mlp(x), seq(x))
    plain = to_sequential(mlp)  # no template: Linear, BN, act, Dropout per layer, then the head
    assert [type(m) for m in plain] == [type(m) for m in seq][1:]
    assert torch.allclose(plain(x), seq(x))


def test_to_sequential_folds_neuron_masks() -> None:
    seq = users_sequential()
    mlp = as_mlp(seq).eval()
    mask = torch.ones(16)
    mask[[1, 4, 9]] = 0
    mlp.blocks[0].neuron_mask = mask
    x = torch.randn(6, 5)
    back = to_sequential(mlp, like=seq)
    assert torch.allclose(back(x), mlp(x), atol=1e-6)
    assert mlp.blocks[0].neuron_mask is not None  # the MLP itself is not changed
    with pytest.raises(ValueError, match="Linear layers"):
        to_sequential(mlp, like=nn.Sequential(nn.Linear(5, 3)))


def test_as_mlp_keeps_weights_and_draws_nothing() -> None:
    seq = users_sequential()
    state = torch.get_rng_state()
    mlp = as_mlp(seq)
    assert torch.equal(state, torch.get_rng_state())
    assert not any(p.is_meta for p in mlp.parameters())
    assert torch.equal(mlp.blocks[0].linear.weight, seq[1].weight)
    assert np.isclose(mlp.blocks[0].dropout.p, 0.2) and isinstance(mlp.blocks[0].act, nn.Tanh)
