"""Lazy imports of optional dependencies, with the exact install line when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from kiln._exceptions import MissingExtraError

__all__ = ["require"]


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import `module`, or raise `MissingExtraError` naming `pip install 'kiln-ml[extra]'`.

    Args:
        module: The import name, such as `psycopg`.
        extra: The kiln extra that installs it, such as `postgres`.
        feature: What the user tried to do, for the message ("A PostgreSQL store").

    Returns:
        The imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra, feature) from exc
