"""Fashion-MNIST (70,000 real 28x28 clothing images, 10 classes) as seeded tensor splits.

The four idx files are looked for, in order, in ``$DATA_ROOT`` (or ``data_root``), where the
Debian / Ubuntu package ``dataset-fashion-mnist`` installs them (``/usr/share/datasets/
fashion-mnist``), and, where a network exists and ``download=True``, fetched by torchvision's
downloader into ``<DATA_ROOT or the cache>/FashionMNIST/raw``. Otherwise the error names all
three. ``$PRUNING_CORE_NO_SYSTEM_DATA=1`` hides the system copy (the Debian package's folder)
and turns the download off, so a machine that has the package installed can check that it does
not need it (the test suite sets it). The official 10,000 test images are the ``test`` split; ``reward`` (what a pruning
agent's reward reads) and ``stop`` (early stopping, never read by the reward) are disjoint,
class-stratified, seeded hold-outs of the 60,000 training images, and ``train`` is the rest.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.datasets import FashionMNIST

from pruning_core.config import cache_root
from pruning_core.data.images import DATA_ROOT_ENV, holdout_indices
from pruning_core.data.splits import Splits

__all__ = ["DEBIAN_DIR", "FASHION_CLASSES", "FILES", "NO_SYSTEM_DATA_ENV", "find_fashion_mnist",
           "load_fashion_mnist", "read_idx", "system_data_hidden"]

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""The four idx files (each may be gzipped, with ``.gz``)."""

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where ``apt-get install dataset-fashion-mnist`` puts the files."""

NO_SYSTEM_DATA_ENV = "PRUNING_CORE_NO_SYSTEM_DATA"
"""Set to ``1`` to make the system copy (:data:`DEBIAN_DIR`) and the download invisible: only
``$DATA_ROOT`` / ``data_root`` is read. The tests set it, so nothing they run can depend on data
that a Python install does not bring."""


def system_data_hidden() -> bool:
    """Whether ``$PRUNING_CORE_NO_SYSTEM_DATA`` hides the system copy and the download."""
    return os.environ.get(NO_SYSTEM_DATA_ENV, "").strip().lower() not in ("", "0", "false", "no")

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an idx file (MNIST's format: magic, dimension sizes, then the data), gzipped or not."""
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: {len(raw)} bytes, expected {expected} for shape "
            f"{dims}; delete it and install or download the file again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)


def _complete(folder: Path) -> dict[str, Path] | None:
    found = {}
    for key, stem in FILES.items():
        hit = next((folder / n for n in (stem, stem + ".gz") if (folder / n).is_file()), None)
        if hit is None:
            return None
        found[key] = hit
    return found


def _candidates(data_root: str | os.PathLike[str] | None) -> list[Path]:
    root = data_root if data_root is not None else os.environ.get(DATA_ROOT_ENV)
    out = []
    if root:
        r = Path(root).expanduser()
        out += [r / "fashion-mnist", r / "FashionMNIST" / "raw", r]
    if not system_data_hidden():
        out.append(DEBIAN_DIR)
    return out


