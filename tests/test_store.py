"""The store on real SQLite files: migrations, idempotent ingest, transactions, overrides, lineage."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from releaf.errors import ConflictError, InputFileError, NotFoundError, ReleafError
from releaf.schema.records import Diagnosis, Discharge, GroupDiagnosis, PulseResistance
from releaf.store import database_url, lineage, open_store, queries
from releaf.store.db import DATABASE_URL_ENV, alembic_config
from releaf.store.models import AuditEvent, Base, Grade, Module, Pack, Test

TABLES = {
    "packs",
    "modules",
    "tests",
    "diagnoses",
    "grades",
    "stations",
    "station_modules",
    "passports",
    "audit_events",
}


@pytest.fixture
def store(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a stray default URL would land here, not in the repo
    store = open_store(db_url)
    yield store
    store.close()


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def leaf_diagnosis(file: str, capacity_Ah: float, r0_mOhm: float) -> Diagnosis:
    """A plausible diagnosis of a 2S2P Leaf module (65 Ah new, 7.6 V nominal) after a C/3 discharge."""
    groups = (
        GroupDiagnosis(
            group=1, capacity_Ah=capacity_Ah, r0_mOhm=r0_mOhm / 2, end_voltage_V=3.0, min_voltage_V=3.0
        ),
        GroupDiagnosis(
            group=2,
            capacity_Ah=capacity_Ah + 0.8,
            r0_mOhm=r0_mOhm / 2 - 0.05,
            end_voltage_V=3.11,
            min_voltage_V=3.1,
        ),
    )
    discharge = Discharge(
        start_s=3600.0,
        end_s=3600.0 + capacity_Ah / 21.7 * 3600,
        capacity_Ah=capacity_Ah,
        energy_Wh=capacity_Ah * 7.45,
        mean_current_A=-21.7,
        c_rate=0.33,
        start_voltage_V=8.3,
        end_voltage_V=6.11,
        reached_cutoff=True,
        vendor_capacity_Ah=capacity_Ah + 0.02,
    )
    pulse = PulseResistance(
        time_s=20000.0,
        soc_pct=50.0,
        current_before_A=0.0,
        current_after_A=-65.0,
        duration_s=10.0,
        r0_mOhm=r0_mOhm,
        r_0p1s_mOhm=r0_mOhm * 1.05,
        r_1s_mOhm=r0_mOhm * 1.2,
        r_10s_mOhm=r0_mOhm * 1.6,
        r_end_mOhm=r0_mOhm * 1.6,
        group_r0_mOhm=(r0_mOhm / 2, r0_mOhm / 2 - 0.05),
    )
    return Diagnosis(
        file=file,
        format="arbin",
        sha256=sha(file),
        profile="leaf-24kwh-module",
        series_groups=2,
        capacity_Ah=capacity_Ah,
        energy_Wh=capacity_Ah * 7.45,
        soh_pct=100 * capacity_Ah / 65.0,
        r0_mOhm=r0_mOhm,
        groups=groups,
        weakest_group=1,
        warnings=(),
        discharges=(discharge,),
        resistances=(pulse,),
        max_temperature_C=31.5,
        min_group_voltage_V=3.0,
        max_group_voltage_V=4.13,
        duration_s=30000.0,
        rows=30000,
    )


def ingest_graded_module(s, pack, serial: str, position: int, capacity_Ah: float, grade: str) -> Module:
    """What the pipeline writes for one module: module, test, diagnosis, grade."""
    file = f"{serial}.res"
    module = queries.get_or_create_module(s, serial, pack=pack, position=position)
    test = queries.add_test(
        s,
        sha256=sha(file),
        format="arbin",
        vendor="Arbin",
        raw_path=file,
        rows=30000,
        duration_s=30000.0,
        module=module,
        parsed_path=f"{serial}.parquet",
    )
    diag = queries.add_diagnosis(s, test, leaf_diagnosis(file, capacity_Ah, r0_mOhm=2.4))
    queries.add_grade(s, module, diag, grade, ["capacity 80 % of nominal or more"], "default", "1")
    return module


def count(store, model) -> int:
    with store.transaction() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model))


def test_database_url_precedence(monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert database_url(None) == "sqlite:///releaf.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql+psycopg://plant@db/releaf")
    assert database_url(None) == "postgresql+psycopg://plant@db/releaf"
    assert database_url("sqlite:///other.db") == "sqlite:///other.db"


def test_open_store_migrates_fresh_file_to_head(store):
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM alembic_version")) == head
        if store.engine.dialect.name == "sqlite":
            assert conn.scalar(sa.text("PRAGMA foreign_keys")) == 1
    assert TABLES | {"alembic_version"} == set(sa.inspect(store.engine).get_table_names())


def test_open_store_twice_is_a_no_op(tmp_path):
    url = f"sqlite:///{tmp_path / 'plant.db'}"
    open_store(url).close()
    store = open_store(url)
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM alembic_version")) == 1
    store.close()


def test_migrations_match_models(store):
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_add_test_is_idempotent_by_sha256(store):
    for _ in range(2):
        with store.transaction() as s:
            test = queries.add_test(
                s, sha256=sha("m1.res").upper(), format="arbin", raw_path="m1.res", rows=10, duration_s=9.0
            )
    assert test.sha256 == sha("m1.res")
    assert count(store, Test) == 1
    with store.transaction() as s:
        assert queries.find_test(s, sha("m1.res")).raw_path == "m1.res"
        assert queries.find_test(s, sha("other")) is None


def test_add_test_rejects_a_bad_digest(store):
    with pytest.raises(InputFileError, match="64 hex"), store.transaction() as s:
        queries.add_test(s, sha256="abc", format="arbin", raw_path="m1.res", rows=10, duration_s=9.0)


def test_failed_transaction_writes_nothing(store):
    with pytest.raises(RuntimeError), store.transaction() as s:
        pack = queries.get_or_create_pack(s, "SJNFAAZE0U6000001", "Nissan Leaf AZE0 24 kWh")
        queries.get_or_create_module(s, "M-01", pack=pack, position=1)
        raise RuntimeError("power cut")
    assert count(store, Pack) == 0
    assert count(store, Module) == 0


def test_get_or_create_returns_the_same_rows(store):
    with store.transaction() as s:
        pack = queries.get_or_create_pack(s, "SJNFAAZE0U6000001", "Nissan Leaf AZE0 24 kWh", generated=True)
        queries.get_or_create_module(s, "M-01", pack=pack, position=1)
    with store.transaction() as s:
        again = queries.get_or_create_pack(s, "SJNFAAZE0U6000001", "Nissan Leaf AZE0 24 kWh")
        module = queries.get_or_create_module(s, "M-01")
        assert (again.id, again.generated) == (pack.id, True)
        assert (module.pack.vin, module.position, module.profile) == (pack.vin, 1, "leaf-24kwh-module")


def test_timestamps_read_back_as_utc(store):
    with store.transaction() as s:
        queries.get_or_create_pack(s, "SJNFAAZE0U6000001", "Nissan Leaf AZE0 24 kWh")
    with store.transaction() as s:
        created_at = s.scalar(sa.select(Pack.created_at))
    assert created_at.utcoffset().total_seconds() == 0


def test_override_grade_audits_and_changes_effective_grade(store):
    with store.transaction() as s:
        pack = queries.get_or_create_pack(s, "SJNFAAZE0U6000001", "Nissan Leaf AZE0 24 kWh")
        ingest_graded_module(s, pack, "M-01", 1, capacity_Ah=52.0, grade="B")
        ingest_graded_module(s, pack, "M-02", 2, capacity_Ah=55.0, grade="A")
    with store.transaction() as s:
        assert queries.grade_counts(s) == {"A": 1, "B": 1, "C": 0, "reject": 0}
        queries.override_grade(s, "M-01", "reject", who="j.ortiz", why="swollen pouch seen at teardown")
    with store.transaction() as s:
        latest = {g.module.serial: g for g in queries.latest_grades(s)}
        assert (latest["M-01"].grade, latest["M-01"].effective_grade) == ("B", "reject")
        assert latest["M-02"].effective_grade == "A"
        assert queries.grade_counts(s) == {"A": 1, "B": 0, "C": 0, "reject": 1}
        event = s.scalar(sa.select(AuditEvent))
    assert (event.actor, event.action, event.entity, event.entity_id) == (
        "j.ortiz",
        "override_grade",
        "module",
        "M-01",
    )
    assert event.detail["from"] == "B" and event.detail["to"] == "reject"


@pytest.mark.parametrize(
    ("serial", "grade", "why", "message", "error"),
    [
        ("M-01", "reject", "  ", "why", InputFileError),
        ("M-01", "D", "bad tab", "not one of", InputFileError),
        ("M-99", "C", "bad tab", "unknown module", NotFoundError),
    ],
)
def test_override_grade_rejects_bad_input(store, serial, grade, why, message, error):
    with store.transaction() as s:
        pack = queries.get_or_create_pack(s, "SJNFAAZE0U6000001", "Nissan Leaf AZE0 24 kWh")
        ingest_graded_module(s, pack, "M-01", 1, capacity_Ah=52.0, grade="B")
    with pytest.raises(error, match=message) as caught, store.transaction() as s:
        queries.override_grade(s, serial, grade, who="j.ortiz", why=why)
    assert isinstance(caught.value, ReleafError) and caught.value.http_status in (404, 422)
    assert count(store, AuditEvent) == 0


def test_latest_grade_wins_after_regrading(store):
    with store.transaction() as s:
        pack = queries.get_or_create_pack(s, "SJNFAAZE0U6000001", "Nissan Leaf AZE0 24 kWh")
        module = ingest_graded_module(s, pack, "M-01", 1, capacity_Ah=52.0, grade="B")
        diag = module.tests[0].diagnosis
        queries.add_grade(s, module, diag, "C", ["policy 2 is stricter"], "default", "2")
    with store.transaction() as s:
        (row,) = queries.latest_grades(s)
        assert (row.effective_grade, row.policy_version) == ("C", "2")
    assert count(store, Grade) == 2


def build_station(store) -> None:
    with store.transaction() as s:
        pack = queries.get_or_create_pack(s, "SJNFAAZE0U6000001", "Nissan Leaf AZE0 24 kWh")
        ingest_graded_module(s, pack, "M-01", 1, capacity_Ah=52.0, grade="A")
        ingest_graded_module(s, pack, "M-02", 2, capacity_Ah=51.6, grade="A")
        queries.add_station(s, "PS-0001", "portable-2s", ["M-02", "M-01"], {"usable_energy_Wh": 590.0})


def test_lineage_reaches_the_pack_vin(store):
    build_station(store)
    with store.transaction() as s:
        tree = lineage(s, "PS-0001")
    json.dumps(tree)  # JSON-ready for passports and the API
    assert tree["station"]["certification"] == {"usable_energy_Wh": 590.0}
    assert [m["serial"] for m in tree["modules"]] == ["M-02", "M-01"]
    assert [m["series_position"] for m in tree["modules"]] == [1, 2]
    first = tree["modules"][0]
    assert first["pack"]["vin"] == "SJNFAAZE0U6000001"
    assert first["tests"][0]["sha256"] == sha("M-02.res")
    assert first["tests"][0]["file"] == "M-02.res"
    assert first["tests"][0]["diagnosis"]["capacity_Ah"] == pytest.approx(51.6)
    assert first["tests"][0]["diagnosis"]["grades"][0]["effective_grade"] == "A"
    assert first["effective_grade"] == "A"


def test_stored_diagnosis_record_is_the_full_dict(store):
    build_station(store)
    with store.transaction() as s:
        record = queries.find_test(s, sha("M-01.res")).diagnosis.record
    assert record == leaf_diagnosis("M-01.res", 52.0, r0_mOhm=2.4).to_dict(full=True)
    assert record["resistances"][0]["r0_mOhm"] == pytest.approx(2.4)


def test_module_cannot_be_in_two_stations(store):
    build_station(store)
    with (
        pytest.raises(ConflictError, match="M-01 is already in station PS-0001"),
        store.transaction() as s,
    ):
        queries.add_station(s, "PS-0002", "portable-2s", ["M-01"])
    with store.transaction() as s:
        assert queries.find_station(s, "PS-0002") is None


def test_database_refuses_a_module_in_two_stations(store):
    """The unique constraint holds even if the query-level check is bypassed."""
    build_station(store)
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        station_id = conn.scalar(
            sa.text(
                "INSERT INTO stations (serial, design, created_at) "
                "VALUES ('PS-X', 'portable-2s', '2025-01-01') RETURNING id"
            )
        )
        module_id = conn.scalar(sa.text("SELECT id FROM modules WHERE serial = 'M-01'"))
        conn.execute(
            sa.text(
                "INSERT INTO station_modules (station_id, module_id, series_position) VALUES (:s, :m, 1)"
            ),
            {"s": station_id, "m": module_id},
        )


def test_foreign_keys_are_enforced(store):
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO modules (serial, pack_id, profile) VALUES ('M-X', 999, 'leaf-24kwh-module')")
        )
