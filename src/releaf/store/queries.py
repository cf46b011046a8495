"""Reading and writing plant records. A thin shell: no grading or matching logic lives here.

Every function takes an open ``Session`` (from ``Store.transaction()``) and only flushes; the caller's
transaction commits or rolls back the whole unit of work. Bad values raise ``releaf.errors.InputFileError``,
unknown records ``NotFoundError`` and contradictions of what is stored ``ConflictError``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from releaf.errors import ConflictError, InputFileError, NotFoundError, OverrideRefused
from releaf.parameters import DEFAULT_BATTERY_PROFILE
from releaf.schema import records
from releaf.store.models import (
    GRADES,
    AuditEvent,
    Diagnosis,
    Grade,
    Module,
    Pack,
    Station,
    StationModule,
    Test,
    utc_now,
)

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _insert_or_get(s: Session, model, key: dict[str, Any], values: dict[str, Any] | None = None):
    """The row of ``model`` with ``key`` (its unique columns), inserted with ``values`` if there is none.

    ``INSERT … ON CONFLICT DO NOTHING`` then ``SELECT``: a concurrent writer that inserted the same key first wins
    and both get the same row, with no IntegrityError and no duplicate (SQLite and PostgreSQL).
    """
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - releaf supports SQLite and PostgreSQL
        raise NotImplementedError(dialect)
    where = [getattr(model, k) == v for k, v in key.items()]
    row = s.scalar(sa.select(model).where(*where))
    if row is not None:
        return row
    s.execute(insert(model).values(**key, **(values or {})).on_conflict_do_nothing(index_elements=list(key)))
    return s.scalar(sa.select(model).where(*where).execution_options(populate_existing=True))


def _require_text(where: str, name: str, value: str | None) -> str:
    """``value`` stripped, or a InputFileError naming the empty field."""
    if value is None or not str(value).strip():
        raise InputFileError(where, f"{name} must not be empty")
    return str(value).strip()


def _require_grade(where: str, grade: str) -> str:
    if grade not in GRADES:
        raise InputFileError(where, f"grade {grade!r} is not one of {', '.join(GRADES)}")
    return grade


def get_or_create_pack(
    s: Session, vin: str, model: str, generated: bool = False, *, intake: dict[str, Any] | None = None
) -> Pack:
    """The pack with this VIN, created if new.

    Parameters
    ----------
    vin : vehicle identification number
    model : vehicle / pack model (``"Nissan Leaf AZE0 24 kWh"``)
    generated : True if the pack's data come from releaf's demo generator, not from measurements
    intake : BMS pre-screen record; replaces the stored one when given
    """
    vin = _require_text("pack", "VIN", vin)
    pack = _insert_or_get(s, Pack, {"vin": vin}, {"model": _require_text(f"pack {vin}", "model", model),
                                                   "generated": generated, "created_at": utc_now()})
    if intake is not None:
        pack.intake = intake
    s.flush()
    return pack


def get_or_create_module(
    s: Session,
    serial: str,
    pack: Pack | None = None,
    position: int | None = None,
    profile: str = DEFAULT_BATTERY_PROFILE,
) -> Module:
    """The module with this serial, created if new; a known module without a pack is attached to ``pack``.

    Parameters
    ----------
    serial : module serial (label or plant-assigned)
    pack : the pack it came from, if known
    position : 1-based slot in that pack
    profile : battery profile name (``releaf.parameters``)

    Raises
    ------
    ConflictError : the module is already recorded in another pack
    InputFileError : ``position`` < 1
    """
    serial = _require_text("module", "serial", serial)
    where = f"module {serial}"
    if position is not None and position < 1:
        raise InputFileError(where, f"position in pack must be 1 or more, got {position}")
    module = s.scalar(sa.select(Module).where(Module.serial == serial))
    if module is None:
        module = _insert_or_get(s, Module, {"serial": serial}, {
            "pack_id": None if pack is None else pack.id, "position": position, "profile": profile})
    if pack is not None and module.pack is None:
        module.pack, module.position = pack, position
    elif pack is not None and module.pack is not pack:
        raise ConflictError(where, f"already recorded in pack {module.pack.vin}, not {pack.vin}")
    s.flush()
    return module


def find_test(s: Session, sha256: str) -> Test | None:
    """The test whose file has this sha256, or None."""
    return s.scalar(sa.select(Test).where(Test.sha256 == sha256.lower()))


def add_test(
    s: Session,
    *,
    sha256: str,
    format: str,
    raw_path: str,
    rows: int,
    duration_s: float,
    vendor: str | None = None,
    parsed_path: str | None = None,
    module: Module | None = None,
) -> Test:
    """Record an ingested test file; idempotent: a file already known by its sha256 returns the stored row.

    Parameters
    ----------
    sha256 : hex digest of the raw file's bytes (64 characters)
    format : reader that parsed it (``arbin``, ``maccor``, ...)
    raw_path : path of the raw file as ingested
    rows : samples in the canonical time series
    duration_s : test duration [s]
    vendor : cycler vendor, if known
    parsed_path : Parquet copy of the canonical time series, if written
    module : module under test, if known
    """
    digest = sha256.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise InputFileError(raw_path, f"sha256 must be 64 hex characters, got {sha256!r}")
    existing = find_test(s, digest)
    if existing is not None:
        if module is not None and existing.module_id not in (None, module.id):
            raise ConflictError(raw_path, f"this file (sha256 {digest[:12]}…) is already the test of module "
                                          f"{existing.module.serial}, not of {module.serial}")
        return existing
    return _insert_or_get(s, Test, {"sha256": digest}, {
        "format": format, "vendor": vendor, "raw_path": str(raw_path),
        "parsed_path": None if parsed_path is None else str(parsed_path), "rows": rows, "duration_s": duration_s,
        "module_id": None if module is None else module.id, "ingested_at": utc_now()})


def add_diagnosis(s: Session, test: Test, diagnosis: records.Diagnosis) -> Diagnosis:
    """Store the diagnosis of ``test`` (headline numbers + full record); returns the stored one if present.

    Raises
    ------
    InputFileError : the diagnosis was made on a different file (sha256 mismatch)
    """
    if diagnosis.sha256 and diagnosis.sha256.lower() != test.sha256:
        raise InputFileError(
            diagnosis.file, f"diagnosis is of file {diagnosis.sha256}, not of test {test.sha256}"
        )
    if test.diagnosis is not None:
        return test.diagnosis
    row = Diagnosis(
        test=test,
        capacity_Ah=diagnosis.capacity_Ah,
        energy_Wh=diagnosis.energy_Wh,
        soh_pct=diagnosis.soh_pct,
        r0_mOhm=diagnosis.r0_mOhm,
        weakest_group=diagnosis.weakest_group,
        record=diagnosis.to_dict(full=True),
    )
    s.add(row)
    s.flush()
    return row


def add_grade(
    s: Session,
    module: Module,
    diagnosis_row: Diagnosis,
    grade: str,
    reasons: Sequence[str],
    policy_name: str,
    policy_version: str,
    *,
    record: records.Grade | None = None,
) -> Grade:
    """Record a grade a policy gave ``module`` on the strength of ``diagnosis_row`` (found, not repeated, when the
    same module, diagnosis and policy version were graded before).

    Parameters
    ----------
    grade : the policy's grade, one of ``GRADES`` (``A``, ``B``, ``C``, ``reject``)
    reasons : human-readable reasons, in the policy's order
    policy_name, policy_version : the grading policy that decided
    record : the whole :class:`releaf.schema.records.Grade` (screens, destination, safety); a person's override
        in it is stored in the override columns, the policy's grade in ``grade``
    """
    key = {"module_id": module.id, "diagnosis_id": diagnosis_row.id, "policy_name": policy_name,
           "policy_version": str(policy_version)}
    values: dict[str, Any] = {"grade": _require_grade(f"module {module.serial}", grade),
                              "reasons": [str(r) for r in reasons], "created_at": utc_now()}
    if record is not None:
        values.update(record=record.to_dict(), failed_safety=record.failed_safety,
                      destination=record.destinations.get(str(record.policy_grade), record.destination))
        if record.override is not None:
            o = record.override
            values.update(override_grade=str(o.grade), override_by=o.user, override_why=o.reason,
                          override_role=o.role, override_destination=record.destination, overridden_at=o.at)
    return _insert_or_get(s, Grade, key, values)


def audit(
    s: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an audit event: ``actor`` did ``action`` to ``entity`` ``entity_id``."""
    event = AuditEvent(
        actor=_require_text("audit", "actor", actor),
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        detail=detail,
    )
    s.add(event)
    s.flush()
    return event


