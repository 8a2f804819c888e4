"""Model names, aliases, version references and the `models:/` and `runs:/` URIs.

```
models:/churn/3            version 3 of churn
models:/churn@production   the version the alias `production` points at
models:/churn/latest       the highest version
runs:/<run_id>/model       the artifact folder `model/` of a run
```

`runs:/` URIs are parsed by `kiln.tracking.parse_runs_uri` (tracking owns runs), so
registering and loading accept the same ones; it is re-exported here.

A model name is letters, digits, `.`, `-` and `_`, starting with a letter or digit. An
alias is letters, digits, `-` and `_`, not all digits (so `models:/churn@3` can only
mean an alias) and not `latest`, which always means the highest version.
"""

from __future__ import annotations

import re
from typing import Any

from kiln.registry._errors import RegistryError
from kiln.tracking import RUNS_PREFIX, parse_runs_uri

__all__ = [
    "LATEST",
    "MODELS_PREFIX",
    "MODEL_MANIFEST",
    "RUNS_PREFIX",
    "check_alias",
    "check_model_name",
    "parse_model_ref",
    "parse_models_uri",
    "parse_runs_uri",
    "parse_version_ref",
]

MODELS_PREFIX = "models:/"
MODEL_MANIFEST = "kiln-model.json"  # the file that makes a folder a kiln saved model
LATEST = "latest"
MAX_NAME = 255
MAX_ALIAS = 64

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_ALIAS = re.compile(r"[A-Za-z0-9_-]+\Z")

VersionRef = int | str  # a version number, LATEST, or an alias


def check_model_name(name: Any) -> str:
    """Return `name` if it can name a registered model; raise `RegistryError` otherwise."""
    if not isinstance(name, str) or not name:
        raise RegistryError(f"A model name must be a non-empty string; got {name!r}.")
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise RegistryError(
            f"Model name {name!r} is not valid: use letters, digits, '.', '-' and '_', "
            f"starting with a letter or digit, at most {MAX_NAME} characters (it appears "
            "in URIs such as models:/churn-eu/3)."
        )
    return name


def check_alias(alias: Any) -> str:
    """Return `alias` if it can name an alias; raise `RegistryError` saying why not."""
    if not isinstance(alias, str) or not alias:
        raise RegistryError(f"An alias must be a non-empty string; got {alias!r}.")
    if alias.lower() == LATEST:
        raise RegistryError(
            f"{alias!r} is reserved: models:/NAME/latest always means the highest version. "
            "Choose another alias, such as 'production' or 'champion'."
        )
    if len(alias) > MAX_ALIAS or not _ALIAS.match(alias):
        raise RegistryError(
            f"Alias {alias!r} is not valid: use letters, digits, '-' and '_', at most "
            f"{MAX_ALIAS} characters (for example 'production' or 'candidate-2')."
        )
    if alias.isdigit():
        raise RegistryError(
            f"Alias {alias!r} is all digits, so models:/NAME@{alias} would read like version "
            f"{alias}. Choose a name with a letter in it, such as 'v{alias}'."
        )
    return alias


def parse_version_ref(ref: Any) -> VersionRef:
    """A version number, `LATEST`, or an alias name, from an int or a string.

    Raises:
        RegistryError: `ref` is neither a positive version number nor a valid alias.
    """
    if isinstance(ref, bool):
        raise RegistryError(f"A version must be a positive integer or an alias; got {ref!r}.")
    if isinstance(ref, int):
        if ref < 1:
            raise RegistryError(f"Versions are numbered from 1; got {ref}.")
        return ref
    if isinstance(ref, str):
        text = ref.strip()
        if text.isdigit():
            return parse_version_ref(int(text))
        if text.lower() == LATEST:
            return LATEST
        if text.startswith("@"):
            text = text[1:]
        return check_alias(text)
    raise RegistryError(
        f"A version must be a positive integer, 'latest' or an alias; got {type(ref).__name__} "
        f"{ref!r}."
    )


def parse_models_uri(uri: str) -> tuple[str, VersionRef]:
    """`models:/NAME/VERSION`, `models:/NAME@ALIAS` or `models:/NAME/latest` as (name, ref).

    Raises:
        RegistryError: The URI is not one of those forms.
    """
    if not uri.startswith(MODELS_PREFIX):
        raise RegistryError(f"{uri!r} is not a models:/ URI.")
    name, ref = _split_ref(uri[len(MODELS_PREFIX) :], uri)
    if ref is None:
        raise RegistryError(
            f"{uri!r} names a model but not which version. Use models:/{name}/3 (a version), "
            f"models:/{name}@production (an alias) or models:/{name}/latest."
        )
    return name, ref


def parse_model_ref(text: str) -> tuple[str, VersionRef | None]:
    """`NAME`, `NAME/VERSION`, `NAME@ALIAS`, `NAME/latest`, or any of them as a models:/
    URI, as (name, ref); ref is None when only a name is given."""
    body = text[len(MODELS_PREFIX) :] if text.startswith(MODELS_PREFIX) else text
    return _split_ref(body, text)


def _split_ref(body: str, shown: str) -> tuple[str, VersionRef | None]:
    if "@" in body:
        name, _, alias = body.partition("@")
        if "/" in alias or "/" in name:
            raise RegistryError(
                f"{shown!r} mixes a version and an alias; use NAME/VERSION or NAME@ALIAS."
            )
        return check_model_name(name), check_alias(alias)
    name, slash, version = body.partition("/")
    check_model_name(name)
    if not slash:
        return name, None
    if "/" in version or not version:
        raise RegistryError(
            f"{shown!r} is not a model reference: expected {name}/VERSION, {name}@ALIAS or "
            f"{name}/latest."
        )
    if version.isdigit():
        return name, parse_version_ref(int(version))
    if version.lower() == LATEST:
        return name, LATEST
    hint = f"models:/{name}@{version}" if shown.startswith(MODELS_PREFIX) else f"{name}@{version}"
    raise RegistryError(
        f"{shown!r}: {version!r} is not a version number. For the version an alias points "
        f"at, write {hint}."
    )
