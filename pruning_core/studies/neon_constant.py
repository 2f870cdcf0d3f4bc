"""Notebook 04's yardstick: the best *constant* policy of NEON's own action space.

An agent has learned only if it beats the best policy that ignores its observation (DESIGN.md,
"A fair comparison"). For each fold and ``C`` three such policies are measured on the fold's
held-out networks, through the same episodes as the agent's rows (:class:`NeonBatch`, which
reproduces :class:`~pruning_core.rl.envs.neon.NeonEnv` bit for bit: the same neuron choice,
fine-tuning after each step, reward and ``C``):

* ``constant`` -- one keep fraction repeated at every step, the one whose mean episode return
  (the agent's own objective, at that ``C``) over the fold's **training** networks is largest;
  ``constant_guard`` is the same keep fraction with the env's guard at ``C`` (the yardstick of
  ``neon_guard``).
* ``schedule`` -- one keep fraction per *pass* (the episode visits every hidden layer
  ``passes`` times), chosen on the training networks by one coordinate-wise sweep from the best
  constant: pass by pass, the neighbouring keep fractions (or every action, ``reach=None``) are
  tried with the other passes fixed and the best mean return kept (ties keep the current one). A schedule per *step* would be ill-defined across depths
  (step ``t`` is a different layer for a 2- and a 5-layer network) and its product space
  (``5**24``) out of reach, so the positions are the passes, the ones every network has.
* ``oracle_constant`` -- per held-out network, the constant with the largest compression whose
  final ``reward``-split accuracy is within ``C`` (:func:`within_allowed_loss`, noise margin
  included; keep 1.0 always is). It reads the network it prunes (never its test split): the best
  case of a guarded uniform pruner, not a policy an agent could be.

Unguarded trajectories do not depend on ``C`` or the fold, so each (network, schedule) is played
once for every ``C`` and cached (:class:`ScheduleKey`); the training-side selection reads only
the returns (:data:`TRAIN_COLUMNS`), the test accuracy is only reported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pruning_core.config import progress
from pruning_core.data.splits import Splits
from pruning_core.models.mlp import BaseNet
from pruning_core.pruning.neurons import count_params
from pruning_core.rl.envs.neon import NeonEnvConfig, NeonTask
from pruning_core.rl.envs.neon_batched import NeonBatch, replay_batch
from pruning_core.rl.rewards import within_allowed_loss
from pruning_core.runs import ArtefactKey, CorruptCheckpointError, load_checkpoint, save_checkpoint
from pruning_core.stats import finite_or_none, paired_difference
from pruning_core.studies.neon import STRUCTURAL, NeonStudySizes, with_threads
from pruning_core.studies.neon_report import BOOTSTRAP_RESAMPLES
from pruning_core.train.loop import evaluate

__all__ = [
    "ConstantStudy",
    "ScheduleKey",
    "TRAIN_COLUMNS",
    "YARDSTICKS",
    "choose_by_return",
    "cluster_compare",
    "constant_study",
    "network_columns",
    "oracle_choice",
    "schedule_actions",
    "schedule_outcomes",
    "yardstick_summary",
]


YARDSTICKS: tuple[str, ...] = ("constant", "constant_guard", "schedule", "oracle_constant")
"""Method names of the yardstick rows in ``results.csv``."""


TRAIN_COLUMNS: tuple[str, ...] = ("dataset", "net", "schedule", "C", "return")
"""What the selection on training networks may read of a schedule's outcome."""


@dataclass(frozen=True)
class ScheduleKey(ArtefactKey):
    """One network played with one per-pass schedule at the given Cs (guarded or not)."""

    KIND = "neon/schedule"
    VERSION = 2  # 2: stored as plain lists (a DataFrame does not load with weights_only)
    dataset: str
    index: int
    base: str
    """The base network's key."""
    schedule: tuple[int, ...]
    """One action per pass."""
    C: tuple[float, ...]
    env: NeonEnvConfig

    @property
    def prefix(self) -> str:
        """Dataset, network index and the schedule's actions."""
        g = "g" if self.env.guard else ""
        return f"{self.dataset}__{self.index}__{''.join(map(str, self.schedule))}{g}"


