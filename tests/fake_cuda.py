"""A stand-in CUDA device for testing GPU code paths on a machine without a GPU.

Inside :func:`fake_cuda`, ``x.to("cuda")``, ``model.to("cuda")`` and factories with
``device="cuda"`` give :class:`CudaStandIn` tensors: they report ``device == cuda:0`` to Python
(so ``.device``, ``.is_cuda`` and ``next(model.parameters()).device`` read as on a GPU) and hold
their values in a CPU tensor, so the real numbers are computed and anything that needs them
(``.item()``, early stopping, a mask's zero count) works. Every operation is checked as CUDA
checks it: one that mixes a stand-in with an ordinary (CPU) tensor of one or more dimensions
raises torch's own "Expected all tensors to be on the same device" error (0-dim CPU tensors
pass, as CUDA takes them as scalars; ``copy_``, ``to`` and indexing with CPU indices pass, as
on a GPU); converting one to NumPy or pickling one (``torch.save``, a worker's return value)
fails, so code must bring results to the CPU first.

Why not ``FakeTensorMode``: fake tensors carry no values, so nothing that reads a number (a
training loop's loss, an environment's accuracy) can run, ``Module.to`` cannot swap fake
parameters ("weakref associated"), and autograd's engine asks the CUDA driver for a primary
context as soon as a graph holds a CUDA device. The stand-in's C++ device is the CPU, so autograd
runs; only Python sees ``cuda``. (The masks test in ``test_devices.py`` also runs the masking
hooks under real ``FakeTensorMode``, where no values are needed.)

``FakeCuda.stats`` counts operations on stand-ins (``cuda_ops``) and host syncs (``syncs``:
``.item()`` / ``float()`` / ``int()`` / ``.tolist()`` / copies to the CPU of stand-ins).
"""

from __future__ import annotations

import contextlib
import copy
from collections import Counter
from collections.abc import Iterator
from typing import Any

import torch
import torch._dynamo  # noqa: F401  (imported before fake_cuda() patches a function it wraps)
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

CUDA = torch.device("cuda", 0)
CPU = torch.device("cpu")
aten = torch.ops.aten

MIXED_DEVICE_OK = {
    aten.copy_.default,
    aten._to_copy.default,
    aten.index.Tensor,
    aten.index_put_.default,
    aten.index_put.default,
    aten._index_put_impl_.default,
}
"""Operations CUDA runs on a CUDA tensor with CPU tensor arguments (copies; CPU indices)."""

_ACTIVE: list[FakeCuda] = []


