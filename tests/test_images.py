"""Image data: digits splits, CIFAR-10 and ImageNet from (fake) local files, loaders."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pruning_core.data.images import (
    data_root_from_env,
    holdout_indices,
    load_cifar10,
    load_digits_splits,
    load_imagenet,
)
from pruning_core.data.splits import Splits

# --------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load_digits_splits(seed=0)


def test_digits_shapes_and_types(digits: Splits) -> None:
    rows = digits.meta["rows"]
    n = len(rows["train"]) + len(rows["reward"]) + len(rows["test"])
    assert n == 1797
    for x, y in [digits.tensors("train"), digits.tensors("reward"), digits.tensors("test")]:
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (3, 8, 8) and x.shape[0] == y.shape[0]
    assert digits.tensors("test")[0].shape[0] == 450  # ceil(0.25 * 1797)
    assert digits.tensors("reward")[0].shape[0] == 270  # 0.15 of the whole, from the other 75 %
    assert digits.num_classes == 10
    # replicated channels are identical
    x_train = digits.tensors("train")[0]
    assert torch.equal(x_train[:, 0], x_train[:, 2])


def test_digits_splits_disjoint_and_cover(digits: Splits) -> None:
    tr, va, te = (set(digits.meta["rows"][s].tolist()) for s in ("train", "reward", "test"))
    assert not tr & va and not tr & te and not va & te
    assert tr | va | te == set(range(1797))


def test_digits_labels_match_sklearn(digits: Splits) -> None:
    from sklearn.datasets import load_digits

    target = load_digits().target
    rows = digits.meta["rows"]
    assert np.array_equal(digits.tensors("reward")[1].numpy(), target[rows["reward"]])
    assert np.array_equal(digits.tensors("test")[1].numpy(), target[rows["test"]])


def test_digits_seeded(digits: Splits) -> None:
    again = load_digits_splits(seed=0)
    assert np.array_equal(again.meta["rows"]["reward"], digits.meta["rows"]["reward"])
    assert torch.equal(again.tensors("train")[0], digits.tensors("train")[0])
    other = load_digits_splits(seed=1)
    assert not np.array_equal(other.meta["rows"]["reward"], digits.meta["rows"]["reward"])


def test_digits_train_normalised(digits: Splits) -> None:
    x_train = digits.tensors("train")[0]
    assert abs(float(x_train.mean())) < 1e-4
    assert abs(float(x_train.std()) - 1.0) < 1e-3
    assert abs(float(digits.tensors("reward")[0].mean())) < 0.1  # same statistics, other images


def test_digits_stratified(digits: Splits) -> None:
    from sklearn.datasets import load_digits

    overall = np.bincount(load_digits().target, minlength=10) / 1797
    for y in (digits.tensors(s)[1] for s in ("train", "reward", "test")):
        counts = np.bincount(y.numpy(), minlength=10)
        assert np.all(np.abs(counts - overall * len(y)) <= 1.5)


def test_digits_upsample_and_channels() -> None:
    s = load_digits_splits(seed=0, image_size=16, channels=1)
    assert s.tensors("train")[0].shape[1:] == (1, 16, 16)
    assert abs(float(s.tensors("train")[0].mean())) < 1e-4


def test_digits_loaders_seeded(digits: Splits) -> None:
    first = [next(iter(digits.loader("train", 32, shuffle=True, seed=3)))[1] for _ in range(2)]
    assert torch.equal(first[0], first[1])
    other = next(iter(digits.loader("train", 32, shuffle=True, seed=4)))[1]
    assert not torch.equal(first[0], other)
    train = digits.loader("train", 64, shuffle=True)
    val, test = digits.loader("reward", 500), digits.loader("test", 500)
    xb, yb = next(iter(val))
    assert xb.shape == (270, 3, 8, 8) and torch.equal(yb, digits.tensors("reward")[1])
    assert len(test.dataset) == 450 and len(train.dataset) == digits.n("train")


def test_holdout_indices_stratified() -> None:
    targets = np.repeat(np.arange(4), [40, 30, 20, 10])
    tr, va = holdout_indices(targets, val_size=10, seed=0)
    assert len(va) == 10 and len(tr) == 90 and not set(tr) & set(va)
    assert np.bincount(targets[va], minlength=4).tolist() == [4, 3, 2, 1]
    tr2, va2 = holdout_indices(targets, val_per_class=2, seed=0)
    assert np.bincount(targets[va2], minlength=4).tolist() == [2, 2, 2, 2]
    assert np.array_equal(holdout_indices(targets, val_size=10, seed=0)[1], va)
    with pytest.raises(ValueError):
        holdout_indices(targets, val_per_class=10, seed=0)


# --------------------------------------------------------------------------------------
# CIFAR-10 (fake files in the real pickle format)
# --------------------------------------------------------------------------------------

CIFAR_PER_BATCH = 6


def _write_fake_cifar(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        batch = {
            "batch_label": f"fake batch {b}",
            "labels": rng.integers(0, 10, CIFAR_PER_BATCH).tolist(),
            "data": rng.integers(0, 256, (CIFAR_PER_BATCH, 3072), dtype=np.uint8),
            "filenames": [f"img_{b}_{i}.png" for i in range(CIFAR_PER_BATCH)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    meta = {
        "label_names": ["airplane", "automobile", "bird", "cat", "deer"]
        + ["dog", "frog", "horse", "ship", "truck"],
        "num_cases_per_batch": CIFAR_PER_BATCH,
        "num_vis": 3072,
    }
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return folder


def test_cifar10_fake_loads(tmp_path: Path) -> None:
    _write_fake_cifar(tmp_path)
    splits = load_cifar10(tmp_path, val_size=6, seed=0, verify_checksums=False)
    assert isinstance(splits, Splits) and splits.num_classes == 10
    assert len(splits.train) == 24 and len(splits.reward) == 6 and len(splits.test) == 6
    assert not set(splits.train.indices) & set(splits.reward.indices)
    x, y = splits.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= y < 10
    assert splits.test[0][0].shape == (3, 32, 32)
    assert splits.classes[0] == "airplane"
    xb, yb = next(iter(splits.loader("train", 8, shuffle=True, seed=0)))
    assert xb.shape == (8, 3, 32, 32) and yb.shape == (8,)
    again = load_cifar10(tmp_path, val_size=6, seed=0, verify_checksums=False)
    assert np.array_equal(again.reward.indices, splits.reward.indices)


def test_cifar10_checksum_failure_is_clear(tmp_path: Path) -> None:
    folder = _write_fake_cifar(tmp_path)
    with pytest.raises(RuntimeError, match="integrity") as info:
        load_cifar10(tmp_path)
    assert str(folder) in str(info.value)


def test_cifar10_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path / "nowhere")
    msg = str(info.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg
    assert "cifar-10-python.tar.gz" in msg


def test_cifar10_incomplete(tmp_path: Path) -> None:
    folder = _write_fake_cifar(tmp_path)
    (folder / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar10(tmp_path, verify_checksums=False)


# --------------------------------------------------------------------------------------
# ImageNet (tiny ImageFolder)
# --------------------------------------------------------------------------------------


def _write_fake_imagenet(root: Path, n_train: int = 4, n_val: int = 1) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for wnid, ext in (("n01440764", "JPEG"), ("n01443537", "png")):
            d = root / split / wnid
            d.mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 256, (30 + 7 * i, 40, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{wnid}_{i}.{ext}")


def test_imagenet_folder_loads(tmp_path: Path) -> None:
    _write_fake_imagenet(tmp_path)
    splits = load_imagenet(tmp_path, val_per_class=1, seed=0)
    assert splits.num_classes == 2 and splits.classes == ["n01440764", "n01443537"]
    assert len(splits.train) == 6 and len(splits.reward) == 2 and len(splits.test) == 2
    assert not set(splits.train.indices) & set(splits.reward.indices)
    for ds in (splits.train, splits.reward, splits.test):
        x, y = ds[0]
        assert x.shape == (3, 224, 224) and y in (0, 1)
    val_labels = sorted(splits.reward[i][1] for i in range(len(splits.reward)))
    assert val_labels == [0, 1]
    xb, _ = next(iter(splits.loader("test", 2)))
    assert xb.shape == (2, 3, 224, 224)
    by_size = load_imagenet(tmp_path, val_size=4, seed=0)
    assert len(by_size.reward) == 4 and len(by_size.train) == 4


def test_imagenet_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_fake_imagenet(tmp_path)
    monkeypatch.setenv("DATA_ROOT", str(tmp_path))
    assert data_root_from_env() == tmp_path
    assert load_imagenet(val_size=2).num_classes == 2


def test_imagenet_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_imagenet(tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "train") in msg and "DATA_ROOT" in msg and "<wnid>" in msg


def test_data_root_from_env_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATA_ROOT", raising=False)
    with pytest.raises(FileNotFoundError, match="DATA_ROOT"):
        data_root_from_env()
    assert data_root_from_env(default=tmp_path) == tmp_path
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="absent"):
        data_root_from_env()
