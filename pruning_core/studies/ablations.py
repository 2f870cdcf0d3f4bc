"""Ablations of PuRL's design choices (notebook 05), on one common footing.

**Networks** (:mod:`.ablations_networks`): notebook 01's small CNN on 8x8 digits (5 prunable
layers: 23^5 policies, few enough for random search to cover) and a CIFAR-style ResNet-20 on
14x14 Fashion-MNIST (22 prunable layers: 23^22 policies, where learning has to matter). Every
network has four splits: ``train`` (dense training), ``reward`` (PuRL's reward, random search's
choice, the learning curves), ``stop`` (held out: the deployed policy is **re-scored** there)
and ``test`` (reported only).

**Runs.** One run = one (network, configuration, seed): a DQN trains for the network's
converged budget (:class:`NetworkSizes`), and every ``eval_every`` episodes training pauses (a
checkpoint, then a resume) and the *greedy* policy plays one episode; random search plays as many
uniformly random episodes (the same number of network evaluations) and keeps its best by the
yardstick on the reward split. Runs are jobs of :func:`pruning_core.config.run_jobs` (one torch
thread each, in parallel over ``PRUNING_CORE_WORKERS``) cached under ``cache_root()/05_ablations``
at the path of their key (:class:`PurlRunKey`), so an interrupted notebook resumes.

**The yardstick** (:func:`yardstick`) judges every run whatever reward it trained with: PuRL's
reward of the episode's **final** network at the default targets (``A*`` = the dense network's
accuracy on the same split, ``S*`` = 0.8, beta = 5), 0 at best.

**Deployed policy, re-scored.** A DQN deploys its final greedy policy, random search its chosen
best episode. Both are re-scored on data that did not choose them: ``yardstick_rescored`` is the
yardstick with the accuracy on ``stop`` (and ``A*`` = dense accuracy on ``stop``).

**Runs table** (:func:`purl_runs`, one per ablation), one row per (variant, seed), the same
columns everywhere (:data:`RUN_COLUMNS`): ``ablation, network, variant, label, seed,
yardstick_rescored`` (primary), ``yardstick_reward`` (the deployed policy on the reward split),
``sparsity, val_accuracy`` (reward split), ``heldout_accuracy`` (stop), ``test_accuracy``,
``auc, level, episodes_to_level, reached_level`` (:mod:`.ablations_report`: the greedy curve's
trapezoid area per episode, and the first evaluation episode whose trailing mean of
``smooth_window`` points reaches the network's fixed level; censored at the horizon when never),
``last_evals_yardstick`` (secondary: the mean of the last ``final_fraction`` of the greedy
evaluations), ``seconds`` (wall time of the run, one thread) and ``actions`` (the deployed
policy). The reference row of each ablation is ``variant == "default"`` (``"step"`` in
reward timing), with the same seeds as every other variant: effects are paired by seed. For random
search the "curve" is its best-so-far episode on the reward split.

**NEON ablations** live in :mod:`.ablations_neon`, with their own sizes (``neon_ablation_sizes``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pruning_core.config import no_progress, run_jobs
from pruning_core.rl.agents.dqn import DQNAgent, DQNConfig, train
from pruning_core.rl.agents.dqn_nstep import train_nstep
from pruning_core.rl.envs.purl import PuRLConfig
from pruning_core.rl.rollout import replay
from pruning_core.runs import ArtefactKey, cached
from pruning_core.studies.ablations_env import NeonRewardWrapper, make_env, play, rescore
from pruning_core.studies.ablations_networks import (
    NETWORKS,
    YARDSTICK,
    ablation_network,
    network_level,
    yardstick,
)
from pruning_core.studies.ablations_report import auc, episodes_to_fixed_level
from pruning_core.studies.ablations_sizes import (
    RESNET20_CPU_EPISODES,
    RESNET20_LEVEL,
    AblationSizes,
    NetworkSizes,
    ablation_sizes,
)
from pruning_core.studies.mdp_design import DenseModel

__all__ = [
    "ABLATIONS",
    "AblationSizes",
    "NETWORKS",
    "NeonRewardWrapper",
    "NetworkSizes",
    "PURL_VARIANTS",
    "PurlRunKey",
    "PurlVariant",
    "RESNET20_CPU_EPISODES",
    "RESNET20_LEVEL",
    "RUN_COLUMNS",
    "YARDSTICK",
    "ablation_network",
    "ablation_sizes",
    "action_space",
    "agent_choice",
    "network_level",
    "purl_job",
    "purl_runs",
    "reward_shape",
    "run_purl_variant",
    "state_features",
    "yardstick",
]


@dataclass(frozen=True)
class PurlVariant:
    """One PuRL configuration: overrides of the MDP and of the DQN, and the reward / agent."""

    ablation: str
    """Which ablation it belongs to (``reward_timing``, ``reward_shape``, ...)."""
    name: str
    """Short name; ``default`` is the reference configuration every ablation shares."""
    purl: dict[str, Any] = field(default_factory=dict)
    """Overrides of :class:`PuRLConfig` fields."""
    dqn: dict[str, Any] = field(default_factory=dict)
    """Overrides of the ablations' :class:`DQNConfig` (``"small_buffer"`` reads the sizes)."""
    reward: str = "purl"
    """``purl`` (the env's own reward) or ``neon`` (:class:`NeonRewardWrapper`, C = 1)."""
    agent: str = "dqn"
    """``dqn`` or ``random_search`` (best of N random episodes, N = the DQN's episodes)."""
    label: str = ""
    """What the configuration is, for tables and figures."""


