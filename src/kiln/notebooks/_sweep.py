"""`run_grid`: every combination of a parameter grid, each a child run of one sweep run.

Each combination runs in a fresh kernel of its own, never a reused one. A worker
launches the kernel for its next combination before it starts executing the current
one, so a kernel boots while a notebook runs and start-up is off the critical path.
`jobs` workers run side by side; each keeps about (cores ÷ jobs) kernels booting ahead.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kiln._exceptions import ParameterError
from kiln.notebooks._run import (
    DEFAULT_CELL_TIMEOUT,
    NotebookResult,
    _client,
    _kernel_name,
    execute_prepared,
    prepare,
    read_notebook,
)
from kiln.notebooks._zygote import Zygote
from kiln.pipeline import SweepResult, Trial

__all__ = ["SweepResult", "grid_combinations", "run_grid"]


def grid_combinations(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last name varying fastest."""
    for name, values in grid.items():
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise ParameterError(
                f"Grid parameter {name!r} needs a non-empty list of values; got {values!r}."
            )
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def run_grid(
    notebook: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]],
    parameters: Mapping[str, Any] | None = None,
    *,
    jobs: int = 1,
    output: str | os.PathLike[str] | None = None,
    experiment: str | None = None,
    name: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    kernel_name: str | None = None,
    timeout: float | None = DEFAULT_CELL_TIMEOUT,
    allow_unknown_params: bool = False,
    html: bool = False,
    preload: bool = True,
    fork: bool = True,
    store: str | os.PathLike[str] | None = None,
    objective: str | None = None,
    direction: str | None = None,
) -> SweepResult:
    """Run a notebook once per combination of `grid`, as child runs of one sweep run.

    ```python
    sweep = kiln.notebooks.run_grid("train.ipynb", {"alpha": [0.1, 1, 10]}, jobs=2)
    ```

    Args:
        notebook: Path of the notebook.
        grid: Parameter name -> the values to try.
        parameters: Fixed parameters added to every combination.
        jobs: How many notebooks run at once.
        output: Output notebook path, a template filled from each combination's
            parameters (`out/alpha-{alpha}.ipynb`); None stores them only as artifacts.
        experiment, name, cwd, kernel_name, timeout, allow_unknown_params, html, preload, store:
            As for `run_notebook`; `name` names the sweep run.
        fork: Fork each fresh kernel from a fork server that imported ipykernel and the
            notebook's libraries once (see `kiln.notebooks._zygote`); False starts every
            kernel from scratch. Only for kernels of this Python's ipykernel.
        objective: A metric the notebook logs: the sweep run is tagged with the best run
            (`kiln.sweep.best_run`) and logs its value, as `kiln sweep` does.
        direction: "max" or "min" for the objective; by default the metric's known
            direction (`kiln.tracking` knows accuracy, loss, ...), else "max".

    Returns:
        A `SweepResult`; a failed combination does not stop the others. The sweep run
        is `failed` when any combination failed.
    """
    from kiln.notebooks._kernel import start_zygote
    from kiln.notebooks._preload import preload_modules

    begin = time.perf_counter()
    if jobs < 1:
        raise ParameterError(f"jobs must be at least 1; got {jobs}.")
    if direction is not None and direction not in ("max", "min"):
        raise ParameterError(f"direction must be 'max' or 'min'; got {direction!r}.")
    if objective is not None and direction is None:
        from kiln.tracking import metric_direction

        direction = metric_direction(objective) or "max"
    source = read_notebook(notebook)
    combos = [{**dict(parameters or {}), **c} for c in grid_combinations(grid)]
    for combo in combos:  # refuse bad names before any kernel starts
        prepare(read_notebook(notebook), combo, allow_unknown=allow_unknown_params)
    kname = _kernel_name(source, kernel_name)
    workdir = os.fspath(cwd) if cwd is not None else os.getcwd()
    modules = preload_modules(notebook, workdir) if preload else []
    # The fork server imports while the sweep run is made (see kiln.notebooks._zygote).
    zygote = start_zygote(kname, workdir, modules) if fork and len(combos) > 1 else None
    try:
        return _sweep(
            notebook, combos, grid, jobs=jobs, output=output, experiment=experiment, name=name,
            kname=kname, workdir=workdir, modules=modules, zygote=zygote, timeout=timeout,
            allow_unknown_params=allow_unknown_params, html=html, store=store, begin=begin,
            objective=objective, direction=direction,
        )  # fmt: skip
    finally:
        if zygote is not None:
            zygote.close()


