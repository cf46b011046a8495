"""Lineage of a station: where every module came from and what was measured and decided on it.

The result is a plain JSON-ready dict (timestamps as ISO 8601 UTC strings) for passports, reports and the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from releaf.errors import NotFoundError
from releaf.store.models import Diagnosis, Grade, Module, Pack, Station, Test
from releaf.store.queries import find_station


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _grade(g: Grade) -> dict[str, Any]:
    return {
        "grade": g.grade,
        "effective_grade": g.effective_grade,
        "policy_name": g.policy_name,
        "policy_version": g.policy_version,
        "destination": g.destination,
        "effective_destination": g.effective_destination,
        "failed_safety": g.failed_safety,
        "screens": (g.record or {}).get("screens"),
        "reasons": list(g.reasons),
        "created_at": _iso(g.created_at),
        "override": None
        if g.override_grade is None
        else {
            "grade": g.override_grade,
            "destination": g.override_destination,
            "by": g.override_by,
            "role": g.override_role,
            "why": g.override_why,
            "at": _iso(g.overridden_at),
        },
    }


def _diagnosis(d: Diagnosis | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "capacity_Ah": d.capacity_Ah,
        "energy_Wh": d.energy_Wh,
        "soh_pct": d.soh_pct,
        "r0_mOhm": d.r0_mOhm,
        "weakest_group": d.weakest_group,
        "created_at": _iso(d.created_at),
        "grades": [_grade(g) for g in d.grades],
    }


def _test(t: Test) -> dict[str, Any]:
    return {
        "sha256": t.sha256,
        "file": t.raw_path,
        "parsed_path": t.parsed_path,
        "format": t.format,
        "vendor": t.vendor,
        "rows": t.rows,
        "duration_s": t.duration_s,
        "ingested_at": _iso(t.ingested_at),
        "diagnosis": _diagnosis(t.diagnosis),
    }


def _pack(p: Pack | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"vin": p.vin, "model": p.model, "generated": p.generated}


def _module(m: Module, series_position: int) -> dict[str, Any]:
    newest = max(m.grades, key=lambda g: (g.created_at, g.id), default=None)
    return {
        "serial": m.serial,
        "series_position": series_position,
        "profile": m.profile,
        "pack": _pack(m.pack),
        "position_in_pack": m.position,
        "effective_grade": None if newest is None else newest.effective_grade,
        "effective_destination": None if newest is None else newest.effective_destination,
        "tests": [_test(t) for t in m.tests],
    }


def lineage(s: Session, station_serial: str) -> dict[str, Any]:
    """Station → modules (series order) → pack (VIN) → tests (sha256, file) → diagnoses → grades.

    Parameters
    ----------
    station_serial : serial of a recorded station

    Returns
    -------
    ``{"station": {serial, design, grade, status, status_reason, policy_name, policy_version, assembly_method,
    created_at, certification}, "modules": [...]}``; each module has ``pack`` (``vin``, ``model``,
    ``generated``), ``effective_grade`` and ``effective_destination`` (newest grade row) and ``tests``, each test
    its ``diagnosis`` and that diagnosis its ``grades`` (destination, safety, screens, override with role).

    Raises
    ------
    NotFoundError : no station with that serial
    """
    station: Station | None = find_station(s, station_serial)
    if station is None:
        raise NotFoundError(f"station {station_serial}", "unknown station")
    return {
        "station": {
            "serial": station.serial,
            "design": station.design,
            "grade": station.grade,
            "status": station.status,
            "status_reason": station.status_reason,
            "policy_name": station.policy_name,
            "policy_version": station.policy_version,
            "assembly_method": station.assembly_method,
            "created_at": _iso(station.created_at),
            "certification": station.certification,
        },
        "modules": [_module(link.module, link.series_position) for link in station.module_links],
    }
