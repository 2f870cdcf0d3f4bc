"""Which candidate datasets the NEON study keeps: each base network against simple references.

NEON's "accuracy change" means something only where the dense network has learnt the task: on a
table where nothing beats always guessing the majority class, pruning changes noise. So, for
every candidate dataset, :func:`reference_table` puts the base networks' accuracy next to a
logistic regression (scikit-learn, fitted on ``train``) and the majority class (of ``train``),
all on the **same** rows, and :func:`admit_datasets` applies one rule fixed before any result:

    a dataset enters the study when its best model -- the logistic regression or the mean of its
    base networks -- beats the majority class on the ``reward`` split by more than
    ``max(min_gain_pp, se * SE)`` points, SE being the standard error of the majority-class
    accuracy on those rows (``100 * sqrt(p (1 - p) / n)``).

The rule reads the ``reward`` split: validation rows that neither trained the networks nor
stopped them early (that is ``stop``), and the rows NEON's reward reads, so a kept dataset is
one whose reward can see more than chance. The test split is reported beside it, never used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from pruning_core.data.splits import Splits

__all__ = [
    "admit_datasets",
    "admitted",
    "reference_table",
]


def _acc(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(pred == y)) if len(y) else math.nan


def reference_table(data: Mapping[str, Splits], base_table: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset: majority class, logistic regression and base networks (mean, min,
    max over the dataset's networks) on the ``reward`` split, the same on ``test`` (reported
    only), and the reward split's size. ``base_table`` is
    :func:`~pruning_core.studies.neon.build_base_networks`' table (``val_acc`` = reward split)."""
    missing = set(data) - set(base_table["dataset"])
    if missing:
        raise ValueError(f"no base networks for {sorted(missing)}")
    rows = []
    for name, d in data.items():
        x, y = (t.numpy() for t in d.tensors("train"))
        xr, yr = (t.numpy() for t in d.tensors("reward"))
        xt, yt = (t.numpy() for t in d.tensors("test"))
        majority = int(np.bincount(y, minlength=d.num_classes).argmax())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lr = LogisticRegression(max_iter=2000).fit(x, y)
        nets = base_table[base_table["dataset"] == name]
        p0 = _acc(np.full(len(yr), majority), yr)
        rows.append(
            {
                "dataset": name,
                "n_train": len(y),
                "n_reward": len(yr),
                "majority_reward": p0,
                "logreg_reward": _acc(lr.predict(xr), yr),
                "net_reward": float(nets["val_acc"].mean()),
                "net_reward_min": float(nets["val_acc"].min()),
                "net_reward_max": float(nets["val_acc"].max()),
                "majority_se_pp": 100 * math.sqrt(p0 * (1 - p0) / max(len(yr), 1)),
                "majority_test": _acc(np.full(len(yt), majority), yt),
                "logreg_test": _acc(lr.predict(xt), yt),
                "net_test": float(nets["test_acc"].mean()),
                "nets_stopped_early": int(nets["stopped_early"].fillna(False).astype(bool).sum())
                if "stopped_early" in nets
                else -1,
                "nets": len(nets),
            }
        )
    return pd.DataFrame(rows)


def admit_datasets(
    refs: pd.DataFrame, min_gain_pp: float = 2.0, se: float = 2.0
) -> pd.DataFrame:
    """``refs`` (:func:`reference_table`) with the rule applied (see the module): columns
    ``best_model``, ``gain_pp`` (best minus majority, reward split), ``needed_pp``, ``in_study``
    and ``reason`` (why it is in or out, in words)."""
    if not min_gain_pp >= 0 or not se >= 0:
        raise ValueError(f"min_gain_pp and se must be >= 0, got {min_gain_pp}, {se}")
    out = refs.copy()
    best = np.where(out["logreg_reward"] >= out["net_reward"], "logistic regression", "networks")
    best_acc = out[["logreg_reward", "net_reward"]].max(axis=1)
    out["best_model"] = best
    out["gain_pp"] = (best_acc - out["majority_reward"]) * 100
    out["needed_pp"] = np.maximum(min_gain_pp, se * out["majority_se_pp"])
    out["in_study"] = out["gain_pp"] > out["needed_pp"]
    out["reason"] = [
        f"{b} beats the majority class by {g:.1f} pp > {n:.1f} pp needed (reward split)"
        if ok
        else f"no model clearly beats the majority class: best ({b}) +{g:.1f} pp <= "
        f"{n:.1f} pp needed (reward split, {int(k)} rows)"
        for b, g, n, ok, k in zip(out["best_model"], out["gain_pp"], out["needed_pp"],
                                  out["in_study"], out["n_reward"], strict=True)
    ]  # fmt: skip
    return out


def admitted(table: pd.DataFrame) -> list[str]:
    """The datasets :func:`admit_datasets` kept, in the table's order."""
    return [str(d) for d in table.loc[table["in_study"].astype(bool), "dataset"]]
