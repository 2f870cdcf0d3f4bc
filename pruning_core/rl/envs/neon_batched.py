"""Cheap NEON experience: episodes played together, shared prefixes computed once, a lean
fine-tuning loop -- the rewards, accuracies and observations of
:class:`~pruning_core.rl.envs.neon.NeonEnv`, exactly.

Where the time goes, and why episodes are not batched into one masked network, is in
:mod:`~pruning_core.rl.envs.neon_finetune`. What is cheap and exact is to not do the same work
twice and to drop the overhead around it:

1. **Shared prefixes are computed once.** The network after actions ``a_0 .. a_t`` depends only
   on the task and those actions: the fine-tuning after step ``t`` is seeded with
   ``seed + 7919 t``, and ``C`` enters only the reward and the observation's first features. So
   each action prefix is a node of a tree that holds the pruned network, its validation accuracy
   and its per-layer observation features; episodes that share a prefix (within a batch, across
   batches through an LRU cache bounded in bytes, and across values of ``C``) share its node,
   and a node stores only the layers its step changed (the others are shared with its parent).
   With ``guard`` the network does depend on ``C``, which then joins the key.
2. **A lean fine-tuning loop**
   (:func:`~pruning_core.rl.envs.neon_finetune.finetune_like_fit`): ``fit``'s arithmetic, op
   for op, without its overhead.
3. **Observation features of unchanged layers are reused** from the parent node: with
   ``finetune="changed"`` the layers before the pruned one keep their weights, and, without
   batch-norm before it, their activations.

So the gain depends on the policy. ``python -m pruning_core.bench`` measures it side by side
(``neon_batched_over_single``): with uniformly random actions (the warm-up) about 1.7x, from the
lean loop and chance repeats; as a policy converges its episodes repeat, up to about 12x when 98%
of its actions are its favourite, and 1.6x on the action log of a real agent's training across
36 networks, whose prefixes rarely repeat (measurements on a 2-core machine; see
``results/bench.json``).

:class:`NeonBatch` plays many episodes in lockstep (every episode of a task visits the same layer
at the same step), asks the policy for all their actions at once, and returns each episode's
observations, actions, rewards and :meth:`~pruning_core.rl.envs.neon.NeonEnv.episode_report`.
The equivalence with the env is checked in ``tests/test_neon_batched.py``: same actions and seed,
same rewards, accuracies, parameter counts, infos and observations, bit for bit.

Scope: ``mode="structural"`` (the default; mask mode fine-tunes a differently shaped network);
fine-tuning configs with Adam and a constant learning rate
(:meth:`~pruning_core.train.loop.TrainConfig.mlp`, the env's default). Others are refused.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from gymnasium.utils import seeding
from torch import nn

from pruning_core.models.mlp import MLP
from pruning_core.pruning.neurons import count_params, live_neurons, remove_neurons, select_neurons
from pruning_core.rl.envs.grad import env_grad_mode
from pruning_core.rl.envs.info import make_info, parse_action
from pruning_core.rl.envs.neon import NeonEnvConfig, NeonTask, stat_rows
from pruning_core.rl.envs.neon_features import (
    LAYER_FEATURES,
    MAX_LAYERS,
    OBS_BOUND,
    OBS_DIM,
    layer_features,
)
from pruning_core.rl.envs.neon_finetune import check_config, finetune_like_fit
from pruning_core.rl.rewards import neon_reward, within_allowed_loss
from pruning_core.train.loop import evaluate

__all__ = ["BatchPolicy", "NeonBatch", "NeonEpisode", "finetune_like_fit", "replay_batch"]


BatchPolicy = Callable[[np.ndarray, Sequence[int]], Sequence[int]]
"""``policy(obs, ids) -> actions``: one action per row of ``obs`` (``(k, OBS_DIM)``), for the
episodes numbered ``ids`` (their positions in :meth:`NeonBatch.play`'s list), called once per
step with the episodes still running, in order."""


_CURRENT = LAYER_FEATURES.index("current")
_NODE_BYTES = 4096  # what a node costs beyond its new tensors (features, step, bookkeeping)


# --- the prefix tree ---------------------------------------------------------------------------
@dataclass(eq=False)
class _Node:
    """The state after an action prefix: the network (never modified once made) and what the
    observation and the reward read from it."""

    model: MLP
    t: int
    """Steps taken (the prefix length)."""
    val_acc: float
    """Validation accuracy of ``model`` (after an undone step: of the restored network)."""
    params: int
    feats: np.ndarray | None
    """Per hidden layer, :func:`layer_features` with the ``current`` flag off (None: not yet)."""
    stale_from: int
    """Rows of ``feats`` from this layer on are still to compute (``feats`` holds the parent's)."""
    step: dict[str, Any] | None = None
    """The step that led here (layer, action, keep, n_before, n_after, attempted_acc, undone)."""
    nbytes: int = 0


def _fork(model: MLP, layer: int, finetune: str) -> MLP:
    """A copy of ``model`` to prune at ``layer`` and fine-tune: the blocks the step changes are
    copied, the others shared (they are neither pruned nor trained: not the pruned block or the
    next, no batch-norm whose running statistics move in train mode, not with ``finetune="all"``),
    which makes forking cheap and cached nodes small."""
    memo: dict[int, Any] = {}
    if finetune != "all":
        for i, b in enumerate(model.blocks):
            if i not in (layer, layer + 1) and (b.bn is None or finetune == "none"):
                memo[id(b)] = b
        if layer + 1 < model.n_hidden:
            memo[id(model.head)] = model.head
    return copy.deepcopy(model, memo)


def _new_bytes(model: nn.Module, parent: nn.Module) -> int:
    """Bytes of ``model``'s tensors that ``parent`` does not share."""
    old = {id(t) for t in (*parent.parameters(), *parent.buffers())}
    return sum(
        t.numel() * t.element_size()
        for t in (*model.parameters(), *model.buffers())
        if id(t) not in old
    )


@dataclass
class NeonEpisode:
    """One episode played by :class:`NeonBatch`: what :meth:`NeonEnv.step` would have returned."""

    task: int
    """Index of the task in :attr:`NeonBatch.tasks`."""
    C: float
    observations: list[np.ndarray] = field(default_factory=list)
    """The observation each action was chosen on (``reset``'s, then each step's but the last)."""
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    """Per step, the ``info`` the env's step returns."""
    final_observation: np.ndarray | None = None
    """The observation returned by the last step."""
    report: dict[str, Any] = field(default_factory=dict)
    """:meth:`NeonEnv.episode_report` of the finished episode."""
    final_network: MLP | None = field(default=None, repr=False)
    """The pruned network (shared with the cache: copy it before changing it)."""

    @property
    def episode_return(self) -> float:
        """Undiscounted sum of the rewards."""
        return float(sum(self.rewards))


@dataclass
class _Running:
    ep: NeonEpisode
    node: _Node
    prefix: tuple[int, ...] = ()
    rows: list[dict[str, Any]] = field(default_factory=list)


class NeonBatch:
    """NEON's MDP (:class:`~pruning_core.rl.envs.neon.NeonEnv`'s rules and results) for many
    episodes at a time, with shared action prefixes computed once; see the module docstring.

    ``cache_mb`` bounds the bytes of the nodes kept for reuse across :meth:`play` calls (least
    recently used dropped first; 0 keeps only what the running episodes need). The bound is
    approximate: a node stores only the layers its step changed, so a cached node can keep an
    evicted ancestor's shared layers alive. The tasks' networks are never modified (their
    modules are shared read-only). :attr:`stats` counts the nodes computed and reused.
    """

    def __init__(
        self,
        tasks: Sequence[NeonTask] | NeonTask,
        config: NeonEnvConfig | None = None,
        cache_mb: float = 256.0,
    ) -> None:
        self.config = config or NeonEnvConfig()
        if self.config.mode != "structural":
            raise ValueError(
                "NeonBatch reproduces NeonEnv's structural mode (the default); use NeonEnv for "
                f"mode={self.config.mode!r}"
            )
        if self.config.finetune != "none":
            check_config(self.config.ft)
        self.tasks = [tasks] if isinstance(tasks, NeonTask) else list(tasks)
        if not self.tasks:
            raise ValueError("NeonBatch needs at least one task")
        if not cache_mb >= 0:
            raise ValueError(f"cache_mb must be >= 0, got {cache_mb}")
        self.n_actions = len(self.config.keep_fractions)
        self.obs_dim = OBS_DIM
        self.cache_bytes = int(cache_mb * 2**20)
        self.np_random, _ = seeding.np_random(None)
        self._cache: OrderedDict[tuple[Any, ...], _Node] = OrderedDict()
        self._cached_bytes = 0
        self._roots: dict[int, _Node] = {}
        self._stat_rows: dict[int, torch.Tensor] = {}
        self.stats = {"nodes": 0, "finetunes": 0, "reused": 0, "steps": 0, "episodes": 0}

    def reset(self, *, seed: int | None = None) -> None:
        """Seed the generator that draws each episode's task and C, and draw once, as
        ``NeonEnv.reset(seed=seed)`` does (it starts an episode): a NeonBatch and a NeonEnv
        reset alike then draw the same tasks and Cs for the episodes that follow."""
        self.np_random, _ = seeding.np_random(seed)
        self.draw_start()

    def clear_cache(self) -> None:
        """Forget every cached node (the tasks' root nodes stay)."""
        self._cache.clear()
        self._cached_bytes = 0

    # --- per task ----------------------------------------------------------------------------
    def _rows_for_stats(self, task_id: int) -> torch.Tensor:
        """The training rows whose activations feed the observation (NeonEnv's draw)."""
        if task_id not in self._stat_rows:
            self._stat_rows[task_id] = stat_rows(self.tasks[task_id], self.config, task_id)
        return self._stat_rows[task_id]

    def _root(self, task_id: int) -> _Node:
        if task_id not in self._roots:
            task = self.tasks[task_id]
            model = task.model.eval()  # shared, never modified: children copy before pruning
            self._roots[task_id] = _Node(
                model, 0, task.base_val_acc, count_params(model), None, 0
            )
        return self._roots[task_id]

    # --- features and observations -----------------------------------------------------------
    @torch.no_grad()
    def _features(self, task_id: int, node: _Node) -> np.ndarray:
        """Per-layer observation features of ``node`` (rows before ``stale_from`` reused)."""
        model = node.model
        n = model.n_hidden
        if node.feats is not None and node.stale_from >= n:
            return node.feats
        widths0 = [b.width for b in self.tasks[task_id].model.blocks]
        feats = (
            node.feats.copy()
            if node.feats is not None
            else np.zeros((n, len(LAYER_FEATURES)), np.float32)
        )
        start = node.stale_from if node.feats is not None else 0
        x = self._rows_for_stats(task_id)
        model.eval()
        for i, block in enumerate(model.blocks):
            x = block(x)
            if i >= start:
                feats[i] = layer_features(model, i, widths0[i], False, x)
        node.feats, node.stale_from = feats, n
        return feats

    def _observation(self, task_id: int, node: _Node, C: float) -> np.ndarray:
        """``NeonEnv._observation`` for the state ``node`` and the episode's ``C``."""
        task = self.tasks[task_id]
        n_hidden = task.model.n_hidden
        T = n_hidden * self.config.passes
        t = min(node.t, T - 1)
        layer = t % n_hidden
        root = self._root(task_id)
        delta = (node.val_acc - task.base_val_acc) * 100
        g = [
            math.log1p(C) / math.log1p(50.0),
            min(C / 50.0, 2.0),
            (t // n_hidden) / self.config.passes,
            t / T,
            layer / MAX_LAYERS,
            n_hidden / MAX_LAYERS,
            math.log(root.params / node.params) / math.log(100.0),
            node.val_acc,
            float(np.clip(delta / 10.0, -OBS_BOUND, OBS_BOUND)),
            float(np.tanh((delta + C) / 2.0)),
            math.log10(node.params) / 7.0,
            math.log10(task.data.n_features + 1) / 3.0,
            min(task.model.head.out_features / 10.0, 2.0),
            task.base_val_acc,
        ]
        blocks = np.zeros((MAX_LAYERS + 1, len(LAYER_FEATURES)), dtype=np.float32)
        blocks[:n_hidden] = self._features(task_id, node)
        blocks[layer, _CURRENT] = 1.0
        blocks[MAX_LAYERS] = blocks[layer]
        obs = np.concatenate([np.asarray(g, dtype=np.float32), blocks.ravel()])
        return np.clip(obs, -OBS_BOUND, OBS_BOUND).astype(np.float32)

    # --- one step ------------------------------------------------------------------------------
    @env_grad_mode()
    def _child(self, task_id: int, parent: _Node, action: int, C: float) -> _Node:
        """The node after ``action`` from ``parent``: ``NeonEnv.step``'s network update."""
        cfg = self.config
        task = self.tasks[task_id]
        t = parent.t
        layer = t % task.model.n_hidden
        keep = cfg.keep_fractions[action]
        n_before = len(live_neurons(parent.model, layer))
        keep_idx = select_neurons(parent.model, layer, keep) if keep < 1.0 else None
        n_after = n_before if keep_idx is None else len(keep_idx)
        step = {"layer": layer, "action": action, "keep": keep, "n_before": n_before,
                "n_after": n_after, "attempted_acc": parent.val_acc, "undone": False}  # fmt: skip
        if n_after == n_before:
            return _Node(parent.model, t + 1, parent.val_acc, parent.params, parent.feats,
                         parent.stale_from, step, nbytes=_NODE_BYTES)  # fmt: skip
        self.stats["finetunes"] += int(cfg.finetune != "none")
        model = _fork(parent.model, layer, cfg.finetune)
        remove_neurons(model, layer, keep_idx)
        if cfg.finetune != "none":
            ft = replace(cfg.ft, seed=cfg.seed + 7919 * t)
            finetune_like_fit(
                model, self._trainable(model, layer), task.data.tensors("train"),
                task.data.tensors("stop"), ft,
            )  # fmt: skip
        val_acc = evaluate(
            model, task.data.tensors("reward"), batch_size=None,
            what=f"{task.name}: the network after pruning layer {layer}",
        )["top1"]  # fmt: skip
        step["attempted_acc"] = val_acc
        delta = (val_acc - task.base_val_acc) * 100
        if cfg.guard and not within_allowed_loss(delta, C, cfg.noise_margin_pp):
            step["undone"] = True
            return _Node(parent.model, t + 1, parent.val_acc, parent.params, parent.feats,
                         parent.stale_from, step, nbytes=_NODE_BYTES)  # fmt: skip
        # layers before the pruned one keep their weights; without batch-norm there (whose
        # running statistics move in train mode) also their activations, hence their features
        keeps_prefix = cfg.finetune in ("changed", "none") and all(
            b.bn is None for b in model.blocks[:layer]
        )
        stale = min(layer, parent.stale_from) if keeps_prefix and parent.feats is not None else 0
        return _Node(model, t + 1, val_acc, count_params(model),
                     parent.feats if stale else None, stale, step,
                     nbytes=_NODE_BYTES + _new_bytes(model, parent.model))  # fmt: skip

    def _trainable(self, model: MLP, layer: int) -> list[nn.Parameter]:
        """``NeonEnv._trainable``: what the fine-tuning after pruning ``layer`` trains."""
        if self.config.finetune == "all":
            return list(model.parameters())
        block = model.blocks[layer]
        ps = list(block.linear.parameters())
        if block.bn is not None:
            ps += list(block.bn.parameters())
        ps += list(model.next_linear(layer).parameters())
        return ps

    def _lookup(self, key: tuple[Any, ...], make: Callable[[], _Node], fresh: dict) -> _Node:
        """The node of ``key``: from this step's new nodes, the cache, or ``make()``."""
        node = fresh.get(key)
        if node is None:
            node = self._cache.get(key)
            if node is not None:
                self._cache.move_to_end(key)
        if node is not None:
            self.stats["reused"] += 1
            return node
        node = make()
        self.stats["nodes"] += 1
        fresh[key] = node
        if self.cache_bytes > 0 and node.nbytes <= self.cache_bytes:
            self._cache[key] = node
            self._cached_bytes += node.nbytes
            while self._cached_bytes > self.cache_bytes:
                _k, old = self._cache.popitem(last=False)
                self._cached_bytes -= old.nbytes
        return node

    def _reward(self, task_id: int, step: dict[str, Any], C: float) -> float:
        """``NeonEnv.step``'s reward for ``step`` in an episode with this ``C``."""
        cfg = self.config
        n_before, n_after = step["n_before"], step["n_after"]
        if cfg.removed_of == "current":
            removed_share = 1.0 - n_after / n_before
        else:
            width0 = self.tasks[task_id].model.blocks[step["layer"]].width
            removed_share = (n_before - n_after) / width0
        return cfg.reward_scale * float(
            neon_reward(1.0 - removed_share, step["attempted_acc"],
                        self.tasks[task_id].base_val_acc, C, noise_margin_pp=cfg.noise_margin_pp,
                        improvement=cfg.improvement_reward, within_weight=cfg.within_weight)
        )  # fmt: skip

    # --- episodes -------------------------------------------------------------------------------
    def draw_start(self, task: int | None = None, C: float | None = None) -> tuple[int, float]:
        """A task and a C drawn as ``NeonEnv.reset`` draws them (given ones are kept)."""
        if task is None:
            task = int(self.np_random.integers(len(self.tasks)))
        if not 0 <= int(task) < len(self.tasks):
            raise IndexError(f"task {task} out of range: {len(self.tasks)} tasks")
        if C is None:
            C = float(self.np_random.choice(np.asarray(self.config.C_values, dtype=float)))
        if not float(C) >= 0.0:
            raise ValueError(f"C must be >= 0 percentage points, got {C}")
        return int(task), float(C)

    def draw_starts(
        self, n: int | None = None, starts: Sequence[tuple[int | None, float | None]] | None = None
    ) -> list[tuple[int, float]]:
        """The ``(task, C)`` of each episode :meth:`play` starts: ``n`` drawn ones, or ``starts``
        with their None entries drawn (:meth:`draw_start`, in order)."""
        if starts is None:
            if n is None or n < 1:
                raise ValueError("give n >= 1 episodes or their starts")
            starts = [(None, None)] * n
        return [self.draw_start(task, C) for task, C in starts]

    def play(
        self,
        policy: BatchPolicy,
        n: int | None = None,
        starts: Sequence[tuple[int | None, float | None]] | None = None,
    ) -> list[NeonEpisode]:
        """Play ``n`` episodes (tasks and C drawn) or one per ``(task, C)`` in ``starts`` (None
        entries drawn) in lockstep; ``policy`` chooses every running episode's action at each
        step (see :data:`BatchPolicy`). Returns the episodes in order. The pruning and
        fine-tuning run in torch's default grad mode whatever the caller's
        (:func:`~pruning_core.rl.envs.grad.env_grad_mode`); the policy runs in the caller's."""
        runs = []
        for task_id, c in self.draw_starts(n, starts):
            runs.append(_Running(NeonEpisode(task_id, c), self._root(task_id)))
        lengths = [self.tasks[r.ep.task].model.n_hidden * self.config.passes for r in runs]
        guard = self.config.guard
        while True:
            live = [i for i, r in enumerate(runs) if len(r.prefix) < lengths[i]]
            if not live:
                break
            obs = [self._observation(runs[i].ep.task, runs[i].node, runs[i].ep.C) for i in live]
            actions = policy(np.stack(obs), live)
            if len(actions) != len(live):
                raise ValueError(f"the policy gave {len(actions)} actions for {len(live)} episodes")
            fresh: dict[tuple[Any, ...], _Node] = {}
            for i, o, a in zip(live, obs, actions, strict=True):
                r = runs[i]
                a = parse_action(a, self.n_actions, f"keep fractions {self.config.keep_fractions}")
                r.ep.observations.append(o)
                r.ep.actions.append(a)
                key = (r.ep.task, r.ep.C if guard else None, *r.prefix, a)
                node = self._lookup(
                    key, lambda r=r, a=a: self._child(r.ep.task, r.node, a, r.ep.C), fresh
                )
                assert node.step is not None
                reward = self._reward(r.ep.task, node.step, r.ep.C)
                r.prefix, r.node = (*r.prefix, a), node
                row, info = self._row_and_info(r, reward)
                r.rows.append(row)
                r.ep.rewards.append(reward)
                r.ep.infos.append(info)
                self.stats["steps"] += 1
        for r in runs:
            r.ep.final_observation = self._observation(r.ep.task, r.node, r.ep.C)
            r.ep.report = self._report(r)
            r.ep.final_network = r.node.model
            self.stats["episodes"] += 1
        return [r.ep for r in runs]

    def _row_and_info(self, r: _Running, reward: float) -> tuple[dict[str, Any], dict[str, Any]]:
        """``NeonEnv.step``'s log row and ``info`` for the step that led to ``r.node``."""
        task = self.tasks[r.ep.task]
        node, step = r.node, r.node.step
        assert step is not None
        t = node.t - 1
        params0 = self._root(r.ep.task).params
        row = {
            "t": t, "pass": t // task.model.n_hidden, "layer": step["layer"],
            "action": step["action"], "keep": step["keep"], "n_before": step["n_before"],
            "n_after": step["n_before"] if step["undone"] else step["n_after"],
            "val_acc": node.val_acc, "params": node.params, "reward": reward,
            "undone": step["undone"],
        }  # fmt: skip
        info = make_info(
            step=node.t, layer=step["layer"], layer_name=f"hidden{step['layer']}",
            pass_=t // task.model.n_hidden, sparsity=1.0 - node.params / params0,
            compression=params0 / node.params, accuracy=node.val_acc, step_reward=reward,
            task=task.name, C=r.ep.C, params=node.params,
            delta_val_pp=(node.val_acc - task.base_val_acc) * 100, keep=float(step["keep"]),
            undone=bool(step["undone"]),
        )  # fmt: skip
        return row, info

    def _report(self, r: _Running) -> dict[str, Any]:
        """``NeonEnv.episode_report`` of a finished episode."""
        cfg = self.config
        task = self.tasks[r.ep.task]
        params0 = self._root(r.ep.task).params
        final = r.node.model
        params = count_params(final)
        return {
            "task": task.name,
            "C": r.ep.C,
            "passes": cfg.passes,
            "mode": cfg.mode,
            "finetune": cfg.finetune,
            "params_orig": params0,
            "params_pruned": params,
            "compression": params0 / params,
            "val_acc_orig": task.base_val_acc,
            "val_acc": r.node.val_acc,
            "delta_val_pp": (r.node.val_acc - task.base_val_acc) * 100,
            "widths_orig": [b.width for b in task.model.blocks],
            "widths_final": [b.width for b in final.blocks],
            "return": float(sum(row["reward"] for row in r.rows)),
            "steps": list(r.rows),
        }


def replay_batch(sequences: Sequence[Sequence[int]]) -> BatchPolicy:
    """An open-loop :data:`BatchPolicy`: episode ``i`` of a :meth:`NeonBatch.play` call takes
    the actions ``sequences[i]`` in order, whatever it observes."""
    taken: dict[int, int] = {}

    def policy(_obs: np.ndarray, ids: Sequence[int]) -> list[int]:
        out = []
        for i in ids:
            t = taken.get(i, 0)
            if t >= len(sequences[i]):
                raise RuntimeError(f"replay_batch: episode {i} is longer than its {t} actions")
            out.append(int(sequences[i][t]))
            taken[i] = t + 1
        return out

    return policy
