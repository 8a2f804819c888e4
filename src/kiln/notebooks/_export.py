"""`export_notebook`: the code cells tagged `export` as an importable module (nbdev's habit).

Code that was worked out in a notebook, and is tested, leaves it: the cells tagged
`export` (or whose first line is nbdev's `#| export`) are written, in order, to a `.py`
module headed by a comment that names the source notebook, the git commit it was at,
and a digest of the exported code. `check_notebook` reads that header back: a module
whose digest no longer matches its notebook's export cells is older than the notebook,
and the check warns (`stale-export`).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from kiln._exceptions import NotebookError

__all__ = ["EXPORT_TAG", "export_notebook", "exported_code", "stale_exports"]

EXPORT_TAG = "export"
_NBDEV = re.compile(r"^\s*#\|\s*export\s*$")
_HEADER = re.compile(
    r"^# kiln-export: source=(?P<source>.+?) sha256=(?P<digest>[0-9a-f]{64})$", re.M
)
_SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".tox",
    ".nox",
    "build",
    "dist",
}
_SCAN_LIMIT = 5000  # .py files looked at for exported modules, at most


def exported_code(nb: Any) -> list[tuple[int, str]]:
    """(code cell index, source) of each cell to export, the `#| export` line dropped."""
    found: list[tuple[int, str]] = []
    index = -1
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        index += 1
        lines = cell.source.splitlines()
        tags = (cell.metadata.get("tags") or []) if "metadata" in cell else []
        if lines and _NBDEV.match(lines[0]):
            found.append((index, "\n".join(lines[1:]).strip("\n")))
        elif EXPORT_TAG in tags:
            found.append((index, cell.source.strip("\n")))
    return found


def _digest(cells: list[tuple[int, str]]) -> str:
    return hashlib.sha256("\n\0".join(src for _, src in cells).encode("utf-8")).hexdigest()


def _commit(path: Path) -> str:
    """The commit the notebook's repository is at, and whether the notebook has changes."""
    folder = str(path.parent)
    try:
        head = subprocess.run(
            ["git", "-C", folder, "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", folder, "status", "--porcelain", "--", path.name],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "not in a git repository"
    return f"commit {head}" + (", with uncommitted changes to the notebook" if dirty else "")


def export_notebook(notebook: str | os.PathLike[str], output: str | os.PathLike[str]) -> Path:
    """Write the notebook's cells tagged `export` to `output` as a Python module.

    Args:
        notebook: The notebook (.ipynb, or a jupytext-paired text file).
        output: The module's path (its folder is made).

    Returns:
        The module's path.

    Raises:
        NotebookError: No cell is tagged `export`, or an exported cell holds IPython
            syntax (a magic or shell escape) or does not parse as Python.
    """
    from kiln.notebooks._run import read_notebook

    path = Path(notebook)
    nb = read_notebook(path)
    cells = exported_code(nb)
    if not cells:
        raise NotebookError(
            f"{str(path)!r} has no code cell tagged {EXPORT_TAG!r}: nothing to export. Tag "
            "the cells that define the module's functions 'export' (View > Cell Toolbar > "
            "Tags in Jupyter), or start them with a '#| export' line."
        )
    for index, source in cells:
        for number, line in enumerate(source.splitlines(), 1):
            if line.lstrip().startswith(("%", "!")):
                raise NotebookError(
                    f"Code cell {index} of {str(path)!r} is tagged {EXPORT_TAG!r} but its line "
                    f"{number} ({line.strip()!r}) is IPython syntax, not Python: a module "
                    "cannot run it. Move it to a cell that is not exported."
                )
        try:
            compile(source, f"{path.name}, code cell {index}", "exec")
        except SyntaxError as exc:
            raise NotebookError(
                f"Code cell {index} of {str(path)!r} is tagged {EXPORT_TAG!r} but is not valid "
                f"Python (line {exc.lineno}: {exc.msg}); fix the cell and export again."
            ) from None
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    source = os.path.relpath(path.resolve(), out.resolve().parent).replace(os.sep, "/")
    header = [
        f"# Exported from {source} by `kiln notebook export` ({_commit(path.resolve())}).",
        f"# Do not edit: change the notebook's cells tagged {EXPORT_TAG!r} and export again.",
        f"# kiln-export: source={source} sha256={_digest(cells)}",
    ]
    body = "\n\n\n".join(src for _, src in cells)
    out.write_text("\n".join(header) + "\n\n" + body + "\n", encoding="utf-8")
    return out


def _root(path: Path) -> Path:
    for folder in [path.parent, *path.parent.parents]:
        if (folder / "pyproject.toml").is_file() or (folder / ".git").exists():
            return folder
    return path.parent


def stale_exports(notebook: str | os.PathLike[str], nb: Any) -> list[tuple[Path, str]]:
    """Modules exported from `notebook` (found under its project) whose code is older
    than the notebook's export cells: (module path, why)."""
    path = Path(notebook).resolve()
    current = _digest(exported_code(nb))
    stale: list[tuple[Path, str]] = []
    seen = 0
    for folder, dirs, files in os.walk(_root(path)):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in files:
            if not name.endswith(".py"):
                continue
            seen += 1
            if seen > _SCAN_LIMIT:
                return stale
            module = Path(folder) / name
            try:
                with open(module, encoding="utf-8", errors="replace") as fh:
                    head = fh.read(1024)
            except OSError:
                continue
            match = _HEADER.search(head)
            if match is None:
                continue
            if (module.parent / match["source"]).resolve() != path:
                continue
            if match["digest"] != current:
                stale.append((module, "the notebook's export cells changed since it was exported"))
    return stale