class CudaStandIn(torch.Tensor):
    """A tensor that Python sees on ``cuda:0`` and whose values live in the CPU tensor ``elem``."""

    elem: torch.Tensor

    @staticmethod
    def __new__(cls, elem: torch.Tensor) -> CudaStandIn:
        r = torch.Tensor._make_wrapper_subclass(
            cls, elem.size(), strides=elem.stride(), storage_offset=elem.storage_offset(),
            dtype=elem.dtype, layout=elem.layout, device=CPU, requires_grad=elem.requires_grad,
        )  # fmt: skip
        r.elem = elem
        return r

    __torch_function__ = torch._C._disabled_torch_function_impl

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return CUDA

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        return True

    def get_device(self) -> int:  # type: ignore[override]
        return 0

    def numpy(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise TypeError(
            "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the "
            "tensor to host memory first."
        )

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        return self.numpy()

    def tolist(self) -> Any:  # type: ignore[override]
        _count("syncs")
        return self.elem.tolist()

    def cpu(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        return self.to(CPU)

    def cuda(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        return self

    def to(self, *args: Any, **kwargs: Any) -> torch.Tensor:  # type: ignore[override]
        device, dtype, _non_blocking, _fmt = torch._C._nn._parse_to(*args, **kwargs)
        if device is not None and torch.device(device).type == "cpu":
            _count("syncs")
            out = torch.ops.aten._to_copy.default(self, device=CPU, dtype=dtype or self.dtype)
            return out
        if dtype is None or dtype == self.dtype:
            return self  # already on the (stand-in) GPU: no copy, as torch does
        return torch.ops.aten._to_copy.default(self, dtype=dtype)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            "a CUDA tensor is being pickled (torch.save, or a worker's return value): move it "
            "to the CPU first (pruning_core.devices.to_cpu)"
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> CudaStandIn:
        if id(self) in memo:
            return memo[id(self)]
        out = CudaStandIn(self.elem.detach().clone())
        out.requires_grad_(self.requires_grad)
        if getattr(self, "_is_param", False):
            out._is_param = True  # type: ignore[attr-defined]
        memo[id(self)] = out
        return out

    def __tensor_flatten__(self) -> tuple[list[str], None]:
        # makes Module.to swap the parameter objects in place (keeps their identity)
        return ["elem"], None

    @staticmethod
    def __tensor_unflatten__(inner: dict[str, torch.Tensor], meta: Any, size: Any, stride: Any) -> CudaStandIn:
        return CudaStandIn(inner["elem"])

    def __repr__(self) -> str:  # type: ignore[override]
        return f"CudaStandIn({self.elem!r})"

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return _run(func, args, kwargs or {})


def _count(what: str) -> None:
    for mode in _ACTIVE:
        mode.stats[what] += 1


def _is_cuda(device: Any) -> bool:
    return device is not None and torch.device(device).type == "cuda"


def _run(func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    flat, _ = tree_flatten((args, kwargs))
    stand = [a for a in flat if isinstance(a, CudaStandIn)]
    plain = [a for a in flat if isinstance(a, torch.Tensor) and not isinstance(a, CudaStandIn)]
    to_cuda = _is_cuda(kwargs.get("device"))
    if stand and func not in MIXED_DEVICE_OK and any(t.dim() > 0 for t in plain):
        shapes = [tuple(t.shape) for t in plain if t.dim() > 0]
        raise RuntimeError(
            "Expected all tensors to be on the same device, but found at least two devices, "
            f"cuda:0 and cpu! (in {func}, under the fake CUDA device; CPU tensors of shape "
            f"{shapes})"
        )
    if stand or to_cuda:
        _count("cuda_ops")
    if func in (aten._local_scalar_dense.default, aten.item.default):
        if stand:
            _count("syncs")
            return func(stand[0].elem)
        return func(*args, **kwargs)
    wrappers = {id(a.elem): a for a in stand}
    args_, kwargs_ = tree_map(lambda a: a.elem if isinstance(a, CudaStandIn) else a, (args, kwargs))
    if to_cuda:
        kwargs_["device"] = CPU
    out = func(*args_, **kwargs_)
    if func is aten.copy_.default:
        return args[0]
    if func is aten._to_copy.default:
        dev = kwargs.get("device")
        wrap = to_cuda or (dev is None and isinstance(args[0], CudaStandIn))
    else:
        wrap = bool(stand) or to_cuda
    if not wrap:
        return out

    def rewrap(t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        return wrappers[id(t)] if id(t) in wrappers else CudaStandIn(t)

    return tree_map(rewrap, out)


class FakeCuda(TorchDispatchMode):
    """The mode that turns ``.to("cuda")`` and ``device="cuda"`` factories into stand-ins."""

    def __init__(self) -> None:
        super().__init__()
        self.stats: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return _run(func, args, kwargs or {})


@contextlib.contextmanager
def fake_cuda() -> Iterator[FakeCuda]:
    """Run the block with the stand-in CUDA device (see the module docstring)."""
    saved_init = torch.cuda._lazy_init
    saved_compat = torch._has_compatible_shallow_copy_type
    saved_parse_to = torch._C._nn._parse_to
    if torch.cuda.is_available():  # a real GPU: initialise it properly, intercept nothing else
        torch.cuda._lazy_init()
    else:
        # no driver: skip torch's lazy CUDA initialisation and its device guard (as
        # FakeTensorMode does), so that `.to("cuda")` reaches the mode
        torch.cuda._lazy_init = lambda: None  # type: ignore[assignment]
        torch._C._ensureCUDADeviceGuardSet()

    def compatible(input: torch.Tensor, from_: torch.Tensor) -> bool:  # noqa: A002
        # a module moved back to the CPU gets new CPU parameters (not a stand-in's shell)
        if isinstance(input, CudaStandIn) or isinstance(from_, CudaStandIn):
            return False
        return saved_compat(input, from_)

    def parse_to(*args: Any, **kwargs: Any) -> Any:
        # Module.to(tensor) and Tensor.to(tensor) read the C++ device: a stand-in's is the CPU
        like = next((a for a in (*args, *kwargs.values()) if isinstance(a, CudaStandIn)), None)
        if like is not None:
            rest = [a for a in args if a is not like]
            _, _, non_blocking, fmt = saved_parse_to(like.elem, *rest, **{k: v for k, v in kwargs.items() if v is not like})
            return CUDA, like.dtype, non_blocking, fmt
        return saved_parse_to(*args, **kwargs)

    torch._has_compatible_shallow_copy_type = compatible  # type: ignore[assignment]
    torch._C._nn._parse_to = parse_to  # type: ignore[assignment]
    mode = FakeCuda()
    _ACTIVE.append(mode)
    try:
        with mode:
            yield mode
    finally:
        _ACTIVE.remove(mode)
        torch.cuda._lazy_init = saved_init  # type: ignore[assignment]
        torch._has_compatible_shallow_copy_type = saved_compat  # type: ignore[assignment]
        torch._C._nn._parse_to = saved_parse_to  # type: ignore[assignment]


def on_fake_cuda(t: Any) -> bool:
    """Whether ``t`` is a stand-in CUDA tensor."""
    return isinstance(t, CudaStandIn)


def cpu_tensors(obj: Any) -> list[str]:
    """Paths of the tensors in a nested dict / list / tuple that are *not* plain CPU tensors."""
    bad: list[str] = []

    def walk(o: Any, path: str) -> None:
        if isinstance(o, torch.Tensor):
            if isinstance(o, CudaStandIn) or o.device.type != "cpu":
                bad.append(path)
        elif isinstance(o, dict):
            for k, v in o.items():
                walk(v, f"{path}[{k!r}]")
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, f"{path}[{i}]")
        elif hasattr(o, "__dict__") and not isinstance(o, type):
            walk(copy.copy(vars(o)), path)

    walk(obj, "")
    return bad
