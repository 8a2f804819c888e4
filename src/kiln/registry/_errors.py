"""The registry's errors; they live in the one hierarchy of `kiln._exceptions`."""

from __future__ import annotations

from kiln._exceptions import (
    AliasNotFoundError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RegistryError,
)

__all__ = [
    "AliasNotFoundError",
    "ModelNotFoundError",
    "ModelVersionNotFoundError",
    "RegistryError",
]
