"""`check_notebook`: is this notebook, as saved, what a top-to-bottom run produces?

Static checks (no kernel): execution counts missing, out of order or with gaps; a cell
that uses a name only a later cell defines; names used but defined nowhere (state that
lived only in the kernel); no `parameters` cell; imports of packages the project does
not declare; modules exported from it (`kiln notebook export`) that are older than its
cells (a warning). With `rerun=True` a fresh copy is executed in a new kernel and its outputs
are compared with the saved ones: numbers within a tolerance, with memory addresses,
timestamps, progress bars and stderr ignored, and nbval's cell markers honoured
(`# NBVAL_SKIP`, `# NBVAL_IGNORE_OUTPUT`, `# NBVAL_RAISES_EXCEPTION`,
`# NBVAL_CHECK_OUTPUT` and their tags), so notebooks kept for `pytest --nbval` need no
change.

Findings are errors or warnings: hidden state, out-of-order execution, undeclared
imports and outputs that do not reproduce are errors; a notebook without a `parameters`
cell is only a warning (it may never have been meant to take parameters) unless
`strict=True`.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kiln.notebooks._compare import Finding, read_sanitize_file
from kiln.notebooks._names import KERNEL_NAMES, cell_names
from kiln.notebooks._params import PARAMETERS_TAG, find_tagged

__all__ = ["CheckReport", "Finding", "check_notebook"]


@dataclass
class CheckReport:
    """The findings for one notebook; `ok` when none of them fails the check.

    Attributes:
        path: The notebook checked.
        findings: Errors and warnings, in notebook order per check.
        strict: Whether warnings fail the check too.
    """

    path: str
    findings: list[Finding] = field(default_factory=list)
    strict: bool = False

    @property
    def ok(self) -> bool:
        """Whether nothing was found that fails the check (warnings pass unless strict)."""
        return not any(f.severity == "error" or self.strict for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: path, ok, strict and findings."""
        return {
            "path": self.path,
            "ok": self.ok,
            "strict": self.strict,
            "findings": [asdict(f) for f in self.findings],
        }


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
                "-p would be injected first and overwritten. Tag the cell with the defaults "
                "if the notebook is meant to take parameters.",
                severity="warning",
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


# Import names whose distribution has another name, for when the package is not installed
# (or is installed in a way packages_distributions() cannot see, like an editable kiln).
_KNOWN_DISTS = {
    "kiln": "kiln-ml",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "yaml": "pyyaml",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "dotenv": "python-dotenv",
    "jwt": "pyjwt",
}


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
            owners = {_norm(d) for d in dists.get(top, [])}
            if top in _KNOWN_DISTS:
                owners.add(_norm(_KNOWN_DISTS[top]))
            if not owners:
                owners = {_norm(top)}
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


def _exports(path: Path, nb: Any) -> list[Finding]:
    """A warning per module exported from this notebook that is older than its cells."""
    from kiln.notebooks._export import stale_exports

    return [
        Finding(
            "stale-export",
            None,
            f"{module} was exported from this notebook with `kiln notebook export` and is "
            f"older than it ({why}); export again: kiln notebook export {path} -o {module}",
            severity="warning",
        )
        for module, why in stale_exports(path, nb)
    ]


def check_notebook(
    notebook: str | os.PathLike[str],
    *,
    rerun: bool = False,
    timeout: float | None = 600.0,
    rtol: float = 1e-6,
    imports: bool = True,
    strict: bool = False,
    lax: bool = False,
    sanitize_with: str | os.PathLike[str] | None = None,
) -> CheckReport:
    """Check that a saved notebook is what running it top to bottom produces.

    Args:
        notebook: Path of the .ipynb file.
        rerun: Also execute a fresh copy (not tracked) and compare outputs.
        timeout: Seconds a cell may run during the rerun.
        rtol: Relative tolerance for numbers in compared outputs.
        imports: Check imports against the nearest pyproject.toml.
        strict: Warnings (no `parameters` cell) fail the check too.
        lax: Compare only the outputs of cells marked `# NBVAL_CHECK_OUTPUT` (or tagged
            `nbval-check-output`), as `pytest --nbval-lax` does.
        sanitize_with: An nbval sanitize file (`regex: ...` / `replace: ...` line pairs)
            applied to both outputs before they are compared.

    Returns:
        A `CheckReport`; `report.ok` is False when an error was found (or a warning,
        when strict). Cell indices count the notebook's code cells from 0.
    """
    from kiln.notebooks._run import read_notebook

    path = Path(notebook)
    nb = read_notebook(path)
    cells = _code_cells(nb)
    tagged = find_tagged(nb, PARAMETERS_TAG)
    pindex = None if tagged < 0 else sum(c.cell_type == "code" for c in nb.cells[:tagged])
    report = CheckReport(os.fspath(notebook), strict=strict)
    report.findings += _counts(cells)
    report.findings += _names(cells, pindex)
    if imports:
        report.findings += _imports(path, cells)
    report.findings += _exports(path, nb)
    if rerun:
        from kiln.notebooks._compare import rerun_findings

        patterns = read_sanitize_file(sanitize_with) if sanitize_with is not None else []
        report.findings += rerun_findings(
            nb, path, timeout=timeout, rtol=rtol, lax=lax, sanitize=patterns
        )
    return report
