"""NEON's fast path on a real agent's experience: ``python -m pruning_core.bench --neon-training``.

:func:`~pruning_core.bench.measure_neon_experience` times the fast path
(:class:`~pruning_core.rl.envs.neon_batched.NeonBatch`) against ``NeonEnv`` on synthetic
policies (uniform, 90% and 98% favourite). What a study pays for is the experience its agents
actually play, so :func:`measure_neon_training_log` replays the action log of one agent of
notebook 04's committed cpu run (``agent_training_log.csv``: every episode's network and
actions, warm-up included) through both paths, on the networks that agent trained on (rebuilt
through the study's cache, so a cold run trains them first: minutes).

The fast path replays the whole log in the study's lockstep groups with one prefix cache, as
the training did; ``NeonEnv`` replays an evenly spaced sample of it, half before and half
after, so load from other processes hits both alike. Both must give the returns the training
logged (checked), which also shows the networks were rebuilt as they were.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from pruning_core.config import results_root
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig
from pruning_core.rl.envs.neon_batched import NeonBatch, replay_batch
from pruning_core.rl.rollout import replay, rollout
from pruning_core.runs import jsonable
from pruning_core.studies.neon import build_base_networks, load_study_data, split_tasks
from pruning_core.studies.neon_sizes import neon_study_sizes

__all__ = ["replay_single", "measure_neon_training_log", "training_log_path"]

STUDY = "04_neon_dense_study"


def training_log_path(profile: str = "cpu") -> Path:
    """Where notebook 04 writes its agents' training log at ``profile``."""
    return results_root() / profile / STUDY / "agent_training_log.csv"


def replay_single(
    env: NeonEnv, seqs: list[list[int]], starts: list[tuple[int, float]], rewards: list[list[float]]
) -> float:
    """Seconds to replay ``seqs`` through ``env`` one episode at a time, episode ``i`` from
    ``starts[i]`` (task index, C); the rewards are appended to ``rewards``."""
    t0 = time.perf_counter()
    for s, (task, C) in zip(seqs, starts, strict=True):
        rewards.append(rollout(env, replay(s), options={"task": task, "C": C}).rewards)
    return time.perf_counter() - t0


def _agent_log(path: Path, fold: int, C: float) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run notebook 04 at PROFILE=cpu first "
            "(PROFILE=cpu ONLY=04 ./run_all.sh); its agents' training log is what this replays"
        )
    log = pd.read_csv(path, dtype={"actions": str})
    rows = log[(log["fold"] == fold) & np.isclose(log["C_agent"], C)].sort_values("episode")
    if rows.empty:
        have = sorted({(int(f), float(c)) for f, c in zip(log["fold"], log["C_agent"], strict=True)})
        raise ValueError(f"no agent for fold {fold}, C={C:g} in {path}; logged: {have}")
    return rows


def _check_sizes(sizes: Any, config: dict[str, Any], path: Path) -> None:
    """The networks and env must be the ones the log was made with."""
    for key in ("datasets", "nets_per_dataset", "space", "base_train", "env", "seed"):
        now = json.loads(json.dumps(jsonable(getattr(sizes, key))))
        if key == "env":
            now.pop("C_values", None)
            then = {k: v for k, v in config[key].items() if k != "C_values"}
        else:
            then = config[key]
        if now != then:
            raise ValueError(
                f"the cpu study's {key!r} changed since {path.parent} was made: rerun notebook 04 "
                "at PROFILE=cpu so the log matches the code"
            )


