"""The module-level registry API, on the store the tracking API uses.

The store is the one chosen by `kiln.configure(store=...)`, else `KILN_STORE`, else the
embedded default. Use a `RegistryClient` to work with another store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kiln.registry._client import RegistryClient
from kiln.registry._records import AliasChange, ModelVersion, RegisteredModel

__all__ = [
    "alias_history",
    "delete_alias",
    "get_model_version",
    "get_registry",
    "list_models",
    "list_versions",
    "register",
    "resolve_uri",
    "set_alias",
]


def get_registry() -> RegistryClient:
    """A `RegistryClient` on the store of the module-level tracking API."""
    from kiln.tracking import get_client

    return RegistryClient(get_client())


def register(
    model: Any,
    name: str,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    if_changed: bool = False,
) -> ModelVersion:
    """Register a saved model as the next version of `name` (1 for a new name).

    ```python
    with kiln.start_run(experiment="churn") as run:
        ...  # train, then save the model to the run's artifact folder `model/`
    version = kiln.registry.register(run, "churn")
    kiln.registry.set_alias("churn", "production", version.version)
    ```

    Args:
        model: A model URI `runs:/<run id>/<path>`; a run id (or unique prefix), or a
            run object with an `id` such as the `ActiveRun` from `kiln.start_run`, both
            meaning the run's artifact folder `model/`; a local folder holding
            `kiln-model.json`; or a `models:/` URI, to register that version again.
        name: The registered model's name (letters, digits, `.`, `-`, `_`); created on
            first registration.
        description: The model's description (replaces the old one when given).
        tags: Tags for this version.
        if_changed: Register only when the model differs from `name`'s latest version
            (another source or other files, or other tags); otherwise return that
            version and add none, so that registering on every deploy is idempotent.

    Returns:
        The new version (with `if_changed`, possibly the latest one). Versions are
        numbered per name in the order they are registered, also when several
        processes register at once.

    Raises:
        RegistryError: A bad name, or `model` holds no saved model (the message lists
            what it holds).
        RunNotFoundError: The run does not exist.
    """
    return get_registry().register(
        model, name, description=description, tags=tags, if_changed=if_changed
    )


def get_model_version(name: str, version_or_alias: int | str) -> ModelVersion:
    """One version of a model: by number, by alias (`"production"`), or `"latest"`.

    Raises:
        ModelNotFoundError: No model has that name (the message suggests close ones).
        ModelVersionNotFoundError: It has no such version; `AliasNotFoundError` when
            it has no such alias.
    """
    return get_registry().get_model_version(name, version_or_alias)


def list_models() -> list[RegisteredModel]:
    """Every registered model, by name, with its latest version and aliases."""
    return get_registry().list_models()


def list_versions(name: str) -> list[ModelVersion]:
    """Every version of a model, oldest first.

    Raises:
        ModelNotFoundError: No model has that name.
    """
    return get_registry().list_versions(name)


def set_alias(name: str, alias: str, version: int | str) -> AliasChange:
    """Point an alias (such as `production`) at a version: create it or move it, atomically.

    Args:
        name: The registered model's name.
        alias: Letters, digits, `-` and `_`; not all digits; not `latest`.
        version: A version number, `"latest"`, or another alias.

    Returns:
        The change (`set`, `move`, or `unchanged`), as recorded in the alias history.

    Raises:
        RegistryError: The alias name is not valid.
        ModelNotFoundError: No model has that name.
        ModelVersionNotFoundError: It has no such version.
    """
    return get_registry().set_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> AliasChange:
    """Remove an alias; the version it pointed at stays.

    Raises:
        ModelNotFoundError: No model has that name.
        AliasNotFoundError: The model has no such alias.
    """
    return get_registry().delete_alias(name, alias)


def alias_history(name: str, alias: str | None = None) -> list[AliasChange]:
    """Every set, move and removal of a model's aliases (or of one alias), oldest first.

    Raises:
        ModelNotFoundError: No model has that name.
        AliasNotFoundError: `alias` was never set on the model.
    """
    return get_registry().alias_history(name, alias)


def resolve_uri(uri: str | os.PathLike[str], *, store: str | os.PathLike[str] | None = None) -> str:
    """The source a `models:/` URI stands for; other URIs and paths are returned as is.

    `models:/churn/3`, `models:/churn@production` and `models:/churn/latest` become the
    version's source, such as `runs:/<run id>/model`. `kiln.load_model` and
    `kiln serve` resolve registry URIs through this.

    Args:
        uri: A `models:/` URI, or any other URI or path (returned unchanged).
        store: The store whose registry to read (default: the one the module-level
            tracking API uses).

    Raises:
        RegistryError: A malformed `models:/` URI.
        ModelNotFoundError: No model has that name.
        ModelVersionNotFoundError: It has no such version or alias.
    """
    if isinstance(uri, str) and not uri.startswith("models:/"):
        return uri  # no store is opened for URIs the registry does not own
    registry = get_registry() if store is None else RegistryClient(store)
    return registry.resolve_uri(uri)