ALPHAS_12: tuple[float, ...] = tuple(round(0.2 * i, 1) for i in range(12))


ALPHAS_6: tuple[float, ...] = tuple(round(0.44 * i, 2) for i in range(6))


_DEFAULT_LABEL = "PuRL default: step reward, 23 alphas, all features, Double DQN"


PURL_VARIANTS: dict[str, list[PurlVariant]] = {
    "reward_timing": [
        PurlVariant("reward_timing", "step", label="reward after every step (PuRL)"),
        PurlVariant(
            "reward_timing",
            "episodic",
            purl={"reward_mode": "episodic"},
            label="reward at the end of the episode only (AMC-style)",
        ),
    ],
    "reward_shape": [
        PurlVariant("reward_shape", "default", label="beta 5, A* = dense, S* = 0.8"),
        PurlVariant("reward_shape", "beta_1", purl={"beta": 1.0}, label="beta 1"),
        PurlVariant("reward_shape", "A*_0.95", purl={"target_accuracy": 0.95}, label="A* = 0.95"),
        PurlVariant("reward_shape", "S*_0.9", purl={"target_sparsity": 0.9}, label="S* = 0.9"),
        PurlVariant(
            "reward_shape", "neon_C1", reward="neon", label="NEON's reward, C = 1 pp (/ 40^3)"
        ),
    ],
    "state": [
        PurlVariant("state", "default", label="all 20 features"),
        PurlVariant("state", "qlp", purl={"features": "qlp"}, label="layer index + density (QLP)"),
        PurlVariant(
            "state", "no_accuracy", purl={"features": "no_accuracy"}, label="no accuracy feature"
        ),
    ],
    "action_space": [
        PurlVariant("action_space", "default", label="23 alphas 0.0..2.2, 1 pass"),
        PurlVariant("action_space", "alpha_12", purl={"alphas": ALPHAS_12}, label="12 alphas"),
        PurlVariant("action_space", "alpha_6", purl={"alphas": ALPHAS_6}, label="6 alphas"),
        PurlVariant(
            "action_space",
            "ratio_20",
            purl={"action_space": "ratio"},
            label="20 sparsity ratios 0..0.95",
        ),
        PurlVariant("action_space", "passes_3", purl={"passes": 3}, label="23 alphas, 3 passes"),
    ],
    "agent": [
        PurlVariant("agent", "default", label="Double DQN, unbounded replay, eps over 50%"),
        PurlVariant("agent", "dqn", dqn={"double_dqn": False}, label="DQN (no Double)"),
        PurlVariant(
            "agent", "replay_small", dqn={"buffer_size": "small_buffer"}, label="small replay"
        ),
        PurlVariant(
            "agent", "eps_fast", dqn={"exploration_fraction": 0.1}, label="eps over 10% of steps"
        ),
        PurlVariant(
            "agent",
            "random_search",
            agent="random_search",
            label="random search: best of N random episodes",
        ),
    ],
}
"""The PuRL configurations of each ablation; the first of each is the default (``step`` in
reward_timing is the same run as every ``default``)."""


