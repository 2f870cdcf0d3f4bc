"""Run folders, atomic writes, NaN refusal, checkpoints and corruption detection."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import torch

from pruning_core.config import WORKER_THREADS, by_profile, cache_root, check_profile
from pruning_core.runs import (
    ArtefactKey,
    CorruptCheckpointError,
    RunDir,
    atomic_open,
    cached,
    config_hash,
    git_info,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
    write_json,
)

matplotlib.use("Agg")


def test_failed_write_leaves_previous_file_intact(tmp_path: Path) -> None:
    p = tmp_path / "metrics.json"
    write_json(p, {"top1": 0.9})
    with pytest.raises(RuntimeError, match="boom"), atomic_open(p) as fh:
        fh.write('{"top1": 0.1, "half')
        raise RuntimeError("boom")
    assert json.loads(p.read_text()) == {"top1": 0.9}
    assert [f.name for f in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left


def test_nan_refused_with_clear_message(tmp_path: Path) -> None:
    p = tmp_path / "summary.json"
    write_json(p, {"top1": 0.5})
    with pytest.raises(ValueError, match=r"top1 is NaN.*learning rate"):
        write_json(p, {"top1": float("nan")})
    assert json.loads(p.read_text()) == {"top1": 0.5}


def test_run_summary_accumulates_within_a_run_and_drops_stale_keys(tmp_path: Path) -> None:
    old = RunDir("05_x", "smoke", root=tmp_path)
    old.summary(episodes_to_plateau=143.0)
    run = RunDir("05_x", "smoke", root=tmp_path)  # the next run of the notebook
    run.summary(ratio=1.7)
    assert run.summary(p=0.002) == {"ratio": 1.7, "p": 0.002}
    assert json.loads((run.path / "summary.json").read_text()) == {"ratio": 1.7, "p": 0.002}


def test_run_dir_layout_and_provenance(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    run = RunDir("01_mdp_design", "smoke", config={"seeds": [0, 1]}, root=tmp_path)
    assert run.path == tmp_path / "smoke" / "01_mdp_design"
    cfg = json.loads((run.path / "config.json").read_text())
    assert cfg["config"] == {"seeds": [0, 1]}
    assert set(cfg["git"]) == {"commit", "dirty"}
    assert cfg["packages"]["torch"] is not None and cfg["device"]["cpu_count"] >= 1
    run.write_table("table", pd.DataFrame({"a": [1, 2], "b": [0.5, 0.25]}))
    assert (run.path / "table.csv").read_text().splitlines()[0] == "a,b"
    assert "| a | b |" in (run.path / "table.md").read_text()
    run.summary(dense_top1=0.9)
    assert run.summary(purl_top1=0.8) == {"dense_top1": 0.9, "purl_top1": 0.8}
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = run.save_fig(fig, "curve")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run.path / "figures" / "curve.svg").is_file()
    assert "wall_seconds" in run.finish()
    with pytest.raises(ValueError, match="Unknown PROFILE"):
        RunDir("x", "laptop", root=tmp_path)


def test_figures_are_byte_reproducible(tmp_path: Path) -> None:
    """Drawing the same figure twice writes identical PNG and SVG bytes (no dates, fixed ids)."""
    import matplotlib.pyplot as plt

    saved = []
    for folder in ("a", "b"):
        run = RunDir("fig", "smoke", root=tmp_path / folder)
        fig, ax = plt.subplots()
        ax.imshow([[0.0, 1.0], [1.0, 0.0]])  # an image adds a clip path with a generated id
        ax.set_title("same figure")
        run.save_fig(fig, "same")
        plt.close(fig)
        saved.append(
            {ext: (run.path / "figures" / f"same.{ext}").read_bytes() for ext in ("png", "svg")}
        )
    assert saved[0] == saved[1]
    assert b"<dc:date>" not in saved[0]["svg"]


def test_git_dirty_flag_ignores_results(tmp_path: Path) -> None:
    """Rewritten results do not make a run dirty; a changed source file does."""
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "summary.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert git_info(tmp_path)["dirty"] is False
    (tmp_path / "results" / "summary.json").write_text('{"top1": 0.9}')
    assert git_info(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    info = git_info(tmp_path)
    assert info["dirty"] is True and len(info["commit"]) == 40


def test_profiles() -> None:
    assert by_profile("cpu", smoke=1, cpu=2, gpu=3) == 2
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        check_profile("fast")
    with pytest.raises(TypeError, match="missing"):
        by_profile("cpu", smoke=1, cpu=2)


def test_checkpoint_roundtrip_and_corruption(tmp_path: Path) -> None:
    p = tmp_path / "model.pt"
    save_checkpoint(p, {"w": torch.arange(5)})
    assert torch.equal(load_checkpoint(p)["w"], torch.arange(5))
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="Delete"):
        load_checkpoint(p)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_cached_builds_with_the_workers_thread_count_and_restores_the_callers(
    tmp_path: Path,
) -> None:
    """The key does not name the thread count, so a build must not depend on it."""
    old = torch.get_num_threads()
    seen: list[int] = []
    try:
        torch.set_num_threads(2)
        cached(tmp_path / "a.pt", lambda: seen.append(torch.get_num_threads()) or {"v": 1})
        assert seen == [WORKER_THREADS]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)


def test_cached_rebuilds_corrupt_file(tmp_path: Path) -> None:
    p = tmp_path / "dense.pt"
    calls = []

    def build() -> dict:
        calls.append(1)
        return {"v": len(calls)}

    assert cached(p, build) == {"v": 1}
    assert cached(p, build) == {"v": 1}  # loaded, not rebuilt
    p.write_bytes(b"not a checkpoint")
    p.with_name("dense.pt.sha256").unlink()
    logs: list[str] = []
    assert cached(p, build, log=logs.append) == {"v": 2}
    assert "cannot be read" in logs[0]
    assert (tmp_path / "dense.pt.corrupt").is_file()


def test_config_hash_stable() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_config_hash_refuses_values_without_json_form() -> None:
    with pytest.raises(TypeError):
        config_hash({"fn": lambda: 0})  # its repr holds a memory address: a new hash every run


def test_resume_checkpoint_sets_a_corrupt_one_aside(tmp_path: Path) -> None:
    p = tmp_path / "agent.pt"
    assert resume_checkpoint(p) is None
    save_checkpoint(p, {"episode": 3})
    assert resume_checkpoint(p) == {"episode": 3}
    p.write_bytes(p.read_bytes()[:-5])  # truncated: no longer matches its SHA-256
    logs: list[str] = []
    assert resume_checkpoint(p, log=logs.append) is None
    assert "SHA-256" in logs[0] and not p.exists() and (tmp_path / "agent.pt.corrupt").is_file()


@dataclasses.dataclass(frozen=True)
class _Train:
    lr: float = 0.1
    epochs: int = 3


@dataclasses.dataclass(frozen=True)
class _ModelKey(ArtefactKey):
    """A stand-in kind of artefact: a trained model."""

    KIND = "test/model"
    VERSION = 1
    model: str = "resnet 50/x"
    seed: int = 0
    train: _Train = _Train()
    data: dict = dataclasses.field(default_factory=lambda: {"rows": 100, "name": "digits"})

    @property
    def prefix(self) -> str:
        return f"{self.model}-seed{self.seed}"


def test_artefact_key_same_config_same_path() -> None:
    a = _ModelKey(data={"rows": 100, "name": "digits"})
    b = _ModelKey(data={"name": "digits", "rows": 100})  # dict order does not matter
    assert a.path() == b.path() and a.hashname == b.hashname
    assert a.hashname == "afbe8eb5dcb3"  # the same in every process (no hash salt, no repr)


def test_artefact_key_any_field_change_changes_the_path() -> None:
    base = _ModelKey()
    changed = {
        "model": "mobilenet_v2", "seed": 1, "train": _Train(lr=0.2),
        "data": {"rows": 101, "name": "digits"},
    }  # fmt: skip
    assert set(changed) == {f.name for f in dataclasses.fields(_ModelKey)}  # every field
    paths = {base.path()} | {dataclasses.replace(base, **{k: v}).path() for k, v in changed.items()}
    assert len(paths) == 1 + len(changed)


def test_artefact_key_version_bump_changes_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _ModelKey().path()
    monkeypatch.setattr(_ModelKey, "VERSION", 2)
    after = _ModelKey().path()
    assert after != before and after.parent == before.parent and after.name.startswith("resnet")


def test_artefact_key_path_is_kind_folder_readable_prefix_and_hash(tmp_path: Path) -> None:
    key = _ModelKey(seed=4)
    path = key.path()
    assert path.parent == cache_root() / "test" / "model"
    assert path.name == f"resnet_50_x-seed4__{key.hashname}.pt"  # unsafe characters replaced
    assert key.path(tmp_path) == tmp_path / path.name  # a caller's folder replaces the kind's


def test_artefact_key_kinds_are_unique_and_declare_a_version() -> None:
    with pytest.raises(TypeError, match="already"):

        @dataclasses.dataclass(frozen=True)
        class Clash(ArtefactKey):
            KIND = "test/model"
            VERSION = 1

    with pytest.raises(TypeError, match="VERSION"):

        class NoVersion(ArtefactKey):
            KIND = "test/no_version"


def test_artefact_key_must_be_a_frozen_dataclass() -> None:
    class Plain(ArtefactKey):  # fields not declared: they would be left out of the hash
        KIND = "test/plain"
        VERSION = 1

    with pytest.raises(TypeError, match="frozen"):
        Plain().path()


def test_cached_artefact_is_rebuilt_when_corrupt() -> None:
    key, calls = _ModelKey(seed=9), []

    def build() -> dict:
        calls.append(1)
        return {"weights": torch.full((3,), float(len(calls)))}

    first = cached(key.path(), build)
    assert torch.equal(cached(key.path(), build)["weights"], first["weights"]) and len(calls) == 1
    data = bytearray(key.path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    key.path().write_bytes(bytes(data))
    assert cached(key.path(), build, log=lambda m: None)["weights"][0] == 2.0
    assert len(calls) == 2 and key.path().with_name(key.path().name + ".corrupt").is_file()


def test_written_files_are_world_readable(tmp_path: Path) -> None:
    p = write_json(tmp_path / "a.json", {"x": 1})
    assert p.stat().st_mode & 0o044 == 0o044


def test_summary_lists_committed_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pruning_core import summary

    for profile in ("smoke", "cpu"):
        write_json(
            tmp_path / profile / "01_x" / "summary.json", {"top1": 0.5, "seeds": [0]}
        )
    monkeypatch.setenv("PRUNING_CORE_RESULTS", str(tmp_path))
    text = summary.main(["--profile", "cpu"]).read_text()
    assert "## Profile `cpu`" in text and "smoke" not in text and "| top1 | 0.5 |" in text


class _Payload:
    """Unpickling this runs a command (the attack a crafted .pt file carries)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_loading_a_hostile_checkpoint_runs_nothing(tmp_path: Path) -> None:
    """load_checkpoint (and load_compact, which readers of the committed checkpoints use) read
    with weights_only=True: the planted command never runs and the error says what the file is not."""
    import io

    import torch

    from pruning_core.pruning.export import load_compact
    from pruning_core.runs import UnsafeCheckpointError, load_checkpoint, write_verified

    marker = tmp_path / "ran"
    buf = io.BytesIO()
    torch.save({"format": "pruning_core.compact/1", "x": _Payload(marker)}, buf)
    write_verified(tmp_path / "evil.pt", buf.getvalue())  # a matching sidecar: hashes prove nothing
    for load in (load_checkpoint, load_compact):
        with pytest.raises(UnsafeCheckpointError, match="not a checkpoint of plain data"):
            load(tmp_path / "evil.pt")
        assert not marker.exists()


def test_a_checkpoint_that_would_not_load_back_is_refused_at_the_write(tmp_path: Path) -> None:
    """A DataFrame in a cached result used to be written, refused by the weights-only loader,
    set aside as corrupt and rebuilt on every run; now the write says what to store instead."""
    builds = []

    def frame() -> dict:
        builds.append(1)
        return {"log": pd.DataFrame({"a": [1, 2]})}

    with pytest.raises(TypeError, match=r"DataFrame.*to_dict"):
        cached(tmp_path / "x.pt", frame)
    assert not (tmp_path / "x.pt").exists()

    def plain() -> dict:
        builds.append(1)
        return {"log": pd.DataFrame({"a": [1, 2]}).to_dict("list")}

    assert cached(tmp_path / "y.pt", plain) == cached(tmp_path / "y.pt", plain) == {"log": {"a": [1, 2]}}
    assert len(builds) == 2  # the plain result was built once, then loaded
