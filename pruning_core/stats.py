"""Statistics shared by the studies: t intervals, Welch effects, paired effects (differences,
ratios of positive quantities, bootstrap means of bounded ones), Holm's correction."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "bootstrap_mean_ci",
    "cluster_bootstrap",
    "bootstrap_paired_mean",
    "finite_or_none",
    "holm",
    "min_detectable_difference",
    "paired_difference",
    "paired_ratio",
    "t_interval",
]


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two ends of a Student-t confidence interval of the mean.

    With one value the ends are NaN; with values that are all equal they equal the mean.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half


def cluster_bootstrap(
    columns: Sequence[Sequence[float]],
    clusters: Sequence[Any],
    stat: Any,
    seed: int = 0,
    resamples: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """A statistic of paired columns and its percentile interval from a bootstrap that resamples
    **clusters** (every row of a drawn cluster together), not rows: n counts what varies.

    ``stat(*arrays)`` takes the columns' rows of one resample (e.g. ``np.mean`` or a ratio of
    means). With fewer than two clusters the ends are NaN.
    """
    cols = [np.asarray(c, dtype=float) for c in columns]
    keys = np.asarray(list(clusters))
    ok = np.all([np.isfinite(c) for c in cols], axis=0)
    cols, keys = [c[ok] for c in cols], keys[ok]
    if not len(keys):
        return math.nan, math.nan, math.nan
    est = float(stat(*cols))
    groups = [np.flatnonzero(keys == k) for k in dict.fromkeys(keys.tolist())]
    if len(groups) < 2:
        return est, math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = np.empty(resamples)
    for r in range(resamples):
        idx = np.concatenate([groups[i] for i in rng.integers(0, len(groups), len(groups))])
        draws[r] = stat(*(c[idx] for c in cols))
    a = (1 - confidence) / 2
    return est, float(np.quantile(draws, a)), float(np.quantile(draws, 1 - a))


def bootstrap_mean_ci(
    values: Sequence[float], seed: int = 0, resamples: int = 2000, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Mean and a seeded percentile-bootstrap interval of it.

    The interval stays within the range of the values, so it respects the range of a bounded
    quantity (a compression >= 1, a share in [0, 1], an entropy >= 0) where a t interval on a
    few skewed values would not. With fewer than two distinct values it collapses to the mean.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) < 2 or np.all(x == x[0]):
        return m, m, m
    res = stats.bootstrap((x,), np.mean, n_resamples=resamples, method="percentile",
                          confidence_level=confidence, random_state=np.random.default_rng(seed))  # fmt: skip
    return m, float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_difference(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> dict[str, Any]:
    """Paired difference ``a - b`` (same seeds, same order): mean, t interval, paired t-test p.

    Also the exact Wilcoxon signed-rank p (no normality assumed; with 5 pairs it cannot go
    below 0.0625, which the caller should say). Pairs with a non-finite side are dropped;
    ``n`` says how many remain. All differences equal: the interval collapses to them and
    p is 1 if they are 0, else 0.
    """
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples need the same length, got {len(x)} and {len(y)}")
    d = (x - y)[np.isfinite(x) & np.isfinite(y)]
    mean, low, high = t_interval(d, confidence)
    out: dict[str, Any] = {"n": int(len(d)), "mean": mean, "ci95": [low, high], "p": math.nan,
                           "p_wilcoxon": math.nan}  # fmt: skip
    if len(d) < 2:
        return out
    if np.all(d == d[0]):
        out["p"] = out["p_wilcoxon"] = 1.0 if d[0] == 0.0 else 0.0
        return out
    out["p"] = float(stats.ttest_1samp(d, 0.0).pvalue)
    if np.any(d != 0):
        out["p_wilcoxon"] = float(stats.wilcoxon(d, zero_method="zsplit").pvalue)
    return out


def finite_or_none(value: Any) -> Any:
    """``value`` with NaN / infinite numbers replaced by None (JSON null), inside dicts and lists
    too; integers stay integers, numpy scalars become Python numbers, other values pass through."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return value
    return v if math.isfinite(v) else None


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values, in the input's order.

    With the m finite p-values sorted ascending, the i-th (from 0) becomes
    ``max over j <= i of min(1, (m - j) * p_(j))``: monotone in p, capped at 1. NaN p-values are
    left out of m and stay NaN. Reject at level alpha where the adjusted p is <= alpha.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(len(p), math.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * p[idx]))
        out[idx] = running
    return out