def _latest_grade_ids() -> sa.Subquery:
    """Per module, the id of its newest grade row (by ``created_at``, then id)."""
    newest_first = sa.func.row_number().over(
        partition_by=Grade.module_id, order_by=(Grade.created_at.desc(), Grade.id.desc())
    )
    ranked = sa.select(Grade.id, newest_first.label("rank")).subquery()
    return sa.select(ranked.c.id).where(ranked.c.rank == 1).subquery()


def latest_grade(s: Session, module: Module) -> Grade | None:
    """The newest grade row of ``module``, or None if it was never graded."""
    query = (
        sa.select(Grade)
        .where(Grade.module_id == module.id)
        .order_by(Grade.created_at.desc(), Grade.id.desc())
    )
    return s.scalars(query.limit(1)).first()


def latest_grades(s: Session) -> list[Grade]:
    """The newest grade row of every graded module, ordered by module serial.

    Read ``row.effective_grade`` (override if any, else the policy's grade) and ``row.module.serial``.
    """
    query = (
        sa.select(Grade)
        .join(Grade.module)
        .where(Grade.id.in_(sa.select(_latest_grade_ids())))
        .options(selectinload(Grade.module))
        .order_by(Module.serial)
    )
    return list(s.scalars(query))


def grade_counts(s: Session) -> dict[str, int]:
    """Modules per effective grade (newest grade row per module); every grade is a key, zeros included."""
    query = (
        sa.select(Grade.effective_grade, sa.func.count())
        .where(Grade.id.in_(sa.select(_latest_grade_ids())))
        .group_by(Grade.effective_grade)
    )
    counts = dict.fromkeys(GRADES, 0)
    counts.update({grade: n for grade, n in s.execute(query)})
    return counts


