"""pruning_core: reinforcement-learning-based pruning of neural networks, PuRL and NEON.

The few calls a user needs (importing the package also registers the gymnasium ids
``pruning_core/PuRL-v0`` and ``pruning_core/Neon-v0``):

* :class:`Masker` and :func:`sparsity_report`: masks on any torch model, held through training;
* :func:`purl_prune`: PuRL's DQN search on a trained CNN, returning per-layer masks, and
  :func:`apply_masks` (or ``result.apply``) to turn them into a usable network (masks applied,
  batch norm recalibrated, optionally fine-tuned with the masks held);
* :func:`prune_mlp`: NEON's shipped agent pruning the neurons of a trained MLP (an
  ``nn.Sequential`` comes back as one), and :func:`prepare_table` to turn your own pandas
  table into splits for it; ``python -m pruning_core prune-mlp table.csv --target y`` does
  both from the command line (:mod:`pruning_core.cli`);
* :class:`PuRLEnv` / :class:`NeonEnv`: the two MDPs, for agents of your own.

The package follows the data flow: ``data`` -> ``models`` -> ``pruning`` (model -> masks) ->
``train`` (masks -> fine-tuned model) -> ``rl`` (rewards, environments, agents) -> ``methods``
(one call per paper and its baselines) -> ``studies`` (one per notebook) -> ``figures``.
"""

from __future__ import annotations

from pruning_core.data.tabular import prepare_table
from pruning_core.methods.neon import prune_mlp
from pruning_core.methods.purl import SearchResult, apply_masks, purl_prune
from pruning_core.pruning.masks import Masker
from pruning_core.pruning.report import sparsity_report
from pruning_core.rl.envs import NEON_ENV_ID, PURL_ENV_ID
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv

__all__ = [
    "NEON_ENV_ID",
    "PURL_ENV_ID",
    "Masker",
    "NeonEnv",
    "NeonEnvConfig",
    "PuRLConfig",
    "PuRLEnv",
    "SearchResult",
    "apply_masks",
    "prepare_table",
    "prune_mlp",
    "purl_prune",
    "sparsity_report",
]
