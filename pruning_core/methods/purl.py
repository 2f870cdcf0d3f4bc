"""PuRL as one call: train a DQN on the pruning MDP of a model and return its greedy policy's masks.

:func:`purl_prune` is to PuRL what :func:`pruning_core.methods.neon.prune_mlp` is to NEON: give
it a trained model and a reward subset (``(x, y)`` tensors held out of the training data, never
the test split), get back per-layer masks and a report. The search checkpoints into a folder
derived from its configuration, so an interrupted call resumes where it stopped.

Masks alone do not make a usable network: the search measures its reward with batch-norm
batch statistics, so a model that gets the masks keeps stale running statistics until they are
recalibrated. :func:`apply_masks` (or :meth:`SearchResult.apply`) does what the studies do after
a search: the masks applied to a copy, batch norm recalibrated on training batches
(:func:`~pruning_core.train.batchnorm.recalibrate_bn`), optionally a fine-tuning with the masks
held (:func:`~pruning_core.train.loop.fit` with a masker)::

    masks, search = purl_prune(model, (x_reward, y_reward), target_sparsity=0.8)
    pruned = search.apply(model, (x_train, y_train), finetune=1)  # 1 epoch, masks held
    evaluate(pruned, (x_test, y_test))["top1"]
"""

from __future__ import annotations

import copy
import fnmatch
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from pruning_core.pruning.criteria import Masks
from pruning_core.pruning.layers import prunable_layers
from pruning_core.pruning.masks import Masker
from pruning_core.rl.agents.dqn import DQNConfig, greedy_policy, train
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.runs import ArtefactKey, weights_fingerprint
from pruning_core.train.batchnorm import recalibrate_bn, use_batch_statistics
from pruning_core.train.loop import Data, TrainConfig, evaluate, fit

__all__ = [
    "FINETUNE",
    "SearchKey",
    "SearchResult",
    "apply_masks",
    "purl_prune",
    "stem_and_classifier",
]


FINETUNE = TrainConfig(epochs=1, lr=5e-4, optimizer="adam", weight_decay=0.0, batch_size=64)
"""The fine-tuning of ``apply_masks(..., finetune=n)``: ``n`` epochs of Adam at 5e-4 (the
studies' smoke / cpu fine-tuning); pass a :class:`TrainConfig` for another."""


@dataclass(frozen=True)
class SearchKey(ArtefactKey):
    """One PuRL search: its folder holds the DQN's checkpoint (``dqn.pt``) and log (``log.csv``)."""

    KIND = "purl_search"
    VERSION = 1
    SUFFIX = ""
    model: str
    """The model's class name."""
    env: PuRLConfig
    dqn: DQNConfig
    n: int
    """Size of the reward subset."""
    dense: float
    """Fingerprint of the model's weights."""

    @property
    def prefix(self) -> str:
        """Model class and seed."""
        return f"{self.model}-seed{self.dqn.seed}"


@dataclass
class SearchResult:
    """The outcome of one PuRL search: the greedy policy's masks and the training log."""

    seed: int
    masks: Masks
    policy: pd.DataFrame
    log: pd.DataFrame
    seconds: float
    episodes: int
    reward_accuracy: float
    sparsity: float

    def apply(
        self,
        model: nn.Module,
        train_data: Data | None,
        finetune: int | TrainConfig | None = None,
        val_data: Data | None = None,
        device: torch.device | str | None = None,
    ) -> nn.Module:
        """``apply_masks(model, self.masks, ...)``: a usable pruned copy of ``model``."""
        return apply_masks(model, self.masks, train_data, finetune, val_data, device)


def stem_and_classifier(
    model: nn.Module, example_input: torch.Tensor, include: Sequence[str] | None = None
) -> tuple[str, ...]:
    """The names of the first and the last prunable layer in forward order: a CNN's stem
    convolution and its classifier (``conv1`` and ``fc`` of a ResNet), the layers every study
    keeps dense (:data:`pruning_core.studies.purl.DENSE_LAYERS`). They hold few weights, and
    pruning them costs the most accuracy per weight removed."""
    layers = prunable_layers(model, include=include, example_input=example_input)
    return tuple(dict.fromkeys((layers[0].name, layers[-1].name)))