def override_grade(s: Session, module_serial: str, grade: str, who: str, why: str, *, role: str = "") -> Grade:
    """A person overrides the module's newest grade; the policy's grade is kept and an audit event written.

    The override goes through :func:`releaf.grading.override` on the stored grade record, so a module that failed
    a safety screen can never be put back into a product. If the module is already built into a station and the
    override makes it ineligible there (reject, or below the station's grade), the station is flagged for
    disassembly.

    Raises
    ------
    InputFileError : empty ``who`` or ``why``, invalid grade, never-graded module
    NotFoundError : unknown module
    OverrideRefused : the module failed a safety screen and ``grade`` is not reject
    """
    from releaf import grading

    where = f"override of module {module_serial}"
    who = _require_text(where, "who (the person overriding)", who)
    why = _require_text(where, "why (the reason for the override)", why)
    grade = "reject" if grade == "recycling" else _require_grade(where, grade)
    module = s.scalar(sa.select(Module).where(Module.serial == module_serial))
    if module is None:
        raise NotFoundError(where, f"unknown module {module_serial!r}")
    row = latest_grade(s, module)
    if row is None:
        raise InputFileError(where, "module has no grade to override; grade it first")
    before, before_destination = row.effective_grade, row.effective_destination
    if row.record is not None:
        stored = records.Grade.from_dict(row.record)
        try:
            decided = grading.override(stored, grade, reason=why, user=who, role=role)
        except OverrideRefused as err:
            raise OverrideRefused(f"module {module_serial}", err.message) from None
        destination = decided.destination
    else:  # a grade stored before 0003: only the safety flag is known
        if row.failed_safety and grade != "reject":
            raise OverrideRefused(f"module {module_serial}", "failed a safety screen: it goes to recycling")
        destination = None
    row.override_grade, row.override_by, row.override_why, row.override_role = grade, who, why, role or None
    row.override_destination = destination
    row.overridden_at = utc_now()
    audit(s, who, "override_grade", "module", module.serial,
          {"grade_id": row.id, "role": role or None, "policy_grade": row.grade, "policy_version": row.policy_version,
           "from": before, "to": grade, "from_destination": before_destination, "to_destination": destination,
           "why": why})
    link = module.station_link
    if link is not None and link.station.status == "built":
        station = link.station
        worse = station.grade is not None and GRADES.index(grade) > GRADES.index(station.grade)
        if grade == "reject" or worse:
            flag_station(s, station.serial, f"module {module.serial} overridden to {grade} by {who}: {why}",
                         actor=who)
    s.flush()
    return row


