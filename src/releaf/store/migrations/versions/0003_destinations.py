"""Grading for a destination: each grade's destination, safety result, screens (the whole Grade record) and the
overriding person's role; each station's policy and assembly method.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

In-place operations only (ADD COLUMN), for the reason given in 0002.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRADE_COLUMNS = (
    ("destination", sa.String(length=32)),
    ("record", sa.JSON()),
    ("override_role", sa.String(length=64)),
    ("override_destination", sa.String(length=32)),
)
STATION_COLUMNS = (
    ("policy_name", sa.String(length=64)),
    ("policy_version", sa.String(length=32)),
    ("assembly_method", sa.Text()),
)


def upgrade() -> None:
    for name, type_ in GRADE_COLUMNS:
        op.add_column("grades", sa.Column(name, type_, nullable=True))
    op.add_column("grades", sa.Column("failed_safety", sa.Boolean(), server_default=sa.false(), nullable=False))
    for name, type_ in STATION_COLUMNS:
        op.add_column("stations", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    for name, _ in reversed(STATION_COLUMNS):
        op.drop_column("stations", name)
    op.drop_column("grades", "failed_safety")
    for name, _ in reversed(GRADE_COLUMNS):
        op.drop_column("grades", name)
