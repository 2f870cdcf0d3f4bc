"""Tables and the summary of the PuRL study (notebooks 02 and 03), from the jobs' rows.

Every comparison is paired by seed (the same dense network, seed, target and fine-tuning for
both sides) and reported in percentage points with a 95% t interval, a paired t-test and an
exact Wilcoxon signed-rank test (:func:`pruning_core.stats.paired_difference`), Holm-adjusted
over the study's comparisons (``p_holm``), with the minimum detectable difference of each
(paired t, 80% power, alpha 0.05, from the seeds' SD of the differences) beside it.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any

import pandas as pd

from pruning_core.config import WORKER_THREADS
from pruning_core.data.splits import Splits
from pruning_core.models.cnn import build_model
from pruning_core.pruning.report import sparsity_report
from pruning_core.stats import (
    finite_or_none,
    holm,
    min_detectable_difference,
    paired_difference,
    t_interval,
)
from pruning_core.studies.purl import CONTROL, METHODS, UNIFORM_ALPHA, PurlStudySizes

CHECKPOINT_LOADER = "pruning_core.pruning.export.load_compact"
"""The function that reads the committed (compact) checkpoint back into a plain state_dict."""


def results_table(rows: pd.DataFrame, dense_top1: float) -> pd.DataFrame:
    """One row per method, seed and target, with the change of test top-1 against dense in points."""
    t = rows.copy()
    t["delta_top1_pp"] = 100.0 * (t["top1"] - dense_top1)
    order = {m: i for i, m in enumerate((*METHODS, CONTROL))}
    t = t.sort_values(["target", "method", "seed"], key=lambda c: c.map(order) if c.name == "method" else c)
    return t.reset_index(drop=True)


def _interval(values: pd.Series, scale: float = 1.0) -> tuple[float, float, float]:
    m, lo, hi = t_interval((values * scale).tolist())
    return m, lo, hi


def curve_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy against sparsity: per method and PuRL target, mean and 95% interval over seeds."""
    out = []
    for (method, target), g in rows.groupby(["method", "target"], sort=False):
        s, s_lo, s_hi = _interval(g["sparsity_prunable"])
        a, a_lo, a_hi = _interval(g["top1"], 100.0)
        out.append({"method": method, "target": target, "n": len(g), "sparsity": s,
                    "sparsity_lo": s_lo, "sparsity_hi": s_hi, "top1_pct": a, "top1_lo": a_lo,
                    "top1_hi": a_hi})  # fmt: skip
    return pd.DataFrame(out)


def drop_table(rows: pd.DataFrame, dense_top1: float) -> pd.DataFrame:
    """PuRL's test top-1 drop against the dense network (points, positive = lost) per target."""
    out = []
    for target, g in rows[rows["method"] == "PuRL"].groupby("target"):
        drops = 100.0 * (dense_top1 - g["top1"])
        m, lo, hi = t_interval(drops.tolist())
        s, s_lo, s_hi = _interval(g["sparsity_prunable"])
        out.append({"target": target, "n": len(g), "sparsity": s, "sparsity_lo": s_lo,
                    "sparsity_hi": s_hi, "drop_pp": m, "drop_lo": lo, "drop_hi": hi})  # fmt: skip
    return pd.DataFrame(out)


