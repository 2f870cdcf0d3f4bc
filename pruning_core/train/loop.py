"""The one training loop (:func:`fit`) and the one evaluation function (:func:`evaluate`).

Every network in the package is trained by :func:`fit`: dense training and fine-tuning with
masks held (SGD or Adam, cosine schedule, fixed epochs), NEON's MLPs (Adam, early stopping on a
validation split with the best weights restored, optionally a subset of the parameters), the
PuRL environment's brief fine-tuning between pruning steps (a few SGD steps on rows drawn with
replacement) and the multi-GPU fine-tuning of :mod:`.ddp`. :class:`TrainConfig` says which: its
defaults are the dense-training profile, :meth:`TrainConfig.mlp` the MLP profile.

Every accuracy in the package is measured by :func:`evaluate` (loss, top-1 and, where asked,
top-5, in eval mode; a clear :class:`FloatingPointError` on NaN/inf outputs).

Data may be a ``DataLoader`` or a pair of preloaded tensors ``(x, y)``. Preloaded tensors are
the fast path (the RL environments and the MLPs): batches are indexed straight out of them with a
seeded ``torch.Generator``, with no loader overhead.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from pruning_core.config import progress, seeded
from pruning_core.devices import resolve_device
from pruning_core.pruning.masks import Masker

__all__ = [
    "FitResult",
    "TrainConfig",
    "evaluate",
    "fit",
    "get_device",
    "planned_steps",
    "training_batches",
]


Data = DataLoader | tuple[torch.Tensor, torch.Tensor]
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def get_device(prefer: str | None = None, profile: str = "cpu") -> torch.device:
    """The device policy's answer (:func:`pruning_core.devices.resolve_device`): ``prefer`` when
    given, else ``$DEVICE``, else ``profile``'s device (the CPU for smoke and cpu, CUDA for gpu).

    A GPU is never picked just because one is present: the small profiles mean the same on
    every machine, and ``DEVICE=cuda`` asks for one explicitly.
    """
    return resolve_device(profile, prefer)


def _param_device(model: nn.Module) -> torch.device | None:
    p = next(model.parameters(), None)
    return None if p is None else p.device


def iter_batches(data: Data | Batches, batch_size: int | None) -> Batches:
    """Batches of ``data`` in order: slices of preloaded tensors (all rows at once when
    ``batch_size`` is None), or the batches a loader / iterable of batches yields."""
    if isinstance(data, tuple):
        x, y = data
        if batch_size is None:
            if len(x):
                yield x, y
            return
        for i in range(0, len(x), batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]
    else:
        yield from data


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    data: Data | Batches,
    batch_size: int | None = 512,
    topk: Sequence[int] = (1,),
    device: torch.device | str | None = None,
    check_finite: bool = True,
    what: str = "the model",
) -> dict[str, float]:
    """Loss and top-k accuracy (fractions in [0, 1]) of ``model`` on ``data``, in eval mode.

    ``data`` is ``(x, y)`` tensors, a ``DataLoader`` or any iterable of ``(x, y)`` batches (to
    score logits computed elsewhere, pass them as the batches and ``nn.Identity()`` as the
    model). Tensors are evaluated ``batch_size`` rows at a time, or in one forward pass when it
    is None. The loss is the mean cross-entropy per row: torch's batch mean in one pass, else
    the sum over the batches divided by the rows. Top-1 is the arg-max (the first of tied
    classes); top-k with k > 1 whether the label is among the k largest outputs. Inputs go to
    ``device`` (default: the model's).

    Raises:
        ValueError: the data is empty.
        FloatingPointError: the loss is NaN or infinite (diverged weights), naming ``what`` and
            what to do; ``check_finite=False`` returns the metrics instead (early stopping).
    """
    dev = torch.device(device) if device is not None else _param_device(model)
    one_pass = batch_size is None and isinstance(data, tuple)
    k_top = max((k for k in topk if k > 1), default=0)
    was_training = model.training
    model.eval()
    n = 0
    # sums stay on the device (float64: the same additions, in the same order, as Python floats
    # of each batch's value) and are read once at the end: one host sync per call, not per batch
    sums: list[torch.Tensor] | None = None
    try:
        for x, y in iter_batches(data, batch_size):
            if dev is not None:
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            logits = model(x)
            reduction = "mean" if one_pass else "sum"
            terms = [F.cross_entropy(logits.float(), y, reduction=reduction)]
            if 1 in topk:
                terms.append((logits.argmax(1) == y).sum())
            if k_top:
                k_max = min(k_top, logits.shape[1])
                hit = logits.topk(k_max, dim=1).indices == y[:, None]
                terms += [hit[:, : min(k, k_max)].any(dim=1).sum() for k in topk if k > 1]
            batch = [t.double() for t in terms]
            sums = batch if sums is None else [s + t for s, t in zip(sums, batch, strict=True)]
            n += len(y)
    finally:
        model.train(was_training)
    if n == 0 or sums is None:
        raise ValueError("evaluate() got an empty dataset: check the split sizes.")
    values = torch.stack(sums).tolist()
    loss_sum, counts = values[0], values[1:]
    order = ([1] if 1 in topk else []) + [k for k in topk if k > 1]
    correct = dict.fromkeys(topk, 0)
    correct.update({k: int(c) for k, c in zip(order, counts, strict=True)})
    loss = loss_sum if one_pass else loss_sum / n
    if check_finite and not math.isfinite(loss):
        raise FloatingPointError(
            f"{what} gives NaN accuracy: its outputs hold NaN/inf (evaluation loss {loss}), so "
            "its weights or inputs do (training diverged?). Lower the learning rate or check "
            "the input normalisation."
        )
    out = {"loss": loss}
    out.update({f"top{k}": correct[k] / n for k in topk})
    return out


_CHOICES = {
    "optimizer": ("sgd", "adam"),
    "schedule": ("cosine", "constant"),
    "sampling": ("permutation", "replacement"),
    "monitor": ("val_loss", "val_top1"),
    "nonfinite": ("raise", "stop"),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything about one training run; the defaults are the dense-training profile.

    :meth:`mlp` is the other profile (NEON's MLPs: Adam, early stopping, best weights restored).
    """

    epochs: int | None = 10
    """Passes over the training data (at most, with early stopping); None: only ``max_steps``."""
    lr: float = 0.05
    """Peak learning rate (cosine-annealed to 0 when ``schedule='cosine'``)."""
    optimizer: str = "sgd"
    """``sgd`` (momentum, Nesterov unless ``nesterov=False``) or ``adam``."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 5e-4
    """L2 weight decay."""
    batch_size: int = 128
    """Mini-batch size when training from tensors."""
    label_smoothing: float = 0.0
    """Label smoothing of the cross-entropy (0.1 in the GMP fine-tuning recipe)."""
    schedule: str = "cosine"
    """``cosine`` (over all steps of the run) or ``constant``."""
    amp: bool = True
    """Mixed precision (bf16 autocast) on CUDA; ignored on the CPU."""
    seed: int = 0
    """Seed of the data order."""
    nesterov: bool = True
    """Nesterov momentum for ``sgd``."""
    max_steps: int | None = None
    """Cap on optimiser steps (a brief fine-tuning); None: ``epochs`` passes."""
    sampling: str = "permutation"
    """Rows of tensor data: ``permutation`` (a seeded shuffle, every row once per pass) or
    ``replacement`` (each batch drawn uniformly with replacement, from ``fit``'s ``rng``)."""
    drop_last: bool = False
    """With ``permutation``: a pass ends when fewer rows than a full batch are left (the rest
    are not used; with fewer rows than a batch, every batch is a fresh shuffle of them all)."""
    min_batch: int = 1
    """Batches of fewer rows are drawn but skipped (2: batch-norm needs two rows to train)."""
    steps_per_check: int | None = None
    """Batches drawn between two checks (validation, history row); None: one pass."""
    check_start: bool = False
    """Check the starting weights too (check 0): a candidate for the best weights."""
    patience: int | None = None
    """Checks without a better validation score before stopping early; None: never."""
    monitor: str = "val_loss"
    """``val_loss`` or ``val_top1``: the score of early stopping and ``restore_best``."""
    restore_best: bool = False
    """End with the weights of the best check (else with the last weights)."""
    nonfinite: str = "raise"
    """A NaN/inf loss: ``raise`` FloatingPointError (training or validation loss), or ``stop``
    at the check that sees it (with ``restore_best``: keep the best weights so far)."""
    eval_batch_size: int | None = 512
    """Batch size of the checks' evaluation; None: one forward pass (see :func:`evaluate`)."""

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.epochs is None and self.max_steps is None:
            raise ValueError("give epochs or max_steps (or both): the run needs a length")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    @classmethod
    def mlp(cls, **overrides: Any) -> TrainConfig:
        """The MLP profile: NEON's base networks and its fine-tuning after a pruning action.

        Adam (lr 1e-3, no weight decay, constant), batch 64 of full batches only (batch-norm:
        at least 2 rows), at most 100 epochs (the paper's), a check on the validation split
        every epoch starting with the untrained weights, early stopping on validation loss
        after 5 checks without improvement, the best weights restored (a diverged run stops
        and keeps them), each check one forward pass. ``overrides`` change any field.
        """
        return cls(**{**_MLP_PROFILE, **overrides})


_MLP_PROFILE: dict[str, Any] = dict(
    epochs=100, lr=1e-3, optimizer="adam", weight_decay=0.0, batch_size=64, schedule="constant",
    amp=False, drop_last=True, min_batch=2, check_start=True, patience=5, monitor="val_loss",
    restore_best=True, nonfinite="stop", eval_batch_size=None,
)  # fmt: skip


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` did: its checks, its steps and the validation scores it ends with."""

    rows: list[dict[str, float]] = field(repr=False)
    """One dict per check: epoch, train_loss (mean since the previous check), val_loss /
    val_top1 / val_top5 when validation data was given, seconds."""
    steps: int
    """Optimiser steps taken."""
    checks: int
    """Checks after training steps (check 0 on the starting weights not counted)."""
    val_loss: float
    """Validation loss of the weights the model ends with (NaN without validation data)."""
    val_top1: float
    """Validation top-1 of the weights the model ends with (NaN without validation data)."""

    @property
    def history(self) -> pd.DataFrame:
        """The checks as a table, one row each."""
        return pd.DataFrame(self.rows)


def _optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov,
        )  # fmt: skip
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _batches_per_pass(data: Data, cfg: TrainConfig) -> int:
    if not isinstance(data, tuple):
        return len(data)
    n = len(data[0])
    if n == 0:
        raise ValueError("fit() got no training rows: check the split sizes.")
    if min(n, cfg.batch_size) < cfg.min_batch:
        raise ValueError(
            f"every batch would have fewer than min_batch={cfg.min_batch} rows "
            f"({n} rows, batch_size {cfg.batch_size}), so none would train: use larger batches."
        )
    if cfg.sampling == "permutation" and cfg.drop_last:
        return max(1, n // cfg.batch_size)
    return math.ceil(n / cfg.batch_size)


def _batch_stream(
    data: Data, cfg: TrainConfig, gen: torch.Generator, rng: np.random.Generator | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An endless stream of training batches (see ``TrainConfig.sampling`` / ``drop_last``)."""
    if not isinstance(data, tuple):
        sampler = getattr(data, "sampler", None)
        for epoch in itertools.count():
            if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle per pass
                sampler.set_epoch(epoch)  # type: ignore[union-attr]
            yield from data
    x, y = data
    n, bs = len(x), cfg.batch_size
    if cfg.sampling == "replacement":
        rng = rng if rng is not None else np.random.default_rng(cfg.seed)
        while True:
            idx = torch.from_numpy(rng.integers(0, n, size=min(bs, n))).to(x.device)
            yield x[idx], y[idx]
    need = bs if cfg.drop_last else 1
    perm, pos = torch.randperm(n, generator=gen), 0
    while True:
        if pos + need > n:  # the pass is over: a new shuffle
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos : pos + bs]
        pos += bs
        yield x[idx], y[idx]


def planned_steps(data: Data, cfg: TrainConfig) -> tuple[int, int]:
    """Batches per pass over ``data`` and the optimiser steps :func:`fit` takes at most (before
    early stopping) as ``cfg`` says: ``epochs`` passes, capped by ``max_steps``."""
    per_pass = _batches_per_pass(data, cfg)
    total = cfg.max_steps if cfg.epochs is None else cfg.epochs * per_pass
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)  # type: ignore[type-var]
    assert total is not None
    return per_pass, total


def training_batches(
    data: Data, cfg: TrainConfig, rng: np.random.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The endless stream of training batches :func:`fit` draws for ``cfg``: the row order from
    a ``torch.Generator`` seeded with ``cfg.seed`` (or from ``rng``), so a loop that must
    reproduce ``fit`` exactly (the NEON fast path) draws the same batches."""
    return _batch_stream(data, cfg, torch.Generator().manual_seed(cfg.seed), rng)


def fit(
    model: nn.Module,
    train_data: Data,
    cfg: TrainConfig,
    val_data: Data | None = None,
    masker: Masker | None = None,
    params: Iterable[nn.Parameter] | None = None,
    device: torch.device | str | None = None,
    desc: str | None = None,
    rng: np.random.Generator | None = None,
    on_step: Callable[[int], bool] | None = None,
    evaluator: Callable[[nn.Module], dict[str, float]] | None = None,
) -> FitResult:
    """Train ``model`` on ``train_data`` as ``cfg`` says; the one training loop of the package.

    With a ``masker`` its masks are held fixed (pruned weights stay exactly zero). ``params``
    restricts training to those parameters; the others are frozen for the call (batch-norm
    statistics still update: the whole model is in train mode). Every ``cfg.steps_per_check``
    batches (default: a pass) the run is checked: a history row, with the validation loss /
    top-1 / top-5 when ``val_data`` is given, which early stopping and ``restore_best`` judge.
    ``device`` (default: where the model is) receives the model and each batch; ``desc`` shows
    a progress bar; ``rng`` is what ``sampling='replacement'`` draws rows from (an environment's
    ``np_random``; default: a generator seeded with ``cfg.seed``). The model ends in eval mode.

    Randomness comes from ``cfg.seed`` (and ``rng``) only: the batch order from a
    ``torch.Generator`` seeded with it (or from ``rng``), dropout from torch's global generator
    seeded with it for the call and put back afterwards (:func:`~pruning_core.config.seeded`),
    so the same call twice gives the same model and the caller's global RNG state is untouched.

    ``on_step(steps)`` runs after every optimiser step (e.g. gradual pruning, which changes the
    masker's masks on a schedule). It returns whether the model is *settled*: checks made while
    it is not are logged but neither count towards early stopping nor become the best weights
    (a model pruned further later must not be restored from before).

    ``evaluator(model)`` replaces ``evaluate(model, val_data)`` at the checks (it returns
    ``loss``, ``top1`` and ``top5``): DDP's, where each process scores a shard of the
    early-stopping split and the sums are all-reduced, so every process sees the same score and
    stops at the same check.
    """
    with seeded(cfg.seed):
        return _fit(model, train_data, cfg, val_data, masker, params, device, desc, rng, on_step,
                    evaluator)  # fmt: skip


def _fit(
    model: nn.Module,
    train_data: Data,
    cfg: TrainConfig,
    val_data: Data | None,
    masker: Masker | None,
    params: Iterable[nn.Parameter] | None,
    device: torch.device | str | None,
    desc: str | None,
    rng: np.random.Generator | None,
    on_step: Callable[[int], bool] | None = None,
    evaluator: Callable[[nn.Module], dict[str, float]] | None = None,
) -> FitResult:
    if masker is not None and not masker.masks:
        raise ValueError("fit() got a masker without masks: prune the model first.")
    if device is not None:
        dev = torch.device(device)
        model.to(dev)
    else:
        dev = _param_device(model) or torch.device("cpu")
    trainable = (
        [p for p in model.parameters() if p.requires_grad] if params is None else list(params)
    )
    ids = {id(p) for p in trainable}
    frozen = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    per_pass, total = planned_steps(train_data, cfg)
    check_every = cfg.steps_per_check or per_pass
    use_amp = cfg.amp and dev.type == "cuda"

    for p in frozen:
        p.requires_grad_(False)
    opt = _optimizer(trainable, cfg)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1))
        if cfg.schedule == "cosine"
        else None
    )
    hold = masker.hold(opt) if masker is not None else None
    batches = training_batches(train_data, cfg, rng)
    bar = progress(total=total, desc=desc, unit="step") if desc is not None else None

    def check() -> dict[str, float] | None:
        if evaluator is not None:
            m = evaluator(model)
            if cfg.nonfinite == "raise" and not math.isfinite(m["loss"]):
                raise FloatingPointError(f"validation loss became {m['loss']}: lower the learning rate")
            return m
        if val_data is None:
            return None
        return evaluate(
            model, val_data, cfg.eval_batch_size, topk=(1, 5), device=dev,
            check_finite=cfg.nonfinite == "raise", what="the model in training",
        )  # fmt: skip

    def score(m: dict[str, float]) -> tuple[float, float]:
        return (m["top1"], -m["loss"]) if cfg.monitor == "val_top1" else (-m["loss"], m["top1"])

    rows: list[dict[str, float]] = []
    best: tuple[float, float] = (-math.inf, -math.inf)
    best_state: dict[str, Any] | None = None
    kept: dict[str, float] = {"loss": math.nan, "top1": math.nan}
    bad = checks = steps = drawn = 0
    settled = True
    try:
        if cfg.check_start and (val_data is not None or evaluator is not None):
            t0 = time.perf_counter()
            m = check()
            assert m is not None
            kept = m
            if cfg.restore_best:
                best_state = copy.deepcopy(model.state_dict())
            if math.isfinite(m["loss"]):
                best = score(m)
            rows.append(
                {"epoch": 0, "train_loss": math.nan, **{f"val_{k}": v for k, v in m.items()},
                 "seconds": time.perf_counter() - t0}
            )  # fmt: skip
        model.train()
        while steps < total:
            t0 = time.perf_counter()
            loss_sum, seen = 0.0, 0
            for _ in range(check_every):
                x, y = next(batches)
                drawn += 1
                if len(y) < cfg.min_batch:
                    continue
                x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                with (
                    torch.autocast(dev.type, dtype=torch.bfloat16)
                    if use_amp
                    else contextlib.nullcontext()
                ):
                    loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
                if cfg.nonfinite == "raise" and not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"training loss became {float(loss.detach())} at step {steps} (pass "
                        f"{drawn // per_pass + 1}): lower the learning rate (now {cfg.lr})."
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                loss_sum += loss.detach().item() * len(y)
                seen += len(y)
                steps += 1
                if on_step is not None:
                    settled = on_step(steps)
                if bar is not None:
                    bar.update(1)
                if steps >= total:
                    break
            checks += 1
            row: dict[str, float] = {
                "epoch": -(-drawn // per_pass),
                "train_loss": loss_sum / max(seen, 1),
            }
            m = check()
            if m is not None:
                row.update({f"val_{k}": v for k, v in m.items()})
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            if bar is not None and m is not None:
                bar.set_postfix({"val_top1": round(m["top1"], 4)})
            if m is None or not settled:
                continue
            if not cfg.restore_best:
                kept = m
            if not math.isfinite(m["loss"]):
                break  # diverged (nonfinite='stop'): keep the best weights seen so far
            if score(m) > best:
                best, bad = score(m), 0
                if cfg.restore_best:
                    best_state = copy.deepcopy(model.state_dict())
                    kept = m
            else:
                bad += 1
                if cfg.patience is not None and bad >= cfg.patience:
                    break
    finally:
        if bar is not None:
            bar.close()
        for p in frozen:
            p.requires_grad_(True)
        if hold is not None:
            hold.remove()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(rows, steps, checks, float(kept["loss"]), float(kept["top1"]))
