"""Ablations of the PuRL and NEON design choices (notebook 05), one function per ablation.

Every function returns a tidy DataFrame: one row per (configuration, seed) with the metrics of
that run. Runs are cached under ``cache_root()/05_ablations`` at the path of their key
(:class:`PurlRunKey`, :class:`NeonRunKey`: a hash of everything that defines them), so an
interrupted notebook resumes at the first run that is not on disk.

**PuRL ablations** (small CNN on 8x8 digits, the network of notebook 01). Each run trains a DQN
for ``sizes.episodes`` episodes; every ``eval_every`` episodes training pauses (a checkpoint,
then a resume) and the *greedy* policy plays one episode. Every run is judged on one common
**yardstick**, whatever reward it was trained with: PuRL's reward of the episode's **final**
network at the default targets (``A*`` = dense validation accuracy, ``S*`` = 0.8, beta = 5),
:func:`yardstick`. It is what both reward schedules ultimately care about (the network that is
left), it does not depend on how many steps an episode has, and it is 0 at best. A run's
final metrics (yardstick, sparsity, validation and test accuracy) are the means over the last
``final_fraction`` of its greedy evaluations: one greedy episode is a noisy summary, since the
greedy policy still switches between a few policies at the end of training. Random search's
curve is its best-so-far episode (chosen by the yardstick on the validation subset).

**Episodes to plateau** (:func:`episodes_to_plateau`): the greedy-evaluation curve is smoothed
with a trailing running mean; ``start`` is the first point (the untrained greedy policy), ``final``
the mean of the last ``final_fraction`` of the points; the plateau is the first evaluation
episode where the smoothed curve has covered ``level`` (95%) of the way from ``start`` to
``final``. It is invariant to shifting and scaling the yardstick, so negative rewards pose no
problem; a run that never improves on its start has plateaued at its first point. Because a
curve that settles early on a worse level looks fast by this measure, the reward-timing ablation
also reports :func:`common_level_episodes`: the episodes each configuration needs to reach one
level per seed that all of them reach.

**NEON ablations** (:func:`neon_ablation`): NeonEnv and the A2C agent on a few suite datasets
with one small random MLP each; every configuration trains an agent on those networks and is
judged by its greedy episode on each (compression and accuracy change at the allowed loss ``C``)
and by the sampled policy of its last training episodes (``train_compression``).

Statistics: :func:`t_interval` (mean and a 95% Student-t interval over seeds) and
:func:`welch_effect` (difference of means against the default configuration, its Welch
interval and Welch's t-test p-value); :func:`ranking` sorts every effect by its size.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from pruning_core.config import by_profile, progress, torch_threads
from pruning_core.models.mlp import ArchitectureSpace
from pruning_core.rl.agents.dqn import DQNConfig, train
from pruning_core.rl.envs.neon import default_finetune
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rewards import neon_reward, purl_reward
from pruning_core.rl.rollout import Policy, replay, rollout
from pruning_core.runs import ArtefactKey, cached
from pruning_core.studies.ablations_report import common_level_episodes, episodes_to_plateau
from pruning_core.studies.mdp_design import DenseModel, dense_digits_cnn, mdp_design_sizes
from pruning_core.train.loop import TrainConfig, evaluate

__all__ = [
    "NeonRewardWrapper",
    "ABLATIONS",
    "AblationSizes",
    "PURL_VARIANTS",
    "PurlRunKey",
    "PurlVariant",
    "ablation_dense_model",
    "ablation_sizes",
    "action_space",
    "agent_choice",
    "reward_shape",
    "reward_timing",
    "run_purl_variant",
    "state_features",
    "yardstick",
]


YARDSTICK = PuRLConfig()
"""The default MDP whose targets define the yardstick (``S*`` = 0.8, beta = 5, A* = dense)."""


@dataclass(frozen=True)
class AblationSizes:
    """Every size of notebook 05, derived from the profile (see :func:`ablation_sizes`)."""

    profile: str
    """The profile these sizes belong to."""
    seeds: tuple[int, ...]
    """Seeds of every configuration (agent initialisation, exploration, NEON fine-tuning order)."""
    episodes: int
    """DQN training episodes per PuRL run (random search: the same number of episodes)."""
    eval_every: int
    """Training episodes between two greedy evaluations (the learning curve's resolution)."""
    timing_episodes: int
    """Training episodes of the reward-timing ablation (longer: the end-of-episode reward learns
    slowly, and its plateau must fall inside the horizon to be measured)."""
    timing_eval_every: int
    """Episodes between greedy evaluations in the reward-timing ablation."""
    learning_starts: int
    """Env steps of random play before DQN updates start."""
    exploration_fraction: float
    """Fraction of all env steps over which epsilon decays (default configuration)."""
    buffer_size: int
    """Replay capacity of the default configuration (more than a run's transitions: unbounded)."""
    small_buffer: int
    """Replay capacity of the small-replay variant (in transitions)."""
    smooth_window: int
    """Evaluation points in the trailing running mean of :func:`episodes_to_plateau`."""
    final_fraction: float
    """Share of the last evaluation points averaged into the final level."""
    plateau_level: float
    """Share of the way from start to final level that counts as reached (0.95)."""
    neon_datasets: tuple[str, ...]
    """Suite datasets of the NEON ablation (one random MLP each)."""
    neon_episodes: int
    """A2C training episodes per NEON run."""
    neon_warmup: int
    """Random warm-up episodes of the default NEON agent."""
    neon_C: float
    """Allowed accuracy loss C (percentage points) the NEON agents train and are tested with."""
    neon_rows: tuple[int | None, int | None, int | None]
    """Row caps (train, validation, test) of the NEON datasets."""
    neon_space: ArchitectureSpace
    """Random-architecture ranges of the NEON networks."""
    neon_base_train: TrainConfig
    """Training of the NEON base networks."""
    neon_ft: TrainConfig
    """Fine-tuning after each NEON action."""
    neon_stat_rows: int
    """Training rows whose activations feed NEON's observation."""

    @property
    def eval_episodes(self) -> list[int]:
        """Training episodes after which the greedy policy is evaluated (0 = untrained)."""
        points = list(range(0, self.episodes, self.eval_every))
        return [*points, self.episodes]

    def for_ablation(self, ablation: str) -> AblationSizes:
        """These sizes with the reward-timing horizon when ``ablation == "reward_timing"``.

        The exploration fraction is rescaled so that epsilon reaches its floor after the same
        number of *episodes* as in the other ablations: the first ``episodes`` episodes of the
        longer run are the default run.
        """
        if ablation != "reward_timing":
            return self
        return replace(
            self,
            episodes=self.timing_episodes,
            eval_every=self.timing_eval_every,
            exploration_fraction=self.exploration_fraction * self.episodes / self.timing_episodes,
        )

    @property
    def final_points(self) -> int:
        """Greedy evaluations averaged into a run's final metrics (the plateau's final window)."""
        return max(1, math.ceil(self.final_fraction * len(self.eval_episodes)))

    def dqn_config(self, seed: int, **overrides: Any) -> DQNConfig:
        """The default DQN of the ablations (Double DQN, unbounded replay), with overrides."""
        cfg = DQNConfig(
            seed=seed,
            episodes=self.episodes,
            learning_starts=self.learning_starts,
            exploration_fraction=self.exploration_fraction,
            buffer_size=self.buffer_size,
            checkpoint_every=10**9,
        )
        return replace(cfg, **overrides)


def ablation_sizes(profile: str) -> AblationSizes:
    """Sizes of notebook 05 at ``profile`` (smoke: about a minute; cpu: under 15 minutes)."""
    return AblationSizes(
        profile=profile,
        seeds=by_profile(profile, smoke=(0,), cpu=(0, 1, 2), gpu=(0, 1, 2, 3, 4)),
        episodes=by_profile(profile, smoke=10, cpu=100, gpu=400),
        eval_every=by_profile(profile, smoke=5, cpu=5, gpu=20),
        timing_episodes=by_profile(profile, smoke=12, cpu=200, gpu=800),
        timing_eval_every=by_profile(profile, smoke=4, cpu=10, gpu=40),
        learning_starts=by_profile(profile, smoke=20, cpu=100, gpu=200),
        exploration_fraction=0.5,
        buffer_size=by_profile(profile, smoke=1000, cpu=5000, gpu=20_000),
        small_buffer=by_profile(profile, smoke=25, cpu=100, gpu=200),
        smooth_window=3,
        final_fraction=0.25,
        plateau_level=0.95,
        neon_datasets=by_profile(
            profile,
            smoke=("spam7", "chile_vote"),
            cpu=("spam7", "chile_vote", "train_choice"),
            gpu=("spam7", "chile_vote", "train_choice", "credit_data", "hpc_jobs", "storms"),
        ),
        neon_episodes=by_profile(profile, smoke=3, cpu=60, gpu=300),
        neon_warmup=by_profile(profile, smoke=1, cpu=10, gpu=50),
        neon_C=1.0,
        neon_rows=by_profile(
            profile, smoke=(400, 200, 300), cpu=(1500, 400, None), gpu=(None, None, None)
        ),
        neon_space=by_profile(
            profile,
            smoke=ArchitectureSpace(min_layers=2, max_layers=2, widths=(16, 32)),
            cpu=ArchitectureSpace(min_layers=2, max_layers=2, widths=(32, 64)),
            gpu=ArchitectureSpace(min_layers=2, max_layers=4, widths=(64, 128, 256)),
        ),
        neon_base_train=by_profile(
            profile,
            smoke=TrainConfig.mlp(epochs=6, patience=2),
            cpu=TrainConfig.mlp(epochs=20, patience=3),
            gpu=TrainConfig.mlp(epochs=100, patience=10),
        ),
        neon_ft=by_profile(
            profile,
            smoke=replace(default_finetune(), steps_per_check=10, max_steps=10),
            cpu=replace(default_finetune(), steps_per_check=10, max_steps=20),
            gpu=default_finetune(),
        ),
        neon_stat_rows=by_profile(profile, smoke=100, cpu=200, gpu=1000),
    )


def ablation_dense_model(sizes: AblationSizes) -> DenseModel:
    """The small CNN trained on digits: notebook 01's network at the same profile (shared cache)."""
    return dense_digits_cnn(mdp_design_sizes(sizes.profile))


def yardstick(accuracy: float, sparsity: float, dense_accuracy: float) -> float:
    """PuRL's reward of a final network at the default targets (A* = dense, S* = 0.8, beta 5)."""
    return purl_reward(
        accuracy, sparsity, dense_accuracy, YARDSTICK.target_sparsity, YARDSTICK.beta
    )


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
    """One episode of ``policy``; the yardstick and what the final network is."""
    ep = rollout(env, policy)
    info = ep.info
    return {
        "yardstick": yardstick(info["accuracy"], info["sparsity"], env.unwrapped.dense_accuracy),
        "own_return": ep.episode_return,
        "sparsity": float(info["sparsity"]),
        "val_accuracy": float(info["accuracy"]),
        "actions": " ".join(f"{inf['action_value']:g}" for inf in ep.infos),
    }


def _test_accuracy(env: gym.Env, dense: DenseModel) -> float:
    """Test accuracy of the env's network as it is now (no fine-tuning)."""
    return float(evaluate(env.unwrapped.model, dense.splits.tensors("test"))["top1"])


def _dqn_overrides(sizes: AblationSizes, variant: PurlVariant) -> dict[str, Any]:
    return {k: (sizes.small_buffer if v == "small_buffer" else v) for k, v in variant.dqn.items()}


@dataclass(frozen=True)
class PurlRunKey(ArtefactKey):
    """One PuRL ablation run: dense network, MDP, DQN, reward, agent and evaluation points.

    Variants of different ablations with the same configuration share their run.
    """

    KIND = "05_ablations/purl"
    VERSION = 2
    dense: str
    """The dense network's cache file name (it names its whole config)."""
    purl: PuRLConfig
    dqn: DQNConfig
    reward: str
    agent: str
    evals: tuple[int, ...]
    """The episodes after which the greedy policy is evaluated."""

    @property
    def prefix(self) -> str:
        """Agent, reward and seed."""
        return f"{self.agent}-{self.reward}-seed{self.dqn.seed}"


def _run_key(
    sizes: AblationSizes, dense: DenseModel, variant: PurlVariant, seed: int
) -> PurlRunKey:
    return PurlRunKey(
        dense.path.name, PuRLConfig(**variant.purl),
        sizes.dqn_config(seed, **_dqn_overrides(sizes, variant)), variant.reward, variant.agent,
        tuple(sizes.eval_episodes),
    )  # fmt: skip


def resume_path(path: Path) -> Path:
    """The training checkpoint of the run cached at ``path`` (deleted when the run is done)."""
    return path.with_name(path.stem + ".train.pt")


def _train_dqn(
    sizes: AblationSizes, dense: DenseModel, variant: PurlVariant, seed: int, ckpt: Path
) -> dict[str, Any]:
    env = _make_env(dense, variant)
    cfg = sizes.dqn_config(seed, **_dqn_overrides(sizes, variant))
    t0 = time.perf_counter()
    curve, agent = [], None
    for k, stop in enumerate(sizes.eval_episodes):
        agent = train(env, cfg, checkpoint_path=ckpt, resume=k > 0, stop_after=stop)
        res = _play(env, agent.act)
        curve.append({"episode": stop, **res, "test_accuracy": _test_accuracy(env, dense)})
    seconds = time.perf_counter() - t0
    for p in (ckpt, ckpt.with_name(ckpt.name + ".sha256")):
        p.unlink(missing_ok=True)
    log = agent.log[["episode", "return", "final_sparsity", "final_accuracy", "epsilon"]].copy()
    log["yardstick"] = [
        yardstick(a, s, env.unwrapped.dense_accuracy)
        for a, s in zip(log["final_accuracy"], log["final_sparsity"], strict=True)
    ]
    return {"curve": curve, "log": log.to_dict("list"), "seconds": seconds}


def _random_search(
    sizes: AblationSizes, dense: DenseModel, variant: PurlVariant, seed: int
) -> dict[str, Any]:
    """Best of ``sizes.episodes`` uniformly random episodes, chosen by the yardstick."""
    env = _make_env(dense, variant)
    rng = np.random.default_rng(seed)
    n = int(env.action_space.n)
    length = env.unwrapped.episode_length
    t0 = time.perf_counter()
    best: dict[str, Any] | None = None
    curve, rows = [], []
    evals = set(sizes.eval_episodes)
    for e in range(1, sizes.episodes + 1):
        actions = rng.integers(n, size=length)
        res = _play(env, replay(actions.tolist()))
        rows.append({"episode": e, "yardstick": res["yardstick"], "sparsity": res["sparsity"]})
        if best is None or res["yardstick"] > best["yardstick"]:
            best = {**res, "test_accuracy": _test_accuracy(env, dense)}
        if e in evals:
            curve.append({"episode": e, **best})
    seconds = time.perf_counter() - t0
    return {"curve": curve, "log": pd.DataFrame(rows).to_dict("list"), "seconds": seconds}


def run_purl_variant(
    sizes: AblationSizes, dense: DenseModel, variant: PurlVariant, seed: int
) -> dict[str, Any]:
    """Train (or load from the cache) one PuRL configuration at one seed.

    Returns ``curve`` (greedy evaluations: episode, yardstick, own_return, sparsity,
    val_accuracy, test_accuracy, actions; random search: its best so far), ``log`` (per
    training episode) and ``seconds`` (wall time of the run when it was computed).
    """
    path = _run_key(sizes, dense, variant, seed).path()

    def build() -> dict[str, Any]:
        with quiet(), torch_threads(1):
            if variant.agent == "random_search":
                return _random_search(sizes, dense, variant, seed)
            return _train_dqn(sizes, dense, variant, seed, resume_path(path))

    return cached(path, build)


def _purl_rows(
    sizes: AblationSizes, dense: DenseModel, ablation: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All runs of one PuRL ablation: a per-run table and the greedy learning curves.

    Per run: the final metrics (means over the last greedy evaluations), ``late_collapses`` (the
    share of those evaluations whose validation accuracy is below half the dense network's: the
    greedy policy pruned a layer away), the last evaluation, the plateau, the mean yardstick over
    the whole curve (an area under the learning curve) and the wall time.
    """
    variants = PURL_VARIANTS[ablation]
    sizes = sizes.for_ablation(ablation)
    jobs = [(v, s) for v in variants for s in sizes.seeds]
    dense_val = float(evaluate(dense.model, dense.splits.tensors("reward"))["top1"])
    rows, curves = [], []
    for v, seed in progress(jobs, desc=ablation, unit="run"):
        res = run_purl_variant(sizes, dense, v, seed)
        c = pd.DataFrame(res["curve"])
        late = c.tail(sizes.final_points)
        f = late.mean(numeric_only=True)
        plateau = episodes_to_plateau(
            c["episode"], c["yardstick"], sizes.smooth_window, sizes.final_fraction,
            sizes.plateau_level,
        )  # fmt: skip
        rows.append(
            {
                "ablation": ablation,
                "variant": v.name,
                "label": v.label,
                "seed": seed,
                "yardstick": f["yardstick"],
                "own_return": f["own_return"],
                "sparsity": f["sparsity"],
                "val_accuracy": f["val_accuracy"],
                "test_accuracy": f["test_accuracy"],
                "late_collapses": float((late["val_accuracy"] < 0.5 * dense_val).mean()),
                "last_yardstick": float(c["yardstick"].iloc[-1]),
                "episodes_to_plateau": plateau,
                "mean_greedy_yardstick": float(c["yardstick"].mean()),
                "seconds": res["seconds"],
                "last_actions": c["actions"].iloc[-1],
            }
        )
        curves.append(c.drop(columns=["actions"]).assign(variant=v.name, seed=seed))
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def reward_timing(sizes: AblationSizes, dense: DenseModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ablation 1: per-step (PuRL) vs end-of-episode (AMC-style) reward; runs and curves.

    The runs table also has ``episodes_to_common_level`` (:func:`common_level_episodes`).
    """
    runs, curves = _purl_rows(sizes, dense, "reward_timing")
    common = common_level_episodes(
        curves, sizes.smooth_window, sizes.final_fraction, sizes.plateau_level
    )
    runs = runs.merge(common, on=["seed", "variant"], how="left")
    return runs, curves


def reward_shape(sizes: AblationSizes, dense: DenseModel) -> pd.DataFrame:
    """Ablation 2: beta, A*, S* and NEON's reward (C = 1) in place of PuRL's."""
    return _purl_rows(sizes, dense, "reward_shape")[0]


def state_features(sizes: AblationSizes, dense: DenseModel) -> pd.DataFrame:
    """Ablation 3: all features vs QLP's (layer index, density) vs no accuracy feature."""
    return _purl_rows(sizes, dense, "state")[0]


def action_space(sizes: AblationSizes, dense: DenseModel) -> pd.DataFrame:
    """Ablation 4: alpha grid of 23 / 12 / 6 values vs a sparsity-ratio grid vs 3 passes."""
    return _purl_rows(sizes, dense, "action_space")[0]


def agent_choice(sizes: AblationSizes, dense: DenseModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ablation 5: Double DQN vs DQN, small replay, fast epsilon decay, random search."""
    return _purl_rows(sizes, dense, "agent")