def paired_table(rows: pd.DataFrame) -> pd.DataFrame:
    """PuRL minus each baseline, paired by seed, per target: test top-1 difference in points.

    ``p_holm`` is Holm's adjustment of ``p`` over every row (the study's comparisons);
    ``min_detectable_pp`` the difference a paired t-test would detect with 80% power at 0.05
    given the SD of that row's differences and its number of seeds.
    """
    out = []
    for target, g in rows.groupby("target"):
        purl = g[g["method"] == "PuRL"].set_index("seed")
        for method in METHODS[1:]:
            b = g[g["method"] == method].set_index("seed")
            seeds = sorted(set(purl.index) & set(b.index))
            if not seeds:
                continue
            d = paired_difference(100.0 * purl.loc[seeds, "top1"], 100.0 * b.loc[seeds, "top1"])
            diff = 100.0 * (purl.loc[seeds, "top1"] - b.loc[seeds, "top1"])
            out.append({
                "target": target, "baseline": method, "n": d["n"],
                "purl_sparsity": float(purl.loc[seeds, "sparsity_prunable"].mean()),
                "baseline_sparsity": float(b.loc[seeds, "sparsity_prunable"].mean()),
                "purl_top1_pct": 100.0 * float(purl.loc[seeds, "top1"].mean()),
                "baseline_top1_pct": 100.0 * float(b.loc[seeds, "top1"].mean()),
                "purl_minus_baseline_pp": d["mean"], "ci_low": d["ci95"][0], "ci_high": d["ci95"][1],
                "p": d["p"], "p_wilcoxon": d["p_wilcoxon"],
                "min_detectable_pp": min_detectable_difference(float(diff.std(ddof=1)), d["n"])
                if d["n"] > 1 else math.nan,
            })  # fmt: skip
    table = pd.DataFrame(out)
    if len(table):
        table["p_holm"] = holm(table["p"].to_numpy())
    return table


def control_difference(rows: pd.DataFrame, target: float) -> dict[str, Any]:
    """PuRL minus the dense network given the same fine-tuning (paired by seed), in points:
    the cost of pruning once the extra training both receive is taken out. Empty without it."""
    g = rows[rows["target"] == target]
    purl = g[g["method"] == "PuRL"].set_index("seed")["top1"]
    ctrl = g[g["method"] == CONTROL].set_index("seed")["top1"]
    seeds = sorted(set(purl.index) & set(ctrl.index))
    if not seeds:
        return {}
    d = paired_difference(100.0 * purl.loc[seeds], 100.0 * ctrl.loc[seeds])
    return {"control_top1": float(ctrl.loc[seeds].mean()), "purl_minus_control_pp": d["mean"],
            "ci95": d["ci95"], "p": d["p"], "p_wilcoxon": d["p_wilcoxon"], "n": d["n"]}  # fmt: skip


def noise_floor(rows: pd.DataFrame, dense_top1: float, n_test: int) -> dict[str, float]:
    """How small a difference the test set and the seeds can show, in points.

    ``test_se_pp``: the binomial standard error of one accuracy near the dense one on ``n_test``
    images; ``seed_sd_pp``: the standard deviation over seeds of PuRL's top-1 (mean over targets);
    ``control_seed_sd_pp``: that of the dense control (what fine-tuning alone varies by);
    ``min_detectable_pp``: the paired difference 80% power at 0.05 detects between two methods
    that each vary across seeds as PuRL does, independently (differences' SD ``sqrt(2)`` times
    ``seed_sd_pp``; each paired row also has its own, from its differences). The control's SD
    alone would understate it: a control that keeps its dense start on every seed has SD 0.
    """
    se = 100.0 * math.sqrt(dense_top1 * (1.0 - dense_top1) / n_test)
    purl = rows[rows["method"] == "PuRL"]
    sd = purl.groupby("target")["top1"].std().mean() * 100.0 if len(purl) > 1 else math.nan
    n_seeds = int(purl["seed"].nunique()) if "seed" in purl else len(purl)
    ctrl = rows[rows["method"] == CONTROL]["top1"]
    csd = float(ctrl.std() * 100.0) if len(ctrl) > 1 else math.nan
    return {"test_se_pp": se, "one_image_pp": 100.0 / n_test, "seed_sd_pp": float(sd),
            "control_seed_sd_pp": csd,
            "min_detectable_pp": min_detectable_difference(math.sqrt(2.0) * float(sd), n_seeds)}  # fmt: skip


