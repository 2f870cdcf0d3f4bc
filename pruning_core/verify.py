"""Check a fresh run against the committed results: ``python -m pruning_core.verify FRESH``.

``FRESH`` is a results root of a new run (``PRUNING_CORE_RESULTS=<dir> ./run_all.sh``, or
``./run_all.sh verify``, which does that in ``verify/``). For every notebook found in both, each
number of ``summary.json`` is compared with the committed one:

* **same machine** (the ``machine`` fingerprint in both ``config.json`` files matches: CPU
  model, torch's CPU capability, torch / BLAS / oneDNN builds, threads): bit-for-bit results
  are promised, so numbers must be equal (to 1e-12);
* **elsewhere**: a number inside a dict that carries a 95% interval (``ci95``) may move by that
  interval's half-width; any other number by ``--rtol`` (5% by default) of its value. Wall-clock
  timings (keys with ``seconds``, ``time``, ...) are skipped: they measure the machine.

Then the **conclusions**: every boolean (goals met or not), whether each interval excludes 0
(and on which side), and whether each p-value is below 0.05. A conclusion that flips is
reported whatever the tolerance. The exit status is 1 when a number falls outside its tolerance
or a conclusion changes, so the command can gate a reproduction.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pruning_core.config import PROFILES, results_root

__all__ = ["Check", "NotebookReport", "compare_summaries", "main", "verify"]

TIMING = re.compile(r"(second|wall|time|_s$|per_s|speed|minutes|hours|latency)", re.IGNORECASE)
"""Keys that hold wall-clock measurements: a property of the machine, never compared."""

P_VALUE = re.compile(r"(^|_)p(_holm|_wilcoxon|_adj)?$")
"""Keys of p-values, whose conclusion is "below 0.05"."""

EXACT_ATOL = 1e-12


@dataclass
class Check:
    """One compared number or conclusion."""

    path: str
    reference: Any
    fresh: Any
    tolerance: float | None
    """Allowed absolute difference (None for a conclusion)."""
    source: str
    """Where the tolerance comes from: ``exact``, ``ci95`` or ``rtol``; or ``conclusion``."""
    ok: bool


@dataclass
class NotebookReport:
    """The checks of one notebook's ``summary.json``."""

    stem: str
    exact: bool
    numbers: list[Check] = field(default_factory=list)
    conclusions: list[Check] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Keys of the committed summary that the fresh one lacks."""

    @property
    def ok(self) -> bool:
        """Every number within tolerance, every conclusion the same, nothing missing."""
        return (all(c.ok for c in self.numbers) and all(c.ok for c in self.conclusions)
                and not self.missing)  # fmt: skip


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _walk(obj: Any, path: str = "") -> Iterator[tuple[str, Any, dict | None]]:
    """(path, value, the dict holding it) for every leaf of a JSON tree."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(v, (dict, list)):
                yield from _walk(v, p)
            else:
                yield p, v, obj
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            p = f"{path}[{i}]"
            if isinstance(v, (dict, list)):
                yield from _walk(v, p)
            else:
                yield p, v, None


def _interval(holder: dict | None) -> tuple[float, float] | None:
    ci = holder.get("ci95") if isinstance(holder, dict) else None
    if (isinstance(ci, list) and len(ci) == 2 and all(_is_number(x) for x in ci)
            and all(math.isfinite(x) for x in ci)):  # fmt: skip
        return float(ci[0]), float(ci[1])
    return None


