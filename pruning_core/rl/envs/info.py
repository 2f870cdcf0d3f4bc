"""The one ``info`` schema both environments speak, and their shared text / image rendering.

Every ``reset()`` and ``step()`` of :class:`~pruning_core.rl.envs.purl.PuRLEnv` and
:class:`~pruning_core.rl.envs.neon.NeonEnv` returns an ``info`` dict with these keys first,
so one logging callback serves both:

=============== ==========================================================================
key             meaning
=============== ==========================================================================
``step``        steps taken in this episode (0 after ``reset``)
``layer``       index of the layer this step acted on (after ``reset``: the first one to
                visit), an ``np.int64`` in both environments
``layer_name``  its name (PuRL: the module's name; NEON: ``hidden<i>``)
``pass``        the visit of that layer (0 for the first pass over the layers)
``sparsity``    share of the prunable parameters removed so far, in [0, 1) (PuRL: zero
                weights of the prunable layers; NEON: parameters removed with the neurons)
``compression`` original / remaining parameter count of those layers (1 after ``reset``)
``accuracy``    accuracy on the reward split now (a fraction; the dense value after ``reset``)
``step_reward`` this step's reward, the number ``step`` returns (0 after ``reset``)
=============== ==========================================================================

Each environment adds keys of its own (PuRL: ``action_value``, ``dense_accuracy``,
``target_accuracy``, ``target_sparsity``, ``layer_sparsity``, ``return``; NEON: ``task``,
``C``, ``params``, ``delta_val_pp``, ``keep``, ``undone``).

**For array-based readers** (TorchRL's ``default_info_dict_reader``, Tianshou's batches,
``np.asarray`` over an episode's infos): every value is a numpy scalar (``np.int64``,
``np.float64``, ``np.bool_``, ``np.str_``) or a 1-d ``np.float64`` array (PuRL's
``layer_sparsity``, one entry per prunable layer, indexed by ``layer``), each key has one type, and
``reset`` returns the same keys as ``step`` (values of what has not happened yet are 0, False or
NaN: ``action_value`` and ``keep`` are NaN after ``reset``). The reward is ``step_reward``, not
``reward``, which is the name collectors give the reward ``step`` returns (TorchRL's reader would
write over it). TorchRL's ``default_info_dict_reader()`` reads every key (the names, text, as
non-tensor data); a reader that wants tensors only takes the numbers:
``[k for k, v in info.items() if not isinstance(v, str)]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "INFO_KEYS",
    "RENDER_MODES",
    "check_render_mode",
    "info_value",
    "make_info",
    "parse_action",
    "render_bars",
]

INFO_KEYS: tuple[str, ...] = (
    "step", "layer", "layer_name", "pass", "sparsity", "compression", "accuracy", "step_reward",
)  # fmt: skip
"""The keys every ``info`` of both environments holds, in this order."""

RENDER_MODES: tuple[str, ...] = ("ansi", "rgb_array")
"""``ansi``: a text table of the layers; ``rgb_array``: the same as a bar chart image."""


def parse_action(action: Any, n: int, choices: str) -> int:
    """``action`` as an index in ``[0, n)``: an int, a whole float or a one-element array (what
    agents and vector envs pass); anything else, a fraction or an index out of range raises a
    ``ValueError`` that names the valid range and ``choices`` (what the indices select)."""
    value = action.item() if isinstance(action, np.ndarray) and action.size == 1 else action
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, np.integer, float, np.floating)
    ):
        raise ValueError(f"invalid action {action!r}: an integer in [0, {n - 1}] ({choices})")
    if not float(value).is_integer():
        raise ValueError(f"invalid action {action!r}: a whole number in [0, {n - 1}] ({choices})")
    a = int(value)
    if not 0 <= a < n:
        raise ValueError(f"invalid action {a}: out of range, an integer in [0, {n - 1}] ({choices})")
    return a


def info_value(value: Any) -> np.generic | np.ndarray:
    """``value`` as an info value: a numpy scalar of one fixed type per Python type (bool ->
    ``np.bool_``, int -> ``np.int64``, float -> ``np.float64``, str -> ``np.str_``; None ->
    NaN), a numpy scalar or array as it is; anything else is a TypeError."""
    if value is None:
        return np.float64(math.nan)
    if isinstance(value, (np.generic, np.ndarray)):
        return value
    if isinstance(value, bool):
        return np.bool_(value)
    if isinstance(value, int):
        return np.int64(value)
    if isinstance(value, float):
        return np.float64(value)
    if isinstance(value, str):
        return np.str_(value)
    raise TypeError(f"an info value must be a number, a string or a numpy array: got {value!r}")


def make_info(
    step: int,
    layer: int,
    layer_name: str,
    pass_: int,
    sparsity: float,
    compression: float,
    accuracy: float,
    step_reward: float,
    **extra: Any,
) -> dict[str, Any]:
    """An ``info`` dict in the shared schema (:data:`INFO_KEYS` first, then ``extra``), every
    value converted by :func:`info_value`."""
    info: dict[str, Any] = {
        "step": np.int64(step),
        "layer": np.int64(layer),
        "layer_name": np.str_(layer_name),
        "pass": np.int64(pass_),
        "sparsity": np.float64(sparsity),
        "compression": np.float64(compression),
        "accuracy": np.float64(accuracy),
        "step_reward": np.float64(step_reward),
    }
    for key, value in extra.items():
        if key in info:
            raise ValueError(f"{key!r} is a key of the shared schema: pass it by name")
        info[key] = info_value(value)
    return info


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
