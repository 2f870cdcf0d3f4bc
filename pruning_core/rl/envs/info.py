"""The one ``info`` schema both environments speak, and their shared text / image rendering.

Every ``reset()`` and ``step()`` of :class:`~pruning_core.rl.envs.purl.PuRLEnv` and
:class:`~pruning_core.rl.envs.neon.NeonEnv` returns an ``info`` dict with at least these keys,
so one logging callback serves both:

============== ===========================================================================
key            meaning
============== ===========================================================================
``step``       steps taken in this episode (0 after ``reset``)
``layer``      the layer this step acted on (after ``reset``: the first one to visit)
``sparsity``   share of the prunable parameters removed so far, in [0, 1) (PuRL: zero
               weights of the prunable layers; NEON: parameters removed with the neurons)
``compression`` original / remaining parameter count of those layers (1 after ``reset``)
``accuracy``   accuracy on the reward split now (a fraction; the dense value after ``reset``)
``reward``     this step's reward (0 after ``reset``)
============== ===========================================================================

Each environment adds keys of its own (PuRL: ``layer_sparsity``, ``action_value``,
``dense_accuracy``; NEON: ``task``, ``C``, ``params``, ``keep``, ``undone``, ``delta_val_pp``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["INFO_KEYS", "RENDER_MODES", "check_render_mode", "make_info", "render_bars"]

INFO_KEYS: tuple[str, ...] = ("step", "layer", "sparsity", "compression", "accuracy", "reward")
"""The keys every ``info`` of both environments holds."""

RENDER_MODES: tuple[str, ...] = ("ansi", "rgb_array")
"""``ansi``: a text table of the layers; ``rgb_array``: the same as a bar chart image."""


def make_info(
    step: int,
    layer: Any,
    sparsity: float,
    compression: float,
    accuracy: float,
    reward: float,
    **extra: Any,
) -> dict[str, Any]:
    """An ``info`` dict in the shared schema (:data:`INFO_KEYS` first, then ``extra``)."""
    return {
        "step": int(step),
        "layer": layer,
        "sparsity": float(sparsity),
        "compression": float(compression),
        "accuracy": float(accuracy),
        "reward": float(reward),
        **extra,
    }


def check_render_mode(env_name: str, render_mode: str | None) -> str | None:
    """``render_mode`` if it is None or one of :data:`RENDER_MODES`; else a clear ValueError."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(
            f"{env_name} renders {RENDER_MODES} (or nothing: render_mode=None), "
            f"got render_mode={render_mode!r}."
        )
    return render_mode


def render_bars(
    mode: str | None, title: str, names: Sequence[str], values: Sequence[float], label: str
) -> str | np.ndarray | None:
    """Per-layer ``values`` in [0, 1] as text (``ansi``) or an RGB image (``rgb_array``)."""
    if mode is None:
        return None
    if mode == "ansi":
        width = max((len(str(n)) for n in names), default=5)
        lines = [title, f"{'layer':<{width}}  {label}"]
        for n, v in zip(names, values, strict=True):
            lines.append(f"{n!s:<{width}}  {'#' * round(30 * v):<30} {v:6.1%}")
        return "\n".join(lines) + "\n"
    # draw off-screen with matplotlib's Agg canvas (no display, no global pyplot state)
    fig = Figure(figsize=(6, 3), dpi=80)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar(range(len(values)), values, color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_xlabel("layer (forward order)")
    ax.set_ylabel(label)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
