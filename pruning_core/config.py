"""Profiles, seeding, paths and progress bars shared by every notebook and module.

A *profile* names a size of study: ``smoke`` (every notebook in a minute or two, used by the
tests), ``cpu`` (the real study on a 2-core machine, whose outputs are committed) and ``gpu``
(paper-scale settings). Notebooks hold the profile name as a plain papermill parameter and derive
their sizes from it in code with :func:`by_profile`, so injected parameters never go stale.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import random
import signal
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm import tqdm

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
"""The profiles every notebook understands, smallest first."""


T = TypeVar("T")


REPO_ROOT = Path(__file__).resolve().parent.parent
"""The repository root (the folder holding ``pruning_core/``)."""


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is known, else raise a ValueError that lists the valid ones."""
    if profile not in PROFILES:
        raise ValueError(
            f"Unknown PROFILE {profile!r}. Use one of {', '.join(PROFILES)} "
            "(e.g. `PROFILE=smoke ./run_all.sh` or `papermill -p PROFILE smoke ...`)."
        )
    return profile


def by_profile(profile: str, **choices: T) -> T:
    """Pick the value for ``profile`` from keyword choices, e.g. ``by_profile(p, smoke=1, cpu=5, gpu=50)``."""
    check_profile(profile)
    missing = [p for p in PROFILES if p not in choices]
    if missing:
        raise TypeError(f"by_profile needs a value for every profile; missing {missing}")
    return choices[profile]


def results_root() -> Path:
    """Where studies write their outputs: ``$PRUNING_CORE_RESULTS`` or ``<repo>/results``."""
    return Path(os.environ.get("PRUNING_CORE_RESULTS", REPO_ROOT / "results"))


def cache_root() -> Path:
    """Where trained dense models, base networks and agent checkpoints are cached.

    ``$PRUNING_CORE_CACHE`` or ``<repo>/cache``. Entries are keyed by a hash of their config, so a
    change of config never silently reuses a stale model.
    """
    return Path(os.environ.get("PRUNING_CORE_CACHE", REPO_ROOT / "cache"))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with Python's, NumPy's and torch's global RNGs seeded with ``seed``, then put
    their states back: randomness comes from the argument and leaks neither in nor out.

    The torch state of every CUDA device is forked too, but only where this process has already
    initialised CUDA: forking would otherwise create a CUDA context (memory on every GPU) in a
    worker that never uses one. A process that first touches CUDA inside the block draws its CUDA
    RNG from the state it starts with (seeded by ``torch.manual_seed`` above, which seeds every
    device lazily). Use it where a library draws from a global generator (dropout, weight
    initialisation, seaborn's jitter).
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def progress_enabled() -> bool:
    """Progress bars are on unless ``PRUNING_CORE_PROGRESS=0`` (the tests set it)."""
    return os.environ.get("PRUNING_CORE_PROGRESS", "1") not in ("0", "false", "False", "")



@contextlib.contextmanager
def no_progress() -> Iterator[None]:
    """Progress bars off inside the block (``PRUNING_CORE_PROGRESS=0``), as they were after it:
    for the inner loops of a job whose caller shows one bar over all jobs."""
    old = os.environ.get("PRUNING_CORE_PROGRESS")
    os.environ["PRUNING_CORE_PROGRESS"] = "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PRUNING_CORE_PROGRESS", None)
        else:
            os.environ["PRUNING_CORE_PROGRESS"] = old

PROGRESS_INTERVAL_NOT_TTY = 60.0
"""Seconds between two updates of a progress bar whose stream is not a terminal (a notebook,
papermill, a log file): each update there is one more saved output fragment, so they are rare."""


def progress(iterable: Iterable[T] | None = None, **kwargs: Any) -> tqdm:
    """A plain ``tqdm`` bar that works in a terminal, in JupyterLab and under papermill.

    ``tqdm.auto`` widgets do not update in papermill's saved notebooks; plain tqdm writes text
    lines to stderr, which both show. Updates are throttled so logs stay short: every 2 s in a
    terminal, every :data:`PROGRESS_INTERVAL_NOT_TTY` s elsewhere (an executed notebook keeps
    every update as an output fragment: at 2 s a 45-minute run saved over a thousand).
    """
    kwargs.setdefault("file", sys.stderr)
    is_tty = bool(getattr(kwargs["file"], "isatty", lambda: False)())
    kwargs.setdefault("mininterval", 2.0 if is_tty else PROGRESS_INTERVAL_NOT_TTY)
    # tqdm's monitor thread forces a refresh once ``maxinterval`` has passed: no sooner either
    kwargs.setdefault("maxinterval", max(10.0, kwargs["mininterval"]))
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("disable", not progress_enabled())
    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (None: leave as is), then restore.

    NEON's networks are small: one thread is as fast as two on an idle machine and many times
    faster on a busy one (threads that wait for a shared core spin).
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


WORKER_THREADS = 1
"""Torch threads of every job run by :func:`run_jobs` and of every cached build
(:func:`pruning_core.runs.cached`): results do not depend on the machine's thread count
because none is computed with more than one (float sums over several threads are
added in an order that depends on their number, and training amplifies the difference)."""


def _die_with_parent() -> None:
    """Ask Linux to stop this worker when the process that spawned it dies (a killed notebook
    kernel must not leave jobs running); elsewhere a no-op."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _init_worker() -> None:
    _die_with_parent()
    torch.set_num_threads(WORKER_THREADS)
    with contextlib.suppress(RuntimeError):  # set once per process; a fresh one allows it
        torch.set_num_interop_threads(WORKER_THREADS)


def default_workers() -> int:
    """Processes for :func:`run_jobs`: ``$PRUNING_CORE_WORKERS``, else one per core available."""
    env = os.environ.get("PRUNING_CORE_WORKERS")
    if env:
        return max(0, int(env))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def _indexed(task: tuple[Any, int, Any]) -> tuple[int, Any]:
    fn, i, job = task
    return i, fn(job)


def run_jobs(
    fn: Any, jobs: list[Any], workers: int | None = None, desc: str | None = None
) -> list[Any]:
    """``[fn(job) for job in jobs]``, each call in one of ``workers`` processes with one torch thread.

    ``fn`` must be a module-level function (it is pickled to freshly spawned processes, which
    also works under Jupyter and papermill; a script that calls this needs the usual
    ``if __name__ == "__main__":`` guard, as for any spawned process). ``workers=0`` runs the jobs here, in order, with
    one thread too: the same numbers, easier to debug. Results come back in the order of
    ``jobs``; a job that raises stops the run with its error and the other workers are
    terminated (jobs that write their outputs to the cache keep them, so a rerun resumes).
    """
    workers = default_workers() if workers is None else workers
    if workers == 0 or len(jobs) <= 1:
        with torch_threads(WORKER_THREADS):
            return [fn(job) for job in progress(jobs, desc=desc, unit="job")]
    out: list[Any] = [None] * len(jobs)
    ctx = mp.get_context("spawn")
    # a Pool (not concurrent.futures): leaving the block on an error or an interrupt terminates
    # the workers at once instead of waiting for their jobs
    with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker) as pool, progress(
        total=len(jobs), desc=desc, unit="job"
    ) as bar:
        for i, result in pool.imap_unordered(_indexed, [(fn, i, job) for i, job in enumerate(jobs)]):
            out[i] = result
            bar.update(1)
    return out
