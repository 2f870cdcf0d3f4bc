"""One type for a dataset's splits, images and tables alike: :class:`Splits`.

Every loader returns one (:func:`pruning_core.data.images.load_digits_splits`,
``load_cifar10``, ``load_imagenet``, :meth:`pruning_core.data.tabular.TabularDataset.splits`) and
every consumer takes one. The four splits, each named for what it is used for:

* ``train``  -- trains and fine-tunes the network;
* ``reward`` -- what an RL agent's reward is measured on (PuRL: the validation subset held out of
  the training data; NEON: the validation split), never the test split;
* ``stop``   -- the early-stopping split, which the reward never reads. For now NEON stops early
  on the very rows its reward reads (the tabular loader sets ``stop`` to the same tensors as
  ``reward``), and the image loaders give ``stop=None``: no early-stopping split (PuRL's studies
  do not stop early). Separating the two is a later change;
* ``test``   -- touched only for reported numbers; ``None`` where a consumer must not see it (an
  environment's task).

Each split is either preloaded ``(x, y)`` tensors or a torch ``Dataset`` (CIFAR-10 / ImageNet
read from disk). A split that is the very same object as another (``stop is reward``) stays
shared through :meth:`Splits.head` and :meth:`Splits.capped`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

__all__ = [
    "SPLIT_NAMES",
    "Split",
    "Splits",
]


Split = tuple[torch.Tensor, torch.Tensor] | Dataset
"""One split: preloaded ``(x, y)`` tensors, or a torch ``Dataset`` of ``(x, y)`` items."""


SPLIT_NAMES: tuple[str, ...] = ("train", "reward", "stop", "test")
"""The splits of a :class:`Splits`, in the order row caps draw their random subsets."""


@dataclass(frozen=True, eq=False)
class Splits:
    """A dataset's ``train`` / ``reward`` / ``stop`` / ``test`` splits (see the module docstring).

    ``meta`` holds the loader's provenance (e.g. digits' normalisation ``mean`` / ``std``); its
    optional ``meta["rows"][split]`` are the source row ids of each split's rows, kept in step
    by :meth:`head` and :meth:`capped`.
    """

    name: str
    num_classes: int
    train: Split
    reward: Split
    stop: Split | None = None
    """The early-stopping split; ``None``: none (no consumer of these data stops early)."""
    test: Split | None = None
    classes: list[str] = field(default_factory=list)
    """Class names, index = label, where known (else empty)."""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError(f"{self.name}: num_classes must be >= 1, got {self.num_classes}")
        if self.classes and len(self.classes) != self.num_classes:
            raise ValueError(
                f"{self.name}: {len(self.classes)} class names for {self.num_classes} classes"
            )
        for s in SPLIT_NAMES:
            data = getattr(self, s)
            if isinstance(data, tuple):
                if len(data) != 2 or not all(isinstance(t, torch.Tensor) for t in data):
                    raise TypeError(f"{self.name}: split {s!r} must be (x, y) tensors or a Dataset")
                if len(data[0]) != len(data[1]):
                    raise ValueError(
                        f"{self.name}: split {s!r} has {len(data[0])} inputs but "
                        f"{len(data[1])} labels"
                    )
            elif data is not None and not isinstance(data, Dataset):
                raise TypeError(
                    f"{self.name}: split {s!r} must be (x, y) tensors or a Dataset, "
                    f"got {type(data).__name__}"
                )

    # --- one split ----------------------------------------------------------------------------
    def has(self, split: str) -> bool:
        """Whether ``split`` is given (``stop`` and ``test`` may be ``None``)."""
        return self._get(split, required=False) is not None

    def get(self, split: str) -> Split:
        """Split ``split`` as stored; ValueError if it is not given."""
        data = self._get(split, required=True)
        assert data is not None
        return data

    def _get(self, split: str, required: bool) -> Split | None:
        if split not in SPLIT_NAMES:
            raise KeyError(f"unknown split {split!r}: use one of {SPLIT_NAMES}")
        data = getattr(self, split)
        if data is None and required:
            what = "early-stopping" if split == "stop" else split
            raise ValueError(f"{self.name} has no {what} split ({split}=None)")
        return data

    def is_preloaded(self, split: str) -> bool:
        """True when ``split`` is held as ``(x, y)`` tensors (not a Dataset read item by item)."""
        return isinstance(self.get(split), tuple)

    def n(self, split: str) -> int:
        """Rows (images) in ``split``."""
        data = self.get(split)
        return len(data[0]) if isinstance(data, tuple) else len(data)  # type: ignore[arg-type]

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``split`` as ``(x, y)`` tensors: preloaded ones as they are (no copy), a Dataset read
        item by item into memory (meant for small splits, e.g. a reward subset)."""
        data = self.get(split)
        if isinstance(data, tuple):
            return data
        xs, ys = zip(*(data[i] for i in range(len(data))), strict=True)  # type: ignore[arg-type]
        return torch.stack(xs), torch.tensor(ys)

    def dataset(self, split: str) -> Dataset:
        """``split`` as a torch ``Dataset`` (preloaded tensors wrapped in a ``TensorDataset``)."""
        data = self.get(split)
        return TensorDataset(*data) if isinstance(data, tuple) else data

    def loader(
        self,
        split: str,
        batch_size: int = 128,
        shuffle: bool = False,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        drop_last: bool = False,
    ) -> DataLoader:
        """A DataLoader over ``split``; ``shuffle`` draws the order from a ``seed``-ed generator.

        ``pin_memory=None`` pins a Dataset split when CUDA is available, never preloaded tensors.
        """
        if pin_memory is None:
            pin_memory = torch.cuda.is_available() and not self.is_preloaded(split)
        kw: dict[str, Any] = {"num_workers": num_workers, "pin_memory": pin_memory}
        if num_workers > 0:
            kw["persistent_workers"] = True
        if shuffle:
            kw["generator"] = torch.Generator().manual_seed(seed)
        return DataLoader(
            self.dataset(split), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, **kw
        )

    def feed(
        self,
        split: str,
        batch_size: int = 128,
        shuffle: bool = False,
        seed: int = 0,
        num_workers: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor] | DataLoader:
        """``split`` as :mod:`pruning_core.train.loop` takes it: preloaded tensors as they are (the
        loop batches and shuffles them itself), a Dataset as a :meth:`loader`."""
        if self.is_preloaded(split):
            return self.tensors(split)
        return self.loader(split, batch_size, shuffle, seed, num_workers)

    def example(self, split: str = "test") -> torch.Tensor:
        """The first input of ``split`` with a batch dimension (shape probes, FLOP counts)."""
        data = self.get(split)
        return data[0][:1] if isinstance(data, tuple) else data[0][0].unsqueeze(0)

    @property
    def n_features(self) -> int:
        """Numbers in one input row (the width of a table's ``x``)."""
        return int(self.example("train")[0].numel())

    # --- fewer rows ---------------------------------------------------------------------------
    def head(self, rows: Mapping[str, int | None]) -> Splits:
        """The first ``rows[split]`` rows of the named splits (None: all), in their order."""
        return self._subset(rows, lambda n, m: np.arange(m))

    def capped(self, rows: Mapping[str, int | None], seed: int) -> Splits:
        """At most ``rows[split]`` rows of the named splits (None: all): a random subset drawn
        from one ``seed``-ed generator, split after split in :data:`SPLIT_NAMES` order, rows kept
        in their order. The same ``seed`` gives the same rows on every call."""
        rng = np.random.default_rng(seed)
        return self._subset(rows, lambda n, m: np.sort(rng.choice(n, size=m, replace=False)))

    def _subset(
        self, rows: Mapping[str, int | None], pick: Callable[[int, int], np.ndarray]
    ) -> Splits:
        unknown = set(rows) - set(SPLIT_NAMES)
        if unknown:
            raise KeyError(f"unknown splits {sorted(unknown)}: use {SPLIT_NAMES}")
        new: dict[str, Any] = {}
        kept: dict[str, np.ndarray | None] = {}
        for s in SPLIT_NAMES:
            data = getattr(self, s)
            shared = next((t for t in SPLIT_NAMES[: SPLIT_NAMES.index(s)]
                           if data is not None and getattr(self, t) is data), None)  # fmt: skip
            if shared is not None:
                if rows.get(s) is not None:
                    raise ValueError(
                        f"{self.name}: split {s!r} is the {shared!r} split; cap {shared!r} instead"
                    )
                new[s], kept[s] = new[shared], kept[shared]
                continue
            m = rows.get(s)
            if data is None or m is None or self.n(s) <= m:
                new[s], kept[s] = data, None
                continue
            idx = pick(self.n(s), m)
            kept[s] = idx
            if isinstance(data, tuple):
                t = torch.from_numpy(idx)
                new[s] = (data[0][t], data[1][t])
            else:
                new[s] = Subset(data, idx.tolist())
        meta = dict(self.meta)
        if isinstance(meta.get("rows"), Mapping):
            meta["rows"] = {
                s: r if kept.get(s) is None else np.asarray(r)[kept[s]]
                for s, r in meta["rows"].items()
            }
        return dataclasses.replace(self, **new, meta=meta)

    # --- text ---------------------------------------------------------------------------------
    def describe(self) -> str:
        """One line: name, classes and each split's size and kind."""
        parts = []
        for s in SPLIT_NAMES:
            data = getattr(self, s)
            earlier = [t for t in SPLIT_NAMES[: SPLIT_NAMES.index(s)] if getattr(self, t) is data]
            if data is None:
                parts.append(f"no {s}")
            elif earlier:
                parts.append(f"{s} = {earlier[0]}")
            else:
                kind = "tensors" if isinstance(data, tuple) else type(data).__name__
                parts.append(f"{s} {self.n(s)} ({kind})")
        return f"{self.name}: {self.num_classes} classes; " + ", ".join(parts)
