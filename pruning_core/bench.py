"""Performance figures of the repository, as ratios: ``python -m pruning_core.bench``.

PuRL's cost is its environment step: a reward is one evaluation of the validation subset, so a
step should cost little more than one plain forward pass over that subset, and less where the
prefix cache reuses the already-pruned part of the network. This module measures

    (mean seconds per PuRLEnv step over an episode) / (seconds of one plain forward pass)

for a small CNN and for ResNet-50 (small-input stem) side by side in one run, repeats each
measurement and takes medians, prints a table and merges the ratios into ``results/bench.json``
(keys ``purl_step_over_forward_small_cnn`` and ``purl_step_over_forward_resnet50``; other keys
already in the file are kept). ``--quick`` is a tiny run (a few images, one repeat) that writes
``results/bench_quick.json`` instead, so it never overwrites the real figures.

NEON's figures (skip the rest with ``--neon-only``) come from one MLP trained on breast_cancer:
the shipped agent's pruning against a per-network agent's training, the pruned MLP's latency,
and the cost of experience, ``neon_episodes_per_second`` and ``neon_batched_over_single``: the
fast path :class:`~pruning_core.rl.envs.neon_batched.NeonBatch` against ``NeonEnv`` one episode
at a time, on the same action sequences (which must give the same rewards), for uniformly random
actions (the headline) and for two converging policies (:func:`measure_neon_experience`).

Sizes (the cpu profile, see :func:`bench_sizes`): the small CNN on 8x8 digits with the 270-image
validation split (notebook 01); ResNet-50 at the input size and reward-subset size of the cpu
profile of notebooks 02/03. Each subset is evaluated in one batch, on one thread by default.
Networks are untrained (timing does not depend on the weights' values); actions are uniformly
random.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from torch import nn

from pruning_core.bench_neon import measure_neon_training_log, replay_single
from pruning_core.config import results_root
from pruning_core.data.images import load_digits_splits
from pruning_core.data.splits import Splits
from pruning_core.data.tabular import load_tabular
from pruning_core.methods.neon import prune_mlp
from pruning_core.models.cnn import build_resnet50, build_small_cnn
from pruning_core.models.mlp import MLPSpec, build_mlp
from pruning_core.pruning.export import load_compact
from pruning_core.pruning.neurons import count_params
from pruning_core.pruning.report import sparsity_report
from pruning_core.pruning.sparse import latency, to_sparse_inference
from pruning_core.rl.agents.a2c import A2CConfig, ActorCriticAgent
from pruning_core.rl.agents.dqn import DQNConfig
from pruning_core.rl.agents.dqn import train as dqn_train
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig, NeonTask
from pruning_core.rl.envs.neon_batched import NeonBatch, replay_batch
from pruning_core.rl.envs.purl import PuRLConfig, PuRLEnv
from pruning_core.rl.rollout import replay, rollout, uniform_random
from pruning_core.runs import write_json
from pruning_core.studies.ablations_networks import dense_resnet20
from pruning_core.studies.ablations_sizes import ablation_sizes
from pruning_core.studies.purl import purl_study_sizes
from pruning_core.train.loop import TrainConfig, fit

__all__ = [
    "BenchCase",
    "BenchSizes",
    "bench_sizes",
    "favourite_action_sequences",
    "main",
    "measure_neon",
    "measure_neon_experience",
    "measure_purl_experience",
    "measure_purl_memo",
    "measure_step_ratio",
    "write_bench",
]


@dataclass(frozen=True)
class BenchCase:
    """One network to time, with its input size and validation-subset size."""

    name: str
    """Key suffix in bench.json: ``small_cnn`` or ``resnet50``."""
    image_size: int
    """Side of the square input images (digits, resized)."""
    val_size: int
    """Images in the validation subset (at most the digits validation split, 270)."""
    small_input: bool = True
    """ResNet-50's small-input stem (ignored for the small CNN)."""
    repeats: int = 3
    """Measurements of each quantity; the medians are reported."""


