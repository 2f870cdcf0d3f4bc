"""Experience shared across episodes of the PuRL environment: a bounded memo keyed by the
episode's action prefix.

Without fine-tuning between steps, everything a PuRL step computes is a function of the actions
taken so far in the episode: the masks (each threshold depends only on the dense layer, or on
the weights earlier visits left), the accuracy on the reward subset and the activations the
:class:`~pruning_core.rl.envs.prefix_cache.PrefixCache` keeps for the next step. A converging
policy replays the same prefixes episode after episode, so :class:`PrefixMemo` stores, per
prefix, the accuracy after its last step and the prefix cache's state, and a step whose prefix
is known skips its forward pass (it still applies its mask, so the model is always the pruned
network the observation describes). The numbers are the ones the first computation gave, so
rewards and observations are bit for bit those of the environment without the memo.

Memory is bounded in bytes (the saved activations dominate); the least recently used prefixes
are dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

__all__ = ["MemoEntry", "PrefixMemo"]


@dataclass(frozen=True)
class MemoEntry:
    """What a step left behind: the accuracy and the prefix cache's saved activations."""

    accuracy: float
    saved_stage: int
    saved: tuple[torch.Tensor, ...]
    nbytes: int


class PrefixMemo:
    """An LRU map from an action prefix (a tuple of action indices) to :class:`MemoEntry`.

    ``max_bytes`` bounds the activations held (an entry whose activations are the inputs
    themselves, stage 0, costs nothing extra); ``hits`` / ``misses`` count lookups.
    """

    def __init__(self, max_bytes: int, inputs: list[torch.Tensor]) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._inputs = {id(t) for t in inputs}
        self._entries: OrderedDict[tuple[int, ...], MemoEntry] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, prefix: tuple[int, ...]) -> MemoEntry | None:
        """The entry of ``prefix`` (marked recently used), or None."""
        entry = self._entries.get(prefix)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(prefix)
        self.hits += 1
        return entry

    def put(
        self, prefix: tuple[int, ...], accuracy: float, saved_stage: int,
        saved: list[torch.Tensor],
    ) -> None:  # fmt: skip
        """Remember what the step ending ``prefix`` computed; evict LRU entries over the bound."""
        nbytes = sum(t.numel() * t.element_size() for t in saved if id(t) not in self._inputs)
        if nbytes > self.max_bytes:
            return
        old = self._entries.pop(prefix, None)
        if old is not None:
            self.nbytes -= old.nbytes
        self._entries[prefix] = MemoEntry(float(accuracy), int(saved_stage), tuple(saved), nbytes)
        self.nbytes += nbytes
        while self.nbytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self.nbytes -= dropped.nbytes

    def clear(self) -> None:
        """Forget everything (the dense weights changed)."""
        self._entries.clear()
        self.nbytes = 0
