"""Train, evaluate (top-1 / top-5) and fine-tune with masks held fixed.

Data may be given as a ``DataLoader`` or as a pair of preloaded tensors ``(x, y)``; preloaded
tensors are what the RL environments use, because a reward is one evaluation of the validation
subset and the loader overhead would dominate a small network.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from pruning_core.config import progress, seed_everything
from pruning_core.pruning.masks import Masker

__all__ = [
    "MLPTrainConfig",
    "TrainConfig",
    "accuracy",
    "evaluate",
    "fine_tune",
    "fit",
    "get_device",
    "seed_everything",
    "train_mlp",
]


Data = DataLoader | tuple[torch.Tensor, torch.Tensor]


def get_device(prefer: str | None = None) -> torch.device:
    """CUDA when present (or ``prefer`` when given), else the CPU."""
    if prefer is not None:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def iter_batches(data: Data, batch_size: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(data, tuple):
        x, y = data
        for i in range(0, len(x), batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]
    else:
        yield from data


def _len(data: Data) -> int:
    return len(data[0]) if isinstance(data, tuple) else len(data.dataset)  # type: ignore[arg-type]


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    data: Data,
    device: torch.device | str | None = None,
    batch_size: int = 512,
    topk: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """Loss and top-k accuracy (fractions in [0, 1]) of ``model`` on ``data``, in eval mode.

    Raises:
        ValueError: the data is empty.
        FloatingPointError: the loss is NaN or infinite (diverged weights), with what to do.
    """
    if _len(data) == 0:
        raise ValueError("evaluate() got an empty dataset: check the split sizes.")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    n = 0
    loss_sum = 0.0
    correct = dict.fromkeys(topk, 0)
    try:
        for x, y in iter_batches(data, batch_size):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits.float(), y, reduction="sum"))
            k_max = min(max(topk), logits.shape[1])
            pred = logits.topk(k_max, dim=1).indices
            hit = pred == y[:, None]
            for k in topk:
                correct[k] += int(hit[:, : min(k, k_max)].any(dim=1).sum())
            n += len(y)
    finally:
        model.train(was_training)
    loss = loss_sum / n
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"evaluation loss is {loss}: the model's weights or inputs hold NaN/inf (training "
            "diverged?). Lower the learning rate or check the input normalisation."
        )
    out = {"loss": loss}
    out.update({f"top{k}": correct[k] / n for k in topk})
    return out


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of dense training and fine-tuning."""

    epochs: int = 10
    """Passes over the training data."""
    lr: float = 0.05
    """Peak learning rate (cosine-annealed to 0 when ``schedule='cosine'``)."""
    optimizer: str = "sgd"
    """``sgd`` (with Nesterov momentum) or ``adam``."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 5e-4
    """L2 weight decay."""
    batch_size: int = 128
    """Mini-batch size when training from tensors."""
    label_smoothing: float = 0.0
    """Label smoothing of the cross-entropy (0.1 in the GMP fine-tuning recipe)."""
    schedule: str = "cosine"
    """``cosine`` or ``constant``."""
    amp: bool = True
    """Mixed precision (bf16 autocast) on CUDA; ignored on the CPU."""
    seed: int = 0
    """Seed of the data order."""


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}: use 'sgd' or 'adam'")


def _train_batches(
    data: Data, cfg: TrainConfig, generator: torch.Generator
) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    if isinstance(data, tuple):
        x, y = data
        perm = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            yield x[idx], y[idx]
    else:
        yield from data


def fit(
    model: nn.Module,
    train_data: Data,
    cfg: TrainConfig,
    val_data: Data | None = None,
    masker: Masker | None = None,
    device: torch.device | str | None = None,
    desc: str = "train",
    max_steps: int | None = None,
) -> pd.DataFrame:
    """Train ``model``; with a ``masker`` its masks are held fixed (pruned weights stay zero).

    Returns one row per epoch: train loss, validation loss / top-1 / top-5 when ``val_data`` is
    given, and seconds. ``max_steps`` caps the number of optimiser steps (for a brief
    fine-tuning inside an RL step).
    """
    device = get_device() if device is None else torch.device(device)
    model.to(device)
    opt = _optimizer(model, cfg)
    n_batches = (
        math.ceil(_len(train_data) / cfg.batch_size)
        if isinstance(train_data, tuple)
        else len(train_data)
    )
    total = cfg.epochs * n_batches if max_steps is None else min(max_steps, cfg.epochs * n_batches)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1))
        if cfg.schedule == "cosine"
        else None
    )
    hold = masker.hold(opt) if masker is not None else None
    use_amp = cfg.amp and device.type == "cuda"
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    step = 0
    bar = progress(total=total, desc=desc, unit="step")
    model.train()
    try:
        for epoch in range(cfg.epochs):
            t0 = time.perf_counter()
            loss_sum, seen = 0.0, 0
            for x, y in _train_batches(train_data, cfg, gen):
                if step >= total:
                    break
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"training loss became {float(loss)} at epoch {epoch}, step {step}: "
                        f"lower the learning rate (now {cfg.lr})."
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                loss_sum += loss.detach().item() * len(y)
                seen += len(y)
                step += 1
                bar.update(1)
            row = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1)}
            if val_data is not None:
                row.update({f"val_{k}": v for k, v in evaluate(model, val_data, device).items()})
            row["seconds"] = time.perf_counter() - t0
            history.append(row)
            bar.set_postfix({k: round(v, 4) for k, v in row.items() if k.startswith("val_top1")})
            if step >= total:
                break
    finally:
        bar.close()
        if hold is not None:
            hold.remove()
    return pd.DataFrame(history)


def fine_tune(
    model: nn.Module,
    masker: Masker,
    train_data: Data,
    cfg: TrainConfig,
    val_data: Data | None = None,
    device: torch.device | str | None = None,
    desc: str = "fine-tune",
    max_steps: int | None = None,
) -> pd.DataFrame:
    """Fine-tune a pruned model with its masks held fixed (see :func:`fit`)."""
    if not masker.masks:
        raise ValueError("fine_tune() got a masker without masks: prune the model first.")
    return fit(
        model,
        train_data,
        cfg,
        val_data,
        masker=masker,
        device=device,
        desc=desc,
        max_steps=max_steps,
    )


@dataclass(frozen=True)
class MLPTrainConfig:
    """Training of base networks and the brief fine-tuning after a pruning action."""

    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 64
    """Mini-batch size."""
    max_epochs: int = 100
    """Most passes over the training rows (the paper trains 100 epochs)."""
    steps_per_check: int | None = None
    """Optimiser steps between two validation checks; None = one epoch."""
    patience: int = 5
    """Checks without a better validation score before stopping early."""
    max_steps: int | None = None
    """Cap on optimiser steps (a brief fine-tuning); None = ``max_epochs`` epochs."""
    monitor: str = "val_loss"
    """``val_loss`` or ``val_acc``: the early-stopping score (the best weights are restored)."""
    weight_decay: float = 0.0
    """Adam weight decay."""
    seed: int = 0
    """Seed of the mini-batch order."""

    def __post_init__(self) -> None:
        if self.monitor not in ("val_loss", "val_acc"):
            raise ValueError(f"monitor must be 'val_loss' or 'val_acc', got {self.monitor!r}")


@torch.inference_mode()
def _eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    was = model.training
    model.eval()
    try:
        logits = model(x)
        loss = float(F.cross_entropy(logits, y))
        acc = int((logits.argmax(1) == y).sum()) / len(y)
    finally:
        model.train(was)
    return loss, acc


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy (a fraction) in eval mode; FloatingPointError when the outputs are NaN."""
    if len(y) == 0:
        raise ValueError("accuracy() got no rows")
    loss, acc = _eval(model, x, y)
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"the network's loss is {loss} (NaN/inf outputs): its weights diverged; lower the "
            "fine-tuning learning rate."
        )
    return acc


