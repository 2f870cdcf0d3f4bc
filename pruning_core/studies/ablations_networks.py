"""The two networks notebook 05's PuRL ablations prune, with a held-out split for re-scoring.

* ``small_cnn``: notebook 01's small CNN on 8x8 digits (5 prunable layers, shared cache). The
  digits splits have no ``stop`` split, and the ``reward`` split both chose the dense epoch and
  pays PuRL's reward, so the official ``test`` split (25% of digits) is cut in two stratified
  halves: ``stop`` (the held-out split deployed policies are re-scored on) and ``test``.
* ``resnet20``: a CIFAR-style ResNet-20 (22 prunable layers,
  :func:`pruning_core.models.cnn.build_resnet20`) trained densely on a subset of Fashion-MNIST
  downsampled to 14x14, early-stopped on ``stop``. ``reward`` is a small subset (an episode of
  22 steps must stay cheap); ``stop`` re-scores; ``test`` is the official 10,000. At smoke it is
  trained on scikit-learn's digits instead (``AblationSizes.resnet20_data``), so the tests need
  no data beyond the installed packages.

:func:`network_level` is the level the speed metrics are measured against, fixed before any RL
run: the best *uniform* policy's yardstick on the reward split (the same alpha at every layer,
best of PuRL's 23-alpha grid), unless the sizes give a number.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor

from pruning_core.config import WORKER_THREADS, seeded, torch_threads
from pruning_core.data.fashion_mnist import load_fashion_mnist
from pruning_core.data.images import holdout_indices, load_digits_splits
from pruning_core.data.splits import Splits
from pruning_core.models.cnn import build_resnet20
from pruning_core.pruning.layers import prunable_layers
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rewards import purl_reward
from pruning_core.rl.rollout import replay, rollout
from pruning_core.runs import ArtefactKey, cached
from pruning_core.studies.ablations_sizes import NETWORKS, AblationSizes
from pruning_core.studies.mdp_design import DenseModel, dense_digits_cnn, mdp_design_sizes
from pruning_core.train.loop import TrainConfig, evaluate, fit

__all__ = [
    "describe_network",
    "NETWORKS",
    "ResNet20Key",
    "ablation_network",
    "dense_resnet20",
    "network_level",
    "resnet20_splits",
    "uniform_policies",
    "yardstick",
]




YARDSTICK = PuRLConfig()
"""The default MDP whose targets define the yardstick (``S*`` = 0.8, beta = 5, A* = dense)."""


def yardstick(accuracy: float, sparsity: float, dense_accuracy: float) -> float:
    """PuRL's reward of a final network at the default targets (A* = dense, S* = 0.8, beta 5).

    ``dense_accuracy`` is the dense network's accuracy on the split ``accuracy`` is measured on.
    """
    return purl_reward(
        accuracy, sparsity, dense_accuracy, YARDSTICK.target_sparsity, YARDSTICK.beta
    )


def _digits_with_heldout(dense: DenseModel) -> DenseModel:
    """The small CNN with the digits ``test`` split cut into stratified halves ``stop`` / ``test``."""
    from sklearn.model_selection import train_test_split

    x, y = dense.splits.tensors("test")
    stop_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=0.5, random_state=0, stratify=y.numpy()
    )
    splits = replace(
        dense.splits,
        stop=(x[np.sort(stop_idx)], y[np.sort(stop_idx)]),
        test=(x[np.sort(test_idx)], y[np.sort(test_idx)]),
    )
    return replace(dense, splits=splits)


@dataclass(frozen=True)
class ResNet20Key(ArtefactKey):
    """The ResNet-20 trained densely on Fashion-MNIST for notebook 05."""

    KIND = "dense/resnet20"
    VERSION = 1
    width: int
    data: str
    """The data's description (image size and split sizes)."""
    train: TrainConfig

    @property
    def prefix(self) -> str:
        """Architecture and width."""
        return f"resnet20_w{self.width}"


