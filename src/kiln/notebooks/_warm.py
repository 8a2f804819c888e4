"""`WarmRunner`: one notebook run again and again, each time in a kernel forked warm.

What `kiln notebook app` needs from the notebooks capability: a fork server that has
imported ipykernel and the notebook's libraries once (`_zygote`), so every execution
starts from a kernel forked in a fraction of a second, and one spare kernel forked and
booting ahead of the next execution, so a viewer's submit does not wait for a kernel to
boot; progress (cell i of n); a
`RunControl` to stop an execution (a per-run timeout, a viewer's cancel); and the
result as HTML without code (`render_outputs`), as nbconvert's `--no-input` shows it.
Each execution is a tracked run, exactly as `run_notebook` makes it.
"""

from __future__ import annotations

import contextlib
import html
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.notebooks._params import INJECTED_TAG, PARAMETERS_TAG

if TYPE_CHECKING:
    from kiln.notebooks._kernel import Kernel
    from kiln.notebooks._run import NotebookResult
    from kiln.notebooks._zygote import Zygote

__all__ = ["RunControl", "WarmRunner", "render_outputs"]

#: Seconds an interrupted execution has to stop before its kernel is killed.
STOP_GRACE = 3.0


class RunControl:
    """Stops one execution from another thread: interrupt the cell, kill if it lingers.

    `stop(reason)` may come before the kernel exists; the execution is then stopped as
    soon as it starts. `reason` says why, for the run's tags and the viewer.
    """

    def __init__(self) -> None:
        self.reason: str | None = None
        self._kernel: Kernel | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()

    def attach(self, kernel: Kernel) -> None:
        """The execution's kernel; stopped at once when a stop came first."""
        with self._lock:
            self._kernel = kernel
            stopped = self.reason is not None
        if stopped:
            kernel.shutdown()

    def finish(self) -> None:
        """The execution is over: nothing is left to stop."""
        self._done.set()

    def stop(self, reason: str) -> None:
        """Interrupt the running cell; kill the kernel after `STOP_GRACE` seconds."""
        with self._lock:
            if self.reason is not None or self._done.is_set():
                return
            self.reason = reason
            kernel = self._kernel
        if kernel is None:
            return
        kernel.interrupt()

        def kill() -> None:
            if not self._done.wait(STOP_GRACE):
                with contextlib.suppress(Exception):
                    kernel.shutdown()

        threading.Thread(target=kill, daemon=True, name="kiln-stop").start()


