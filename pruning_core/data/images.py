"""Image datasets for pruning experiments: digits (offline), CIFAR-10 and ImageNet (local paths).

Every loader gives three disjoint splits:

* ``train`` -- used to (re)train / fine-tune the network;
* ``val``   -- held out of the training data with a fixed seed; this is what an RL
  agent's reward is computed on, so the agent never sees the test set;
* ``test``  -- only for reported numbers (the official test / val set where one exists).

Nothing here downloads anything: digits ship with scikit-learn, CIFAR-10 and ImageNet
must already be on disk (the errors say where they were looked for and how to provide them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import datasets, transforms

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DatasetSplits",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageSplits",
    "Loaders",
    "TransformedSubset",
    "data_root_from_env",
    "holdout_indices",
    "load_cifar10",
    "load_digits_splits",
    "load_imagenet",
    "make_loaders",
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


@dataclass
class DatasetSplits:
    """Train / validation (reward) / test datasets of one image task plus its class count."""

    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    name: str
    classes: list[str] = field(default_factory=list)


class Loaders(NamedTuple):
    """The three DataLoaders of a :class:`DatasetSplits` (unpacks as ``train, val, test``)."""

    train: DataLoader
    val: DataLoader
    test: DataLoader


def make_loaders(
    splits: DatasetSplits,
    batch_size: int = 128,
    eval_batch_size: int | None = None,
    num_workers: int = 0,
    seed: int = 0,
    pin_memory: bool | None = None,
    drop_last: bool = False,
) -> Loaders:
    """DataLoaders for the three splits: train shuffled by a seeded generator, val/test in order.

    ``pin_memory=None`` pins only when CUDA is available. ``drop_last`` applies to train only.
    """
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    eval_bs = eval_batch_size or batch_size
    common: dict[str, Any] = {"num_workers": num_workers, "pin_memory": pin_memory}
    if num_workers > 0:
        common["persistent_workers"] = True
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(
        splits.train,
        batch_size=batch_size,
        shuffle=True,
        generator=generator,
        drop_last=drop_last,
        **common,
    )
    val = DataLoader(splits.val, batch_size=eval_bs, shuffle=False, **common)
    test = DataLoader(splits.test, batch_size=eval_bs, shuffle=False, **common)
    return Loaders(train, val, test)


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


@dataclass
class ImageSplits:
    """Preloaded digits tensors (N, C, H, W) for train / val (reward) / test.

    ``idx_*`` are the row indices into ``sklearn.datasets.load_digits()`` of each split
    (disjoint), ``mean`` / ``std`` the train-split pixel statistics used to normalise.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str
    idx_train: np.ndarray
    idx_val: np.ndarray
    idx_test: np.ndarray
    mean: float
    std: float

    def datasets(self) -> DatasetSplits:
        """The splits as TensorDatasets in the common :class:`DatasetSplits` container."""
        return DatasetSplits(
            train=TensorDataset(self.x_train, self.y_train),
            val=TensorDataset(self.x_val, self.y_val),
            test=TensorDataset(self.x_test, self.y_test),
            num_classes=self.num_classes,
            name=self.name,
            classes=[str(c) for c in range(self.num_classes)],
        )

    def loaders(
        self, batch_size: int = 128, eval_batch_size: int | None = None, seed: int = 0
    ) -> Loaders:
        """DataLoaders (train shuffled with a ``seed``-ed generator; no workers, data is in RAM)."""
        return make_loaders(
            self.datasets(),
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=0,
            seed=seed,
            pin_memory=False,
        )


def load_digits_splits(
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.25,
    image_size: int = 8,
    channels: int = 3,
) -> ImageSplits:
    """scikit-learn's 8x8 handwritten digits as seeded, stratified, normalised tensor splits.

    Pixels (0..16) are scaled to [0, 1], optionally bilinearly resized to ``image_size``,
    replicated to ``channels`` channels (3 so torchvision models accept them) and normalised
    with the mean / std of the train split only (no information leaks from val / test).
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

    x_train, y_train = take(train_idx)
    x_val, y_val = take(val_idx)
    x_test, y_test = take(test_idx)
    return ImageSplits(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        num_classes=10,
        name=f"digits{image_size}x{image_size}",
        idx_train=train_idx,
        idx_val=val_idx,
        idx_test=test_idx,
        mean=mean,
        std=std,
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
) -> DatasetSplits:
    """CIFAR-10 from ``<root>/cifar-10-batches-py`` (never downloaded).

    ``val`` is a seeded, class-stratified hold-out of ``val_size`` images from the official
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
    return DatasetSplits(
        train=TransformedSubset(train_base, train_idx, train_tf),
        val=TransformedSubset(train_base, val_idx, eval_tf),
        test=test_base,
        num_classes=10,
        name="cifar10",
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
) -> DatasetSplits:
    """ImageNet from ``<data_root>/train`` and ``<data_root>/val`` in ImageFolder layout.

    ``val`` (the RL reward set) is a seeded, class-stratified hold-out of the train folder:
    ``val_per_class`` images per class if given, else ``val_size`` images in total. ``train``
    is the rest (RandomResizedCrop + flip), ``test`` the official val/ folder (Resize 256 +
    CenterCrop 224). ``data_root=None`` reads ``$DATA_ROOT``. The train folder is scanned once.
    """
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
        train_base.targets, val_size=val_size, seed=seed, val_per_class=val_per_class
    )
    return DatasetSplits(
        train=TransformedSubset(train_base, train_idx, train_tf),
        val=TransformedSubset(train_base, val_idx, eval_tf),
        test=test_base,
        num_classes=len(train_base.classes),
        name="imagenet",
        classes=list(train_base.classes),
    )