def _adam(params: list[nn.Parameter], cfg: MLPTrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_mlp(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    cfg: MLPTrainConfig,
    params: Iterable[nn.Parameter] | None = None,
    masker: Masker | None = None,
) -> dict[str, float]:
    """Train with Adam and early stopping on the validation split; restore the best weights.

    The starting weights count as a candidate (check 0), so the result is never worse on the
    monitored validation score than the network it started from. ``params`` restricts training
    to some parameters (NEON fine-tunes only the changed layers by default); the others are
    frozen for the call. With a ``masker`` its weight masks are held fixed (the GMP baseline).
    Returns the best validation accuracy and loss, checks and steps run.
    """
    params = list(model.parameters()) if params is None else list(params)
    trainable = {id(p) for p in params}
    frozen = [p for p in model.parameters() if id(p) not in trainable and p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    opt = _adam(params, cfg)
    hold = masker.hold(opt) if masker is not None else None
    n = len(x_train)
    gen = torch.Generator().manual_seed(cfg.seed)
    per_epoch = max(1, n // cfg.batch_size)
    check_every = cfg.steps_per_check or per_epoch
    max_steps = cfg.max_epochs * per_epoch
    if cfg.max_steps is not None:
        max_steps = min(max_steps, cfg.max_steps)

    def score(loss: float, acc: float) -> tuple[float, float]:
        return (acc, -loss) if cfg.monitor == "val_acc" else (-loss, acc)

    loss0, acc0 = _eval(model, x_val, y_val)
    best = score(loss0, acc0) if math.isfinite(loss0) else (-math.inf, -math.inf)
    best_state = copy.deepcopy(model.state_dict())
    best_loss, best_acc = loss0, acc0
    bad = checks = step = 0
    perm = torch.randperm(n, generator=gen)
    pos = 0
    model.train()
    try:
        while step < max_steps:
            for _ in range(check_every):
                if pos + cfg.batch_size > n:
                    perm = torch.randperm(n, generator=gen)
                    pos = 0
                idx = perm[pos : pos + cfg.batch_size]
                pos += cfg.batch_size
                if len(idx) < 2:  # batch-norm needs two rows
                    continue
                loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if step >= max_steps:
                    break
            checks += 1
            vloss, vacc = _eval(model, x_val, y_val)
            if not math.isfinite(vloss):
                break  # diverged: keep the best weights seen so far
            s = score(vloss, vacc)
            if s > best:
                best, bad = s, 0
                best_state = copy.deepcopy(model.state_dict())
                best_loss, best_acc = vloss, vacc
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
    finally:
        for p in frozen:
            p.requires_grad_(True)
        if hold is not None:
            hold.remove()
    model.load_state_dict(best_state)
    model.eval()
    return {"val_acc": best_acc, "val_loss": best_loss, "checks": checks, "steps": step}

