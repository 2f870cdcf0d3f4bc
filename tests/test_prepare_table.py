"""``prepare_table`` says what it dropped and can keep duplicate rows."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pruning_core import prepare_table


def table(n: int = 400, copies: int = 1, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"]).assign(y=np.where(np.arange(n) % 2, "yes", "no"))
    return pd.concat([frame] * copies, ignore_index=True)


def _rows(splits) -> int:
    return sum(splits.n(s) for s in ("train", "reward", "stop", "test"))


def test_a_clean_table_gives_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        splits = prepare_table(table(), "y")
    assert _rows(splits) == 400 and splits.meta["dropped"]["duplicate_rows"] == 0
    assert splits.meta["feature_names"] == ["num__a", "num__b", "num__c"]


def test_duplicates_are_reported_and_can_be_kept() -> None:
    frame = table(200, copies=3)  # 600 rows, 200 distinct (a public 1,309-row table kept 434)
    with pytest.warns(UserWarning, match=r"400 of 600 rows dropped: 400 duplicates.*keep_duplicates=True"):
        splits = prepare_table(frame, "y")
    assert _rows(splits) == 200 and splits.meta["dropped"]["duplicate_rows"] == 400
    kept = prepare_table(frame, "y", keep_duplicates=True)
    assert _rows(kept) == 600 and kept.meta["dropped"]["duplicate_rows"] == 0


def test_rare_classes_constant_columns_and_small_splits_are_reported() -> None:
    frame = table(42).assign(const=1.0)  # 40 rows with a target of a common class
    frame.loc[0, "y"] = "rare"
    frame.loc[1, "y"] = None
    with pytest.warns(UserWarning) as seen:
        splits = prepare_table(frame, "y")
    text = " ".join(str(w.message) for w in seen)
    assert "1 without a target" in text and "classes with <" in text and "(rare)" in text
    assert "constant: const" in text
    assert "small splits (reward 4, stop 4 rows" in text  # the C rule would move in 25-pt steps
    assert splits.n("reward") == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_table(frame, "y", warn=False)  # the report is still in meta
