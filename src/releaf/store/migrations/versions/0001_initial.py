"""Initial schema: packs, modules, tests, diagnoses, grades, stations (+ station_modules), passports, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GRADES_SQL = "'A', 'B', 'C', 'reject'"


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def _utc(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "packs",
        _id(),
        sa.Column("vin", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("generated", sa.Boolean(), nullable=False),
        sa.Column("intake", sa.JSON(), nullable=True),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_packs")),
        sa.UniqueConstraint("vin", name=op.f("uq_packs_vin")),
    )
    op.create_table(
        "modules",
        _id(),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("pack_id", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.CheckConstraint("position IS NULL OR position >= 1", name=op.f("ck_modules_position_from_1")),
        sa.ForeignKeyConstraint(["pack_id"], ["packs.id"], name=op.f("fk_modules_pack_id_packs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modules")),
        sa.UniqueConstraint("pack_id", "position", name="uq_modules_pack_id_position"),
        sa.UniqueConstraint("serial", name=op.f("uq_modules_serial")),
    )
    op.create_index(op.f("ix_modules_pack_id"), "modules", ["pack_id"])
    op.create_table(
        "tests",
        _id(),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=True),
        sa.Column("raw_path", sa.String(length=1024), nullable=False),
        sa.Column("parsed_path", sa.String(length=1024), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Double(), nullable=False),
        _utc("ingested_at"),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_tests_sha256_length")),
        sa.ForeignKeyConstraint(["module_id"], ["modules.id"], name=op.f("fk_tests_module_id_modules")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tests")),
        sa.UniqueConstraint("sha256", name=op.f("uq_tests_sha256")),
    )
    op.create_index(op.f("ix_tests_module_id"), "tests", ["module_id"])
    op.create_table(
        "diagnoses",
        _id(),
        sa.Column("test_id", sa.Integer(), nullable=False),
        sa.Column("capacity_Ah", sa.Double(), nullable=True),
        sa.Column("energy_Wh", sa.Double(), nullable=True),
        sa.Column("soh_pct", sa.Double(), nullable=True),
        sa.Column("r0_mOhm", sa.Double(), nullable=True),
        sa.Column("weakest_group", sa.Integer(), nullable=True),
        sa.Column("record", sa.JSON(), nullable=False),
        _utc("created_at"),
        sa.ForeignKeyConstraint(["test_id"], ["tests.id"], name=op.f("fk_diagnoses_test_id_tests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnoses")),
        sa.UniqueConstraint("test_id", name=op.f("uq_diagnoses_test_id")),
    )
    op.create_table(
        "grades",
        _id(),
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.Column("diagnosis_id", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=8), nullable=False),
        sa.Column("policy_name", sa.String(length=64), nullable=False),
        sa.Column("policy_version", sa.String(length=32), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        _utc("created_at"),
        sa.Column("override_grade", sa.String(length=8), nullable=True),
        sa.Column("override_by", sa.String(length=128), nullable=True),
        sa.Column("override_why", sa.Text(), nullable=True),
        _utc("overridden_at", nullable=True),
        sa.CheckConstraint(f"grade IN ({GRADES_SQL})", name=op.f("ck_grades_grade_valid")),
        sa.CheckConstraint(
            f"override_grade IS NULL OR override_grade IN ({GRADES_SQL})",
            name=op.f("ck_grades_override_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["diagnosis_id"], ["diagnoses.id"], name=op.f("fk_grades_diagnosis_id_diagnoses")
        ),
        sa.ForeignKeyConstraint(["module_id"], ["modules.id"], name=op.f("fk_grades_module_id_modules")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grades")),
    )
    op.create_index(op.f("ix_grades_diagnosis_id"), "grades", ["diagnosis_id"])
    op.create_index(op.f("ix_grades_module_id"), "grades", ["module_id"])
    op.create_table(
        "stations",
        _id(),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("design", sa.String(length=64), nullable=False),
        sa.Column("certification", sa.JSON(), nullable=True),
        _utc("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("serial", name=op.f("uq_stations_serial")),
    )
    op.create_table(
        "station_modules",
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.Column("series_position", sa.Integer(), nullable=False),
        sa.CheckConstraint("series_position >= 1", name=op.f("ck_station_modules_series_position_from_1")),
        sa.ForeignKeyConstraint(
            ["module_id"], ["modules.id"], name=op.f("fk_station_modules_module_id_modules")
        ),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_station_modules_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("station_id", "module_id", name=op.f("pk_station_modules")),
        sa.UniqueConstraint("module_id", name=op.f("uq_station_modules_module_id")),
        sa.UniqueConstraint(
            "station_id", "series_position", name="uq_station_modules_station_id_series_position"
        ),
    )
    op.create_table(
        "passports",
        _id(),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        _utc("issued_at"),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_passports_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passports")),
    )
    op.create_index(op.f("ix_passports_station_id"), "passports", ["station_id"])
    op.create_table(
        "audit_events",
        _id(),
        _utc("at"),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])


def downgrade() -> None:
    for table in (
        "audit_events",
        "passports",
        "station_modules",
        "stations",
        "grades",
        "diagnoses",
        "tests",
        "modules",
        "packs",
    ):
        op.drop_table(table)  # a table's indexes go with it