def _check_exclude(model: nn.Module, exclude: Sequence[str]) -> tuple[str, ...]:
    if isinstance(exclude, str):
        raise TypeError(f"exclude is a sequence of layer names or patterns: write ({exclude!r},)")
    names = [layer.name for layer in prunable_layers(model)]
    unknown = [p for p in exclude if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    if unknown:
        raise ValueError(
            f"exclude names no prunable layer: {unknown}; the prunable layers are {names[:6]}"
            f"{' ...' if len(names) > 6 else ''} (fnmatch patterns such as 'layer1.*' work)."
        )
    return tuple(exclude)


def _check_trained(
    model: nn.Module, reward_data: object, batch_size: int
) -> None:
    """Refuse a model no better than the majority class on the reward subset, naming the fix."""
    if not isinstance(reward_data, tuple | list) or len(reward_data) != 2:
        return  # the environment explains what reward_data must be
    x, y = (torch.as_tensor(v) for v in reward_data)
    if len(y) == 0 or len(x) != len(y):
        return
    acc = evaluate(use_batch_statistics(copy.deepcopy(model)), (x, y.long()), batch_size)["top1"]
    majority = float(torch.bincount(y.long().cpu()).max()) / len(y)
    if acc <= majority:
        raise ValueError(
            f"the model's accuracy on reward_data is {acc:.3f}, no better than always predicting "
            f"the most frequent class ({majority:.3f}): it looks untrained, and PuRL's reward "
            "would ask to keep chance-level accuracy. Train it first (PuRL prunes a trained "
            "network), check that reward_data is prepared as the training data were (same "
            "normalisation), or pass target_accuracy=... (a fraction) to purl_prune to search "
            "anyway."
        )


def purl_prune(
    model: nn.Module,
    reward_data: tuple[torch.Tensor, torch.Tensor],
    target_sparsity: float = 0.8,
    target_accuracy: float | None = None,
    episodes: int = 100,
    seed: int = 0,
    env_config: PuRLConfig | None = None,
    dqn_config: DQNConfig | None = None,
    work_dir: str | Path | None = None,
    desc: str | None = None,
    exclude: Sequence[str] | None = None,
) -> tuple[Masks, SearchResult]:
    """Search per-layer pruning thresholds for a trained ``model`` with PuRL's DQN.

    ``reward_data`` is the ``(x, y)`` subset the reward's accuracy is measured on (a few
    hundred images held out of the training data, never the test split);
    ``target_accuracy`` (``A*``, a fraction) defaults to ``env_config``'s, else to the dense
    accuracy on it. ``exclude`` names the layers kept dense (names or ``fnmatch`` patterns);
    by default the stem and the classifier (:func:`stem_and_classifier`, as the studies do) or
    ``env_config.exclude`` when that is set; ``()`` prunes every layer. The model is not
    modified: the search runs on a copy whose batch-norm layers use batch statistics (so the
    reward sees what the masks keep, not stale running statistics). ``env_config`` and
    ``dqn_config`` override the MDP and the agent (their target sparsity, episodes and seed
    are set from the arguments). Each episode is one pass over the layers, one forward pass of
    ``reward_data`` per layer (a ResNet-18 on Fashion-MNIST: about 3 minutes for 100 episodes).

    Returns ``(masks, result)``: the masks by layer name, and the greedy policy, training log,
    wall time and reward-subset accuracy and sparsity of the masks. To use them, call
    ``result.apply(model, train_data)`` (:func:`apply_masks`): masks applied to a copy, batch
    norm recalibrated, optionally fine-tuned with the masks held.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, numbers.Integral) or episodes < 1:
        raise ValueError(
            f"episodes must be a whole number >= 1 of DQN episodes (default 100; 10-20 for a "
            f"first look): got {episodes!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int: got {seed!r}")
    base = env_config or PuRLConfig()
    if exclude is None:
        dense = tuple(base.exclude)
        if not dense and isinstance(reward_data, tuple | list) and len(reward_data[0]):
            p = next(model.parameters())
            x0 = torch.as_tensor(reward_data[0][:1]).to(p.device)
            dense = stem_and_classifier(model, x0, base.include)
    elif base.exclude and tuple(exclude) != tuple(base.exclude):
        raise ValueError(
            f"exclude={tuple(exclude)} differs from env_config.exclude={base.exclude}: give it once"
        )
    else:
        dense = _check_exclude(model, exclude)
    if target_accuracy is None:
        target_accuracy = base.target_accuracy
    env_cfg = replace(
        base, target_sparsity=target_sparsity, target_accuracy=target_accuracy, exclude=dense
    )
    dqn_cfg = replace(dqn_config or DQNConfig(), seed=int(seed), episodes=int(episodes))
    if target_accuracy is None:
        _check_trained(model, reward_data, env_cfg.eval_batch_size)
    env = PuRLEnv(use_batch_statistics(copy.deepcopy(model)), reward_data, env_cfg)
    key = SearchKey(
        type(model).__name__, env_cfg, dqn_cfg, len(reward_data[0]), weights_fingerprint(model)
    )
    folder = Path(work_dir) if work_dir is not None else key.path()
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    agent = train(
        env, dqn_cfg, log_path=folder / "log.csv", checkpoint_path=folder / "dqn.pt",
        desc=desc or f"PuRL search seed {seed}",
    )  # fmt: skip
    rollout = greedy_policy(agent, env, seed=seed)
    seconds = time.perf_counter() - t0
    log = agent.log.copy()
    if "wall_seconds" in log and len(log):
        seconds = max(seconds, float(log["wall_seconds"].iloc[-1]))
    env.close()
    result = SearchResult(
        seed=seed,
        masks=rollout.masks,
        policy=rollout.table(),
        log=log,
        seconds=seconds,
        episodes=dqn_cfg.episodes,
        reward_accuracy=rollout.accuracy,
        sparsity=rollout.sparsity,
    )
    return result.masks, result


_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def apply_masks(
    model: nn.Module,
    masks: Masks,
    train_data: Data | None,
    finetune: int | TrainConfig | None = None,
    val_data: Data | None = None,
    device: torch.device | str | None = None,
) -> nn.Module:
    """A pruned copy of ``model`` that works as returned (eval mode; ``model`` is unchanged).

    The masks (layer name -> bool mask, as :func:`purl_prune` returns them) are applied to a
    copy; its batch-norm running statistics are recalibrated on ``train_data`` (a few batches,
    no gradient: :func:`~pruning_core.train.batchnorm.recalibrate_bn`), since the dense ones
    are stale once weights are gone (ResNet-18 on Fashion-MNIST at 93% sparsity: 9.85% test
    top-1 with the dense statistics, chance); ``finetune`` then trains it with the masks held
    (pruned weights stay exactly zero): ``n`` epochs of :data:`FINETUNE`, or the
    :class:`~pruning_core.train.loop.TrainConfig` given, with ``val_data`` as its validation
    split (early stopping where the config asks for it). ``train_data`` is ``(x, y)`` tensors
    or a ``DataLoader`` of the training data; it may be None for a model without batch norm
    and no fine-tuning.
    """
    if not masks:
        raise ValueError("no masks to apply: purl_prune returns them as (masks, result)")
    pruned = copy.deepcopy(model)
    if device is not None:
        pruned.to(device)
    masker = Masker(pruned)
    masker.set_masks(masks)
    has_bn = any(isinstance(m, _BN) and m.track_running_stats for m in pruned.modules())
    if train_data is None:
        if has_bn or finetune:
            raise ValueError(
                "pass train_data: batch-norm statistics must be recalibrated after pruning "
                "(and fine-tuning trains on it)"
            )
        return pruned.eval()
    if has_bn:
        recalibrate_bn(pruned, train_data)
    if finetune:
        cfg = finetune if isinstance(finetune, TrainConfig) else replace(FINETUNE, epochs=int(finetune))
        fit(pruned, train_data, cfg, val_data=val_data, masker=masker, device=device,
            desc="fine-tune (masks held)")  # fmt: skip
    return pruned.eval()
