"""Censoring-aware episodes-to-level for notebook 05's reward-timing race.

A run that never reaches the level by its horizon is **right-censored**: all we know is that it
would need more episodes. Counting it at the horizon (the old bound) biases the mean down; the
Kaplan-Meier estimate (:func:`km_median`, ``scipy.stats.ecdf`` on ``CensoredData``) uses each
censored run only while it is still at risk. Its median is the number of episodes by which half
the runs reach the level (undefined, NaN, when fewer than half ever do); its 95% interval is
where the pointwise log-log band of the survival curve crosses 0.5. The restricted mean (area
under the survival curve up to the horizon) is always defined and is a lower bound on the mean.

:func:`ratio_interval` bootstraps seeds in pairs for the ratio of the two arms' medians;
:func:`horizon_rule` is the rule that the end-of-episode arm runs at least ``factor`` times the
per-step arm's mean episodes-to-level.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["horizon_rule", "km_median", "ratio_interval"]


def _first_below(t: np.ndarray, sf: np.ndarray, p: float = 0.5) -> float:
    """The first time at which the survival curve ``sf`` is at most ``p`` (NaN: never)."""
    hit = np.flatnonzero(np.nan_to_num(sf, nan=1.0) <= p + 1e-12)
    return float(t[hit[0]]) if len(hit) else float("nan")


def km_median(
    times: Sequence[float], reached: Sequence[bool], horizon: float | None = None
) -> dict[str, Any]:
    """Kaplan-Meier median of the episodes to the level, runs not ``reached`` censored.

    Returns ``median`` (NaN when the survival curve never falls to 0.5), ``ci95`` (the log-log
    band's crossings of 0.5; an end is NaN when that band never crosses), ``restricted_mean``
    (area under the survival curve from 0 to ``horizon``, default the largest time),
    ``censored_share`` and ``n``.
    """
    t = np.asarray(times, dtype=float)
    r = np.asarray(reached, dtype=bool)
    if len(t) == 0 or len(t) != len(r):
        raise ValueError(f"need equally long, non-empty inputs: got {len(t)} and {len(r)}")
    h = float(t.max() if horizon is None else horizon)
    out: dict[str, Any] = {"censored_share": float(1 - r.mean()), "n": int(len(t))}
    if not r.any():
        return {**out, "median": float("nan"), "ci95": [float("nan"), float("nan")],
                "restricted_mean": h}  # fmt: skip
    res = stats.ecdf(stats.CensoredData(uncensored=t[r], right=t[~r]))
    sf = res.sf
    q = np.asarray(sf.quantiles, dtype=float)
    p = np.asarray(sf.probabilities, dtype=float)
    with warnings.catch_warnings():  # undefined where S is 0 or 1: the band is NaN there
        warnings.simplefilter("ignore", RuntimeWarning)
        band = sf.confidence_interval(confidence_level=0.95, method="log-log")
    low = np.asarray(band.low.evaluate(q), dtype=float)
    high = np.asarray(band.high.evaluate(q), dtype=float)
    steps = np.concatenate([[0.0], q[q < h], [h]])
    levels = np.concatenate([[1.0], p[q < h]])
    rmst = float(np.sum(np.diff(steps) * levels))
    return {**out, "median": _first_below(q, p),
            "ci95": [_first_below(q, low), _first_below(q, high)],
            "restricted_mean": rmst}  # fmt: skip


def ratio_interval(
    step: tuple[Sequence[float], Sequence[bool]],
    episodic: tuple[Sequence[float], Sequence[bool]],
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """KM median ratio episodic / step with a paired percentile bootstrap over seeds.

    ``step`` and ``episodic`` are ``(times, reached)`` of the same seeds in the same order. A
    resample whose episodic median is undefined (fewer than half reached) counts as an infinite
    ratio, one whose step median is undefined is dropped. Returns ``ratio`` (NaN when the
    episodic median is undefined), ``ci95`` (``[lo, hi]``, ``hi`` None when unbounded),
    ``ratio_restricted`` (of the restricted means: a lower bound when the episodic arm is
    censored) and ``undefined_share`` (resamples with an infinite ratio).
    """
    ts, rs = np.asarray(step[0], float), np.asarray(step[1], bool)
    te, re = np.asarray(episodic[0], float), np.asarray(episodic[1], bool)
    if len(ts) != len(te):
        raise ValueError("the two arms need the same seeds")
    h_s, h_e = float(ts.max()), float(te.max())
    ms, me = km_median(ts, rs)["median"], km_median(te, re)["median"]
    rest = km_median(te, re, h_e)["restricted_mean"] / km_median(ts, rs, h_s)["restricted_mean"]
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_boot):
        i = rng.integers(0, len(ts), size=len(ts))
        a = km_median(ts[i], rs[i], h_s)["median"]
        b = km_median(te[i], re[i], h_e)["median"]
        if math.isfinite(a) and a > 0:
            ratios.append(b / a if math.isfinite(b) else math.inf)
    arr = np.sort(np.asarray(ratios, dtype=float))
    if len(arr) == 0:
        ci: list[float | None] = [float("nan"), None]
    else:
        lo = float(arr[int(math.floor(0.025 * (len(arr) - 1)))])
        hi = float(arr[int(math.ceil(0.975 * (len(arr) - 1)))])
        ci = [lo, hi if math.isfinite(hi) else None]
    ratio = me / ms if math.isfinite(me) and math.isfinite(ms) and ms > 0 else float("nan")
    return {"ratio": ratio, "ci95": ci, "ratio_restricted": float(rest),
            "undefined_share": float(np.mean(np.isinf(arr))) if len(arr) else float("nan")}  # fmt: skip


def horizon_rule(step_times: Sequence[float], horizon: int, factor: float = 3.0) -> dict[str, Any]:
    """Does the end-of-episode arm's ``horizon`` reach ``factor`` x the per-step arm's mean
    episodes-to-level? ``required`` (that product) and ``met``."""
    required = factor * float(np.mean(np.asarray(step_times, dtype=float)))
    return {"required": required, "met": bool(horizon >= required - 1e-9), "factor": factor}
