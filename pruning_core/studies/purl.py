"""The PuRL pipeline shared by notebooks 02 (ResNet-50) and 03 (MobileNet-V2).

dense baseline (trained, or loaded from the cache) -> PuRL search (DQN, reward at every step)
-> greedy policy -> masks -> fine-tuning with masks fixed -> test top-1 / top-5; then global and
uniform magnitude pruning at exactly the sparsity PuRL reached, with the same fine-tuning budget.
Everything a notebook shows is returned as a DataFrame and written to its run folder.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
import torch
from torch import nn

from pruning_core.config import by_profile, cache_root, seeded
from pruning_core.data.images import load_digits_splits, load_imagenet
from pruning_core.data.splits import Splits
from pruning_core.methods.purl import SearchResult, purl_prune
from pruning_core.models.cnn import build_model
from pruning_core.pruning.criteria import Masks, global_magnitude_masks, uniform_magnitude_masks
from pruning_core.pruning.export import plain_state_dict, save_compact
from pruning_core.pruning.layers import prunable_layers
from pruning_core.pruning.masks import Masker
from pruning_core.pruning.report import sparsity_report
from pruning_core.rl.agents.dqn import DQNConfig
from pruning_core.rl.envs.purl import PuRLConfig
from pruning_core.runs import (
    ArtefactKey,
    cached,
    save_checkpoint,
    tensors_digest,
    weights_fingerprint,
)
from pruning_core.train.batchnorm import recalibrate_bn, use_batch_statistics
from pruning_core.train.ddp import launch, write_job
from pruning_core.train.loop import TrainConfig, evaluate, fit, get_device

Tensors = tuple[torch.Tensor, torch.Tensor]


Data = Tensors | torch.utils.data.DataLoader


@dataclass(frozen=True)
class PurlStudySizes:
    """Everything that sets the size of a PuRL study; derived from the profile in code."""

    model: str
    """torchvision architecture: ``resnet50`` or ``mobilenet_v2``."""
    dataset: str
    """``digits`` (offline, smoke / cpu) or ``imagenet`` (gpu, from ``DATA_ROOT``)."""
    small_input: bool
    """Adapt the stem for tiny images (see ``models.describe_adaptation``)."""
    image_size: int
    """Input side in pixels (digits are 8x8; larger values upsample them)."""
    reward_subset: int
    """Validation images the reward is measured on (held out of train; never the test split)."""
    dense: TrainConfig
    """Dense training (ignored when pretrained weights are used)."""
    finetune: TrainConfig
    """The one fine-tuning budget every method gets after pruning."""
    search_episodes: int
    """DQN episodes of the PuRL search."""
    target_sparsity: float
    """``S*`` of PuRL's reward."""
    accuracy_slack: float
    """``A* = dense validation accuracy - slack`` (fraction)."""
    seeds: tuple[int, ...]
    """Seeds of the whole pipeline (search, fine-tuning); mean and std are reported over them."""
    operating_points: tuple[float, ...]
    """Sparsities of the accuracy-vs-sparsity curve of the magnitude baselines."""
    exclude: tuple[str, ...] = ()
    """Layers left dense (name patterns), e.g. the first conv."""
    train_limit: int | None = None
    """Use only the first N training images (smoke runs); None: all."""
    pretrained: bool = False
    """Start from torchvision's IMAGENET1K_V1 weights in the local torch cache (gpu)."""
    dqn: dict[str, Any] = field(default_factory=dict)
    """Overrides of the DQN hyperparameters for this study."""


MOBILENET_DENSE: tuple[str, ...] = ("features.0.0", "features.1.conv.0.0", "features.*.conv.1.0")
"""MobileNet-V2 layers left dense: the first conv and the 17 depthwise convs (2% of the weights,
each filter a single 3x3 kernel, so pruning them costs much accuracy and saves little)."""