def _digits_resnet20_splits(sizes: AblationSizes) -> Splits:
    """Digits at ``resnet20_image_size``: up to ``resnet20_train_rows`` train rows, a stratified
    ``resnet20_reward_rows`` subset of the reward split, the test split cut into ``stop`` (at
    most ``resnet20_stop_rows``) and ``test`` halves (every cut seeded and stratified)."""
    d = load_digits_splits(seed=0, image_size=sizes.resnet20_image_size, channels=1)

    def subset(xy: tuple[Tensor, Tensor], n: int, seed: int) -> tuple[Tensor, Tensor]:
        x, y = xy
        if n >= len(y):
            return x, y
        _, pick = holdout_indices(y.numpy(), val_size=n, seed=seed)
        return x[pick], y[pick]

    x, y = d.tensors("test")
    test_idx, stop_idx = holdout_indices(y.numpy(), val_size=min(len(y) // 2, sizes.resnet20_stop_rows))
    return replace(
        d,
        name=f"digits{sizes.resnet20_image_size}x{sizes.resnet20_image_size}",
        train=subset(d.tensors("train"), sizes.resnet20_train_rows, 2),
        reward=subset(d.tensors("reward"), sizes.resnet20_reward_rows, 1),
        stop=(x[stop_idx], y[stop_idx]),
        test=(x[test_idx], y[test_idx]),
        meta={k: v for k, v in d.meta.items() if k != "rows"},  # the row ids moved with the cuts
    )


def resnet20_splits(sizes: AblationSizes) -> Splits:
    """The ResNet-20's data (``sizes.resnet20_data``): train / reward / stop / test."""
    if sizes.resnet20_data == "digits":
        return _digits_resnet20_splits(sizes)
    if sizes.resnet20_data == "fashion_mnist":
        return load_fashion_mnist(
            seed=0, reward_size=sizes.resnet20_reward_rows, stop_size=sizes.resnet20_stop_rows,
            train_limit=sizes.resnet20_train_rows, image_size=sizes.resnet20_image_size,
            channels=1,
        )  # fmt: skip
    raise ValueError(f"unknown resnet20_data {sizes.resnet20_data!r}: use digits or fashion_mnist")


def dense_resnet20(sizes: AblationSizes) -> DenseModel:
    """ResNet-20 (``sizes.resnet20_width``) trained on ``resnet20_data`` at ``resnet20_image_size``.

    Splits (seed 0, :func:`resnet20_splits`): ``train`` = ``resnet20_train_rows`` stratified
    rows, ``reward`` = ``resnet20_reward_rows``, ``stop`` = ``resnet20_stop_rows`` (early
    stopping of the dense training, then re-scoring), ``test`` = the official 10,000 of
    Fashion-MNIST (digits: the rest of its test split). Cached by architecture, data and
    training config; the history has a ``test_top1`` column (one row).
    """
    splits = resnet20_splits(sizes)
    desc = (f"{splits.name}: {splits.n('train')} train, {splits.n('reward')} reward, "
            f"{splits.n('stop')} stop, {splits.n('test')} test")  # fmt: skip
    tcfg = sizes.resnet20_train
    path = ResNet20Key(sizes.resnet20_width, desc, tcfg).path()

    def build() -> dict[str, Any]:
        with seeded(tcfg.seed):  # one torch thread, as every cached build (see cached)
            model = build_resnet20(10, 1, sizes.resnet20_width)
            res = fit(model, splits.tensors("train"), tcfg, val_data=splits.tensors("stop"),
                      device="cpu", desc="dense ResNet-20")  # fmt: skip
            hist = res.history.copy()
            hist["test_top1"] = float(evaluate(model, splits.tensors("test"))["top1"])
        return {"state_dict": model.state_dict(), "history": hist.to_dict("list")}

    blob = cached(path, build)
    model = build_resnet20(10, 1, sizes.resnet20_width)
    model.load_state_dict(blob["state_dict"])
    return DenseModel(model.eval(), splits, pd.DataFrame(blob["history"]), path)


def ablation_network(sizes: AblationSizes, network: str) -> DenseModel:
    """The dense network ``network`` (in :data:`NETWORKS`) with train / reward / stop / test."""
    if network == "small_cnn":
        return _digits_with_heldout(dense_digits_cnn(mdp_design_sizes(sizes.profile)))
    if network == "resnet20":
        return dense_resnet20(sizes)
    raise ValueError(f"unknown network {network!r}: use one of {NETWORKS}")


def uniform_policies(dense: DenseModel, config: PuRLConfig | None = None) -> pd.DataFrame:
    """Every uniform policy (one alpha at every layer) on the reward split: alpha, yardstick,
    sparsity, accuracy (deterministic: no RL, no seed)."""
    cfg = config if config is not None else PuRLConfig()
    env = PuRLEnv(copy.deepcopy(dense.model), dense.splits.tensors("reward"), cfg)
    rows = []
    for a, alpha in enumerate(cfg.action_values):
        ep = rollout(env, replay([a] * env.episode_length))
        acc, sp = float(ep.info["accuracy"]), float(ep.info["sparsity"])
        rows.append({"alpha": alpha, "yardstick": yardstick(acc, sp, env.dense_accuracy),
                     "sparsity": sp, "accuracy": acc})  # fmt: skip
    return pd.DataFrame(rows)


def network_level(sizes: AblationSizes, network: str, dense: DenseModel | None = None) -> float:
    """The yardstick level of the speed metrics, fixed before any RL run.

    ``sizes.net(network).level`` when it is a number; else the best uniform policy's yardstick
    on the reward split (:func:`uniform_policies`): "as good as the best one-knob setting".
    """
    level = sizes.net(network).level
    if level is not None:
        return float(level)
    dense = dense if dense is not None else ablation_network(sizes, network)
    key = str(dense.path)  # the cache file names the network's whole config
    if key not in _LEVELS:
        with torch_threads(WORKER_THREADS):  # the same bits in the kernel as in a worker
            _LEVELS[key] = float(uniform_policies(dense)["yardstick"].max())
    return _LEVELS[key]


_LEVELS: dict[str, float] = {}
"""Levels computed in this process, by dense network file: every ablation on a network reads its
level, and the rule (23 uniform episodes) gives the same number each time."""


def describe_network(dense: DenseModel) -> dict[str, Any]:
    """What a dense network of the ablations is: prunable layers, parameters, split sizes and
    its accuracy on the reward, stop and test splits."""
    model = dense.model
    out: dict[str, Any] = {
        "prunable_layers": len(prunable_layers(model)),
        "params": int(sum(p.numel() for p in model.parameters())),
    }
    for split in ("reward", "stop", "test"):
        out[f"n_{split}"] = dense.splits.n(split)
        out[f"dense_{split}_top1"] = float(evaluate(model, dense.splits.tensors(split))["top1"])
    return out
