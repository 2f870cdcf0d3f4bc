"""The device policy: which device a profile runs on, what a run records about it, and the CUDA
settings that keep a GPU run reproducible.

* ``smoke`` and ``cpu`` run on the CPU, on every machine (a GPU, if present, is not used: their
  numbers are the committed ones, and the tests must mean the same everywhere).
* ``gpu`` needs CUDA; without it :func:`resolve_device` stops with a message that says why (no
  driver, a driver too old for the wheel's CUDA, a CPU-only torch build).
* ``$DEVICE`` (``cpu``, ``cuda``, ``cuda:1``) overrides the profile: ``DEVICE=cuda PROFILE=smoke``
  runs the small profile on a GPU as a quick check of the GPU path.

:func:`cuda_info` is what ``config.json`` records (GPU model, driver, CUDA and cuDNN versions),
:func:`set_cuda_determinism` the flags a reproducible CUDA run needs, :func:`to_cpu` what a
worker process applies to its results before they cross a process boundary.
``python -c "import pruning_core.devices as d; d.main(['gpu'])"`` (what ``run_all.sh`` runs
first) checks a profile's device from the shell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import torch

from pruning_core.config import check_profile

__all__ = [
    "DEVICE_ENV",
    "DeviceUnavailableError",
    "cuda_info",
    "device_policy",
    "profile_device",
    "resolve_device",
    "set_cuda_determinism",
    "to_cpu",
]

DEVICE_ENV = "DEVICE"
"""Environment variable that overrides the profile's device (``cpu``, ``cuda``, ``cuda:N``)."""

CUBLAS_WORKSPACE = ":4096:8"
"""``CUBLAS_WORKSPACE_CONFIG`` for deterministic cuBLAS (set before the first cuBLAS call)."""

MIN_DRIVER = {"13": "580", "12": "525"}
"""The oldest Linux NVIDIA driver of each CUDA major version (CUDA's minor-version compatibility)."""

DRIVER_NOTE = (
    "The pinned torch wheel is built for CUDA {cuda} and needs an NVIDIA driver for CUDA "
    "{major}{min_driver} (`nvidia-smi` shows the driver)."
)


class DeviceUnavailableError(RuntimeError):
    """The profile (or ``$DEVICE``) asks for a device this machine does not have."""


def profile_device(profile: str) -> str:
    """The device a profile runs on without an override: ``cuda`` for gpu, else ``cpu``."""
    return "cuda" if check_profile(profile) == "gpu" else "cpu"


def _why_no_cuda() -> str:
    """A sentence on why CUDA is unavailable: CPU-only build, no GPU / driver, or old driver."""
    built = torch.version.cuda
    if built is None:
        return (
            f"this torch ({torch.__version__}) is a CPU-only build: install the CUDA wheel "
            "(`pip install torch --index-url https://download.pytorch.org/whl/cu130`)."
        )
    major = built.split(".")[0]
    oldest = MIN_DRIVER.get(major)
    note = DRIVER_NOTE.format(cuda=built, major=major,
                              min_driver=f", version {oldest} or newer" if oldest else "")  # fmt: skip
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return f"no NVIDIA driver was found (no `nvidia-smi` on PATH). {note}"
    driver = _driver_version()
    return (
        f"the driver ({driver or 'unknown version'}) did not give torch a usable GPU "
        f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). {note}"
    )


def resolve_device(profile: str, override: str | None = None) -> torch.device:
    """The device ``profile`` runs on: ``override``, else ``$DEVICE``, else the profile's own.

    smoke and cpu: the CPU; gpu: CUDA. Raises :class:`DeviceUnavailableError` when the answer
    is CUDA and torch cannot use a GPU (saying why), and ValueError for a device name torch
    does not know. Creates no CUDA context.
    """
    want = override or os.environ.get(DEVICE_ENV) or profile_device(profile)
    try:
        dev = torch.device(want)
    except RuntimeError as exc:
        raise ValueError(
            f"{DEVICE_ENV}={want!r} is not a device: use cpu, cuda or cuda:N ({exc})"
        ) from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{DEVICE_ENV}={want!r}: the studies run on cpu or cuda, not {dev.type}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            source = f"{DEVICE_ENV}={want}" if (override or os.environ.get(DEVICE_ENV)) else (
                f"PROFILE={profile}"
            )
            raise DeviceUnavailableError(
                f"{source} needs a CUDA GPU, but torch.cuda.is_available() is False: "
                f"{_why_no_cuda()} Run PROFILE=cpu (or DEVICE=cpu) on this machine."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"{DEVICE_ENV}={want}: this machine has {torch.cuda.device_count()} GPU(s)."
            )
    return dev


def device_policy(profile: str) -> dict[str, Any]:
    """What :func:`resolve_device` decides for ``profile`` and why, as ``config.json`` records it
    (no error: an unavailable device is recorded as such)."""
    override = os.environ.get(DEVICE_ENV) or None
    out: dict[str, Any] = {"profile": profile, "profile_device": profile_device(profile),
                           "override": override}  # fmt: skip
    try:
        out["device"] = str(resolve_device(profile))
    except (DeviceUnavailableError, ValueError) as exc:
        out["device"] = None
        out["error"] = str(exc)
    return out


def _driver_version() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi`` (None without it)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        res = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
    return lines[0] if lines else None


def cuda_info() -> dict[str, Any]:
    """The GPUs as a run records them: names, memory, compute capability, driver, the CUDA
    torch was built for and cuDNN. Without CUDA: ``available`` False, empty ``gpus`` and the
    build's CUDA version (None for a CPU-only build); nothing else is queried then."""
    info: dict[str, Any] = {
        "available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda,
        "gpus": [],
        "driver": None,
        "cudnn": None,
    }
    if not info["available"]:
        return info
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        info["gpus"].append({
            "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
            "capability": f"{p.major}.{p.minor}",
        })  # fmt: skip
    info["driver"] = _driver_version()
    info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return info


def set_cuda_determinism() -> None:
    """Make CUDA kernels repeat their results where torch can: cuDNN in deterministic mode
    without benchmarking (no run-to-run choice of algorithm), deterministic algorithms
    (``warn_only``: ResNet-50's adaptive average pooling has no deterministic CUDA backward, so
    it warns instead of failing) and cuBLAS's fixed workspace (``CUBLAS_WORKSPACE_CONFIG``,
    which must be set before the first cuBLAS call, so call this before any CUDA work; spawned
    workers inherit it). Harmless on a CPU-only machine; creates no CUDA context."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor inside (dicts, lists, tuples) moved to the CPU and detached: what a worker returns (a CUDA tensor sent to another process is a
    handle into this one's memory, invalid once the pool ends it) and what a checkpoint holds."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, Mapping):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(to_cpu(v) for v in obj)
    if isinstance(obj, list):
        return [to_cpu(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    """Print the device policy for ``argv[0]`` (default ``$PROFILE``, else cpu) and the GPUs;
    return 1, with the reason, when the profile's device is unavailable."""
    args = sys.argv[1:] if argv is None else argv
    profile = args[0] if args else os.environ.get("PROFILE", "cpu")
    try:
        dev = resolve_device(profile)
    except (DeviceUnavailableError, ValueError) as exc:
        print(f"[device] {exc}", file=sys.stderr)
        return 1
    info = cuda_info() if dev.type == "cuda" else {}
    gpus = ", ".join(g["name"] for g in info.get("gpus", []))
    extra = f" ({gpus}; driver {info.get('driver')}, CUDA {info.get('torch_cuda')})" if gpus else ""
    print(f"[device] PROFILE={profile}: {dev}{extra}")
    return 0

