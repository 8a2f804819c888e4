"""The `kiln_notebook` pytest fixture: test a notebook the way it runs in production.

Installed with kiln as a pytest plugin (the `pytest11` entry point `kiln`), so any test
can ask for it; nothing to import or configure:

```python
def test_training_notebook(kiln_notebook):
    res = kiln_notebook("train.ipynb", alpha=0.1)   # a fresh kernel, top to bottom
    assert res["score"] > 0.8                       # what the notebook kiln.record()ed
    assert res.metrics["rmse"] < 3                  # what it logged with kiln.log_metric
```

Each call executes the notebook with `kiln.run_notebook` in a fresh kernel, with the
keyword arguments injected papermill-style (a misspelled one is an error naming the
closest parameter), as a run in a store of the test's own (under `tmp_path`), so tests
never write into the project's `.kiln/`. A relative path is taken from the test file's
folder, then from the working directory; the kernel runs in the notebook's folder. The
executed notebook is written next to the store (`res.output_path`).

A failing cell fails the test with the cell's index (among the notebook's code cells),
its source and the notebook's traceback, without kiln's own frames. Options for the
calls of one test: `kiln_notebook.timeout` (seconds per cell, default 600),
`kiln_notebook.kernel_name`. Disable the plugin with `pytest -p no:kiln`.

This module imports nothing heavy: pytest loads it in every session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

__all__ = ["NotebookRun", "NotebookRunner", "kiln_notebook"]


class NotebookRun(Mapping[str, Any]):
    """One execution in a test: the values the notebook recorded, by name.

    Attributes:
        run_id: The tracked run, in the test's store.
        metrics: The metrics it logged (latest value of each).
        params: The run's params (the injected parameters, as strings).
        notebook: The executed notebook (an nbformat node).
        output_path: Where the executed notebook was written.
        store: The test's store (pass it to `kiln.get_run(...)`'s client to look further).
    """

    def __init__(self, values: dict[str, Any], result: Any, run: Any, store: str) -> None:
        self._values = values
        self.run_id: str = result.run_id
        self.notebook: Any = result.notebook
        self.output_path: str | None = result.output_path
        self.metrics: dict[str, float] = dict(run.metrics)
        self.params: dict[str, str] = dict(run.params)
        self.store = store

    def __getitem__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(
                f"The notebook did not kiln.record({name!r}, ...); it recorded "
                f"{sorted(self._values) or 'nothing'}."
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<NotebookRun {self.run_id[:12]} {self._values!r}>"


class NotebookRunner:
    """The `kiln_notebook` fixture's value: call it with a path and parameters."""

    def __init__(self, base: Path, workspace: Path) -> None:
        self.timeout: float | None = 600.0
        self.kernel_name: str | None = None
        self._base = base
        self._workspace = workspace
        self._store = str(workspace / "store")
        self._count = 0

    def _find(self, notebook: str | os.PathLike[str]) -> Path:
        given = Path(notebook)
        tried = [given] if given.is_absolute() else [self._base / given, Path.cwd() / given]
        for candidate in tried:
            if candidate.is_file():
                return candidate.resolve()
        pytest.fail(
            f"kiln_notebook: no notebook {os.fspath(notebook)!r}; looked for "
            f"{', '.join(str(t) for t in tried)} (a relative path is taken from the test "
            "file's folder, then from the working directory).",
            pytrace=False,
        )

    def __call__(
        self,
        notebook: str | os.PathLike[str],
        parameters: Mapping[str, Any] | None = None,
        /,
        **params: Any,
    ) -> NotebookRun:
        """Execute `notebook` with `parameters` and/or keyword parameters.

        Returns:
            A `NotebookRun`: `res["name"]` is a recorded value.
        """
        from kiln._exceptions import CellExecutionError, ParameterError
        from kiln.notebooks._results import notebook_results
        from kiln.notebooks._run import _client, run_notebook

        path = self._find(notebook)
        self._count += 1
        output = self._workspace / f"{path.stem}-{self._count}.ipynb"
        values = {**dict(parameters or {}), **params}
        failure = ""
        try:
            result = run_notebook(
                path, values, output=output, cwd=path.parent, kernel_name=self.kernel_name,
                timeout=self.timeout, store=self._store,
            )  # fmt: skip
        except CellExecutionError as exc:
            failure = f"Notebook {path.name} failed.\n{exc}"
        except ParameterError as exc:
            failure = f"Notebook {path.name}: {exc}"
        if failure:  # failed outside the except block: no "during handling" chain
            pytest.fail(failure, pytrace=False)
        run = _client(self._store).get_run(result.run_id)
        return NotebookRun(
            notebook_results(result.run_id, store=self._store), result, run, self._store
        )


@pytest.fixture
def kiln_notebook(request: pytest.FixtureRequest, tmp_path: Path) -> NotebookRunner:
    """Run a notebook in a fresh kernel and get what it recorded (see `kiln.notebooks._pytest`)."""
    workspace = tmp_path / "kiln-notebook"
    workspace.mkdir(exist_ok=True)
    return NotebookRunner(Path(str(request.path)).parent, workspace)
