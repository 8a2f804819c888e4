"""The team server's users, their API tokens (kept as sha256 only) and their
per-experiment permissions.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger()


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _BIGINT, nullable=False),
        sa.Column("expires_at", _BIGINT, nullable=True),
        sa.Column("last_used_at", _BIGINT, nullable=True),
        sa.Column("revoked_at", _BIGINT, nullable=True),
        sa.UniqueConstraint("user_id", "name"),
    )
    op.create_table(
        "experiment_permissions",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column(
            "experiment_id",
            sa.Integer,
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("level", sa.String(8), nullable=False),
    )
    op.create_index(
        "ix_experiment_permissions_experiment_id", "experiment_permissions", ["experiment_id"]
    )


def downgrade() -> None:
    for table in ("experiment_permissions", "tokens", "users"):
        op.drop_table(table)
