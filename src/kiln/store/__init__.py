"""The metadata store: SQLAlchemy schema, Alembic migrations, SQLite and PostgreSQL.

`Store.open(url)` returns an open, migrated store. The embedded default is a SQLite file
in WAL mode under `.kiln/`, found like git finds `.git/`.

`kiln.store.schema` is the module of the store's tables (SQLAlchemy Core `Table`s such
as `schema.runs`, `schema.metrics`), for the packages that query the store (tracking,
the registry). It is loaded on first use, since it imports SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kiln.store._engine import SCHEMA_REVISIONS, Store, find_home, resolve_url, write_turn

if TYPE_CHECKING:
    from kiln.store import schema

__all__ = ["SCHEMA_REVISIONS", "Store", "find_home", "resolve_url", "schema", "write_turn"]


def __getattr__(name: str) -> Any:
    if name == "schema":  # a submodule, imported on first use
        return importlib.import_module("kiln.store.schema")
    raise AttributeError(f"module 'kiln.store' has no attribute {name!r}")
