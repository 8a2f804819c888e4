"""Preloading: a fresh kernel imports the notebook's libraries while it waits.

A kernel launched ahead of time (at the start of `run_notebook`, or during the previous
notebook of a sweep) would otherwise sit idle until the first cell. kiln gives it the
top-level `import` statements found in the notebook's code cells, to run at start-up
through `IPKernelApp.exec_lines`: only the imports, never notebook code, and no name is
left in the notebook's namespace (the modules are only in `sys.modules`, as after any
import). Each kernel is still fresh and used for one notebook only.

Imports are not preloaded from the first cell that could change how a library loads:
one touching `os.environ`, `sys.path`, `matplotlib.use` or `%env`; nor modules that
live next to the notebook (it may write them). `preload=False` turns it off.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

__all__ = ["preload_args", "preload_modules"]

_STOP = re.compile(r"os\.environ|putenv|sys\.path|matplotlib\.use|^\s*%env|^\s*%%", re.M)


def preload_modules(path: str | os.PathLike[str], cwd: str | None = None) -> list[str]:
    """Modules imported at top level by the notebook's code cells, in order (see above)."""
    p = Path(path)
    try:
        cells = json.loads(p.read_text(encoding="utf-8"))["cells"] if p.suffix == ".ipynb" else []
    except (OSError, ValueError, KeyError):
        return []
    local = {p.resolve().parent, Path(cwd or os.getcwd()).resolve()}
    found: list[str] = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if _STOP.search(source):
            break
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in tree.body:
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if any((d / f"{top}.py").exists() or (d / top).is_dir() for d in local):
                    continue
                if name not in found:
                    found.append(name)
    return found


def preload_args(modules: list[str]) -> list[str]:
    """ipykernel arguments that import `modules` at start-up, ignoring failures."""
    if not modules:
        return []
    code = (
        "import importlib as _kiln_il\n"
        f"for _kiln_m in {modules!r}:\n"
        "    try:\n"
        "        _kiln_il.import_module(_kiln_m)\n"
        "    except BaseException:\n"
        "        pass\n"
        "del _kiln_il, _kiln_m"
    )
    return [f"--IPKernelApp.exec_lines={code}"]