def schedule_actions(schedule: Sequence[int], n_hidden: int) -> list[int]:
    """The action string of a per-pass ``schedule`` on a network of ``n_hidden`` layers: pass
    ``p`` plays ``schedule[p]`` at every layer."""
    return [int(a) for a in schedule for _ in range(n_hidden)]


def network_columns(base: BaseNet, data: Splits, fold: int) -> dict[str, Any]:
    """The columns every row of one held-out network shares in ``results.csv``."""
    orig = base.model()
    return {
        "fold": fold,
        "dataset": base.dataset,
        "net": base.index,
        "n_hidden": base.spec.n_hidden,
        "params_orig": count_params(orig),
        "val_acc_orig": NeonTask.from_base(base, data).base_val_acc,
        "test_acc_orig": evaluate(orig, data.tensors("test"), batch_size=None)["top1"],
        "widths_orig": "-".join(map(str, base.spec.hidden)),
    }


def _play(
    sizes: NeonStudySizes,
    base: BaseNet,
    data: Splits,
    schedules: Sequence[tuple[int, ...]],
    Cs: Sequence[float],
    guard: bool,
) -> dict[tuple[int, ...], pd.DataFrame]:
    """Play every schedule at every C on one network in one lockstep call (shared prefixes
    computed once); per schedule one row per C, with the final network's test accuracy."""
    task = NeonTask.from_base(base, data)
    batch = NeonBatch([task], replace(sizes.env, C_values=tuple(Cs), guard=guard), cache_mb=0)
    n = base.spec.n_hidden
    pairs = [(s, float(C)) for s in schedules for C in Cs]
    t0 = time.perf_counter()
    eps = batch.play(replay_batch([schedule_actions(s, n) for s, _ in pairs]),
                     starts=[(0, C) for _, C in pairs])  # fmt: skip
    secs = (time.perf_counter() - t0) / max(len(pairs), 1)
    test = data.tensors("test")
    rows: dict[tuple[int, ...], list[dict[str, Any]]] = {s: [] for s in schedules}
    for (s, C), ep in zip(pairs, eps, strict=True):
        rep = ep.report
        rows[s].append({
            "dataset": base.dataset, "net": base.index, "schedule": "".join(map(str, s)),
            "C": C, "guard": guard, "return": ep.episode_return,
            "params_pruned": rep["params_pruned"], "compression": rep["compression"],
            "val_acc": rep["val_acc"], "delta_val_pp": rep["delta_val_pp"],
            "test_acc": evaluate(ep.final_network, test, batch_size=None)["top1"],
            "widths_final": "-".join(map(str, rep["widths_final"])),
            "actions": "".join(map(str, ep.actions)), "seconds": secs,
        })  # fmt: skip
    return {s: pd.DataFrame(r) for s, r in rows.items()}


def _load(path: Path) -> pd.DataFrame | None:
    """A cached outcome (plain lists, which load with ``weights_only``), or None to rebuild."""
    if not path.is_file():
        return None
    try:
        return pd.DataFrame(load_checkpoint(path))
    except CorruptCheckpointError as exc:
        print(f"WARNING: {exc} Rebuilding it.")
        return None


def schedule_outcomes(
    sizes: NeonStudySizes,
    base: BaseNet,
    data: Splits,
    schedules: Sequence[tuple[int, ...]],
    Cs: Sequence[float] | None = None,
    guard: bool = False,
) -> pd.DataFrame:
    """One row per (schedule, C) of ``base`` played with each per-pass schedule (cached per
    schedule; the missing ones are played together)."""
    Cs = tuple(float(c) for c in (sizes.C_values if Cs is None else Cs))
    env = replace(sizes.env, C_values=Cs, guard=guard)
    keys = {s: ScheduleKey(base.dataset, base.index, base.key, tuple(s), Cs, env) for s in
            dict.fromkeys(tuple(int(a) for a in s) for s in schedules)}  # fmt: skip
    out = {s: df for s, k in keys.items() if (df := _load(k.path())) is not None}
    missing = [s for s in keys if s not in out]
    if missing:
        for s, df in _play(sizes, base, data, missing, Cs, guard).items():
            save_checkpoint(keys[s].path(), df.to_dict(orient="list"))
            out[s] = df
    return pd.concat([out[s] for s in keys], ignore_index=True)


