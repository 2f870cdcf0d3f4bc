"""DDP fine-tuning with masks held: two CPU processes (gloo) through torchrun."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from pruning_core.models.cnn import build_model
from pruning_core.pruning.masks import Masker
from pruning_core.train.ddp import _dataset, launch, write_job
from pruning_core.train.loop import TrainConfig


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.slow
def test_ddp_fine_tune_two_processes_keeps_masks_and_follows_the_protocol(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("small_cnn", 10)
    mk = Masker(model)
    masks = mk.global_magnitude(0.7)  # the job starts from the pruned network
    start = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(epochs=6, lr=0.05, batch_size=8, amp=False, patience=1, restore_best=True,
                      monitor="val_loss")  # fmt: skip
    data = {"tensors": _data(64, 0), "stop_tensors": _data(30, 1)}  # 30 rows: shards of 15
    out = launch(write_job(tmp_path / "job.pt", "small_cnn", 10, start, masks, cfg, data), nproc=2)
    # both ranks hold the same weights (DDP kept them in step)
    assert len(out["rank_checksums"]) == 2
    assert out["rank_checksums"][0] == out["rank_checksums"][1]
    # the single-GPU protocol: checks on the stop split, early stopping, the best check kept
    rows = out["rows"]
    assert rows and all(math.isfinite(r["val_loss"]) for r in rows)
    assert len(rows) < cfg.epochs or out["steps"] == cfg.epochs * 4  # 64 rows / 2 ranks / 8
    assert out["val_loss"] == min(r["val_loss"] for r in rows)
    trained = build_model("small_cnn", 10)
    trained.load_state_dict(out["state"])
    after = Masker(trained)
    for name, m in masks.items():
        w = after.by_name[name].weight
        assert torch.all(w[~m] == 0), name
        # the kept weights were trained: they moved away from the starting values
        assert not torch.equal(w[m], start[f"{name}.weight"][m]), name


@pytest.mark.slow
def test_ddp_dense_control_without_masks(tmp_path: Path) -> None:
    """The study's control fine-tunes the dense network: no masks, which fit() must not get as
    an empty masker (it raises for one)."""
    torch.manual_seed(0)
    model = build_model("small_cnn", 10)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(epochs=1, lr=0.05, batch_size=8, amp=False)
    job = write_job(tmp_path / "control.pt", "small_cnn", 10, start, {}, cfg,
                    {"tensors": _data(32, 0)})  # fmt: skip
    out = launch(job, nproc=2)
    assert out["steps"] == 2 and out["rank_checksums"][0] == out["rank_checksums"][1]
    assert not torch.equal(out["state"]["features.0.weight"], start["features.0.weight"])


def test_bad_data_spec_is_explained() -> None:
    with pytest.raises(ValueError, match="tensors"):
        _dataset({"dataset": "mnist"})
