"""Data splits held as preloaded tensors."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from pruning_core.data.tabular import load_tabular

__all__ = [
    "MLPData",
]


@dataclass
class MLPData:
    """Preloaded float32 / int64 tensors of one dataset's three splits (rows capped)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @property
    def n_features(self) -> int:
        """Input features."""
        return int(self.x_train.shape[1])

    @classmethod
    def from_tabular(
        cls,
        name: str,
        seed: int = 0,
        max_train_rows: int | None = None,
        max_val_rows: int | None = None,
        max_test_rows: int | None = None,
    ) -> MLPData:
        """Load suite dataset ``name`` (:func:`pruning_core.data.tabular.load_tabular`) as tensors.

        Row caps take a fixed-seed random subset of a split (the same subset for every call).
        """

        ds = load_tabular(name, seed=seed)
        rng = np.random.default_rng(zlib.crc32(name.encode()) + seed)

        def cap(x: np.ndarray, y: np.ndarray, m: int | None) -> tuple[torch.Tensor, torch.Tensor]:
            if m is not None and len(y) > m:
                idx = np.sort(rng.choice(len(y), size=m, replace=False))
                x, y = x[idx], y[idx]
            return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)

        xt, yt = cap(ds.X_train, ds.y_train, max_train_rows)
        xv, yv = cap(ds.X_val, ds.y_val, max_val_rows)
        xs, ys = cap(ds.X_test, ds.y_test, max_test_rows)
        return cls(name, xt, yt, xv, yv, xs, ys, ds.n_classes)