ABLATIONS: tuple[str, ...] = (*PURL_VARIANTS, "neon")
"""Names of the six ablations."""


def is_episodic_arm(variant: PurlVariant) -> bool:
    """True for the reward-timing ablation's end-of-episode arm (its own piloted settings)."""
    return variant.ablation == "reward_timing" and variant.name == "episodic"


def _dqn_overrides(sizes: NetworkSizes, variant: PurlVariant) -> dict[str, Any]:
    out = {k: (sizes.small_buffer if v == "small_buffer" else v) for k, v in variant.dqn.items()}
    if is_episodic_arm(variant):
        out = {**out, **sizes.episodic_dqn, "episodes": sizes.horizon}
    return out


@dataclass(frozen=True)
class PurlRunKey(ArtefactKey):
    """One PuRL ablation run: network, data, MDP, DQN, reward, agent and evaluation points.

    Variants of different ablations with the same configuration share their run.
    """

    KIND = "05_ablations/purl"
    VERSION = 4
    network: str
    dense: str
    """The dense network's cache file name (it names its whole config)."""
    data: str
    """Sizes of the reward / stop / test splits (the re-scoring data)."""
    purl: PuRLConfig
    dqn: DQNConfig
    reward: str
    agent: str
    evals: tuple[int, ...]
    """The episodes after which the greedy policy is evaluated."""
    n_step: int = 1
    """n-step returns (> 1 or ``stop_level`` set: :func:`~pruning_core.rl.agents.dqn_nstep.train_nstep`)."""
    stop_level: float | None = None
    """Stop once the trailing mean of the greedy curve reaches this level (None: never)."""

    @property
    def prefix(self) -> str:
        """Network, agent, reward and seed."""
        return f"{self.network}-{self.agent}-{self.reward}-seed{self.dqn.seed}"


def _run_key(
    sizes: AblationSizes, network: str, dense: DenseModel, variant: PurlVariant, seed: int
) -> PurlRunKey:
    n = sizes.net(network)
    s = dense.splits
    data = f"{s.name}: reward {s.n('reward')}, stop {s.n('stop')}, test {s.n('test')}"
    episodic = is_episodic_arm(variant)
    return PurlRunKey(
        network, dense.path.name, data, PuRLConfig(**variant.purl),
        sizes.dqn_config(network, seed, **_dqn_overrides(n, variant)), variant.reward,
        variant.agent, tuple(n.episodic_eval_episodes if episodic else n.eval_episodes),
        n_step=n.episodic_n_step if episodic else 1,
        stop_level=network_level(sizes, network, dense) if episodic else None,
    )  # fmt: skip


def resume_path(path: Path) -> Path:
    """The training checkpoint of the run cached at ``path`` (deleted when the run is done)."""
    return path.with_name(path.stem + ".train.pt")


def _train_until_level(
    env: Any, key: PurlRunKey, window: int
) -> tuple[DQNAgent, dict[str, Any], list[dict[str, Any]]]:
    """n-step DQN with greedy evaluations at ``key.evals``, stopped once the trailing mean of
    ``window`` evaluations reaches ``key.stop_level``; the agent, last greedy play, curve."""
    curve: list[dict[str, Any]] = []
    last: dict[str, Any] = {}

    def on_eval(episode: int, agent: DQNAgent) -> bool:
        res = play(env, agent.act)
        last.update(res)
        curve.append({"episode": episode, **{k: v for k, v in res.items() if k != "actions"}})
        if key.stop_level is None:
            return False
        c = pd.DataFrame(curve)
        return episodes_to_fixed_level(c["episode"], c["yardstick"], key.stop_level, window)[0]

    agent = train_nstep(env, key.dqn, key.n_step, evals=key.evals, on_eval=on_eval)
    return agent, dict(last), curve


