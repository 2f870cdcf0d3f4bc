"""Notebook 05's sizes: the RL budget per network (:class:`NetworkSizes`) and every size of the
PuRL ablations per profile (:class:`AblationSizes`, :func:`ablation_sizes`), in a module of their
own so that the networks (:mod:`.ablations_networks`) and the runs (:mod:`.ablations`) both read
them without importing each other. NEON's ablation has its own sizes
(:func:`~pruning_core.studies.ablations_neon.neon_ablation_sizes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pruning_core.config import by_profile
from pruning_core.rl.agents.dqn import DQNConfig
from pruning_core.train.loop import TrainConfig

__all__ = [
    "CPU_NEON_EPISODE_SECONDS",
    "EPISODIC_DQN",
    "EPISODIC_N_STEP",
    "GPU_CORES",
    "NETWORKS",
    "RESNET20_CPU_HORIZON",
    "RESNET20_CPU_EPISODES",
    "RESNET20_LEVEL",
    "AblationSizes",
    "NetworkSizes",
    "ablation_sizes",
]


NETWORKS: tuple[str, ...] = ("small_cnn", "resnet20")
"""The networks of notebook 05's PuRL ablations."""


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
    episodic_horizon: int | None = None
    """Training episodes of the reward-timing ablation's end-of-episode arm (None: ``episodes``);
    the run stops early once it reaches the level. At least 3x the step arm's mean
    episodes-to-level (:func:`~.ablations_km.horizon_rule`)."""
    episodic_n_step: int = 1
    """n of the end-of-episode arm's n-step returns (:mod:`~pruning_core.rl.agents.dqn_nstep`;
    the episode length: Monte-Carlo returns)."""
    episodic_dqn: dict[str, Any] = field(default_factory=dict)
    """Overrides of the end-of-episode arm's :class:`DQNConfig` (piloted, see
    :func:`ablation_sizes`)."""

    @property
    def eval_episodes(self) -> list[int]:
        """Training episodes after which the greedy policy is evaluated (0 = untrained)."""
        return [*range(0, self.episodes, self.eval_every), self.episodes]

    @property
    def horizon(self) -> int:
        """Episodes of the end-of-episode arm (``episodic_horizon`` or ``episodes``)."""
        return self.episodic_horizon or self.episodes

    @property
    def episodic_eval_episodes(self) -> list[int]:
        """Evaluation episodes of the end-of-episode arm (up to :attr:`horizon`)."""
        return [*range(0, self.horizon, self.eval_every), self.horizon]


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
    resnet20_data: str
    """What the ResNet-20 is trained on: ``fashion_mnist`` (cpu, gpu) or ``digits`` (smoke:
    scikit-learn's 8x8 digits, which install with the package, so the tests need no data)."""
    resnet20_image_size: int
    """The images are resized to this side."""
    resnet20_train_rows: int
    """Training images of the dense ResNet-20."""
    resnet20_reward_rows: int
    """Images of the reward split (every env step evaluates them: the cost of an episode)."""
    resnet20_stop_rows: int
    """Images of the stop split (dense early stopping, re-scoring)."""
    resnet20_train: TrainConfig
    """Dense training of the ResNet-20."""
    note: str = ""
    """(gpu) How the profile departs from cpu and where its time is estimated
    (:func:`~pruning_core.studies.ablations_budget.purl_time_estimate`)."""

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
      fit 4 hours on 2 cores and notebooks 02-04 take most of it, so the other ablations get
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

    **The end-of-episode arm's own pilot** (issue 26 item 7; :func:`~.ablations_timing.
    pilot_episodic` reruns it; seeds 100 and 101, never study seeds; cpu sizes; cost measured
    with two one-thread workers while other jobs loaded the 2-core machine):

    * The default one-step DQN (the per-step arm's settings) never reached the level in 300
      episodes on any of the 10 study seeds of the committed cpu run (its greedy policy sits at
      -4.41: sparsity above 0.8 at chance accuracy).
    * ResNet-20, 300 episodes, undiscounted: n = 5 returns stayed at -4.41 on both seeds
      (47 s a run); Monte-Carlo returns (n = 22) rose to -3.2 / -4.4 (66 s a run); neither
      reached the level (-2.89).
    * ResNet-20, 600 episodes, Monte-Carlo returns: epsilon to 0.05 over 300 episodes: not
      reached (best greedy -3.6; 127 s a run); epsilon to 0.1 over 420 episodes: **reached at
      episode 590 and 580** (200-203 s a run, 0.34 s an episode): the chosen settings
      (:data:`EPISODIC_DQN`, :data:`EPISODIC_N_STEP`), with a 900-episode horizon
      (:data:`RESNET20_CPU_HORIZON`: 5.1x the per-step arm's mean 177, the rule asks 3x) so a
      slower seed can still get there; a run stops at the level. The same schedule with
      one-step returns (undiscounted) did not reach it (best greedy -3.5 / -3.9, ending at
      -4.41; 113-116 s a run): the Monte-Carlo returns, not the longer exploration alone, make
      the difference.
    * Small CNN, 450 episodes: Monte-Carlo returns (n = 5, undiscounted) reached the level at
      140 and 150 (8 s a run), the one-step default at 240 and 160: the chosen settings.

    **cpu wall time of notebook 05** (measured costs, two one-thread workers): the committed
    run took about 28 min; the end-of-episode arm on the ResNet-20 now costs up to 900 x
    0.34 s = 310 s a run (today 60 s), about 200 s where it stops near episode 590 as in the
    pilot: 10 runs add 1400-2500 core-s, 12-21 min on 2 cores: **about 40-50 min cold**, within
    the 60-minute share of the 4-hour cpu profile. The small CNN's end-of-episode arm gets
    cheaper (it stops at the level).

    **gpu profile** (one GPU machine with 16 cores; notebook 05 runs its RL on the CPU, 16
    one-thread processes): the piloted networks and budgets of the cpu profile with twice the
    seeds (20 timing, 10 ablation), so each run costs what it cost at cpu and only the number of
    runs grows. Its time, from the committed cpu run's measured cost of each run
    (:data:`~pruning_core.studies.ablations_budget.CPU_RUN_SECONDS`,
    :func:`~pruning_core.studies.ablations_budget.purl_time_estimate`), is in the gpu profile's ``note``;
    NEON's ablation has its own (:func:`~pruning_core.studies.ablations_neon.neon_ablation_sizes`),
    and the whole gpu profile must fit 6 hours (:mod:`pruning_core.studies.gpu_budget`).
    Not done, as no pilot covers it: the ResNet-20 on 28x28 images (forward 4.4x as costly,
    measured: 0.028 vs 0.0064 s per 128 images on one thread) would take about 40 min for 20
    seeds plus about 11 min of dense training on 20,000 images (from the pilot's per-episode
    costs), and needs its own pilot (level, budget, horizon) first.
    """
    small = NetworkSizes(
        "small_cnn",
        episodes=by_profile(profile, smoke=10, cpu=400, gpu=400),
        eval_every=by_profile(profile, smoke=5, cpu=10, gpu=10),
        learning_starts=by_profile(profile, smoke=20, cpu=100, gpu=100),
        buffer_size=by_profile(profile, smoke=1000, cpu=5000, gpu=5000),
        small_buffer=by_profile(profile, smoke=25, cpu=100, gpu=100),
        episodic_horizon=by_profile(profile, smoke=15, cpu=450, gpu=450),
        episodic_n_step=EPISODIC_N_STEP["small_cnn"],
        episodic_dqn=dict(EPISODIC_DQN["small_cnn"]),
    )
    resnet = NetworkSizes(
        "resnet20",
        episodes=by_profile(profile, smoke=4, cpu=RESNET20_CPU_EPISODES, gpu=RESNET20_CPU_EPISODES),
        eval_every=by_profile(profile, smoke=2, cpu=10, gpu=10),
        learning_starts=by_profile(profile, smoke=22, cpu=220, gpu=220),
        buffer_size=by_profile(profile, smoke=1000, cpu=20_000, gpu=20_000),
        small_buffer=by_profile(profile, smoke=50, cpu=400, gpu=400),
        level=RESNET20_LEVEL,
        episodic_horizon=by_profile(profile, smoke=6, cpu=RESNET20_CPU_HORIZON,
                                    gpu=RESNET20_CPU_HORIZON),
        episodic_n_step=EPISODIC_N_STEP["resnet20"],
        episodic_dqn=dict(EPISODIC_DQN["resnet20"]),
    )
    sizes = AblationSizes(
        profile=profile,
        timing_seeds=by_profile(profile, smoke=(0,), cpu=tuple(range(10)), gpu=tuple(range(20))),
        ablation_seeds=by_profile(profile, smoke=(0,), cpu=tuple(range(5)), gpu=tuple(range(10))),
        small_cnn=small,
        resnet20=resnet,
        exploration_fraction=0.5,
        smooth_window=3,
        final_fraction=0.25,
        resnet20_width=by_profile(profile, smoke=4, cpu=8, gpu=8),
        resnet20_data=by_profile(profile, smoke="digits", cpu="fashion_mnist", gpu="fashion_mnist"),
        resnet20_image_size=by_profile(profile, smoke=14, cpu=14, gpu=14),
        resnet20_train_rows=by_profile(profile, smoke=1000, cpu=8000, gpu=8000),
        resnet20_reward_rows=by_profile(profile, smoke=64, cpu=128, gpu=128),
        resnet20_stop_rows=by_profile(profile, smoke=200, cpu=2000, gpu=2000),
        resnet20_train=by_profile(
            profile,
            smoke=TrainConfig(epochs=2, lr=0.05, batch_size=128, seed=0),
            cpu=TrainConfig(epochs=20, lr=0.05, batch_size=128, seed=0, patience=4,
                            monitor="val_top1", restore_best=True),
            gpu=TrainConfig(epochs=20, lr=0.05, batch_size=128, seed=0, patience=4,
                            monitor="val_top1", restore_best=True),
        ),  # fmt: skip
    )
    if profile == "gpu":
        cpu = ablation_sizes("cpu")
        note = (f"gpu: the cpu networks and RL budgets at {len(sizes.timing_seeds)} timing / "
                f"{len(sizes.ablation_seeds)} ablation seeds (cpu: {len(cpu.timing_seeds)} / "
                f"{len(cpu.ablation_seeds)}); its time on {GPU_CORES} cores: "
                "pruning_core.studies.ablations_budget.purl_time_estimate, summed by "
                "python -m pruning_core.studies.gpu_budget")  # fmt: skip
        sizes = replace(sizes, note=note)
    return sizes


RESNET20_CPU_EPISODES = 300
"""DQN episodes per run on the ResNet-20 at cpu (pilot at seed 100: see :func:`ablation_sizes`)."""


RESNET20_CPU_HORIZON = 900
"""Episodes of the end-of-episode arm on the ResNet-20 (cpu, gpu): 5.1x the per-step arm's mean
episodes-to-level of the committed cpu run (177), so the horizon rule (at least 3x) holds with
room; a run stops as soon as it reaches the level (the pilot's did at 580-590)."""


EPISODIC_N_STEP: dict[str, int] = {"small_cnn": 5, "resnet20": 22}
"""n of the end-of-episode arm's n-step returns: the episode length (Monte-Carlo returns), so
the terminal reward reaches every layer in one update (pilot: see :func:`ablation_sizes`)."""


EPISODIC_DQN: dict[str, dict[str, Any]] = {
    # undiscounted: the episode has a fixed length and its only reward is the last; a gamma
    # below 1 would only shrink the early layers' credit
    "small_cnn": {"gamma": 1.0},
    # the pilot's schedule: epsilon from 1 to 0.1 over the first 420 episodes (70% of its 600),
    # expressed as a share of the 900-episode horizon so the first 600 are the pilot's exactly
    "resnet20": {"gamma": 1.0, "end_epsilon": 0.1, "exploration_fraction": 420 / 900},
}
"""The end-of-episode arm's DQN overrides per network (piloted on seeds 100 and 101)."""


RESNET20_LEVEL: float | None = None
"""The ResNet-20's level (None: the best uniform policy's yardstick; see :func:`network_level`)."""


GPU_CORES = 16
"""CPU cores of the gpu profile's machine (one H100-class GPU with 16 cores): notebook 05 runs its
RL on them, one one-thread process per core."""


CPU_NEON_EPISODE_SECONDS: dict[str, float] = {"default": 0.268, "passes_1": 0.034,
                                              "no_warmup": 0.261, "finetune_all": 0.570,
                                              "mask": 2.13}  # fmt: skip
"""Measured mean seconds per training episode of each NEON ablation variant at cpu sizes
(``results/cpu/05_ablations/neon_runs.csv``, ``seconds_per_episode``; ``mask``, which the cpu
profile does not run: 273 s for 128 episodes in the pilot of
:func:`~pruning_core.studies.ablations_neon.neon_ablation_sizes`, on NeonEnv)."""
