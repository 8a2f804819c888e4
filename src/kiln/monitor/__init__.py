"""Monitoring: does what a model sees now drift from what it was trained on?

`kiln.monitor` is both this module and a function: call it to monitor a model, or use
its parts.

```python
report = kiln.monitor("models:/churn@production", since="7d")  # the prediction log
report.drifted_columns  # ["age", "plan"]
report.alerts  # one line per breached threshold
report.save_report("monitor.html")
kiln.monitor.drift(train_frame, last_week_frame).table  # just the per-column drift
```

`monitor` compares the model's prediction log (or a data file) with the saved model's
reference profile and sample: per-feature drift, drift of the model's outputs,
data-quality findings, and with labels, performance and fairness over time. Every call
is recorded as a run of the `monitoring` experiment, tagged with the model's name and
version (`kiln.runs(experiment="monitoring")`).

`drift` compares each column of the current sample with the same column of the
reference: Kolmogorov-Smirnov and the Wasserstein distance (in reference standard
deviations) for numeric columns, a two-sample chi-square and the Jensen-Shannon distance
for categorical ones, PSI for both. At small samples a column drifts when its
Holm-adjusted p-value is below alpha (0.05, family-wise across the columns); at large
samples (10,000 values or more on the smaller side), when its distance reaches a
threshold (0.1). See docs/monitoring.md for the reasoning.

numpy and pandas are imported when a function is called, scipy too (installed with the
`monitor` extra: `pip install 'kiln-ml[monitor]'`).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from kiln.monitor._drift import DEFAULTS, TESTS, DriftResult, drift
from kiln.monitor._monitor import (
    EXPERIMENT,
    MonitorReport,
    load_config,
    monitor,
    monitor_windows,
    parse_duration,
    parse_time,
)
from kiln.monitor._performance import (
    PERFORMANCE_DEFAULTS,
    PerformanceResult,
    performance,
    reference_metrics,
)
from kiln.monitor._quality import CHECKS, QUALITY_DEFAULTS, SEVERITIES, Finding, quality

__all__ = [
    "CHECKS",
    "DEFAULTS",
    "EXPERIMENT",
    "PERFORMANCE_DEFAULTS",
    "QUALITY_DEFAULTS",
    "SEVERITIES",
    "TESTS",
    "DriftResult",
    "Finding",
    "MonitorReport",
    "PerformanceResult",
    "drift",
    "load_config",
    "monitor",
    "monitor_windows",
    "parse_duration",
    "parse_time",
    "performance",
    "quality",
    "reference_metrics",
]


class _CallableModule(types.ModuleType):
    """`kiln.monitor(...)` calls `kiln.monitor.monitor(...)`."""

    def __call__(self, *args: Any, **kwargs: Any) -> MonitorReport:
        return monitor(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
