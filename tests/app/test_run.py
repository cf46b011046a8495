"""The chain end to end on a small generated fleet: stations, storage, idempotence, all-or-nothing writes."""

from __future__ import annotations

import csv
import shutil

import pytest
import sqlalchemy as sa
from conftest import shared

from releaf import io
from releaf.app.run import diagnose_file, for_generated_lot, read_summary, run_directory
from releaf.chain import PlantChain
from releaf.errors import ConflictError
from releaf.io.manifest import discover
from releaf.sim import fleet as synth
from releaf.store import lineage, open_store, queries


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fleet")
    synth.generate_fleet(folder, packs=2, modules_per_pack=6, seed=7)
    return folder


def count(url, table):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as con:
            return con.scalar(sa.text(f"select count(*) from {table}"))
    finally:
        engine.dispose()


def test_run_builds_certified_stations_with_lineage(fleet, db_url):
    db = db_url
    result, summary = run_directory(fleet, db_url=db, progress=False)
    assert len(result.modules) == 12
    graded_ok = [r for r in result.modules if r.grade.grade != "reject"]
    assert len(result.stations) >= 1
    used = {m for st in result.stations for m in st.modules}
    assert used <= {r.entry.module_serial for r in graded_ok}
    for st in result.stations:
        assert st.usable_Wh > 0 and {u.name for u in st.certification.use_cases} == {"phone", "guitar-amp", "fridge"}
    assert [st["serial"] for st in summary["stations"]] == [st.serial for st in result.stations]
    # every module is accounted for: in a station, or with a status and a reason
    for m in result.modules:
        assert m.status is not None and (m.station is not None) == (m.status == "matched")
        assert m.status == "matched" or m.reason
    assert count(db, "tests") == 12 and count(db, "stations") == len(result.stations)
    store = open_store(db)
    with store.transaction() as s:
        lin = lineage(s, result.stations[0].serial)
    store.close()
    assert lin["station"]["serial"] == result.stations[0].serial
    assert [m["serial"] for m in lin["modules"]] == list(result.stations[0].modules)
    assert all(m["pack"]["generated"] and m["tests"][0]["diagnosis"] for m in lin["modules"])
    # a second run of the same folder adds nothing and does not re-pair modules already built in
    again, _ = run_directory(fleet, db_url=db, progress=False)
    assert not ({m for st in again.stations for m in st.modules} & used)
    assert {m.serial for m in again.by_status("already_built")} == used
    assert count(db, "tests") == 12 and count(db, "grades") == 12


def test_diagnosis_recovers_the_generated_truth(fleet):
    with (fleet / "manifest.csv").open() as fh:
        truth = {row["module_serial"]: row for row in csv.DictReader(fh)}
    chain = PlantChain.from_parameters()
    result = chain.run((e, io.read(e.path)) for e in discover(fleet))
    for r in result.modules:
        t = truth[r.entry.module_serial]
        assert r.diagnosis.capacity_Ah == pytest.approx(float(t["true_capacity_Ah"]), rel=0.01)
        assert r.diagnosis.weakest_group == int(t["true_weakest_group"])


def test_diagnose_file_skips_only_the_wall_clock(fleet):
    """diagnose_file reads without the DateTime decode; every diagnosis value equals that of the whole read."""
    from releaf import io
    from releaf.diagnostics import diagnose
    from releaf.parameters import battery_profile

    files = [e.path for e in discover(fleet)][:4]
    assert files and all("datetime" in io.read(f).data.columns for f in files)
    for f in files:
        whole = diagnose(io.read(f), battery_profile("leaf-24kwh-module"))
        assert diagnose_file(f, "leaf-24kwh-module") == whole


