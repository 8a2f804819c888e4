"""Small notebooks written for the notebook tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def write_nb(path: Path, *cells: Any, parameters: int | None = 0) -> Path:
    """Write a notebook whose cells are sources (code) or ("md", text); cell `parameters`
    (an index into `cells`) gets the parameters tag."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    made = []
    for i, cell in enumerate(cells):
        if isinstance(cell, tuple):
            made.append(new_markdown_cell(cell[1]))
            continue
        tags = ["parameters"] if i == parameters else []
        made.append(new_code_cell(cell, metadata={"tags": tags} if tags else {}))
    nb = new_notebook(cells=made, metadata={"kernelspec": KERNELSPEC})
    nbformat.write(nb, path)
    return path


def code_texts(nb: Any) -> list[str]:
    """Each code cell's stdout and text/plain results, joined."""
    texts = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stdout":
                parts.append(out.text)
            elif out.output_type == "execute_result":
                parts.append(out.data.get("text/plain", ""))
        texts.append("".join(parts))
    return texts