def purl_study_sizes(model: str, profile: str) -> PurlStudySizes:
    """The sizes of notebook 02 (``resnet50``) or 03 (``mobilenet_v2``) at ``profile``."""
    is_resnet = model == "resnet50"
    dense = by_profile(
        profile,
        smoke=TrainConfig(epochs=1, lr=2e-3, optimizer="adam", weight_decay=0.0, batch_size=64),
        cpu=TrainConfig(epochs=10, lr=2e-3, optimizer="adam", weight_decay=0.0, batch_size=64),
        gpu=TrainConfig(epochs=0),
    )
    finetune = by_profile(
        profile,
        smoke=TrainConfig(epochs=1, lr=5e-4, optimizer="adam", weight_decay=0.0, batch_size=64),
        cpu=TrainConfig(
            epochs=2 if is_resnet else 3, lr=5e-4, optimizer="adam", weight_decay=0.0, batch_size=64
        ),
        gpu=TrainConfig(epochs=10, lr=0.01, batch_size=256, weight_decay=1e-4, label_smoothing=0.1),
    )
    return PurlStudySizes(
        model=model,
        dataset=by_profile(profile, smoke="digits", cpu="digits", gpu="imagenet"),
        small_input=False,
        image_size=by_profile(profile, smoke=32, cpu=32, gpu=224),
        reward_subset=by_profile(profile, smoke=32, cpu=128, gpu=5000),
        dense=dense,
        finetune=finetune,
        search_episodes=by_profile(profile, smoke=2, cpu=25 if is_resnet else 60, gpu=120),
        target_sparsity=0.85 if is_resnet else 0.6,
        exclude=() if is_resnet else MOBILENET_DENSE,
        # an env step costs a forward pass, a Q-update almost nothing: learn more per step
        dqn={"gradient_steps": 4, "learning_starts": 100, "exploration_fraction": 0.4},
        accuracy_slack=by_profile(profile, smoke=0.05, cpu=0.01, gpu=0.01),
        seeds=by_profile(profile, smoke=(0,), cpu=(0, 1, 2), gpu=(0,)),
        operating_points=by_profile(
            profile, smoke=(0.9,), cpu=(0.5, 0.9, 0.95), gpu=(0.7, 0.8, 0.9)
        ),
        pretrained=profile == "gpu",
        train_limit=by_profile(profile, smoke=256, cpu=None, gpu=None),
    )


def build(sizes: PurlStudySizes, num_classes: int) -> nn.Module:
    """The study's torchvision model (unmodified architecture unless ``small_input``)."""
    return build_model(
        sizes.model, num_classes, small_input=sizes.small_input, pretrained=sizes.pretrained
    )


LOADER_WORKERS = 8
"""DataLoader workers for a split read from disk (ImageNet); preloaded tensors need none."""


EVAL_BATCH_SIZE = 256
"""Batch size of the test DataLoader when the test split is read from disk (ImageNet)."""


def load_study_data(sizes: PurlStudySizes, seed: int = 0) -> Splits:
    """Digits (offline; smoke / cpu) or ImageNet from ``DATA_ROOT`` (gpu) as :class:`Splits`.

    ``train`` trains and fine-tunes, ``reward`` (preloaded tensors held out of train) is what the
    agent's reward is measured on, ``test`` is touched only for the reported numbers; there is no
    ``stop`` split (nothing here stops early). ``meta["description"]`` names the data in the
    cache keys and the summary.
    """
    if sizes.dataset == "digits":

        d = load_digits_splits(seed=seed, image_size=sizes.image_size)
        d = d.head({"train": sizes.train_limit or None, "reward": sizes.reward_subset})
        description = (
            f"scikit-learn digits: {d.n('train')} train, {d.n('reward')} reward (validation), "
            f"{d.n('test')} test images, 8x8 upsampled to {sizes.image_size}x{sizes.image_size}"
        )
        return replace(d, meta={**d.meta, "description": description})
    if sizes.dataset == "imagenet":

        splits = load_imagenet(val_size=sizes.reward_subset, seed=seed)
        splits = replace(splits, reward=splits.tensors("reward"))
        description = (
            f"ImageNet from DATA_ROOT: {splits.n('train')} train, {splits.n('reward')} reward, "
            f"{splits.n('test')} test (official val) images"
        )
        return replace(splits, meta={**splits.meta, "description": description})
    raise ValueError(f"unknown dataset {sizes.dataset!r}: use 'digits' or 'imagenet'")


