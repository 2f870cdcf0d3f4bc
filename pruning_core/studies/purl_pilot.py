"""The DQN settings pilot of notebooks 02 and 03 (issue 26 item 2): learning curves on pilot seeds.

Each *candidate* is a set of DQN overrides and an n-step length. It searches the study's own
dense network (the cached one, same data splits, same ``A*``) on seeds that are never study
seeds (:data:`PILOT_SEEDS`), and every ``eval_every`` episodes plays the greedy policy once on
the reward split: its return, sparsity, reward accuracy and whether it meets ``A*``. The best
uniform-alpha policy (the constant policy of PuRL's action space) is the reference line.

``python -m pruning_core.studies.purl_pilot --model resnet50`` runs the candidates of
:data:`CANDIDATES` (one process per core, one torch thread each) and writes
``results/<profile>/pilots/purl_dqn_<model>.csv`` (``--reference``: also the best uniform
alpha's return, ``..._uniform_reference.json``). The curves it wrote decide the settings in
:func:`~pruning_core.studies.purl.purl_study_sizes` (see its comments).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from pruning_core.config import results_root, run_jobs
from pruning_core.methods.purl_baselines import best_uniform_alpha
from pruning_core.rl.agents.dqn import DQNAgent, DQNConfig, greedy_policy
from pruning_core.rl.agents.dqn_nstep import train_nstep
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rollout import rollout
from pruning_core.runs import atomic_write_text, write_csv
from pruning_core.studies.purl import (
    dense_model,
    load_study_data,
    purl_study_sizes,
    reward_accuracy,
    use_batch_statistics,
)

__all__ = ["CANDIDATES", "PILOT_SEEDS", "PilotRun", "pilot_run", "run_pilot", "uniform_reference"]

PILOT_SEEDS: tuple[int, ...] = (100, 101, 102)
"""Seeds of the pilot: never study seeds (those are 0-9)."""

CANDIDATES: dict[str, tuple[int, dict[str, Any]]] = {
    # the study's settings until this pilot (one-step returns)
    "one-step": (1, {"gradient_steps": 4, "learning_starts": 100, "exploration_fraction": 0.4}),
    # 5-step returns carry an early layer's accuracy loss back 5 layers per update
    "5-step": (5, {"gradient_steps": 8, "learning_starts": 52, "exploration_fraction": 0.5,
                   "target_update_interval": 52}),
    # Monte-Carlo returns (n = episode length, undiscounted): what the end-of-episode arm needed
    "monte-carlo": (52, {"gamma": 1.0, "gradient_steps": 8, "learning_starts": 52,
                         "exploration_fraction": 0.5, "target_update_interval": 52}),
}  # fmt: skip
"""Candidate name -> (n-step length, DQN overrides). ``n`` above the episode length is cut to it."""


@dataclass(frozen=True)
class PilotRun:
    """One candidate on one pilot seed."""

    model: str
    candidate: str
    n_step: int
    dqn: dict[str, Any] = field(default_factory=dict)
    seed: int = PILOT_SEEDS[0]
    episodes: int = 40
    eval_every: int = 5
    profile: str = "cpu"


def pilot_run(run: PilotRun) -> pd.DataFrame:
    """Search with ``run``'s settings; one row per greedy evaluation (episode 0: before any)."""
    sizes = purl_study_sizes(run.model, run.profile, device="cpu")
    data = load_study_data(sizes)
    dense, _ = dense_model(sizes, data, log=lambda _m: None)
    a_star = reward_accuracy(dense, data) - sizes.accuracy_slack
    target = sizes.headline_target
    env_cfg = PuRLConfig(exclude=sizes.dense_layers, target_sparsity=target, target_accuracy=a_star)
    env = PuRLEnv(use_batch_statistics(copy.deepcopy(dense)), data.tensors("reward"), env_cfg)
    n_step = min(run.n_step, env.episode_length)
    cfg = replace(DQNConfig(**run.dqn), seed=run.seed, episodes=run.episodes)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def on_eval(episode: int, agent: DQNAgent) -> bool:
        g = greedy_policy(agent, env, seed=run.seed)
        rows.append({
            "model": run.model, "candidate": run.candidate, "seed": run.seed, "episode": episode,
            "greedy_return": g.episode_return, "sparsity": g.sparsity,
            "reward_top1": g.accuracy, "a_star": a_star, "meets_a_star": g.accuracy >= a_star,
            "target": target, "seconds": time.perf_counter() - t0,
        })  # fmt: skip
        return False

    evals = range(0, run.episodes + 1, run.eval_every)
    agent = train_nstep(env, cfg, n_step, evals=evals, on_eval=on_eval)
    env.close()
    out = pd.DataFrame(rows)
    log = agent.log
    out["train_return_mean5"] = [
        float(log["return"].iloc[max(0, e - 5) : e].mean()) if e else float("nan")
        for e in out["episode"]
    ]
    return out


