"""NEON's lean fine-tuning loop: :func:`~pruning_core.train.loop.fit`'s arithmetic without its
overhead, so the fast path (:class:`~pruning_core.rl.envs.neon_batched.NeonBatch`) gives the
env's rewards bit for bit at a fraction of the cost.

:func:`finetune_like_fit` runs the same batches, kernels (in the same order), autograd and Adam
arithmetic as ``fit``, without the optimiser object, module-call overhead, full ``state_dict``
deep copies and per-step bookkeeping. Scope: Adam with a constant learning rate (the MLP
profile, :meth:`~pruning_core.train.loop.TrainConfig.mlp`); others are refused.

**Where the time goes.** Profiled on one thread with the benchmark's MLP (256/256/128 on
breast_cancer), an env step is about 80% fine-tuning (up to 60 Adam steps on batches of 64
rows) and 15% observation. The Adam steps are compute bound: their matrix products run near the
core's peak (about 75 GFLOP/s here), and the backward pass, the forward products and the Adam
updates are most of each step; the training loop's own overhead is about a third.

**Why not a batched, masked network.** Stepping ``E`` episodes as one computation (weights with
a leading episode dimension, ``bmm``, neurons masked to a common width) was measured first: per
episode an Adam step cost 1.44 / 1.18 / 1.15 ms at E = 8 / 32 / 64 against 0.88 ms one episode
at a time (unpruned widths, first layer), so on a CPU it buys nothing, and a padded inner
dimension changes the products' summation order (differences of 2e-5 measured), so the rewards
would drift from the env's. (On a GPU, where a small MLP leaves the device idle, it would pay.)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pruning_core.config import seeded
from pruning_core.models.mlp import MLP
from pruning_core.train.loop import TrainConfig, evaluate, planned_steps, training_batches

__all__ = ["check_config", "finetune_like_fit"]

_ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, which fit uses
_ADAM_EPS = 1e-8


def check_config(cfg: TrainConfig) -> None:
    """Refuse fine-tuning configs the lean loop does not reproduce."""
    if cfg.optimizer != "adam" or cfg.schedule != "constant":
        raise ValueError(
            "the NEON fast path reproduces fit() with Adam and a constant learning rate (the "
            f"MLP profile); got optimizer={cfg.optimizer!r}, schedule={cfg.schedule!r}"
        )


def finetune_like_fit(
    model: nn.Module,
    params: Sequence[nn.Parameter],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    cfg: TrainConfig,
) -> int:
    """Train ``params`` of ``model`` exactly as ``fit(model, train, cfg, val_data=val,
    params=params)`` does (same batches, dropout draws, gradients, Adam updates, checks, early
    stopping and restored weights), on preloaded tensors and with less overhead; returns the
    optimiser steps taken. Adam with a constant learning rate only (see :func:`check_config`).

    It keeps its own Adam state (``torch.optim.Adam``'s single-tensor update, op for op, which is
    what ``fit`` runs on a CPU) and saves the trainable parameters and the buffers at the best
    check instead of deep-copying the whole ``state_dict``.
    """
    check_config(cfg)
    with seeded(cfg.seed):  # dropout draws from the global generator, as in fit
        return _finetune(model, [p for p in params if p.requires_grad], train, val, cfg)


def _adam_update(
    p: torch.Tensor,
    g: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    denom: torch.Tensor,
    step: float,
    cfg: TrainConfig,
) -> None:
    """One Adam update of ``p``, the arithmetic of ``torch.optim.adam._single_tensor_adam``."""
    beta1, beta2 = _ADAM_BETAS
    if cfg.weight_decay != 0:
        g = g.add(p, alpha=cfg.weight_decay)
    m.lerp_(g, 1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = cfg.lr / bias_correction1
    torch.sqrt(v, out=denom)
    denom.div_(bias_correction2**0.5).add_(_ADAM_EPS)
    p.addcdiv_(m, denom, value=-step_size)


def _train_forward(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model``'s forward as the same tensor ops in the same order (an :class:`MLP`: linear,
    batch-norm module, activation, mask, dropout), without the per-module call overhead; any
    other module is called as it is. The model must be in train mode (batch-norm)."""
    if not isinstance(model, MLP):
        return model
    plan = []
    for b in model.blocks:
        act = b.act
        fn = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid}.get(type(act))
        if fn is None or getattr(act, "inplace", False):
            fn = act
        p = b.dropout.p if b.dropout is not None else 0.0
        plan.append((b.linear.weight, b.linear.bias, b.bn, fn, b.neuron_mask, p))
    head_w, head_b = model.head.weight, model.head.bias

    def forward(x: torch.Tensor) -> torch.Tensor:
        for w, bias, bn, fn, mask, p in plan:
            x = F.linear(x, w, bias)
            if bn is not None:
                x = bn(x)
            x = fn(x)
            if mask is not None:
                x = x * mask
            if p > 0:
                x = torch.dropout(x, p, True)  # what nn.Dropout runs in train mode
        return F.linear(x, head_w, head_b)

    return forward