def noise_line(floor: dict[str, float], n_seeds: int) -> str:
    """The noise floor in one sentence, printed beside each table."""
    return (f"Noise floor: one test standard error {floor['test_se_pp']:.2f} points; the dense "
            f"control's seed SD {floor['control_seed_sd_pp']:.2f} points, PuRL's {floor['seed_sd_pp']:.2f}; "
            f"with {n_seeds} seeds a paired difference below about {floor['min_detectable_pp']:.2f} points is not "
            f"detectable (80% power, alpha 0.05).")  # fmt: skip


def summary(sizes: PurlStudySizes, out: dict[str, Any], n_test: int, dataset: str,
            root: Any) -> dict[str, Any]:  # fmt: skip
    """``summary.json`` of notebook 02 / 03: the headline target's numbers and every table's gist."""
    rows, dense = out["rows"], out["dense_metrics"]
    head = rows[rows["target"] == sizes.headline_target]
    purl = head[head["method"] == "PuRL"]
    drops = drop_table(rows, dense["top1"]).set_index("target")
    paired = paired_table(rows)
    ph = paired[paired["target"] == sizes.headline_target]
    d = drops.loc[sizes.headline_target]
    ua = head[head["method"] == UNIFORM_ALPHA]
    floor = noise_floor(rows, dense["top1"], n_test)
    meets = (purl["reward_top1_search"] >= purl["a_star"] - 1e-12) if "a_star" in purl else pd.Series(dtype=bool)
    return finite_or_none({
        "model": sizes.model,
        "dataset": dataset,
        "data": out.get("description", ""),
        "n_test": n_test,
        "seeds": list(sizes.seeds),
        "targets": list(sizes.targets),
        "headline_target": sizes.headline_target,
        "dense_top1": dense["top1"],
        "dense_top5": dense["top5"],
        "dense_reward_top1": out["dense_reward_top1"],
        "purl_top1": float(purl["top1"].mean()),
        "purl_top5": float(purl["top5"].mean()),
        "purl_sparsity_prunable": float(purl["sparsity_prunable"].mean()),
        "purl_sparsity_total": float(purl["sparsity_total"].mean()),
        "purl_drop_pp": {"mean": float(d["drop_pp"]), "ci95": [float(d["drop_lo"]), float(d["drop_hi"])]},
        "purl_drop_pp_by_target": {
            str(t): {"sparsity": float(r["sparsity"]), "mean": float(r["drop_pp"]),
                     "ci95": [float(r["drop_lo"]), float(r["drop_hi"])]}
            for t, r in drops.iterrows()
        },
        "purl_vs_dense_finetuned": control_difference(rows, sizes.headline_target),
        "dense_layers": list(sizes.dense_layers),
        "paired": {
            r["baseline"]: {"sparsity": r["baseline_sparsity"], "purl_sparsity": r["purl_sparsity"],
                            "top1": r["baseline_top1_pct"] / 100.0,
                            "purl_minus_baseline_pp": r["purl_minus_baseline_pp"],
                            "ci95": [r["ci_low"], r["ci_high"]], "p": r["p"], "p_wilcoxon": r["p_wilcoxon"],
                            "p_holm": r["p_holm"], "min_detectable_pp": r["min_detectable_pp"]}
            for _, r in ph.iterrows()
        },
        "noise_floor": floor,
        "min_detectable_pp": floor["min_detectable_pp"],
        "dqn_episodes": sizes.search_episodes,
        "reward_rows": int(out.get("reward_rows", sizes.reward_subset)),
        "accuracy_slack": sizes.accuracy_slack,
        "meets_target_accuracy_share": float(meets.mean()) if len(meets) else math.nan,
        "sparsity_sd_pp": 100.0 * float(purl["sparsity_prunable"].std()) if len(purl) > 1 else math.nan,
        "best_uniform_alpha": {"alpha": float(ua["alpha"].iloc[0]), "sparsity": float(ua["sparsity_prunable"].mean()),
                               "top1": float(ua["top1"].mean())} if len(ua) else {},
        "search_episodes": sizes.search_episodes,
        "search_seconds": float(purl["search_seconds"].mean()),
        "finetune_max_epochs": sizes.finetune.epochs,
        "finetune_epochs_mean": float(head["finetune_epochs"].mean()),
        "params_total": int(purl["params_total"].iloc[0]),
        "flops_dense": int(purl["flops_dense"].iloc[0]),
        "purl_flops_nonzero": float(purl["flops_nonzero"].mean()),
        "torch_threads": WORKER_THREADS,
        "workers": out.get("workers"),
        "checkpoint": str(out["checkpoint"].relative_to(root)),
        "checkpoint_loader": CHECKPOINT_LOADER,
        "checkpoint_bytes_dense": out["checkpoint_bytes"]["dense"],
        "checkpoint_bytes_compact": out["checkpoint_bytes"]["compact"],
    })  # fmt: skip


