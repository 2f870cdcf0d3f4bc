"""``prune_mlp`` as a user meets it: their own ``nn.Sequential`` back, a report with the keys
it documents and a summary, a progress bar, and a clear error or warning for each bad input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pruning_core.config import seeded
from pruning_core.data.splits import Splits
from pruning_core.data.tabular import load_tabular
from pruning_core.methods.neon import REPORT_KEYS, NeonReport, prune_mlp
from pruning_core.models.mlp import MLP, as_mlp, to_sequential
from pruning_core.rl.envs.neon import NeonEnvConfig
from pruning_core.train.loop import TrainConfig, evaluate, fit


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


# --- prune_mlp ------------------------------------------------------------------------------


FAST = dict(passes=1, ft=replace(NeonEnvConfig().ft, max_steps=20))


@pytest.fixture(scope="module")
def task() -> tuple[nn.Sequential, Splits]:
    """A user's trained Sequential on a real table (breast cancer: 2 classes, 30 features)."""
    data = load_tabular("breast_cancer").splits()
    model = users_sequential(data.n_features, data.num_classes).train()
    fit(model, data.tensors("train"), TrainConfig.mlp(epochs=15), val_data=data.tensors("stop"))
    return model.eval(), data


def _args(data: Splits) -> tuple[torch.Tensor, ...]:
    return (*data.tensors("train"), *data.tensors("reward"))


def test_prune_mlp_gives_back_the_callers_sequential(task) -> None:
    model, data = task
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small, report = prune_mlp(model, *_args(data), C=5.0, X_stop=data.tensors("stop")[0],
                              y_stop=data.tensors("stop")[1], **FAST)  # fmt: skip
    assert isinstance(small, nn.Sequential) and not small.training
    assert list(small.state_dict()) == list(model.state_dict())  # the caller's keys
    assert [type(m) for m in small] == [type(m) for m in model]
    widths = [m.out_features for m in small if isinstance(m, nn.Linear)][:-1]
    assert widths == report["widths_final"]
    x_val, y_val = data.tensors("reward")
    assert evaluate(small, (x_val, y_val), batch_size=None)["top1"] == pytest.approx(report["val_acc"])
    assert sum(p.numel() for p in small.parameters()) == report["params_pruned"]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # untouched
    mlp_in, _ = prune_mlp(as_mlp(model), *_args(data), C=5.0, **FAST)
    assert isinstance(mlp_in, MLP)  # an MLP in, an MLP out


def test_prune_mlp_report_has_the_documented_keys_and_a_summary(task) -> None:
    model, data = task
    _, report = prune_mlp(model, *_args(data), C=5.0, **FAST)
    assert isinstance(report, NeonReport) and set(report) == set(REPORT_KEYS)
    doc = prune_mlp.__doc__ or ""
    for key in ("compression", "val_acc_orig", "val_acc", "steps", "actions", "agent_C"):
        assert f"``{key}``" in doc
    assert "``log``" not in doc  # the old docstring promised a key that was called ``steps``
    text = str(report)
    assert text == report.summary() and "compression" in text and "->" in text
    assert "{" not in text  # not a raw dict
    assert len(report.log) == len(report["actions"]) == len(report["steps"])


def test_prune_mlp_shows_a_progress_bar(task, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    model, data = task
    monkeypatch.setenv("PRUNING_CORE_PROGRESS", "1")
    prune_mlp(model, *_args(data), C=5.0, **FAST)
    assert "NEON prune" in capsys.readouterr().err
    prune_mlp(model, *_args(data), C=5.0, progress_bar=False, **FAST)
    assert "NEON prune" not in capsys.readouterr().err


def _bad_inputs(data: Splits) -> dict[str, tuple[tuple, type[Exception], str]]:
    x, y = data.tensors("train")
    xv, yv = data.tensors("reward")
    x_nan = x.clone()
    x_nan[3, 2] = float("nan")
    names = np.array(["benign", "malignant"])[y.numpy()]
    frame = pd.DataFrame(x.numpy()).assign(colour="red")
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    return {
        "nan": ((x_nan, y, xv, yv), ValueError, "NaN"),
        "string labels": ((x, names, xv, yv), TypeError, "strings.*class indices"),
        "out of range": ((x, torch.where(y == 1, 27, y), xv, yv), ValueError, "label 27.*0..1"),
        "dataloader": ((loader, y, xv, yv), TypeError, "DataLoader.*torch.cat"),
        "text feature": ((frame, y, xv, yv), TypeError, "non-numeric.*'red'"),
        "one class": ((x, torch.zeros_like(y), xv, yv), ValueError, "one class"),
        "fractional": ((x, y.double() + 0.5, xv, yv), ValueError, "whole class indices"),
        "lengths": ((x, y[:-1], xv, yv), ValueError, "rows but y_train"),
    }


@pytest.mark.parametrize("case", ["nan", "string labels", "out of range", "dataloader",
                                  "text feature", "one class", "fractional", "lengths"])  # fmt: skip
def test_prune_mlp_names_the_fix_for_bad_inputs(task, case: str) -> None:
    model, data = task
    args, error, match = _bad_inputs(data)[case]
    with pytest.raises(error, match=match):
        prune_mlp(model, *args, C=5.0, **FAST)


def test_prune_mlp_warns_about_an_untrained_model_and_too_few_rows(task) -> None:
    model, data = task
    untrained = users_sequential(data.n_features, data.num_classes)
    x, y = data.tensors("train")
    xv, yv = data.tensors("reward")
    majority = int(torch.bincount(yv).argmax())
    with torch.no_grad():  # an untrained net that always predicts the majority class
        untrained[-1].bias.copy_(torch.eye(2)[majority] * 50)
    with pytest.warns(UserWarning, match="looks untrained"):
        prune_mlp(untrained, x, y, xv, yv, C=5.0, **FAST)
    rows = torch.cat([torch.nonzero(yv == c).flatten()[:2] for c in (0, 1)])
    with pytest.warns(UserWarning, match="4 rows: one row is 25 pt") as seen:  # a 40-row table's
        prune_mlp(model, x, y, xv[rows], yv[rows], C=1.0, **FAST)
    assert not any("untrained" in str(w.message) for w in seen)
    with pytest.warns(UserWarning, match="one class only"):
        prune_mlp(model, x, y, xv[yv == 0], yv[yv == 0], C=5.0, **FAST)