def find_fashion_mnist(
    data_root: str | os.PathLike[str] | None = None, download: bool = True
) -> dict[str, Path]:
    """Paths of the four idx files: ``$DATA_ROOT``, the Debian package, then a download.

    With ``$PRUNING_CORE_NO_SYSTEM_DATA=1`` only ``$DATA_ROOT`` / ``data_root`` is looked at.
    """
    tried = _candidates(data_root)
    for folder in tried:
        if files := _complete(folder):
            return files
    target = Path(data_root or os.environ.get(DATA_ROOT_ENV) or cache_root() / "data")
    hidden = system_data_hidden()
    error = f"{NO_SYSTEM_DATA_ENV}=1 turns it off" if hidden else "download=False"
    if download and not hidden:
        try:
            FashionMNIST(str(target), train=True, download=True)
            FashionMNIST(str(target), train=False, download=True)
            if files := _complete(target / "FashionMNIST" / "raw"):
                return files
            error = "the download left no idx files"
        except Exception as exc:  # no network, a proxy, a full disk: say so below
            error = f"{type(exc).__name__}: {exc}"
    raise FileNotFoundError(
        "Fashion-MNIST not found. Looked for the four idx files (" + ", ".join(FILES.values())
        + ", optionally .gz) in: " + ", ".join(str(p) for p in tried) + ". Provide them by one of: "
        f"(1) export {DATA_ROOT_ENV}=<folder holding them or fashion-mnist/>; "
        "(2) sudo apt-get install dataset-fashion-mnist (Debian / Ubuntu, offline mirror); "
        f"(3) torchvision's downloader into {target} (needs a network; it failed: {error})."
    )


def load_fashion_mnist(
    seed: int = 0,
    reward_size: int = 2_000,
    stop_size: int = 2_000,
    train_limit: int | None = None,
    image_size: int = 28,
    channels: int = 1,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Splits:
    """Fashion-MNIST as normalised float tensors: train / reward / stop / test.

    ``reward`` and ``stop`` are disjoint class-stratified hold-outs of the official training
    images, drawn with ``seed``; ``train_limit`` keeps a seeded stratified subset of what is
    left (smaller studies); ``test`` is the official 10,000. Pixels are scaled to [0, 1],
    optionally resized (bilinear) to ``image_size``, normalised with the mean / std of the
    train split only and replicated to ``channels``. ``meta`` holds each split's row ids in
    the official files, the normalisation and where the files were read from.
    """
    if reward_size < 1 or stop_size < 0:
        raise ValueError(f"need reward_size >= 1 and stop_size >= 0, got {reward_size}, {stop_size}")
    files = find_fashion_mnist(data_root, download)
    x_tr, y_tr = read_idx(files["train_images"]), read_idx(files["train_labels"])
    x_te, y_te = read_idx(files["test_images"]), read_idx(files["test_labels"])
    if len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise ValueError(f"image and label counts differ in {files}")
    rest, reward_idx = holdout_indices(y_tr, val_size=reward_size, seed=seed)
    stop_idx = np.empty(0, dtype=np.int64)
    if stop_size:
        keep, pick = holdout_indices(y_tr[rest], val_size=stop_size, seed=seed + 1)
        rest, stop_idx = rest[keep], rest[pick]
    if train_limit is not None and train_limit < len(rest):
        _, pick = holdout_indices(y_tr[rest], val_size=train_limit, seed=seed + 2)
        rest = rest[pick]

    def tensor(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
        if image_size != t.shape[-1]:
            t = F.interpolate(t, size=(image_size, image_size), mode="bilinear", align_corners=False)
        return t

    x_train_raw = tensor(x_tr[rest])
    mean, std = float(x_train_raw.mean()), float(x_train_raw.std())

    def norm(t: torch.Tensor) -> torch.Tensor:
        return ((t - mean) / std).expand(-1, channels, -1, -1).contiguous()

    def labels(y: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(y.astype(np.int64))

    return Splits(
        name=f"fashion_mnist{image_size}x{image_size}",
        num_classes=10,
        train=(norm(x_train_raw), labels(y_tr[rest])),
        reward=(norm(tensor(x_tr[reward_idx])), labels(y_tr[reward_idx])),
        stop=(norm(tensor(x_tr[stop_idx])), labels(y_tr[stop_idx])) if stop_size else None,
        test=(norm(tensor(x_te)), labels(y_te)),
        classes=list(FASHION_CLASSES),
        meta={
            "rows": {"train": rest, "reward": reward_idx, "stop": stop_idx,
                     "test": np.arange(len(y_te))},
            "mean": mean,
            "std": std,
            "source": str(files["train_images"].parent),
        },
    )  # fmt: skip
