"""Notebook 01 (PuRL's MDP design): its sizes per profile and the dense digits CNN it prunes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from pruning_core.config import by_profile, seeded
from pruning_core.data.images import load_digits_splits
from pruning_core.data.splits import Splits
from pruning_core.models.cnn import build_small_cnn
from pruning_core.rl.agents.dqn import DQNConfig
from pruning_core.rl.envs.purl import PuRLConfig
from pruning_core.runs import ArtefactKey, cached
from pruning_core.train.loop import TrainConfig, fit

__all__ = [
    "DenseModel",
    "DigitsCnnKey",
    "DqnRunsKey",
    "MdpDesignSizes",
    "dense_digits_cnn",
    "mdp_design_sizes",
]


@dataclass(frozen=True)
class MdpDesignSizes:
    """Sizes of notebook 01 (MDP design), derived from the profile."""

    profile: str
    """The profile these sizes belong to."""
    seeds: tuple[int, ...]
    """Seeds of the DQN and random-policy runs (the same seeds for both)."""
    episodes: int
    """Episodes of DQN training, and of the random policy, per seed."""
    dense_epochs: int
    """Epochs of dense training of the small CNN on digits."""
    cnn_width: int
    """Width of the small CNN (channels of its first conv)."""
    target_sparsity: float
    """``S*`` of the reward (``A*`` is the dense validation accuracy)."""
    learning_starts: int
    """Env steps of random play before DQN updates start."""
    exploration_fraction: float
    """Fraction of all env steps over which epsilon decays."""
    feature_images: int
    """Validation images used to find ResNet-50's forward order (descriptors only)."""

    def dqn_config(self, seed: int) -> DQNConfig:
        """The DQN hyperparameters of the notebook's runs."""
        return DQNConfig(
            seed=seed,
            episodes=self.episodes,
            learning_starts=self.learning_starts,
            exploration_fraction=self.exploration_fraction,
            checkpoint_every=50,
        )

    def dense_train_config(self) -> TrainConfig:
        """Dense training of the small CNN."""
        return TrainConfig(epochs=self.dense_epochs, lr=0.05, batch_size=64, seed=0)


def mdp_design_sizes(profile: str) -> MdpDesignSizes:
    """Sizes for notebook 01 at ``profile`` (smoke: seconds; cpu: minutes; gpu: more seeds)."""
    return MdpDesignSizes(
        profile=profile,
        seeds=by_profile(profile, smoke=(0, 1), cpu=(0, 1, 2), gpu=(0, 1, 2, 3, 4)),
        episodes=by_profile(profile, smoke=60, cpu=600, gpu=1000),
        dense_epochs=by_profile(profile, smoke=8, cpu=30, gpu=30),
        cnn_width=16,
        target_sparsity=0.8,
        learning_starts=by_profile(profile, smoke=50, cpu=200, gpu=200),
        exploration_fraction=0.5,
        feature_images=2,
    )


@dataclass
class DenseModel:
    """A trained dense network with its data splits and training history."""

    model: nn.Module
    splits: Splits
    history: pd.DataFrame
    path: Path


@dataclass(frozen=True)
class DigitsCnnKey(ArtefactKey):
    """The small CNN trained densely on digits: architecture, data and training config."""

    KIND = "dense/small_cnn"
    VERSION = 1
    width: int
    data: str
    """The splits' name."""
    split_seed: int
    train: TrainConfig

    @property
    def prefix(self) -> str:
        """Architecture and data."""
        return f"small_cnn_{self.data}"


@dataclass(frozen=True)
class DqnRunsKey(ArtefactKey):
    """Notebook 01's DQN runs: their folder holds one resumable checkpoint per seed."""

    KIND = "01_mdp_design"
    VERSION = 1
    SUFFIX = ""
    sizes: MdpDesignSizes
    env: PuRLConfig
    dense: str
    """The dense network's cache file name (it names its whole config)."""

    @property
    def prefix(self) -> str:
        """The profile."""
        return f"dqn-{self.sizes.profile}"


def dense_digits_cnn(sizes: MdpDesignSizes) -> DenseModel:
    """The small CNN trained densely on 8x8 digits, cached under ``cache_root()``.

    The cache key is a hash of the architecture, data and training config, so any change
    retrains instead of reusing a stale network.
    """

    splits = load_digits_splits(seed=0, image_size=8, channels=3)
    tcfg = sizes.dense_train_config()
    path = DigitsCnnKey(sizes.cnn_width, splits.name, 0, tcfg).path()

    def build() -> dict[str, Any]:
        with seeded(tcfg.seed):  # one torch thread, as every cached build (see cached)
            model = build_small_cnn(
                num_classes=splits.num_classes, in_channels=3, width=sizes.cnn_width
            )
            res = fit(
                model,
                splits.tensors("train"),
                tcfg,
                val_data=splits.tensors("reward"),
                device="cpu",
                desc="dense small CNN",
            )
        return {"state_dict": model.state_dict(), "history": res.history.to_dict("list")}

    blob = cached(path, build)
    model = build_small_cnn(num_classes=splits.num_classes, in_channels=3, width=sizes.cnn_width)
    model.load_state_dict(blob["state_dict"])
    return DenseModel(model.eval(), splits, pd.DataFrame(blob["history"]), path)

