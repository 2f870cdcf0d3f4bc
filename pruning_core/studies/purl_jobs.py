"""Every method of the PuRL study on every seed and target (notebooks 02 and 03), as jobs.

For every seed and every PuRL target sparsity one *job* runs (:func:`study_job`): PuRL's search
and fine-tuning, then one-shot global and uniform magnitude pruning and gradual magnitude
pruning at the sparsity PuRL reached; at the headline target also random search with PuRL's
number of network evaluations, its chosen policy brought to PuRL's sparsity by one scale of its
per-layer amounts (:func:`~pruning_core.methods.purl_baselines.scale_to_sparsity`). A second job
per seed (``part="controls"``) fine-tunes the dense control and the best uniform-alpha policy,
which do not depend on PuRL's result.

Jobs run in separate processes with one torch thread each (:func:`pruning_core.config.run_jobs`),
so the numbers do not depend on the machine's thread count, and every search and fine-tuning is
cached on disk, so an interrupted run resumes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd
from torch import nn

from pruning_core.config import WORKER_THREADS, default_workers, run_jobs
from pruning_core.data.splits import Splits
from pruning_core.devices import to_cpu
from pruning_core.methods.purl import purl_prune
from pruning_core.methods.purl_baselines import (
    best_uniform_alpha,
    layer_amounts,
    one_shot_masks,
    random_search,
    scale_to_sparsity,
)
from pruning_core.pruning.export import save_compact
from pruning_core.pruning.layers import prunable_layers
from pruning_core.rl.agents.dqn import DQNConfig
from pruning_core.rl.envs.purl import PuRLConfig
from pruning_core.runs import ArtefactKey, cached, save_checkpoint, weights_fingerprint
from pruning_core.studies.purl import (
    CONTROL,
    METHODS,
    UNIFORM_ALPHA,
    PrunedResult,
    PurlStudySizes,
    _cache_model,
    cached_prune_finetune,
    dense_model,
    load_study_data,
    reward_accuracy,
    study_device,
    test_metrics,
)

__all__ = ["StudyJob", "budget_hours", "protocol_table", "run_study", "search_purl", "study_job", "work_units"]


@dataclass(frozen=True)
class RandomSearchKey(ArtefactKey):
    """One random search (:class:`~pruning_core.methods.purl_baselines.RandomSearchResult`)."""

    KIND = "purl_random_search"
    VERSION = 1
    model: str
    env: PuRLConfig
    episodes: int
    seed: int
    n: int
    dense: float

    @property
    def prefix(self) -> str:
        """Architecture and seed."""
        return f"{self.model}-seed{self.seed}"


@dataclass(frozen=True)
class StudyJob:
    """One seed at one target, one part of the methods.

    ``part="purl"``: PuRL's search and fine-tuning, then the magnitude baselines at the sparsity
    PuRL reached (at the headline target random search too, brought to that sparsity).
    ``part="controls"`` (headline target only): the fine-tuned dense control and the best
    uniform-alpha policy, which do not depend on PuRL's result, so they run beside it in another
    process (smaller jobs keep both cores busy to the end).
    """

    sizes: PurlStudySizes
    seed: int
    target: float
    keep_state: bool = False
    """Return PuRL's pruned weights (the exported checkpoint)."""
    part: str = "purl"


@dataclass(frozen=True)
class DeviceSearchKey(ArtefactKey):
    """The folder of one PuRL search run off the CPU (the CPU's folder is purl_prune's own):
    a GPU's search never resumes from, nor stands in for, a CPU's."""

    KIND = "purl_search_device"
    VERSION = 1
    SUFFIX = ""
    model: str
    env: PuRLConfig
    dqn: DQNConfig
    episodes: int
    seed: int
    target: float
    target_accuracy: float
    n: int
    dense: float

    @property
    def prefix(self) -> str:
        """Architecture and seed."""
        return f"{self.model}-seed{self.seed}"


def search_purl(
    dense: nn.Module, sizes: PurlStudySizes, data: Splits, seed: int, target: float, a_star: float
) -> Any:
    """PuRL's search for one (seed, target) on ``sizes.device``: the environment prunes a copy of
    ``dense`` there and measures its reward there (only the DQN's small network stays on the
    CPU); returns :func:`~pruning_core.methods.purl.purl_prune`'s result, masks on the CPU."""
    dev = study_device(sizes)
    model = copy.deepcopy(dense).to(dev)
    env_cfg = PuRLConfig(exclude=sizes.dense_layers)
    dqn = DQNConfig(**sizes.dqn)
    work_dir = None
    if dev.type != "cpu":
        work_dir = DeviceSearchKey(_cache_model(sizes), env_cfg, dqn, sizes.search_episodes, seed,
                                   target, a_star, data.n("reward"), weights_fingerprint(dense)).path()  # fmt: skip
    _, search = purl_prune(
        model, data.tensors("reward"), target_sparsity=target, target_accuracy=a_star,
        episodes=sizes.search_episodes, seed=seed, env_config=env_cfg, dqn_config=dqn,
        work_dir=work_dir, desc=f"PuRL {sizes.model} S*={target} seed {seed}",
    )  # fmt: skip
    search.masks = to_cpu(search.masks)
    return search


