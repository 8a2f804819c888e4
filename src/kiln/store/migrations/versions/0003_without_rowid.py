"""SQLite: params, latest_metrics and tags become WITHOUT ROWID tables; params get an
index on (key, value).

Their rows are read by (run_id, key); stored in the primary-key b-tree itself, a run's rows
are found with one search instead of an index search plus one table lookup per row. Nothing
changes on PostgreSQL. The tables are rebuilt with the same columns and constraints and
their rows copied, inside the migration's transaction.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLES = {
    "params": (
        'run_id VARCHAR(32) NOT NULL, "key" VARCHAR(250) NOT NULL, value TEXT NOT NULL, '
        "value_num FLOAT, "
        'CONSTRAINT pk_params PRIMARY KEY (run_id, "key"), '
        "CONSTRAINT fk_params_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) "
        "ON DELETE CASCADE",
        [],
    ),
    "latest_metrics": (
        'run_id VARCHAR(32) NOT NULL, "key" VARCHAR(250) NOT NULL, value FLOAT NOT NULL, '
        "step BIGINT NOT NULL, timestamp BIGINT NOT NULL, "
        'CONSTRAINT pk_latest_metrics PRIMARY KEY (run_id, "key"), '
        "CONSTRAINT fk_latest_metrics_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) "
        "ON DELETE CASCADE",
        ['CREATE INDEX ix_latest_metrics_key_value ON latest_metrics ("key", value)'],
    ),
    "tags": (
        'run_id VARCHAR(32) NOT NULL, "key" VARCHAR(250) NOT NULL, value TEXT NOT NULL, '
        'CONSTRAINT pk_tags PRIMARY KEY (run_id, "key"), '
        "CONSTRAINT fk_tags_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) "
        "ON DELETE CASCADE",
        [],
    ),
}


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    suffix = "" if with_rowid else " WITHOUT ROWID"
    for table, (columns, indexes) in _TABLES.items():
        op.execute(f"CREATE TABLE _kiln_new_{table} ({columns}){suffix}")
        op.execute(f"INSERT INTO _kiln_new_{table} SELECT * FROM {table}")
        op.execute(f"DROP TABLE {table}")
        op.execute(f"ALTER TABLE _kiln_new_{table} RENAME TO {table}")
        for index in indexes:
            op.execute(index)


# SQLite only: a param value may be 8,000 characters, beyond PostgreSQL's b-tree limit.
_PARAMS_INDEX = 'CREATE INDEX ix_params_key_value ON params ("key", value)'


def upgrade() -> None:
    _rebuild(with_rowid=False)
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_PARAMS_INDEX)


def downgrade() -> None:
    _rebuild(with_rowid=True)  # drops the params table's index with it
