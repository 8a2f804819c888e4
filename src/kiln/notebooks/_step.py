"""`kiln.notebooks.notebook_step`: a notebook as a step of a `kiln.Pipeline`.

```python
# steps.py
import kiln.notebooks

def load() -> pd.DataFrame: ...
train = kiln.notebooks.notebook_step("train.ipynb", outputs=["score"])   # the step "train"
def report(train: dict) -> str: return f"score {train['score']:.2f}"
```

The step is a plain function made from the notebook: its parameters are the names the
notebook's `parameters` cell defines, so the pipeline fills them exactly as it fills a
function's (another step's output of that name, else `params.yaml`, else the value in
the notebook). Each call executes the notebook top to bottom in a fresh kernel, as a
tracked run that is a child of the step's run, with the values injected papermill-style;
the step's output is what the notebook stored with `kiln.record` (all of it as a dict,
the names in `outputs`, or one value when `outputs` is a single name).

Values that papermill can write as Python literals (numbers, strings, booleans, None,
lists and dicts of them) are injected as literals. Others, such as an upstream step's
DataFrame or array, are stored in the artifact store (as pipeline outputs are) and the
injected cell reads them back with `kiln.notebooks.step_input(...)`.

The cache key includes the notebook's code: the source of its code cells (and their
`parameters` tags) and the kernel name, not outputs, execution counts or markdown, so
editing a cell re-runs the step and re-saving an executed copy does not. The notebook
file is also one of the files `kiln run` checks before saying "nothing changed".

`kiln.notebooks.step` is the old name of `notebook_step` (deprecated: it was easily
taken for `kiln.step`, the decorator of function steps).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiln._exceptions import NotebookError

__all__ = ["NOTEBOOK_DEFAULT", "notebook_digest", "notebook_step", "step", "step_input"]


class _NotebookDefault:
    """The default of a notebook step's parameters: keep the notebook's own value."""

    def __repr__(self) -> str:
        return "<the notebook's own value>"

    def __reduce__(self) -> str:
        return "NOTEBOOK_DEFAULT"  # one instance per process, also after pickling


NOTEBOOK_DEFAULT = _NotebookDefault()


def _code_cells(path: Path) -> tuple[list[dict[str, Any]], str]:
    """The notebook's cells as plain dicts and its kernel name, read without nbformat."""
    if path.suffix == ".ipynb":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NotebookError(f"{str(path)!r} is not a readable notebook: {exc}") from exc
        cells = data.get("cells") or []
        kernel = ((data.get("metadata") or {}).get("kernelspec") or {}).get("name") or "python3"
        return cells, str(kernel)
    from kiln.notebooks._run import read_notebook

    nb = read_notebook(path)
    kernel = (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
    return [dict(c) for c in nb.cells], str(kernel)


def notebook_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of what decides a notebook's results: its code cells' sources and tags
    (in order) and its kernel name. Outputs, execution counts and markdown do not count."""
    from kiln.pipeline import digest

    cells, kernel = _code_cells(Path(path))
    parts = ["kiln-notebook-v1", kernel]
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        parts.append("".join(source) if isinstance(source, list) else str(source))
        tags = sorted((cell.get("metadata") or {}).get("tags") or [])
        parts.append(",".join(t for t in tags if t in ("parameters", "injected-parameters")))
    return digest(*parts)


def _parameters_of(path: Path) -> list[str]:
    from kiln.notebooks._params import PARAMETERS_TAG, parameter_names

    cells, _ = _code_cells(path)
    for cell in cells:
        if cell.get("cell_type") == "code" and PARAMETERS_TAG in (
            (cell.get("metadata") or {}).get("tags") or []
        ):
            source = cell.get("source", "")
            return parameter_names("".join(source) if isinstance(source, list) else str(source))
    return []


def _find(notebook: str | os.PathLike[str], base: Path) -> Path:
    given = Path(notebook)
    candidates = [given] if given.is_absolute() else [base / given, Path.cwd() / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise NotebookError(
        f"No notebook {os.fspath(notebook)!r} for a notebook step: looked for "
        f"{', '.join(str(c) for c in candidates)}. A relative path is taken from the folder "
        "of the module that calls kiln.notebooks.notebook_step, then from the working "
        "directory."
    )


def notebook_step(
    notebook: str | os.PathLike[str],
    *,
    name: str | None = None,
    outputs: str | Sequence[str] | None = None,
    cache: bool = True,
    timeout: float | None = None,
    kernel_name: str | None = None,
    preload: bool = True,
) -> Any:
    """A pipeline step that executes a notebook; its output is what the notebook records.

    Assign it, at module level, to a name equal to the step's name (the notebook's file
    stem unless `name` is given), so that `kiln run module` finds it and process or Ray
    workers can import it: `train = kiln.notebooks.notebook_step("train.ipynb")`.

    Args:
        notebook: The .ipynb (or jupytext .py) file; a relative path is taken from the
            folder of the calling module, then from the working directory. The kernel
            runs in the notebook's folder.
        name: The step's name (default: the file stem, e.g. `train`).
        outputs: The `kiln.record`ed names the step returns: a list gives a dict of
            those, a single name gives that value, None gives everything recorded. A
            listed name the notebook did not record fails the step.
        cache: False to re-run the notebook on every pipeline run.
        timeout: Seconds a single cell may run.
        kernel_name: The Jupyter kernel (default: the notebook's).
        preload: As for `run_notebook`.

    Returns:
        A function (the step), callable directly as `train(alpha=0.1)` too.
    """
    return _make_step(
        notebook, sys._getframe(1).f_globals, name=name, outputs=outputs, cache=cache,
        timeout=timeout, kernel_name=kernel_name, preload=preload,
    )  # fmt: skip


def step(notebook: str | os.PathLike[str], **options: Any) -> Any:
    """Deprecated name of `notebook_step` (it was easily taken for `kiln.step`).

    Args:
        notebook: As for `notebook_step`.
        **options: As for `notebook_step`.

    Returns:
        The step, as `notebook_step` makes it.
    """
    warnings.warn(
        "kiln.notebooks.step is deprecated: use kiln.notebooks.notebook_step (the same "
        "function, renamed so that it is not taken for kiln.step, the decorator of "
        "function steps).",
        DeprecationWarning,
        stacklevel=2,
    )
    return _make_step(notebook, sys._getframe(1).f_globals, **options)


def _make_step(
    notebook: str | os.PathLike[str],
    caller: dict[str, Any],
    *,
    name: str | None = None,
    outputs: str | Sequence[str] | None = None,
    cache: bool = True,
    timeout: float | None = None,
    kernel_name: str | None = None,
    preload: bool = True,
) -> Any:
    """The step made by `notebook_step`; `caller` is the calling module's globals."""
    module = str(caller.get("__name__") or "__main__")
    where = caller.get("__file__")
    path = _find(notebook, Path(where).resolve().parent if where else Path.cwd())
    step_name = name or "".join(c if c.isalnum() else "_" for c in path.stem)
    if not step_name.isidentifier():
        raise NotebookError(
            f"A notebook step's name must be a Python identifier; {step_name!r} (from "
            f"{path.name}) is not. Pass name='...'."
        )
    wanted = [outputs] if isinstance(outputs, str) else list(outputs or [])
    names = _parameters_of(path)

    def run(**values: Any) -> Any:
        given = {k: v for k, v in values.items() if v is not NOTEBOOK_DEFAULT}
        found = execute_step_notebook(
            path, given, step_name=step_name, timeout=timeout, kernel_name=kernel_name,
            preload=preload,
        )  # fmt: skip
        missing = [n for n in wanted if n not in found]
        if missing:
            raise NotebookError(
                f"Notebook step {step_name!r} expects the notebook {path.name} to record "
                f"{missing}, but it recorded {sorted(found) or 'nothing'}. Call "
                f"kiln.record({missing[0]!r}, value) in the notebook, or change outputs=."
            )
        if isinstance(outputs, str):
            return found[outputs]
        return {n: found[n] for n in wanted} if wanted else found

    run.__name__ = run.__qualname__ = step_name
    run.__module__ = module
    run.__doc__ = f"Execute {path} as a pipeline step (kiln.notebooks.notebook_step)."
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=NOTEBOOK_DEFAULT) for n in names]
    )  # fmt: skip
    run.__kiln_step__ = {"name": step_name, "cache": cache}  # type: ignore[attr-defined]
    # Hooks read by kiln.pipeline: the notebook's code is part of the step's code hash,
    # and the notebook file is checked by `kiln run`'s "nothing changed" test.
    run.__kiln_code__ = lambda: notebook_digest(path)  # type: ignore[attr-defined]
    run.__kiln_files__ = (str(path),)  # type: ignore[attr-defined]
    return run


def _literal(value: Any, depth: int = 0) -> bool:
    """Whether papermill's translation writes `value` back as an equal Python literal."""
    if depth > 50:
        return False
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is list:
        return all(_literal(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _literal(v, depth + 1) for k, v in value.items())
    return False


def execute_step_notebook(
    path: Path,
    values: dict[str, Any],
    *,
    step_name: str,
    timeout: float | None,
    kernel_name: str | None,
    preload: bool,
) -> dict[str, Any]:
    """Run the notebook with `values` as a child of the active run; its recorded values."""
    from kiln.notebooks._kernel import Kernel
    from kiln.notebooks._params import INJECTED_TAG, codify, find_tagged
    from kiln.notebooks._preload import preload_modules
    from kiln.notebooks._results import notebook_results
    from kiln.notebooks._run import _peek_kernel_name, execute_prepared, prepare, read_notebook
    from kiln.tracking import active_run, get_client

    begin = time.perf_counter()
    workdir = str(path.parent)
    modules = preload_modules(path, workdir) if preload else []
    kernel = Kernel.start(kernel_name or _peek_kernel_name(path), workdir, modules)
    client = get_client()
    try:
        literal = {k: v for k, v in values.items() if _literal(v)}
        stored = {k: v for k, v in values.items() if k not in literal}
        nb = read_notebook(path)
        index_map = prepare(nb, {**literal, **dict.fromkeys(stored)}, allow_unknown=False)
        logged: dict[str, Any] = dict(literal)
        if stored:
            from kiln.pipeline import save_output

            lines = ["# Inputs from the pipeline, read back from kiln's artifact store"]
            lines.append("import kiln.notebooks")
            for key, value in stored.items():
                desc = save_output(client.artifacts, value, label=f"Input {key!r} of {step_name!r}")
                lines.append(f"{key} = kiln.notebooks.step_input({json.dumps(desc)})")
                logged[key] = f"<{desc['format']} {desc['sha'][:12]}>"
            cell = nb.cells[find_tagged(nb, INJECTED_TAG)]
            cell.source = codify(literal) + "\n".join(lines) + "\n"
    except BaseException:
        kernel.shutdown()
        raise
    parent = active_run()
    result = execute_prepared(
        nb, index_map, kernel, logged, notebook=str(path), output=None, experiment=None,
        name=step_name, parent=parent.id if parent else None, timeout=timeout, html=False,
        raise_on_error=True, client=client, begin=begin,
    )  # fmt: skip
    if parent is not None:
        parent.set_tags({"kiln.notebook.run": result.run_id})
    return notebook_results(result.run_id)


def step_input(desc: dict[str, Any]) -> Any:
    """A pipeline value stored for a notebook step, read back inside the notebook.

    kiln writes these calls into the injected parameters cell; you do not call it.
    """
    import tempfile

    from kiln.pipeline import load_output
    from kiln.tracking import get_client

    models = Path(tempfile.mkdtemp(prefix="kiln-step-input-"))
    return load_output(get_client().artifacts, desc, models)
