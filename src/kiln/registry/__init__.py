"""The model registry: numbered versions of saved models, aliases, and their lineage.

A registered model is a name (`churn`) with versions 1, 2, 3... Each version records
where its files are (its source, such as `runs:/<run id>/model`), the run it came from,
and a lineage snapshot of that run: params, metrics, datasets and git state. An alias
(`production`, `champion`) points at one version and can be moved; every move is kept in
the alias's history, with who made it and when.

```python
import kiln.registry as registry

v = registry.register(run, "churn")                 # the run's artifact folder model/
registry.set_alias("churn", "production", v.version)
registry.resolve_uri("models:/churn@production")    # -> "runs:/<run id>/model"
```

Registry URIs: `models:/churn/3` (a version), `models:/churn@production` (an alias),
`models:/churn/latest` (the highest version).

`compare`, `Comparison` and `MetricComparison` moved to `kiln.evaluate` (the registry
stores models, it does not load or score them); `kiln.registry.compare` still works and
is `kiln.evaluate.compare`.
"""

import importlib
from typing import Any

from kiln.registry._api import (
    alias_history,
    delete_alias,
    get_model_version,
    get_registry,
    list_models,
    list_versions,
    register,
    resolve_uri,
    set_alias,
)
from kiln.registry._client import RegistryClient
from kiln.registry._errors import (
    AliasNotFoundError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RegistryError,
)
from kiln.registry._names import MODEL_MANIFEST, parse_model_ref, parse_models_uri
from kiln.registry._records import AliasChange, ModelVersion, RegisteredModel

__all__ = [
    "MODEL_MANIFEST",
    "AliasChange",
    "AliasNotFoundError",
    "ModelNotFoundError",
    "ModelVersion",
    "ModelVersionNotFoundError",
    "RegisteredModel",
    "RegistryClient",
    "RegistryError",
    "alias_history",
    "delete_alias",
    "get_model_version",
    "get_registry",
    "list_models",
    "list_versions",
    "parse_model_ref",
    "parse_models_uri",
    "register",
    "resolve_uri",
    "set_alias",
]

# Moved to kiln.evaluate; resolved on first use, so the registry never imports the
# packages above it (kiln.evaluate loads models) when it is imported.
_MOVED_TO_EVALUATE = ("Comparison", "MetricComparison", "compare")


def __getattr__(name: str) -> Any:
    """`compare`, `Comparison`, `MetricComparison`: moved to kiln.evaluate.compare (and
    kiln.evaluate.Comparison, kiln.evaluate.MetricComparison); these names still work."""
    if name in _MOVED_TO_EVALUATE:
        return getattr(importlib.import_module("kiln.evaluate"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