def choose_by_return(
    outcomes: pd.DataFrame,
    C: float,
    candidates: Sequence[tuple[int, ...]],
    current: tuple[int, ...] | None = None,
) -> tuple[tuple[int, ...], dict[str, float]]:
    """The candidate with the largest mean episode return at ``C`` over the networks in
    ``outcomes`` (only :data:`TRAIN_COLUMNS` are read); ties go to ``current``, then to the
    first candidate. Returns it and every candidate's mean return."""
    o = outcomes.loc[:, list(TRAIN_COLUMNS)]
    o = o[np.isclose(o["C"], C)]
    names = ["".join(map(str, s)) for s in candidates]
    means = o[o["schedule"].isin(names)].groupby("schedule")["return"].mean()
    scores = {n: float(means.get(n, -math.inf)) for n in names}
    best = max(scores.values())
    order = ([current] if current is not None else []) + list(candidates)
    chosen = next(s for s in order if scores["".join(map(str, s))] >= best - 1e-9)
    return tuple(chosen), scores


def oracle_choice(outcomes: pd.DataFrame, C: float, noise_margin_pp: float) -> pd.Series:
    """One network's oracle constant at ``C``: of its constant-schedule rows, the largest
    compression whose final ``reward``-split change is within ``C`` (``delta_val_pp``; the test
    columns are never read)."""
    o = outcomes[np.isclose(outcomes["C"], C)]
    ok = o[[within_allowed_loss(d, C, noise_margin_pp) for d in o["delta_val_pp"]]]
    if ok.empty:
        raise ValueError("no constant is within C: the keep-everything schedule is missing")
    return ok.loc[ok["compression"].idxmax()]


@dataclass
class ConstantStudy:
    """The yardstick rows (``rows``, the columns of ``results.csv``), what was chosen per fold
    and C (``choices``) and every candidate's mean training return (``search``)."""

    rows: pd.DataFrame
    choices: pd.DataFrame
    search: pd.DataFrame


def _row(common: Mapping[str, Any], method: str, C: float, r: pd.Series) -> dict[str, Any]:
    cols = ("params_pruned", "compression", "val_acc", "delta_val_pp", "test_acc",
            "widths_final", "actions", "seconds")  # fmt: skip
    return {**common, "method": method, "C": C, **{c: r[c] for c in cols}}


