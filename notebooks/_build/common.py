"""Shared by the notebook generators: cells as (kind, source) pairs -> a clean notebook."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def build_notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook without outputs; kinds are ``md``, ``code`` and ``params`` (tagged ``parameters``)."""
    out = []
    for kind, source in cells:
        if kind == "md":
            out.append(new_markdown_cell(source))
        elif kind == "params":
            out.append(new_code_cell(source, metadata={"tags": ["parameters"]}))
        else:
            out.append(new_code_cell(source))
    nb = new_notebook(cells=out)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb
