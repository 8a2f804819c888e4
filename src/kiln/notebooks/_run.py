"""`run_notebook`: one tracked, parameterized, top-to-bottom execution in a fresh kernel.

The order of work is chosen so that waiting overlaps: the kernel process is launched as
soon as the notebook is read; the parameters are checked and injected, the store opened
and the run created while it boots; nbconvert (for the HTML render) is imported on a
background thread while the cells run (only with `html=True`: otherwise the run's HTML
page is kiln's own, made in milliseconds at the end).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._exceptions import (
    CellExecutionError,
    CellTimeoutError,
    KernelDiedError,
    NotebookError,
)
from kiln._extras import require
from kiln.notebooks._params import (
    INJECTED_TAG,
    PARAMETERS_TAG,
    check_parameters,
    find_tagged,
    inject,
    parameter_defaults,
)
from kiln.tracking import shorten

if TYPE_CHECKING:
    from kiln.notebooks._kernel import Execution, Kernel
    from kiln.tracking import TrackingClient

__all__ = [
    "DEFAULT_CELL_TIMEOUT",
    "NotebookResult",
    "prepare",
    "read_notebook",
    "recorded_parameters",
    "render_html",
    "run_notebook",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

#: Seconds a cell may run unless told otherwise (`timeout=None`, `-t 0`: no limit). One
#: hour: generous for training in a notebook, but an infinite loop does not run forever.
DEFAULT_CELL_TIMEOUT = 3600.0

_SETUP = """import os as _kiln_os
_kiln_os.environ.update({env!r})
del _kiln_os
"""
_TEARDOWN = """import sys as _kiln_sys
if "kiln.tracking" in _kiln_sys.modules:
    _kiln_sys.modules["kiln.tracking"].flush()
del _kiln_sys
"""


@dataclass
class NotebookResult:
    """One execution of a notebook.

    Attributes:
        run_id: The tracked run (`kiln.get_run(run_id)`, `kiln.notebook_results(run_id)`).
        status: `finished` or `failed`.
        parameters: The injected parameters.
        output_path: Where the executed notebook was written (None without `output`).
        seconds: Wall time of the execution, kernel start to run end.
        error: The `CellExecutionError` of a failed execution, else None.
        notebook: The executed (or partially executed) notebook, an nbformat node.
    """

    run_id: str
    status: str
    parameters: dict[str, Any]
    output_path: str | None
    seconds: float
    error: CellExecutionError | None = None
    notebook: Any = field(default=None, repr=False)


def read_notebook(path: str | os.PathLike[str]) -> Any:
    """Read an .ipynb file (or a jupytext-paired .py/.md) as an nbformat v4 notebook."""
    nbformat = require("nbformat", "notebooks", "Running notebooks")
    p = Path(path)
    if not p.is_file():
        raise NotebookError(
            f"No notebook at {str(p)!r} (working directory: {os.getcwd()}). "
            "Expected the path of an .ipynb file."
        )
    try:
        if p.suffix in (".py", ".md", ".Rmd"):
            jupytext = require("jupytext", "notebooks", "Running a paired text notebook")
            return jupytext.read(p)
        return nbformat.read(p, as_version=4)
    except Exception as exc:
        raise NotebookError(f"{str(p)!r} is not a readable notebook: {exc}") from exc


def prepare(nb: Any, parameters: Mapping[str, Any], *, allow_unknown: bool) -> list[int | None]:
    """Check and inject parameters; clear outputs, as papermill does.

    Returns:
        For each cell position of the prepared notebook, the index of that cell among
        the ORIGINAL notebook's code cells (None for markdown and for the injected cell).
    """
    check_parameters(nb, parameters, allow_unknown=allow_unknown)
    had_injected = any(INJECTED_TAG in (c.metadata.get("tags") or []) for c in nb.cells)
    position = inject(nb, parameters) if parameters else -1
    index_map: list[int | None] = []
    count = 0
    for pos, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if cell.cell_type != "code" or (pos == position and not had_injected):
            index_map.append(None)
            continue
        index_map.append(count)
        count += 1
    return index_map


def recorded_parameters(nb: Any, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The params a notebook run records: every parameter the notebook runs with.

    The `parameters` cell's defaults (its literal values; see `parameter_defaults`), then
    what an injected cell already in the notebook sets, then `parameters` (the injected
    values override the defaults). A default too long to be a param is left out.
    """
    from kiln.tracking import MAX_PARAM, param_text

    recorded: dict[str, Any] = {}
    for tag in (PARAMETERS_TAG, INJECTED_TAG):
        index = find_tagged(nb, tag)
        if index < 0:
            continue
        for name, value in parameter_defaults(nb.cells[index].source).items():
            with contextlib.suppress(Exception):  # not storable as a param: left out
                if len(param_text(value)) <= MAX_PARAM:
                    recorded[name] = value
    recorded.update(parameters)
    return recorded