def _intervals(obj: Any, path: str = "") -> Iterator[tuple[str, tuple[float, float]]]:
    if isinstance(obj, dict):
        if (ci := _interval(obj)) is not None:
            yield path or "<root>", ci
        for k, v in obj.items():
            yield from _intervals(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _intervals(v, f"{path}[{i}]")


def _side(ci: tuple[float, float]) -> str:
    return "above 0" if ci[0] > 0 else "below 0" if ci[1] < 0 else "includes 0"


def compare_summaries(
    stem: str, reference: dict, fresh: dict, exact: bool = False, rtol: float = 0.05
) -> NotebookReport:
    """Compare two ``summary.json`` trees (see the module docstring for the rules)."""
    rep = NotebookReport(stem, exact)
    flat = {path: value for path, value, _ in _walk(fresh)}
    for path, ref, holder in _walk(reference):
        leaf = path.rsplit(".", 1)[-1]
        if path not in flat:
            rep.missing.append(path)
            continue
        new = flat[path]
        if isinstance(ref, bool):
            rep.conclusions.append(Check(path, ref, new, None, "conclusion", new == ref))
            continue
        if not _is_number(ref) or TIMING.search(path):
            continue
        if P_VALUE.search(leaf) and _is_number(new):
            rep.conclusions.append(Check(f"{path} < 0.05", ref < 0.05, new < 0.05, None,
                                         "conclusion", (ref < 0.05) == (new < 0.05)))  # fmt: skip
        if exact:
            tol, source = EXACT_ATOL, "exact"
        elif (ci := _interval(holder)) is not None:
            tol, source = (ci[1] - ci[0]) / 2, "ci95"
        else:
            tol, source = rtol * abs(float(ref)), "rtol"
        ok = _is_number(new) and (abs(float(new) - float(ref)) <= tol + EXACT_ATOL
                                  or (math.isnan(ref) and math.isnan(new)))  # fmt: skip
        rep.numbers.append(Check(path, ref, new, tol, source, bool(ok)))
    fresh_cis = dict(_intervals(fresh))
    for path, ci in _intervals(reference):
        if path in fresh_cis:
            a, b = _side(ci), _side(fresh_cis[path])
            rep.conclusions.append(Check(f"{path}: 95% interval", a, b, None, "conclusion", a == b))
    return rep


def _machine(folder: Path) -> dict | None:
    cfg = folder / "config.json"
    if not cfg.is_file():
        return None
    data = json.loads(cfg.read_text())
    machine = (data.get("machine") or {}).get("fingerprint")
    return {"machine": machine, "packages": data.get("packages")} if machine else None


def verify(
    fresh_root: str | Path,
    reference_root: str | Path | None = None,
    profile: str = "cpu",
    rtol: float = 0.05,
) -> list[NotebookReport]:
    """Compare every notebook's ``summary.json`` under ``fresh_root/<profile>`` with the committed
    one under ``reference_root/<profile>`` (default: the repository's ``results/``)."""
    fresh_dir = Path(fresh_root) / profile
    ref_dir = Path(reference_root or results_root()) / profile
    if not fresh_dir.is_dir():
        raise FileNotFoundError(
            f"no fresh results in {fresh_dir}: run `PRUNING_CORE_RESULTS={fresh_root} "
            f"PROFILE={profile} ./run_all.sh` first (or `./run_all.sh verify`)"
        )
    reports = []
    for new in sorted(fresh_dir.glob("*/summary.json")):
        ref = ref_dir / new.parent.name / "summary.json"
        if not ref.is_file():
            continue
        m_ref, m_new = _machine(ref.parent), _machine(new.parent)
        exact = m_ref is not None and m_ref == m_new
        reports.append(compare_summaries(new.parent.name, json.loads(ref.read_text()),
                                         json.loads(new.read_text()), exact, rtol))  # fmt: skip
    if not reports:
        raise FileNotFoundError(
            f"no notebook has a summary.json in both {fresh_dir} and {ref_dir}: nothing to compare"
        )
    return reports


def render(reports: list[NotebookReport], show: int = 10) -> str:
    """A plain-text report: per notebook, the numbers outside tolerance and the conclusions."""
    lines = []
    for r in reports:
        bad = [c for c in r.numbers if not c.ok]
        flipped = [c for c in r.conclusions if not c.ok]
        mode = "same machine: exact" if r.exact else "another machine: within intervals / rtol"
        lines.append(f"{'OK  ' if r.ok else 'FAIL'} {r.stem} ({mode}): {len(r.numbers) - len(bad)}"
                     f"/{len(r.numbers)} numbers within tolerance, {len(r.conclusions) - len(flipped)}"
                     f"/{len(r.conclusions)} conclusions hold")  # fmt: skip
        for c in bad[:show]:
            lines.append(f"       number  {c.path}: {c.reference!r} -> {c.fresh!r} "
                         f"(allowed +-{c.tolerance:.3g}, {c.source})")  # fmt: skip
        for c in flipped[:show]:
            lines.append(f"       changed {c.path}: {c.reference!r} -> {c.fresh!r}")
        for c in [c for c in r.conclusions if c.ok and c.path.endswith(("met", "interval"))][:show]:
            lines.append(f"       holds   {c.path}: {c.fresh!r}")
        if r.missing:
            lines.append(f"       missing in the fresh run: {', '.join(r.missing[:show])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the report; exit 1 when anything is outside its tolerance."""
    ap = argparse.ArgumentParser(prog="python -m pruning_core.verify", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fresh", help="results root of the fresh run (holds <profile>/<notebook>/)")
    ap.add_argument("--reference", default=None, help="committed results root (default: results/)")
    ap.add_argument("--profile", default="cpu", choices=PROFILES)
    ap.add_argument("--rtol", type=float, default=0.05,
                    help="relative tolerance of numbers without an interval (default 0.05)")
    args = ap.parse_args(argv)
    try:
        reports = verify(args.fresh, args.reference, args.profile, args.rtol)
    except FileNotFoundError as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 2
    print(render(reports))
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
