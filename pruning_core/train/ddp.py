"""Fine-tuning with masks fixed on several GPUs through ``torch.distributed`` (DDP).

Launched with torchrun, one process per GPU::

    torchrun --standalone --nproc_per_node=8 -m pruning_core.train.ddp JOB.pt

``JOB.pt`` (written by :func:`write_job`) holds the model name, the starting weights (masks
applied, batch-norm already recalibrated), the masks, the fine-tuning config and where the data
are; the job follows the single-GPU protocol: early stopping on the ``stop`` split (each process
scores a shard, the sums are all-reduced, so every process stops at the same check), the best
weights restored, masks held. Rank 0 writes the result (a plain state_dict on the CPU, zeros in
place, with the checks' history and a checksum of every rank's weights) to ``JOB.out.pt``.
:func:`launch` does both steps from Python. Without CUDA the same code runs on the CPU with the
``gloo`` backend, which is how the tests exercise it.
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
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

from pruning_core.data.images import load_imagenet
from pruning_core.devices import set_cuda_determinism, to_cpu
from pruning_core.models.cnn import build_model
from pruning_core.pruning.criteria import Masks
from pruning_core.pruning.export import plain_state_dict
from pruning_core.pruning.masks import Masker
from pruning_core.runs import load_checkpoint, save_checkpoint
from pruning_core.train.loop import TrainConfig, fit

LOADER_WORKERS = 8
"""DataLoader workers per process for data read from disk (torchrun's processes may fork)."""


def write_job(
    path: str | Path,
    model: str,
    num_classes: int,
    state: dict[str, torch.Tensor],
    masks: Masks,
    cfg: TrainConfig,
    data: dict[str, Any],
    small_input: bool = False,
) -> Path:
    """Save everything a DDP fine-tuning needs into one checkpoint file (tensors on the CPU).

    ``state`` is where the fine-tuning starts (the pruned network, batch-norm recalibrated);
    ``masks`` may be empty (the dense control). ``data`` is ``{"dataset": "imagenet",
    "data_root", "val_size", "stop_size", "seed", "train_size"}`` (the study's own splits, which
    the job rebuilds and checks by size) or ``{"tensors": (x, y), "stop_tensors": (x, y)}``.
    """
    return save_checkpoint(
        path,
        to_cpu({
            "model": model,
            "num_classes": num_classes,
            "small_input": small_input,
            "state": state,
            "masks": masks,
            "cfg": asdict(cfg),
            "data": data,
        }),
    )  # fmt: skip


def _datasets(data: dict[str, Any]) -> tuple[Dataset, Dataset | None]:
    """The job's train split and its early-stopping split (None: no early stopping)."""
    if "tensors" in data:
        stop = data.get("stop_tensors")
        return TensorDataset(*data["tensors"]), TensorDataset(*stop) if stop is not None else None
    if data.get("dataset") == "imagenet":
        d = load_imagenet(
            data.get("data_root"), val_size=data["val_size"], stop_size=data.get("stop_size", 0),
            seed=data.get("seed", 0),
        )  # fmt: skip
        if "train_size" in data and d.n("train") != data["train_size"]:
            raise ValueError(
                f"the DDP job's ImageNet train split has {d.n('train')} images, the study's "
                f"{data['train_size']}: the two loaded different splits"
            )
        return d.train, d.stop  # type: ignore[return-value]
    raise ValueError(f"unknown DDP data spec {sorted(data)}: give 'tensors' or dataset='imagenet'")


def _dataset(data: dict[str, Any]) -> Dataset:
    """The job's training split (see :func:`_datasets`)."""
    return _datasets(data)[0]


def _sharded_evaluate(
    module: nn.Module, loader: DataLoader, device: torch.device
) -> dict[str, float]:
    """Loss, top-1 and top-5 over the whole split: this process scores its shard, the sums of
    every process are all-reduced (the same numbers on every rank). Batch-norm statistics come
    from rank 0 first, so every shard is scored by the same network."""
    with torch.no_grad():
        for b in module.buffers():
            dist.broadcast(b, 0)
    was_training = module.training
    module.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)
    try:
        with torch.inference_mode():
            _score(module, loader, device, sums)
    finally:
        module.train(was_training)
    dist.all_reduce(sums)
    loss, c1, c5, n = sums.tolist()
    if n == 0:
        raise ValueError("the DDP job's early-stopping split is empty")
    return {"loss": loss / n, "top1": c1 / n, "top5": c5 / n}