def _train_dqn(
    sizes: AblationSizes, network: str, dense: DenseModel, variant: PurlVariant, seed: int,
    ckpt: Path,
) -> dict[str, Any]:  # fmt: skip
    n = sizes.net(network)
    env = make_env(dense, variant.purl, variant.reward)
    cfg = sizes.dqn_config(network, seed, **_dqn_overrides(n, variant))
    t0 = time.perf_counter()
    curve: list[dict[str, Any]] = []
    agent, res = None, None
    if is_episodic_arm(variant):
        key = _run_key(sizes, network, dense, variant, seed)
        agent, res, curve = _train_until_level(env, key, sizes.smooth_window)
    else:
        for k, stop in enumerate(n.eval_episodes):
            agent = train(env, cfg, checkpoint_path=ckpt, resume=k > 0, stop_after=stop)
            res = play(env, agent.act)
            curve.append({"episode": stop, **{k: v for k, v in res.items() if k != "actions"}})
    assert agent is not None and res is not None
    deployed = rescore(env, dense, res)  # the final greedy policy's network is in the env
    seconds = time.perf_counter() - t0
    for p in (ckpt, ckpt.with_name(ckpt.name + ".sha256")):
        p.unlink(missing_ok=True)
    log = agent.log[["episode", "return", "final_sparsity", "final_accuracy", "epsilon"]].copy()
    log["yardstick"] = [
        yardstick(a, s, env.unwrapped.dense_accuracy)
        for a, s in zip(log["final_accuracy"], log["final_sparsity"], strict=True)
    ]
    return {"curve": curve, "log": log.to_dict("list"), "deployed": deployed,
            "seconds": seconds, "episodes": int(len(agent.log))}  # fmt: skip


def _random_search(
    sizes: AblationSizes, network: str, dense: DenseModel, variant: PurlVariant, seed: int
) -> dict[str, Any]:
    """Best of ``episodes`` uniformly random episodes, chosen by the yardstick (reward split)."""
    n = sizes.net(network)
    env = make_env(dense, variant.purl, variant.reward)
    rng = np.random.default_rng(seed)
    length = env.unwrapped.episode_length
    t0 = time.perf_counter()
    best: dict[str, Any] | None = None
    curve, rows = [], []
    evals = set(n.eval_episodes)
    for e in range(1, n.episodes + 1):
        res = play(env, replay(rng.integers(int(env.action_space.n), size=length).tolist()))
        rows.append({"episode": e, "yardstick": res["yardstick"], "sparsity": res["sparsity"]})
        if best is None or res["yardstick"] > best["yardstick"]:
            best = res
        if e in evals:
            curve.append({"episode": e, **{k: v for k, v in best.items() if k != "actions"}})
    assert best is not None
    play(env, replay(best["actions"]))  # the chosen network again, to re-score it
    deployed = rescore(env, dense, best)
    seconds = time.perf_counter() - t0
    return {"curve": curve, "log": pd.DataFrame(rows).to_dict("list"), "deployed": deployed,
            "seconds": seconds, "episodes": n.episodes}  # fmt: skip


def run_purl_variant(
    sizes: AblationSizes, network: str, dense: DenseModel, variant: PurlVariant, seed: int
) -> dict[str, Any]:
    """Train (or load from the cache) one PuRL configuration on ``network`` at one seed.

    Returns ``curve`` (greedy evaluations on the reward split: episode, yardstick, sparsity,
    val_accuracy; random search: its best so far), ``log`` (per training episode),
    ``deployed`` (the deployed policy re-scored, see :func:`_rescore`), ``seconds`` (wall time
    of the run when it was computed) and ``episodes``.
    """
    path = _run_key(sizes, network, dense, variant, seed).path()

    def build() -> dict[str, Any]:
        with no_progress():  # cached() runs the build with one torch thread
            if variant.agent == "random_search":
                return _random_search(sizes, network, dense, variant, seed)
            return _train_dqn(sizes, network, dense, variant, seed, resume_path(path))

    return cached(path, build)


