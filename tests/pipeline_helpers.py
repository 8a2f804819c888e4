"""Helpers for pipeline tests: generated step modules that tests edit and reload."""

from __future__ import annotations

import importlib
import linecache
import os
import shutil
import sys
import uuid
from pathlib import Path
from types import ModuleType

import yaml


class Project:
    """A project folder with one generated step module, params.yaml and input files."""

    def __init__(self, root: Path, source: str, params: dict | None = None) -> None:
        self.root = root
        self.name = f"steps_{uuid.uuid4().hex[:10]}"
        self.path = root / f"{self.name}.py"
        root.mkdir(parents=True, exist_ok=True)
        if params is not None:
            self.set_params(params)
        self.write(source)
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        self.module: ModuleType = importlib.import_module(self.name)

    def write(self, source: str) -> None:
        self.path.write_text(source, encoding="utf-8")
        shutil.rmtree(self.root / "__pycache__", ignore_errors=True)
        linecache.clearcache()

    def edit(self, source: str) -> ModuleType:
        """Rewrite the module and reload it (same module name, so other steps' keys hold)."""
        self.write(source)
        st = self.path.stat()
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
        importlib.invalidate_caches()
        self.module = importlib.reload(self.module)
        return self.module

    def set_params(self, params: dict) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")


def chain_source(n: int, *, helper: str = "x + 1", tweak: dict[int, str] | None = None) -> str:
    """A chain s0 -> s1 -> ... -> s{n-1} of small list-building steps.

    s30 calls the helper `_helper`, s60 reads the param `scale`, s70 reads the input
    file `data` (a Path). `tweak` replaces a step's appended expression.
    """
    tweak = tweak or {}
    out = [
        "from pathlib import Path",
        "",
        "",
        "def _helper(x):",
        f"    return {helper}",
        "",
        "",
        "def s0(seed):",
        "    return [seed]",
    ]
    for i in range(1, n):
        args = f"s{i - 1}"
        expr = tweak.get(i, str(i))
        if i == 30:
            expr = tweak.get(i, "_helper(30)")
        if i == 60:
            args += ", scale"
            expr = tweak.get(i, "scale")
        if i == 70:
            args += ", data: Path"
            expr = tweak.get(i, "len(data.read_text())")
        out += ["", "", f"def s{i}({args}):", f"    return s{i - 1} + [{expr}]"]
    return "\n".join(out) + "\n"
