"""Splits: the one container of a dataset's train / reward / stop / test splits."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from pruning_core.data.images import load_digits_splits
from pruning_core.data.splits import SPLIT_NAMES, Splits
from pruning_core.data.tabular import load_tabular
from pruning_core.models.mlp import MLPSpec, build_mlp
from pruning_core.rl.envs.neon import NeonTask


def _xy(n: int, start: int = 0, d: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.arange(start, start + n, dtype=torch.float32)[:, None].repeat(1, d)
    return x, torch.arange(start, start + n) % 2


class _Items(Dataset):
    """A Dataset of (x, y) items, as CIFAR-10 / ImageNet splits are."""

    def __init__(self, n: int) -> None:
        self.x, self.y = _xy(n, start=100)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


@pytest.fixture
def splits() -> Splits:
    val = _xy(10, start=50)
    return Splits(
        "toy", 2, train=_xy(20), reward=val, stop=val, test=_xy(8, start=80),
        classes=["even", "odd"],
        meta={"rows": {"train": np.arange(20) + 1000, "reward": np.arange(10) + 2000,
                       "stop": np.arange(10) + 2000, "test": np.arange(8) + 3000}},
    )  # fmt: skip


def test_split_access(splits: Splits) -> None:
    assert SPLIT_NAMES == ("train", "reward", "stop", "test")
    assert [splits.n(s) for s in SPLIT_NAMES] == [20, 10, 10, 8]
    assert splits.tensors("reward") is splits.reward  # preloaded: no copy
    assert splits.is_preloaded("train") and splits.n_features == 3
    assert torch.equal(splits.example("test"), splits.test[0][:1])
    no_stop = Splits("img", 2, train=_xy(4), reward=_xy(2))
    assert not no_stop.has("stop") and not no_stop.has("test")
    with pytest.raises(ValueError, match="no early-stopping split"):
        no_stop.tensors("stop")
    with pytest.raises(KeyError, match="unknown split"):
        splits.n("val")


def test_invalid_splits_are_refused() -> None:
    x, y = _xy(5)
    with pytest.raises(ValueError, match="5 inputs but 4 labels"):
        Splits("bad", 2, train=(x, y[:4]), reward=(x, y))
    with pytest.raises(TypeError, match="tensors or a Dataset"):
        Splits("bad", 2, train=(x, y), reward=[x, y])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="class names"):
        Splits("bad", 3, train=(x, y), reward=(x, y), classes=["a", "b"])


def test_dataset_split_is_read_into_tensors_and_loaded() -> None:
    s = Splits("disk", 2, train=_Items(12), reward=_Items(6))
    assert not s.is_preloaded("train") and s.n("train") == 12
    x, y = s.tensors("reward")
    assert x.shape == (6, 3) and y.dtype == torch.int64 and torch.equal(x, _xy(6, start=100)[0])
    assert torch.equal(s.example("train"), _xy(1, start=100)[0])
    fed = s.feed("train", batch_size=4, shuffle=True, seed=1)
    assert isinstance(fed, DataLoader) and fed.batch_size == 4


def test_loader_shuffle_is_seeded_and_eval_order_kept(splits: Splits) -> None:
    def order(seed: int) -> list[int]:
        return torch.cat([b[0][:, 0] for b in splits.loader("train", 8, True, seed)]).tolist()

    assert order(3) == order(3) != order(4)
    assert sorted(order(3)) == list(range(20))
    plain = torch.cat([b[0][:, 0] for b in splits.loader("test", 3)])
    assert plain.tolist() == list(range(80, 88))
    assert len(list(splits.loader("train", 8, shuffle=True, drop_last=True))) == 2
    assert splits.feed("train") is splits.train  # the training loop batches tensors itself


def test_head_takes_first_rows_and_keeps_stop_shared(splits: Splits) -> None:
    h = splits.head({"train": 5, "reward": 3, "test": 100})
    assert h.tensors("train")[0][:, 0].tolist() == [0, 1, 2, 3, 4]
    assert h.tensors("reward")[0][:, 0].tolist() == [50, 51, 52]
    assert h.stop is h.reward and h.n("test") == 8
    assert h.meta["rows"]["train"].tolist() == [1000, 1001, 1002, 1003, 1004]
    assert h.meta["rows"]["stop"].tolist() == [2000, 2001, 2002]
    assert splits.n("train") == 20  # the original is untouched
    with pytest.raises(ValueError, match="cap 'reward' instead"):
        splits.head({"stop": 2})
    with pytest.raises(KeyError, match="unknown splits"):
        splits.head({"val": 2})


def test_capped_draws_a_fixed_seed_subset_split_after_split(splits: Splits) -> None:
    c = splits.capped({"train": 6, "reward": 4, "test": 5}, seed=7)
    rng = np.random.default_rng(7)  # one generator, train then reward then test
    want = {s: np.sort(rng.choice(n, size=m, replace=False))
            for s, n, m in (("train", 20, 6), ("reward", 10, 4), ("test", 8, 5))}  # fmt: skip
    for s, idx in want.items():
        assert c.tensors(s)[0][:, 0].tolist() == splits.tensors(s)[0][idx, 0].tolist()
        assert c.meta["rows"][s].tolist() == splits.meta["rows"][s][idx].tolist()
    assert c.stop is c.reward and c.meta["rows"]["stop"].tolist() == c.meta["rows"]["reward"].tolist()
    again = splits.capped({"train": 6, "reward": 4, "test": 5}, seed=7)
    assert torch.equal(again.tensors("train")[0], c.tensors("train")[0])
    other = splits.capped({"train": 6}, seed=8)
    assert not torch.equal(other.tensors("train")[0], c.tensors("train")[0])
    assert other.n("reward") == 10
    disk = Splits("disk", 2, train=_Items(12), reward=_Items(6)).capped({"train": 4}, seed=0)
    assert disk.n("train") == 4 and not disk.is_preloaded("train")


def test_describe_names_every_split(splits: Splits) -> None:
    text = splits.describe()
    assert text.startswith("toy: 2 classes;")
    assert "train 20 (tensors)" in text and "stop = reward" in text and "test 8" in text
    disk = Splits("disk", 2, train=_Items(12), reward=_Items(6)).describe()
    assert "train 12 (_Items)" in disk and "no stop" in disk and "no test" in disk


def test_tabular_splits_match_the_arrays_and_keep_reward_and_stop_disjoint() -> None:
    ds = load_tabular("iris", seed=2)
    s = ds.splits()
    assert s.name == "iris" and s.num_classes == ds.n_classes == len(s.classes)
    r, st = ds.reward_stop_index()
    # reward and stop are disjoint halves of the validation rows, together all of them
    assert s.stop is not s.reward and not set(r) & set(st)
    assert sorted([*r, *st]) == list(range(ds.n_val)) and abs(len(r) - len(st)) <= 1
    assert not set(s.meta["rows"]["reward"]) & set(s.meta["rows"]["stop"])
    np.testing.assert_array_equal(s.tensors("train")[0].numpy(), ds.X_train)
    np.testing.assert_array_equal(s.tensors("reward")[1].numpy(), ds.y_val[r])
    np.testing.assert_array_equal(s.tensors("stop")[0].numpy(), ds.X_val[st])
    np.testing.assert_array_equal(s.meta["rows"]["test"], ds.test_rows)
    assert s.tensors("test")[0].dtype == torch.float32 and s.tensors("test")[1].dtype == torch.int64
    # stratified: every class is in both halves
    assert set(s.tensors("reward")[1].tolist()) == set(s.tensors("stop")[1].tolist()) == {0, 1, 2}
    capped = ds.splits({"train": 30, "reward": 10, "stop": 8, "test": None})
    # one generator seeded by crc32(name) + seed draws train, then reward, then stop
    rng = np.random.default_rng(zlib.crc32(b"iris") + 2)
    tr = np.sort(rng.choice(ds.n_train, size=30, replace=False))
    va = np.sort(rng.choice(len(r), size=10, replace=False))
    np.testing.assert_array_equal(capped.tensors("train")[0].numpy(), ds.X_train[tr])
    np.testing.assert_array_equal(capped.tensors("reward")[1].numpy(), ds.y_val[r][va])
    np.testing.assert_array_equal(capped.meta["rows"]["reward"], ds.val_rows[r][va])
    assert capped.n("stop") == 8 and capped.n("test") == ds.n_test


def test_digits_splits_carry_their_provenance() -> None:
    d = load_digits_splits(seed=0)
    assert d.name == "digits8x8" and d.stop is None and d.classes[3] == "3"
    assert set(d.meta) >= {"rows", "mean", "std"} and len(d.meta["rows"]["reward"]) == d.n("reward")


def test_neon_task_needs_a_stop_split_and_never_holds_the_test_split() -> None:
    spec = MLPSpec(3, 2, (4,), ("relu",), (False,), (0.0,))
    val = _xy(10, start=50)
    data = Splits("toy", 2, train=_xy(20), reward=val, stop=val, test=_xy(8, start=80))
    task = NeonTask.from_model(build_mlp(spec, seed=0), data)
    assert task.data.test is None and task.data.stop is task.data.reward
    with pytest.raises(ValueError, match="stop split"):
        NeonTask.from_model(build_mlp(spec, seed=0), Splits("toy", 2, train=_xy(20), reward=val))
