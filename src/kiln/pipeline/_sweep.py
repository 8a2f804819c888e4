"""Sweeps: one function (or pipeline) over a grid or random points, a child run per trial.

A trial that raises is recorded as a failed run with its traceback, and the sweep goes
on. The results come back as a table sorted by the objective, the best trial marked.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from kiln._exceptions import ConfigurationError, PipelineError
from kiln.pipeline._exec import import_ref, user_traceback
from kiln.pipeline._trials import SweepResult, Trial

__all__ = ["SweepResult", "Trial", "sweep"]

STRATEGIES = ("grid", "random", "optuna")


def points(
    space: Mapping[str, Any], strategy: str, trials: int | None, seed: int
) -> list[dict[str, Any]]:
    """The parameter points of a sweep.

    Grid: every combination of the listed values. Random: `trials` draws; a list is a
    choice, a `(low, high)` tuple a uniform range (integers when both ends are).
    """
    if not space:
        raise ConfigurationError("A sweep needs a space: {name: [values...]} (or (low, high)).")
    if strategy == "grid":
        for k, v in space.items():
            if not isinstance(v, list | tuple) or not v:
                raise ConfigurationError(f"A grid lists each param's values; {k!r} has {v!r}.")
        combos = [dict(zip(space, c, strict=True)) for c in itertools.product(*space.values())]
        return combos[:trials] if trials else combos
    if strategy == "optuna":
        return []  # asked one at a time by `_Optuna`
    if strategy == "random":
        if not trials:
            raise ConfigurationError("A random sweep needs trials=N.")
        rng = random.Random(seed)
        out = []
        for _ in range(trials):
            point: dict[str, Any] = {}
            for k, v in space.items():
                if isinstance(v, tuple) and len(v) == 2:
                    lo, hi = v
                    point[k] = (
                        rng.randint(lo, hi)
                        if isinstance(lo, int) and isinstance(hi, int)
                        else rng.uniform(lo, hi)
                    )
                elif isinstance(v, list) and v:
                    point[k] = rng.choice(v)
                else:
                    raise ConfigurationError(
                        f"Param {k!r}: give a list of choices or a (low, high) tuple; got {v!r}."
                    )
            out.append(point)
        return out
    from kiln._exceptions import did_you_mean

    raise ConfigurationError(
        f"Unknown sweep strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}."
        + did_you_mean(strategy, STRATEGIES)
    )


class _Optuna:
    """Points asked of an Optuna study (TPE, seeded), told each trial's objective."""

    def __init__(self, space: Mapping[str, Any], direction: str, seed: int) -> None:
        from kiln._extras import require

        optuna = require("optuna", "optuna", "An Optuna sweep")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.space = dict(space)
        self.study = optuna.create_study(
            direction="maximize" if direction == "max" else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
        )
        self.trials: dict[int, Any] = {}

    def ask(self, i: int) -> dict[str, Any]:
        trial = self.study.ask()
        self.trials[i] = trial
        point: dict[str, Any] = {}
        for k, v in self.space.items():
            if isinstance(v, tuple) and len(v) == 2:
                lo, hi = v
                if isinstance(lo, int) and isinstance(hi, int):
                    point[k] = trial.suggest_int(k, lo, hi)
                else:
                    point[k] = trial.suggest_float(k, float(lo), float(hi))
            elif isinstance(v, list) and v:
                point[k] = trial.suggest_categorical(k, v)
            else:
                raise ConfigurationError(
                    f"Param {k!r}: give a list of choices or a (low, high) tuple; got {v!r}."
                )
        return point

    def tell(self, i: int, result: Mapping[str, Any], objective: str) -> None:
        value = result.get("metrics", {}).get(objective)
        if result.get("status") == "finished" and value is not None:
            self.study.tell(self.trials[i], value)
        else:
            self.study.tell(self.trials[i], state=self.optuna.trial.TrialState.FAIL)


def run_trial(
    task: dict[str, Any], fn: Callable[..., Any] | None = None, memo: Any = None
) -> dict[str, Any]:
    """Run one trial inside a child run of the sweep; never raises for the user's error."""
    from kiln.tracking import configure, configured_store, flush, start_run

    worker = fn is None
    if worker:
        module, qualname = task["ref"]
        fn = import_ref(module, qualname, task.get("root"))
        if configured_store() != task["store"]:
            configure(task["store"])
    assert fn is not None
    run = start_run(
        f"trial {task['trial']}",
        parent=task["parent_id"] if worker else None,
        params=task["params"] or None,
        tags={"kiln.sweep.trial": task["trial"]},
    )
    started = time.time()
    try:
        value = fn(**task["params"])
        metrics = _metrics(value, task["objective"])
        run.log_metrics(metrics)
    except Exception as exc:  # noqa: BLE001 - a crashing trial is recorded; the sweep goes on
        error = f"Trial {task['trial']} raised {type(exc).__name__}: {exc}\n{user_traceback(exc)}"
        run.end("failed", error=error)
        if worker:
            flush()
        return {"status": "failed", "error": error, "metrics": {}, "run_id": run.id}
    run.end("finished")
    if worker:
        flush()
    return {
        "status": "finished",
        "metrics": metrics,
        "run_id": run.id,
        "seconds": time.time() - started,
    }