def _random_search(sizes: PurlStudySizes, on_device: nn.Module, dense: nn.Module, data: Splits,
                   seed: int, target: float, a_star: float) -> dict[str, Any]:  # fmt: skip
    """Random search with PuRL's evaluations at ``target`` (cached)."""
    env_cfg = PuRLConfig(exclude=sizes.dense_layers)
    key = RandomSearchKey(_cache_model(sizes), replace(env_cfg, target_sparsity=target, target_accuracy=a_star),
                          sizes.search_episodes, seed, sizes.reward_subset, weights_fingerprint(dense))  # fmt: skip
    def build() -> dict[str, Any]:
        out = asdict(random_search(
            on_device, data.tensors("reward"), target, a_star, sizes.search_episodes, seed, env_cfg,
            desc=f"random search {sizes.model} S*={target} seed {seed}",
        ))  # fmt: skip
        return {**out, "log": out["log"].to_dict("list")}  # plain data: loads with weights_only

    blob = cached(key.path(), build)
    return {**blob, "log": pd.DataFrame(blob["log"])}


def study_job(job: StudyJob) -> dict[str, Any]:
    """Run one :class:`StudyJob` (in a worker process); returns its rows, logs and layer sparsity,
    every tensor on the CPU (a CUDA tensor sent to the parent would point into this process's
    GPU memory, gone once the pool ends it)."""
    if job.part not in ("purl", "controls"):
        raise ValueError(f"unknown StudyJob part {job.part!r}: use 'purl' or 'controls'")
    sizes, seed, target = job.sizes, job.seed, job.target
    data = load_study_data(sizes)
    dense, _ = dense_model(sizes, data, log=lambda _m: None)
    on_device = copy.deepcopy(dense).to(study_device(sizes))  # the searches run on the device
    a_star = reward_accuracy(on_device, data) - sizes.accuracy_slack
    layers = prunable_layers(dense, exclude=sizes.dense_layers)
    results: dict[str, PrunedResult] = {}
    extra: dict[str, dict[str, Any]] = {}
    logs: list[pd.DataFrame] = []
    policy = None
    if job.part == "purl":
        search = search_purl(dense, sizes, data, seed, target, a_star)
        results["PuRL"] = cached_prune_finetune("PuRL", search.masks, dense, sizes, data, seed, job.keep_state)
        extra["PuRL"] = {"search_episodes": search.episodes, "search_seconds": search.seconds,
                         "reward_top1_search": search.reward_accuracy,
                         "reward_sparsity_search": search.sparsity}  # fmt: skip
        s = results["PuRL"].final["sparsity_prunable"]
        for method in ("global", "uniform"):
            results[f"{method} one-shot"] = cached_prune_finetune(
                f"{method} one-shot", one_shot_masks(method, layers, s), dense, sizes, data, seed
            )
        results["gradual (cubic)"] = cached_prune_finetune("gradual (cubic)", float(s), dense, sizes, data, seed)
        logs.append(search.log.assign(method="PuRL"))
        policy = search.policy.assign(seed=seed, target=target)
        if target == sizes.headline_target:
            rs = _random_search(sizes, on_device, dense, data, seed, target, a_star)
            masks, scale, _ = scale_to_sparsity(layers, layer_amounts(rs["masks"]), s)
            results["random search"] = cached_prune_finetune("random search", masks, dense, sizes, data, seed)
            extra["random search"] = {"search_episodes": rs["episodes"], "search_seconds": rs["seconds"],
                                      "reward_top1_search": rs["reward_accuracy"],
                                      "reward_sparsity_search": rs["sparsity"], "scale": scale}  # fmt: skip
            logs.append(rs["log"].assign(method="random search"))
    else:
        results[CONTROL] = cached_prune_finetune(CONTROL, {}, dense, sizes, data, seed)
        cfg = PuRLConfig(exclude=sizes.dense_layers, target_sparsity=target, target_accuracy=a_star)
        best, masks = best_uniform_alpha(on_device, data.tensors("reward"), cfg)
        results[UNIFORM_ALPHA] = cached_prune_finetune(UNIFORM_ALPHA, masks, dense, sizes, data, seed)
        extra[UNIFORM_ALPHA] = {"alpha": best["alpha"], "reward_top1_search": best["accuracy"],
                                "reward_sparsity_search": best["sparsity"]}  # fmt: skip
    rows, per_layer = [], []
    for method, r in results.items():
        f, o = r.final, r.one_shot
        rows.append({
            "method": method, "seed": seed, "target": target, "a_star": a_star,
            "sparsity_prunable": f["sparsity_prunable"], "sparsity_total": f["sparsity_total"],
            "top1": f["top1"], "top5": f["top5"], "stop_top1": f["stop_top1"],
            "one_shot_stop_top1": o["stop_top1"], "finetune_epochs": r.epochs, "finetune_seconds": r.seconds,
            "params_total": f["params_total"], "params_nonzero": f["params_nonzero"],
            "flops_dense": f["flops_dense"], "flops_nonzero": f["flops_nonzero"],
            **extra.get(method, {}),
        })  # fmt: skip
        per_layer += [{"method": method, "seed": seed, "target": target, "position": i, "layer": k,
                       "sparsity": v} for i, (k, v) in enumerate(r.layer_sparsity.items())]  # fmt: skip
    log = pd.concat(logs, ignore_index=True).assign(seed=seed, target=target) if logs else None
    return to_cpu({"rows": rows, "per_layer": per_layer, "log": log, "policy": policy,
                   "state": results["PuRL"].state if job.keep_state else None})  # fmt: skip


