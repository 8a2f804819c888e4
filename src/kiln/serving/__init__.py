"""Serving: the HTTP API for a model, micro-batching, the prediction log, packaging and
batch scoring.

```python
from kiln.serving import ServeConfig, create_app, serve

serve("models:/churn@production", port=8000)          # what `kiln serve` runs
app = create_app("runs:/<run id>/model", ServeConfig(max_batch=32))  # any ASGI server
kiln.prediction_log("models:/churn@production", since="2026-11-01")
```

`kiln serve` answers `POST /predict` (and MLflow's `/invocations`) with kiln's own JSON
and MLflow's scoring formats, the Open Inference Protocol (KServe V2) under `/v2/`,
`/health`, `/ready`, `/metrics` (Prometheus), `/openapi.json` and `/docs`. It needs
`pip install 'kiln-ml[serve]'`.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Limits",
    "ServeConfig",
    "build_package",
    "create_app",
    "in_sample",
    "is_loopback",
    "predict_file",
    "prediction_log",
    "run_app",
    "serve",
]

_LAZY = {
    "ServeConfig": "kiln.serving._config",
    "Limits": "kiln.serving._config",
    "is_loopback": "kiln.serving._server",
    "run_app": "kiln.serving._server",
    "create_app": "kiln.serving._app",
    "serve": "kiln.serving._server",
    "in_sample": "kiln.serving._predlog",
    "prediction_log": "kiln.tracking",
    "build_package": "kiln.serving._package",
    "predict_file": "kiln.serving._batch",
}
# `ServeConfig` is a plain dataclass and `serve` checks the extra when called, so
# `kiln serve --help` reads their defaults without the extra installed.
_NEEDS_SERVE = {"create_app"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kiln.serving' has no attribute {name!r}")
    if name in _NEEDS_SERVE:
        from kiln._extras import require

        for dep in ("starlette", "orjson", "prometheus_client"):
            require(dep, "serve", "kiln serve")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
