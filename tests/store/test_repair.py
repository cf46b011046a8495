"""Half-made databases left by releases before 0.2 (DDL in autocommit): repaired when empty, refused with the
command that repairs them when they hold rows; ``releaf db check`` and ``releaf db repair`` on real SQLite files."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from releaf.app.cli import app
from releaf.errors import ConfigError
from releaf.schema.records import Diagnosis
from releaf.store import open_store, queries
from releaf.store.db import alembic_config
from releaf.store.models import AuditEvent
from releaf.store.repair import check, repair

runner = CliRunner()
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def old_release_killed_after(path, tables: int) -> None:
    """What a kill during an old release's first run left: the first ``tables`` of revision 0001, committed one
    by one, an ``alembic_version`` table without its row."""
    url = f"sqlite:///{path}"
    store = open_store(url)  # the real 0001+0002 DDL, then strip it back to what the old release had made
    store.close()
    con = sqlite3.connect(path)
    order = ["packs", "modules", "tests", "diagnoses", "stations", "audit_events", "grades", "passports",
             "station_modules"]
    for name in reversed(order[tables:]):
        con.execute(f"DROP TABLE {name}")
    con.execute("DELETE FROM alembic_version")
    con.commit()
    con.close()


@pytest.mark.parametrize("tables", [1, 3, 6])
def test_an_empty_half_made_database_is_repaired_on_open(tmp_path, tables):
    path = tmp_path / "old.db"
    old_release_killed_after(path, tables)
    assert check(f"sqlite:///{path}").problems  # detected as half-made
    store = open_store(f"sqlite:///{path}")
    with store.transaction() as s:
        queries.get_or_create_pack(s, "VIN1", "Leaf")
    store.close()
    report = check(f"sqlite:///{path}")
    assert report.version == HEAD and report.counts["packs"] == 1


def test_a_half_made_database_with_rows_is_refused_then_repaired_by_the_named_command(tmp_path):
    path = tmp_path / "plant.db"
    url = f"sqlite:///{path}"
    store = open_store(url)
    with store.transaction() as s:
        queries.get_or_create_pack(s, "VIN1", "Leaf")
    store.close()
    con = sqlite3.connect(path)
    con.execute("DELETE FROM alembic_version")  # every table, rows, but the version row lost
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match=r"releaf db repair --db sqlite:///"):
        open_store(url)
    out = runner.invoke(app, ["db", "repair", "--db", url])
    assert out.exit_code == 0 and f"recorded version {HEAD}" in out.stdout and "1 rows kept" in out.stdout
    store = open_store(url)
    with store.transaction(write=False) as s:
        assert s.scalar(sa.text("SELECT vin FROM packs")) == "VIN1"
    store.close()
    assert runner.invoke(app, ["db", "check", "--db", url]).exit_code == 0


def test_repair_refuses_tables_that_are_not_a_known_schema(tmp_path):
    path = tmp_path / "odd.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE packs (id INTEGER PRIMARY KEY, vin TEXT)")
    con.execute("INSERT INTO packs (vin) VALUES ('X')")
    con.commit()
    con.close()
    with pytest.raises(ConfigError, match="cannot repair: the tables differ"):
        repair(f"sqlite:///{path}")
    out = runner.invoke(app, ["db", "repair", "--db", f"sqlite:///{path}"])
    assert out.exit_code == 2 and len(out.stderr.strip().splitlines()) == 1


def test_check_reports_a_rejected_member_left_in_a_built_station(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    store = open_store(url)
    with store.transaction() as s:
        for serial, sha in (("M1", "a"), ("M2", "b")):
            module = queries.get_or_create_module(s, serial)
            test = queries.add_test(s, sha256=sha * 64, format="arbin-csv", raw_path=f"{serial}.csv", rows=1,
                                    duration_s=1.0, module=module)
            diag = queries.add_diagnosis(s, test, Diagnosis(
                file=f"{serial}.csv", format="arbin-csv", sha256=sha * 64, profile="leaf-24kwh-module",
                series_groups=2, capacity_Ah=None, energy_Wh=None, soh_pct=None, r0_mOhm=None, groups=(),
                weakest_group=None, warnings=()))
            queries.add_grade(s, module, diag, "reject" if serial == "M1" else "A", [], "p", "1")
        queries.add_station(s, "PS-1", "portable-2s", ["M1", "M2"], grade="A")
    store.close()
    problems = check(url).problems
    assert any("rejected member not flagged" in p and "PS-1" in p for p in problems)
    out = runner.invoke(app, ["db", "check", "--db", url])
    assert out.exit_code == 1 and "PS-1" in out.stdout
    store = open_store(url)
    with store.transaction() as s:
        queries.flag_station(s, "PS-1", "M1 retested as reject")
    store.close()
    assert check(url).ok


def test_an_override_is_audited_with_its_role_and_the_lineage_shows_it(tmp_path):
    """The store keeps the policy's grade, the override (who, role, why, destination) and an audit event; a safety
    failure cannot be overridden into a product; the station's lineage carries grades, destinations and policy."""
    from releaf import PlantChain
    from releaf.app.run import write_result
    from releaf.errors import OverrideRefused
    from releaf.schema.records import GroupDiagnosis, ModuleEntry
    from releaf.store import lineage

    def diag(serial, capacity, temperature):
        groups = tuple(GroupDiagnosis(group=g, capacity_Ah=capacity, r0_mOhm=1.0, end_voltage_V=3.0,
                                      min_voltage_V=3.0) for g in (1, 2))
        return Diagnosis(file=f"{serial}.csv", format="arbin-csv", sha256=hashlib.sha256(serial.encode()).hexdigest(),
                         profile="leaf-24kwh-module", series_groups=2, capacity_Ah=capacity,
                         energy_Wh=capacity * 7.5, soh_pct=capacity / 65 * 100, r0_mOhm=2.0, groups=groups,
                         weakest_group=1, warnings=(), max_temperature_C=temperature)

    chain = PlantChain.from_parameters()
    from releaf.grading import waive_lifetime_data

    chain = chain.replace(policy=waive_lifetime_data(chain.policy, "test lot"))
    lot = [(ModuleEntry(tmp_path / f"{s}.csv", s), diag(s, c, t))
           for s, c, t in (("C1", 41.0, 25.0), ("C2", 40.5, 25.0), ("HOT", 41.0, 75.0))]
    result = chain.run_from_diagnoses(lot)
    assert [st.modules for st in result.stations] == [("C1", "C2")]
    url = f"sqlite:///{tmp_path / 'p.db'}"
    store = open_store(url)
    with store.transaction() as s:
        write_result(s, result)
    with pytest.raises(OverrideRefused, match="temperature"), store.transaction() as s:
        queries.override_grade(s, "HOT", "C", "ana", "customer wants it", role="sales")
    with store.transaction() as s:
        row = queries.override_grade(s, "C1", "reject", "ana", "dented case at pack-out", role="quality")
        assert (row.grade, row.override_grade, row.override_role, row.override_destination) == \
            ("C", "reject", "quality", "recycling")
        trail = lineage(s, result.stations[0].serial)
    assert trail["station"]["status"] == "disassemble" and trail["station"]["policy_version"] == "2.0.0"
    c1 = next(m for m in trail["modules"] if m["serial"] == "C1")
    grade = c1["tests"][0]["diagnosis"]["grades"][0]
    assert grade["destination"] == "portable-station" and grade["override"]["role"] == "quality"
    assert c1["effective_destination"] == "recycling" and grade["screens"][0]["name"] == "visual_inspection"
    with store.transaction(write=False) as s:
        events = [(e.action, e.actor, e.detail.get("role")) for e in s.scalars(sa.select(AuditEvent))]
    store.close()
    assert ("override_grade", "ana", "quality") in events and ("flag_disassembly", "ana", None) in events
    assert len([e for e in events if e[0] == "override_grade"]) == 1  # the refused one left nothing
    assert check(url).ok
