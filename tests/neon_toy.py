"""A tiny trained MLP task and a fast NEON env config, shared by the NEON agent tests."""

from __future__ import annotations

import torch

from pruning_core.data.splits import Splits
from pruning_core.models.mlp import MLPSpec, build_mlp
from pruning_core.rl.envs.neon import NeonEnvConfig, NeonTask
from pruning_core.train.loop import TrainConfig, fit


def toy_task(seed: int = 0, width: int = 12) -> NeonTask:
    """A one-hidden-layer MLP of ``width`` neurons trained briefly on a 3-class toy table."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(160, 5, generator=g)
    y = ((x[:, 0] + x[:, 1]) * 1.5).long().clamp(max=2)
    train, val = (x[:110], y[:110]), (x[110:], y[110:])
    model = build_mlp(MLPSpec(5, 3, (width,), ("relu",), (False,), (0.0,)), seed=seed)
    fit(model, train, TrainConfig.mlp(lr=1e-2, epochs=6), val_data=val)
    return NeonTask.from_model(model, Splits("toy", 3, train=train, reward=val, stop=val), "toy")


TOY_CFG = NeonEnvConfig(
    passes=1, C_values=(50.0,), stat_rows=40,
    ft=TrainConfig.mlp(max_steps=2, steps_per_check=1, patience=1, monitor="val_top1"),
)  # fmt: skip
"""One pass, one C, two fine-tuning steps per action: episodes in milliseconds."""
