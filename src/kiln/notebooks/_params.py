"""Parameters: parsing `-p` values, papermill's value translation and cell injection.

kiln injects parameters the way papermill 2.x does, so papermill notebooks run unchanged:
a new code cell tagged `injected-parameters`, placed right after the first cell tagged
`parameters` (replacing an earlier injected cell, or first in the notebook when there is
no `parameters` cell), whose source is `# Parameters` followed by one `name = value` line
per parameter. Values are written as papermill writes them: strings double-quoted with
`unicode_escape` escaping, booleans and None as Python literals, non-finite floats as
`float('nan')`, dicts and lists element by element. (papermill also passes the cell
through `black` when black is installed in its environment; kiln never does.)

Unlike papermill, which only warns, kiln refuses a parameter that the `parameters` cell
does not define, and parameters for a notebook without a `parameters` cell, unless
`allow_unknown=True`.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Mapping
from typing import Any

from kiln._exceptions import KilnWarning, ParameterError, did_you_mean

__all__ = [
    "INJECTED_TAG",
    "PARAMETERS_TAG",
    "ParametersCellWarning",
    "check_parameters",
    "codify",
    "find_tagged",
    "inject",
    "parameter_defaults",
    "parameter_names",
    "parse_parameters_cell",
    "parse_value",
    "translate",
]

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def parse_value(text: str) -> Any:
    """Type a `-p name=value` value the way `papermill -p` does.

    `True`, `False` and `None` become those constants, then anything `int()` accepts an
    int, then anything `float()` accepts a float; everything else stays a string.

    Args:
        text: The text after `=`.
    """
    if text == "True":
        return True
    if text == "False":
        return False
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _quote(value: str) -> str:
    escaped = value.encode("unicode_escape").decode("utf-8").replace('"', '\\"')
    return f'"{escaped}"'


def translate(value: Any) -> str:
    """Python source for one parameter value, exactly as papermill's PythonTranslator writes it.

    Args:
        value: A str, bool, int, float, None, dict or list (nested freely); anything else
            is written as a quoted string of its `str()`.
    """
    if value is None:
        return "None"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, bool | int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return str(value)
        if math.isnan(value):
            return "float('nan')"
        return "float('-inf')" if value < 0 else "float('inf')"
    if isinstance(value, dict):
        items = ", ".join(f"{_quote(str(k))}: {translate(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ", ".join(translate(v) for v in value) + "]"
    return f'"{value}"'


def codify(parameters: Mapping[str, Any], comment: str = "Parameters") -> str:
    """The source of the injected cell: a `# Parameters` comment, then one line per name."""
    lines = [f"# {comment}".strip()]
    lines += [f"{name} = {translate(value)}" for name, value in parameters.items()]
    return "\n".join(lines) + "\n"


def find_tagged(nb: Any, tag: str) -> int:
    """Index of the first cell carrying `tag` in its metadata tags, or -1."""
    for index, cell in enumerate(nb.cells):
        if tag in (cell.get("metadata", {}).get("tags") or []):
            return index
    return -1


class ParametersCellWarning(KilnWarning):
    """A line of the `parameters` cell does not parse; the names around it are still read."""


def parse_parameters_cell(source: str) -> tuple[list[str], list[tuple[int, str]]]:
    """The names a `parameters` cell assigns at top level, and the lines that do not parse.

    A cell that parses whole is read with `ast`. One that does not is read statement by
    statement, as papermill's inspection reads it line by line: the statements before a
    syntax error are kept, the line with the error is skipped, and reading goes on after
    it. Lines IPython would transform (magics, shell escapes) are skipped, so a cell with
    `%matplotlib inline` still parses.

    Returns:
        The names in order, and `(line, message)` for each skipped line (1-based).
    """
    body, errors = _statements(source)
    return _assigned(body), errors


def parameter_defaults(source: str) -> dict[str, Any]:
    """The values a `parameters` cell assigns, where they are Python literals.

    `alpha = 0.5`, `layers = [64, 32]`, `name: str = "x"` and `a = b = 1` are read (with
    `ast.literal_eval`; nothing is run). A name whose last assignment is computed
    (`path = Path.home() / "data"`, `n += 1`, `a, b = f()`) has no value before the cell
    runs and is left out. Lines that do not parse are skipped, as `parse_parameters_cell`
    skips them.
    """
    body, _ = _statements(source)
    values: dict[str, Any] = {}
    for node in body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = list(node.targets), node.value
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
            value = node.value if isinstance(node, ast.AnnAssign) else None
        try:
            literal = ast.literal_eval(value) if value is not None else _NOT_LITERAL
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            literal = _NOT_LITERAL
        for target in targets:
            if isinstance(target, ast.Name) and literal is not _NOT_LITERAL:
                values.pop(target.id, None)  # a reassignment moves the name to the end
                values[target.id] = literal
                continue
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    values.pop(sub.id, None)
    return values


_NOT_LITERAL = object()


def _statements(source: str) -> tuple[list[ast.stmt], list[tuple[int, str]]]:
    """The top-level statements of a cell that parse, and the lines that do not."""
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
    body: list[ast.stmt] = []
    errors: list[tuple[int, str]] = []
    start = 0  # lines[start:] are still to read; the padding keeps line numbers true
    while start < len(lines):
        try:
            body += ast.parse("\n" * start + "\n".join(lines[start:])).body
            break
        except SyntaxError as exc:
            bad = min(max(exc.lineno or start + 1, start + 1), len(lines))  # 1-based
            errors.append((bad, exc.msg))
        for end in range(bad - 1, start, -1):  # the longest run of lines before it that parses
            try:
                body += ast.parse("\n" * start + "\n".join(lines[start:end])).body
                break
            except SyntaxError:
                continue
        start = bad
    return body, errors


def _assigned(body: list[ast.stmt]) -> list[str]:
    names: list[str] = []
    for node in body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and sub.id not in names:
                    names.append(sub.id)
    return names


def _syntax_note(errors: list[tuple[int, str]]) -> str:
    where = ", ".join(f"line {line} ({message})" for line, message in errors)
    s = "s" if len(errors) > 1 else ""
    return f"the parameters cell has a syntax error{s} at {where}"


def parameter_names(source: str) -> list[str]:
    """The names a `parameters` cell assigns at top level, in order.

    A line that does not parse is skipped with a `ParametersCellWarning` naming it (see
    `parse_parameters_cell`).
    """
    names, errors = parse_parameters_cell(source)
    _warn_skipped(names, errors, stacklevel=3)
    return names


def _warn_skipped(names: list[str], errors: list[tuple[int, str]], stacklevel: int) -> None:
    if errors:
        warnings.warn(
            ParametersCellWarning(
                f"{_syntax_note(errors).capitalize()}; kiln skipped "
                f"{'those lines' if len(errors) > 1 else 'that line'}, as papermill does, "
                f"and read the names {names} from the rest. The cell itself will fail when it "
                "runs: fix the line."
            ),
            stacklevel=stacklevel,
        )


def check_parameters(nb: Any, parameters: Mapping[str, Any], *, allow_unknown: bool) -> None:
    """Refuse parameters the notebook cannot take (see the module docstring).

    Raises:
        ParameterError: No `parameters` cell, a name it does not define, or a name that
            is not a Python identifier.
    """
    for name in parameters:
        if not isinstance(name, str) or not name.isidentifier():
            raise ParameterError(
                f"Parameter name {name!r} is not a Python identifier; use letters, digits "
                "and underscores, not starting with a digit."
            )
    if not parameters or allow_unknown:
        return
    index = find_tagged(nb, PARAMETERS_TAG)
    if index < 0:
        raise ParameterError(
            f"Parameters {sorted(parameters)} were given, but the notebook has no cell tagged "
            f"'{PARAMETERS_TAG}', so the values would be overwritten by the notebook's own "
            "assignments. Tag the cell that sets the defaults 'parameters' (View > Cell "
            "Toolbar > Tags in Jupyter), or pass --allow-unknown-params to inject anyway."
        )
    defined, errors = parse_parameters_cell(nb.cells[index].source)
    code_index = sum(c.cell_type == "code" for c in nb.cells[:index])
    _warn_skipped(defined, errors, stacklevel=5)  # check_parameters < prepare < run_notebook
    unknown = [name for name in parameters if name not in defined]
    if unknown:
        name = unknown[0]
        note = f" ({_syntax_note(errors)}; kiln read the other lines)" if errors else ""
        raise ParameterError(
            f"Parameter {name!r} is not defined in the notebook's 'parameters' cell (code "
            f"cell {code_index}), which defines {defined}{note}.{did_you_mean(name, defined)} "
            "Fix the name, or pass --allow-unknown-params to inject it anyway."
        )


def inject(nb: Any, parameters: Mapping[str, Any]) -> int:
    """Insert (or replace) the `injected-parameters` cell in `nb`, in place.

    Returns:
        The injected cell's position in `nb.cells`.
    """
    from nbformat.v4 import new_code_cell

    cell = new_code_cell(source=codify(parameters))
    cell.metadata["tags"] = [INJECTED_TAG]
    injected = find_tagged(nb, INJECTED_TAG)
    if injected >= 0:
        nb.cells[injected] = cell
        position = injected
    else:
        position = find_tagged(nb, PARAMETERS_TAG) + 1  # 0 when there is none
        nb.cells.insert(position, cell)
    nb.metadata.setdefault("papermill", {})["parameters"] = dict(parameters)
    return position
