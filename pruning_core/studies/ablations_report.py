"""Notebook 05's read-out: learning-curve speed metrics, per-variant summaries, effects against
the default with intervals and Holm-corrected p-values, the ranking and the closing findings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pruning_core.stats import holm, t_interval, welch_effect

__all__ = [
    "auc",
    "common_level_episodes",
    "episodes_to_fixed_level",
    "effects",
    "episodes_to_level",
    "episodes_to_plateau",
    "ranking",
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


def episodes_to_plateau(
    episodes: Sequence[float],
    values: Sequence[float],
    window: int = 3,
    final_fraction: float = 0.25,
    level: float = 0.95,
) -> float:
    """The first episode at which a learning curve has covered ``level`` of its total progress.

    The curve (``values`` at ``episodes``, in order) is smoothed with a trailing running mean of
    ``window`` points; ``start`` is the first raw point, ``final`` the mean of the last
    ``ceil(final_fraction * n)`` raw points. Returns the first episode whose smoothed value is at
    least ``start + level * (final - start)``; the first episode if ``final <= start`` (nothing
    was learned), the last one if the smoothed curve never gets there.
    """
    ep = np.asarray(episodes, dtype=float)
    v = np.asarray(values, dtype=float)
    if len(ep) != len(v) or len(v) == 0:
        raise ValueError(f"need equally long, non-empty curves: got {len(ep)} and {len(v)} points")
    if window < 1 or not 0 < final_fraction <= 1 or not 0 < level <= 1:
        raise ValueError("need window >= 1, 0 < final_fraction <= 1 and 0 < level <= 1")
    smooth = pd.Series(v).rolling(window, min_periods=1).mean().to_numpy()
    start = float(v[0])
    final = float(v[-max(1, math.ceil(final_fraction * len(v))) :].mean())
    if not final > start:
        return float(ep[0])
    threshold = start + level * (final - start)
    hit = np.flatnonzero(smooth >= threshold - 1e-12)
    return float(ep[hit[0]]) if len(hit) else float(ep[-1])


def episodes_to_level(
    episodes: Sequence[float], values: Sequence[float], level: float, window: int = 3
) -> float:
    """The first episode at which the trailing running mean of ``window`` points reaches ``level``
    (the last episode if it never does)."""
    ep = np.asarray(episodes, dtype=float)
    smooth = pd.Series(np.asarray(values, dtype=float)).rolling(window, min_periods=1).mean()
    hit = np.flatnonzero(smooth.to_numpy() >= level - 1e-12)
    return float(ep[hit[0]]) if len(hit) else float(ep[-1])


def common_level_episodes(
    curves: pd.DataFrame, window: int = 3, final_fraction: float = 0.25, level: float = 0.95
) -> pd.DataFrame:
    """Episodes each configuration needs to reach one level that every configuration reaches.

    Per seed, the level is ``start + level * (worst_final - start)``: ``start`` is the first
    point of the curves (the untrained greedy policy, the same network for every configuration
    of a seed; their mean if they differ) and ``worst_final`` the lowest final level (mean of the
    last ``final_fraction`` of the points) among the configurations. Unlike
    :func:`episodes_to_plateau`, which measures each curve against its own final level, this
    compares learning speed on one scale. Returns seed, variant, common_level,
    episodes_to_common_level.
    """
    rows = []
    for seed, g in curves.groupby("seed", sort=True):
        finals, starts = {}, []
        for name, c in g.groupby("variant", sort=False):
            v = c.sort_values("episode")["yardstick"].to_numpy(float)
            starts.append(v[0])
            finals[name] = v[-max(1, math.ceil(final_fraction * len(v))) :].mean()
        start = float(np.mean(starts))
        target = start + level * (min(finals.values()) - start)
        for name, c in g.groupby("variant", sort=False):
            c = c.sort_values("episode")
            rows.append(
                {
                    "seed": seed,
                    "variant": name,
                    "common_level": target,
                    "episodes_to_common_level": episodes_to_level(
                        c["episode"], c["yardstick"], target, window
                    ),
                }
            )
    return pd.DataFrame(rows)


def summarise(runs: pd.DataFrame, metrics: Sequence[str], by: str = "variant") -> pd.DataFrame:
    """Per configuration and metric: seeds, mean and the 95% t-interval (tidy, long format)."""
    rows = []
    order = list(dict.fromkeys(runs[by]))
    for name in order:
        sub = runs[runs[by] == name]
        for m in metrics:
            mean, lo, hi = t_interval(sub[m].to_numpy(float))
            rows.append({by: name, "metric": m, "n": int(sub[m].notna().sum()), "mean": mean,
                         "ci_low": lo, "ci_high": hi})  # fmt: skip
    return pd.DataFrame(rows)


def effects(
    runs: pd.DataFrame, metrics: Sequence[str], default: str = "default", by: str = "variant"
) -> pd.DataFrame:
    """Each non-default configuration against ``default``, per metric (:func:`welch_effect`)."""
    ref = runs[runs[by] == default]
    rows = []
    for name in dict.fromkeys(runs[by]):
        if name == default:
            continue
        sub = runs[runs[by] == name]
        for m in metrics:
            e = welch_effect(sub[m].to_numpy(float), ref[m].to_numpy(float))
            rows.append(
                {
                    "ablation": sub["ablation"].iloc[0],
                    by: name,
                    "metric": m,
                    "default_mean": float(ref[m].mean()),
                    "mean": float(sub[m].mean()),
                    **e,
                    "n_default": len(ref),
                    "n": len(sub),
                }
            )
    return pd.DataFrame(rows)


def ranking(effect_tables: Sequence[pd.DataFrame], primary: dict[str, str]) -> pd.DataFrame:
    """What mattered most: every configuration's effect on its family's primary metric.

    ``primary`` maps a family (``purl`` / ``neon``) to its primary metric. Rows are ranked by
    the absolute difference of means within each family; ``p_holm`` is the Holm-adjusted p-value
    over all rows of the family (many configurations are compared with one default).
    """
    parts = []
    for table in effect_tables:
        for family, metric in primary.items():
            is_neon = table["ablation"].eq("neon")
            sub = table[(is_neon if family == "neon" else ~is_neon) & table["metric"].eq(metric)]
            if len(sub):
                parts.append(sub.assign(family=family))
    df = pd.concat(parts, ignore_index=True)
    out = []
    for _family, g in df.groupby("family", sort=False):
        g = g.assign(abs_diff=g["diff"].abs()).sort_values("abs_diff", ascending=False)
        g = g.assign(rank=np.arange(1, len(g) + 1), p_holm=holm(g["p_value"].to_numpy(float)))
        out.append(g)
    cols = ["family", "rank", "ablation", "variant", "metric", "default_mean", "mean", "diff",
            "ci_low", "ci_high", "p_value", "p_holm", "n_default", "n"]  # fmt: skip
    return pd.concat(out, ignore_index=True)[cols]


def _g3(x: float) -> str:
    """A p-value or ratio to three significant digits, "n/a" when it is not finite."""
    return "n/a" if not np.isfinite(x) else f"{x:.3g}"


def findings(
    runs: dict[str, pd.DataFrame],
    effect_table: pd.DataFrame,
    rank: pd.DataFrame,
    alpha: float = 0.05,
) -> str:
    """The measured facts behind notebook 05's conclusions, as Markdown (a bullet per ablation).

    ``runs`` maps an ablation to its per-seed run table (``reward_timing``, ``reward_shape``,
    ``state``, ``action_space``, ``agent``, ``neon``); ``effect_table`` holds every effect
    (:func:`effects`) and ``rank`` the ranking (:func:`ranking`). Computed from the tables so that
    the closing text of a notebook never quotes numbers of another run.
    """
    missing = {"reward_timing", "reward_shape", "action_space", "agent", "neon"} - set(runs)
    if missing:
        raise KeyError(f"findings() needs the run tables of {sorted(missing)}")
    out: list[str] = []
    # every PuRL configuration's means over seeds, computed once: by_cfg.loc[ablation] is the
    # per-variant table of one ablation
    purl_names = ("reward_timing", "reward_shape", "state", "action_space", "agent")
    allp = pd.concat([runs[k] for k in purl_names if k in runs], ignore_index=True)
    by_cfg = allp.groupby(["ablation", "variant"], sort=False).mean(numeric_only=True)

    t = runs["reward_timing"]
    tm = by_cfg.loc["reward_timing"]
    wide = t.pivot_table(index="seed", columns="variant", values="episodes_to_common_level")
    first = int((wide["step"] < wide["episodic"]).sum())
    ties = int((wide["step"] == wide["episodic"]).sum())
    s_c, e_c = (
        tm.loc["step", "episodes_to_common_level"],
        tm.loc["episodic", "episodes_to_common_level"],
    )
    ratio = e_c / s_c if s_c > 0 else math.nan
    out.append(
        f"**Reward timing.** Episodes to the common level: per-step reward {s_c:.0f}, "
        f"end-of-episode reward {e_c:.0f} (ratio {_g3(ratio)}); the per-step agent got there first "
        f"with {first} of {len(wide)} seeds"
        + (f" ({ties} {'tie' if ties == 1 else 'ties'})" if ties else "")
        + ". "
        f"Episodes to each one's own plateau: {tm.loc['step', 'episodes_to_plateau']:.0f} against "
        f"{tm.loc['episodic', 'episodes_to_plateau']:.0f}. Final yardstick "
        f"{tm.loc['step', 'yardstick']:.2f} against {tm.loc['episodic', 'yardstick']:.2f}, at "
        f"sparsity {tm.loc['step', 'sparsity']:.2f} against {tm.loc['episodic', 'sparsity']:.2f}."
    )

    purl = rank[rank["family"] == "purl"]
    if len(purl):
        top = purl.iloc[0]
        sig = purl[purl["p_holm"] < alpha]
        sig_text = ", ".join(f"{r.ablation}:{r.variant} ({r.diff:+.2f})" for r in sig.itertuples())
        out.append(
            f"**Largest PuRL effect.** {top['ablation']}:{top['variant']} moves the yardstick from "
            f"{top['default_mean']:.2f} to {top['mean']:.2f} ({top['diff']:+.2f}, Holm-adjusted p "
            f"{_g3(top['p_holm'])}). Significant after Holm's adjustment at {alpha:g}: "
            f"{sig_text or 'none'}."
        )

    if ("agent", "random_search") in by_cfg.index:
        rs = by_cfg.loc[("agent", "random_search"), "yardstick"]
        # the "default" rows of the other ablations are the same runs as agent:default
        same = [(a, v) for a, v in by_cfg.index if v == "default" and a != "agent"]
        dqn = by_cfg.drop(index=[("agent", "random_search"), *same])["yardstick"]
        best = dqn.idxmax()
        out.append(
            f"**Random search.** Best of as many random episodes as the DQN's: yardstick {rs:.2f}; "
            f"the best DQN configuration ({best[0]}:{best[1]}) {dqn.max():.2f}; random search "
            f"beats {int((rs > dqn).sum())} of the {len(dqn)} DQN configurations."
        )

    default_collapse = by_cfg.loc[("agent", "default"), "late_collapses"]
    calm = [f"{a}:{v}" for (a, v), x in by_cfg["late_collapses"].items()
            if x == 0 and v not in ("default", "random_search")]  # fmt: skip
    out.append(
        f"**Late collapses.** The default's greedy policy prunes a layer away (validation accuracy "
        f"below half the dense one) in {default_collapse:.0%} of its late evaluations; "
        f"configurations with none: {', '.join(calm) or 'none'}."
    )

    later = effect_table[(effect_table["metric"] == "episodes_to_plateau")
                         & (effect_table["p_value"] < alpha)]  # fmt: skip
    plateau_text = ", ".join(
        f"{r.ablation}:{r.variant} {r.mean:.0f} vs {r.default_mean:.0f} (p {_g3(r.p_value)})"
        for r in later.itertuples()
    )
    shape, act = by_cfg.loc["reward_shape"], by_cfg.loc["action_space"]
    extra = []
    if "neon_C1" in shape.index:
        extra.append(
            f"NEON's reward (C = 1) in PuRL's MDP: sparsity {shape.loc['neon_C1', 'sparsity']:.2f} "
            f"at test accuracy {shape.loc['neon_C1', 'test_accuracy']:.3f} (default "
            f"{shape.loc['default', 'sparsity']:.2f} at {shape.loc['default', 'test_accuracy']:.3f})."
        )
    if "passes_3" in act.index:
        extra.append(
            f"Three passes cost {act.loc['passes_3', 'seconds'] / act.loc['default', 'seconds']:.1f}x "
            "the default's time per run."
        )
    out.append(
        "**Plateau episodes** that differ from the default at Welch p < "
        f"{alpha:g} (unadjusted): {plateau_text or 'none'}. " + " ".join(extra)
    )

    n = runs["neon"].groupby("variant", sort=False).mean(numeric_only=True)
    d = n.loc["default"]
    parts = [
        f"{v} x{r['train_compression']:.1f} (greedy x{r['compression']:.1f}, validation "
        f"{r['delta_val_pp']:+.1f} pp, {r['seconds_per_episode'] / d['seconds_per_episode']:.2f}x "
        "the time per episode)"
        for v, r in n.iterrows()
        if v != "default"
    ]
    out.append(
        f"**NEON.** Compression of the sampled policy late in training: default "
        f"x{d['train_compression']:.1f} (greedy x{d['compression']:.1f}, validation "
        f"{d['delta_val_pp']:+.1f} pp); " + "; ".join(parts) + "."
    )
    return "\n".join(f"* {line}" for line in out)

