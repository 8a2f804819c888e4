"""Experiment tracking: runs with params, metrics, tags, datasets, artifacts and environment.

The filter language used by `kiln.runs(filter=...)` and `kiln runs list --filter`:

```
metrics.acc > 0.9 and params.model = 'rf'
(status = 'finished' or status = 'running') and not tags.note like 'debug%'
params.alpha in (0.1, 0.3) and start_time > '2026-11-01'
metrics.`val loss` < 0.2 and metrics.auc is not null
```

- Fields: `metrics.<key>` (the value at the highest step), `params.<key>`, `tags.<key>`,
  and run attributes: id, name, status, experiment, user, host, git_commit, git_branch,
  git_dirty, parent_id, start_time, end_time, duration (seconds). Keys with spaces or
  other characters are written in back-quotes.
- Operators: `= == != <> < <= > >= like`, `not like`, `in (...)`, `not in (...)`,
  `is null`, `is not null`; combined with `and`, `or`, `not` and parentheses. `like`
  ignores case (`%` matches any text, `_` one character).
- Values: numbers, 'single' or "double" quoted strings, true/false; times also as ISO
  dates. A param is compared as a number when the value is a number.
- A comparison on a metric, param or tag that a run lacks is false.
- Order by: `"metrics.acc desc, start_time"`; missing values sort last.
"""

from kiln.tracking._cache_hits import computed_by
from kiln.tracking._caches import clear_caches
from kiln.tracking._client import DEFAULT_EXPERIMENT, TrackingClient
from kiln.tracking._dataset import as_frame
from kiln.tracking._direction import metric_direction
from kiln.tracking._env import canonical_name, capture_environment, installed_packages
from kiln.tracking._fluent import (
    ActiveRun,
    active_run,
    configure,
    configured_store,
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
    runs,
    set_tag,
    set_tags,
    start_run,
)
from kiln.tracking._lite import download_run_artifacts
from kiln.tracking._predlog import EXPERIMENT as SERVING_EXPERIMENT
from kiln.tracking._predlog import URI_TAG as SERVING_URI_TAG
from kiln.tracking._predlog import LoggedRequest, PredictionLogWriter, prediction_log
from kiln.tracking._records import ArtifactInfo, DatasetInfo, Experiment, Metric, Run
from kiln.tracking._scope import scoped_filter
from kiln.tracking._uri import RUNS_PREFIX, parse_runs_uri
from kiln.tracking._validate import MAX_PARAM, new_run_name, param_number, param_text, shorten

__all__ = [
    "DEFAULT_EXPERIMENT",
    "MAX_PARAM",
    "RUNS_PREFIX",
    "SERVING_EXPERIMENT",
    "SERVING_URI_TAG",
    "ActiveRun",
    "ArtifactInfo",
    "DatasetInfo",
    "Experiment",
    "LoggedRequest",
    "Metric",
    "PredictionLogWriter",
    "Run",
    "TrackingClient",
    "active_run",
    "as_frame",
    "canonical_name",
    "capture_environment",
    "clear_caches",
    "computed_by",
    "configure",
    "configured_store",
    "download_run_artifacts",
    "end_run",
    "flush",
    "get_client",
    "get_run",
    "installed_packages",
    "log_artifact",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "metric_direction",
    "metric_history",
    "new_run_name",
    "param_number",
    "param_text",
    "parse_runs_uri",
    "prediction_log",
    "runs",
    "scoped_filter",
    "set_tag",
    "set_tags",
    "shorten",
    "start_run",
]
