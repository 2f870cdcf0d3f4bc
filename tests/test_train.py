"""Training, evaluation and fine-tuning with fixed masks, on real data (scikit-learn digits)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from pruning_core.pruning.masks import Masker
from pruning_core.train.loop import TrainConfig, evaluate, fit, get_device


def _digits() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    return (x[:1200], y[:1200]), (x[1200:], y[1200:])


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def test_fit_learns_and_fine_tune_keeps_sparsity() -> None:
    torch.manual_seed(0)
    train, val = _digits()
    model = _mlp()
    cfg = TrainConfig(epochs=8, lr=0.1, batch_size=64)
    hist = fit(model, train, cfg, val_data=val, device="cpu").history
    assert len(hist) == 8
    assert hist["val_top1"].iloc[-1] > 0.85
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    mk = Masker(model)
    mk.global_magnitude(0.9)
    pruned = evaluate(model, val)["top1"]
    fit(model, train, TrainConfig(epochs=3, lr=0.02, batch_size=64), masker=mk, device="cpu")
    assert mk.sparsity() == pytest.approx(0.9, abs=1e-3)
    assert evaluate(model, val)["top1"] >= pruned


def test_evaluate_top5_and_errors() -> None:
    _, val = _digits()
    model = _mlp()
    out = evaluate(model, val, topk=(1, 5))
    assert 0 <= out["top1"] <= out["top5"] <= 1
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, (val[0][:0], val[1][:0]))
    with torch.no_grad():
        model[0].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="learning rate"):
        evaluate(model, val)


def test_same_seed_same_training() -> None:
    train, _ = _digits()

    def run() -> torch.Tensor:
        torch.manual_seed(3)
        m = _mlp()
        fit(m, train, TrainConfig(epochs=1, batch_size=128, seed=3), device="cpu")
        return m[0].weight.detach().clone()

    assert torch.equal(run(), run())


def test_fine_tune_needs_masks() -> None:
    model = _mlp()
    with pytest.raises(ValueError, match="prune the model first"):
        fit(model, _digits()[0], TrainConfig(epochs=1), masker=Masker(model))


def test_device_follows_the_policy_not_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    """smoke / cpu train on the CPU even where a GPU exists (get_device used to pick CUDA)."""
    monkeypatch.delenv("DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device().type == "cpu"
    assert get_device(profile="smoke").type == "cpu"
    assert get_device("cpu", profile="gpu").type == "cpu"


def test_recalibrate_bn_fixes_stale_statistics_without_training() -> None:
    from pruning_core.train.batchnorm import recalibrate_bn

    torch.manual_seed(0)
    train, val = _digits()
    model = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 10))
    fit(model, train, TrainConfig(epochs=5, lr=0.05, batch_size=64), device="cpu")
    Masker(model).global_magnitude(0.85)
    stale = evaluate(model, val)["top1"]
    weights = [p.detach().clone() for p in model.parameters()]
    recalibrate_bn(model, train, max_batches=10)
    assert evaluate(model, val)["top1"] > stale
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters(), strict=True))
    assert model[1].momentum == 0.1


def test_use_batch_statistics_matches_train_mode_and_is_pure() -> None:
    from pruning_core.train.batchnorm import use_batch_statistics

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    with torch.no_grad():
        model[1].running_mean.fill_(5.0)
    x = torch.randn(6, 3, 8, 8)
    use_batch_statistics(model)
    assert isinstance(model[1], nn.BatchNorm2d)
    with torch.inference_mode():
        out = model(x)
    expected = torch.relu(
        nn.functional.batch_norm(model[0](x), None, None, model[1].weight, model[1].bias, True)
    )
    torch.testing.assert_close(out, expected)
    assert torch.all(model[1].running_mean == 5.0)


def test_config_profiles_and_validation() -> None:
    mlp = TrainConfig.mlp(epochs=7)
    assert (mlp.optimizer, mlp.epochs, mlp.batch_size, mlp.restore_best) == ("adam", 7, 64, True)
    assert TrainConfig().optimizer == "sgd" and not TrainConfig().restore_best
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(epochs=None)
    with pytest.raises(ValueError, match="min_batch"):
        fit(_mlp(), (torch.zeros(1, 64), torch.zeros(1, dtype=torch.long)), TrainConfig.mlp())


def test_early_stopping_checks_the_start_and_stops_on_nan_keeping_the_best() -> None:
    train, val = _digits()
    model = _mlp()
    start = [p.detach().clone() for p in model.parameters()]
    x = train[0].clone()
    x[::7] = float("nan")  # NaN rows: the first step makes every weight NaN
    res = fit(model, (x, train[1]), TrainConfig.mlp(), val_data=val)
    assert res.rows[0]["epoch"] == 0 and res.checks == 1  # check 0, then the NaN check stops
    assert all(torch.equal(a, b) for a, b in zip(start, model.parameters(), strict=True))
    assert res.val_top1 == evaluate(model, val, batch_size=None)["top1"]
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(_mlp(), (x, train[1]), TrainConfig(epochs=1), device="cpu")


def test_replacement_sampling_draws_from_the_given_rng() -> None:
    train, _ = _digits()
    model = _mlp()
    cfg = TrainConfig(epochs=None, max_steps=3, batch_size=16, sampling="replacement")
    rng = np.random.default_rng(0)
    res = fit(model, train, cfg, rng=rng)
    assert res.steps == 3 and not model.training
    expected = np.random.default_rng(0)
    for _ in range(3):
        expected.integers(0, len(train[0]), size=16)
    assert rng.bit_generator.state == expected.bit_generator.state


def test_evaluate_one_pass_batches_and_precomputed_logits() -> None:
    _, val = _digits()
    model = _mlp()
    whole = evaluate(model, val, batch_size=None, topk=(1, 5))
    batched = evaluate(model, val, batch_size=100, topk=(1, 5))
    assert whole["top1"] == batched["top1"] and whole["top5"] == batched["top5"]
    assert whole["loss"] == pytest.approx(batched["loss"], rel=1e-5)
    with torch.no_grad():
        logits = [model(val[0][:150]), model(val[0][150:])]
    scored = evaluate(nn.Identity(), zip(logits, (val[1][:150], val[1][150:]), strict=True))
    assert scored["top1"] == whole["top1"]
