"""Importing another tracker's history into a kiln store: MLflow's, for now.

```python
from kiln.importer import import_mlflow

report = import_mlflow("./mlruns", store="sqlite:///kiln.db")
print(report.summary())
```

Each imported run keeps its MLflow run id (when no kiln run has it), name, status,
times, params, tags (MLflow's own `mlflow.*` tags too), every metric's full history and
its artifacts, and carries the tag `kiln.imported_from` = `mlflow:<run id>`: importing
again skips the runs already imported. Registered models come along as far as kiln's
registry can hold them: a version whose files are a kiln saved model (they hold
`kiln-model.json`) is registered, with its aliases; what cannot be imported (an MLflow
flavor kiln does not load, a NaN metric value) is listed in the report with the reason.
Nothing from MLflow is ever unpickled.
"""

from kiln.importer._mlflow import IMPORTED_FROM, import_mlflow
from kiln.importer._report import ImportReport, SkippedItem

__all__ = ["IMPORTED_FROM", "ImportReport", "SkippedItem", "import_mlflow"]
