"""Image datasets for pruning experiments: digits (offline), CIFAR-10 and ImageNet (local paths).

Every loader returns a :class:`~pruning_core.data.splits.Splits` with three disjoint splits:

* ``train``  -- used to (re)train / fine-tune the network;
* ``reward`` -- held out of the training data with a fixed seed; this is what an RL
  agent's reward is computed on, so the agent never sees the test set;
* ``test``   -- only for reported numbers (the official test / val set where one exists);

and ``stop=None``: no early-stopping split (nothing trained on these data stops early).

Nothing here downloads anything: digits ship with scikit-learn, CIFAR-10 and ImageNet
must already be on disk (the errors say where they were looked for and how to provide them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import datasets, transforms

from pruning_core.data.splits import Splits

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TransformedSubset",
    "data_root_from_env",
    "holdout_indices",
    "load_cifar10",
    "load_digits_splits",
    "load_imagenet",
]


CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)


CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)


IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)


IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


CIFAR10_FOLDER = "cifar-10-batches-py"


CIFAR10_FILES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)


DATA_ROOT_ENV = "DATA_ROOT"


class TransformedSubset(Dataset):
    """A subset of a PIL-returning dataset with its own transform.

    Lets train (augmented) and validation (plain) share one underlying dataset that was
    scanned / loaded only once. ``indices`` are positions in ``base``.
    """

    def __init__(
        self, base: Dataset, indices: Sequence[int], transform: Callable | None = None
    ) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        img, target = self.base[int(self.indices[i])]
        if self.transform is not None:
            img = self.transform(img)
        return img, target


def holdout_indices(
    targets: Sequence[int],
    val_size: int | None = None,
    seed: int = 0,
    val_per_class: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, class-stratified split of ``range(len(targets))`` into (train_idx, val_idx).

    Either ``val_per_class`` images of every class, or ``val_size`` images in total spread
    over classes in proportion to their frequency. Both returned arrays are sorted.
    """
    y = np.asarray(targets)
    n = len(y)
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    if val_per_class is not None:
        val_parts = []
        for c in classes:
            members = np.flatnonzero(y == c)
            if val_per_class >= len(members):
                raise ValueError(
                    f"val_per_class={val_per_class} leaves no training image for class {c} "
                    f"({len(members)} images)"
                )
            val_parts.append(rng.permutation(members)[:val_per_class])
        val_idx = np.concatenate(val_parts) if val_parts else np.empty(0, dtype=np.int64)
    else:
        if val_size is None or not 0 < val_size < n:
            raise ValueError(f"val_size must be in (0, {n}), got {val_size}")
        # Interleave the classes: the k-th (shuffled) member of class c gets key (k + 0.5) / n_c,
        # so the first val_size keys are spread over classes proportionally to their size.
        keys = np.empty(n, dtype=np.float64)
        for c in classes:
            members = rng.permutation(np.flatnonzero(y == c))
            keys[members] = (np.arange(len(members)) + 0.5) / len(members)
        tie_break = rng.random(n)
        order = np.lexsort((tie_break, keys))
        val_idx = order[:val_size]
    val_idx = np.sort(val_idx).astype(np.int64)
    train_mask = np.ones(n, dtype=bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask).astype(np.int64), val_idx