_DENSE: dict[tuple[str, str], DenseModel] = {}
"""Dense networks loaded by this process (a worker runs many jobs on one network)."""


def _dense(sizes: AblationSizes, network: str) -> DenseModel:
    key = (network, repr(sizes))
    if key not in _DENSE:
        _DENSE.clear()
        _DENSE[key] = ablation_network(sizes, network)
    return _DENSE[key]


def purl_job(
    job: tuple[AblationSizes, str, PurlVariant, int, DenseModel | None],
) -> dict[str, Any]:
    """One run as a :func:`~pruning_core.config.run_jobs` job: (sizes, network, variant, seed,
    dense); ``dense`` None loads the network (:func:`ablation_network`, cached on disk)."""
    sizes, network, variant, seed, dense = job
    dense = dense if dense is not None else _dense(sizes, network)
    return run_purl_variant(sizes, network, dense, variant, seed)


RUN_COLUMNS: tuple[str, ...] = (
    "ablation", "network", "variant", "label", "seed", "yardstick_rescored", "yardstick_reward",
    "sparsity", "val_accuracy", "heldout_accuracy", "test_accuracy", "auc", "level",
    "episodes_to_level", "reached_level", "horizon", "last_evals_yardstick", "seconds",
    "actions",
)  # fmt: skip
"""Columns of every PuRL runs table (see the module docstring)."""


