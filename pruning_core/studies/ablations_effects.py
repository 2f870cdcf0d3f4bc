"""Notebook 05's closing table: the effect of every variant against its ablation's default.

:func:`effects_table` reads a tidy run table (one row per ablation, variant and seed; the same
seeds in every variant of an ablation) and, per non-default variant and metric, pairs the runs
with the default's by seed and estimates the effect with an interval that respects the range of
its quantity (issue 16):

* ``"difference"`` (an unbounded quantity: an accuracy change in points, a yardstick): the mean
  paired difference, its Student-t interval and the paired t-test
  (:func:`pruning_core.stats.paired_difference`);
* ``"ratio"`` (a positive quantity: compression, seconds): the geometric mean of the paired
  ratios, the exponentiated t interval of the mean log ratio (always > 0) and the paired t-test on
  the logs (:func:`pruning_core.stats.paired_ratio`);
* ``"share"`` (a quantity in [0, 1]: the share of networks within C): the mean paired difference,
  a seeded percentile bootstrap interval (within [-1, 1]) and the exact sign-flip permutation
  test (:func:`pruning_core.stats.bootstrap_paired_mean`).

``p_holm`` is Holm's adjustment (:func:`pruning_core.stats.holm`) over a **family**: every row of
the same ``family`` label and metric (e.g. all PuRL ablations' yardstick); :func:`adjust_holm`
recomputes it after tables of several calls are concatenated. :func:`ranking` orders the rows
and :func:`findings_lines` writes one plain sentence per row from the numbers in the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pruning_core.stats import bootstrap_paired_mean, holm, paired_difference, paired_ratio

__all__ = [
    "EFFECT_COLUMNS",
    "KINDS",
    "adjust_holm",
    "effects_table",
    "findings_lines",
    "ranking",
    "study_effects",
]


KINDS: tuple[str, ...] = ("difference", "ratio", "share")
"""The kinds of metric :func:`effects_table` knows (see the module docstring)."""


EFFECT_COLUMNS: tuple[str, ...] = (
    "family", "ablation", "variant", "metric", "kind", "n", "default_mean", "variant_mean",
    "effect", "ci_low", "ci_high", "p", "p_holm", "std_effect", "test",
)  # fmt: skip
"""The columns of :func:`effects_table`. ``effect`` is variant - default (``difference``,
``share``) or variant / default (``ratio``, the geometric mean of the paired ratios; then the
two means are geometric means). ``std_effect`` is the standardised paired effect: the mean
paired difference over its standard deviation (on the log scale for a ratio; +-inf when every
pair differs by the same nonzero amount)."""


_TESTS = {
    "difference": "paired t",
    "ratio": "paired t on logs",
    "share": "bootstrap CI, sign-flip permutation p",
}


def _defaults(default: str | Mapping[str, str], ablations: Sequence[str]) -> dict[str, str]:
    if isinstance(default, str):
        return {a: default for a in ablations}
    missing = [a for a in ablations if a not in default]
    if missing:
        raise ValueError(f"no default variant given for ablation(s) {missing}")
    return {a: default[a] for a in ablations}


def _std_effect(mean: float, sd: float) -> float:
    if not math.isfinite(mean):
        return math.nan
    if not math.isfinite(sd):
        return math.nan
    if sd == 0.0:
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    return mean / sd


def _effect(kind: str, v: np.ndarray, d: np.ndarray, seed: int) -> dict[str, Any]:
    """One metric's effect of a variant (``v``) against the default (``d``), paired arrays."""
    if kind == "ratio":
        r = paired_ratio(v, d)
        return {"n": r["n"], "default_mean": r["b_mean"], "variant_mean": r["a_mean"],
                "effect": r["ratio"], "ci_low": r["ci95"][0], "ci_high": r["ci95"][1],
                "p": r["p"], "std_effect": _std_effect(r["mean_log"], r["sd_log"])}  # fmt: skip
    ok = np.isfinite(v) & np.isfinite(d)
    if kind == "share":
        if np.any((v[ok] < 0) | (v[ok] > 1) | (d[ok] < 0) | (d[ok] > 1)):
            raise ValueError("a 'share' metric must lie in [0, 1]")
        r = bootstrap_paired_mean(v, d, seed=seed)
        sd = r["sd"]
    else:
        r = paired_difference(v, d)
        diff = (v - d)[ok]
        sd = float(diff.std(ddof=1)) if len(diff) > 1 else math.nan
    return {"n": r["n"], "default_mean": float(d[ok].mean()) if ok.any() else math.nan,
            "variant_mean": float(v[ok].mean()) if ok.any() else math.nan, "effect": r["mean"],
            "ci_low": r["ci95"][0], "ci_high": r["ci95"][1], "p": r["p"],
            "std_effect": _std_effect(r["mean"], sd)}  # fmt: skip


