"""`python -m pruning_core.verify`: a fresh run's summaries against the committed ones."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from pruning_core.config import REPO_ROOT
from pruning_core.runs import machine_info
from pruning_core.verify import compare_summaries, main, verify

COMMITTED = REPO_ROOT / "results"
STEM = "03_mobilenetv2_purl"


def _tree(root: Path, summary: dict, machine: dict | None = None) -> Path:
    folder = root / "cpu" / STEM
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    cfg = {"packages": {"torch": "2.14.1"}}
    if machine is not None:
        cfg["machine"] = machine
    (folder / "config.json").write_text(json.dumps(cfg))
    return root


def _committed() -> dict:
    return json.loads((COMMITTED / "cpu" / STEM / "summary.json").read_text())


def test_committed_results_verify_against_themselves(tmp_path: Path, capsys) -> None:
    fresh = tmp_path / "fresh"
    shutil.copytree(COMMITTED / "cpu", fresh / "cpu")
    assert main([str(fresh), "--reference", str(COMMITTED)]) == 0
    out = capsys.readouterr().out
    for stem in ("01_mdp_design", "02_resnet50_purl", "03_mobilenetv2_purl",
                 "04_neon_dense_study", "05_ablations"):  # fmt: skip
        assert f"OK   {stem}" in out


def test_planted_differences_inside_and_outside_the_interval(tmp_path: Path, capsys) -> None:
    ref = _committed()
    half = (ref["purl_drop_pp"]["ci95"][1] - ref["purl_drop_pp"]["ci95"][0]) / 2
    inside = copy.deepcopy(ref)
    inside["purl_drop_pp"]["mean"] += 0.5 * half  # moved, but within its own interval
    rep = compare_summaries(STEM, ref, inside)
    assert rep.ok
    check = next(c for c in rep.numbers if c.path == "purl_drop_pp.mean")
    assert check.source == "ci95" and check.tolerance == pytest.approx(half)

    outside = copy.deepcopy(inside)
    outside["purl_drop_pp"]["mean"] += 2 * half  # outside the committed interval
    rep = compare_summaries(STEM, ref, outside)
    assert not rep.ok
    assert [c.path for c in rep.numbers if not c.ok] == ["purl_drop_pp.mean"]

    # through the command line, on folders: exit status 1 and the key named
    r, f = _tree(tmp_path / "ref", ref), _tree(tmp_path / "fresh", outside)
    assert main([str(f), "--reference", str(r)]) == 1
    assert "purl_drop_pp.mean" in capsys.readouterr().out


def test_a_flipped_conclusion_fails_whatever_the_tolerance() -> None:
    ref = _committed()
    fresh = copy.deepcopy(ref)
    key = next(k for k, v in ref["paired"].items() if v["ci95"][0] > 0)  # a significant row
    lo, hi = ref["paired"][key]["ci95"]
    fresh["paired"][key]["ci95"] = [lo - (lo + 0.01), hi]  # now includes 0
    rep = compare_summaries(STEM, ref, fresh, rtol=10.0)
    assert [c.path for c in rep.conclusions if not c.ok] == [f"paired.{key}: 95% interval"]


def test_same_machine_means_bit_for_bit(tmp_path: Path) -> None:
    ref = _committed()
    fresh = copy.deepcopy(ref)
    fresh["purl_top1"] += 1e-6  # far inside any tolerance, but not the same bits
    fp = machine_info()
    r, f = _tree(tmp_path / "ref", ref, fp), _tree(tmp_path / "fresh", fresh, fp)
    (report,) = verify(f, r)
    assert report.exact and not report.ok
    other = copy.deepcopy(fp)
    other["fingerprint"]["cpu_capability"] = "AVX2"  # another machine: tolerance applies
    (f / "cpu" / STEM / "config.json").write_text(json.dumps({"packages": {"torch": "2.14.1"},
                                                              "machine": other}))
    (report,) = verify(f, r)
    assert not report.exact and report.ok


def test_missing_fresh_results_say_how_to_make_them(tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "nothing")]) == 2
    assert "./run_all.sh" in capsys.readouterr().err
