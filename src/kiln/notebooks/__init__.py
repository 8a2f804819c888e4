"""Notebooks that run in production: parameterized, tracked, checked, diffable.

- `run_notebook` executes a notebook top to bottom in a fresh kernel as one tracked run,
  injecting parameters exactly as papermill does; `run_grid` runs every combination of
  a parameter grid as child runs of one sweep run, the next kernel booting while the
  current notebook runs.
- `record` (inside the notebook) and `notebook_results` (after it) pass values out;
  every run stores an HTML page of the executed notebook; `render_html` finds it (or
  makes nbconvert's render).
- `check_notebook` finds hidden state and out-of-order execution; with `rerun=True` it
  also checks that the saved outputs still reproduce.
- `export_notebook` writes the cells tagged `export` to an importable module.
- `diff_notebooks` and `pair_notebook` make notebooks reviewable in version control.
- `notebook_step` makes a notebook a step of a `kiln.Pipeline`: parameters in, recorded
  values out, cached on the notebook's code (`step` is its deprecated old name).
- `notebook_form` reads a typed form from the `parameters` cell; `WarmRunner` runs a
  notebook again and again in kernels forked warm, with progress and a `RunControl` to
  stop it (what `kiln notebook app` serves).
- The `kiln_notebook` pytest fixture (kiln's pytest plugin, `kiln.notebooks._pytest`)
  runs a notebook from a test and returns what it recorded.

Needs the `notebooks` extra: `pip install 'kiln-ml[notebooks]'`.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FormField",
    "NotebookResult",
    "ParametersCellWarning",
    "RunControl",
    "SweepResult",
    "WarmRunner",
    "check_notebook",
    "codify",
    "diff_notebooks",
    "export_notebook",
    "notebook_form",
    "notebook_results",
    "notebook_step",
    "notebook_text",
    "pair_notebook",
    "parse_value",
    "record",
    "render_html",
    "run_grid",
    "run_notebook",
    "step",
    "step_input",
    "translate",
]

_LAZY = {
    "NotebookResult": "kiln.notebooks._run",
    "run_notebook": "kiln.notebooks._run",
    "render_html": "kiln.notebooks._run",
    "SweepResult": "kiln.notebooks._sweep",
    "run_grid": "kiln.notebooks._sweep",
    "record": "kiln.notebooks._results",
    "notebook_results": "kiln.notebooks._results",
    "check_notebook": "kiln.notebooks._check",
    "diff_notebooks": "kiln.notebooks._diff",
    "pair_notebook": "kiln.notebooks._diff",
    "notebook_text": "kiln.notebooks._diff",
    "codify": "kiln.notebooks._params",
    "ParametersCellWarning": "kiln.notebooks._params",
    "parse_value": "kiln.notebooks._params",
    "translate": "kiln.notebooks._params",
    "notebook_step": "kiln.notebooks._step",
    "step": "kiln.notebooks._step",
    "step_input": "kiln.notebooks._step",
    "export_notebook": "kiln.notebooks._export",
    "FormField": "kiln.notebooks._form",
    "notebook_form": "kiln.notebooks._form",
    "RunControl": "kiln.notebooks._warm",
    "WarmRunner": "kiln.notebooks._warm",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kiln.notebooks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
