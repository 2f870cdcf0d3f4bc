"""Notebook 05, NEON's ablations: passes, warm-up, structural vs mask, changed layers vs the whole
network, each a variant of the NEON environment run over seeds; and NEON's reward on the PuRL MDP.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from pruning_core.config import progress, torch_threads
from pruning_core.data.splits import Splits
from pruning_core.data.tabular import load_tabular
from pruning_core.methods.neon import base_network
from pruning_core.rl.agents.a2c import A2CConfig, ActorCriticAgent
from pruning_core.rl.envs.neon import NeonEnv, NeonEnvConfig, NeonTask
from pruning_core.rl.rollout import rollout
from pruning_core.runs import ArtefactKey, cached
from pruning_core.studies.ablations import AblationSizes, quiet, resume_path
from pruning_core.train.loop import evaluate

__all__ = [
    "NEON_VARIANTS",
    "NeonRunKey",
    "NeonVariant",
    "neon_ablation",
    "run_neon_variant",
]



@dataclass(frozen=True)
class NeonVariant:
    """One NEON configuration: overrides of :class:`NeonEnvConfig` and of the A2C warm-up."""

    name: str
    """Short name; ``default`` is the reference."""
    env: dict[str, Any] = field(default_factory=dict)
    """Overrides of NeonEnvConfig (passes, mode, finetune)."""
    warmup: bool = True
    """Random warm-up episodes (``sizes.neon_warmup``) or none."""
    label: str = ""
    """What the configuration is."""


NEON_VARIANTS: list[NeonVariant] = [
    NeonVariant("default", label="4 passes, warm-up, structural, fine-tune changed layers"),
    NeonVariant("passes_1", env={"passes": 1}, label="1 pass"),
    NeonVariant("no_warmup", warmup=False, label="no warm-up"),
    NeonVariant("mask", env={"mode": "mask"}, label="masking instead of removal"),
    NeonVariant("finetune_all", env={"finetune": "all"}, label="fine-tune the whole network"),
]
"""The NEON configurations; the first is the default."""


def _neon_data(sizes: AblationSizes) -> dict[str, Splits]:
    caps = dict(zip(("train", "reward", "test"), sizes.neon_rows, strict=True))
    return {n: load_tabular(n, 0).splits(caps) for n in sizes.neon_datasets}


def _neon_tasks(sizes: AblationSizes, data: dict[str, Splits]) -> tuple[list[NeonTask], list[Any]]:
    bases = [
        base_network(
            d,
            0,
            sizes.neon_space,
            sizes.neon_base_train,
            0,
            data_key={"ablation": "05", "rows": sizes.neon_rows},
        )  # fmt: skip
        for d in data.values()
    ]
    return [NeonTask.from_base(b, data[b.dataset]) for b in bases], bases


@dataclass(frozen=True)
class NeonRunKey(ArtefactKey):
    """One NEON ablation run: the base networks, env and agent configs, episodes and data."""

    KIND = "05_ablations/neon"
    VERSION = 1
    bases: tuple[str, ...]
    """The base networks' keys."""
    env: NeonEnvConfig
    agent: A2CConfig
    episodes: int
    rows: tuple[int | None, int | None, int | None]
    """Row caps of train / validation / test."""

    @property
    def prefix(self) -> str:
        """Mode, passes and seed."""
        return f"{self.env.mode}-passes{self.env.passes}-seed{self.env.seed}"