def measure_neon_training_log(
    fold: int = 0,
    C: float = 1.0,
    n_single: int = 16,
    path: str | Path | None = None,
    max_episodes: int | None = None,
) -> dict[str, Any]:
    """Episodes per second of :class:`NeonBatch` against :class:`NeonEnv` on the action log of
    the fold-``fold`` agent for ``C`` of notebook 04's cpu run (one thread); returns
    ``neon_batched_over_single_training`` and its details. ``max_episodes`` replays only the
    log's first episodes (a quick check)."""
    path = Path(path) if path is not None else training_log_path("cpu")
    rows = _agent_log(path, fold, C).head(max_episodes)
    config = json.loads((path.parent / "config.json").read_text())["config"]
    folds = json.loads((path.parent / "folds.json").read_text())
    sizes = neon_study_sizes("cpu", seed=int(config["seed"]), preset=config["agent"]["preset"])
    _check_sizes(sizes, config, path)
    train_names = [d for k, f in folds.items() if k != f"fold{fold}" for d in f]
    data = load_study_data(sizes, train_names)
    nets, _table = build_base_networks(sizes, data)
    tasks, _val = split_tasks(sizes, train_names, nets, data)
    index = {t.name: i for i, t in enumerate(tasks)}
    missing = sorted(set(rows["task"]) - set(index))
    if missing:
        raise ValueError(f"the log names networks the study no longer builds: {missing[:5]}")
    cfg: NeonEnvConfig = replace(sizes.env, C_values=(float(C),))
    seqs = [[int(a) for a in s] for s in rows["actions"]]
    starts = [(index[t], float(C)) for t in rows["task"]]
    logged = rows["return"].to_numpy(float)

    sample = sorted({int(i) for i in np.linspace(0, len(seqs) - 1, n_single).round()})
    env = NeonEnv(tasks, cfg)
    single: list[list[float]] = []
    half = len(sample) // 2
    def pick(ids: list[int]) -> tuple[list[list[int]], list[tuple[int, float]]]:
        return [seqs[i] for i in ids], [starts[i] for i in ids]

    single_s = replay_single(env, *pick(sample[:half]), single)
    batch = NeonBatch(tasks, cfg)
    fast: list[list[float]] = []
    t0 = time.perf_counter()
    for k in range(0, len(seqs), sizes.lockstep):
        eps = batch.play(replay_batch(seqs[k : k + sizes.lockstep]), starts=starts[k : k + sizes.lockstep])
        fast += [e.rewards for e in eps]
    fast_s = time.perf_counter() - t0
    single_s += replay_single(env, *pick(sample[half:]), single)

    fast_returns = np.array([math.fsum(r) for r in fast])
    same = bool(np.allclose(fast_returns, logged, rtol=1e-6, atol=1e-6)) and all(
        fast[i] == r for i, r in zip(sample, single, strict=True)
    )
    if not same:
        raise AssertionError(
            "the replay did not give the returns the training logged: the rebuilt networks or "
            "the env differ from the run's (rerun notebook 04 at cpu), or the fast path is wrong"
        )
    steps = sum(len(s) for s in seqs)
    distinct = len({(starts[i][0], *s[:t]) for i, s in enumerate(seqs) for t in range(1, len(s) + 1)})
    fast_eps, single_eps = len(seqs) / fast_s, len(sample) / single_s
    warm = rows["warmup"].astype(bool).to_numpy()
    details = {
        "agent": f"fold{fold}, C={C:g}",
        "log": str(path.relative_to(results_root())) if path.is_relative_to(results_root()) else str(path),
        "preset": config["agent"]["preset"],
        "episodes": len(seqs),
        "warmup_episodes": int(warm.sum()),
        "networks": int(rows["task"].nunique()),
        "steps": steps,
        "lockstep": sizes.lockstep,
        "threads": torch.get_num_threads(),
        "single_episodes": len(sample),
        "single_episodes_per_second": single_eps,
        "fast_episodes_per_second": fast_eps,
        "prefix_reuse_limit": steps / distinct,
        "nodes_computed": batch.stats["nodes"],
        "nodes_reused": batch.stats["reused"],
        "mean_entropy_after_warmup": float(rows.loc[~warm, "entropy"].mean()),
        "same_returns_as_training": same,
        "what": "episodes per second of NeonBatch replaying a notebook-04 agent's whole training "
        "log (lockstep groups, one prefix cache) / of NeonEnv replaying an evenly spaced sample "
        "of it; both give the logged returns",
    }
    print(f"\nNEON experience on a real training log ({details['agent']}, {len(seqs)} episodes on "
          f"{details['networks']} networks): fast {fast_eps:.3g} ep/s, env {single_eps:.3g} ep/s, "
          f"ratio {fast_eps / single_eps:.3g} (prefix-reuse limit {steps / distinct:.3g})")  # fmt: skip
    return {
        "neon_batched_over_single_training": fast_eps / single_eps,
        "neon_batched_over_single_training_details": details,
    }