@dataclass(frozen=True)
class DenseCnnKey(ArtefactKey):
    """A PuRL study's dense CNN trained from scratch: what decides its weights."""

    KIND = "dense/purl"
    VERSION = 1
    model: str
    small_input: bool
    image_size: int
    train: TrainConfig
    seed: int
    data: str
    """The data's description (sources and split sizes)."""

    @property
    def prefix(self) -> str:
        """The architecture."""
        return self.model


def _train_feed(data: Splits, cfg: TrainConfig, seed: int) -> Data:
    """The train split as the training loop takes it (a Dataset: a loader shuffled by ``seed``)."""
    return data.feed("train", cfg.batch_size, shuffle=True, seed=seed, num_workers=LOADER_WORKERS)


def dense_model(
    sizes: PurlStudySizes, data: Splits, seed: int = 0, log: Callable[[str], None] = print
) -> tuple[nn.Module, pd.DataFrame]:
    """Train the dense baseline, or load it from the cache (keyed by a hash of its config).

    With ``sizes.pretrained`` (gpu) torchvision's ImageNet weights are the dense model.
    """
    if sizes.pretrained or sizes.dense.epochs == 0:
        return build(sizes, data.num_classes), pd.DataFrame()
    path = DenseCnnKey(
        sizes.model, sizes.small_input, sizes.image_size, sizes.dense, seed,
        data.meta["description"],
    ).path()

    def train_it() -> dict[str, Any]:
        with seeded(seed):
            model = build(sizes, data.num_classes)
        res = fit(
            model, _train_feed(data, sizes.dense, seed), replace(sizes.dense, seed=seed),
            val_data=data.tensors("reward"), device=get_device(), desc=f"dense {sizes.model}",
        )  # fmt: skip
        return {
            "state": {k: v.cpu() for k, v in model.state_dict().items()},
            "history": res.history.to_dict("list"),
        }

    blob = cached(path, train_it, log=log)
    model = build(sizes, data.num_classes)
    model.load_state_dict(blob["state"])
    return model, pd.DataFrame(blob["history"])


def test_metrics(
    model: nn.Module, data: Splits, masker: Masker | None = None, exclude: Sequence[str] = ()
) -> dict[str, Any]:
    """Test top-1 / top-5 and the sparsity report (the numbers a pruning result is reported with).

    The prunable weights are the masker's layers, or those :func:`prunable_layers` keeps with
    ``exclude`` (the layers the study leaves dense), so dense and pruned rows count the same.
    """
    test = data.feed("test", EVAL_BATCH_SIZE, num_workers=LOADER_WORKERS)
    acc = evaluate(model, test, topk=(1, 5))
    layers = masker.layers if masker else None
    rep = sparsity_report(model, data.example("test"), layers=layers, exclude=exclude)
    return {"top1": acc["top1"], "top5": acc["top5"], **rep.as_dict()}


@dataclass
class PrunedResult:
    """One pruned-and-fine-tuned model: metrics before and after fine-tuning, and its state."""

    method: str
    seed: int
    masks: Masks
    one_shot: dict[str, Any]
    final: dict[str, Any]
    layer_sparsity: dict[str, float]
    state: dict[str, torch.Tensor]