@with_threads
def constant_study(
    sizes: NeonStudySizes,
    data: dict[str, Splits],
    nets: dict[tuple[str, int], BaseNet],
    folds: list[list[str]],
    reach: int | None = 1,
) -> ConstantStudy:
    """Choose the best constant and per-pass schedule per (fold, C) on the fold's training
    networks (all networks of the other folds, as the agents), then play them, the guarded
    constant and the oracle constant on the fold's held-out networks.

    ``reach``: the per-pass sweep tries, at each pass, the actions within this many steps of the
    current one (1: the neighbouring keep fractions, which halves the cost on a 2-core machine;
    None: all of them)."""
    n_act, P = len(sizes.env.keep_fractions), sizes.env.passes
    constants = [(a,) * P for a in range(n_act)]
    memo: dict[tuple[str, int], pd.DataFrame] = {}

    def outcomes(
        keys: Sequence[tuple[str, int]], scheds: Sequence[tuple[int, ...]]
    ) -> pd.DataFrame:
        frames = []
        for key in keys:
            have = memo.get(key)
            names = set() if have is None else set(have["schedule"])
            new = [s for s in scheds if "".join(map(str, s)) not in names]
            if new:
                df = schedule_outcomes(sizes, nets[key], data[key[0]], new)
                memo[key] = df if have is None else pd.concat([have, df], ignore_index=True)
            frames.append(memo[key])
        return pd.concat(frames, ignore_index=True)

    every = sorted(nets)
    outcomes(progress(every, desc="constants", unit="net"), constants)
    search, choices, rows = [], [], []
    for k, names in enumerate(folds):
        train = [key for key in every if key[0] not in names]
        test = [(d, i) for d in names for i in range(sizes.test_nets_per_dataset)]
        commons = {key: network_columns(nets[key], data[key[0]], k) for key in test}
        for C in sizes.C_values:
            const, scores = choose_by_return(outcomes(train, constants), C, constants)
            search += [{"fold": k, "C": C, "stage": "constant", "schedule": s, "mean_return": v,
                        "chosen": s == "".join(map(str, const))} for s, v in scores.items()]  # fmt: skip
            sched = const
            for p in progress(range(P), desc=f"schedule fold {k} C={C:g}", unit="pass"):
                near = [a for a in range(n_act) if reach is None or abs(a - sched[p]) <= reach]
                cands = [(*sched[:p], a, *sched[p + 1 :]) for a in near]
                sched, scores = choose_by_return(outcomes(train, cands), C, cands, sched)
                search += [{"fold": k, "C": C, "stage": f"pass {p}", "schedule": s,
                            "mean_return": v, "chosen": s == "".join(map(str, sched))}
                           for s, v in scores.items()]  # fmt: skip
            kf = sizes.env.keep_fractions
            choices.append({"fold": k, "C": C, "constant": "".join(map(str, const)),
                            "keep": kf[const[0]], "schedule": "".join(map(str, sched)),
                            "schedule_keep": "-".join(f"{kf[a]:g}" for a in sched)})  # fmt: skip
            for key in test:
                common = commons[key]
                o = outcomes([key], [*constants, sched])
                at = o[np.isclose(o["C"], C)].set_index("schedule")
                guarded = schedule_outcomes(sizes, nets[key], data[key[0]], [const], [C], True)
                rows += [
                    _row(common, "constant", C, at.loc["".join(map(str, const))]),
                    _row(common, "constant_guard", C, guarded.iloc[0]),
                    _row(common, "schedule", C, at.loc["".join(map(str, sched))]),
                    _row(common, "oracle_constant", C,
                         oracle_choice(o[o["schedule"].isin(
                             ["".join(map(str, s)) for s in constants])], C,
                             sizes.env.noise_margin_pp)),
                ]  # fmt: skip
    df = pd.DataFrame(rows)
    df["delta_test_pp"] = (df["test_acc"] - df["test_acc_orig"]) * 100
    df["structural"] = df["method"].map(STRUCTURAL)
    return ConstantStudy(df, pd.DataFrame(choices), pd.DataFrame(search))


def cluster_compare(
    results: pd.DataFrame, a: str, b: str, C: float, seed: int = 0
) -> dict[str, Any]:
    """Method ``a`` against ``b`` at ``C``, paired by network and clustered by dataset: the ratio
    of mean compressions and the mean test-change difference (``a - b``, pp), each with a
    percentile bootstrap over **datasets** (all a dataset's networks resampled together), and
    paired t-tests on the per-dataset mean differences (``p``: accuracy; ``p_compression``: log
    compression). ``n_datasets`` is the n of the tests; ``n_networks`` the pairs."""

    def at(m: str) -> pd.DataFrame:
        sub = results[(results["method"] == m) & np.isclose(results["C"], C)]
        return sub.set_index(["dataset", "net"]).sort_index()

    x = at(a)
    y = at(b).reindex(x.index)
    pairs = pd.DataFrame({"ca": x["compression"], "cb": y["compression"],
                          "d": x["delta_test_pp"] - y["delta_test_pp"]}).dropna()  # fmt: skip
    pairs["lr"] = np.log(pairs["ca"]) - np.log(pairs["cb"])
    g = pairs.groupby(level="dataset")
    sums, counts = g[["ca", "cb", "d"]].sum().to_numpy(), g.size().to_numpy()
    ratio = float(pairs["ca"].mean() / pairs["cb"].mean()) if len(pairs) else math.nan
    out: dict[str, Any] = {
        "a": a, "b": b, "C": float(C), "n_datasets": int(len(counts)),
        "n_networks": int(len(pairs)), "a_mean_compression": float(pairs["ca"].mean()),
        "b_mean_compression": float(pairs["cb"].mean()), "compression_ratio": ratio,
        "compression_ratio_ci95": [math.nan, math.nan],
        "delta_pp": float(pairs["d"].mean()), "delta_pp_ci95": [math.nan, math.nan],
        "p": math.nan, "p_compression": math.nan,
        "n_is": "held-out datasets (bootstrap and t-tests cluster networks by dataset)",
    }  # fmt: skip
    if len(counts) >= 2:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(counts), size=(BOOTSTRAP_RESAMPLES, len(counts)))
        s, n = sums[idx].sum(axis=1), counts[idx].sum(axis=1)
        r = s[:, 0] / s[:, 1]
        d = s[:, 2] / n
        out["compression_ratio_ci95"] = [float(np.quantile(r, 0.025)), float(np.quantile(r, 0.975))]
        out["delta_pp_ci95"] = [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))]
        means = g[["d", "lr"]].mean()
        out["p"] = paired_difference(means["d"], np.zeros(len(means)))["p"]
        out["p_compression"] = paired_difference(means["lr"], np.zeros(len(means)))["p"]
    return out