def effects_table(
    runs: pd.DataFrame,
    metrics: Mapping[str, str],
    default: str | Mapping[str, str] = "default",
    family: str = "all",
    seed: int = 0,
) -> pd.DataFrame:
    """Every non-default variant against its ablation's default, per metric (columns
    :data:`EFFECT_COLUMNS`, in the order of the runs' ablations, variants and ``metrics``).

    ``runs`` has columns ``variant``, ``seed``, the metrics and optionally ``ablation`` (absent:
    one ablation named ``""``); one row per (ablation, variant, seed). ``metrics`` maps a metric
    to its kind (:data:`KINDS`). ``default`` names the reference variant, or one per ablation
    (e.g. ``{"reward_timing": "step", ...}``). Runs pair by seed; pairs where either side is not
    finite are dropped (``n`` counts the rest). ``family`` labels the rows; ``p_holm`` adjusts
    ``p`` over the rows of one family and metric. ``seed`` seeds the bootstrap of shares.

    ValueError: an unknown kind or missing column, a missing default, a repeated seed within a
    variant, or a variant whose seeds are not the default's.
    """
    bad = {m: k for m, k in metrics.items() if k not in KINDS}
    if bad:
        raise ValueError(f"unknown metric kinds {bad}; use one of {KINDS}")
    need = ["variant", "seed", *metrics]
    missing = [c for c in need if c not in runs.columns]
    if missing:
        raise ValueError(f"runs lack column(s) {missing}")
    runs = runs if "ablation" in runs.columns else runs.assign(ablation="")
    ablations = list(dict.fromkeys(runs["ablation"]))
    defaults = _defaults(default, ablations)
    rows = []
    for abl in ablations:
        sub = runs[runs["ablation"] == abl]
        dup = sub.duplicated(["variant", "seed"])
        if dup.any():
            first = sub[dup].iloc[0]
            raise ValueError(
                f"ablation {abl!r}: variant {first['variant']!r} has seed {first['seed']!r} twice"
            )
        ref_name = defaults[abl]
        ref = sub[sub["variant"] == ref_name].set_index("seed")
        if ref.empty:
            raise ValueError(
                f"ablation {abl!r}: no runs of the default variant {ref_name!r} "
                f"(variants: {sorted(set(sub['variant']))})"
            )
        for var in dict.fromkeys(sub["variant"]):
            if var == ref_name:
                continue
            other = sub[sub["variant"] == var].set_index("seed")
            if set(other.index) != set(ref.index):
                raise ValueError(
                    f"ablation {abl!r}: variant {var!r} has seeds {sorted(other.index)}, the "
                    f"default {ref_name!r} has {sorted(ref.index)}; effects pair runs by seed"
                )
            joined = ref[list(metrics)].merge(
                other[list(metrics)], how="inner", left_index=True, right_index=True,
                suffixes=("_d", "_v"),
            ).sort_index()  # fmt: skip
            for m, kind in metrics.items():
                d = joined[f"{m}_d"].to_numpy(float)
                v = joined[f"{m}_v"].to_numpy(float)
                rows.append({"family": family, "ablation": abl, "variant": var, "metric": m,
                             "kind": kind, **_effect(kind, v, d, seed),
                             "test": _TESTS[kind]})  # fmt: skip
    out = pd.DataFrame(rows, columns=[c for c in EFFECT_COLUMNS if c != "p_holm"])
    return adjust_holm(out)


def adjust_holm(effects: pd.DataFrame, by: Sequence[str] = ("family", "metric")) -> pd.DataFrame:
    """``effects`` with ``p_holm``: Holm's adjustment of ``p`` within each group of ``by``
    (default: one family's rows of one metric), after the ``p`` column; the input is unchanged."""
    out = effects.drop(columns=["p_holm"], errors="ignore").copy()
    adj = pd.Series(math.nan, index=out.index, dtype=float)
    if len(out):
        for _key, g in out.groupby(list(by), sort=False, dropna=False):
            adj.loc[g.index] = holm(g["p"].to_numpy(float))
    out.insert(out.columns.get_loc("p") + 1, "p_holm", adj)
    return out


def ranking(effects: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """The rows of ``effects`` ordered: those with Holm-adjusted p below ``alpha`` first, then
    by the size of the standardised effect (``|std_effect|``, largest first; NaN last); a
    ``significant`` column and a ``rank`` (1, 2, ... over the whole table) are added."""
    out = effects.copy()
    out["significant"] = out["p_holm"].lt(alpha)
    size = out["std_effect"].abs()
    out = out.assign(_size=size.fillna(-1.0)).sort_values(
        ["significant", "_size"], ascending=[False, False], kind="stable"
    )
    out = out.drop(columns="_size").reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _g(x: float, digits: int) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}g}"


