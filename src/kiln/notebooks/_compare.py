"""Re-execute a notebook in a fresh kernel and compare its outputs with the saved ones."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

__all__ = ["output_text", "rerun_findings"]

_NOISE = [
    (re.compile(r"0x[0-9a-fA-F]{6,}"), "0x?"),  # memory addresses
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b"), "<time>"),
]  # fmt: skip
_PROGRESS = re.compile(r"\d+%\|")


def output_text(cell: Any) -> str:
    """A cell's comparable output: stdout, text/plain results, error names; noise removed."""
    parts: list[str] = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stdout":
                parts.append(str(out.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = out.get("data", {})
            if "text/plain" in data:
                parts.append(str(data["text/plain"]))
            else:
                parts.append(f"<{', '.join(sorted(data))}>")
        elif kind == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
    text = "".join(p if p.endswith("\n") else p + "\n" for p in parts)
    lines = [ln.rsplit("\r", 1)[-1] for ln in text.splitlines()]  # keep a line's final state
    text = "\n".join(ln for ln in lines if not _PROGRESS.search(ln))
    for pattern, replacement in _NOISE:
        text = pattern.sub(replacement, text)
    return text.strip()


def rerun_findings(nb: Any, path: Path, *, timeout: float | None, rtol: float) -> list[Any]:
    """Findings for code cells whose fresh outputs differ from the saved ones."""
    from kiln.notebooks._check import Finding, numbers_close
    from kiln.notebooks._kernel import Kernel, execute
    from kiln.notebooks._run import _kernel_name

    fresh = copy.deepcopy(nb)
    for cell in fresh.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    kernel = Kernel.start(_kernel_name(nb, None), str(path.resolve().parent))
    try:
        done = execute(fresh, kernel, timeout=timeout)
    finally:
        kernel.shutdown()
    saved = [c for c in nb.cells if c.cell_type == "code"]
    ran = [c for c in fresh.cells if c.cell_type == "code"]
    stop = None
    if done.failure is not None:
        stop = sum(c.cell_type == "code" for c in fresh.cells[: done.failure.position])
    findings: list[Any] = []
    for i, (old, new) in enumerate(zip(saved, ran, strict=True)):
        if stop is not None and i > stop:
            break
        if i == stop and done.failure is not None:
            failure = done.failure
            findings.append(
                Finding(
                    "rerun-error",
                    i,
                    f"Code cell {i} fails when the notebook runs top to "
                    f"bottom in a fresh kernel: {failure.ename}: {failure.evalue}",
                )
            )
            break
        a, b = output_text(old), output_text(new)
        if a != b and not numbers_close(a, b, rtol):
            first = next(
                ((x, y) for x, y in zip([*a.splitlines(), ""], [*b.splitlines(), ""], strict=False) if x != y),
                (a, b),
            )  # fmt: skip
            findings.append(
                Finding(
                    "output-mismatch",
                    i,
                    f"Code cell {i}'s saved output does not reproduce: "
                    f"saved {first[0]!r}, fresh run {first[1]!r}.",
                )
            )
    return findings
