"""ORM models of the plant's records: packs, modules, tests, diagnoses, grades, stations, passports, audit.

Portable column types only (``sa.JSON``, ``String``, ``DateTime``), so the same models run on SQLite (the
default) and PostgreSQL. Every timestamp is timezone-aware UTC (see ``UTCDateTime``). The schema itself is
created by the Alembic migrations in ``releaf/store/migrations``; ``tests/test_store.py`` checks that the
migrations and these models agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from releaf.schema.records import GRADES  # the grade classes, best first

_GRADES_SQL = ", ".join(f"'{g}'" for g in GRADES)

# Named constraints keep migrations reproducible on SQLite and PostgreSQL (and make batch ALTERs possible).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware.

    SQLite keeps no time zone, so naive values read from it are UTC by construction; naive values are refused
    on the way in because their zone is unknown.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given; releaf stores timezone-aware UTC only"
            )
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every releaf table."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    # Double, not Float: SQLAlchemy 2.0 and 2.1 map ``float`` differently; pin one type for the migrations.
    type_annotation_map = {
        datetime: UTCDateTime(),
        float: sa.Double(),
        dict[str, Any]: sa.JSON(),
        list[str]: sa.JSON(),
    }


def _created_at() -> Mapped[datetime]:
    return mapped_column(default=utc_now)


class Pack(Base):
    """A retired EV pack as it arrived; ``intake`` holds the BMS pre-screen (LeafSpy / CAN), if any."""

    __tablename__ = "packs"

    id: Mapped[int] = mapped_column(primary_key=True)
    vin: Mapped[str] = mapped_column(sa.String(32), unique=True)
    model: Mapped[str] = mapped_column(sa.String(64))
    generated: Mapped[bool] = mapped_column(default=False)
    intake: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = _created_at()

    modules: Mapped[list[Module]] = relationship(back_populates="pack", order_by="Module.position")


class Module(Base):
    """One module from a pack; ``position`` is its 1-based slot in the pack, ``profile`` a battery profile."""

    __tablename__ = "modules"
    __table_args__ = (
        sa.CheckConstraint("position IS NULL OR position >= 1", name="position_from_1"),
        sa.UniqueConstraint("pack_id", "position", name="uq_modules_pack_id_position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(sa.String(64), unique=True)
    pack_id: Mapped[int | None] = mapped_column(sa.ForeignKey("packs.id"), index=True)
    position: Mapped[int | None]
    profile: Mapped[str] = mapped_column(sa.String(64))

    pack: Mapped[Pack | None] = relationship(back_populates="modules")
    tests: Mapped[list[Test]] = relationship(back_populates="module", order_by="Test.ingested_at")
    grades: Mapped[list[Grade]] = relationship(back_populates="module", order_by="Grade.id")
    station_link: Mapped[StationModule | None] = relationship(back_populates="module")


class Test(Base):
    """One cycler file, identified by the sha256 of its bytes (ingest is idempotent on it)."""

    __test__ = False  # not a pytest test class
    __tablename__ = "tests"
    __table_args__ = (sa.CheckConstraint("length(sha256) = 64", name="sha256_length"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    module_id: Mapped[int | None] = mapped_column(sa.ForeignKey("modules.id"), index=True)
    format: Mapped[str] = mapped_column(sa.String(32))
    vendor: Mapped[str | None] = mapped_column(sa.String(64))
    raw_path: Mapped[str] = mapped_column(sa.String(1024))
    parsed_path: Mapped[str | None] = mapped_column(sa.String(1024))
    rows: Mapped[int]
    duration_s: Mapped[float]
    ingested_at: Mapped[datetime] = mapped_column(default=utc_now)

    module: Mapped[Module | None] = relationship(back_populates="tests")
    diagnosis: Mapped[Diagnosis | None] = relationship(back_populates="test")


class Diagnosis(Base):
    """The diagnosis of one test: headline numbers as columns, ``Diagnosis.to_dict(full=True)`` as JSON."""

    __tablename__ = "diagnoses"

    id: Mapped[int] = mapped_column(primary_key=True)
    test_id: Mapped[int] = mapped_column(sa.ForeignKey("tests.id"), unique=True)
    capacity_Ah: Mapped[float | None]
    energy_Wh: Mapped[float | None]
    soh_pct: Mapped[float | None]
    r0_mOhm: Mapped[float | None]
    weakest_group: Mapped[int | None]
    record: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = _created_at()

    test: Mapped[Test] = relationship(back_populates="diagnosis")
    grades: Mapped[list[Grade]] = relationship(back_populates="diagnosis", order_by="Grade.id")


class Grade(Base):
    """A grade given to a module by a policy; a person may override it (who, why, when are kept)."""

    __tablename__ = "grades"
    __table_args__ = (
        sa.CheckConstraint(f"grade IN ({_GRADES_SQL})", name="grade_valid"),
        # one grade per module, diagnosis and policy version: a repeated or concurrent run finds it, never adds it
        sa.Index("uq_grades_module_diagnosis_policy", "module_id", "diagnosis_id", "policy_name", "policy_version",
                 unique=True),
        sa.CheckConstraint(
            f"override_grade IS NULL OR override_grade IN ({_GRADES_SQL})", name="override_valid"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(sa.ForeignKey("modules.id"), index=True)
    diagnosis_id: Mapped[int] = mapped_column(sa.ForeignKey("diagnoses.id"), index=True)
    grade: Mapped[str] = mapped_column(sa.String(8))
    policy_name: Mapped[str] = mapped_column(sa.String(64))
    policy_version: Mapped[str] = mapped_column(sa.String(32))
    reasons: Mapped[list[str]]
    created_at: Mapped[datetime] = _created_at()
    override_grade: Mapped[str | None] = mapped_column(sa.String(8))
    override_by: Mapped[str | None] = mapped_column(sa.String(128))
    override_why: Mapped[str | None] = mapped_column(sa.Text)
    overridden_at: Mapped[datetime | None]
    # since 0003: where the policy sends the module, whether it failed a safety screen, the whole Grade record
    # (screens in order), and the overriding person's role and the destination the override gives
    destination: Mapped[str | None] = mapped_column(sa.String(32))
    failed_safety: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    record: Mapped[dict[str, Any] | None]
    override_role: Mapped[str | None] = mapped_column(sa.String(64))
    override_destination: Mapped[str | None] = mapped_column(sa.String(32))

    module: Mapped[Module] = relationship(back_populates="grades")
    diagnosis: Mapped[Diagnosis] = relationship(back_populates="grades")

    @property
    def effective_destination(self) -> str | None:
        """The override's destination if a person set one, else the policy's."""
        return self.override_destination if self.override_grade else self.destination

    @hybrid_property
    def effective_grade(self) -> str:
        """The override if a person set one, else the policy's grade."""
        return self.override_grade or self.grade

    @effective_grade.inplace.expression
    @classmethod
    def _effective_grade_expression(cls) -> sa.ColumnElement[str]:
        return sa.func.coalesce(cls.override_grade, cls.grade)