def _p(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return "< 0.001" if x < 0.001 else f"= {x:.2g}"


def findings_lines(effects: pd.DataFrame, digits: int = 3, alpha: float = 0.05) -> list[str]:
    """One plain-English sentence per row of ``effects`` (in its order; pass :func:`ranking`'s
    table to lead with what mattered), with the table's own numbers, e.g. ``passes_1 (neon)
    changed delta_test_pp by +1.2 (95% CI -0.3 to 2.7, Holm p = 0.41; 6 paired seeds)``; a
    ratio reads ``multiplied compression by x0.52 (95% CI x0.31 to x0.87, ...)``."""
    lines = []
    for r in effects.itertuples(index=False):
        who = f"{r.variant} ({r.ablation})" if r.ablation else str(r.variant)
        p_holm = getattr(r, "p_holm", math.nan)
        tail = f"Holm p {_p(p_holm)}; {int(r.n)} paired seeds"
        if r.kind == "ratio":
            what = (f"multiplied {r.metric} by x{_g(r.effect, digits)} (95% CI "
                    f"x{_g(r.ci_low, digits)} to x{_g(r.ci_high, digits)}, {tail})")  # fmt: skip
        else:
            sign = "+" if math.isfinite(r.effect) and r.effect >= 0 else ""
            what = (f"changed {r.metric} by {sign}{_g(r.effect, digits)} (95% CI "
                    f"{_g(r.ci_low, digits)} to {_g(r.ci_high, digits)}, {tail})")  # fmt: skip
        verdict = ("a difference that survives Holm's adjustment at "
                   f"{alpha:g}" if math.isfinite(p_holm) and p_holm < alpha
                   else "not distinguishable from the default at this number of seeds")  # fmt: skip
        lines.append(f"{who} {what}: {verdict}.")
    return lines


PURL_EFFECT_METRICS: dict[str, str] = {"yardstick_rescored": "difference", "auc": "difference",
                                       "sparsity": "difference", "heldout_accuracy": "difference"}  # fmt: skip
"""Notebook 05's metrics of the PuRL ablations on the small CNN."""


TIMING_EFFECT_METRICS: dict[str, str] = {"auc": "difference",
                                         "yardstick_rescored": "difference"}  # fmt: skip
"""Notebook 05's metrics of the reward-timing comparison (episodic against step). Episodes to
the level are not here: censored runs make a paired difference a bound, and the Kaplan-Meier
estimate of :func:`~.ablations_timing.reward_timing_summary` carries them. The end-of-episode
arm's deployed policy is the one it had when it stopped (at the level or its horizon)."""


SEARCH_EFFECT_METRICS: dict[str, str] = {"yardstick_rescored": "difference",
                                         "test_accuracy": "difference"}  # fmt: skip
"""Notebook 05's metrics of random search against the DQN (both re-scored)."""


NEON_EFFECT_METRICS: dict[str, str] = {"compression": "ratio", "delta_test_pp": "difference",
                                       "within_C_share": "share", "seconds_per_episode": "ratio"}  # fmt: skip
"""Notebook 05's metrics of the NEON ablations."""


def study_effects(
    purl_runs: pd.DataFrame,
    timing_runs: Mapping[str, pd.DataFrame],
    search_runs: Mapping[str, pd.DataFrame],
    neon_runs: pd.DataFrame,
) -> pd.DataFrame:
    """Notebook 05's closing table from its run files: per network (keys of ``timing_runs`` and
    ``search_runs``) the headline comparisons (family ``headline``: episodic against step,
    random search against the DQN), then the PuRL ablations on the small CNN and NEON's, with
    Holm's adjustment per family and metric (:func:`adjust_holm`).

    Random search's learning curve is its best so far on the reward split, not a greedy policy,
    so its AUC is not comparable with a DQN's: only its re-scored numbers enter the table.
    """
    heads = []
    for net, t in timing_runs.items():
        r = search_runs[net]
        heads += [
            effects_table(t.assign(ablation=f"reward_timing:{net}"), TIMING_EFFECT_METRICS,
                          default="step", family="headline"),
            effects_table(r.assign(ablation=f"agent:{net}"), SEARCH_EFFECT_METRICS,
                          family="headline"),
        ]  # fmt: skip
    purl = effects_table(purl_runs, PURL_EFFECT_METRICS, family="purl (small CNN)")
    purl = purl[~((purl["variant"] == "random_search") & (purl["metric"] == "auc"))]
    neon = effects_table(neon_runs, NEON_EFFECT_METRICS, family="neon")
    return adjust_holm(pd.concat([*heads, purl, neon], ignore_index=True))
