"""Every error kiln raises on purpose, in one hierarchy.

```
KilnError
├── ConfigurationError          a setting, URL or option is wrong
│   └── MissingExtraError       an optional dependency is not installed
├── StoreError                  the metadata store cannot be used
│   ├── StoreUnavailableError   the store URL cannot be opened
│   │   └── StoreNotFoundError  no store exists there yet (reading never creates one)
│   └── SchemaVersionError      the store's schema does not match this client
├── ArtifactError               an artifact cannot be stored or read
│   ├── ArtifactIntegrityError  an artifact's bytes do not match its recorded sha256
│   └── ArtifactPathError       a path from the store would reach outside its folder
├── TrackingError               a tracking call was given bad input
│   ├── InvalidMetricError      a metric value is NaN, infinite or not a number
│   ├── ParamConflictError      a param is logged again with a different value
│   ├── NoActiveRunError        a call that needs an active run made outside one
│   └── FilterSyntaxError       a run filter or order-by cannot be parsed
├── ModelError                  a model cannot be fitted, saved, loaded or called
│   ├── ModelFormatError        a folder is not a kiln saved model, or a newer format
│   ├── SignatureError          a signature cannot be made or read (unsupported kind, bad file)
│   ├── NotFittedError          a model was used before fit or load
│   └── PredictionError         the model's library raised while predicting
├── EvaluationError             metrics, plots or fairness cannot be computed from the input
│   └── PlotError               a plot cannot be drawn from the data given
├── DataFileError               a data file cannot be read (empty, not CSV/Parquet)
├── UntrustedCodeError          loading would run code from a file nobody said to trust
├── ValidationError             input data does not match a model's signature (names columns)
├── RegistryError               a registry call was given a bad name, alias or URI
├── AccessError                 a team-server user, token or permission call was given bad input
├── PipelineError               a pipeline cannot be built or run as asked (cycle, missing param)
│   └── StepFailedError         steps raised; independent ones finished and stay cached
├── NotebookError               a notebook cannot be read, parameterized or executed
│   ├── ParameterError          a parameter the notebook does not define, or no parameters cell
│   └── CellExecutionError      a cell raised (names the cell, its source and traceback)
│       ├── CellTimeoutError    a cell ran longer than the per-cell timeout
│       └── KernelDiedError     the kernel process died while a cell ran
└── NotFoundError               an experiment, run, artifact or model does not exist
    ├── ExperimentNotFoundError
    ├── RunNotFoundError
    ├── ArtifactNotFoundError
    ├── ModelNotFoundError          no registered model has the name
    └── ModelVersionNotFoundError   the model has no such version
        └── AliasNotFoundError      the model has no such alias
```

Warnings: `KilnWarning` (a `UserWarning`) is the root of every warning kiln issues, so
`warnings.filterwarnings("error", category=kiln.KilnWarning)` catches them all:
`UnknownFilterKeyWarning` (a run filter names a key no searched run has),
`kiln.models.DataDriftWarning` (input outside the training reference),
`kiln.models.UnsafeSerializationWarning` (a model saved with pickle),
`kiln.models.ModelVersionWarning` (saved by another library version),
`kiln.pipeline.PickledOutputWarning` (a step output cached with pickle),
`kiln.autolog.AutologWarning` and `kiln.notebooks.ParametersCellWarning`.

Messages say what was wrong, what was expected and how to fix it. Errors that wrap a
third-party exception chain it (`raise ... from exc`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "AccessError",
    "AliasNotFoundError",
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "ArtifactPathError",
    "CellExecutionError",
    "CellTimeoutError",
    "ConfigurationError",
    "DataFileError",
    "EvaluationError",
    "ExperimentNotFoundError",
    "FilterSyntaxError",
    "InvalidMetricError",
    "KernelDiedError",
    "KilnError",
    "KilnWarning",
    "MissingExtraError",
    "ModelError",
    "ModelFormatError",
    "ModelNotFoundError",
    "ModelVersionNotFoundError",
    "NoActiveRunError",
    "NotFittedError",
    "NotFoundError",
    "NotebookError",
    "ParamConflictError",
    "ParameterError",
    "PipelineError",
    "PlotError",
    "PredictionError",
    "RegistryError",
    "RunNotFoundError",
    "SchemaVersionError",
    "SignatureError",
    "StepFailedError",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "TrackingError",
    "UnknownFilterKeyWarning",
    "UntrustedCodeError",
    "ValidationError",
    "describe",
]


class KilnError(Exception):
    """Root of every error kiln raises on purpose."""


class ConfigurationError(KilnError, ValueError):
    """A setting, URL, option or argument has a value kiln cannot use.

    Also a `ValueError`, so code that catches `ValueError` for a bad argument keeps working.
    """


class MissingExtraError(ConfigurationError, ImportError):
    """An optional dependency is missing; the message gives the exact install line."""

    def __init__(self, module: str, extra: str, feature: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{feature} needs the Python package '{module}', which is not installed.\n"
            f"Install it with:  pip install 'kiln-ml[{extra}]'"
        )


class StoreError(KilnError):
    """The metadata store cannot be used."""


class StoreUnavailableError(StoreError):
    """The store URL cannot be opened (bad URL, server down, permission denied)."""


class StoreNotFoundError(StoreUnavailableError):
    """No store exists at the path a reading command looked at; reading never creates one.

    Attributes:
        path: The SQLite file that does not exist.
    """

    def __init__(self, message: str, path: str) -> None:
        self.path = path
        super().__init__(message)


class SchemaVersionError(StoreError):
    """The store's schema version differs from the one this client understands."""