def _score(module: nn.Module, loader: DataLoader, device: torch.device, sums: torch.Tensor) -> None:
    """Add this process's loss sum, top-1 and top-5 hits and row count to ``sums``."""
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = module(x).float()
        top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices == y[:, None]
        sums += torch.stack([
            F.cross_entropy(logits, y, reduction="sum").double(),
            (logits.argmax(1) == y).sum().double(), top5.any(dim=1).sum().double(),
            torch.tensor(float(len(y)), dtype=torch.float64, device=device),
        ])  # fmt: skip


def _checksum(module: nn.Module) -> float:
    return float(sum(float(p.detach().double().sum()) for p in module.parameters()))


def run_job(job_path: str | Path) -> Path | None:
    """The body of one DDP process: :func:`~pruning_core.train.loop.fit` on the DDP-wrapped
    model with masks held (none for the dense control), one shard of every epoch per process,
    early stopping on the sharded ``stop`` split with the best weights restored; rank 0 saves
    the result."""
    job = load_checkpoint(job_path)
    cuda = torch.cuda.is_available()
    if cuda:
        set_cuda_determinism()
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
        model.load_state_dict(job["state"])
        model.to(device)
        masker = Masker(model)
        masker.set_masks(job["masks"], from_dense=False)  # the state is already masked
        ddp = DistributedDataParallel(model, device_ids=[local_rank] if cuda else None)
        train, stop = _datasets(job["data"])
        from_disk = not isinstance(train, TensorDataset)
        workers = LOADER_WORKERS if from_disk else 0
        sampler = DistributedSampler(train, num_replicas=world, rank=rank, seed=cfg.seed)
        loader = DataLoader(
            train, batch_size=cfg.batch_size, sampler=sampler, num_workers=workers,
            pin_memory=cuda, drop_last=True, persistent_workers=workers > 0,
        )  # fmt: skip
        evaluator = None
        if stop is not None:
            shard = Subset(stop, range(rank, len(stop), world))  # every image once over the ranks
            stop_loader = DataLoader(shard, batch_size=cfg.eval_batch_size or 256,
                                     num_workers=workers, pin_memory=cuda)  # fmt: skip

            def evaluator(_m: nn.Module) -> dict[str, float]:
                return _sharded_evaluate(model, stop_loader, device)

        res = fit(
            ddp, loader, cfg, masker=masker if masker.masks else None, evaluator=evaluator,
            desc=f"DDP fine-tune (rank {rank}/{world})" if rank == 0 else None,
        )  # fmt: skip
        sums = torch.tensor([_checksum(model)], dtype=torch.float64, device=device)
        gathered = [torch.zeros_like(sums) for _ in range(world)]
        dist.all_gather(gathered, sums)
        out = None
        if rank == 0:
            out = save_checkpoint(Path(str(job_path) + ".out.pt"), to_cpu({
                "state": plain_state_dict(model), "rows": res.rows, "steps": res.steps,
                "checks": res.checks, "val_loss": res.val_loss, "val_top1": res.val_top1,
                "rank_checksums": [float(g) for g in gathered],
            }))  # fmt: skip
        dist.barrier()
        return out
    finally:
        dist.destroy_process_group()


def launch(job_path: str | Path, nproc: int | None = None) -> dict[str, Any]:
    """Run :func:`run_job` under torchrun on ``nproc`` processes (default: one per GPU); returns
    rank 0's result: ``state`` (a plain state_dict on the CPU), the checks' ``rows``, ``steps``,
    ``checks``, the final ``val_loss`` / ``val_top1`` and every rank's ``rank_checksums``."""
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
