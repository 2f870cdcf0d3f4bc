"""Gymnasium environments of the two pruning MDPs, registered on import.

``import pruning_core`` (or this package) registers ``pruning_core/PuRL-v0``
(:class:`~pruning_core.rl.envs.purl.PuRLEnv`) and ``pruning_core/Neon-v0``
(:class:`~pruning_core.rl.envs.neon.NeonEnv`), so that
``gymnasium.make("pruning_core/PuRL-v0", model=..., val_data=(x, y))`` works.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from pruning_core.rl.envs.neon import NEON_ENV_ID
from pruning_core.rl.envs.purl import PURL_ENV_ID

__all__ = ["NEON_ENV_ID", "PURL_ENV_ID"]

if PURL_ENV_ID not in registry:
    register(id=PURL_ENV_ID, entry_point="pruning_core.rl.envs.purl:PuRLEnv")
if NEON_ENV_ID not in registry:
    register(id=NEON_ENV_ID, entry_point="pruning_core.rl.envs.neon:NeonEnv")