def min_detectable_difference(sd: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true mean paired difference a two-sided paired t-test at ``alpha`` detects
    with probability ``power``, for ``n`` pairs whose differences have standard deviation ``sd``:
    ``(t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n)`` (the usual noncentral-t
    approximation). NaN with fewer than two pairs or a non-finite ``sd``."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    df = n - 1
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * sd / math.sqrt(n))


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of ``a`` and ``b`` (same length) where both are finite."""
    x = np.asarray(a, dtype=float).ravel()
    y = np.asarray(b, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples need the same length, got {len(x)} and {len(y)}")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def paired_ratio(
    a: Sequence[float], b: Sequence[float], confidence: float = 0.95
) -> dict[str, Any]:
    """Ratio ``a / b`` of a positive quantity (compression, time), paired by position.

    ``ratio`` is the geometric mean of the paired ratios (``exp`` of the mean log difference),
    ``ci95`` the exponentiated Student-t interval of the mean log difference, so it is always
    positive and asymmetric around the ratio as a multiplicative effect should be; ``p`` is the
    paired t-test on the logs (H0: ratio 1), ``p_wilcoxon`` the exact signed-rank test on them.
    ``a_mean`` / ``b_mean`` are the geometric means of each side, ``mean_log`` and ``sd_log`` the
    mean and standard deviation of the log ratios. Pairs with a non-finite side are dropped
    (``n`` says how many remain); a value <= 0 raises ValueError.
    """
    x, y = _paired(a, b)
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("paired_ratio needs positive values (use paired_difference otherwise)")
    d = np.log(x) - np.log(y)
    if len(d) and np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):
        d = np.full_like(d, d.mean())  # equal ratios whose logs differ by rounding only
    res = paired_difference(d, np.zeros_like(d), confidence)
    low, high = res["ci95"]
    return {
        "n": res["n"],
        "ratio": math.exp(res["mean"]) if res["n"] else math.nan,
        "ci95": [math.exp(low) if math.isfinite(low) else math.nan,
                 math.exp(high) if math.isfinite(high) else math.nan],  # fmt: skip
        "p": res["p"],
        "p_wilcoxon": res["p_wilcoxon"],
        "a_mean": float(np.exp(np.log(x).mean())) if len(x) else math.nan,
        "b_mean": float(np.exp(np.log(y).mean())) if len(y) else math.nan,
        "mean_log": res["mean"],
        "sd_log": float(d.std(ddof=1)) if len(d) > 1 else math.nan,
    }


def bootstrap_paired_mean(
    a: Sequence[float],
    b: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
    method: str = "percentile",
) -> dict[str, Any]:
    """Mean paired difference ``a - b`` of a bounded quantity (a share in [0, 1]) with a
    seeded bootstrap interval (:func:`scipy.stats.bootstrap`, ``method`` percentile by default:
    its ends are means of resampled differences, so they stay within the observed differences
    and hence within the quantity's range, e.g. [-1, 1] for a difference of shares).

    ``p`` is the exact paired sign-flip permutation test of the mean difference (every sign
    pattern for up to 2**16 patterns, else ``n_resamples`` random ones; it cannot go below
    ``2 / 2**n`` with ``n`` pairs). All differences equal: the interval collapses to them and p
    is 1 if they are 0, else NaN for n < 2. ``sd`` is the differences' standard deviation.
    """
    x, y = _paired(a, b)
    d = x - y
    out: dict[str, Any] = {"n": int(len(d)), "mean": float(d.mean()) if len(d) else math.nan,
                           "ci95": [math.nan, math.nan], "p": math.nan,
                           "sd": float(d.std(ddof=1)) if len(d) > 1 else math.nan}  # fmt: skip
    if len(d) < 2:
        return out
    if np.all(d == d[0]):
        out["ci95"] = [float(d[0]), float(d[0])]
        out["p"] = 1.0 if d[0] == 0.0 else 2.0 / 2 ** len(d)
        return out
    rng = np.random.default_rng(seed)
    boot = stats.bootstrap(
        (d,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method=method,
        random_state=rng, vectorized=True,
    )  # fmt: skip
    out["ci95"] = [float(boot.confidence_interval.low), float(boot.confidence_interval.high)]
    perm = stats.permutation_test(
        (d,), lambda v, axis=-1: np.mean(v, axis=axis), permutation_type="samples",
        n_resamples=n_resamples if 2 ** len(d) > 2**16 else np.inf, random_state=rng,
        vectorized=True,
    )  # fmt: skip
    out["p"] = float(perm.pvalue)
    return out