@torch.no_grad()
def _snapshot(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().clone() for t in tensors]


def _finetune(
    model: nn.Module,
    trainable: list[nn.Parameter],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    cfg: TrainConfig,
) -> int:
    """The body of :func:`finetune_like_fit` (``fit``'s ``_fit`` without what NEON never uses:
    maskers, step callbacks, schedules, progress bars, the history table)."""
    p0 = next(model.parameters())
    dev = p0.device
    train = (train[0].to(dev), train[1].to(dev))
    if val is not None:
        val = (val[0].to(dev), val[1].to(dev))
    ids = {id(p) for p in trainable}
    frozen = [p for p in model.parameters() if id(p) not in ids and p.requires_grad]
    state = [*trainable, *(b for b in model.buffers() if b is not None)]
    _per_pass, total = planned_steps(train, cfg)
    check_every = cfg.steps_per_check or _per_pass
    use_amp = cfg.amp and dev.type == "cuda"
    batches = training_batches(train, cfg)
    m_avg = [torch.zeros_like(p) for p in trainable]
    v_avg = [torch.zeros_like(p) for p in trainable]
    denom = [torch.empty_like(p) for p in trainable]
    n_steps = [0.0] * len(trainable)

    def check() -> dict[str, float] | None:
        if val is None:
            return None
        return evaluate(
            model, val, cfg.eval_batch_size, device=dev, check_finite=cfg.nonfinite == "raise",
            what="the model in training",
        )  # fmt: skip

    def score(m: dict[str, float]) -> tuple[float, float]:
        return (m["top1"], -m["loss"]) if cfg.monitor == "val_top1" else (-m["loss"], m["top1"])

    best: tuple[float, float] = (-math.inf, -math.inf)
    best_state: list[torch.Tensor] | None = None
    bad = steps = 0
    for p in frozen:
        p.requires_grad_(False)
    try:
        if cfg.check_start and val is not None:
            m = check()
            assert m is not None
            if cfg.restore_best:
                best_state = _snapshot(state)
            if math.isfinite(m["loss"]):
                best = score(m)
        model.train()
        forward = _train_forward(model)
        while steps < total:
            for _ in range(check_every):
                x, y = next(batches)
                if len(y) < cfg.min_batch:
                    continue
                with (
                    torch.autocast(dev.type, dtype=torch.bfloat16)
                    if use_amp
                    else contextlib.nullcontext()
                ):
                    loss = F.cross_entropy(forward(x), y, label_smoothing=cfg.label_smoothing)
                if cfg.nonfinite == "raise" and not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"training loss became {float(loss.detach())} at step {steps}: lower the "
                        f"learning rate (now {cfg.lr})."
                    )
                grads = torch.autograd.grad(loss, trainable, allow_unused=True)
                with torch.no_grad():
                    for i, (p, g) in enumerate(zip(trainable, grads, strict=True)):
                        if g is None:  # no gradient: Adam skips the parameter (fit: grad None)
                            continue
                        n_steps[i] += 1.0
                        _adam_update(p, g, m_avg[i], v_avg[i], denom[i], n_steps[i], cfg)
                steps += 1
                if steps >= total:
                    break
            m = check()
            if m is None:
                continue
            if not math.isfinite(m["loss"]):
                break  # diverged (nonfinite='stop'): keep the best weights seen so far
            if score(m) > best:
                best, bad = score(m), 0
                if cfg.restore_best:
                    best_state = _snapshot(state)
            else:
                bad += 1
                if cfg.patience is not None and bad >= cfg.patience:
                    break
    finally:
        for p in frozen:
            p.requires_grad_(True)
    if best_state is not None:
        with torch.no_grad():
            for t, saved in zip(state, best_state, strict=True):
                t.copy_(saved)
    model.eval()
    return steps