def _station_modules(s: Session, station_serial: str, module_serials: Sequence[str]) -> list[Module]:
    """The modules for a new station, checked: known, listed once, not already built into a station."""
    where = f"station {station_serial}"
    if not module_serials:
        raise InputFileError(where, "a station needs at least one module")
    repeated = sorted({m for m in module_serials if list(module_serials).count(m) > 1})
    if repeated:
        raise InputFileError(where, f"module(s) listed more than once: {', '.join(repeated)}")
    found = {m.serial: m for m in s.scalars(sa.select(Module).where(Module.serial.in_(module_serials)))}
    unknown = [m for m in module_serials if m not in found]
    if unknown:
        raise NotFoundError(where, f"unknown module(s): {', '.join(unknown)}")
    for serial in module_serials:
        link = found[serial].station_link
        if link is not None:
            raise ConflictError(where, f"module {serial} is already in station {link.station.serial}")
    return [found[m] for m in module_serials]


def add_station(
    s: Session,
    serial: str,
    design: str,
    module_serials_in_series_order: Sequence[str],
    certification: dict[str, Any] | None = None,
    grade: str | None = None,
    *,
    policy: tuple[str, str] | None = None,
    assembly_method: str | None = None,
) -> Station:
    """Record a station built from modules, in series order (first = series position 1).

    Raises
    ------
    InputFileError : duplicate station serial; unknown, repeated or already-used modules
    """
    serial = _require_text("station", "serial", serial)
    if s.scalar(sa.select(Station.id).where(Station.serial == serial)) is not None:
        raise ConflictError(f"station {serial}", "a station with this serial already exists")
    modules = _station_modules(s, serial, module_serials_in_series_order)
    station = Station(serial=serial, design=design, certification=certification,
                      grade=None if grade is None else _require_grade(f"station {serial}", grade),
                      policy_name=policy[0] if policy else None, policy_version=policy[1] if policy else None,
                      assembly_method=assembly_method)
    station.module_links = [
        StationModule(module=m, series_position=i) for i, m in enumerate(modules, start=1)
    ]
    s.add(station)
    try:
        s.flush()
    except IntegrityError as err:
        # A concurrent writer used a module between our check and this flush.
        raise ConflictError(f"station {serial}", f"could not record station: {err.orig}") from err
    return station


def station_places(s: Session) -> dict[str, records.StationPlace]:
    """Every module already built into a station: serial → the station's serial and grade class."""
    rows = s.execute(sa.select(Module.serial, Station.serial, Station.grade)
                     .join(StationModule, StationModule.module_id == Module.id)
                     .join(Station, Station.id == StationModule.station_id))
    return {m: records.StationPlace(st, records.GradeClass(g) if g else None) for m, st, g in rows}