def _metrics(value: Any, objective: str) -> dict[str, float]:
    if isinstance(value, Mapping):
        return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float)}
    try:
        return {objective: float(value)}
    except (TypeError, ValueError):
        raise PipelineError(
            f"A sweep's function returns a number or a dict of metrics; got {type(value).__name__}."
        ) from None


def sweep(
    fn: Callable[..., Any],
    space: Mapping[str, Any],
    *,
    strategy: str = "grid",
    trials: int | None = None,
    objective: str = "objective",
    direction: str = "max",
    jobs: int = 1,
    runner: str | None = None,
    address: str | None = None,
    seed: int = 0,
    experiment: str | None = None,
    name: str | None = None,
) -> SweepResult:
    """Call `fn(**point)` for each point of `space`, each call a child run of one sweep run.

    ```python
    def train(alpha: float, depth: int) -> dict[str, float]:
        ...
        return {"auc": auc}

    found = kiln.sweep(train, {"alpha": [0.1, 1.0], "depth": [3, 5]}, objective="auc", jobs=2)
    found.best["params"], found.table()
    ```

    Args:
        fn: Returns a number (the objective) or a dict of metrics. With processes or
            Ray it must be importable (defined in a module, not inside a function).
        space: Param name -> list of values (grid, or a choice) or, for random and
            optuna, a `(low, high)` range (integers when both ends are).
        strategy: `grid`, `random` or `optuna` (TPE, seeded; `pip install 'kiln-ml[optuna]'`).
        trials: How many points (random, optuna); a cap on the grid's points.
        objective: The metric that ranks trials (a plain number's name).
        direction: `max` or `min`.
        jobs: Trials run at once.
        runner: `inprocess`, `processes` or `ray` (default: processes when jobs > 1).
        address: The Ray cluster to join.
        seed: Seeds the random points.
        experiment: The sweep run's experiment (default: the function's name).
        name: The sweep run's name.

    Returns:
        A `SweepResult`: `.best`, `.table()`, `.trials`, `.run_id`.
    """
    from kiln.pipeline._runners import make_runner
    from kiln.tracking import flush, get_client, start_run

    if direction not in ("max", "min"):
        raise ConfigurationError(f"direction is 'max' or 'min'; got {direction!r}.")
    todo = points(space, strategy, trials, seed)
    asker = None
    if strategy == "optuna":
        if not trials:
            raise ConfigurationError("An Optuna sweep needs trials=N.")
        asker = _Optuna(space, direction, seed)
    total = len(todo) if asker is None else int(trials or 0)
    runner = runner or ("processes" if jobs > 1 else "inprocess")
    title = getattr(fn, "__name__", "sweep")
    work = make_runner(runner, jobs, address, work=run_trial)
    result: SweepResult
    try:
        with start_run(
            name or f"sweep {title}",
            experiment=experiment or title,
            tags={
                "kiln.sweep": strategy,
                "kiln.sweep.objective": objective,
                f"kiln.direction.{objective}": direction,
            },
        ) as parent:
            flush()
            result = SweepResult(parent.id, objective, direction)
            started = time.perf_counter()
            store = get_client().store.url
            asked: dict[int, dict[str, Any]] = {}
            running = 0
            found: dict[int, Trial] = {}
            while len(asked) < total or running:
                while len(asked) < total and running < max(work.jobs, 1):
                    i = len(asked)
                    point = todo[i] if asker is None else asker.ask(i)
                    asked[i] = point
                    task = {
                        "trial": i,
                        "params": point,
                        "objective": objective,
                        "ref": (fn.__module__, fn.__qualname__),
                        "root": None,
                        "store": store,
                        "parent_id": parent.id,
                    }
                    work.submit(str(i), task, fn)
                    running += 1
                for key, res in work.wait():
                    running -= 1
                    found[int(key)] = Trial(
                        int(key),
                        asked[int(key)],
                        res["status"],
                        res["run_id"],
                        metrics=res.get("metrics"),
                        error=res.get("error"),
                        seconds=res.get("seconds"),
                    )
                    if asker is not None:
                        asker.tell(int(key), res, objective)
            result.trials = [found[i] for i in sorted(found)]
            result.seconds = time.perf_counter() - started
            best = result.best
            if best is not None:
                parent.set_tags(
                    {"kiln.sweep.best_run": best.run_id, "kiln.sweep.best_trial": best.trial}
                )
                parent.log_metric(objective, best.metrics[objective])
    finally:
        work.close()
    return result


def sweep_pipeline(
    pipeline: Any,
    space: Mapping[str, Any],
    *,
    output: str | None = None,
    objective: str = "objective",
    **kwargs: Any,
) -> SweepResult:
    """Sweep a pipeline's params (dotted keys); the objective is read from `output`'s value.

    Trials run in this process, one pipeline run each (steps whose params did not
    change are cache hits).
    """
    last = output or list(pipeline.steps)[-1]

    def trial(**point: Any) -> Any:
        value = pipeline.run(overrides=point)[last]
        return value

    trial.__name__ = pipeline.name
    kwargs["runner"] = "inprocess"
    kwargs["jobs"] = 1
    return sweep(trial, space, objective=objective, **kwargs)