def _kernel_name(nb: Any, kernel_name: str | None) -> str:
    if kernel_name:
        return kernel_name
    spec = nb.metadata.get("kernelspec") or {}
    return str(spec.get("name") or "python3")


def run_notebook(
    notebook: str | os.PathLike[str],
    parameters: Mapping[str, Any] | None = None,
    *,
    output: str | os.PathLike[str] | None = None,
    experiment: str | None = None,
    name: str | None = None,
    parent: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    kernel_name: str | None = None,
    timeout: float | None = DEFAULT_CELL_TIMEOUT,
    allow_unknown_params: bool = False,
    html: bool = False,
    preload: bool = True,
    raise_on_error: bool = True,
    store: str | os.PathLike[str] | None = None,
) -> NotebookResult:
    """Execute a notebook top to bottom in a fresh kernel, as one tracked run.

    Parameters are injected exactly as papermill does (a cell tagged
    `injected-parameters` after the cell tagged `parameters`). Whatever the notebook
    logs with `kiln.log_metric`, `kiln.log_param`, `kiln.log_artifact` or `kiln.record`
    lands on the same run. The executed notebook is stored as the run's artifact
    `notebook/<name>.ipynb` and its HTML page as `notebook/<name>.html`, made in a few
    milliseconds by kiln's own renderer (see `kiln.notebooks._html`); `html=True` stores
    nbconvert's full render there instead (which costs a second or two per notebook).

    ```python
    result = kiln.run_notebook("train.ipynb", {"alpha": 0.5}, output="out.ipynb")
    kiln.notebook_results(result.run_id)
    ```

    Args:
        notebook: Path of the .ipynb (or a jupytext .py/.md) file.
        parameters: Values to inject; names must be defined in the `parameters` cell.
        output: Where to write the executed notebook; `{name}` fields are filled from
            the parameters (`out-{alpha}.ipynb`).
        experiment: The run's experiment (default: the parent's, else "Default").
        name: The run's name (default: the notebook's file name).
        parent: A parent run id (sweeps make each execution a child run).
        cwd: The kernel's working directory (default: the current one, as papermill).
        kernel_name: The Jupyter kernel (default: the notebook's kernelspec, else python3).
        timeout: Seconds a single cell may run (default one hour); None for no limit.
        allow_unknown_params: Inject parameters the `parameters` cell does not define,
            or into a notebook without one (at the top, as papermill does).
        html: Store nbconvert's HTML render instead of kiln's own page.
        preload: Let the fresh kernel import the notebook's top-level imports while it
            boots, before the first cell (only imports, no notebook code; see
            `kiln.notebooks._preload` for when kiln holds back).
        raise_on_error: Raise `CellExecutionError` when a cell fails (after saving the
            partial notebook and marking the run failed); otherwise return the result.
        store: The store URL or path (default: as `kiln.get_client()`).

    Returns:
        A `NotebookResult`.

    A SIGTERM while the cells run (in the main thread) stops the notebook as a failure:
    the running cell is interrupted, the partial notebook saved as for a failing cell,
    the run marked `killed`, and then the process receives the SIGTERM it was sent.

    Raises:
        ParameterError: A parameter the notebook does not define, or no `parameters` cell.
        CellExecutionError: A cell failed (`CellTimeoutError`, `KernelDiedError` for a
            timeout or a dead kernel); it names the cell, its source and traceback.
    """
    from kiln.notebooks._kernel import Kernel
    from kiln.notebooks._preload import preload_modules

    begin = time.perf_counter()
    params = dict(parameters or {})
    workdir = os.fspath(cwd) if cwd is not None else os.getcwd()
    # The kernel boots while the notebook is parsed, the store opened and the run made.
    modules = preload_modules(notebook, workdir) if preload else []
    kernel = Kernel.start(kernel_name or _peek_kernel_name(notebook), workdir, modules)
    try:
        nb = read_notebook(notebook)
        index_map = prepare(nb, params, allow_unknown=allow_unknown_params)
    except BaseException:
        kernel.shutdown()
        raise
    return execute_prepared(
        nb,
        index_map,
        kernel,
        params,
        notebook=os.fspath(notebook),
        output=output,
        experiment=experiment,
        name=name,
        parent=parent,
        timeout=timeout,
        html=html,
        raise_on_error=raise_on_error,
        client=_client(store),
        begin=begin,
    )