def protocol_table(sizes: PurlStudySizes, data: Splits) -> pd.DataFrame:
    """The protocol every method follows, one row per item (the notebook shows it)."""
    ft, dn = sizes.finetune, sizes.dense
    rows = [
        ("data", data.meta["description"]),
        ("network", f"torchvision {sizes.model}, unmodified, {data.num_classes} classes"
                    + (" (ImageNet weights)" if sizes.pretrained else "")),
        ("dense network", "pretrained" if sizes.pretrained else
         f"one network (seed {sizes.dense_seed}) trained from scratch: {dn.optimizer}, lr {dn.lr}, "
         f"batch {dn.batch_size}, at most {dn.epochs} epochs, early stopping on stop "
         f"(patience {dn.patience}), best weights kept"),
        ("layers kept dense", ", ".join(sizes.dense_layers) + " (every method)"),
        ("control", f"'{CONTROL}': the dense network with the same fine-tuning and seeds, at "
                    f"S* = {sizes.headline_target} (what the extra training alone adds)"),
        ("methods", ", ".join(METHODS)),
        ("PuRL", f"DQN, {sizes.search_episodes} episodes, reward on the reward split "
                 f"({sizes.reward_subset} images, one image = {100 / sizes.reward_subset:.2f} points) at "
                 f"every step, A* = dense reward accuracy - {sizes.accuracy_slack:.0%} "
                 f"({sizes.accuracy_slack * sizes.reward_subset:.1f} images), S* in {list(sizes.targets)}"),
        ("one-shot baselines", "global (min 1% kept per layer) or uniform magnitude masks at the "
                               "sparsity PuRL reached (same seed, same target)"),
        ("gradual baseline", f"global magnitude (Zhu & Gupta), cubic schedule, a mask update every "
                             f"{sizes.gradual_every} steps over the first {sizes.gradual_ramp:.0%} of "
                             f"the fine-tuning steps, then recovery at the final sparsity, inside the "
                             f"same budget; early stopping judges only the recovery"),
        ("random search", f"{sizes.search_episodes} uniformly random episodes through PuRL's MDP "
                          f"(same network evaluations), best PuRL return on the reward split chosen, "
                          f"then its per-layer amounts scaled by one factor (bisection) to PuRL's "
                          f"reached sparsity; at S* = {sizes.headline_target} only"),
        (UNIFORM_ALPHA, f"one alpha for every layer (PuRL's grid of 23), chosen on the reward split "
                        f"by PuRL's final reward (ties: higher accuracy), at S* = "
                        f"{sizes.headline_target}; at its own sparsity (labelled)"),
        ("fine-tuning", f"same for every method: batch-norm recalibrated on train (one-shot masks), "
                        f"masks held, {ft.optimizer} lr {ft.lr}, batch {ft.batch_size}, at most "
                        f"{ft.epochs} epochs, early stopping on stop top-1 (patience {ft.patience}), "
                        f"best weights kept, the start a candidate (never ends below it on stop)"),
        ("selection", "reward split: PuRL's reward and random search's choice; stop split: early "
                      "stopping; test: reported numbers only"),
        ("seeds", f"{list(sizes.seeds)}: search, masks, data order and fine-tuning; every method on "
                  f"every seed (paired)"),
        ("threads", "each (seed, target) job in its own process with 1 torch thread (PuRL with "
                    "its baselines and random search; the control and the best uniform alpha in "
                    "a second job)"),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["item", "protocol"])


