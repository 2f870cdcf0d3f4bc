"""The README is a front page that links to docs/, and the pages say what the code does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md"))
FRONT = ROOT / "README.md"


def _links(path: Path) -> list[str]:
    return [m for m in re.findall(r"\]\(([^)#\s]+)", path.read_text()) if "://" not in m]


def test_readme_is_a_front_page() -> None:
    text = FRONT.read_text()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    assert len(prose.split()) <= 800, "the README is a front page: move details into docs/"
    assert "--allow-root" in text, "the JupyterLab command must work as root"
    linked = {Path(link).name for link in _links(FRONT)}
    assert {p.name for p in PAGES} <= linked, "every page under docs/ is linked from the README"


@pytest.mark.parametrize("path", [FRONT, *PAGES], ids=lambda p: p.name)
def test_links_resolve_and_no_internal_issue_numbers(path: Path) -> None:
    missing = [link for link in _links(path) if not (path.parent / link).exists()]
    assert not missing, f"{path.name}: broken links {missing}"
    assert not re.search(r"\bissues? #?\d+|(?<![\w/])#\d+\b", path.read_text()), (
        f"{path.name} cites internal issue numbers; say what changed instead")


def test_every_environment_variable_is_documented() -> None:
    names = set()
    for src in (ROOT / "pruning_core").rglob("*.py"):
        names |= set(re.findall(r"environ(?:\.get)?[\[(]\s*\"([A-Z_]+)\"", src.read_text()))
    names |= {"DEVICE"}  # read through devices.DEVICE_ENV
    shell = (ROOT / "run_all.sh").read_text()
    names |= set(re.findall(r"\$\{([A-Z_]+):-", shell))
    doc = (ROOT / "docs" / "environment.md").read_text()
    undocumented = sorted(n for n in names if f"`{n}`" not in doc)
    assert not undocumented, f"document these in docs/environment.md: {undocumented}"


def test_glossary_defines_the_notebooks_symbols() -> None:
    text = (ROOT / "docs" / "glossary.md").read_text()
    for term in ("**alpha**", "**S\\***", "**A\\***", "**L**", "**C**", "**yardstick**", "**constant policy**"):
        assert term in text, f"the glossary lacks {term}"


NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_open_as_a_lesson(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    head = "\n".join("".join(c["source"]) for c in cells[:4] if c["cell_type"] == "markdown")
    for section in ("## Learning objectives", "## Prerequisites", "## Time per profile"):
        assert section in head, f"{path.name} lacks '{section}' near its top"
    tail = "".join(cells[-1]["source"]) + "".join(cells[-2]["source"])
    assert "Exercises" in tail, f"{path.name} ends without exercises"