def _peek_kernel_name(path: str | os.PathLike[str]) -> str:
    """The notebook's kernel name, read with the json module alone (no nbformat yet)."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh) if os.fspath(path).endswith(".ipynb") else {}
        return str(data["metadata"]["kernelspec"]["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return "python3"


def _client(store: str | os.PathLike[str] | None) -> TrackingClient:
    if store is None:
        from kiln.tracking import get_client

        return get_client()
    from kiln.tracking import TrackingClient

    return TrackingClient(store)


class _Html:
    """nbconvert's HTMLExporter, imported on a background thread (it costs ~0.5 s)."""

    def __init__(self) -> None:
        self._exporter: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._load, daemon=True, name="kiln-nbconvert")
        self._thread.start()

    def _load(self) -> None:
        try:
            from nbconvert import HTMLExporter

            self._exporter = HTMLExporter()
        except BaseException as exc:  # noqa: BLE001 - reported when rendering
            self._error = exc

    def render(self, nb: Any) -> str:
        self._thread.join()
        if self._exporter is None:
            raise NotebookError(f"nbconvert could not be loaded to render HTML: {self._error}")
        body, _ = self._exporter.from_notebook_node(nb)
        return str(body)


_HTML_LOCK = threading.Lock()
_HTML: _Html | None = None


def html_renderer() -> _Html:
    """The process's HTML renderer, started on first use."""
    global _HTML
    with _HTML_LOCK:
        if _HTML is None:
            _HTML = _Html()
        return _HTML


def render_html(
    run_id: str, *, nbconvert: bool = False, store: str | os.PathLike[str] | None = None
) -> str:
    """The HTML of a notebook run's executed notebook, stored with the run.

    Every execution already stores kiln's own page as `notebook/<name>.html`; this
    returns its path (making it for runs from before kiln stored one). With
    `nbconvert=True` it makes (once) and stores nbconvert's full render as
    `notebook/<name>.nbconvert.html`.

    Args:
        run_id: A run made by `run_notebook` (id or unique prefix).
        nbconvert: nbconvert's render instead of kiln's page.
        store: The store URL or path (default: as `kiln.get_client()`).

    Returns:
        The artifact path of the HTML, which `kiln runs` and
        `TrackingClient.read_artifact` reach.
    """
    import nbformat

    client = _client(store)
    run = client.get_run(run_id)
    paths = {a.path for a in run.artifacts}
    sources = sorted(p for p in paths if p.startswith("notebook/") and p.endswith(".ipynb"))
    if not sources:
        raise NotebookError(
            f"Run {run.id[:12]} has no executed notebook (notebook/*.ipynb artifact): it was "
            "not made by kiln notebook run."
        )
    target = sources[0][: -len(".ipynb")] + (".nbconvert.html" if nbconvert else ".html")
    if target not in paths:
        from kiln.notebooks._html import render_page

        nb = nbformat.reads(client.read_artifact(run.id, sources[0]).decode("utf-8"), 4)
        page = (
            html_renderer().render(nb)
            if nbconvert
            else render_page(nb, title=Path(sources[0]).stem, run_id=run.id)
        )
        client.log_artifact(run.id, page.encode("utf-8"), target)
    return target


def execute_prepared(
    nb: Any,
    index_map: list[int | None],
    kernel: Kernel,
    params: dict[str, Any],
    *,
    notebook: str,
    output: str | os.PathLike[str] | None,
    experiment: str | None,
    name: str | None,
    parent: str | None,
    timeout: float | None,
    html: bool,
    raise_on_error: bool,
    client: TrackingClient,
    begin: float,
    on_cell: Callable[[int], None] | None = None,
    tags: Mapping[str, str] | None = None,
) -> NotebookResult:
    """Create the run, execute a prepared notebook in `kernel`, store what it produced.

    `on_cell` is called with each code cell's position once it ran (progress); `tags`
    are added to the run's own.
    """
    from kiln._settings import get_setting
    from kiln.notebooks._kernel import execute
    from kiln.tracking import capture_environment

    stem = Path(notebook).stem
    renderer = html_renderer() if html else None
    try:
        run_id = client.create_run(
            experiment=experiment,
            name=name or stem,
            parent_id=parent,
            tags={"kiln.notebook": notebook, "kiln.kernel": kernel.kernel_name, **(tags or {})},
            environment=capture_environment(
                packages=parent is None and bool(get_setting("capture_packages")),
                git=parent is None,
            ),
        )
        recorded = recorded_parameters(nb, params)
        if recorded:
            client.log_params(run_id, recorded)
        client.flush()  # the kernel reads the run before it logs to it
        env = {"KILN_RUN_ID": run_id, "KILN_STORE": client.store.url}
        nb.metadata["kiln"] = {"run_id": run_id, "parameters": params}
        done = execute(
            nb,
            kernel,
            setup=_SETUP.format(env=env),
            teardown=_TEARDOWN,
            timeout=timeout,
            on_cell=on_cell,
            stop_on_sigterm=True,
        )
    finally:
        kernel.shutdown()

    def finish(raise_error: bool) -> NotebookResult:
        return _finish(
            done, index_map, client, run_id, params, stem, output, renderer, raise_error,
            begin, timeout,
        )  # fmt: skip

    if done.failure is not None and done.failure.kind == "terminated":
        with _sigterm_ignored():  # a second SIGTERM must not cut the saving short
            result = finish(False)
        _resend_sigterm()
        if raise_on_error and result.error is not None:  # the process's handler returned
            raise result.error
        return result
    return finish(raise_on_error)