GOAL_SPARSITY: dict[str, float] = {"resnet50": 0.8, "mobilenet_v2": 0.5}
"""The sparsity of the prunable weights each network should reach within 1 point of dense."""


def goals(s: dict[str, Any]) -> pd.DataFrame:
    """The issue's goals, checked against the summary: sparsity, drop interval, paired results."""
    need = GOAL_SPARSITY.get(s["model"], 0.8)
    hi = s["purl_drop_pp"]["ci95"][1]
    rows = [
        {"check": f"PuRL sparsity of the prunable weights >= {need:.0%}",
         "value": s["purl_sparsity_prunable"], "met": s["purl_sparsity_prunable"] >= need},
        {"check": "upper end of the 95% interval of PuRL's top-1 drop <= 1 point",
         "value": hi, "met": bool(math.isfinite(hi) and hi <= 1.0)},
    ]  # fmt: skip
    c = s.get("purl_vs_dense_finetuned") or {}
    if c:
        lo, hi = c["ci95"]
        rows.append({"check": "PuRL minus the dense network with the same fine-tuning (points, paired)",
                     "value": c["purl_minus_control_pp"],
                     "met": "PuRL better" if lo > 0 else "control better" if hi < 0 else "no clear difference"})  # fmt: skip
    b = s.get("best_uniform_alpha") or {}
    if b:
        rows.append({"check": f"best uniform alpha ({b['alpha']:g}) test top-1 at {100 * b['sparsity']:.1f}% sparsity",
                     "value": b["top1"], "met": "yardstick"})  # fmt: skip
    for name, p in s["paired"].items():
        lo, hi = p["ci95"]
        verdict = "PuRL better" if lo > 0 else "baseline better" if hi < 0 else "no clear difference"
        rows.append({"check": f"PuRL minus {name} (points, paired)", "value": p["purl_minus_baseline_pp"],
                     "met": verdict})  # fmt: skip
    return pd.DataFrame(rows)


