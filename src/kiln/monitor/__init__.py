"""Monitoring: does the data a model sees now drift from the data it was trained on?

```python
result = kiln.monitor.drift(reference_frame, current_frame)
result.drifted_columns          # ["age", "plan"]
result.table                    # one row per column: test, p-value, distance, rule, why
```

`drift` compares each column of the current sample with the same column of the
reference: Kolmogorov-Smirnov and the Wasserstein distance (in reference standard
deviations) for numeric columns, a two-sample chi-square and the Jensen-Shannon distance
for categorical ones, PSI for both. At small samples a column drifts when its
Holm-adjusted p-value is below alpha (0.05, family-wise across the columns); at large
samples (10,000 values or more on the smaller side), when its distance reaches a
threshold (0.1). See docs/monitoring.md for the reasoning.

numpy and pandas are imported when `drift` is called, scipy too (installed with the
`evaluate` extra: `pip install 'kiln-ml[evaluate]'`).
"""

from __future__ import annotations

from kiln.monitor._drift import DEFAULTS, TESTS, DriftResult, drift

__all__ = ["DEFAULTS", "TESTS", "DriftResult", "drift"]