class ArtifactError(KilnError):
    """An artifact cannot be stored or read."""


class ArtifactIntegrityError(ArtifactError):
    """An artifact's bytes no longer match the sha256 recorded when it was logged."""


class ArtifactPathError(ArtifactError):
    """A path read from the store (an artifact row, a cache entry) is absolute or holds
    `..`, so writing it would reach outside the destination folder. Nothing was written."""


class TrackingError(KilnError, ValueError):
    """A tracking call was given input it cannot record."""


class InvalidMetricError(TrackingError):
    """A metric value is NaN, infinite or not a real number."""


class ParamConflictError(TrackingError):
    """A param was logged again on the same run with a different value."""


class NoActiveRunError(TrackingError):
    """A call that stores with the active run (`kiln.end_run`, `model.save()` without a
    path, `kiln.evaluate(log=True)`, `Report.log()`) was made with no run active.

    Plain logging calls (`kiln.log_metric`, ...) never raise it: outside a run they start one.
    """


class FilterSyntaxError(TrackingError):
    """A run filter or order-by expression cannot be parsed.

    Attributes:
        expression: The text that was parsed.
        position: Zero-based offset of the offending character.
    """

    def __init__(self, message: str, expression: str, position: int) -> None:
        self.expression = expression
        self.position = position
        # A long (generated) expression is shown as the 80 characters around the position.
        start = max(0, min(position - 40, len(expression) - 80))
        shown = expression[start : start + 80]
        before = "..." if start > 0 else ""
        after = "..." if start + 80 < len(expression) else ""
        caret = " " * (len(before) + position - start) + "^"
        super().__init__(f"{message} (at position {position})\n  {before}{shown}{after}\n  {caret}")


class ModelError(KilnError):
    """A model cannot be fitted, saved, loaded or called as asked."""


class ModelFormatError(ModelError):
    """A folder is not a kiln saved model, or was saved by a newer format version."""


class NotFittedError(ModelError, AttributeError):
    """A model was used before `fit` (or loading) gave it its learned state."""


class PredictionError(ModelError, ValueError):
    """The model's own library raised while predicting (an unseen category, a shape it
    refuses): the message names the flavor, the library's message and how to fix it."""


class DataFileError(KilnError, ValueError):
    """A data file cannot be read: missing, empty, or not CSV / Parquet."""


class KilnWarning(UserWarning):
    """Root of the warnings kiln issues on purpose."""


class UnknownFilterKeyWarning(KilnWarning):
    """A run filter names a metric, param or tag key that no searched run has, so it
    matched nothing; the message names the keys and suggests the closest existing ones."""


class UntrustedCodeError(KilnError):
    """Loading would run code from a file the caller has not said it trusts: a model saved
    with pickle, skops types outside kiln's allow-list, or a pickled pipeline output kiln
    did not sign. The message names the type and the flag that opts in
    (`trust_pickle=True`, `--trust-pickle`)."""


