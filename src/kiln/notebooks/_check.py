"""`check_notebook`: is this notebook, as saved, what a top-to-bottom run produces?

Static checks (no kernel): execution counts missing, out of order or with gaps; a cell
that uses a name only a later cell defines; names used but defined nowhere (state that
lived only in the kernel); no `parameters` cell; imports of packages the project does
not declare. With `rerun=True` a fresh copy is executed in a new kernel and its outputs
are compared with the saved ones: numbers within a tolerance, with memory addresses,
timestamps, progress bars and stderr ignored.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kiln.notebooks._names import KERNEL_NAMES, cell_names
from kiln.notebooks._params import PARAMETERS_TAG, find_tagged

__all__ = ["CheckReport", "Finding", "check_notebook"]


@dataclass(frozen=True)
class Finding:
    """One problem found by `check_notebook`.

    Attributes:
        kind: missing-count, out-of-order, count-gap, defined-later, undefined,
            no-parameters, undeclared-import, output-mismatch or rerun-error.
        cell: Index among the notebook's code cells (None for the notebook as a whole).
        message: What is wrong and how to fix it.
    """

    kind: str
    cell: int | None
    message: str


@dataclass
class CheckReport:
    """The findings for one notebook; `ok` when there are none."""

    path: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing was found."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: path, ok and findings."""
        return {"path": self.path, "ok": self.ok, "findings": [asdict(f) for f in self.findings]}


def _code_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code"]


def _counts(cells: list[Any]) -> list[Finding]:
    found: list[Finding] = []
    ran = [(i, c.execution_count) for i, c in enumerate(cells) if c.source.strip()]
    if not any(n is not None for _, n in ran):
        return found  # saved without running: nothing to compare
    previous: int | None = None
    for i, n in ran:
        if n is None:
            found.append(
                Finding(
                    "missing-count",
                    i,
                    f"Code cell {i} was never run, but the cells around "
                    "it were: its effects are missing from the saved outputs. Restart the "
                    "kernel and run all cells.",
                )
            )
            continue
        if previous is not None and n <= previous:
            found.append(
                Finding(
                    "out-of-order",
                    i,
                    f"Code cell {i} ran as [{n}], before the cell above it "
                    f"([{previous}]): the notebook was executed out of order. Restart the "
                    "kernel and run all cells.",
                )
            )
        previous = n
    shown = {n for _, n in ran if n is not None}
    hidden = sorted(set(range(1, max(shown) + 1)) - shown)
    if hidden:
        listed = ", ".join(f"[{n}]" for n in hidden[:5]) + (" ..." if len(hidden) > 5 else "")
        found.append(
            Finding(
                "count-gap",
                None,
                f"{len(hidden)} execution(s) ({listed}) happened that the "
                "notebook does not show (cells re-run, or since edited or deleted): its "
                "outputs may depend on them. Restart the kernel and run all cells.",
            )
        )
    return found


def _names(cells: list[Any], parameters_index: int | None) -> list[Finding]:
    found: list[Finding] = []
    per_cell = [cell_names(c.source) for c in cells]
    first_def: dict[str, int] = {}
    for i, names in enumerate(per_cell):
        for name in names.defines:
            first_def.setdefault(name, i)
    defined: set[str] = set(KERNEL_NAMES)
    star = False
    for i, names in enumerate(per_cell):
        star = star or names.star_import
        for name in names.uses:
            if name in defined:
                continue
            later = first_def.get(name)
            if later is not None and later > i:
                found.append(
                    Finding(
                        "defined-later",
                        i,
                        f"Code cell {i} uses {name!r}, which only code "
                        f"cell {later} (below it) defines: run top to bottom, it fails. Move "
                        "the definition up.",
                    )
                )
            elif later is None and not star and names.parsed:
                found.append(
                    Finding(
                        "undefined",
                        i,
                        f"Code cell {i} uses {name!r}, which no cell defines: "
                        "it existed only in the kernel that saved the notebook (hidden "
                        "state). Define it in a cell.",
                    )
                )
        defined |= names.defines
        defined -= names.deletes
    if parameters_index is None:
        found.append(
            Finding(
                "no-parameters",
                None,
                "No cell is tagged 'parameters': values passed with "
                "-p would be injected first and overwritten. Tag the cell with the defaults.",
            )
        )
    return found