@dataclass(frozen=True)
class BenchSizes:
    """How much the benchmark measures."""

    cases: tuple[BenchCase, ...]
    """The networks, measured side by side."""
    episodes: int
    """Episodes timed per repeat (the step time is their mean per step)."""


def bench_sizes(quick: bool = False) -> BenchSizes:
    """The cpu-profile sizes, or a tiny run with ``quick``.

    Small CNN: notebook 01's setting (8x8 digits, the 270-image validation split). ResNet-50:
    the reward subset and input size of the cpu profile of notebook 02
    (:func:`pruning_core.studies.purl.purl_study_sizes`), torchvision's unmodified stem.
    """
    if quick:
        cases = (BenchCase("small_cnn", 8, 32, repeats=5), BenchCase("resnet50", 8, 16, repeats=2))
        return BenchSizes(cases=cases, episodes=1)
    cpu = purl_study_sizes("resnet50", "cpu")
    resnet = BenchCase("resnet50", cpu.image_size, cpu.reward_subset, False, 3)
    small = BenchCase("small_cnn", 8, 270, repeats=25)
    return BenchSizes(cases=(small, resnet), episodes=1)


def _time_forward(model: nn.Module, x: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        t0 = time.perf_counter()
        model(x)
        return time.perf_counter() - t0


def _time_episode(env: PuRLEnv, rng: np.random.Generator) -> float:
    """Mean seconds per step over one episode of random actions (reset not included)."""
    ep = rollout(env, uniform_random(int(env.action_space.n), rng))
    return ep.seconds / ep.length


def measure_step_ratio(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    repeats: int,
    episodes: int = 1,
    prefix_cache: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Median step seconds / median forward seconds of ``model`` on ``(x, y)``.

    Each repeat times one plain forward pass, then ``episodes`` episodes, then a forward pass, so load from
    other processes hits both alike. One untimed forward and episode warm up the kernels.
    """
    env = PuRLEnv(
        model,
        (x, y),
        PuRLConfig(target_accuracy=1.0, prefix_cache=prefix_cache, eval_batch_size=len(x)),
        memo_mb=0,  # the cost of a computed step (the memo is measured by measure_purl_memo)
    )
    rng = np.random.default_rng(seed)
    _time_forward(model, x)
    _time_episode(env, rng)
    fwd, step = [], []
    for _ in range(repeats):
        fwd.append(_time_forward(model, x))
        step.append(statistics.fmean(_time_episode(env, rng) for _ in range(episodes)))
        fwd.append(_time_forward(model, x))
    env.reset()
    f, s = statistics.median(fwd), statistics.median(step)
    return {
        "ratio": s / f,
        "forward_seconds": f,
        "step_seconds": s,
        "layers": env.num_layers,
        "prefix_cache": env.prefix_cache_enabled,
    }


def write_bench(values: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Merge ``values`` into the JSON file at ``path`` (atomically) and return the whole file."""
    path = Path(path)
    current = json.loads(path.read_text()) if path.is_file() else {}
    current.update(values)
    write_json(path, current)
    return current


def _neon_bench_task(quick: bool = False) -> tuple[nn.Module, Splits]:
    """The NEON benchmark's network: a 3-hidden-layer MLP (256/256/128, ReLU) trained on
    breast_cancer (a real dataset of the offline suite), and its splits."""
    d = load_tabular("breast_cancer", seed=0).splits()
    spec = MLPSpec(
        d.n_features, d.num_classes, (256, 256, 128), ("relu",) * 3, (False,) * 3, (0.0,) * 3
    )
    model = build_mlp(spec, seed=0)
    fit(model, d.tensors("train"), TrainConfig.mlp(epochs=5 if quick else 30),
        val_data=d.tensors("stop"))  # fmt: skip
    return model, d


def measure_neon(
    episodes: int = 10, quick: bool = False, net: tuple[nn.Module, Splits] | None = None
) -> dict[str, Any]:
    """NEON: prune a new MLP with the shipped agent vs train a per-network agent; MLP latency.

    Both costs are measured on the benchmark's MLP (:func:`_neon_bench_task`, or ``net``) in
    this run. The per-network agent's cost is also extrapolated to 300 episodes (AMC's
    per-network budget). The pruned MLP is structurally smaller, so its CPU latency is timed
    against the original on 4,096 rows.
    """
    model, d = net if net is not None else _neon_bench_task(quick)
    t0 = time.perf_counter()
    small, report = prune_mlp(model, *d.tensors("train"), *d.tensors("reward"), C=1.0)
    prune_s = time.perf_counter() - t0
    env = NeonEnv([NeonTask.from_model(model, d, name="bench")], NeonEnvConfig(C_values=(1.0,)))
    fresh = ActorCriticAgent.for_env(env, A2CConfig(seed=1))
    t0 = time.perf_counter()
    fresh.train(env, episodes, desc="per-network agent")
    train_s = time.perf_counter() - t0
    x = torch.rand(4096, d.n_features)
    lat_dense, lat_small = latency(model, x, repeats=20), latency(small, x, repeats=20)
    return {
        "neon_prune_seconds": prune_s,
        "neon_per_network_agent_seconds": train_s,
        "neon_per_network_agent_episodes": episodes,
        "neon_prune_over_per_network_agent": prune_s / train_s,
        "neon_prune_over_per_network_agent_300_episodes": prune_s / (train_s / episodes * 300),
        "neon_mlp_compression": count_params(model) / count_params(small),
        "neon_mlp_latency_pruned_over_dense": lat_small / lat_dense,
    }


def favourite_action_sequences(
    n: int, length: int, n_actions: int, p_favourite: float, seed: int = 0
) -> list[list[int]]:
    """``n`` action sequences of a policy that, after each action prefix, takes a favourite action
    (drawn once per prefix) with probability ``p_favourite`` and one of the others uniformly
    otherwise: ``1 / n_actions`` is the uniform policy, values near 1 a converged one."""
    rng = np.random.default_rng(seed)
    favourite: dict[tuple[int, ...], int] = {}
    out = []
    for _ in range(n):
        prefix: tuple[int, ...] = ()
        for _t in range(length):
            fav = favourite.setdefault(prefix, int(rng.integers(n_actions)))
            if rng.random() < p_favourite:
                a = fav
            else:
                a = int(rng.integers(n_actions - 1))
                a += int(a >= fav)  # one of the others
            prefix = (*prefix, a)
        out.append(list(prefix))
    return out


def _entropy(p: float, n_actions: int) -> float:
    """Per-step entropy (nats) of :func:`favourite_action_sequences`' policy."""
    rest = (1.0 - p) / (n_actions - 1)
    return float(-p * math.log(p) - (n_actions - 1) * rest * math.log(rest)) if rest > 0 else 0.0


def measure_neon_experience(
    net: tuple[nn.Module, Splits],
    quick: bool = False,
    lockstep: int = 16,
    policies: tuple[float, ...] = (0.2, 0.9, 0.98),
) -> dict[str, Any]:
    """Episodes per second of NEON's fast path (:class:`NeonBatch`) against the one-at-a-time
    :class:`NeonEnv`, on the same network, the same action sequences and one thread.

    Per policy of :func:`favourite_action_sequences` (0.2: uniform, the warm-up; 0.9 and 0.98:
    a policy converging), the fast path plays ``n_fast`` episodes, ``lockstep`` at a time with
    its prefix cache (fresh for each policy), and the env replays the first ``n_single`` of them
    (half before, half after, so load from other processes hits both alike). The two give the
    same rewards, which is checked. The headline ratio is the uniform policy's: there the
    prefix cache finds little to share, so it measures the lean loop alone.
    """
    model, d = net
    task = NeonTask.from_model(model, d, name="bench")
    cfg = NeonEnvConfig(C_values=(1.0,))
    length = task.model.n_hidden * cfg.passes
    n_actions = len(cfg.keep_fractions)
    n_fast, n_single = (4, 2) if quick else (48, 10)
    rows = {}
    for i, p in enumerate(policies):
        seqs = favourite_action_sequences(n_fast, length, n_actions, p, seed=i)
        env = NeonEnv([task], cfg)
        single_rewards: list[list[float]] = []
        half = n_single // 2
        single_s = replay_single(env, seqs[:half], [(0, 1.0)] * half, single_rewards)
        batch = NeonBatch([task], cfg)
        fast_rewards = []
        t0 = time.perf_counter()
        for k in range(0, n_fast, lockstep):
            chunk = seqs[k : k + lockstep]
            eps = batch.play(replay_batch(chunk), starts=[(0, 1.0)] * len(chunk))
            fast_rewards += [e.rewards for e in eps]
        fast_s = time.perf_counter() - t0
        single_s += replay_single(env, seqs[half:n_single], [(0, 1.0)] * (n_single - half),
                                  single_rewards)  # fmt: skip
        single_eps, fast_eps = n_single / single_s, n_fast / fast_s
        rows[f"favourite_{p:g}" if p > 1 / n_actions else "uniform"] = {
            "p_favourite": p,
            "entropy_nats": _entropy(p, n_actions),
            "single_episodes": n_single,
            "single_episodes_per_second": single_eps,
            "fast_episodes": n_fast,
            "fast_episodes_per_second": fast_eps,
            "fast_over_single": fast_eps / single_eps,
            "nodes_computed": batch.stats["nodes"],
            "nodes_reused": batch.stats["reused"],
            "same_rewards": fast_rewards[:n_single] == single_rewards,
        }
    table = pd.DataFrame(rows).T
    print("\nNEON experience: fast path (NeonBatch) vs one episode at a time (NeonEnv), 1 thread")
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    if not all(r["same_rewards"] for r in rows.values()):
        raise AssertionError("NeonBatch and NeonEnv gave different rewards for the same actions")
    head = rows["uniform"] if "uniform" in rows else next(iter(rows.values()))
    return {
        "neon_episodes_per_second": head["fast_episodes_per_second"],
        "neon_single_episodes_per_second": head["single_episodes_per_second"],
        "neon_batched_over_single": head["fast_over_single"],
        "neon_batched_over_single_details": {
            "threads": torch.get_num_threads(),
            "lockstep": lockstep,
            "episode_length": length,
            "measured": rows,
            "what": "episodes per second of NeonBatch (lean fine-tuning, shared action prefixes "
            "computed once) / of NeonEnv one episode at a time, same network and action "
            "sequences; headline: uniformly random actions",
        },
    }


def measure_pruned_cnns(quick: bool = False) -> dict[str, Any]:
    """The committed PuRL checkpoints (the one each study's ``summary.json`` names): nonzero
    FLOPs, stored size and sparse-kernel latency vs dense."""
    import torchvision


    out: dict[str, Any] = {}
    for stem, name in (("02_resnet50_purl", "resnet50"), ("03_mobilenetv2_purl", "mobilenet_v2")):
        summary = results_root() / "cpu" / stem / "summary.json"
        if not summary.is_file():
            print(f"skip {name}: no {summary} (run the cpu profile of {stem} first)")
            continue
        path = summary.parent / "checkpoints" / Path(json.loads(summary.read_text())["checkpoint"]).name
        if not path.is_file():
            print(f"skip {name}: {summary} names {path.name}, which is missing (rerun {stem})")
            continue
        model = getattr(torchvision.models, name)(num_classes=10).eval()
        model.load_state_dict(load_compact(path))
        x = torch.randn(8 if quick else 128, 3, 32, 32)
        rep = sparsity_report(model, x)
        dense_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        lat_dense = latency(model, x, repeats=3 if quick else 10)
        lat_sparse = latency(to_sparse_inference(model), x, repeats=3 if quick else 10)
        out[f"{name}_flops_nonzero_over_dense"] = rep.flops_nonzero / rep.flops_dense
        out[f"{name}_compact_bytes_over_dense"] = path.stat().st_size / dense_bytes
        out[f"{name}_sparse_latency_over_dense"] = lat_sparse / lat_dense
        out[f"{name}_sparsity_prunable"] = rep.sparsity_prunable
        out[f"{name}_checkpoint"] = path.name
    return out


class _ActionLog(gym.Wrapper):
    """Records the actions of every episode played through it (a real search's action log)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.episodes: list[list[int]] = []

    def reset(self, **kwargs: Any) -> Any:
        self.episodes.append([])
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        self.episodes[-1].append(int(action))
        return self.env.step(action)


def _replay_purl(env: PuRLEnv, seqs: list[list[int]]) -> tuple[float, list[list[float]]]:
    t0 = time.perf_counter()
    rewards = [rollout(env, replay(s)).rewards for s in seqs]
    return time.perf_counter() - t0, rewards


def measure_purl_memo(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, episodes: int,
    search_episodes: int = 0, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Episodes/s of PuRLEnv with the cross-episode prefix memo against without it, on the same
    action sequences (which must give the same rewards, checked): uniformly random actions,
    policies that play their favourite action with probability 0.9, 0.95 and 0.98 at each step
    (:func:`favourite_action_sequences`), and, with ``search_episodes``, the action log of a
    real DQN search on this network. ``limit`` is what prefix reuse can give at most: steps
    played / distinct prefixes (a looked-up step costing nothing); ``share_of_limit`` how much
    of it the memo delivers."""
    cfg = PuRLConfig(target_accuracy=1.0, eval_batch_size=len(x))
    plain = PuRLEnv(model, (x, y), cfg, memo_mb=0)
    n, length = len(plain.action_values), plain.episode_length
    cases = {f"p{p:g}": favourite_action_sequences(episodes, length, n, p, seed)
             for p in (1 / n, 0.9, 0.95, 0.98)}  # fmt: skip
    cases = {("random" if k == f"p{1 / n:g}" else k): v for k, v in cases.items()}
    if search_episodes:
        logged = _ActionLog(PuRLEnv(model, (x, y), cfg))
        dqn_train(logged, DQNConfig(seed=seed, episodes=search_episodes, learning_starts=2 * length,
                                    checkpoint_every=10**9), desc="DQN search (action log)")  # fmt: skip
        cases["search"] = [e for e in logged.episodes if len(e) == length]
    out: dict[str, Any] = {"layers": plain.num_layers, "images": len(x)}
    for name, seqs in cases.items():
        memo = PuRLEnv(model, (x, y), cfg)  # a fresh, empty memo per policy
        t_plain, r_plain = _replay_purl(plain, seqs)
        t_memo, r_memo = _replay_purl(memo, seqs)
        if r_plain != r_memo:
            raise AssertionError(f"the memo changed the rewards ({name}): a bug, please report it")
        distinct = len({tuple(s[:t]) for s in seqs for t in range(1, len(s) + 1)})
        limit = sum(len(s) for s in seqs) / distinct
        ratio = t_plain / t_memo
        out[name] = {"episodes": len(seqs), "episodes_per_second": len(seqs) / t_plain,
                     "episodes_per_second_memo": len(seqs) / t_memo, "ratio": ratio,
                     "limit": limit, "share_of_limit": ratio / limit}  # fmt: skip
    return out


def measure_purl_experience(quick: bool = False) -> dict[str, Any]:
    """:func:`measure_purl_memo` on the 22-layer ResNet-20 of notebook 05 (trained on digits,
    its smoke network; 100 episodes per policy and a 100-episode search) and on ResNet-50 at
    notebook 02's cpu input and reward-subset size (untrained: timing does not depend on the
    weights; 10 episodes per policy, no search: a search costs minutes)."""
    dense = dense_resnet20(ablation_sizes("smoke"))
    x, y = dense.splits.tensors("reward")
    r20 = measure_purl_memo(dense.model, x, y, episodes=5 if quick else 100,
                            search_episodes=5 if quick else 100)  # fmt: skip
    out: dict[str, Any] = {"purl_memo_resnet20": r20,
                           "purl_memo_over_plain_training": r20["search"]["ratio"]}  # fmt: skip
    if not quick:
        cpu = purl_study_sizes("resnet50", "cpu")
        data = load_digits_splits(seed=0, image_size=cpu.image_size, channels=3)
        x, y = data.head({"reward": cpu.reward_subset}).tensors("reward")
        torch.manual_seed(0)
        out["purl_memo_resnet50"] = measure_purl_memo(
            build_resnet50(num_classes=10, small_input=False), x, y, episodes=10
        )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: measure, print a table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run (writes bench_quick.json)")
    parser.add_argument("--repeats", type=int, default=None, help="override the repeats")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: steady timings on a shared machine; 0 = torch's default)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file to merge into")
    parser.add_argument("--purl-only", action="store_true", help="only the PuRL step ratios")
    parser.add_argument(
        "--neon-only", action="store_true", help="only the NEON figures (other keys kept)"
    )
    parser.add_argument(
        "--memo", action="store_true",
        help="also measure PuRL's cross-episode prefix memo (ResNet-20 and ResNet-50, minutes)",
    )
    parser.add_argument(
        "--neon-training", action="store_true",
        help="also replay a notebook-04 agent's training log through both NEON paths (needs 04's "
        "cpu results; rebuilds the agent's networks through the cache: minutes cold)",
    )  # fmt: skip
    parser.add_argument(
        "--compare-full",
        action="store_true",
        help="also measure steps without the prefix cache (full forward per step)",
    )
    args = parser.parse_args(argv)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    sizes = bench_sizes(args.quick)
    if args.repeats is not None:
        sizes = replace(sizes, cases=tuple(replace(c, repeats=args.repeats) for c in sizes.cases))
    if args.purl_only and args.neon_only:
        parser.error("--purl-only and --neon-only exclude each other")
    rows, details = [], {}
    for case in () if args.neon_only else sizes.cases:
        data = load_digits_splits(seed=0, image_size=case.image_size, channels=3)
        x, y = data.head({"reward": case.val_size}).tensors("reward")
        torch.manual_seed(0)
        if case.name == "resnet50":
            model = build_resnet50(num_classes=10, small_input=case.small_input)
        else:
            model = build_small_cnn(num_classes=10, in_channels=3, width=16)
        for cache in [True, False] if args.compare_full else [True]:
            r = measure_step_ratio(model, x, y, case.repeats, sizes.episodes, prefix_cache=cache)
            label = case.name if cache else f"{case.name} (no prefix cache)"
            r = {**asdict(case), **r}
            rows.append({"model": label, **r})
            details[label] = r
    out = args.out or results_root() / ("bench_quick.json" if args.quick else "bench.json")
    values: dict[str, Any] = {}
    if rows:
        table = pd.DataFrame(rows).drop(columns="name")
        print("PuRLEnv step / plain forward pass over the same validation subset (medians)")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        values = {
            "purl_step_over_forward_small_cnn": details["small_cnn"]["ratio"],
            "purl_step_over_forward_resnet50": details["resnet50"]["ratio"],
            "purl_step_over_forward_details": {
                "episodes_per_repeat": sizes.episodes,
                "threads": torch.get_num_threads(),
                "measured": details,
                "what": "median seconds per PuRLEnv step (mean over an episode of random "
                "actions) divided by median seconds of one plain forward pass over the same "
                "subset",
            },
        }
    if args.memo and not args.neon_only:
        values.update(measure_purl_experience(quick=args.quick))
    if not args.purl_only:
        net = _neon_bench_task(args.quick)
        values.update(measure_neon(episodes=3 if args.quick else 10, quick=args.quick, net=net))
        values.update(measure_neon_experience(net, quick=args.quick))
        if args.neon_training:
            values.update(measure_neon_training_log(
                n_single=4 if args.quick else 16, max_episodes=32 if args.quick else None))  # fmt: skip
        if not args.neon_only:
            values.update(measure_pruned_cnns(quick=args.quick))
    ratios = {k: v for k, v in values.items() if isinstance(v, float)}
    print("\nratios measured side by side in this run")
    print(pd.Series(ratios).to_string(float_format=lambda v: f"{v:.4g}"))
    write_bench(values, out)
    print(f"wrote {out}")
    return values


if __name__ == "__main__":
    main()