def load_digits_splits(
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.25,
    image_size: int = 8,
    channels: int = 3,
) -> Splits:
    """scikit-learn's 8x8 handwritten digits as seeded, stratified, normalised tensor splits.

    Pixels (0..16) are scaled to [0, 1], optionally bilinearly resized to ``image_size``,
    replicated to ``channels`` channels (3 so torchvision models accept them) and normalised
    with the mean / std of the train split only (no information leaks from reward / test).
    ``val_fraction`` sizes the ``reward`` split. ``meta`` holds ``rows`` (each split's row ids
    in ``sklearn.datasets.load_digits()``) and the normalisation ``mean`` / ``std``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"need 0 < val_fraction, test_fraction and their sum < 1, got {val_fraction}, "
            f"{test_fraction}"
        )
    if image_size < 1 or channels < 1:
        raise ValueError(f"image_size and channels must be >= 1, got {image_size}, {channels}")

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0  # (N, 8, 8)
    labels = digits.target.astype(np.int64)
    all_idx = np.arange(len(labels))

    rest_idx, test_idx = train_test_split(
        all_idx, test_size=test_fraction, random_state=seed, stratify=labels
    )
    train_idx, val_idx = train_test_split(
        rest_idx,
        test_size=val_fraction / (1.0 - test_fraction),
        random_state=seed,
        stratify=labels[rest_idx],
    )
    train_idx, val_idx, test_idx = (
        np.sort(i).astype(np.int64) for i in (train_idx, val_idx, test_idx)
    )

    x_all = torch.from_numpy(images).unsqueeze(1)  # (N, 1, 8, 8)
    if image_size != x_all.shape[-1]:
        x_all = F.interpolate(
            x_all, size=(image_size, image_size), mode="bilinear", align_corners=False
        )
    x_train_raw = x_all[torch.from_numpy(train_idx)]
    mean = float(x_train_raw.mean())
    std = float(x_train_raw.std())
    x_all = ((x_all - mean) / std).expand(-1, channels, -1, -1).contiguous()
    y_all = torch.from_numpy(labels)

    def take(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.from_numpy(idx)
        return x_all[t].clone(), y_all[t].clone()

    return Splits(
        name=f"digits{image_size}x{image_size}",
        num_classes=10,
        train=take(train_idx),
        reward=take(val_idx),
        test=take(test_idx),
        classes=[str(c) for c in range(10)],
        meta={
            "rows": {"train": train_idx, "reward": val_idx, "test": test_idx},
            "mean": mean,
            "std": std,
        },
    )


def _resolve_root(root: str | os.PathLike[str] | None) -> Path:
    return data_root_from_env() if root is None else Path(root).expanduser()


class _UncheckedCIFAR10(datasets.CIFAR10):
    """torchvision's CIFAR10 that checks the files exist but not their md5 sums."""

    train_list = [[name, None] for name, _ in datasets.CIFAR10.train_list]
    test_list = [[name, None] for name, _ in datasets.CIFAR10.test_list]
    meta = {**datasets.CIFAR10.meta, "md5": None}


def load_cifar10(
    root: str | os.PathLike[str] | None = None,
    val_size: int = 5000,
    seed: int = 0,
    augment: bool = True,
    verify_checksums: bool = True,
) -> Splits:
    """CIFAR-10 from ``<root>/cifar-10-batches-py`` (never downloaded).

    ``reward`` is a seeded, class-stratified hold-out of ``val_size`` images from the official
    train set (eval transform), ``train`` the rest (random crop 32 / pad 4 + horizontal flip
    when ``augment``), ``test`` the official test set. ``root=None`` reads ``$DATA_ROOT``.
    ``verify_checksums=False`` skips torchvision's md5 check (for re-packed or synthetic data).
    """
    root_path = _resolve_root(root)
    folder = root_path / CIFAR10_FOLDER
    how = (
        "Download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and "
        f"extract it in {root_path} (tar -xzf cifar-10-python.tar.gz -C {root_path}) so that "
        f"{folder}/data_batch_1 ... test_batch, batches.meta exist."
    )
    if not folder.is_dir():
        raise FileNotFoundError(f"CIFAR-10 not found: no directory {folder}. {how}")
    missing = [str(folder / f) for f in CIFAR10_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 incomplete in {folder}: missing {missing}. {how}")

    cifar_cls = datasets.CIFAR10 if verify_checksums else _UncheckedCIFAR10
    try:
        train_base = cifar_cls(str(root_path), train=True, download=False)
        test_base = cifar_cls(str(root_path), train=False, download=False)
    except RuntimeError as exc:
        raise RuntimeError(
            f"CIFAR-10 files in {folder} failed torchvision's integrity check ({exc}). "
            "Delete the folder and re-extract cifar-10-python.tar.gz (or pass "
            f"verify_checksums=False for deliberately re-packed data). {how}"
        ) from exc

    normalize = transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)
    eval_tf = transforms.Compose([transforms.ToTensor(), normalize])
    train_tf = (
        transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                normalize,
            ]
        )
        if augment
        else eval_tf
    )
    train_idx, val_idx = holdout_indices(train_base.targets, val_size=val_size, seed=seed)
    test_base.transform = eval_tf
    return Splits(
        name="cifar10",
        num_classes=10,
        train=TransformedSubset(train_base, train_idx, train_tf),
        reward=TransformedSubset(train_base, val_idx, eval_tf),
        test=test_base,
        classes=list(train_base.classes),
    )