def conclusions(s: dict[str, Any]) -> str:
    """What the numbers say, as Markdown written from the summary (so it is never stale)."""
    d, nf = s["purl_drop_pp"], s["noise_floor"]
    lines = [
        f"- **Dense network:** {100 * s['dense_top1']:.2f}% test top-1 on {s['n_test']} test "
        f"images; one test standard error is {nf['test_se_pp']:.2f} points, one image "
        f"{nf['one_image_pp']:.3f} points; PuRL's top-1 varies by {nf['seed_sd_pp']:.2f} points "
        f"(standard deviation) across the {len(s['seeds'])} seeds, the dense control by "
        f"{nf['control_seed_sd_pp']:.2f}; a paired difference below about "
        f"{s['min_detectable_pp']:.2f} points is not detectable with these seeds (80% power).",
        f"- **Search:** {s['dqn_episodes']} DQN episodes, reward on {s['reward_rows']} images "
        f"(A*'s slack of {100 * s['accuracy_slack']:.0f}% is {s['accuracy_slack'] * s['reward_rows']:.1f} "
        f"images); the greedy policy met A* on the reward split on "
        f"{100 * s['meets_target_accuracy_share']:.0f}% of seeds; its sparsity varies by "
        f"{s['sparsity_sd_pp']:.1f} points (SD) across seeds.",
        f"- **PuRL at S* = {s['headline_target']:g}:** {100 * s['purl_sparsity_prunable']:.1f}% of "
        f"the prunable weights removed, test top-1 {100 * s['purl_top1']:.2f}%, a drop of "
        f"{d['mean']:.2f} points (95% CI {d['ci95'][0]:.2f} to {d['ci95'][1]:.2f}).",
    ]
    c = s.get("purl_vs_dense_finetuned") or {}
    if c:
        lines.append(
            f"- **Against the dense network given the same fine-tuning** "
            f"({100 * c['control_top1']:.2f}%): PuRL {c['purl_minus_control_pp']:+.2f} points (95% "
            f"CI {c['ci95'][0]:+.2f} to {c['ci95'][1]:+.2f}). This, not the drop against the "
            "dense network, is what pruning costs: the fine-tuning also trains the network further."
        )
    for name, p in s["paired"].items():
        lo, hi = p["ci95"]
        if lo > 0:
            word = "PuRL is better"
        elif hi < 0:
            word = f"{name} is better"
        else:
            word = "the interval includes zero: no difference is shown"
        lines.append(
            f"- **PuRL vs {name}** ({100 * p['sparsity']:.1f}% sparsity against PuRL's "
            f"{100 * p['purl_sparsity']:.1f}%): {p['purl_minus_baseline_pp']:+.2f} points (95% CI "
            f"{lo:+.2f} to {hi:+.2f}, paired t p = {p['p']:.3g}, Holm-adjusted {p['p_holm']:.3g}, "
            f"Wilcoxon p = {p['p_wilcoxon']:.3g}; detectable from about {p['min_detectable_pp']:.2f} "
            f"points): {word}."
        )
    n = len(s["seeds"])
    if n <= 5:
        lines.append(
            f"- With {n} seeds the exact Wilcoxon test cannot give p below {2 / 2**n:.3g}; the "
            "t interval is the main evidence, and it assumes roughly normal differences."
        )
    return "\n".join(lines)


def recount_checkpoint(
    s: dict[str, Any], root: str | Path, sizes: PurlStudySizes, data: Splits, table: pd.DataFrame
) -> pd.Series:
    """Load the exported checkpoint as a user would and recount its zeros.

    The file named by ``checkpoint`` is read with the function named by ``checkpoint_loader``
    into an unmodified torchvision model; its sparsity of the prunable weights must equal the
    one reported for PuRL's first seed at the headline target in ``table``.

    Raises:
        AssertionError: the recount differs from the reported sparsity.
    """
    module, name = s["checkpoint_loader"].rsplit(".", 1)
    state = getattr(importlib.import_module(module), name)(Path(root) / s["checkpoint"])
    plain = build_model(sizes.model, data.num_classes)
    plain.load_state_dict(state)
    recount = sparsity_report(plain, data.example(), exclude=sizes.dense_layers)
    row = table[(table["method"] == "PuRL") & (table["seed"] == sizes.seeds[0])
                & (table["target"] == sizes.headline_target)]  # fmt: skip
    reported = float(row["sparsity_prunable"].item())
    if abs(recount.sparsity_prunable - reported) > 1e-9:
        raise AssertionError(
            f"the checkpoint's recounted sparsity {recount.sparsity_prunable} differs from the "
            f"reported {reported}: the exported file is not the model that was measured"
        )
    return pd.Series({
        "sparsity_prunable (reported)": reported,
        "sparsity_prunable (recounted from the file)": recount.sparsity_prunable,
        "file MB (dense tensors)": s["checkpoint_bytes_dense"] / 1e6,
        "file MB (compact)": s["checkpoint_bytes_compact"] / 1e6,
    })  # fmt: skip
