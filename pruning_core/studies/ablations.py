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

import contextlib
import copy
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from pruning_core.config import by_profile, run_jobs, torch_threads
from pruning_core.rl.agents.dqn import DQNConfig, train
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rewards import neon_reward
from pruning_core.rl.rollout import Policy, replay, rollout
from pruning_core.runs import ArtefactKey, cached
from pruning_core.studies.ablations_networks import (
    NETWORKS,
    YARDSTICK,
    ablation_network,
    network_level,
    yardstick,
)
from pruning_core.studies.ablations_report import auc, episodes_to_fixed_level
from pruning_core.studies.mdp_design import DenseModel
from pruning_core.train.loop import TrainConfig, evaluate

__all__ = [
    "ABLATIONS",
    "AblationSizes",
    "NETWORKS",
    "NeonRewardWrapper",
    "NetworkSizes",
    "PURL_VARIANTS",
    "PurlRunKey",
    "PurlVariant",
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
class NetworkSizes:
    """The RL budget on one network (the same for every configuration run on it)."""

    network: str
    """``small_cnn`` or ``resnet20``."""
    episodes: int
    """DQN training episodes per run (random search: as many episodes): a budget at which the
    default DQN has converged on this network."""
    eval_every: int
    """Training episodes between two greedy evaluations (the learning curve's resolution)."""
    learning_starts: int
    """Env steps of random play before DQN updates start."""
    buffer_size: int
    """Replay capacity of the default DQN (at least a run's transitions: unbounded)."""
    small_buffer: int
    """Replay capacity of the small-replay variant (in transitions)."""
    level: float | None = None
    """The yardstick level of ``episodes_to_level``; None: the best uniform policy's yardstick
    on the reward split (:func:`network_level`), fixed before any RL run."""

    @property
    def eval_episodes(self) -> list[int]:
        """Training episodes after which the greedy policy is evaluated (0 = untrained)."""
        return [*range(0, self.episodes, self.eval_every), self.episodes]


@dataclass(frozen=True)
class AblationSizes:
    """Every size of notebook 05, derived from the profile (see :func:`ablation_sizes`)."""

    profile: str
    """The profile these sizes belong to."""
    timing_seeds: tuple[int, ...]
    """Seeds of the reward-timing ablation and of random search vs DQN (both networks)."""
    ablation_seeds: tuple[int, ...]
    """Seeds of the other PuRL ablations (small CNN): a prefix of ``timing_seeds``, so their
    ``default`` runs are the timing ablation's ``step`` runs."""
    small_cnn: NetworkSizes
    """RL budget on the small CNN."""
    resnet20: NetworkSizes
    """RL budget on the ResNet-20."""
    exploration_fraction: float
    """Fraction of all env steps over which epsilon decays (default configuration): the same
    share of the episodes on every network."""
    smooth_window: int
    """Evaluation points in the trailing mean of ``episodes_to_level``."""
    final_fraction: float
    """Share of the last evaluation points averaged into ``last_evals_yardstick`` (and NEON's
    late-training metrics)."""
    resnet20_width: int
    """Channels of the ResNet-20's first stage (then 2x, 4x)."""
    resnet20_image_size: int
    """Fashion-MNIST images are resized to this side."""
    resnet20_train_rows: int
    """Training images of the dense ResNet-20."""
    resnet20_reward_rows: int
    """Images of the reward split (every env step evaluates them: the cost of an episode)."""
    resnet20_stop_rows: int
    """Images of the stop split (dense early stopping, re-scoring)."""
    resnet20_train: TrainConfig
    """Dense training of the ResNet-20."""

    def net(self, network: str) -> NetworkSizes:
        """The RL budget on ``network``."""
        if network not in NETWORKS:
            raise ValueError(f"unknown network {network!r}: use one of {NETWORKS}")
        return getattr(self, network)

    def dqn_config(self, network: str, seed: int, **overrides: Any) -> DQNConfig:
        """The default DQN of the ablations on ``network`` (Double DQN, unbounded replay)."""
        n = self.net(network)
        cfg = DQNConfig(
            seed=seed,
            episodes=n.episodes,
            learning_starts=n.learning_starts,
            exploration_fraction=self.exploration_fraction,
            buffer_size=n.buffer_size,
            checkpoint_every=10**9,
        )
        return replace(cfg, **overrides)


def ablation_sizes(profile: str) -> AblationSizes:
    """Sizes of notebook 05 at ``profile`` (smoke: about a minute).

    cpu budgets (one torch thread per run; measured on the 2-core machine while another job
    ran on it, so upper bounds):

    * small CNN (digits, 5 layers): 400 episodes, a greedy evaluation every 10. Notebook 01's
      DQN converges in about 300; a pilot at seed 100 (not a study seed) with 500 episodes had
      the step reward's greedy curve flat from about episode 300 (-0.8 to -1.0), and reached
      the level (best uniform policy, -1.66) at episode 130 (step) and 220 (end-of-episode).
      About 33 s per run under load (0.08 s per episode including the 41 greedy evaluations).
      10 seeds of reward timing and random search (about 400 core-s on a quiet machine: 0.03 s
      per DQN episode). The other ablations run 5 seeds (the first 5 timing seeds, so their
      default is the timing runs'): 13 non-default configurations, passes_3 at 3x, about
      1100 core-s quiet. **What the budget cut:** the whole cpu profile (every notebook) must
      fit 2 hours on 2 cores and notebooks 02-04 take most of it, so the other ablations get
      5 seeds, not 10 (the gpu profile runs 10).
    * ResNet-20 (22 layers; width 8, 14x14 Fashion-MNIST, dense test top-1 85.9%): 300
      episodes, an evaluation every 10. Pilot at seed 100 (256 reward images): the step
      reward's greedy curve rose from -4.4 to a noisy plateau around -2.5 to -3.0 once epsilon
      reached its floor (episode 150) and reached the level (best uniform policy, alpha 0.5:
      -2.98) at episode 170; the end-of-episode reward never reached it in 300 (censored).
      256 reward images cost 0.6-0.7 s per episode under load, so the cpu profile evaluates
      128 (about half the cost; accuracy in steps of 0.8 pt): that is what the budget cut,
      with the image size and width (a full-size ResNet-20 on 28x28 reaches about 91%).
      With 128 reward images the best uniform policy (alpha 0.5) scores -2.89: the level; a
      step-reward pilot at seed 101 reached it at episode 180 and took 108 s (0.36 s per
      episode under load): about 3000 core-s for the 30 runs under load, less when quiet.
      10 seeds x (step, episodic, random search) = 30 runs.
    """
    small = NetworkSizes(
        "small_cnn",
        episodes=by_profile(profile, smoke=10, cpu=400, gpu=800),
        eval_every=by_profile(profile, smoke=5, cpu=10, gpu=20),
        learning_starts=by_profile(profile, smoke=20, cpu=100, gpu=200),
        buffer_size=by_profile(profile, smoke=1000, cpu=5000, gpu=20_000),
        small_buffer=by_profile(profile, smoke=25, cpu=100, gpu=200),
    )
    resnet = NetworkSizes(
        "resnet20",
        episodes=by_profile(profile, smoke=4, cpu=RESNET20_CPU_EPISODES, gpu=1000),
        eval_every=by_profile(profile, smoke=2, cpu=10, gpu=20),
        learning_starts=by_profile(profile, smoke=22, cpu=220, gpu=440),
        buffer_size=by_profile(profile, smoke=1000, cpu=20_000, gpu=50_000),
        small_buffer=by_profile(profile, smoke=50, cpu=400, gpu=800),
        level=RESNET20_LEVEL,
    )
    return AblationSizes(
        profile=profile,
        timing_seeds=by_profile(profile, smoke=(0,), cpu=tuple(range(10)), gpu=tuple(range(20))),
        ablation_seeds=by_profile(profile, smoke=(0,), cpu=tuple(range(5)), gpu=tuple(range(10))),
        small_cnn=small,
        resnet20=resnet,
        exploration_fraction=0.5,
        smooth_window=3,
        final_fraction=0.25,
        resnet20_width=by_profile(profile, smoke=4, cpu=8, gpu=16),
        resnet20_image_size=by_profile(profile, smoke=14, cpu=14, gpu=28),
        resnet20_train_rows=by_profile(profile, smoke=1000, cpu=8000, gpu=50_000),
        resnet20_reward_rows=by_profile(profile, smoke=64, cpu=128, gpu=1000),
        resnet20_stop_rows=by_profile(profile, smoke=200, cpu=2000, gpu=2000),
        resnet20_train=by_profile(
            profile,
            smoke=TrainConfig(epochs=2, lr=0.05, batch_size=128, seed=0),
            cpu=TrainConfig(epochs=20, lr=0.05, batch_size=128, seed=0, patience=4,
                            monitor="val_top1", restore_best=True),
            gpu=TrainConfig(epochs=60, lr=0.1, batch_size=128, seed=0, patience=10,
                            monitor="val_top1", restore_best=True),
        ),  # fmt: skip
    )


RESNET20_CPU_EPISODES = 300
"""DQN episodes per run on the ResNet-20 at cpu (pilot at seed 100: see :func:`ablation_sizes`)."""


RESNET20_LEVEL: float | None = None
"""The ResNet-20's level (None: the best uniform policy's yardstick; see :func:`network_level`)."""


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


class NeonRewardWrapper(gym.Wrapper):
    """PuRLEnv paying NEON's reward instead of PuRL's (recomputed from the step's info).

    ``L`` is the share of the layer's remaining weights this step removed (in percent), the
    accuracy change is against the dense network: ``neon_reward(1 - L/100, A, A_dense, C)``,
    divided by ``scale`` (40**3, as NEON's agent does) so the DQN sees rewards of order 1.
    """

    def __init__(self, env: PuRLEnv, C: float = 1.0, scale: float = 40.0**3) -> None:
        super().__init__(env)
        self.C = float(C)
        self.scale = float(scale)
        self._prev: dict[str, float] = {}

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the env and the per-layer sparsity memory."""
        obs, info = self.env.reset(**kwargs)
        self._prev = dict(info["layer_sparsity"])
        return obs, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Step the env and replace its reward with NEON's."""
        obs, _r, terminated, truncated, info = self.env.step(action)
        layer = info["layer"]
        before, after = self._prev.get(layer, 0.0), info["layer_sparsity"][layer]
        removed = (after - before) / (1.0 - before) if before < 1.0 else 0.0
        self._prev = dict(info["layer_sparsity"])
        r = neon_reward(
            1.0 - min(max(removed, 0.0), 1.0), info["accuracy"], info["dense_accuracy"], self.C
        )
        return obs, r / self.scale, terminated, truncated, info



@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No inner progress bars (the ablation shows one bar over its runs)."""
    old = os.environ.get("PRUNING_CORE_PROGRESS")
    os.environ["PRUNING_CORE_PROGRESS"] = "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PRUNING_CORE_PROGRESS", None)
        else:
            os.environ["PRUNING_CORE_PROGRESS"] = old


def _make_env(dense: DenseModel, variant: PurlVariant) -> gym.Env:
    """A fresh PuRLEnv on a private copy of the dense network (wrapped for NEON's reward)."""
    env = PuRLEnv(
        copy.deepcopy(dense.model),
        dense.splits.tensors("reward"),
        PuRLConfig(**variant.purl),
    )
    return NeonRewardWrapper(env) if variant.reward == "neon" else env


def _play(env: gym.Env, policy: Policy) -> dict[str, Any]:
    """One episode of ``policy``; the yardstick (reward split) and what the final network is."""
    ep = rollout(env, policy)
    info = ep.info
    return {
        "yardstick": yardstick(info["accuracy"], info["sparsity"], env.unwrapped.dense_accuracy),
        "sparsity": float(info["sparsity"]),
        "val_accuracy": float(info["accuracy"]),
        "actions": [int(a) for a in ep.actions],
    }


def _rescore(env: gym.Env, dense: DenseModel, played: dict[str, Any]) -> dict[str, Any]:
    """The deployed policy (the env holds its final network) re-scored on ``stop`` and ``test``.

    ``yardstick_rescored`` uses the accuracy on ``stop`` and the dense network's accuracy on
    ``stop`` as ``A*``: data that chose neither the policy (reward split) nor its episode.
    """
    model = env.unwrapped.model
    held = float(evaluate(model, dense.splits.tensors("stop"))["top1"])
    dense_held = float(evaluate(dense.model, dense.splits.tensors("stop"))["top1"])
    return {
        "yardstick_reward": played["yardstick"],
        "sparsity": played["sparsity"],
        "val_accuracy": played["val_accuracy"],
        "heldout_accuracy": held,
        "dense_heldout_accuracy": dense_held,
        "yardstick_rescored": yardstick(held, played["sparsity"], dense_held),
        "test_accuracy": float(evaluate(model, dense.splits.tensors("test"))["top1"]),
        "actions": played["actions"],
    }


def _dqn_overrides(sizes: NetworkSizes, variant: PurlVariant) -> dict[str, Any]:
    return {k: (sizes.small_buffer if v == "small_buffer" else v) for k, v in variant.dqn.items()}


@dataclass(frozen=True)
class PurlRunKey(ArtefactKey):
    """One PuRL ablation run: network, data, MDP, DQN, reward, agent and evaluation points.

    Variants of different ablations with the same configuration share their run.
    """

    KIND = "05_ablations/purl"
    VERSION = 3
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
    return PurlRunKey(
        network, dense.path.name, data, PuRLConfig(**variant.purl),
        sizes.dqn_config(network, seed, **_dqn_overrides(n, variant)), variant.reward,
        variant.agent, tuple(n.eval_episodes),
    )  # fmt: skip


def resume_path(path: Path) -> Path:
    """The training checkpoint of the run cached at ``path`` (deleted when the run is done)."""
    return path.with_name(path.stem + ".train.pt")


def _train_dqn(
    sizes: AblationSizes, network: str, dense: DenseModel, variant: PurlVariant, seed: int,
    ckpt: Path,
) -> dict[str, Any]:  # fmt: skip
    n = sizes.net(network)
    env = _make_env(dense, variant)
    cfg = sizes.dqn_config(network, seed, **_dqn_overrides(n, variant))
    t0 = time.perf_counter()
    curve: list[dict[str, Any]] = []
    agent, res = None, None
    for k, stop in enumerate(n.eval_episodes):
        agent = train(env, cfg, checkpoint_path=ckpt, resume=k > 0, stop_after=stop)
        res = _play(env, agent.act)
        curve.append({"episode": stop, **{k: v for k, v in res.items() if k != "actions"}})
    assert agent is not None and res is not None
    deployed = _rescore(env, dense, res)  # the final greedy policy's network is in the env
    seconds = time.perf_counter() - t0
    for p in (ckpt, ckpt.with_name(ckpt.name + ".sha256")):
        p.unlink(missing_ok=True)
    log = agent.log[["episode", "return", "final_sparsity", "final_accuracy", "epsilon"]].copy()
    log["yardstick"] = [
        yardstick(a, s, env.unwrapped.dense_accuracy)
        for a, s in zip(log["final_accuracy"], log["final_sparsity"], strict=True)
    ]
    return {"curve": curve, "log": log.to_dict("list"), "deployed": deployed,
            "seconds": seconds, "episodes": n.episodes}  # fmt: skip


def _random_search(
    sizes: AblationSizes, network: str, dense: DenseModel, variant: PurlVariant, seed: int
) -> dict[str, Any]:
    """Best of ``episodes`` uniformly random episodes, chosen by the yardstick (reward split)."""
    n = sizes.net(network)
    env = _make_env(dense, variant)
    rng = np.random.default_rng(seed)
    length = env.unwrapped.episode_length
    t0 = time.perf_counter()
    best: dict[str, Any] | None = None
    curve, rows = [], []
    evals = set(n.eval_episodes)
    for e in range(1, n.episodes + 1):
        res = _play(env, replay(rng.integers(int(env.action_space.n), size=length).tolist()))
        rows.append({"episode": e, "yardstick": res["yardstick"], "sparsity": res["sparsity"]})
        if best is None or res["yardstick"] > best["yardstick"]:
            best = res
        if e in evals:
            curve.append({"episode": e, **{k: v for k, v in best.items() if k != "actions"}})
    assert best is not None
    _play(env, replay(best["actions"]))  # the chosen network again, to re-score it
    deployed = _rescore(env, dense, best)
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
        with quiet(), torch_threads(1):
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
    "episodes_to_level", "reached_level", "last_evals_yardstick", "seconds", "actions",
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
        c = pd.DataFrame(res["curve"])
        reached, ep = episodes_to_fixed_level(c["episode"], c["yardstick"], level,
                                              sizes.smooth_window)  # fmt: skip
        late = c["yardstick"].tail(max(1, int(np.ceil(sizes.final_fraction * len(c)))))
        d = res["deployed"]
        rows.append({
            "ablation": ablation, "network": network, "variant": v.name, "label": v.label,
            "seed": seed, **{k: d[k] for k in ("yardstick_rescored", "yardstick_reward",
            "sparsity", "val_accuracy", "heldout_accuracy", "test_accuracy")},
            "auc": auc(c["episode"], c["yardstick"]), "level": level,
            "episodes_to_level": ep, "reached_level": reached,
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
                cost = n.episodes * (22 if network == "resnet20" else 5) * v.purl.get("passes", 1)
                todo[path] = (cost * (0.6 if v.agent == "random_search" else 1.0),
                              (sizes, network, v, s, None))  # fmt: skip
    jobs = [job for _cost, job in sorted(todo.values(), key=lambda t: -t[0])]
    if jobs:
        run_jobs(purl_job, jobs, workers=workers, desc="PuRL ablation runs")
    return len(jobs)