IMAGENET_LAYOUT = (
    "expected ImageFolder layout: <DATA_ROOT>/train/<wnid>/*.JPEG and "
    "<DATA_ROOT>/val/<wnid>/*.JPEG (the official val images sorted into one folder per "
    "class); set the DATA_ROOT environment variable or pass data_root"
)


def data_root_from_env(default: str | os.PathLike[str] | None = None) -> Path:
    """Dataset root from ``$DATA_ROOT``, else ``default``; FileNotFoundError if unset/missing."""
    value = os.environ.get(DATA_ROOT_ENV) or (None if default is None else os.fspath(default))
    if not value:
        raise FileNotFoundError(
            f"The {DATA_ROOT_ENV} environment variable is not set and no default was given; "
            f"export {DATA_ROOT_ENV}=/path/to/datasets (for ImageNet: {IMAGENET_LAYOUT})."
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"Data root {path} (from {DATA_ROOT_ENV} or the default) does not exist or is not "
            f"a directory; point {DATA_ROOT_ENV} at the folder that holds the datasets."
        )
    return path


def load_imagenet(
    data_root: str | os.PathLike[str] | None = None,
    val_size: int = 10_000,
    val_per_class: int | None = None,
    seed: int = 0,
    augment: bool = True,
    image_size: int = 224,
    resize_size: int = 256,
    stop_size: int = 0,
) -> Splits:
    """ImageNet from ``<data_root>/train`` and ``<data_root>/val`` in ImageFolder layout.

    ``reward`` (the RL reward set) is a seeded, class-stratified hold-out of the train folder:
    ``val_per_class`` images per class if given, else ``val_size`` images in total. With
    ``stop_size``, that many more are held out as the early-stopping split ``stop``: one
    hold-out of ``val_size + stop_size`` images is cut into the two, again class-stratified, so
    both spread over every class (a cut of the class-sorted hold-out would give the reward the
    first classes only). ``train`` is the rest (RandomResizedCrop + flip), ``test`` the official
    val/ folder (Resize 256 + CenterCrop 224). ``data_root=None`` reads ``$DATA_ROOT``. The
    train folder is scanned once; the same arguments give the same splits in any process.
    """
    if stop_size and val_per_class is not None:
        raise ValueError("stop_size needs val_size (not val_per_class) for the reward split")
    root = _resolve_root(data_root)
    train_dir, test_dir = root / "train", root / "val"
    for d in (train_dir, test_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"ImageNet folder not found: {d}; {IMAGENET_LAYOUT}.")

    normalize = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    eval_tf = transforms.Compose(
        [
            transforms.Resize(resize_size),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            normalize,
        ]
    )
    train_tf = (
        transforms.Compose(
            [
                transforms.RandomResizedCrop(image_size),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                normalize,
            ]
        )
        if augment
        else eval_tf
    )
    try:
        train_base = datasets.ImageFolder(str(train_dir))
        test_base = datasets.ImageFolder(str(test_dir), transform=eval_tf)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"No images found under {root}: {exc}; {IMAGENET_LAYOUT}.") from exc
    if train_base.classes != test_base.classes:
        only_train = sorted(set(train_base.classes) - set(test_base.classes))[:5]
        only_val = sorted(set(test_base.classes) - set(train_base.classes))[:5]
        raise ValueError(
            f"{train_dir} and {test_dir} have different class folders (train-only e.g. "
            f"{only_train}, val-only e.g. {only_val}); {IMAGENET_LAYOUT}."
        )
    train_idx, val_idx = holdout_indices(
        train_base.targets, val_size=val_size + stop_size, seed=seed, val_per_class=val_per_class
    )
    stop = None
    if stop_size:
        held = np.asarray(train_base.targets)[val_idx]
        stop_pos, reward_pos = holdout_indices(held, val_size=val_size, seed=seed + 1)
        val_idx, stop = val_idx[reward_pos], TransformedSubset(train_base, val_idx[stop_pos], eval_tf)
    return Splits(
        name="imagenet",
        num_classes=len(train_base.classes),
        train=TransformedSubset(train_base, train_idx, train_tf),
        reward=TransformedSubset(train_base, val_idx, eval_tf),
        stop=stop,
        test=test_base,
        classes=list(train_base.classes),
    )

