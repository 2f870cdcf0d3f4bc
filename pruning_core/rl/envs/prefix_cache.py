"""A verified prefix cache for the PuRL environment: activations entering the stage that holds
the next layer to prune are kept, so a step runs only the suffix of the network.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from pruning_core.pruning.layers import PrunableLayer

__all__ = [
    "PrefixCache",
    "sequential_modules",
]


def sequential_modules(model: nn.Module) -> list[nn.Module] | None:
    """A list of modules that, applied in order, compute ``model(x)``; None if none is known.

    Known decompositions: torchvision ``ResNet`` (stem, every block of layer1..layer4, pooling,
    flatten, fc) and ``MobileNetV2`` (every ``features[i]``, pooling, flatten, classifier);
    otherwise the model's children in registration order with ``nn.Sequential`` containers
    expanded (right for ``nn.Sequential`` models and for models whose forward chains their
    children, e.g. ``features`` then ``classifier``). A candidate is only *used* after
    :class:`PrefixCache` has checked that it reproduces ``model(x)`` bit for bit.
    """
    from torchvision.models import MobileNetV2, ResNet

    if isinstance(model, ResNet):
        return [
            model.conv1,
            model.bn1,
            model.relu,
            model.maxpool,
            *model.layer1,
            *model.layer2,
            *model.layer3,
            *model.layer4,
            model.avgpool,
            nn.Flatten(1),
            model.fc,
        ]
    if isinstance(model, MobileNetV2):
        return [
            *model.features,
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(1),
            *_expand(model.classifier),
        ]
    children = list(model.children())
    if not children:
        return None
    return _expand(model) if isinstance(model, nn.Sequential) else _expand_list(children)


def _expand(seq: nn.Module) -> list[nn.Module]:
    return _expand_list(list(seq.children())) if isinstance(seq, nn.Sequential) else [seq]


def _expand_list(mods: list[nn.Module]) -> list[nn.Module]:
    out: list[nn.Module] = []
    for m in mods:
        out.extend(_expand(m))
    return out


class PrefixCache:
    """Evaluate a model stage by stage, reusing the activations of an unchanged prefix.

    The model is cut into *stages*: each stage starts at a module holding a prunable layer and
    runs up to the next such module. If no layer in stages ``< k`` changed since the activations
    entering stage ``k`` were saved, the next evaluation starts there. The caller reports every
    weight change with :meth:`invalidate` (the stage of the changed layer; 0 for "anything may
    have changed": reset, fine-tuning) and names, at each evaluation, the stage whose input it
    will want next (``keep_stage``). Only one set of activations is held at a time.
    """

    def __init__(
        self,
        stages: list[list[nn.Module]],
        inputs: list[torch.Tensor],
        layer_stage: dict[str, int],
    ) -> None:
        self.stages = stages
        self.inputs = inputs
        self.layer_stage = layer_stage
        self.saved_stage = 0
        self.saved: list[torch.Tensor] = inputs
        self.stages_run = 0

    @classmethod
    def build(
        cls,
        model: nn.Module,
        layers: Sequence[PrunableLayer],
        inputs: list[torch.Tensor],
        modules: list[nn.Module] | None = None,
        check_samples: int = 8,
    ) -> PrefixCache | None:
        """Cut ``model`` into stages and check them; None (with a warning) when that fails.

        ``modules`` overrides :func:`sequential_modules`. The check runs a few samples through
        the stages and requires bit-identical logits to ``model(x)``, from every stage's saved
        input, with the saved input left untouched (no in-place op eats it).
        """
        mods = modules if modules is not None else sequential_modules(model)
        if not mods:
            return None
        ids = {id(layer.module): layer.name for layer in layers}
        stages: list[list[nn.Module]] = []
        layer_stage: dict[str, int] = {}
        for m in mods:
            inside = [ids[id(sub)] for sub in m.modules() if id(sub) in ids]
            if inside and stages and _holds_prunable(stages[-1], ids):
                stages.append([])
            if not stages:
                stages.append([])
            stages[-1].append(m)
            for name in inside:
                layer_stage.setdefault(name, len(stages) - 1)
        missing = [layer.name for layer in layers if layer.name not in layer_stage]
        if missing:
            warnings.warn(
                f"prefix cache disabled: layers {missing[:3]} are not in the model's sequential "
                "decomposition; every step runs the full forward pass.",
                stacklevel=3,
            )
            return None
        x = inputs[0][:check_samples]
        try:
            with torch.inference_mode():
                reference = model(x)
                acts = [x]
                a = x
                for stage in stages:
                    a = _run_stage(stage, a)
                    acts.append(a)
                ok = torch.equal(a, reference)
                for k in range(len(stages)):
                    if not ok:
                        break
                    start = acts[k].clone()
                    out = _run_stages(stages[k:], acts[k])
                    ok = torch.equal(out, reference) and torch.equal(start, acts[k])
        except Exception as exc:  # shapes of a wrong decomposition fail inside torch
            ok = False
            why = f"{type(exc).__name__}: {exc}"
        else:
            why = "its output differs from model(x)"
        if not ok:
            warnings.warn(
                f"prefix cache disabled for {type(model).__name__}: the sequential decomposition "
                f"does not reproduce the model ({why}); every step runs the full forward pass. "
                "Pass `stages=` (modules that compute the model in order) to enable it.",
                stacklevel=3,
            )
            return None
        return cls(stages, inputs, layer_stage)

    def invalidate(self, stage: int = 0) -> None:
        """A layer in ``stage`` changed: drop saved activations that depend on it."""
        if stage < self.saved_stage:
            self.saved_stage = 0
            self.saved = self.inputs

    def state(self) -> tuple[int, list[torch.Tensor]]:
        """The saved stage and its activations (read-only tensors: no stage writes in place)."""
        return self.saved_stage, self.saved

    def restore(self, stage: int, saved: list[torch.Tensor]) -> None:
        """Put back a state from :meth:`state` (the weights must be those it was saved with)."""
        self.saved_stage, self.saved = stage, list(saved)

    def forward(self, keep_stage: int | None = None) -> list[torch.Tensor]:
        """Logits per input batch, starting from the saved activations.

        If ``keep_stage`` is at or after the saved stage, the activations entering it are saved
        for the next call.
        """
        start = self.saved_stage
        keep = keep_stage if keep_stage is not None and keep_stage >= start else None
        kept: list[torch.Tensor] = []
        outs = []
        for a in self.saved:
            for k in range(start, len(self.stages)):
                if k == keep:
                    kept.append(a)
                a = _run_stage(self.stages[k], a)
            outs.append(a)
        self.stages_run += len(self.stages) - start
        if keep is not None:
            self.saved_stage, self.saved = keep, kept
        return outs


def _holds_prunable(stage: list[nn.Module], ids: dict[int, str]) -> bool:
    return any(id(sub) in ids for m in stage for sub in m.modules())


def _run_stage(stage: list[nn.Module], a: torch.Tensor) -> torch.Tensor:
    for m in stage:
        a = m(a)
    return a


def _run_stages(stages: list[list[nn.Module]], a: torch.Tensor) -> torch.Tensor:
    for stage in stages:
        a = _run_stage(stage, a)
    return a

