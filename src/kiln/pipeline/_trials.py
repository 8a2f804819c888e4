"""What a sweep found: one `SweepResult` for `kiln.sweep` and `kiln.notebooks.run_grid`.

Both sweeps make one sweep run with a child run per trial, and rank the trials on an
objective; both return this class, so code that reads one reads the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SweepResult", "Trial"]


class Trial(dict[str, Any]):
    """One trial of a sweep: a dict (`trial`, `params`, `status`, `metrics`, `run_id`,
    `error`, `seconds`) whose keys are also attributes.

    `trial["params"]` and `trial.params` are the same; `parameters` is another name for
    `params` (a notebook's word). A notebook sweep's trial also holds its
    `NotebookResult` as `result` (not a key: the dict stays plain JSON data).
    """

    def __init__(
        self,
        trial: int,
        params: dict[str, Any],
        status: str,
        run_id: str,
        *,
        metrics: dict[str, float] | None = None,
        error: str | None = None,
        seconds: float | None = None,
        result: Any = None,
    ) -> None:
        super().__init__(
            trial=trial,
            params=params,
            status=status,
            metrics=dict(metrics or {}),
            run_id=run_id,
            error=error,
            seconds=seconds,
        )
        self.result = result

    @property
    def trial(self) -> int:
        """Its number, from 0, in the order the points were drawn."""
        return int(self["trial"])

    @property
    def params(self) -> dict[str, Any]:
        """The point: param name -> value."""
        return dict(self["params"])

    @property
    def parameters(self) -> dict[str, Any]:
        """The same as `params`."""
        return self.params

    @property
    def status(self) -> str:
        """`finished` or `failed`."""
        return str(self["status"])

    @property
    def metrics(self) -> dict[str, float]:
        """The metrics it reported (a function sweep) or logged (a notebook sweep)."""
        return dict(self["metrics"])

    @property
    def run_id(self) -> str:
        """Its child run of the sweep run."""
        return str(self["run_id"])

    @property
    def error(self) -> str | None:
        """Why it failed (with the user's traceback), None when it finished."""
        return self.get("error")

    @property
    def seconds(self) -> float | None:
        """How long it took."""
        return self.get("seconds")


@dataclass
class SweepResult:
    """What a sweep found: `kiln.sweep`'s and `kiln.notebooks.run_grid`'s alike.

    Attributes:
        run_id: The sweep's run; each trial is a child run of it.
        objective: The metric the trials are ranked by (None: not ranked).
        direction: `max` or `min` (None: not ranked).
        trials: One `Trial` per point, in order (trial, params, status, metrics, run_id,
            error, seconds).
        seconds: Wall time of the whole sweep.
    """

    run_id: str
    objective: str | None = None
    direction: str | None = None
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def best(self) -> Trial | None:
        """The finished trial with the best objective (None when none has a value for it)."""
        objective = self.objective
        if objective is None:
            return None
        scored = [
            t
            for t in self.trials
            if t.status == "finished"
            and isinstance(t.metrics.get(objective), int | float)
            and not math.isnan(t.metrics[objective])
        ]
        if not scored:
            return None
        pick = min if self.direction == "min" else max
        return pick(scored, key=lambda t: t.metrics[objective])

    @property
    def best_value(self) -> float | None:
        """The best trial's objective (None when there is no best trial)."""
        best = self.best
        return None if best is None or self.objective is None else best.metrics[self.objective]

    @property
    def results(self) -> list[Any]:
        """One result per trial: a notebook sweep's `NotebookResult`s, else the trials."""
        return [t.result if t.result is not None else t for t in self.trials]

    @property
    def failed(self) -> list[Any]:
        """The results (see `results`) of the trials that did not finish."""
        return [
            t.result if t.result is not None else t for t in self.trials if t.status != "finished"
        ]

    def table(self) -> Any:
        """A pandas DataFrame, one row per trial, sorted by the objective (best first)."""
        import pandas as pd

        best = self.best
        rows = [
            {
                "trial": t.trial,
                "status": t.status,
                **{f"params.{k}": v for k, v in t.params.items()},
                **{f"metrics.{k}": v for k, v in t.metrics.items()},
                "best": best is not None and t.trial == best.trial,
                "run_id": t.run_id,
            }
            for t in self.trials
        ]
        df = pd.DataFrame(rows)
        col = f"metrics.{self.objective}"
        if col in df:
            df = df.sort_values(col, ascending=self.direction == "min", na_position="last")
        return df.reset_index(drop=True)
