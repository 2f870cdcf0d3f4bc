"""``purl_prune`` as a user meets it: masks that give a usable network in three lines, the stem
and classifier kept dense by default, and bad arguments rejected with the fix named."""

from __future__ import annotations

import copy

import pytest
import torch
from torchvision.models import resnet18

from pruning_core import apply_masks, purl_prune
from pruning_core.config import seeded
from pruning_core.data.images import load_digits_splits
from pruning_core.models.cnn import build_small_cnn
from pruning_core.pruning.layers import prunable_layers
from pruning_core.pruning.masks import Masker
from pruning_core.rl.agents.dqn import DQNConfig
from pruning_core.rl.envs.purl import PuRLConfig
from pruning_core.train.loop import TrainConfig, evaluate, fit

CHANCE = 0.1  # ten digits


@pytest.mark.slow
def test_resnet18_masks_give_a_usable_network_in_three_lines(tmp_path) -> None:
    """The issue: ResNet-18's masks applied with ``Masker.set_masks`` gave chance accuracy
    (stale batch-norm statistics; stem and classifier pruned). Digits at 16x16, trained
    briefly, a 4-episode search (about 20 s idle on 2 cores)."""
    data = load_digits_splits(seed=0, image_size=16)
    with seeded(0):
        model = resnet18(num_classes=10)
    train, test = data.tensors("train"), data.tensors("test")
    fit(model, train, TrainConfig(epochs=3, lr=2e-3, optimizer="adam", weight_decay=0.0, batch_size=64))
    dense_acc = evaluate(model, test)["top1"]
    assert dense_acc > 0.8
    before = {k: v.clone() for k, v in model.state_dict().items()}

    # the documented lines
    masks, search = purl_prune(model, data.tensors("reward"), target_sparsity=0.8, episodes=4,
                               dqn_config=DQNConfig(learning_starts=20), work_dir=tmp_path)  # fmt: skip
    pruned = search.apply(model, train)
    acc = evaluate(pruned, test)["top1"]

    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # untouched
    layers = [la.name for la in prunable_layers(model)]
    assert "conv1" not in masks and "fc" not in masks  # stem and classifier dense, as the studies
    assert set(masks) == set(layers) - {"conv1", "fc"}
    assert search.sparsity > 0.5
    assert acc > dense_acc - 0.15 and acc > 6 * CHANCE
    stale = copy.deepcopy(model)  # what the issue did: masks in, dense batch-norm statistics kept
    Masker(stale).set_masks(masks)
    assert evaluate(stale, test)["top1"] < acc - 0.2
    for name, mask in masks.items():  # the masks are in the returned network
        assert torch.equal(pruned.get_submodule(name).weight != 0, mask)

    # fine-tuning holds the masks (a few steps: the mechanism, not the budget)
    short = TrainConfig(epochs=None, max_steps=4, lr=5e-4, optimizer="adam", weight_decay=0.0, batch_size=64)
    tuned = apply_masks(model, masks, train, finetune=short)
    for name, mask in masks.items():
        assert not tuned.get_submodule(name).weight[~mask].any()
    assert evaluate(tuned, test)["top1"] > 5 * CHANCE


@pytest.fixture(scope="module")
def small_cnn() -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    data = load_digits_splits(seed=0)
    with seeded(0):
        cnn = build_small_cnn(num_classes=10, in_channels=3, width=8)
    fit(cnn, data.tensors("train"), TrainConfig(epochs=2, lr=2e-3, optimizer="adam"))
    return cnn, data.tensors("reward")


@pytest.mark.parametrize("episodes", [0, -3, 2.5, True])
def test_purl_prune_rejects_bad_episodes(small_cnn, episodes: object) -> None:
    cnn, reward = small_cnn
    with pytest.raises(ValueError, match="episodes must be a whole number >= 1"):
        purl_prune(cnn, reward, episodes=episodes)  # type: ignore[arg-type]


def test_purl_prune_checks_exclude(small_cnn) -> None:
    cnn, reward = small_cnn
    with pytest.raises(ValueError, match="exclude names no prunable layer: \\['conv9'\\]"):
        purl_prune(cnn, reward, episodes=1, exclude=["conv9"])
    with pytest.raises(TypeError, match="sequence of layer names"):
        purl_prune(cnn, reward, episodes=1, exclude="fc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give it once"):
        purl_prune(cnn, reward, episodes=1, exclude=["fc"],
                   env_config=PuRLConfig(exclude=("features.0",)))  # fmt: skip


def test_purl_prune_untrained_error_names_its_own_argument(small_cnn, tmp_path) -> None:
    _, reward = small_cnn
    with seeded(1):
        untrained = build_small_cnn(num_classes=10, in_channels=3, width=8)
    with torch.no_grad():  # always predicts the most frequent class of the reward subset
        head = [m for m in untrained.modules() if isinstance(m, torch.nn.Linear)][-1]
        head.weight.zero_()
        head.bias.copy_(torch.eye(10)[int(torch.bincount(reward[1]).argmax())] * 10)
    with pytest.raises(ValueError, match=r"looks untrained.*target_accuracy=\.\.\. .* to purl_prune"):
        purl_prune(untrained, reward, episodes=1)
    # env_config's target accuracy is used (purl_prune no longer overwrites it with None)
    masks, _ = purl_prune(untrained, reward, episodes=1, work_dir=tmp_path,
                          env_config=PuRLConfig(target_accuracy=0.05))  # fmt: skip
    assert masks


def test_default_exclude_is_the_stem_and_the_classifier(small_cnn, tmp_path) -> None:
    cnn, reward = small_cnn
    names = [la.name for la in prunable_layers(cnn, example_input=reward[0][:1])]
    masks, _ = purl_prune(cnn, reward, episodes=1, work_dir=tmp_path / "a")
    assert set(masks) == set(names[1:-1])
    everything, _ = purl_prune(cnn, reward, episodes=1, exclude=(), work_dir=tmp_path / "b")
    assert set(everything) == set(names)
