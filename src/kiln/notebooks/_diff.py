"""Notebooks in version control: a readable text form, diffs of it, jupytext pairing.

`notebook_text` renders a notebook as reviewers want to read it: each cell's source
under a `# %% [kind] cell N` header (jupytext's percent format), then its text outputs
with images and HTML summarised as one line (type, size, short hash). `diff_notebooks`
is a unified diff of two such renderings; `kiln notebook show` is a git `textconv`.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from pathlib import Path
from typing import Any

__all__ = ["diff_notebooks", "notebook_text", "pair_notebook"]

_TEXT_TYPES = ("text/plain", "text/markdown", "application/json")


def _summary(mime: str, data: Any) -> str:
    raw = data if isinstance(data, str) else str(data)
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    size = len(raw) * 3 // 4 if mime.startswith("image/") and "svg" not in mime else len(raw)
    return f"<{mime} {size / 1024:.1f} KB sha256:{digest}>"


def _outputs(cell: Any) -> list[str]:
    lines: list[str] = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            lines += [f"[{out.get('name')}] {ln}" for ln in str(out.get("text", "")).splitlines()]
        elif kind == "error":
            lines.append(f"[error] {out.get('ename')}: {out.get('evalue')}")
        elif kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            for mime in sorted(data):
                if mime in _TEXT_TYPES:
                    lines += [f"[{mime}] {ln}" for ln in str(data[mime]).splitlines()]
                elif mime != "text/plain":
                    lines.append(f"[{mime}] {_summary(mime, data[mime])}")
    return lines


def notebook_text(notebook: str | os.PathLike[str] | Any, *, outputs: bool = True) -> str:
    """A notebook as reviewable text: cell sources and summarised outputs.

    Args:
        notebook: A path, or an nbformat notebook.
        outputs: Include outputs (text in full, images and HTML as a one-line summary).
    """
    from kiln.notebooks._run import read_notebook

    nb = read_notebook(notebook) if isinstance(notebook, str | os.PathLike) else notebook
    lines: list[str] = []
    code = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags") or []
        suffix = f" tags={sorted(tags)}" if tags else ""
        if cell.cell_type == "code":
            lines.append(f"# %% code cell {code}{suffix}")
            code += 1
        else:
            lines.append(f"# %% [{cell.cell_type}]{suffix}")
        lines += cell.source.splitlines()
        if outputs and cell.cell_type == "code":
            shown = _outputs(cell)
            if shown:
                lines.append("# ---- outputs")
                lines += shown
        lines.append("")
    return "\n".join(lines)


def diff_notebooks(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    outputs: bool = True,
    context: int = 3,
) -> str:
    """A unified diff of two notebooks' sources and text outputs ('' when equal).

    Metadata, execution counts and cell ids are left out; images and HTML outputs are
    compared by a one-line summary with a content hash.

    Args:
        a: The old notebook.
        b: The new notebook.
        outputs: Compare outputs too.
        context: Lines of context around each change.
    """
    left = notebook_text(a, outputs=outputs).splitlines()
    right = notebook_text(b, outputs=outputs).splitlines()
    return "\n".join(
        difflib.unified_diff(left, right, os.fspath(a), os.fspath(b), lineterm="", n=context)
    )


def pair_notebook(notebook: str | os.PathLike[str], fmt: str = "py:percent") -> list[Path]:
    """Pair an .ipynb with a jupytext text file (or bring an existing pair in sync).

    The first call writes `<name>.py` next to `<name>.ipynb` (or, given a `.py`, creates
    the `.ipynb`) and records the pairing in the notebook's metadata. Later calls sync
    them: cell sources come from whichever file was modified last; outputs always come
    from the .ipynb.

    Args:
        notebook: Either file of the pair.
        fmt: The jupytext format of the text file (default: percent scripts).

    Returns:
        The paths written.
    """
    from kiln._extras import require

    jupytext = require("jupytext", "notebooks", "Pairing notebooks")
    from jupytext.combine import combine_inputs_with_outputs

    path = Path(notebook)
    ext = "." + fmt.split(":")[0]
    ipynb, text = path.with_suffix(".ipynb"), path.with_suffix(ext)
    if not ipynb.exists() and not text.exists():
        from kiln._exceptions import NotebookError

        raise NotebookError(f"Neither {str(ipynb)!r} nor {str(text)!r} exists: nothing to pair.")
    written: list[Path] = []
    if ipynb.exists() and text.exists() and text.stat().st_mtime > ipynb.stat().st_mtime:
        nb = combine_inputs_with_outputs(jupytext.read(text), jupytext.read(ipynb), fmt=fmt)
    elif ipynb.exists():
        nb = jupytext.read(ipynb)
    else:
        nb = jupytext.read(text)
    nb.metadata.setdefault("jupytext", {})["formats"] = f"ipynb,{fmt}"
    jupytext.write(nb, ipynb, fmt="ipynb")
    jupytext.write(nb, text, fmt=fmt)
    written += [ipynb, text]
    return written
