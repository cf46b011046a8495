"""Durable records: one grade per (module, diagnosis, policy version); a station's grade and disassembly status.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite cannot add constraints in place: batch mode copies the table, inside the migration's transaction.
    with op.batch_alter_table("grades") as batch:
        batch.create_unique_constraint(
            "uq_grades_module_diagnosis_policy", ["module_id", "diagnosis_id", "policy_name", "policy_version"])
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("grade", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("status", sa.String(length=16), server_default="built", nullable=False))
        batch.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint("status_valid", "status IN ('built', 'disassemble')")


def downgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.drop_constraint("ck_stations_status_valid", type_="check")
        batch.drop_column("status_changed_at")
        batch.drop_column("status_reason")
        batch.drop_column("status")
        batch.drop_column("grade")
    with op.batch_alter_table("grades") as batch:
        batch.drop_constraint("uq_grades_module_diagnosis_policy", type_="unique")