def prune_finetune(
    method: str,
    masks: Masks,
    dense: nn.Module,
    sizes: PurlStudySizes,
    data: Splits,
    seed: int,
    finetune: bool = True,
) -> PrunedResult:
    """Apply ``masks`` to a fresh copy of the dense model, fine-tune with masks fixed, measure test."""
    model = build(sizes, data.num_classes)
    model.load_state_dict(dense.state_dict())
    mk = Masker(model, exclude=sizes.exclude)
    mk.set_masks(masks)
    train = _train_feed(data, sizes.finetune, seed)
    recalibrate_bn(model, train)  # stale dense statistics would hide what the masks keep
    one_shot = test_metrics(model, data, mk)
    if finetune and sizes.finetune.epochs > 0:
        cfg = replace(sizes.finetune, seed=seed)
        if sizes.dataset == "imagenet" and torch.cuda.device_count() > 1:

            job = write_job(
                cache_root() / "ddp" / f"{sizes.model}-{method}-seed{seed}.pt", sizes.model,
                data.num_classes, dense.state_dict(), masks, cfg,
                {"dataset": "imagenet", "val_size": sizes.reward_subset},
            )  # fmt: skip
            model.load_state_dict(launch(job))
            mk.apply()
        else:
            fit(model, train, cfg, masker=mk, device=get_device(), desc=f"fine-tune {method}")
    final = test_metrics(model, data, mk) if finetune else one_shot
    state = plain_state_dict(model) if method == "PuRL" else {}  # only PuRL's is exported
    return PrunedResult(method, seed, masks, one_shot, final, mk.layer_sparsity(), state)


def magnitude_masks(
    method: str, dense: nn.Module, sizes: PurlStudySizes, sparsity: float
) -> Masks:
    """Masks of a magnitude baseline (``gmp`` or ``uniform``) at exactly ``sparsity``."""
    layers = prunable_layers(dense, exclude=sizes.exclude)
    if method == "gmp":
        return global_magnitude_masks(layers, sparsity, min_keep=0.01)
    if method == "uniform":
        return uniform_magnitude_masks(layers, sparsity)
    raise ValueError(f"unknown baseline {method!r}: use 'gmp' or 'uniform'")


