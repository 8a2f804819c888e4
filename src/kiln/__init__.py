"""kiln: from notebook to production.

Experiment tracking with an embedded store (PostgreSQL for a team), and, as the project
grows, one model interface, evaluation, pipelines, notebooks, a registry, serving and
monitoring. `import kiln` is cheap: names are loaded from their modules on first use.

```python
import kiln

with kiln.start_run(experiment="churn", params={"C": 1.0}) as run:
    kiln.log_metric("auc", 0.91)
print(kiln.runs(experiment="churn", order_by="metrics.auc desc"))
```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kiln._exceptions import (
    AccessError,
    AliasNotFoundError,
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ArtifactPathError,
    CellExecutionError,
    CellTimeoutError,
    ConfigurationError,
    DataFileError,
    EvaluationError,
    ExperimentNotFoundError,
    FilterSyntaxError,
    InvalidMetricError,
    KernelDiedError,
    KilnError,
    KilnWarning,
    MissingExtraError,
    ModelError,
    ModelFormatError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    NoActiveRunError,
    NotebookError,
    NotFittedError,
    NotFoundError,
    ParamConflictError,
    ParameterError,
    PipelineError,
    PlotError,
    PredictionError,
    RegistryError,
    RunNotFoundError,
    SchemaVersionError,
    SignatureError,
    StepFailedError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    TrackingError,
    UnknownFilterKeyWarning,
    UntrustedCodeError,
    ValidationError,
)
from kiln._version import __version__

if TYPE_CHECKING:
    from kiln.models import Model, load_model
    from kiln.notebooks import NotebookResult, notebook_results, record, run_notebook
    from kiln.pipeline import Pipeline, step, sweep
    from kiln.registry import register
    from kiln.tracking import (
        ActiveRun,
        ArtifactInfo,
        DatasetInfo,
        Experiment,
        Metric,
        Run,
        TrackingClient,
        active_run,
        configure,
        end_run,
        flush,
        get_client,
        get_run,
        log_artifact,
        log_dataset,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        metric_history,
        prediction_log,
        runs,
        set_tag,
        set_tags,
        start_run,
    )

# Public name -> module that defines it; loaded on first attribute access.
_LAZY: dict[str, str] = dict.fromkeys(
    (
        "ActiveRun",
        "ArtifactInfo",
        "DatasetInfo",
        "Experiment",
        "Metric",
        "Run",
        "TrackingClient",
        "active_run",
        "configure",
        "end_run",
        "flush",
        "get_client",
        "get_run",
        "log_artifact",
        "log_dataset",
        "log_metric",
        "log_metrics",
        "log_param",
        "log_params",
        "log_text",
        "metric_history",
        "runs",
        "set_tag",
        "set_tags",
        "start_run",
    ),
    "kiln.tracking",
)
_LAZY.update(
    {
        "Model": "kiln.models",
        "load_model": "kiln.models",
        "register": "kiln.registry",
        "Pipeline": "kiln.pipeline",
        "step": "kiln.pipeline",
        "sweep": "kiln.pipeline",
        "prediction_log": "kiln.tracking",
        "NotebookResult": "kiln.notebooks",
        "notebook_results": "kiln.notebooks",
        "record": "kiln.notebooks",
        "run_notebook": "kiln.notebooks",
    }
)

# Every subpackage is reached as an attribute after a bare `import kiln`, loaded on first
# use (kiln.evaluate and kiln.autolog are also callable).
_SUBMODULES = (
    "artifacts",
    "autolog",
    "cli",
    "evaluate",
    "importer",
    "models",
    "monitor",
    "notebooks",
    "pipeline",
    "plots",
    "project",
    "registry",
    "report",
    "server",
    "serving",
    "store",
    "testing",
    "tracking",
    "ui",
)

__all__ = [
    "AccessError",
    "ActiveRun",
    "AliasNotFoundError",
    "ArtifactError",
    "ArtifactInfo",
    "ArtifactIntegrityError",
    "ArtifactNotFoundError",
    "ArtifactPathError",
    "CellExecutionError",
    "CellTimeoutError",
    "ConfigurationError",
    "DataFileError",
    "DatasetInfo",
    "EvaluationError",
    "Experiment",
    "ExperimentNotFoundError",
    "FilterSyntaxError",
    "InvalidMetricError",
    "KernelDiedError",
    "KilnError",
    "KilnWarning",
    "Metric",
    "MissingExtraError",
    "Model",
    "ModelError",
    "ModelFormatError",
    "ModelNotFoundError",
    "ModelVersionNotFoundError",
    "NoActiveRunError",
    "NotFittedError",
    "NotFoundError",
    "NotebookError",
    "NotebookResult",
    "ParamConflictError",
    "ParameterError",
    "Pipeline",
    "PipelineError",
    "PlotError",
    "PredictionError",
    "RegistryError",
    "Run",
    "RunNotFoundError",
    "SchemaVersionError",
    "SignatureError",
    "StepFailedError",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "TrackingClient",
    "TrackingError",
    "UnknownFilterKeyWarning",
    "UntrustedCodeError",
    "ValidationError",
    "__version__",
    "active_run",
    "autolog",
    "configure",
    "end_run",
    "evaluate",
    "flush",
    "get_client",
    "get_run",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "metric_history",
    "notebook_results",
    "prediction_log",
    "record",
    "register",
    "run_notebook",
    "runs",
    "set_tag",
    "set_tags",
    "start_run",
    "step",
    "sweep",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"kiln.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kiln' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
