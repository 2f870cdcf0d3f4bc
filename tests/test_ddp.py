"""DDP fine-tuning with masks held: two CPU processes (gloo) through torchrun."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pruning_core.models.cnn import build_model
from pruning_core.pruning.masks import Masker
from pruning_core.train.ddp import _dataset, launch, write_job
from pruning_core.train.loop import TrainConfig


@pytest.mark.slow
def test_ddp_fine_tune_two_processes_keeps_masks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("small_cnn", 10)
    mk = Masker(model)
    masks = mk.global_magnitude(0.7)
    mk.restore()  # the job carries the dense weights and the masks separately
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(64, 3, 8, 8), torch.randint(0, 10, (64,))
    job = write_job(
        tmp_path / "job.pt", "small_cnn", 10, dense, masks,
        TrainConfig(epochs=2, lr=0.05, batch_size=8, amp=False), {"tensors": (x, y)},
    )  # fmt: skip
    state = launch(job, nproc=2)
    out = build_model("small_cnn", 10)
    out.load_state_dict(state)
    after = Masker(out)
    for name, m in masks.items():
        w = after.by_name[name].weight
        assert torch.all(w[~m] == 0), name
        # the kept weights were trained: they moved away from the dense values
        assert not torch.equal(w[m], dense[f"{name}.weight"][m]), name


def test_bad_data_spec_is_explained() -> None:
    with pytest.raises(ValueError, match="tensors"):
        _dataset({"dataset": "mnist"})