class WarmRunner:
    """Runs one notebook with parameters, each time in a fresh kernel forked warm.

    Args:
        notebook: The notebook's path.
        store: The store URL or path (default: as `kiln.get_client()`).
        experiment: The experiment of the runs.
        cell_timeout: Seconds one cell may run (None: no limit).
        fork: Fork kernels from a fork server (when the kernel is this Python's).
        spare: Keep one fresh kernel started ahead of the next execution (`warm` starts
            the first; each execution takes it and starts the next). It is a new
            process that has run nothing: an execution in it is as isolated as in one
            started on demand, and it saves the kernel's boot (~0.2-0.4 s) from every
            submit. It costs one idle kernel process per notebook.
    """

    def __init__(
        self,
        notebook: str | os.PathLike[str],
        *,
        store: str | os.PathLike[str] | None = None,
        experiment: str | None = None,
        cell_timeout: float | None = None,
        fork: bool = True,
        spare: bool = True,
    ) -> None:
        from kiln.notebooks._run import _client, _peek_kernel_name

        self.notebook = os.fspath(notebook)
        self.workdir = os.path.dirname(os.path.abspath(self.notebook))
        self.kernel_name = _peek_kernel_name(self.notebook)
        self.experiment = experiment
        self.cell_timeout = cell_timeout
        self.client = _client(store)
        self._fork = fork
        self._zygote: Zygote | None = None
        self._lock = threading.Lock()
        self._keep_spare = spare
        self._spare: tuple[Kernel, tuple[str, ...]] | None = None
        self._closed = False

    def _zygote_for(self, modules: list[str]) -> Zygote | None:
        from kiln.notebooks._kernel import start_zygote

        with self._lock:
            if self._zygote is None and self._fork:
                try:
                    self._zygote = start_zygote(self.kernel_name, self.workdir, modules)
                except Exception:  # noqa: BLE001 - kernels are then started from their spec
                    self._fork = False
            return self._zygote

    def warm(self) -> None:
        """Start the fork server now (it imports the notebook's libraries once) and the
        spare kernel."""
        from kiln.notebooks._preload import preload_modules

        modules = preload_modules(self.notebook, self.workdir)
        self._zygote_for(modules)
        self._refill(modules)

    def _kernel(self, modules: list[str]) -> Kernel:
        """The spare kernel when it was started for these modules and lives, else a new one."""
        from kiln.notebooks._kernel import Kernel

        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            kernel, preloaded = spare
            if preloaded == tuple(modules) and kernel.alive():
                return kernel
            kernel.shutdown()  # the notebook's imports changed, or it died: not this one
        return Kernel.start(self.kernel_name, self.workdir, modules, self._zygote_for(modules))

    def _refill(self, modules: list[str]) -> None:
        """Start the next execution's kernel now, unless one is waiting already."""
        from kiln.notebooks._kernel import Kernel

        if not self._keep_spare:
            return
        zygote = self._zygote_for(modules)
        with self._lock:
            if self._spare is not None or self._closed:
                return
            self._spare = (
                Kernel.start(self.kernel_name, self.workdir, modules, zygote),
                tuple(modules),
            )

    def run(
        self,
        parameters: Mapping[str, Any],
        *,
        tags: Mapping[str, str] | None = None,
        progress: Callable[[int, int], None] | None = None,
        control: RunControl | None = None,
    ) -> NotebookResult:
        """Execute the notebook once as a tracked run; never raises for a failing cell.

        Args:
            parameters: Injected as `kiln notebook run -p` injects them.
            tags: Added to the run's tags.
            progress: Called with (code cells done, code cells in all) as cells finish.
            control: Stops the execution from another thread.

        Returns:
            The result; `status` is `failed` (with `error`) when a cell raised, timed out
            or the execution was stopped.
        """
        from kiln.notebooks._kernel import close_thread_loop
        from kiln.notebooks._preload import preload_modules
        from kiln.notebooks._run import execute_prepared, prepare, read_notebook

        begin = time.perf_counter()
        modules = preload_modules(self.notebook, self.workdir)
        nb = read_notebook(self.notebook)
        index_map = prepare(nb, dict(parameters), allow_unknown=False)  # before a kernel
        kernel = self._kernel(modules)
        if control is not None:
            control.attach(kernel)
        total = sum(c.cell_type == "code" for c in nb.cells)
        done = [0]

        def on_cell(position: int) -> None:
            done[0] += 1
            if progress is not None:
                progress(done[0], total)

        if progress is not None:
            progress(0, total)
        try:
            result = execute_prepared(
                nb,
                index_map,
                kernel,
                dict(parameters),
                notebook=self.notebook,
                output=None,
                experiment=self.experiment,
                name=None,
                parent=None,
                timeout=self.cell_timeout,
                html=False,
                raise_on_error=False,
                client=self.client,
                begin=begin,
                on_cell=on_cell,
                tags=tags,
            )
        finally:
            if control is not None:
                control.finish()
            if threading.current_thread() is not threading.main_thread():
                close_thread_loop()
            with contextlib.suppress(Exception):  # the next submit then starts its own
                self._refill(modules)
        title = Path(self.notebook).stem
        page = result_page(render_outputs(result.notebook), title)
        self.client.log_artifact(result.run_id, page.encode("utf-8"), self.page_path)
        extra: dict[str, str] = {}
        if result.error is not None:
            extra["kiln.app.error"] = f"{result.error.ename}: {result.error.evalue}"[:1000]
        if control is not None and control.reason is not None:
            extra["kiln.app.stopped"] = control.reason
        if extra:
            self.client.set_tags(result.run_id, extra)
        self.client.flush()
        return result

    @property
    def page_path(self) -> str:
        """The artifact path of each run's page without code."""
        return f"notebook/{Path(self.notebook).stem}.app.html"

    def digest(self) -> str:
        """sha256 of the notebook's code (code cells, their parameter tags, the kernel)."""
        from kiln.notebooks._step import notebook_digest

        return notebook_digest(self.notebook)

    def close(self) -> None:
        """Stop the spare kernel and the fork server."""
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
            zygote, self._zygote = self._zygote, None
        if spare is not None:
            spare[0].shutdown()
        if zygote is not None:
            zygote.close()


def render_outputs(nb: Any) -> str:
    """An executed notebook as an HTML fragment without code: markdown and outputs only.

    The `parameters` and injected cells show nothing. Text outputs are escaped; HTML and
    image outputs are the notebook author's, embedded as nbconvert embeds them.
    """
    from kiln.notebooks._html import _markdown, _output, _text

    parts: list[str] = []
    for cell in nb.cells:
        kind = cell.get("cell_type")
        if kind == "markdown":
            parts.append(f'<div class="md">{_markdown(_text(cell.get("source")))}</div>')
            continue
        if kind != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags") or []
        if PARAMETERS_TAG in tags or INJECTED_TAG in tags:
            continue
        for out in cell.get("outputs") or []:
            parts.append(f'<div class="output">{_output(out)}</div>')
    return "\n".join(parts)


def result_page(body: str, title: str) -> str:
    """A whole HTML document around `render_outputs`'s fragment (served in a frame)."""
    style = (
        "body{font:14px/1.45 system-ui,sans-serif;margin:0;padding:.5em;color:#222}"
        "pre{margin:.2em 0;padding:.4em .6em;white-space:pre-wrap;font:12.5px/1.4 "
        "ui-monospace,monospace}.error,.stderr{background:#fdd}img{max-width:100%}"
        "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em}"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<link rel="icon" href="data:,"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>{body}</body></html>"
    )