def _sweep(
    notebook: str | os.PathLike[str],
    combos: list[dict[str, Any]],
    grid: Mapping[str, Sequence[Any]],
    *,
    jobs: int,
    output: str | os.PathLike[str] | None,
    experiment: str | None,
    name: str | None,
    kname: str,
    workdir: str,
    modules: list[str],
    zygote: Zygote | None,
    timeout: float | None,
    allow_unknown_params: bool,
    html: bool,
    store: str | os.PathLike[str] | None,
    begin: float,
    objective: str | None = None,
    direction: str | None = None,
) -> SweepResult:
    from kiln._settings import get_setting
    from kiln.notebooks._kernel import Kernel, close_thread_loop
    from kiln.tracking import capture_environment

    client = _client(store)
    sweep_id = client.create_run(
        experiment=experiment,
        name=name or f"{Path(notebook).stem}-sweep",
        tags={"kiln.notebook": os.fspath(notebook), "kiln.sweep": str(len(combos))},
        environment=capture_environment(packages=bool(get_setting("capture_packages"))),
    )
    client.log_params(sweep_id, {f"grid.{k}": repr(list(v)) for k, v in grid.items()})
    client.flush()
    results: list[NotebookResult | None] = [None] * len(combos)
    todo = list(enumerate(combos))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def take() -> tuple[int, dict[str, Any]] | None:
        with lock:
            return todo.pop(0) if todo and not errors else None

    def worker() -> None:
        try:
            work()
        finally:
            close_thread_loop()

    # Kernels launched ahead per worker: together about one per core, so that while a
    # notebook runs, the kernels of the next ones boot (and preload) on the idle cores.
    # A forked kernel boots in a fraction of a second: one ahead is enough.
    ahead = 1 if zygote is not None else max(1, (os.cpu_count() or 2) // jobs)

    def work() -> None:
        pending: deque[tuple[tuple[int, dict[str, Any]], Kernel]] = deque()

        def top_up() -> None:
            while len(pending) < ahead:
                job = take()
                if job is None:
                    return
                pending.append((job, Kernel.start(kname, workdir, modules, zygote)))

        top_up()
        while pending:
            (index, combo), kernel = pending.popleft()
            top_up()  # the next kernels boot while this notebook runs
            try:
                nb = read_notebook(notebook)
                index_map = prepare(nb, combo, allow_unknown=allow_unknown_params)
                results[index] = execute_prepared(
                    nb,
                    index_map,
                    kernel,
                    combo,
                    notebook=os.fspath(notebook),
                    output=output,
                    experiment=None,
                    name=None,
                    parent=sweep_id,
                    timeout=timeout,
                    html=html,
                    raise_on_error=False,
                    client=client,
                    begin=time.perf_counter(),
                )
            except BaseException as exc:  # noqa: BLE001 - stop the sweep, re-raised below
                with lock:
                    errors.append(exc)
                for _, waiting in pending:
                    waiting.shutdown()
                return

    threads = [
        threading.Thread(target=worker, name=f"kiln-sweep-{i}", daemon=True)
        for i in range(min(jobs, len(combos)))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trials = [_trial(client, i, r, objective) for i, r in enumerate(results) if r is not None]
    result = SweepResult(sweep_id, objective, direction, trials)
    if objective is not None and not errors:
        _mark_best(client, result)
    failed = bool(errors) or any(t.status != "finished" for t in trials)
    client.end_run(sweep_id, "failed" if failed else "finished")
    client.flush()
    if errors:
        raise errors[0]
    result.seconds = time.perf_counter() - begin
    return result


def _trial(client: Any, index: int, result: NotebookResult, objective: str | None) -> Trial:
    """A combination's trial; with an objective, a finished one carries its run's metrics."""
    metrics: dict[str, float] = {}
    if objective is not None and result.status == "finished":
        metrics = dict(client.get_run(result.run_id).metrics)
    return Trial(
        index,
        dict(result.parameters),
        result.status,
        result.run_id,
        metrics=metrics,
        error=str(result.error) if result.error is not None else None,
        seconds=result.seconds,
        result=result,
    )


def _mark_best(client: Any, sweep: SweepResult) -> None:
    """Tag the sweep run with its best child on the objective, as `kiln sweep` does."""
    assert sweep.objective is not None
    tags = {
        "kiln.sweep.objective": sweep.objective,
        f"kiln.direction.{sweep.objective}": str(sweep.direction),
    }
    best = sweep.best
    if best is not None:
        tags["kiln.sweep.best_run"] = best.run_id
        client.log_metrics(sweep.run_id, [(sweep.objective, sweep.best_value, 0, None)])
    client.set_tags(sweep.run_id, tags)
