"""The standard evaluation plots, in one consistent style, with nothing to fiddle.

Each function computes what it shows exactly on all the rows and returns a `Figure`:
a plain description (title, axis labels, traces with the values drawn, and the key
numbers in `values`) that renders as a PNG (matplotlib, Agg backend) or as interactive
Plotly JSON, and displays itself in a notebook.

```python
fig = kiln.plots.roc(y_test, model.predict_proba(X_test)[:, 1])
fig.values["auc"]          # 0.93..., the exact ROC AUC
fig.save("roc.png")        # or .json (Plotly) or .html (a one-file report)
```

Needs the `evaluate` extra: `pip install 'kiln-ml[evaluate]'`.
"""

from kiln.plots._classification import (
    calibration,
    confusion_matrix,
    gain,
    lift,
    precision_recall,
    roc,
)
from kiln.plots._figure import PALETTE, Figure, Trace
from kiln.plots._other import fairness, feature_importance, predicted_vs_actual, residuals

__all__ = [
    "PALETTE",
    "Figure",
    "Trace",
    "calibration",
    "confusion_matrix",
    "fairness",
    "feature_importance",
    "gain",
    "lift",
    "precision_recall",
    "predicted_vs_actual",
    "residuals",
    "roc",
]
