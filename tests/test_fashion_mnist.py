"""Fashion-MNIST loading, on small idx files the tests write (no real data needed)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from pruning_core.data import fashion_mnist as fm


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def write_fake(folder: Path, n_train: int = 300, n_test: int = 50, gz: bool = True) -> None:
    """Write the four idx files: class c's images are filled with 20*c (+ noise)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        x = (20 * y[:, None, None] + rng.integers(0, 10, (n, 28, 28))).astype(np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{split}-{kind}-ubyte"
            data = _idx(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)


def test_read_idx_round_trip(tmp_path: Path) -> None:
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_idx(a))
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx(a)))
    assert np.array_equal(fm.read_idx(tmp_path / "a"), a)
    assert np.array_equal(fm.read_idx(tmp_path / "a.gz"), a)
    (tmp_path / "bad").write_bytes(_idx(a)[:-3])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        fm.read_idx(tmp_path / "bad")
    (tmp_path / "junk").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an idx file"):
        fm.read_idx(tmp_path / "junk")


@pytest.mark.parametrize("gz", [True, False])
def test_splits_are_disjoint_stratified_and_seeded(tmp_path: Path, gz: bool, monkeypatch) -> None:
    write_fake(tmp_path / "fashion-mnist", gz=gz)
    monkeypatch.setenv("DATA_ROOT", str(tmp_path))
    s = fm.load_fashion_mnist(seed=3, reward_size=40, stop_size=30, download=False)
    rows = s.meta["rows"]
    assert (s.n("train"), s.n("reward"), s.n("stop"), s.n("test")) == (230, 40, 30, 50)
    assert not set(rows["train"]) & set(rows["reward"])
    assert not set(rows["train"]) & set(rows["stop"])
    assert not set(rows["reward"]) & set(rows["stop"])
    assert np.bincount(s.tensors("reward")[1].numpy(), minlength=10).tolist() == [4] * 10
    assert s.tensors("train")[0].shape == (230, 1, 28, 28) and s.classes[9] == "Ankle boot"
    x_train = s.tensors("train")[0]
    assert abs(float(x_train.mean())) < 1e-4 and abs(float(x_train.std()) - 1) < 1e-3
    # labels follow the images: class c is brighter than class c - 1
    x, y = s.tensors("test")
    means = [float(x[y == c].mean()) for c in range(10)]
    assert means == sorted(means)
    again = fm.load_fashion_mnist(seed=3, reward_size=40, stop_size=30, download=False)
    assert torch.equal(again.tensors("reward")[0], s.tensors("reward")[0])
    other = fm.load_fashion_mnist(seed=4, reward_size=40, stop_size=30, download=False)
    assert not np.array_equal(other.meta["rows"]["reward"], rows["reward"])


def test_train_limit_channels_and_size(tmp_path: Path) -> None:
    write_fake(tmp_path)
    s = fm.load_fashion_mnist(
        reward_size=20, stop_size=0, train_limit=100, image_size=32, channels=3,
        data_root=tmp_path, download=False,
    )  # fmt: skip
    assert s.stop is None and s.n("train") == 100
    assert s.tensors("train")[0].shape == (100, 3, 32, 32)


def test_missing_files_name_all_three_sources(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-package")
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "empty"))
    monkeypatch.setenv(fm.NO_SYSTEM_DATA_ENV, "0")
    with pytest.raises(FileNotFoundError) as err:
        fm.load_fashion_mnist(download=False)
    msg = str(err.value)
    assert "DATA_ROOT" in msg and "apt-get install dataset-fashion-mnist" in msg
    assert "downloader" in msg and "no-package" in msg


def test_no_system_data_hides_the_debian_copy_and_the_download(tmp_path: Path, monkeypatch) -> None:
    """The switch the test suite runs under: a system copy that exists is not read."""
    write_fake(tmp_path / "system")
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "system")
    monkeypatch.delenv("DATA_ROOT", raising=False)
    monkeypatch.setenv(fm.NO_SYSTEM_DATA_ENV, "0")
    assert fm.find_fashion_mnist(download=False)["train_images"].parent == tmp_path / "system"

    def no_download(*args, **kwargs):
        raise AssertionError("the download must not be tried")

    monkeypatch.setattr(fm, "FashionMNIST", no_download)
    monkeypatch.setenv(fm.NO_SYSTEM_DATA_ENV, "1")
    with pytest.raises(FileNotFoundError, match=fm.NO_SYSTEM_DATA_ENV):
        fm.find_fashion_mnist(download=True)
    # what the user points at is still read
    monkeypatch.setenv("DATA_ROOT", str(tmp_path / "system"))
    assert fm.find_fashion_mnist()["train_images"].parent == tmp_path / "system"


def test_the_test_suite_runs_with_system_data_hidden() -> None:
    """conftest hides Fashion-MNIST, so no test (notebook smoke runs included) can need it."""
    assert fm.system_data_hidden()


def test_smoke_resnet20_of_the_ablations_needs_no_fashion_mnist(monkeypatch) -> None:
    from pruning_core.studies import ablations_networks as an
    from pruning_core.studies.ablations_sizes import ablation_sizes

    def refuse(*args, **kwargs):
        raise AssertionError("smoke must not read Fashion-MNIST")

    monkeypatch.setattr(an, "load_fashion_mnist", refuse)
    sizes = ablation_sizes("smoke")
    s = an.resnet20_splits(sizes)
    assert (s.n("reward"), s.n("stop")) == (sizes.resnet20_reward_rows, sizes.resnet20_stop_rows)
    assert s.tensors("train")[0].shape[1:] == (1, sizes.resnet20_image_size,
                                              sizes.resnet20_image_size)
    assert ablation_sizes("cpu").resnet20_data == "fashion_mnist"
