"""A typed form from a notebook's `parameters` cell, and the checks of what a viewer typed.

Each top-level assignment of a literal in the `parameters` cell is one field. Its kind
comes from the annotation, else from the default: `bool` is a checkbox, `int` and `float`
number inputs, `Literal["a", "b"]` a select, a list a multi-select (its options from a
`list[Literal[...]]` annotation, else the default's elements), a `str` that is an ISO
date (`"2024-01-31"`) or `date`/`datetime` in the annotation a date (or date-time)
input, and any other `str` a text input. The comment that ends the assignment's line is
the field's help text; a `range: LOW..HIGH` in it bounds a number (either side may be
left out: `range: 0..`).

A value typed by a viewer is checked by `FormField.parse`, which raises
`ParameterError` with a message for the viewer (what was wrong, what is expected), and
the names are checked as `kiln notebook run -p` checks them.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from kiln._exceptions import ParameterError
from kiln.notebooks._params import PARAMETERS_TAG, _statements, find_tagged

__all__ = ["FormField", "notebook_form"]

_RANGE = re.compile(r"\brange:\s*(-?[0-9.eE+-]*)\s*\.\.\s*(-?[0-9.eE+-]*)")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


@dataclass
class FormField:
    """One parameter as a form field.

    Attributes:
        name: The parameter's name.
        kind: `int`, `float`, `bool`, `str`, `date`, `datetime`, `select` or `multi`.
        default: The value the `parameters` cell assigns.
        help: The trailing comment (without any `range:` part).
        choices: The options of a `select` or `multi` field.
        low: The lower bound of a number (inclusive), or None.
        high: The upper bound of a number (inclusive), or None.
    """

    name: str
    kind: str
    default: Any
    help: str = ""
    choices: list[Any] = field(default_factory=list)
    low: float | None = None
    high: float | None = None

    def parse(self, raw: Any) -> Any:
        """The value of this parameter from what a viewer sent.

        Args:
            raw: The form's text (a list of texts for `multi`; None or absent for an
                unchecked checkbox; a JSON value is accepted as well).

        Raises:
            ParameterError: The value is not of the field's type, out of its range or not
                one of its choices; the message says what is expected.
        """
        kind = self.kind
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            return str(raw or "").strip().lower() in ("on", "true", "1", "yes")
        if kind == "multi":
            items = raw if isinstance(raw, list) else ([] if raw in (None, "") else [raw])
            return [self._choice(item) for item in items]
        if kind == "select":
            return self._choice(raw)
        text = raw if not isinstance(raw, str) else raw.strip()
        if kind in ("int", "float"):
            return self._number(text)
        if text is None and kind in ("date", "datetime"):
            raise ParameterError(f"{self.name}: a value is required; expected a date.")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise ParameterError(f"{self.name}: expected text, got {text!r}.")
        if kind == "date":
            try:
                date.fromisoformat(text)
            except ValueError:
                raise ParameterError(
                    f"{self.name}: {text!r} is not a date; expected YYYY-MM-DD, e.g. 2024-01-31."
                ) from None
        if kind == "datetime":
            try:
                datetime.fromisoformat(text)
            except ValueError:
                raise ParameterError(
                    f"{self.name}: {text!r} is not a date and time; expected "
                    "YYYY-MM-DDTHH:MM, e.g. 2024-01-31T09:30."
                ) from None
        return text

    def _number(self, text: Any) -> int | float:
        what = "a whole number, e.g. 3" if self.kind == "int" else "a number, e.g. 0.5"
        if isinstance(text, bool) or text in (None, ""):
            raise ParameterError(f"{self.name}: a value is required; expected {what}.")
        try:
            value: int | float
            if self.kind == "int":
                if isinstance(text, float) and not text.is_integer():
                    raise ValueError(text)
                value = int(text)
            else:
                value = float(text)
        except (TypeError, ValueError):
            raise ParameterError(f"{self.name}: {text!r} is not {what}.") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ParameterError(f"{self.name}: {text!r} is not a finite number; expected {what}.")
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            low = "" if self.low is None else f"{self.low:g}"
            high = "" if self.high is None else f"{self.high:g}"
            raise ParameterError(
                f"{self.name}: {value:g} is out of range; expected a value in {low}..{high}."
            )
        return value

    def _choice(self, raw: Any) -> Any:
        if raw is None:
            options = ", ".join(str(c) for c in self.choices)
            raise ParameterError(f"{self.name}: a value is required; choose one of {options}.")
        for choice in self.choices:
            if raw == choice or (isinstance(raw, str) and raw == str(choice)):
                return choice
        options = ", ".join(str(c) for c in self.choices)
        raise ParameterError(f"{self.name}: {raw!r} is not one of the choices ({options}).")


def notebook_form(nb: Any) -> list[FormField]:
    """The form fields of a notebook's `parameters` cell (see the module docstring).

    Args:
        nb: An nbformat v4 notebook, or the path of one.

    Returns:
        One field per parameter with a literal default, in the cell's order; an empty list
        when the notebook has no `parameters` cell.
    """
    if isinstance(nb, str | os.PathLike):
        from kiln.notebooks._run import read_notebook

        nb = read_notebook(nb)
    index = find_tagged(nb, PARAMETERS_TAG)
    if index < 0:
        return []
    source = nb.cells[index].source
    comments = _comments(source)
    body, _ = _statements(source)
    fields: dict[str, FormField] = {}
    for node in body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, annotation = node.targets[0], None
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, annotation = node.target, node.annotation
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        try:
            default = ast.literal_eval(node.value)  # type: ignore[arg-type]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            fields.pop(target.id, None)  # computed: not a field
            continue
        comment = comments.get(node.end_lineno or node.lineno, "")
        fields.pop(target.id, None)
        fields[target.id] = _field(target.id, default, annotation, comment)
    return list(fields.values())


def _comments(source: str) -> dict[int, str]:
    found: dict[int, str] = {}
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
    try:
        for tok in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
            if tok.type == tokenize.COMMENT:
                found[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return found


def _literal_choices(node: ast.expr | None) -> list[Any] | None:
    """The values of `Literal[...]` (or `typing.Literal[...]`), else None."""
    if not isinstance(node, ast.Subscript):
        return None
    base = node.value
    name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
    if name != "Literal":
        return None
    items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    try:
        return [ast.literal_eval(item) for item in items]
    except ValueError:
        return None


def _field(name: str, default: Any, annotation: ast.expr | None, comment: str) -> FormField:
    note = comment
    low = high = None
    match = _RANGE.search(comment)
    if match:
        note = (comment[: match.start()] + comment[match.end() :]).strip(" ;,-")
        low = float(match.group(1)) if match.group(1) else None
        high = float(match.group(2)) if match.group(2) else None
    text = ast.unparse(annotation) if annotation is not None else ""
    choices = _literal_choices(annotation)
    if choices is not None:
        return FormField(name, "select", default, note, choices)
    if isinstance(default, list) or text.startswith(("list", "List")):
        inner = annotation.slice if isinstance(annotation, ast.Subscript) else None
        options = _literal_choices(inner) if inner is not None else None
        values = list(default) if isinstance(default, list) else []
        options = options or values
        return FormField(name, "multi", values, note, list(options))
    if text == "bool" or isinstance(default, bool):
        return FormField(name, "bool", bool(default), note)
    if text == "int" or (isinstance(default, int) and text != "float"):
        return FormField(name, "int", default, note, [], low, high)
    if text == "float" or isinstance(default, float):
        return FormField(name, "float", default, note, [], low, high)
    if isinstance(default, str):
        if "datetime" in text or (not text and _DATETIME.match(default)):
            return FormField(name, "datetime", default, note)
        if "date" in text or (not text and _DATE.match(default)):
            return FormField(name, "date", default, note)
    return FormField(name, "str", default if default is not None else "", note)
