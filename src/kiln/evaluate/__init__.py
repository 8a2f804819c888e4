"""Evaluation: the metrics per task, the standard plots, fairness by group, a report.

`kiln.evaluate` is both this module and a function: call it to evaluate a model,
or use its parts.

```python
result = kiln.evaluate(model, X_test, y_test, segments="region")  # logs to the active run
result.metrics["roc_auc"]
kiln.evaluate.metrics(y_true, y_pred, y_proba)  # just the numbers, no plots
groups, gaps = kiln.evaluate.fairness(y_true, y_pred, groups=X_test["region"])
kiln.evaluate.compare("churn@production", "churn/4", X_test, y_test).verdict
```

`metrics` is kiln's one implementation of the metrics: `kiln.evaluate`, `compare`
(`kiln models compare`), `fairness` (metrics per group and the gaps between groups)
and `kiln.monitor` all use it, and `HIGHER_IS_BETTER` gives
each metric's direction. Bad inputs (lengths that differ, an unknown task, a segment
column that does not exist) raise `kiln.EvaluationError`, a `ValueError`.

Needs the `evaluate` extra: `pip install 'kiln-ml[evaluate]'`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from kiln.evaluate._compare import Comparison, MetricComparison, compare
from kiln.evaluate._evaluate import Evaluation, evaluate
from kiln.evaluate._fairness import fairness
from kiln.evaluate._metrics import HIGHER_IS_BETTER, TASKS, detect_task, metrics

__all__ = [
    "HIGHER_IS_BETTER",
    "TASKS",
    "Comparison",
    "Evaluation",
    "MetricComparison",
    "compare",
    "detect_task",
    "evaluate",
    "fairness",
    "metrics",
]


class _CallableModule(types.ModuleType):
    """`kiln.evaluate(...)` calls `kiln.evaluate.evaluate(...)`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Evaluation:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