def work_units(sizes: PurlStudySizes, n_train: int, n_layers: int) -> dict[str, int]:
    """The most work the study can do (no early stopping): dense-training and fine-tuning
    optimiser steps, fine-tunings and environment steps (PuRL's and random search's, one per
    prunable layer and episode), for ``n_train`` training images and ``n_layers`` prunable
    layers. Its time budget is these counts times the measured cost of each."""
    jobs, controls = len(sizes.seeds) * len(sizes.targets), len(sizes.seeds)
    # PuRL, global, uniform, gradual per job; random search, control, best uniform alpha per seed
    finetunes = 4 * jobs + 3 * controls
    per_pass = math.ceil(n_train / sizes.finetune.batch_size)
    dense = 0 if sizes.pretrained else (sizes.dense.epochs or 0) * math.ceil(n_train / sizes.dense.batch_size)
    return {
        "dense_steps": dense,
        "finetunes": finetunes,
        "finetune_steps": finetunes * (sizes.finetune.epochs or 0) * per_pass,
        "env_steps": (jobs + controls) * sizes.search_episodes * n_layers,
    }


def budget_hours(work: Mapping[str, int], step_seconds: float, env_step_seconds: float,
                 parallel: float = 1.0) -> float:  # fmt: skip
    """Hours of :func:`work_units` at the given cost of one optimiser step and one environment
    step, ``parallel`` jobs' worth of throughput at once (1: one job at a time)."""
    steps = work["dense_steps"] + work["finetune_steps"]
    return (steps * step_seconds + work["env_steps"] * env_step_seconds) / parallel / 3600


def run_study(sizes: PurlStudySizes, data: Splits, dense: nn.Module, run: Any) -> dict[str, Any]:
    """Every job of the study (in parallel processes), then the checkpoint of the first PuRL run.

    Returns the raw outputs as DataFrames (``rows``, ``per_layer``, ``log``, ``policy``) and the
    paths of the exported checkpoint; :mod:`.purl_report` turns them into tables and a summary.
    """
    first = (sizes.seeds[0], sizes.headline_target)
    jobs = [StudyJob(sizes, seed, t, keep_state=(seed, t) == first)
            for seed in sizes.seeds for t in sizes.targets]  # fmt: skip
    jobs += [StudyJob(sizes, seed, sizes.headline_target, part="controls") for seed in sizes.seeds]
    workers = default_workers() if sizes.workers is None else sizes.workers
    run.record(execution={
        "jobs": len(jobs), "workers": workers, "torch_threads_per_job": WORKER_THREADS,
        "device": sizes.device,
        "how": "each (seed, target, part) job in a spawned process with one torch thread "
               "(pruning_core.config.run_jobs); workers=0 runs them in this process, one thread",
    })  # fmt: skip
    # the larger PuRL parts go first (no worker idles while one finishes alone); the outputs are
    # then read back in (seed, target) order, each PuRL part before its controls
    outs = run_jobs(study_job, jobs, workers=workers, desc=f"{sizes.model} jobs")
    order = sorted(range(len(jobs)), key=lambda i: (sizes.seeds.index(jobs[i].seed),
                                                     sizes.targets.index(jobs[i].target), jobs[i].part != "purl"))  # fmt: skip
    outs = [outs[i] for i in order]
    frames = {k: pd.concat([pd.DataFrame(o[k]) if k in ("rows", "per_layer") else o[k] for o in outs
                            if o[k] is not None], ignore_index=True)
              for k in ("rows", "per_layer", "log", "policy")}  # fmt: skip
    state = next(o["state"] for o in outs if o["state"] is not None)
    stem = f"{sizes.model}_purl_seed{first[0]}_target{first[1]}"
    save_checkpoint(run.file(f"checkpoints/{stem}.pt"), state)
    compact = run.file(f"checkpoints/{stem}.compact.pt")
    frames["checkpoint_bytes"] = save_compact(state, compact)
    frames["checkpoint"] = compact
    on_device = copy.deepcopy(dense).to(study_device(sizes))
    frames["dense_metrics"] = test_metrics(on_device, data, exclude=sizes.dense_layers)
    frames["dense_reward_top1"] = reward_accuracy(on_device, data)
    frames["reward_rows"] = data.n("reward")
    frames["workers"] = workers
    frames["description"] = data.meta["description"]
    return frames
