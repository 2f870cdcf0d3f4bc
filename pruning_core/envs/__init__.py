"""Gymnasium environments of the pruning MDPs, registered on import.

``import pruning_core.envs`` registers ``pruning_core/PuRL-v0`` (:class:`PuRLEnv`), so that
``gymnasium.make("pruning_core/PuRL-v0", model=..., val_data=..., config=PuRLConfig(...))``
works.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from pruning_core.envs.purl import PuRLConfig, PuRLEnv

__all__ = ["PURL_ENV_ID", "PuRLConfig", "PuRLEnv"]

PURL_ENV_ID = "pruning_core/PuRL-v0"
"""Gymnasium id of :class:`PuRLEnv`."""

if PURL_ENV_ID not in registry:
    register(id=PURL_ENV_ID, entry_point="pruning_core.envs.purl:PuRLEnv")
if "pruning_core/Neon-v0" not in registry:
    register(id="pruning_core/Neon-v0", entry_point="pruning_core.envs.neon:NeonEnv")
