"""Re-execute a notebook in a fresh kernel and compare its outputs with the saved ones.

The comparison follows nbval's rules, so notebooks kept for `pytest --nbval` work
unchanged: a cell whose source has a comment line `# NBVAL_SKIP` (or the tag
`nbval-skip`) is not run; `# NBVAL_IGNORE_OUTPUT` (`nbval-ignore-output`) is run but its
output is not compared; `# NBVAL_RAISES_EXCEPTION` (`nbval-raises-exception` or
`raises-exception`) may raise without stopping the run, its error still compared;
`# NBVAL_CHECK_OUTPUT` (`nbval-check-output`) is compared in lax mode, where no other
cell is. A saved cell that was never executed (no execution count) has nothing to
compare against. Memory addresses, timestamps, progress bars and stderr are ignored,
and an nbval sanitize file (`regex:`/`replace:` line pairs) can add rules.
"""

from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Finding", "cell_markers", "numbers_close", "output_text", "read_sanitize_file", "rerun_findings"]  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One problem found by `check_notebook`.

    Attributes:
        kind: missing-count, out-of-order, count-gap, defined-later, undefined,
            no-parameters, undeclared-import, output-mismatch, rerun-error or stale-export.
        cell: Index among the notebook's code cells (None for the notebook as a whole).
        message: What is wrong and how to fix it.
        severity: "error" (fails the check) or "warning" (fails it only when strict).
    """

    kind: str
    cell: int | None
    message: str
    severity: str = "error"


_NOISE = [
    (re.compile(r"0x[0-9a-fA-F]{6,}"), "0x?"),  # memory addresses
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b"), "<time>"),
]  # fmt: skip
_PROGRESS = re.compile(r"\d+%\|")

# nbval's markers: a comment line's text (after '#', stripped) or a cell tag -> what it sets.
_COMMENTS = {
    "NBVAL_IGNORE_OUTPUT": ("check", False),
    "PYTEST_VALIDATE_IGNORE_OUTPUT": ("check", False),
    "NBVAL_CHECK_OUTPUT": ("check", True),
    "NBVAL_RAISES_EXCEPTION": ("raises", True),
    "NBVAL_SKIP": ("skip", True),
}
_TAGS = {name.lower().replace("_", "-"): what for name, what in _COMMENTS.items()}
_TAGS["raises-exception"] = ("raises", True)


def cell_markers(cell: Any) -> dict[str, bool]:
    """The nbval markers of a code cell: which of check, raises and skip it sets.

    Comment lines and tags both count; where two disagree (ignore and check), the
    last one read wins, as in nbval (comments first, then tags).
    """
    found: dict[str, bool] = {}
    for line in str(cell.get("source", "")).splitlines():
        line = line.strip()
        if line.startswith("#"):
            what = _COMMENTS.get(line.lstrip("#").strip())
            if what is not None:
                found[what[0]] = what[1]
    tags = cell.get("metadata", {}).get("tags", [])
    for tag in tags if isinstance(tags, list) else []:
        what = _TAGS.get(tag)
        if what is not None:
            found[what[0]] = what[1]
    return found


def read_sanitize_file(path: str | os.PathLike[str]) -> list[tuple[re.Pattern[str], str]]:
    """The (regex, replacement) pairs of an nbval sanitize file.

    The file holds `regex: PATTERN` lines each followed by a `replace: TEXT` line;
    `[section]` headers and other lines are ignored, as in nbval.
    """
    from kiln._exceptions import ConfigurationError

    text = Path(path).read_text(encoding="utf-8")
    pairs = re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)
    compiled: list[tuple[re.Pattern[str], str]] = []
    for pattern, replacement in pairs:
        try:
            compiled.append((re.compile(pattern), replacement))
        except re.error as exc:
            raise ConfigurationError(
                f"The sanitize file {os.fspath(path)} has an invalid regex {pattern!r}: {exc}. "
                "Each rule is a 'regex: PATTERN' line followed by a 'replace: TEXT' line."
            ) from exc
    return compiled


def output_text(cell: Any, sanitize: list[tuple[re.Pattern[str], str]] | None = None) -> str:
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
    for pattern, replacement in sanitize or []:
        text = pattern.sub(replacement, text)
    lines = [ln.rsplit("\r", 1)[-1] for ln in text.splitlines()]  # keep a line's final state
    text = "\n".join(ln for ln in lines if not _PROGRESS.search(ln))
    for pattern, replacement in _NOISE:
        text = pattern.sub(replacement, text)
    return text.strip()


def numbers_close(a: str, b: str, rtol: float) -> bool:
    """Whether two texts are equal once numbers are compared with a relative tolerance."""
    pattern = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
    if pattern.sub("#", a) != pattern.sub("#", b):
        return False
    for x, y in zip(pattern.findall(a), pattern.findall(b), strict=True):
        if not math.isclose(float(x), float(y), rel_tol=rtol, abs_tol=1e-12):
            return False
    return True


def rerun_findings(
    nb: Any,
    path: Path,
    *,
    timeout: float | None,
    rtol: float,
    lax: bool = False,
    sanitize: list[tuple[re.Pattern[str], str]] | None = None,
) -> list[Finding]:
    """Findings for code cells whose fresh outputs differ from the saved ones."""
    from kiln.notebooks._kernel import Kernel, execute
    from kiln.notebooks._run import _kernel_name

    fresh = copy.deepcopy(nb)
    markers: list[dict[str, bool]] = []
    for cell in fresh.cells:
        if cell.cell_type != "code":
            continue
        marks = cell_markers(cell)
        markers.append(marks)
        cell.outputs = []
        cell.execution_count = None
        if marks.get("skip"):
            cell.source = ""  # not run: nbclient skips empty cells
        elif marks.get("raises"):
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if "raises-exception" not in tags:
                tags.append("raises-exception")  # nbclient goes on after its error
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
    findings: list[Finding] = []
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
                    f"bottom in a fresh kernel: {failure.ename}: {failure.evalue}. If the "
                    "error is expected, mark the cell '# NBVAL_RAISES_EXCEPTION'.",
                )
            )
            break
        marks = markers[i]
        compare = marks.get("check", not lax) and not marks.get("skip")
        if not compare or old.get("execution_count") is None:
            continue  # ignored, skipped, or never run when the notebook was saved
        a, b = output_text(old, sanitize), output_text(new, sanitize)
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
                    f"saved {first[0]!r}, fresh run {first[1]!r}. If it is not meant to, "
                    "mark the cell '# NBVAL_IGNORE_OUTPUT'.",
                )
            )
    return findings
