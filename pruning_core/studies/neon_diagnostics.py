"""Why a NEON agent learns or collapses, per (fold, C) agent, from its training log and its
networks: the validation-return curve, entropy and action frequencies over episodes, the spread
of each observation feature across the training networks, and the greedy action strings on
held-out networks (:func:`policy_strings`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pruning_core.rl.agents.a2c import ActorCriticAgent
from pruning_core.rl.envs.neon import NeonEnvConfig, NeonTask
from pruning_core.rl.envs.neon_batched import NeonBatch
from pruning_core.rl.envs.neon_features import GLOBAL_FEATURES, LAYER_FEATURES, MAX_LAYERS, OBS_DIM
from pruning_core.studies.neon_sizes import NeonStudySizes

__all__ = [
    "FEATURE_NAMES",
    "action_frequencies",
    "agent_convergence",
    "feature_spread",
    "policy_strings",
    "validation_curves",
]


FEATURE_NAMES: tuple[str, ...] = (
    *GLOBAL_FEATURES,
    *(f"L{k + 1}_{f}" for k in range(MAX_LAYERS) for f in LAYER_FEATURES),
    *(f"cur_{f}" for f in LAYER_FEATURES),
)
"""The observation's features in order: network-level, per hidden-layer slot, current layer."""
assert len(FEATURE_NAMES) == OBS_DIM


def _digits(value: object, length: int) -> str:
    """An action string read back from a CSV (where ``0012`` became the number 12)."""
    text = str(value)
    if text.endswith(".0"):
        text = text[:-2]
    return text.zfill(int(length))


def agent_convergence(sizes: NeonStudySizes, log: pd.DataFrame) -> pd.DataFrame:
    """Per (fold, C) agent: episodes played, the episode training stopped at (NaN: the cap),
    the mean entropy of its last 48 learning episodes (and that share of ``ln n_actions``), its
    best and last validation return (greedy, networks kept out of the updates; NaN without a
    plateau rule), the episode of the best check (whose weights it keeps) and its training
    seconds."""
    rows = []
    h_max = float(np.log(len(sizes.env.keep_fractions)))
    for (k, C), g in log.groupby(["fold", "C_agent"], sort=True):
        learn = g[~g["warmup"].astype(bool)]
        ent = float(learn["entropy"].tail(48).mean()) if len(learn) else h_max
        conv = g["converged"] if "converged" in g else pd.Series(False, index=g.index)
        conv_at = g.loc[conv.astype("boolean").fillna(False).astype(bool), "episode"]
        val = g.dropna(subset=["val_return"]) if "val_return" in g else g.iloc[:0]
        best = val.loc[val["val_return"].idxmax()] if len(val) else None
        rows.append({
            "fold": int(k), "C": float(C), "episodes": int(g["episode"].max()),
            "converged_at": float(conv_at.iloc[0]) if len(conv_at) else float("nan"),
            "final_entropy": ent, "entropy_share": ent / h_max,
            "best_val_return": float(best["val_return"]) if best is not None else float("nan"),
            "best_at": float(best["episode"]) if best is not None else float("nan"),
            "last_val_return": float(val["val_return"].iloc[-1]) if len(val) else float("nan"),
            "train_seconds": float(g["seconds"].sum()),
        })  # fmt: skip
    return pd.DataFrame(rows)


def validation_curves(log: pd.DataFrame) -> pd.DataFrame:
    """The validation return of each agent at each check: ``fold``, ``C``, ``episode``,
    ``val_return``, and the mean entropy of the episodes since the previous check."""
    if "val_return" not in log:
        return pd.DataFrame(columns=["fold", "C", "episode", "val_return", "entropy"])
    rows = []
    for (k, C), g in log.groupby(["fold", "C_agent"], sort=True):
        g = g.sort_values("episode")
        block = g["val_return"].notna()[::-1].cumsum()[::-1]  # episodes up to each check
        ent = g.groupby(block)["entropy"].mean()
        for r in g[g["val_return"].notna()].itertuples():
            rows.append({"fold": int(k), "C": float(C), "episode": int(r.episode),
                         "val_return": float(r.val_return),
                         "entropy": float(ent.get(block[r.Index], np.nan))})  # fmt: skip
    return pd.DataFrame(rows)


def action_frequencies(log: pd.DataFrame, n_actions: int, bins: int = 8) -> pd.DataFrame:
    """Per agent and episode bin (``bins`` equal spans of its episodes): the share of each action
    among the steps played (columns ``a0`` ... ``a{n-1}``) and the mean entropy."""
    rows = []
    for (k, C), g in log.groupby(["fold", "C_agent"], sort=True):
        g = g.sort_values("episode")
        edges = np.linspace(0, len(g), bins + 1).astype(int)
        for b in range(bins):
            part = g.iloc[edges[b] : edges[b + 1]]
            if not len(part):
                continue
            acts = np.array([int(c) for s, n in zip(part["actions"], part["steps"], strict=True)
                             for c in _digits(s, n)])  # fmt: skip
            counts = np.bincount(acts, minlength=n_actions) / max(len(acts), 1)
            rows.append({"fold": int(k), "C": float(C), "episodes": f"{part['episode'].min()}-"
                         f"{part['episode'].max()}", "entropy": float(part["entropy"].mean()),
                         **{f"a{i}": float(c) for i, c in enumerate(counts)}})  # fmt: skip
    return pd.DataFrame(rows)


def feature_spread(
    tasks: Sequence[NeonTask],
    env: NeonEnvConfig,
    agents: Mapping[float, ActorCriticAgent] | None = None,
) -> pd.DataFrame:
    """Per observation feature: its standard deviation across ``tasks`` (the training
    networks) in their first state, and (``agents``) the spread each agent's standardiser
    measured over its warm-up observations (``std_C<C>``). A feature with no spread teaches the
    agent nothing about the network."""
    batch = NeonBatch(list(tasks), env)
    C = float(env.C_values[0])
    first = np.stack([batch._observation(t, batch._root(t), C) for t in range(len(tasks))])
    out = pd.DataFrame({"feature": FEATURE_NAMES, "std_across_nets": first.std(0)})
    for c, a in (agents or {}).items():
        if a.obs_norm is not None:
            out[f"std_C{c:g}"] = np.asarray(a.obs_norm.raw_std)
    return out


def policy_strings(results: pd.DataFrame, method: str = "neon", passes: int = 4) -> pd.DataFrame:
    """Per C: the greedy action strings ``method`` played on the held-out networks (one digit per
    step, ``passes`` steps per hidden layer), how many networks played each, and how many
    distinct strings there are (``n_distinct``)."""
    sub = results[results["method"] == method]
    rows = []
    for C, g in sub.groupby("C", sort=True):
        if "n_hidden" in g:
            acts = [_digits(a, n * passes) for a, n in zip(g["actions"], g["n_hidden"], strict=True)]
        else:
            acts = [str(a) for a in g["actions"]]
        counts = pd.Series(acts).value_counts()
        for s, n in counts.items():
            rows.append({"C": float(C), "actions": s, "networks": int(n),
                         "n_distinct": int(len(counts))})  # fmt: skip
    return pd.DataFrame(rows)
