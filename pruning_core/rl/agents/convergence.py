"""When an actor-critic stops training: a plateau of the validation return on networks kept
out of its updates (:class:`PlateauRule`, the study's rule), or the earlier entropy-collapse
rule (:class:`ConvergenceRule`, kept so the old configuration stays one switch away)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ConvergenceRule", "PlateauRule"]


@dataclass(frozen=True)
class PlateauRule:
    """Stop once the greedy validation return has stopped improving.

    Every ``check_every`` episodes after the warm-up, the greedy policy plays one episode on each
    validation network (networks of the training datasets that never enter an update) at the
    env's C values; the mean return / reward_scale is the check's validation return. Training
    stops when the best of the last ``patience`` checks is not above the best before them by
    more than ``min_delta`` (and at least ``min_checks`` checks were made). The policy's entropy
    is never read. The agent keeps the weights of its best check.
    """

    check_every: int = 16
    """Episodes between validation checks (lockstep groups end at checks)."""
    patience: int = 4
    """Checks without an improvement of more than ``min_delta`` before training stops."""
    min_delta: float = 0.01
    """The smallest rise of the best validation return that counts as an improvement."""
    min_checks: int = 6
    """Checks made before a plateau can be declared."""

    def plateaued(self, returns: Sequence[float]) -> bool:
        """Whether the validation returns of the checks so far have plateaued."""
        r = [float(x) for x in returns]
        if len(r) < max(self.min_checks, self.patience + 1):
            return False
        return max(r[-self.patience :]) <= max(r[: -self.patience]) + self.min_delta


@dataclass(frozen=True)
class ConvergenceRule:
    """The earlier rule (entropy collapse, then two agreeing greedy probes on training tasks).

    At every ``check_every``-th episode after the warm-up and at least ``window`` episodes of
    policy learning: if the mean policy entropy of the last ``window`` episodes (the entropy the
    update computes over each episode's states) is at most ``max_entropy_share`` of the uniform
    policy's (``ln n_actions``), one greedy episode is played on each of the first
    ``probe_tasks`` tasks at each of the env's C values (no learning, no random draws: training
    is unchanged by it). Training stops when the mean greedy return (divided by
    ``reward_scale``) of this probe and of the previous check's probe differ by at most
    ``return_tol``. A probe needs a :class:`~pruning_core.rl.envs.neon_batched.NeonBatch`.
    """

    window: int = 50
    """Episodes whose mean entropy is compared with the threshold."""
    max_entropy_share: float = 0.4
    """Threshold: this share of ``ln n_actions`` (0.4 of ln 5 = 0.64 nats, a policy that gives
    its favourite action about 85%)."""
    return_tol: float = 0.02
    """Largest change of the mean greedy return / reward_scale between two probes."""
    check_every: int = 16
    """Episodes between checks (lockstep groups end at checks)."""
    probe_tasks: int = 8
    """Tasks of the greedy probe (the first ones of the env)."""

    def entropy_converged(self, entropies: Sequence[float], n_actions: int) -> bool:
        """Whether the last ``window`` entropies (of policy-learning episodes) average at most
        the threshold; False with fewer than ``window``."""
        tail = [e for e in entropies if e is not None and math.isfinite(e)][-self.window :]
        if len(tail) < self.window:
            return False
        return float(np.mean(tail)) <= self.max_entropy_share * math.log(n_actions)

    def returns_stable(self, previous: float | None, current: float) -> bool:
        """Whether two consecutive probes' mean greedy returns agree within ``return_tol``."""
        return previous is not None and abs(current - previous) <= self.return_tol