def run_neon_variant(
    sizes: AblationSizes,
    data: dict[str, Splits],
    tasks: list[NeonTask],
    base_keys: list[str],
    variant: NeonVariant,
    seed: int,
) -> dict[str, Any]:
    """Train (or load) one NEON configuration at one seed; greedy results on every network."""
    env_cfg = replace(
        NeonEnvConfig(
            ft=sizes.neon_ft, stat_rows=sizes.neon_stat_rows, C_values=(sizes.neon_C,), seed=seed
        ),
        **variant.env,
    )
    agent_cfg = A2CConfig(warmup_episodes=sizes.neon_warmup if variant.warmup else 0, seed=seed)
    path = NeonRunKey(
        tuple(base_keys), env_cfg, agent_cfg, sizes.neon_episodes, sizes.neon_rows
    ).path()

    def build() -> dict[str, Any]:
        with quiet(), torch_threads(1):
            env = NeonEnv(tasks, env_cfg)
            agent = ActorCriticAgent.for_env(env, agent_cfg)
            t0 = time.perf_counter()
            ckpt = resume_path(path)
            log = agent.train(env, sizes.neon_episodes, checkpoint_path=ckpt, checkpoint_every=5)
            seconds = time.perf_counter() - t0
            rows = []
            greedy = partial(agent.act, greedy=True)
            for i, task in enumerate(tasks):
                rollout(env, greedy, seed=seed, options={"task": i, "C": sizes.neon_C})
                rep = env.episode_report()
                d = data[task.meta["dataset"]]
                test0 = evaluate(task.model, d.tensors("test"), batch_size=None)["top1"]
                test1 = evaluate(env.final_model(), d.tensors("test"), batch_size=None)["top1"]
                rows.append(
                    {
                        "dataset": task.meta["dataset"],
                        "compression": rep["compression"],
                        "delta_val_pp": rep["delta_val_pp"],
                        "delta_test_pp": (test1 - test0) * 100,
                        "greedy_return": rep["return"],
                        "widths": "-".join(map(str, rep["widths_orig"]))
                        + " -> "
                        + "-".join(map(str, rep["widths_final"])),
                    }
                )
            for p in (ckpt, ckpt.with_name(ckpt.name + ".sha256")):
                p.unlink(missing_ok=True)
            return {
                "networks": rows,
                "log": log.to_dict("list"),
                "seconds": seconds,
                "seconds_per_episode": seconds / max(sizes.neon_episodes, 1),
            }

    return cached(path, build)


def neon_ablation(sizes: AblationSizes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ablation 6: NEON with 1 vs 4 passes, warm-up or none, removal vs masking, fine-tuning
    the changed layers vs the whole network.

    Returns a per-run table and a per-network table. Per run: the greedy policy's compression
    and accuracy changes averaged over the networks, the share of networks whose validation
    accuracy stayed within C, and ``train_compression`` / ``train_delta_val_pp``: the means over
    the last ``final_fraction`` of the training episodes (the sampled policy, not the greedy one).
    """
    data = _neon_data(sizes)
    with torch_threads(1):
        tasks, bases = _neon_tasks(sizes, data)
    keys = [b.key for b in bases]
    jobs = [(v, s) for v in NEON_VARIANTS for s in sizes.seeds]
    rows, nets = [], []
    for v, seed in progress(jobs, desc="neon", unit="run"):
        res = run_neon_variant(sizes, data, tasks, keys, v, seed)
        per = pd.DataFrame(res["networks"]).assign(variant=v.name, seed=seed)
        nets.append(per)
        log = pd.DataFrame(res["log"])
        last = log.tail(max(1, math.ceil(sizes.final_fraction * len(log))))
        rows.append(
            {
                "ablation": "neon",
                "variant": v.name,
                "label": v.label,
                "seed": seed,
                "compression": float(per["compression"].mean()),
                "log2_compression": float(np.log2(per["compression"]).mean()),
                "delta_val_pp": float(per["delta_val_pp"].mean()),
                "delta_test_pp": float(per["delta_test_pp"].mean()),
                "within_C_share": float((per["delta_val_pp"] >= -sizes.neon_C).mean()),
                "train_compression": float(last["compression"].mean()),
                "train_delta_val_pp": float(last["delta_val_pp"].mean()),
                "seconds_per_episode": res["seconds_per_episode"],
            }
        )
    return pd.DataFrame(rows), pd.concat(nets, ignore_index=True)

