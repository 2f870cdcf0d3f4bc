"""Notebook 05's learning-curve metrics (area under the greedy curve, episodes to a level fixed
before the run) and per-variant summaries (mean and t interval over seeds). The effects against
each default live in :mod:`pruning_core.studies.ablations_effects`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pruning_core.stats import bootstrap_mean_ci, t_interval

__all__ = [
    "auc",
    "episodes_to_fixed_level",
    "summarise",
]


def auc(episodes: Sequence[float], values: Sequence[float]) -> float:
    """Area under a learning curve per episode: the trapezoid integral of ``values`` over
    ``episodes`` divided by the span ``episodes[-1] - episodes[0]`` (a time-weighted mean of the
    curve, in the curve's units); the single value when there is one point.

    A curve that gets to the same level sooner has the larger area: speed and level in one number.
    """
    ep = np.asarray(episodes, dtype=float)
    v = np.asarray(values, dtype=float)
    if len(ep) != len(v) or len(v) == 0:
        raise ValueError(f"need equally long, non-empty curves: got {len(ep)} and {len(v)} points")
    span = ep[-1] - ep[0]
    if len(v) == 1 or span <= 0:
        return float(v.mean())
    return float(np.sum((v[1:] + v[:-1]) / 2 * np.diff(ep)) / span)


def episodes_to_fixed_level(
    episodes: Sequence[float], values: Sequence[float], level: float, window: int = 3
) -> tuple[bool, float]:
    """``(reached, episode)``: the first evaluation episode at which the trailing mean of the last
    ``window`` points (fewer at the start) is at least ``level``, a level fixed before the run.

    A curve that never gets there is **censored**: ``(False, last episode)``, and that episode is
    a lower bound on the true episodes to the level (the horizon).
    """
    ep = np.asarray(episodes, dtype=float)
    v = np.asarray(values, dtype=float)
    if len(ep) != len(v) or len(v) == 0:
        raise ValueError(f"need equally long, non-empty curves: got {len(ep)} and {len(v)} points")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    smooth = pd.Series(v).rolling(window, min_periods=1).mean().to_numpy()
    hit = np.flatnonzero(smooth >= level - 1e-12)
    return (True, float(ep[hit[0]])) if len(hit) else (False, float(ep[-1]))


def summarise(
    runs: pd.DataFrame,
    metrics: Sequence[str],
    by: str = "variant",
    bounded: Sequence[str] = (),
    seed: int = 0,
) -> pd.DataFrame:
    """Per configuration and metric: seeds, mean and a 95% interval (tidy, long format).

    Metrics in ``bounded`` (a compression, a share, an accuracy, an entropy: quantities with a
    range) get a seeded percentile-bootstrap interval, which stays within the values' range; the
    others a Student-t interval. The ``interval`` column says which.
    """
    rows = []
    order = list(dict.fromkeys(runs[by]))
    for name in order:
        sub = runs[runs[by] == name]
        for m in metrics:
            x = sub[m].to_numpy(float)
            boot = m in bounded
            mean, lo, hi = bootstrap_mean_ci(x, seed) if boot else t_interval(x)
            rows.append({by: name, "metric": m, "n": int(np.isfinite(x).sum()), "mean": mean,
                         "ci_low": lo, "ci_high": hi,
                         "interval": "bootstrap" if boot else "t"})  # fmt: skip
    return pd.DataFrame(rows)
