"""Fine-tuning with masks fixed on several GPUs through ``torch.distributed`` (DDP).

Launched with torchrun, one process per GPU::

    torchrun --standalone --nproc_per_node=8 -m pruning_core.train.ddp JOB.pt

``JOB.pt`` (written by :func:`write_job`) holds the model name, the dense weights, the masks, the
fine-tuning config and where the data are; the result (a plain state_dict, zeros in place) is
written by rank 0 to ``JOB.out.pt``. :func:`launch` does both steps from Python. Without CUDA the
same code runs on the CPU with the ``gloo`` backend, which is how the tests exercise it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from pruning_core.data.images import load_imagenet
from pruning_core.models.cnn import build_model
from pruning_core.pruning.criteria import Masks
from pruning_core.pruning.export import plain_state_dict
from pruning_core.pruning.masks import Masker
from pruning_core.runs import load_checkpoint, save_checkpoint
from pruning_core.train.loop import TrainConfig, fit


def write_job(
    path: str | Path,
    model: str,
    num_classes: int,
    dense_state: dict[str, torch.Tensor],
    masks: Masks,
    cfg: TrainConfig,
    data: dict[str, Any],
    small_input: bool = False,
) -> Path:
    """Save everything a DDP fine-tuning needs into one checkpoint file.

    ``data`` is ``{"dataset": "imagenet", "data_root": ...}`` or ``{"tensors": (x, y)}``.
    """
    return save_checkpoint(
        path,
        {
            "model": model,
            "num_classes": num_classes,
            "small_input": small_input,
            "dense_state": dense_state,
            "masks": masks,
            "cfg": asdict(cfg),
            "data": data,
        },
    )


def _dataset(data: dict[str, Any]) -> torch.utils.data.Dataset:
    if "tensors" in data:
        return TensorDataset(*data["tensors"])
    if data.get("dataset") == "imagenet":

        return load_imagenet(data.get("data_root"), val_size=data.get("val_size", 10_000)).train
    raise ValueError(f"unknown DDP data spec {sorted(data)}: give 'tensors' or dataset='imagenet'")


def run_job(job_path: str | Path) -> Path | None:
    """The body of one DDP process: :func:`~pruning_core.train.loop.fit` on the DDP-wrapped
    model with masks held, one shard of every epoch per process; rank 0 saves the result."""
    job = load_checkpoint(job_path)
    cuda = torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    try:
        cfg = TrainConfig(**job["cfg"])
        torch.manual_seed(cfg.seed)
        model = build_model(job["model"], job["num_classes"], small_input=job["small_input"])
        model.load_state_dict(job["dense_state"])
        model.to(device)
        masker = Masker(model)
        masker.set_masks(job["masks"])
        ddp = DistributedDataParallel(model, device_ids=[local_rank] if cuda else None)
        dataset = _dataset(job["data"])
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=cfg.seed)
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=8 if cuda else 0,
            pin_memory=cuda,
            drop_last=True,
        )
        fit(ddp, loader, cfg, masker=masker,
            desc=f"DDP fine-tune (rank {rank}/{world})" if rank == 0 else None)  # fmt: skip
        out = None
        if rank == 0:
            out = save_checkpoint(Path(str(job_path) + ".out.pt"), plain_state_dict(model))
        dist.barrier()
        return out
    finally:
        dist.destroy_process_group()


def launch(job_path: str | Path, nproc: int | None = None) -> dict[str, torch.Tensor]:
    """Run :func:`run_job` under torchrun on ``nproc`` processes (default: one per GPU)."""
    nproc = nproc or max(torch.cuda.device_count(), 1)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", "-m", "pruning_core.train.ddp", str(job_path),
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(
            f"DDP fine-tuning failed (exit {res.returncode}): {' '.join(cmd)}\n{res.stderr[-3000:]}"
        )
    return load_checkpoint(Path(str(job_path) + ".out.pt"))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: torchrun --nproc_per_node=N -m pruning_core.train.ddp JOB.pt")
    run_job(sys.argv[1])