STATION_STATUSES = ("built", "disassemble")
"""``built``: in service as certified; ``disassemble``: a member is no longer eligible (see ``status_reason``)."""


class Station(Base):
    """A product built from matched modules (``design`` is a station profile name, e.g. ``portable-2s``).

    ``grade`` is the grade class it was built as; ``status`` (one of ``STATION_STATUSES``, set only by
    ``queries.flag_station``) turns to ``disassemble`` when a retest makes a member ineligible (``status_reason``
    says which and why): such a station is flagged, never silently kept.
    """

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(sa.String(64), unique=True)
    design: Mapped[str] = mapped_column(sa.String(64))
    certification: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = _created_at()
    grade: Mapped[str | None] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16), default="built", server_default="built")
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    status_changed_at: Mapped[datetime | None]
    policy_name: Mapped[str | None] = mapped_column(sa.String(64))    # the grading policy its modules were graded by
    policy_version: Mapped[str | None] = mapped_column(sa.String(32))
    assembly_method: Mapped[str | None] = mapped_column(sa.Text)       # Pairing.method: the objective and the proof

    module_links: Mapped[list[StationModule]] = relationship(
        back_populates="station", order_by="StationModule.series_position", cascade="all, delete-orphan"
    )
    passports: Mapped[list[Passport]] = relationship(back_populates="station", order_by="Passport.id")

    @property
    def modules(self) -> list[Module]:
        """The station's modules in series order."""
        return [link.module for link in self.module_links]


class StationModule(Base):
    """A module's place in a station; ``module_id`` is unique: a module is built into at most one station."""

    __tablename__ = "station_modules"
    __table_args__ = (
        sa.CheckConstraint("series_position >= 1", name="series_position_from_1"),
        sa.UniqueConstraint(
            "station_id", "series_position", name="uq_station_modules_station_id_series_position"
        ),
    )

    station_id: Mapped[int] = mapped_column(sa.ForeignKey("stations.id"), primary_key=True)
    module_id: Mapped[int] = mapped_column(sa.ForeignKey("modules.id"), primary_key=True, unique=True)
    series_position: Mapped[int]

    station: Mapped[Station] = relationship(back_populates="module_links")
    module: Mapped[Module] = relationship(back_populates="station_link")


class Passport(Base):
    """A signed battery passport issued for a station (EU 2023/1542); filled by ``releaf.passport``."""

    __tablename__ = "passports"

    id: Mapped[int] = mapped_column(primary_key=True)
    station_id: Mapped[int] = mapped_column(sa.ForeignKey("stations.id"), index=True)
    body: Mapped[dict[str, Any]]
    signature: Mapped[str] = mapped_column(sa.Text)
    issued_at: Mapped[datetime] = mapped_column(default=utc_now)

    station: Mapped[Station] = relationship(back_populates="passports")


class AuditEvent(Base):
    """Who did what to which record, and when (overrides, manual edits, passport issues)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(64))
    entity: Mapped[str] = mapped_column(sa.String(64))
    entity_id: Mapped[str] = mapped_column(sa.String(128))
    detail: Mapped[dict[str, Any] | None]