@contextlib.contextmanager
def _sigterm_ignored() -> Iterator[None]:
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _resend_sigterm() -> None:
    """Deliver the SIGTERM that stopped the notebook, now that its work is saved."""
    import signal

    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.1)  # the default action ends the process here; a handler may return


def _finish(
    done: Execution,
    index_map: list[int | None],
    client: TrackingClient,
    run_id: str,
    params: dict[str, Any],
    stem: str,
    output: str | os.PathLike[str] | None,
    renderer: _Html | None,
    raise_on_error: bool,
    begin: float,
    timeout: float | None = None,
) -> NotebookResult:
    import nbformat

    nb = done.nb
    error: CellExecutionError | None = None
    out_path = os.fspath(output).format(**params) if output is not None else None
    artifact = f"notebook/{stem}.ipynb"
    if done.failure is not None:
        error = _cell_error(done, index_map, run_id, out_path or f"artifact {artifact}", timeout)
        nb.metadata["kiln"]["error"] = {"cell_index": error.cell_index, "ename": error.ename}
    text = nbformat.writes(nb)
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        Path(out_path).write_text(text, encoding="utf-8")
    client.log_artifact(run_id, text.encode("utf-8"), artifact)
    if renderer is not None:
        page = renderer.render(nb)
    else:
        from kiln.notebooks._html import render_page

        page = render_page(nb, title=stem, run_id=run_id, error=str(error) if error else None)
    client.log_artifact(run_id, page.encode("utf-8"), f"notebook/{stem}.html")
    client.log_metrics(
        run_id,
        [("notebook.cell_seconds", s, i, None) for i, s in enumerate(done.cell_seconds)],
    )
    seconds = time.perf_counter() - begin
    if error is None:
        client.end_run(run_id, "finished")
    else:
        client.set_tags(run_id, {"kiln.failed_cell": str(error.cell_index)})
        stopped = done.failure is not None and done.failure.kind == "terminated"
        client.end_run(run_id, "killed" if stopped else "failed", str(error))
    client.flush()
    result = NotebookResult(
        run_id, "failed" if error else "finished", params, out_path, seconds, error, nb
    )
    if error is not None and raise_on_error:
        raise error
    return result


def _cell_error(
    done: Execution,
    index_map: list[int | None],
    run_id: str,
    saved: str,
    timeout: float | None = None,
) -> CellExecutionError:
    failure = done.failure
    assert failure is not None
    cell = done.nb.cells[failure.position]
    index = index_map[failure.position] if failure.position < len(index_map) else None
    where = "the injected parameters cell" if index is None else f"code cell {index}"
    # A huge exception message (or cell) is cut in the message, which is printed and
    # stored as the run's error; the error output in the saved notebook is whole.
    whole = f"in the cell's output in the partial notebook ({saved})"
    limit = f"{timeout:g} seconds" if timeout is not None else "no limit"
    cls = {"timeout": CellTimeoutError, "dead": KernelDiedError}.get(
        failure.kind, CellExecutionError
    )
    what = {
        "timeout": f"ran longer than the per-cell timeout ({limit}) and was "
        "interrupted; raise it with -t/--timeout SECONDS (timeout= in Python; 0 or None: "
        "no limit)",
        "dead": "was running when the kernel died (crashed, killed or out of memory)",
        "terminated": "was running when kiln was sent SIGTERM; the cell was interrupted",
    }.get(failure.kind, f"raised {failure.ename}: {shorten(failure.evalue, 2000, whole)}")
    traceback = _ANSI.sub("", failure.traceback).strip()
    source = "\n".join("    " + line for line in cell.source.splitlines())
    message = (
        f"The notebook failed at {where} (counting code cells of the original notebook "
        f"from 0), which {what}.\nCell source:\n{shorten(source, 4000, whole)}\n"
        + (f"Traceback:\n{shorten(traceback, 6000, whole)}\n" if traceback else "")
        + f"Run {run_id} is marked {'killed' if failure.kind == 'terminated' else 'failed'}; "
        f"the partial output notebook was saved to {saved}."
    )
    return cls(
        message,
        cell_index=index,
        source=cell.source,
        ename=failure.ename,
        evalue=failure.evalue,
        traceback=traceback,
        run_id=run_id,
        output_path=saved,
    )
