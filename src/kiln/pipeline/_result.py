"""What a pipeline run (or a dry run) reports: one outcome per step."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PipelineResult", "StepOutcome"]


@dataclass
class StepOutcome:
    """One step's part in a run.

    Attributes:
        name: The step.
        status: `cached` (output reused), `done` (ran), `failed`, `skipped` (an input
            failed), `not run` (outside `only`), or for a dry run `would run`.
        reason: Why it ran (or would run): "code changed", "param train.alpha changed"...
        key: The cache key (None when an input was not available).
        run_id: The step's child run.
        output: The stored output's descriptor (format, sha).
        error: The error text with the user's traceback, for a failed step.
        start: Start time (epoch seconds) of the step's run.
        end: End time (epoch seconds).
        code_hash: The digest of the step's code and the project code it calls.
        params: The params it read (dotted key -> value).
        inputs: Input name -> the sha256 of the upstream output it read.
        files: Input-file parameter -> the file's sha256.
    """

    name: str
    status: str
    reason: str = ""
    key: str | None = None
    run_id: str | None = None
    output: dict[str, Any] | None = None
    error: str | None = None
    start: float | None = None
    end: float | None = None
    code_hash: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        """How long the step's run took."""
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


@dataclass
class PipelineResult:
    """The outcome of `Pipeline.run` (or `Pipeline.plan` for a dry run).

    Index it by step name for the step's output value: `result["train"]`.

    Attributes:
        run_id: The pipeline's tracked run (None for a dry run).
        steps: Step name -> `StepOutcome`, in run order.
    """

    run_id: str | None
    steps: dict[str, StepOutcome]
    _artifacts: Any = None
    _models_dir: Path | None = None

    def __getitem__(self, name: str) -> Any:
        from kiln._exceptions import PipelineError, did_you_mean
        from kiln.pipeline._outputs import load_output

        outcome = self.steps.get(name)
        if outcome is None:
            raise PipelineError(f"No step is named {name!r}.{did_you_mean(name, self.steps)}")
        if outcome.output is None or self._artifacts is None:
            raise PipelineError(
                f"Step {name!r} has no output in this run (it is {outcome.status})."
            )
        assert self._models_dir is not None
        return load_output(self._artifacts, outcome.output, self._models_dir)

    def with_status(self, *statuses: str) -> list[str]:
        """Names of the steps with one of these statuses."""
        return [n for n, o in self.steps.items() if o.status in statuses]

    @property
    def ran(self) -> list[str]:
        """Steps that ran (done or failed)."""
        return self.with_status("done", "failed")

    @property
    def cached(self) -> list[str]:
        """Steps whose output was reused."""
        return self.with_status("cached")

    @property
    def failed(self) -> list[str]:
        """Steps that raised."""
        return self.with_status("failed")

    @property
    def ok(self) -> bool:
        """Whether no step failed or was skipped."""
        return not self.with_status("failed", "skipped")