def _declared(start: Path) -> set[str] | None:
    """Distribution names the nearest pyproject.toml declares (any extra), normalized."""
    import tomllib

    for folder in [start, *start.parents]:
        file = folder / "pyproject.toml"
        if file.is_file():
            data = tomllib.loads(file.read_text(encoding="utf-8"))
            project = data.get("project", {})
            specs = list(project.get("dependencies", []))
            for extra in project.get("optional-dependencies", {}).values():
                specs += extra
            names = {_norm(re.split(r"[\s\[<>=!~;@(]", s, maxsplit=1)[0]) for s in specs}
            names.add(_norm(project.get("name", "")))
            return names
    return None


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(nb_path: Path, cells: list[Any]) -> list[Finding]:
    declared = _declared(nb_path.resolve().parent)
    if declared is None:
        return []
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    found: list[Finding] = []
    seen: set[str] = set()
    for i, cell in enumerate(cells):
        for module in cell_names(cell.source).imports:
            top = module.split(".")[0]
            if top in seen or top in sys.stdlib_module_names:
                continue
            seen.add(top)
            local = nb_path.resolve().parent
            if (local / f"{top}.py").exists() or (local / top).is_dir():
                continue
            owners = {_norm(d) for d in dists.get(top, [top])}
            if not owners & declared:
                found.append(
                    Finding(
                        "undeclared-import",
                        i,
                        f"Code cell {i} imports {top!r} (from "
                        f"{', '.join(sorted(owners))}), which pyproject.toml does not "
                        "declare: a fresh environment will not have it. Add it to the "
                        "project's dependencies.",
                    )
                )
    return found


def check_notebook(
    notebook: str | os.PathLike[str],
    *,
    rerun: bool = False,
    timeout: float | None = 600.0,
    rtol: float = 1e-6,
    imports: bool = True,
) -> CheckReport:
    """Check that a saved notebook is what running it top to bottom produces.

    Args:
        notebook: Path of the .ipynb file.
        rerun: Also execute a fresh copy (not tracked) and compare outputs.
        timeout: Seconds a cell may run during the rerun.
        rtol: Relative tolerance for numbers in compared outputs.
        imports: Check imports against the nearest pyproject.toml.

    Returns:
        A `CheckReport`; `report.ok` is False when anything was found. Cell indices
        count the notebook's code cells from 0.
    """
    from kiln.notebooks._run import read_notebook

    path = Path(notebook)
    nb = read_notebook(path)
    cells = _code_cells(nb)
    tagged = find_tagged(nb, PARAMETERS_TAG)
    pindex = None if tagged < 0 else sum(c.cell_type == "code" for c in nb.cells[:tagged])
    report = CheckReport(os.fspath(notebook))
    report.findings += _counts(cells)
    report.findings += _names(cells, pindex)
    if imports:
        report.findings += _imports(path, cells)
    if rerun:
        from kiln.notebooks._compare import rerun_findings

        report.findings += rerun_findings(nb, path, timeout=timeout, rtol=rtol)
    return report


def numbers_close(a: str, b: str, rtol: float) -> bool:
    """Whether two texts are equal once numbers are compared with a relative tolerance."""
    pattern = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
    if pattern.sub("#", a) != pattern.sub("#", b):
        return False
    for x, y in zip(pattern.findall(a), pattern.findall(b), strict=True):
        if not math.isclose(float(x), float(y), rel_tol=rtol, abs_tol=1e-12):
            return False
    return True
