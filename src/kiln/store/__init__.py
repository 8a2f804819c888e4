"""The metadata store: SQLAlchemy schema, Alembic migrations, SQLite and PostgreSQL.

`Store.open(url)` returns an open, migrated store. The embedded default is a SQLite file
in WAL mode under `.kiln/`, found like git finds `.git/`.
"""

from kiln.store._engine import SCHEMA_REVISIONS, Store, find_home, resolve_url, write_turn

__all__ = ["SCHEMA_REVISIONS", "Store", "find_home", "resolve_url", "write_turn"]
