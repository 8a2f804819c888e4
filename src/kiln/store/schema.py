"""The metadata store's tables (SQLAlchemy Core).

Times are integer milliseconds since the Unix epoch, so SQLite and PostgreSQL agree to
the millisecond. Run ids are 32-character lowercase hex strings. The Alembic migrations
in `kiln/store/migrations/versions` create exactly these tables; a test checks that a
migrated database matches this module.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "SQLITE_ONLY_INDEXES",
    "artifacts",
    "datasets",
    "experiment_permissions",
    "experiments",
    "latest_metrics",
    "metadata",
    "metrics",
    "model_alias_history",
    "model_aliases",
    "model_versions",
    "params",
    "registered_models",
    "run_datasets",
    "runs",
    "store_meta",
    "tags",
    "texts",
    "tokens",
    "use_postgresql",
    "users",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger, nullable=True),
    Index(
        "ix_experiments_live_name",
        "name",
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        # postgresql_where is added by `use_postgresql()`: naming it here would import
        # SQLAlchemy's PostgreSQL dialect into every process, SQLite-only ones included.
    ),
)

texts = Table(
    "texts",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("body", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("heartbeat_at", BigInteger, nullable=True),
    # Seconds between heartbeats of the process that runs it; 3 missed ones read as crashed.
    Column("heartbeat_interval", Float, nullable=True),
    Column("parent_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("user", String(255), nullable=True),
    Column("host", String(255), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("entry_point", Text, nullable=True),
    Column("command", Text, nullable=True),
    Column("git_commit", String(64), nullable=True),
    Column("git_branch", String(255), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    # Large texts live once in `texts`, by sha256: scans of runs stay fast, and the same
    # package list or diff shared by a thousand runs is stored once.
    Column("git_diff_sha", String(64), nullable=True),
    Column("python_version", String(64), nullable=True),
    Column("packages_sha", String(64), nullable=True),
    Column("error", Text, nullable=True),
    Column("deleted_at", BigInteger, nullable=True),
    Index("ix_runs_experiment_id_start_time", "experiment_id", "start_time"),
    Index("ix_runs_parent_id", "parent_id"),
)

# params, latest_metrics and tags are keyed by (run_id, key) and read a run at a time: on
# SQLite they are WITHOUT ROWID tables, so a run's rows sit together in the primary-key
# b-tree (one search, no second lookup per row; reading 1,000 runs' rows is about 1.4x
# faster). Schema revision 0003.
params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    # The value as a number when it parses as one, so `params.alpha > 0.1` compares numbers.
    Column("value_num", Float, nullable=True),
    sqlite_with_rowid=False,
)

metrics = Table(
    "metrics",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_metrics_run_id_key_step", "run_id", "key", "step"),
)

# One row per (run, key): the value at the highest step (latest timestamp on ties).
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Float, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
    sqlite_with_rowid=False,
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("run_id", "path"),
    Index("ix_artifacts_sha256", "sha256"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("name", String(255), nullable=True),
    Column("n_rows", BigInteger, nullable=False),
    Column("n_cols", Integer, nullable=False),
    Column("schema", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("source", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

run_datasets = Table(
    "run_datasets",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), primary_key=True),
    Column("role", String(64), primary_key=True),
    Column("direction", String(8), nullable=False),
    Column("name", String(255), nullable=True),
)

# ------------------------------------------------------------------ model registry
registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

# One row per registered version; `version` counts 1, 2, 3... per model name. The run
# is referenced without cascade: a run whose model is registered must not be purged.
model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(255), ForeignKey("registered_models.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("user", String(255), nullable=True),
    # JSON: the run's params, metrics, datasets, git state and the model's files and flavor.
    Column("lineage", Text, nullable=False),
    # JSON object of string tags.
    Column("tags", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Index("ix_model_versions_run_id", "run_id"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        name="fk_model_aliases_name_model_versions",
    ),
)

# Every set, move and removal of an alias, in the order they were committed (by id).
model_alias_history = Table(
    "model_alias_history",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("name", String(255), ForeignKey("registered_models.name"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("old_version", Integer, nullable=True),
    Column("new_version", Integer, nullable=True),
    Column("user", String(255), nullable=True),
    Column("host", String(255), nullable=True),
    Column("at", BigInteger, nullable=False),
    Column("action", String(8), nullable=False),
    Index("ix_model_alias_history_name_alias", "name", "alias"),
)


# ------------------------------------------------------------- the team server's users
# Users of `kiln server`, their API tokens and their per-experiment permissions (schema
# revision 0004). A token is kept only as the sha256 of its text, never the text itself.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # admin, editor or viewer
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    # Written at most once a minute per token, not on every request.
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    UniqueConstraint("user_id", "name"),
)

# One row per (user, experiment) granted: READ, EDIT, MANAGE or NONE (as MLflow's levels).
experiment_permissions = Table(
    "experiment_permissions",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    # Cascade: `kiln store gc` purges deleted experiments, and a purged id may be reused.
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("level", String(8), nullable=False),
    Index("ix_experiment_permissions_experiment_id", "experiment_id"),
)


# Indexes made on SQLite stores only (by `Store._create_fresh` and migration 0003), not
# declared on the tables above: on PostgreSQL a b-tree entry is limited to about 2.7 kB
# and a param value may be 8,000 characters. `params.model = 'rf'` then finds its runs
# from the index instead of scanning every param (a 10,000-run search's filter, 2x).
SQLITE_ONLY_INDEXES = {
    "ix_params_key_value": 'CREATE INDEX ix_params_key_value ON params ("key", value)',
}


def use_postgresql() -> None:
    """Give the schema its PostgreSQL-only options (called when a PostgreSQL engine is made)."""
    for index in experiments.indexes:
        if index.name == "ix_experiments_live_name":
            index.dialect_kwargs["postgresql_where"] = text("deleted_at IS NULL")