def _distinct(results: pd.DataFrame, method: str, C: float) -> dict[str, Any]:
    acts = results[(results["method"] == method) & np.isclose(results["C"], C)]["actions"]
    acts = acts.astype(str)
    return {"n_distinct": int(acts.nunique()), "n_networks": int(len(acts)),
            "n_constant_strings": int(sum(len(set(s)) == 1 for s in acts)),
            "per_fold": {f"fold{int(k)}": int(v) for k, v in results[
                (results["method"] == method) & np.isclose(results["C"], C)
            ].groupby("fold")["actions"].nunique().items()}}  # fmt: skip


def _share(results: pd.DataFrame, method: str, C: float) -> float:
    sub = results[(results["method"] == method) & np.isclose(results["C"], C)]
    return float((sub["delta_test_pp"] < -C).mean()) if len(sub) else math.nan


def yardstick_summary(
    results: pd.DataFrame, choices: pd.DataFrame, C_values: Sequence[float], seed: int = 0
) -> dict[str, Any]:
    """The ``summary.json`` keys of the yardstick, per C: ``constant_schedule`` (what was chosen
    per fold and its held-out means, with the schedule and the oracle), ``neon_vs_constant``
    (:func:`cluster_compare` of NEON with the best constant; ``guard``: the guarded agent with
    the guarded constant; ``schedule``: NEON with the per-pass schedule), ``distinct_policies``
    (distinct greedy action strings of the agent over the held-out networks; strings differ in
    length with depth, ``n_constant_strings`` counts those that repeat one action) and
    ``share_over_C`` (share of held-out networks whose test accuracy fell more than C)."""

    def mean(m: str, C: float, col: str) -> float:
        sub = results[(results["method"] == m) & np.isclose(results["C"], C)]
        return float(sub[col].mean()) if len(sub) else math.nan

    cs, vs, dp, sh = {}, {}, {}, {}
    for C in C_values:
        key = f"{C:g}"
        ch = choices[np.isclose(choices["C"], C)].sort_values("fold")
        cs[key] = {
            "keep": {f"fold{int(r.fold)}": float(r.keep) for r in ch.itertuples()},
            "schedule": {f"fold{int(r.fold)}": r.schedule_keep for r in ch.itertuples()},
            **{f"{m}_{c}": mean(m, C, col) for m in YARDSTICKS
               for c, col in (("compression", "compression"), ("delta_pp", "delta_test_pp"))},
            "compression": mean("constant", C, "compression"),
            "delta_pp": mean("constant", C, "delta_test_pp"),
        }  # fmt: skip
        vs[key] = {**cluster_compare(results, "neon", "constant", C, seed),
                   "guard": cluster_compare(results, "neon_guard", "constant_guard", C, seed),
                   "schedule": cluster_compare(results, "neon", "schedule", C, seed)}  # fmt: skip
        dp[key] = {"neon": _distinct(results, "neon", C),
                   "neon_guard": _distinct(results, "neon_guard", C)}  # fmt: skip
        sh[key] = {"unguarded": _share(results, "neon", C),
                   "guarded": _share(results, "neon_guard", C),
                   **{m: _share(results, m, C) for m in YARDSTICKS}}  # fmt: skip
    return finite_or_none({"constant_schedule": cs, "neon_vs_constant": vs,
                           "distinct_policies": dp, "share_over_C": sh})  # fmt: skip
