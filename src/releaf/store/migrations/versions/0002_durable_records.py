"""Durable records: one grade per (module, diagnosis, policy version); a station's grade and disassembly status.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

Only operations SQLite performs in place (ADD COLUMN, CREATE INDEX): rebuilding ``stations`` in batch mode would
DROP a table that ``station_modules`` and ``passports`` reference, which SQLite refuses inside the migration's
transaction while foreign keys are on (and switching them off is impossible inside a transaction).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("uq_grades_module_diagnosis_policy", "grades",
                    ["module_id", "diagnosis_id", "policy_name", "policy_version"], unique=True)
    op.add_column("stations", sa.Column("grade", sa.String(length=8), nullable=True))
    op.add_column("stations", sa.Column("status", sa.String(length=16), server_default="built", nullable=False))
    op.add_column("stations", sa.Column("status_reason", sa.Text(), nullable=True))
    op.add_column("stations", sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("status_changed_at", "status_reason", "status", "grade"):
        op.drop_column("stations", column)  # SQLite >= 3.35 drops a plain column in place
    op.drop_index("uq_grades_module_diagnosis_policy", table_name="grades")
