"""OpenML datasets (NEON's 28) from a local cache: where the files are looked for, how they
are read, and the same preparation as the offline suite. Nothing is downloaded unless asked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pruning_core.data.suite import MIN_CLASS_ROWS, unknown_name_error
from pruning_core.data.tabular import TabularDataset, clean_frame, prepare_frame

__all__ = [
    "OPENML_28",
    "OPENML_DIR_ENV",
    "OPENML_LAYOUT",
    "load_openml",
    "openml_search_paths",
]


OPENML_DIR_ENV = "PRUNING_CORE_OPENML_DIR"
"""Environment variable naming the folder :func:`load_openml` reads by default."""


OPENML_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".arff")
"""File types :func:`load_openml` reads, in the order it looks for them."""


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
        raise unknown_name_error(name, OPENML_28, "OpenML dataset")
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
    cleaned = clean_frame(
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
    return prepare_frame(
        cleaned,
        target,
        name=name,
        source="openml",
        seed=seed,
        categorical=[c for c in categorical if c != target],
        description=f"OpenML {name} from {path}",
    )