def result_row(
    r: PrunedResult, dense: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One row of the results table: dense vs pruned, before and after fine-tuning."""
    f = r.final
    row = {
        "method": r.method,
        "seed": r.seed,
        "dense_top1": dense["top1"],
        "dense_top5": dense["top5"],
        "one_shot_top1": r.one_shot["top1"],
        "top1": f["top1"],
        "top5": f["top5"],
        "delta_top1": f["top1"] - dense["top1"],
        "delta_top5": f["top5"] - dense["top5"],
        "sparsity_prunable": f["sparsity_prunable"],
        "sparsity_total": f["sparsity_total"],
        "params_total": f["params_total"],
        "params_nonzero": f["params_nonzero"],
        "flops_dense": f["flops_dense"],
        "flops_nonzero": f["flops_nonzero"],
    }
    row.update(extra or {})
    return row


def reward_accuracy(model: nn.Module, data: Splits) -> float:
    """Accuracy on the reward subset as the environment measures it (batch-norm batch statistics)."""

    m = use_batch_statistics(copy.deepcopy(model))
    return evaluate(m, data.tensors("reward"), batch_size=data.n("reward"))["top1"]


def purl_search(
    sizes: PurlStudySizes,
    dense: nn.Module,
    reward_data: Tensors,
    seed: int,
    target_accuracy: float,
    target_sparsity: float | None = None,
) -> SearchResult:
    """The study's PuRL search: :func:`~pruning_core.methods.purl.purl_prune` at its sizes."""
    _, result = purl_prune(
        dense,
        reward_data,
        target_sparsity=sizes.target_sparsity if target_sparsity is None else target_sparsity,
        target_accuracy=target_accuracy,
        episodes=sizes.search_episodes,
        seed=seed,
        env_config=PuRLConfig(exclude=sizes.exclude),
        dqn_config=DQNConfig(**sizes.dqn),
        desc=f"PuRL search {sizes.model} seed {seed}",
    )
    return result


@dataclass(frozen=True)
class FinetuneKey(ArtefactKey):
    """One pruned-and-fine-tuned model (:class:`PrunedResult`): masks, fine-tuning, dense model."""

    KIND = "purl_finetune"
    VERSION = 1
    method: str
    masks: str
    """SHA-256 digest of the masks."""
    finetune: TrainConfig | None
    """The fine-tuning config; None: not fine-tuned (one-shot)."""
    seed: int
    model: str
    data: str
    """The data's description."""
    dense: float
    """Fingerprint of the dense weights the masks are applied to."""

    @property
    def prefix(self) -> str:
        """Architecture and method."""
        return f"{self.model}-{self.method}"


def cached_prune_finetune(
    method: str,
    masks: Masks,
    dense: nn.Module,
    sizes: PurlStudySizes,
    data: Splits,
    seed: int,
    finetune: bool = True,
) -> PrunedResult:
    """:func:`prune_finetune`, cached by masks, fine-tuning config and data (a rerun resumes)."""
    path = FinetuneKey(
        method, tensors_digest(masks), sizes.finetune if finetune else None, seed, sizes.model,
        data.meta["description"], weights_fingerprint(dense),
    ).path()  # fmt: skip
    blob = cached(
        path, lambda: prune_finetune(method, masks, dense, sizes, data, seed, finetune).__dict__
    )
    return PrunedResult(**blob)


@dataclass
class StudyOutputs:
    """Everything a PuRL notebook reports, as tables (each also written to the run folder)."""

    table: pd.DataFrame
    """One row per method and seed: dense vs pruned top-1 / top-5, sparsity, params, FLOPs."""
    summary_table: pd.DataFrame
    """Mean and standard deviation over seeds per method."""
    per_layer: pd.DataFrame
    """Per-layer sparsity of every method (seed of the first search)."""
    search_log: pd.DataFrame
    """Per-episode return, sparsity and accuracy of every search."""
    curve: pd.DataFrame
    """Accuracy against sparsity of the three methods over several operating points."""
    policy: pd.DataFrame
    """The greedy policy of the first search: one row per layer with its alpha."""
    summary: dict[str, Any]
    """The headline numbers (also in ``summary.json``)."""


def run_study(
    sizes: PurlStudySizes,
    data: Splits,
    dense: nn.Module,
    run: Any,
    log: Callable[[str], None] = print,
) -> StudyOutputs:
    """PuRL search per seed, then PuRL / GMP / uniform at PuRL's sparsity, then the curves.

    Writes every table, the pruned checkpoint (a plain state_dict, zeros in place) and
    ``summary.json`` into ``run`` (a :class:`pruning_core.runs.RunDir`).
    """

    dense_metrics = test_metrics(dense, data, exclude=sizes.exclude)
    target_acc = reward_accuracy(dense, data) - sizes.accuracy_slack
    rows: list[dict[str, Any]] = []
    logs, layer_frames, curve_rows = [], [], []
    policy = pd.DataFrame()
    checkpoint = None
    for i, seed in enumerate(sizes.seeds):
        search = purl_search(sizes, dense, data.tensors("reward"), seed, target_acc)
        logs.append(search.log.assign(seed=seed))
        extra = {"search_episodes": search.episodes, "search_seconds": search.seconds,
                 "finetune_epochs": sizes.finetune.epochs}  # fmt: skip
        purl = cached_prune_finetune("PuRL", search.masks, dense, sizes, data, seed)
        rows.append(result_row(purl, dense_metrics, extra))
        s = purl.final["sparsity_prunable"]
        results = {"PuRL": purl}
        for method in ("GMP", "uniform"):
            masks = magnitude_masks(method.lower(), dense, sizes, s)
            results[method] = cached_prune_finetune(method, masks, dense, sizes, data, seed)
            rows.append(
                result_row(
                    results[method], dense_metrics, {"finetune_epochs": sizes.finetune.epochs}
                )
            )
        if i == 0:
            policy = search.policy
            for method, r in results.items():
                layer_frames.append(
                    pd.DataFrame({"layer": list(r.layer_sparsity), "sparsity": list(r.layer_sparsity.values())})
                    .assign(method=method, position=range(len(r.layer_sparsity)))
                )  # fmt: skip
            checkpoint = run.file(f"checkpoints/{sizes.model}_purl_seed{seed}.pt")

            save_checkpoint(checkpoint, purl.state)
            sizes_bytes = save_compact(
                purl.state, run.file(f"checkpoints/{sizes.model}_purl_seed{seed}.compact.pt")
            )
        for method, r in results.items():
            curve_rows.append({"method": method, "seed": seed, "target": r.final["sparsity_prunable"],
                               "sparsity": r.final["sparsity_prunable"], "one_shot_top1": r.one_shot["top1"],
                               "top1": r.final["top1"]})  # fmt: skip
    # operating points of the magnitude baselines, and one-shot uniform at 90% (no fine-tuning)
    seed0 = sizes.seeds[0]
    for sp in sizes.operating_points:
        for method in ("GMP", "uniform"):
            r = cached_prune_finetune(
                method, magnitude_masks(method.lower(), dense, sizes, sp), dense, sizes, data, seed0
            )
            curve_rows.append({"method": method, "seed": seed0, "target": sp, "sparsity": r.final["sparsity_prunable"],
                               "one_shot_top1": r.one_shot["top1"], "top1": r.final["top1"]})  # fmt: skip
    uni90 = cached_prune_finetune(
        "uniform",
        magnitude_masks("uniform", dense, sizes, 0.9),
        dense,
        sizes,
        data,
        seed0,
        finetune=False,
    )
    table = pd.DataFrame(rows)
    agg = (
        table.groupby("method", sort=False)[["top1", "top5", "delta_top1", "one_shot_top1", "sparsity_prunable", "sparsity_total"]]
        .agg(["mean", "std"])
    )  # fmt: skip
    agg.columns = [f"{a}_{b}" for a, b in agg.columns]
    summary_table = agg.reset_index()
    search_log = pd.concat(logs, ignore_index=True)
    curve = pd.DataFrame(curve_rows)
    per_layer = pd.concat(layer_frames, ignore_index=True)
    run.write_table("results", table)
    run.write_table("results_mean_std", summary_table)
    run.write_table("per_layer_sparsity", per_layer, markdown=False)
    run.write_table("search_log", search_log, markdown=False)
    run.write_table("accuracy_vs_sparsity", curve)
    run.write_table("greedy_policy", policy, markdown=False)

    def mean(method: str, col: str) -> float:
        return float(table.loc[table["method"] == method, col].mean())

    def std(method: str, col: str) -> float:
        v = table.loc[table["method"] == method, col]
        return float(v.std()) if len(v) > 1 else 0.0

    purl_rows = table[table["method"] == "PuRL"]
    summary = {
        "model": sizes.model,
        "data": data.meta["description"],
        "seeds": list(sizes.seeds),
        "dense_top1": dense_metrics["top1"],
        "dense_top5": dense_metrics["top5"],
        "purl_top1": mean("PuRL", "top1"),
        "purl_top1_std": std("PuRL", "top1"),
        "purl_top5": mean("PuRL", "top5"),
        "purl_delta_top1": mean("PuRL", "delta_top1"),
        "purl_one_shot_top1": mean("PuRL", "one_shot_top1"),
        "purl_sparsity_prunable": mean("PuRL", "sparsity_prunable"),
        "purl_sparsity_prunable_std": std("PuRL", "sparsity_prunable"),
        "purl_sparsity_total": mean("PuRL", "sparsity_total"),
        "gmp_top1": mean("GMP", "top1"),
        "gmp_top1_std": std("GMP", "top1"),
        "uniform_top1": mean("uniform", "top1"),
        "uniform_top1_std": std("uniform", "top1"),
        "uniform90_one_shot_top1": uni90.one_shot["top1"],
        "search_episodes": int(purl_rows["search_episodes"].iloc[0]),
        "search_seconds": float(purl_rows["search_seconds"].mean()),
        "finetune_epochs": sizes.finetune.epochs,
        "params_total": int(purl_rows["params_total"].iloc[0]),
        "purl_params_nonzero": float(purl_rows["params_nonzero"].mean()),
        "flops_dense": int(purl_rows["flops_dense"].iloc[0]),
        "purl_flops_nonzero": float(purl_rows["flops_nonzero"].mean()),
        "checkpoint": str(checkpoint.relative_to(run.path.parent.parent.parent))
        if checkpoint
        else None,
        "checkpoint_bytes_dense": sizes_bytes["dense"],
        "checkpoint_bytes_compact": sizes_bytes["compact"],
    }
    run.summary(**summary)
    return StudyOutputs(table, summary_table, per_layer, search_log, curve, policy, summary)