def _folder(path, fleet, rows):
    path.mkdir()
    for row in rows:
        (path / row["file"]).write_bytes((fleet / row["file"]).read_bytes())
    with (path / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_conflict_mid_transaction_leaves_database_untouched(fleet, tmp_path, db_url):
    rows = list(csv.DictReader((fleet / "manifest.csv").open()))
    db = db_url
    run_directory(_folder(tmp_path / "first", fleet, rows[:1]), db_url=db, progress=False)
    before = {t: count(db, t) for t in ("packs", "modules", "tests", "diagnoses", "grades")}
    # a new module first (written inside the transaction), then a known module claimed by another pack:
    # the conflict is found only while writing, and must undo the new module too
    moved = dict(rows[0], pack_vin="GEN-OTHER-PACK")
    second = _folder(tmp_path / "second", fleet, [rows[1], moved])
    with pytest.raises(ConflictError, match="already recorded in pack"):
        run_directory(second, db_url=db, progress=False)
    after = {t: count(db, t) for t in before}
    assert after == before


def test_read_summary_streams_batches_into_parquet(tmp_path):
    import polars as pl
    from conftest import REPO

    from releaf import io

    src = REPO / "tests" / "fixtures" / "arbin" / "FastCharge_000025_CH8.csv"
    out = tmp_path / "canonical.parquet"
    summary = read_summary(src, parquet_out=out, batch_rows=40)
    whole = io.read(src).data
    assert summary["streamed"] and summary["rows"] == whole.height
    assert summary["voltage_range_V"] == [whole["voltage_V"].min(), whole["voltage_V"].max()]
    assert pl.read_parquet(out).equals(whole)


def test_chain_starts_again_from_the_stored_diagnoses(fleet, tmp_path):
    """The database holds versioned Diagnosis records; the chain started from them rebuilds the same stations."""
    db = f"sqlite:///{tmp_path / 'plant.db'}"
    result, _ = run_directory(fleet, db_url=db, progress=False)
    store = open_store(db)
    try:
        with store.transaction() as s:
            stored = queries.module_diagnoses(s)
    finally:
        store.close()
    assert [e.module_serial for e, _ in stored] == sorted(m.serial for m in result.modules)
    by_serial = {m.serial: m for m in result.modules}
    for e, d in stored:
        original = by_serial[e.module_serial]
        assert e.pack_vin == original.entry.pack_vin and d.sha256 == original.diagnosis.sha256
        assert d.capacity_Ah == pytest.approx(original.diagnosis.capacity_Ah, rel=1e-5)
    # the run waived IEC 63338's lifetime-data requirement for the generated lot; so does the chain started again
    again = for_generated_lot(PlantChain.from_parameters(), [e for e, _ in stored]).run_from_diagnoses(stored)
    assert sorted(st.serial for st in again.stations) == sorted(st.serial for st in result.stations)
    assert sum(st.usable_Wh for st in again.stations) == pytest.approx(sum(st.usable_Wh for st in result.stations),
                                                                        rel=1e-4)


def _whole_summary(path) -> dict:
    """What ``releaf read`` must print, computed from the whole-file read."""
    ts = io.read(path)
    d = ts.data
    return {
        "file": str(path), "format": ts.meta.format, "vendor": ts.meta.vendor, "sha256": ts.meta.sha256,
        "rows": d.height, "duration_s": float(d["test_time_s"][-1] - d["test_time_s"][0]),
        "voltage_range_V": [d["voltage_V"].min(), d["voltage_V"].max()],
        "current_range_A": [d["current_A"].min(), d["current_A"].max()],
        "series_groups": sum(c.startswith("group_voltage_V_") for c in d.columns), "columns": d.columns,
        "conversions": list(ts.meta.conversions), "streamed": True,
    }


def _long_arbin(tmp_path, rows: int):
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("make_long_arbin", REPO / "benchmarks" / "make_long_arbin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_long_arbin(tmp_path / f"long_{rows}.csv", rows)


@pytest.mark.parametrize("source", ["fixture", "long"])
@pytest.mark.parametrize("batch_rows", [None, 7_000])
@pytest.mark.parametrize("parquet", [False, True])
def test_streamed_summary_equals_the_whole_read(tmp_path, source, batch_rows, parquet):
    """The streamed ``releaf read`` summary (default and small batches, with and without Parquet) is the summary
    of the whole-file read, and the Parquet file holds the whole table (wall clock included)."""
    import polars as pl
    from conftest import REPO

    src = (REPO / "tests" / "fixtures" / "arbin" / "FastCharge_000025_CH8.csv" if source == "fixture"
           else _long_arbin(tmp_path, 50_000))
    out = tmp_path / "canonical.parquet" if parquet else None
    summary = read_summary(src, parquet_out=out, batch_rows=batch_rows)
    assert summary == {**_whole_summary(src), **({"parquet": str(out)} if parquet else {})}
    if parquet:
        whole = io.read(src).data
        assert "datetime" in whole.columns and pl.read_parquet(out).equals(whole)


def test_run_stores_tests_with_several_discharges_or_a_charge_first(tmp_path):
    """The audit's crash (numpy integers in ``discharges[]`` reached the JSON column): real multi-discharge files."""
    folder = tmp_path / "multi"
    folder.mkdir()
    for parts in (("ornl-leaf", "cell-low-current-hppc-25c-2.csv"), ("ornl-leaf", "cell-discharge-bitrode-1c.csv"),
                  ("cycler-formats", "beep-TRI-AMDD", "PreDiag_000229_000229_truncated.034")):
        shutil.copy(shared(*parts), folder / parts[-1])
    url = f"sqlite:///{tmp_path / 'multi.db'}"
    result, summary = run_directory(folder, db_url=url, progress=False)
    assert len(result.modules) == 3
    assert any(len(m.diagnosis.discharges) > 1 for m in result.modules)
    store = open_store(url)
    with store.transaction(write=False) as s:
        stored = {e.module_serial: d for e, d in queries.module_diagnoses(s)}
    store.close()
    for m in result.modules:  # stored JSON keeps 6 significant digits
        assert [x.capacity_Ah for x in stored[m.serial].discharges] == pytest.approx(
            [x.capacity_Ah for x in m.diagnosis.discharges], rel=1e-5)


def test_run_takes_lifetime_data_from_the_stored_intake(fleet, tmp_path):
    """Measured modules are reused only when their pack's intake pre-screen is stored (IEC 63338)."""
    rows = [dict(r, generated="false") for r in csv.DictReader((fleet / "manifest.csv").open())]
    folder = _folder(tmp_path / "measured", fleet, rows)
    db = f"sqlite:///{tmp_path / 'plant.db'}"
    vins = sorted({r["pack_vin"] for r in rows})
    assert len(vins) == 2
    store = open_store(db)
    try:
        with store.transaction() as s:
            queries.get_or_create_pack(s, vins[0], "Nissan Leaf", intake={"pack_id": vins[0], "modules": []})
    finally:
        store.close()
    result, _ = run_directory(folder, db_url=db, progress=False)
    for m in result.modules:
        life = next(x for x in m.grade.screens if x.name == "lifetime_data")
        assert life.passed is (m.entry.pack_vin == vins[0]), m.serial
        assert m.grade.policy_name == "leaf-default"
        if m.entry.pack_vin != vins[0]:
            assert m.status == "rejected" and any("IEC 63338" in r for r in m.grade.reasons)
    assert {m for st in result.stations for m in st.modules} <= {m.serial for m in result.modules
                                                                  if m.entry.pack_vin == vins[0]}


def test_a_stored_override_holds_when_the_folder_is_run_again(fleet, tmp_path):
    """A person's override is not undone by the next run of the same tests: the run re-applies it."""
    db = f"sqlite:///{tmp_path / 'plant.db'}"
    first, _ = run_directory(fleet, db_url=db, progress=False)
    spare = [m for m in first.modules if m.status in ("other_destination", "unmatched")]
    assert len(spare) >= 2
    up, down = spare[0].serial, spare[1].serial
    store = open_store(db)
    with store.transaction() as s:
        queries.override_grade(s, up, "C", "ana", "customer order for portable stations", role="sales")
        queries.override_grade(s, down, "reject", "ana", "casing dent", role="quality")
    store.close()
    again, _ = run_directory(fleet, db_url=db, progress=False)
    by = {m.serial: m for m in again.modules}
    assert by[up].grade.grade == "C" and by[up].grade.override.user == "ana"
    assert by[up].status in ("matched", "unmatched")
    assert by[down].grade.grade == "reject" and by[down].status == "rejected" and by[down].station is None