def uniform_reference(model: str, profile: str = "cpu") -> dict[str, float]:
    """The best uniform-alpha policy (the constant policy to beat) at the headline target: its
    alpha, final sparsity and reward accuracy, and its return in the pilot's MDP."""
    sizes = purl_study_sizes(model, profile, device="cpu")
    data = load_study_data(sizes)
    dense, _ = dense_model(sizes, data, log=lambda _m: None)
    a_star = reward_accuracy(dense, data) - sizes.accuracy_slack
    env_cfg = PuRLConfig(exclude=sizes.dense_layers, target_sparsity=sizes.headline_target,
                         target_accuracy=a_star)  # fmt: skip
    best, _ = best_uniform_alpha(dense, data.tensors("reward"), env_cfg)
    env = PuRLEnv(use_batch_statistics(copy.deepcopy(dense)), data.tensors("reward"), env_cfg)
    action = env_cfg.action_values.index(best["alpha"])
    ep = rollout(env, lambda _obs: action, seed=0)
    env.close()
    return {"model": model, "alpha": best["alpha"], "sparsity": best["sparsity"],
            "reward_top1": best["accuracy"], "greedy_return": ep.episode_return, "a_star": a_star}  # fmt: skip


def run_pilot(
    model: str,
    candidates: dict[str, tuple[int, dict[str, Any]]] | None = None,
    seeds: tuple[int, ...] = PILOT_SEEDS[:1],
    episodes: int = 40,
    eval_every: int = 5,
    profile: str = "cpu",
    workers: int | None = None,
) -> pd.DataFrame:
    """Every candidate on every seed (parallel processes); the curves, also written to
    ``results/<profile>/pilots/purl_dqn_<model>.csv``."""
    cands = candidates or CANDIDATES
    runs = [PilotRun(model, name, n, dict(dqn), seed, episodes, eval_every, profile)
            for name, (n, dqn) in cands.items() for seed in seeds]  # fmt: skip
    out = pd.concat(
        run_jobs(pilot_run, runs, workers, desc=f"DQN pilot {model}"), ignore_index=True
    )
    write_csv(results_root() / profile / "pilots" / f"purl_dqn_{model}.csv", out)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--model``, ``--candidates`` (names of :data:`CANDIDATES`), ``--seeds``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet50", choices=("resnet50", "mobilenet_v2"))
    p.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    p.add_argument("--seeds", nargs="*", type=int, default=list(PILOT_SEEDS[:1]))
    p.add_argument("--episodes", type=int, default=40)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--profile", default="cpu")
    p.add_argument("--reference", action="store_true", help="also the best uniform alpha's return")
    a = p.parse_args(argv)
    if a.reference:
        ref = uniform_reference(a.model, a.profile)
        path = results_root() / a.profile / "pilots" / f"purl_dqn_{a.model}_uniform_reference.json"
        atomic_write_text(path, json.dumps(ref))
    out = run_pilot(a.model, {k: CANDIDATES[k] for k in a.candidates}, tuple(a.seeds), a.episodes,
                    a.eval_every, a.profile)  # fmt: skip
    print(out.to_string(index=False))


if __name__ == "__main__":
    main()