class ValidationError(KilnError, ValueError):
    """Data does not match a model signature (or a signature cannot be made or read).

    Attributes:
        errors: One dict per problem with keys `column` (the column name, or None for a
            problem with the input as a whole), `problem` (a short code: missing, type,
            null, category, range, input, shape; unsupported, name, format when making
            or reading a signature), `expected`, `found` (a short description with at
            most 3 example values), `rows` (up to 5 zero-based row positions) and
            `count` (how many rows have the problem).
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        self.errors: list[dict[str, Any]] = list(errors or [])
        super().__init__(message)

    @classmethod
    def from_errors(cls, errors: list[dict[str, Any]]) -> ValidationError:
        """An error whose message names every problem and its column."""
        return cls(describe(errors, "The input does not match the model signature"), errors)


class SignatureError(ModelError, ValueError):
    """A model signature cannot be made or read: a column kind, name or format kiln does
    not support, or a saved signature that is malformed. (Data that does not match a
    signature is a `ValidationError`.)"""


class EvaluationError(KilnError, ValueError):
    """Metrics, plots or fairness cannot be computed from what was given: labels and
    scores of different lengths, a task the metric does not support, a missing group."""


class PlotError(EvaluationError):
    """A plot cannot be drawn from the data given (the message says what it needs)."""


def describe(problems: list[dict[str, Any]], headline: str) -> str:
    """A message with one line per problem, naming its column; never the whole input.

    A line reads: `column 'f' [type]: expected numbers (float64); found 'abc' (2 rows: 0, 3)`.
    """
    count = len(problems)
    lines = [f"{headline} ({count} problem{'s' if count != 1 else ''}):"]
    for p in problems:
        where = "the input" if p["column"] is None else f"column {p['column']!r}"
        rows = ""
        if p.get("count"):
            shown = ", ".join(map(str, p["rows"])) + (
                ", ..." if p["count"] > len(p["rows"]) else ""
            )
            rows = f" ({p['count']} row{'s' if p['count'] != 1 else ''}: {shown})"
        found = f"; found {p['found']}{rows}" if p.get("found") else ""
        lines.append(f"  - {where} [{p['problem']}]: expected {p['expected']}{found}")
    return "\n".join(lines)


class NotFoundError(KilnError, LookupError):
    """Something asked for by name or id does not exist."""


class ExperimentNotFoundError(NotFoundError):
    """No experiment has the given name."""


class RunNotFoundError(NotFoundError):
    """No run has the given id (or id prefix)."""


class ArtifactNotFoundError(NotFoundError, ArtifactError):
    """The run has no artifact at the given path."""


class RegistryError(KilnError, ValueError):
    """A registry call was given input it cannot use: a bad model name, alias or URI, or
    a run without a saved model."""


class AccessError(KilnError, ValueError):
    """A call about the team server's users, tokens or permissions was given input it
    cannot use: an unknown or duplicate user, a bad role or level, an unknown token."""


class PipelineError(KilnError, ValueError):
    """A pipeline cannot be built or run as asked: a cycle, a missing param, an unknown step."""


class StepFailedError(PipelineError):
    """One or more steps raised. Independent steps finished; their outputs stay cached.

    Attributes:
        result: The `PipelineResult`, with every step's status.
        failures: Step name -> the error text (the user's traceback, kiln frames removed).
    """

    def __init__(self, message: str, result: Any = None, failures: dict[str, str] | None = None):
        self.result = result
        self.failures = dict(failures or {})
        super().__init__(message)


class ModelNotFoundError(NotFoundError):
    """No registered model has the given name."""


class ModelVersionNotFoundError(NotFoundError):
    """The registered model has no such version (or alias, or no versions at all)."""


class AliasNotFoundError(ModelVersionNotFoundError):
    """The registered model has no alias of the given name."""


class NotebookError(KilnError):
    """A notebook cannot be read, parameterized or executed."""


class ParameterError(NotebookError, ValueError):
    """A parameter the notebook's `parameters` cell does not define, or parameters given
    to a notebook without a `parameters` cell."""


class CellExecutionError(NotebookError):
    """A notebook cell failed; the run is `failed` and the partial notebook was saved.

    Attributes:
        cell_index: Zero-based index among the code cells of the original notebook (the
            injected parameters cell is not counted; None when it was that cell).
        source: The failing cell's source.
        ename: The exception's class name raised in the kernel.
        evalue: The exception's message.
        traceback: The kernel's traceback as plain text.
        run_id: The run that recorded the execution.
        output_path: Where the partial output notebook was written, if anywhere.
    """

    def __init__(
        self,
        message: str,
        *,
        cell_index: int | None,
        source: str,
        ename: str = "",
        evalue: str = "",
        traceback: str = "",
        run_id: str | None = None,
        output_path: str | None = None,
    ) -> None:
        self.cell_index = cell_index
        self.source = source
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        self.run_id = run_id
        self.output_path = output_path
        super().__init__(message)


class CellTimeoutError(CellExecutionError):
    """A cell ran longer than the per-cell timeout and was interrupted."""


class KernelDiedError(CellExecutionError):
    """The kernel process died (crashed, killed or out of memory) while a cell ran."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' for the closest candidate, or '' when none is close."""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"
