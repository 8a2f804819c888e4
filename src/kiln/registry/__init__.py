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
registry.compare("churn@production", "churn/4", X_test, y_test).verdict
```

Registry URIs: `models:/churn/3` (a version), `models:/churn@production` (an alias),
`models:/churn/latest` (the highest version).
"""

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
from kiln.registry._compare import Comparison, MetricComparison, compare
from kiln.registry._errors import (
    AliasNotFoundError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RegistryError,
)
from kiln.registry._names import MODEL_MANIFEST, parse_models_uri
from kiln.registry._records import AliasChange, ModelVersion, RegisteredModel

__all__ = [
    "MODEL_MANIFEST",
    "AliasChange",
    "AliasNotFoundError",
    "Comparison",
    "MetricComparison",
    "ModelNotFoundError",
    "ModelVersion",
    "ModelVersionNotFoundError",
    "RegisteredModel",
    "RegistryClient",
    "RegistryError",
    "alias_history",
    "compare",
    "delete_alias",
    "get_model_version",
    "get_registry",
    "list_models",
    "list_versions",
    "parse_models_uri",
    "register",
    "resolve_uri",
    "set_alias",
]