@dataclass(frozen=True)
class StoredOverride:
    """A person's override in force on a module's newest grade, and what that grade was made on."""

    test_sha256: str
    policy_name: str
    policy_version: str
    override: records.Override


def stored_overrides(s: Session, serials: Sequence[str]) -> dict[str, StoredOverride]:
    """The overrides in force on these modules, by serial, from each module's newest grade row (a run re-applies
    one to the same test graded under the same policy)."""
    out = {}
    wanted = sorted(set(serials))
    for k in range(0, len(wanted), 500):
        query = (sa.select(Grade, Test.sha256, Module.serial).join(Module, Module.id == Grade.module_id)
                 .join(Diagnosis, Diagnosis.id == Grade.diagnosis_id).join(Test, Test.id == Diagnosis.test_id)
                 .where(Grade.id.in_(sa.select(_latest_grade_ids())), Module.serial.in_(wanted[k:k + 500]),
                        Grade.override_grade.is_not(None)))
        for g, sha, serial in s.execute(query):
            out[serial] = StoredOverride(sha, g.policy_name, g.policy_version, records.Override(
                original_grade=records.GradeClass(g.grade), original_destination=g.destination,
                grade=records.GradeClass(g.override_grade), user=g.override_by or "", role=g.override_role or "",
                reason=g.override_why or "", at=g.overridden_at))
    return out


def owners_of_tests(s: Session, sha256s: Sequence[str]) -> dict[str, str]:
    """Of these file digests, those already recorded as a module's test: sha256 → module serial."""
    digests = sorted({d.lower() for d in sha256s if d})
    out: dict[str, str] = {}
    for k in range(0, len(digests), 500):  # bounded IN lists
        query = (sa.select(Test.sha256, Module.serial).join(Module, Module.id == Test.module_id)
                 .where(Test.sha256.in_(digests[k:k + 500])))
        out.update({sha: serial for sha, serial in s.execute(query)})
    return out


def flag_station(s: Session, station_serial: str, reason: str, *, actor: str = "releaf run") -> Station:
    """Flag a stored station for disassembly (a member is no longer eligible) and write an audit event.

    Raises
    ------
    NotFoundError : unknown station
    """
    station = find_station(s, station_serial)
    if station is None:
        raise NotFoundError(f"station {station_serial}", "unknown station")
    reasons = [r for r in (station.status_reason, reason) if r]
    if station.status == "disassemble" and reason in (station.status_reason or ""):
        return station
    station.status, station.status_reason = "disassemble", "; ".join(reasons)
    station.status_changed_at = utc_now()
    audit(s, actor, "flag_disassembly", "station", station.serial, {"reason": reason})
    s.flush()
    return station


def module_serials_in_stations(s: Session) -> list[str]:
    """Serials of every module already built into a station."""
    return list(s.scalars(sa.select(Module.serial).join(StationModule, StationModule.module_id == Module.id)))


def find_station(s: Session, serial: str) -> Station | None:
    """The station with this serial, or None."""
    return s.scalar(sa.select(Station).where(Station.serial == serial))


def module_diagnoses(s: Session) -> list[tuple[records.ModuleEntry, records.Diagnosis]]:
    """Every module's latest diagnosis as records, in serial order: the input of ``PlantChain.run_from_diagnoses``.

    The stored JSON is validated back into :class:`releaf.schema.records.Diagnosis` (its ``schema_version`` is
    checked), so the chain can start part-way from what the plant database holds.
    """
    out = []
    for module in s.scalars(sa.select(Module).order_by(Module.serial)):
        tests = [t for t in module.tests if t.diagnosis is not None]
        if not tests:
            continue
        test = tests[-1]
        pack = module.pack
        entry = records.ModuleEntry(path=Path(test.raw_path), module_serial=module.serial,
                                    pack_vin=pack.vin if pack else None, pack_model=pack.model if pack else None,
                                    module_position=module.position, generated=bool(pack.generated) if pack else False)
        out.append((entry, records.Diagnosis.from_dict(test.diagnosis.record)))
    return out