def purl_runs(
    sizes: AblationSizes,
    ablation: str,
    network: str = "small_cnn",
    seeds: Sequence[int] | None = None,
    variants: Sequence[str] | None = None,
    workers: int | None = None,
    dense: DenseModel | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run of one PuRL ablation on ``network``: the runs table and the learning curves.

    ``seeds`` default to ``sizes.ablation_seeds`` (``timing_seeds`` for ``reward_timing``);
    ``variants`` (names) to all of the ablation's. Missing runs are computed in parallel
    (``run_jobs``, ``workers`` processes), cached ones loaded. The runs table has
    :data:`RUN_COLUMNS`; the curves one row per (variant, seed, evaluation episode).
    ``dense`` replaces the network's dense model (tests; it travels with every job).
    """
    vs = [v for v in PURL_VARIANTS[ablation] if variants is None or v.name in variants]
    if seeds is None:
        seeds = sizes.timing_seeds if ablation == "reward_timing" else sizes.ablation_seeds
    given = dense
    dense = dense if dense is not None else _dense(sizes, network)
    level = network_level(sizes, network, dense)
    jobs = [(sizes, network, v, s, given) for v in vs for s in seeds]
    todo = [j for j in jobs if not _run_key(sizes, network, dense, j[2], j[3]).path().is_file()]
    if todo:
        run_jobs(purl_job, todo, workers=workers, desc=f"{ablation} on {network}")
    rows, curves = [], []
    for job in jobs:
        _, _, v, seed, _ = job
        res = run_purl_variant(sizes, network, dense, v, seed)  # cached: loads
        key = _run_key(sizes, network, dense, v, seed)
        c = pd.DataFrame(res["curve"])
        reached, ep = episodes_to_fixed_level(c["episode"], c["yardstick"], level,
                                              sizes.smooth_window)  # fmt: skip
        common = c[c["episode"] <= sizes.net(network).episodes]  # AUC on the common span
        late = c["yardstick"].tail(max(1, int(np.ceil(sizes.final_fraction * len(c)))))
        d = res["deployed"]
        rows.append({
            "ablation": ablation, "network": network, "variant": v.name, "label": v.label,
            "seed": seed, **{k: d[k] for k in ("yardstick_rescored", "yardstick_reward",
            "sparsity", "val_accuracy", "heldout_accuracy", "test_accuracy")},
            "auc": auc(common["episode"], common["yardstick"]), "level": level,
            "episodes_to_level": ep, "reached_level": reached, "horizon": int(key.evals[-1]),
            "last_evals_yardstick": float(late.mean()), "seconds": res["seconds"],
            "actions": " ".join(str(a) for a in d["actions"]),
        })  # fmt: skip
        curves.append(c.assign(network=network, variant=v.name, seed=seed))
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS)), pd.concat(curves, ignore_index=True)


def reward_shape(
    sizes: AblationSizes, workers: int | None = None, dense: DenseModel | None = None
) -> pd.DataFrame:
    """Ablation: beta, A*, S* and NEON's reward (C = 1) in place of PuRL's (small CNN)."""
    return purl_runs(sizes, "reward_shape", workers=workers, dense=dense)[0]


def state_features(
    sizes: AblationSizes, workers: int | None = None, dense: DenseModel | None = None
) -> pd.DataFrame:
    """Ablation: all features vs QLP's (layer index, density) vs no accuracy feature."""
    return purl_runs(sizes, "state", workers=workers, dense=dense)[0]


def action_space(
    sizes: AblationSizes, workers: int | None = None, dense: DenseModel | None = None
) -> pd.DataFrame:
    """Ablation: alpha grid of 23 / 12 / 6 values vs a sparsity-ratio grid vs 3 passes."""
    return purl_runs(sizes, "action_space", workers=workers, dense=dense)[0]


def agent_choice(
    sizes: AblationSizes, workers: int | None = None, dense: DenseModel | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ablation: Double DQN vs DQN, small replay, fast epsilon decay, random search."""
    return purl_runs(sizes, "agent", workers=workers, dense=dense)


def study_plan(sizes: AblationSizes) -> list[tuple[str, str, tuple[int, ...], tuple[str, ...] | None]]:
    """Every PuRL run notebook 05 reads, as ``(ablation, network, seeds, variants)``: reward
    timing and random search vs the DQN on both networks (``timing_seeds``), the other ablations
    on the small CNN (``ablation_seeds``)."""
    both = ("small_cnn", "resnet20")
    plan: list[tuple[str, str, tuple[int, ...], tuple[str, ...] | None]] = []
    for net in both:
        plan.append(("reward_timing", net, tuple(sizes.timing_seeds), None))
        plan.append(("agent", net, tuple(sizes.timing_seeds), ("default", "random_search")))
    for ablation in ("reward_shape", "state", "action_space", "agent"):
        plan.append((ablation, "small_cnn", tuple(sizes.ablation_seeds), None))
    return plan


def prefetch_purl(sizes: AblationSizes, workers: int | None = None) -> int:
    """Compute every run of :func:`study_plan` that is not cached yet, in one pool of ``workers``
    one-thread processes, the most expensive first (ResNet-20 before the small CNN, more passes
    before fewer), so that no worker idles while a long run finishes alone. The ablation
    functions then only load. Returns how many runs were computed."""
    todo: dict[Path, tuple[float, tuple[Any, ...]]] = {}
    for ablation, network, seeds, names in study_plan(sizes):
        dense = _dense(sizes, network)
        network_level(sizes, network, dense)  # cached before any job, as the rule says
        for v in PURL_VARIANTS[ablation]:
            if names is not None and v.name not in names:
                continue
            for s in seeds:
                path = _run_key(sizes, network, dense, v, s).path()
                if path.is_file() or path in todo:
                    continue
                n = sizes.net(network)
                cost = (n.horizon if is_episodic_arm(v) else n.episodes) * (22 if network == "resnet20" else 5) * v.purl.get("passes", 1)
                todo[path] = (cost * (0.6 if v.agent == "random_search" else 1.0),
                              (sizes, network, v, s, None))  # fmt: skip
    jobs = [job for _cost, job in sorted(todo.values(), key=lambda t: -t[0])]
    if jobs:
        run_jobs(purl_job, jobs, workers=workers, desc="PuRL ablation runs")
    return len(jobs)
