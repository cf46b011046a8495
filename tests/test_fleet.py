"""The fleet engine: grades equal releaf.grading.grade (and grade_table, its one kernel) per module, only the
design's destinations are paired, the pairing is the optimal sum of minima, and the polars and Dask engines give
the same grades and the same stations."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from releaf import fleet
from releaf.app.cli import app
from releaf.grading import ModuleEvidence, features, grade, grade_table, load_policy, waive_lifetime_data
from releaf.schema.records import Diagnosis, GroupDiagnosis, Inspection
from releaf.sim.fleet_table import COLUMNS, generate_packs, write_fleet

SMALL_PACKS = 417  # 20,016 modules


@pytest.fixture(scope="module")
def policy():
    return load_policy("leaf-default")


@pytest.fixture(scope="module")
def waived():
    # every reusable grade well populated (the generated packs have BMS history for 35 % of them)
    return waive_lifetime_data(load_policy("leaf-default"), "fleet test: generated modules")


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory):
    path = tmp_path_factory.mktemp("fleet") / "small"
    write_fleet(path, SMALL_PACKS, packs_per_file=100, seed=7)
    return path


def _edge_rows() -> pl.DataFrame:
    """Values on and just beside the thresholds (float32 as stored), missing values, screens."""
    base = dict(soh_pct=85.0, capacity_Ah=55.0, group_capacity_Ah_1=55.0, group_capacity_Ah_2=55.5, r0_mOhm=2.0,
                group_end_voltage_spread_V=0.01, min_group_voltage_V=2.98, max_temperature_C=26.0,
                self_discharge_pct_per_day=0.1)
    cases = [{}, {"soh_pct": 80.0}, {"soh_pct": 79.99}, {"soh_pct": 60.0}, {"soh_pct": 59.9}, {"soh_pct": None},
             {"soh_pct": 105.0}, {"soh_pct": 105.01}, {"r0_mOhm": 3.0}, {"r0_mOhm": 5.5}, {"r0_mOhm": 5.51},
             {"r0_mOhm": None}, {"group_end_voltage_spread_V": 0.05}, {"group_end_voltage_spread_V": 0.1},
             {"group_end_voltage_spread_V": 0.2}, {"group_end_voltage_spread_V": None},
             {"group_capacity_Ah_2": 55.0 / 0.97}, {"group_capacity_Ah_2": 55.0 / 0.90},
             {"group_capacity_Ah_1": None}, {"group_capacity_Ah_1": None, "group_capacity_Ah_2": None},
             {"group_capacity_Ah_1": 0.0, "group_capacity_Ah_2": 0.0},
             {"min_group_voltage_V": 2.5}, {"min_group_voltage_V": 2.49}, {"min_group_voltage_V": None},
             {"max_temperature_C": 60.0}, {"max_temperature_C": 60.01}, {"max_temperature_C": float("nan")},
             {"soh_pct": float("nan")}, {"soh_pct": 65.0, "r0_mOhm": None, "min_group_voltage_V": 1.0},
             {"self_discharge_pct_per_day": 2.0}, {"self_discharge_pct_per_day": 2.01},
             {"self_discharge_pct_per_day": None}]
    rows = [{**base, **c} for c in cases]
    frame = pl.DataFrame(rows, schema={k: pl.Float32 for k in base}, strict=False)
    n = frame.height
    # lifetime data and visual damage on and off, across and beside the other cases
    frame = pl.concat([frame.with_columns(has_lifetime_data=pl.lit(True), visual_damage=pl.lit(False)),
                       frame.head(3).with_columns(has_lifetime_data=pl.lit(False), visual_damage=pl.lit(False)),
                       frame.head(3).with_columns(has_lifetime_data=pl.lit(True), visual_damage=pl.lit(True)),
                       frame.head(1).with_columns(has_lifetime_data=pl.lit(True),
                                                  visual_damage=pl.lit(None, pl.Boolean))])
    assert frame.height == n + 7
    return frame.with_columns(module_id=pl.int_range(pl.len(), dtype=pl.Int64) + 10**9)


def _evidence(row: dict) -> ModuleEvidence:
    """The evidence the row stands for: its diagnosis, a damage or a clean inspection, its lifetime data."""
    damage = row.get("visual_damage")
    inspection = None if damage is None else Inspection(("swelling",) if damage else ("none",))
    return ModuleEvidence(_diagnosis(row), inspection, lifetime_data=bool(row.get("has_lifetime_data")))


def _diagnosis(row: dict) -> Diagnosis:
    """A Diagnosis carrying the row's values, so that grading_metrics returns them (float32 -> float exactly)."""

    def f(key):
        v = row.get(key)
        return None if v is None else float(v)

    spread = f("group_end_voltage_spread_V")
    # end voltages 3.0 and 3.0 + spread: the float64 difference of these is the float32 spread exactly
    ends = (None, None) if spread is None else (3.0, 3.0 + spread)
    groups = tuple(GroupDiagnosis(group=k + 1, capacity_Ah=f(f"group_capacity_Ah_{k + 1}"), r0_mOhm=None,
                                  end_voltage_V=ends[k], min_voltage_V=None) for k in range(2))
    return Diagnosis(file=str(row["module_id"]), format="fleet", sha256="0" * 64, profile="leaf-24kwh-module",
                     series_groups=2, capacity_Ah=f("capacity_Ah"), energy_Wh=None, soh_pct=f("soh_pct"),
                     r0_mOhm=f("r0_mOhm"), groups=groups, weakest_group=None, warnings=(),
                     max_temperature_C=f("max_temperature_C"), min_group_voltage_V=f("min_group_voltage_V"),
                     self_discharge_pct_per_day=f("self_discharge_pct_per_day"))


def test_generated_table_has_the_documented_columns_and_is_deterministic():
    a = generate_packs(10, 3, seed=1)
    assert tuple(a.columns) == COLUMNS
    assert a.height == 3 * 48
    assert a["module_id"].to_list() == list(range(10 * 48, 13 * 48))
    assert a.schema["soh_pct"] == pl.Float32 and a.schema["position"] == pl.Int8
    assert a.equals(generate_packs(10, 3, seed=1))
    assert not a.equals(generate_packs(10, 3, seed=2))
    assert a.select(pl.selectors.float().is_nan().any()).row(0) == (False,) * 12  # missing = null, not NaN


@pytest.mark.parametrize("which", ["packaged", "waived"])
def test_grade_frame_equals_grading_grade_on_every_module(small_fleet, policy, waived, which):
    pol = policy if which == "packaged" else waived
    table = pl.concat([pl.read_parquet(small_fleet).select(_edge_rows().columns), _edge_rows()], how="vertical")
    graded = fleet.grade_frame(table, pol)
    evidence = [_evidence(row) for row in table.iter_rows(named=True)]
    expected = [grade(e, pol) for e in evidence]
    got = graded.select(pl.col("grade", "destination").cast(pl.String), "failed_safety").rows()
    mismatch = [(i, (e.grade.value, e.destination, e.failed_safety), g)
                for i, (e, g) in enumerate(zip(expected, got, strict=True))
                if (e.grade.value, e.destination, e.failed_safety) != g]
    assert not mismatch, mismatch[:10]
    assert {g for g, _, _ in got} == {"A", "B", "C", "reject"}
    assert {(g, d) for g, d, _ in got} == set(pol.destinations.as_dict().items())
    # the fleet's edge mapping gives grade_table what grading.features gives it (full form, screen names and all)
    full = grade_table(pl.DataFrame([features(e) for e in evidence],
                                    schema_overrides={"visual_flags": pl.List(pl.String)}), pol)
    assert full["grade"].to_list() == [g for g, _, _ in got]
    assert full["failed_screens"].to_list() == [",".join(s.name for s in e.failed_screens) for e in expected]


def test_grade_frame_marks_failed_safety_screens(policy):
    graded = fleet.grade_frame(_edge_rows(), policy)
    rows = graded.select("soh_pct", "min_group_voltage_V", "max_temperature_C", "self_discharge_pct_per_day",
                         "visual_damage", "grade", "failed_safety").rows()
    failed = [r for r in rows if r[6]]
    # 2.49 V, 60.01 degC, 1.0 V, 2.01 %/day, three damaged (not SOH 105.01: implausible, not unsafe)
    assert len(failed) == 7
    assert sum(r[4] is True for r in failed) == 3
    assert all(r[5] == "reject" for r in failed)
    assert not any(r[6] for r in rows if r[0] is None)  # a missing SOH rejects, but is not a safety failure


def test_lifetime_data_required_unless_waived(policy, waived):
    frame = _edge_rows().head(1).with_columns(has_lifetime_data=pl.Series([False]))
    assert fleet.grade_frame(frame, policy)["destination"].cast(pl.String).to_list() == ["recycling"]
    assert fleet.grade_frame(frame, waived)["grade"].cast(pl.String).to_list() == ["A"]


def test_paired_grades_follow_the_design_destinations(policy):
    assert fleet.paired_grades(policy, "portable-2s") == ("C",)  # portable-station
    assert fleet.paired_grades(policy, None) == ("A", "B", "C")


def _sorted_reference(graded: pl.DataFrame, grades=("A", "B", "C")) -> set[tuple[int, int, str]]:
    """Independent pairing: Python's sort on (capacity, module_id) per grade, adjacent pairs from the top."""
    stations = set()
    for g in grades:
        rows = sorted((c, m) for m, gg, c in graded.select("module_id", "grade", "capacity_Ah").iter_rows()
                      if gg == g and c is not None)
        rows = rows[len(rows) % 2:]
        stations |= {(rows[i][1], rows[i + 1][1], g) for i in range(0, len(rows), 2)}
    return stations


@pytest.mark.parametrize("grades", [("A", "B", "C"), ("C",), ("A", "C")])
def test_pairing_equals_a_sorted_reference(small_fleet, waived, grades):
    graded = fleet.grade_frame(pl.read_parquet(small_fleet), waived)
    stations = fleet.pair_stations(graded, grades)
    got = {(a, b, g) for a, b, g in stations.select("module_a", "module_b", pl.col("grade").cast(pl.String)).rows()}
    assert got == _sorted_reference(graded, grades)
    assert set(stations["grade"].cast(pl.String)) == set(grades)
    caps = dict(graded.select("module_id", "capacity_Ah").iter_rows())
    assert np.allclose(stations["series_capacity_Ah"].to_numpy(),
                       [min(caps[a], caps[b]) for a, b in stations.select("module_a", "module_b").rows()])


def test_pairing_without_the_packed_key_is_the_same(small_fleet, waived):
    # module ids beyond 2**31 cannot be packed into the single sort key: the three-key sort gives the same stations
    graded = fleet.grade_frame(pl.read_parquet(small_fleet), waived)
    fast = fleet.pair_stations(graded)
    shifted = fleet.pair_stations(graded.with_columns(pl.col("module_id") + 2**40))
    assert shifted.equals(fast.with_columns(pl.col("module_a", "module_b") + 2**40))


def _best_sum_of_mins(caps: list[float]) -> float:
    """Brute force: the best total over every set of disjoint pairs (all matchings, any size)."""
    best = 0.0

    def go(rest: tuple[int, ...], total: float):
        nonlocal best
        best = max(best, total)
        if len(rest) < 2:
            return
        first, others = rest[0], rest[1:]
        go(others, total)  # first stays unpaired
        for j in others:
            go(tuple(k for k in others if k != j), total + min(caps[first], caps[j]))

    go(tuple(range(len(caps))), 0.0)
    return best


@pytest.mark.parametrize("seed", range(12))
def test_pairing_is_the_optimal_sum_of_minima(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 9)
    caps = [float(np.float32(rng.choice([rng.uniform(30, 60), 45.0]))) for _ in range(n)]  # ties included
    graded = pl.DataFrame({"module_id": list(range(n)), "grade": ["B"] * n, "capacity_Ah": caps},
                          schema={"module_id": pl.Int64, "grade": fleet.GRADE_DTYPE, "capacity_Ah": pl.Float32})
    stations = fleet.pair_stations(graded)
    assert stations.height == n // 2
    assert stations["series_capacity_Ah"].cast(pl.Float64).sum() == pytest.approx(_best_sum_of_mins(caps), abs=1e-9)


def test_local_engine_writes_grades_stations_and_summary(small_fleet, policy, tmp_path):
    s = fleet.grade_and_assemble_local(small_fleet, policy, out=tmp_path)
    assert s.modules == SMALL_PACKS * 48 == sum(s.grades.values())
    assert s.policy == "leaf-default 2.0.0" and s.design == "portable-2s" and s.paired_grades == ["C"]
    assert s.destinations == {"ev-replacement": s.grades["A"], "stationary-storage": s.grades["B"],
                              "portable-station": s.grades["C"], "recycling": s.grades["reject"]}
    u = s.unassigned
    assert u == {"other_destination": s.grades["A"] + s.grades["B"], "odd_one_out": s.grades["C"] % 2,
                 "no_capacity": 0, "recycling": s.grades["reject"], "total": s.modules - 2 * s.stations["total"]}
    assert s.stations["A"] == s.stations["B"] == 0 < s.stations["C"] == s.stations["total"]
    stations = pl.read_parquet(tmp_path / "stations")
    assert stations.columns == list(fleet.STATION_COLUMNS) and stations.height == s.stations["total"]
    assert pl.read_parquet(tmp_path / "grades").height == s.modules
    assert json.loads((tmp_path / "summary.json").read_text())["stations"] == s.stations


def test_a_design_without_destinations_pairs_every_reusable_grade(small_fleet, waived):
    s = fleet.grade_and_assemble_local(small_fleet, waived, design=None)
    assert s.paired_grades == ["A", "B", "C"] and s.unassigned["other_destination"] == 0
    assert all(s.stations[g] == s.grades[g] // 2 for g in "ABC")
    assert s.unassigned["odd_one_out"] == sum(s.grades[g] % 2 for g in "ABC")


def test_cli_fleet_assemble_json_and_a_missing_dataset(small_fleet, tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["fleet", "assemble", str(small_fleet), "--out", str(tmp_path / "o"), "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert summary["modules"] == SMALL_PACKS * 48 and summary["stations"]["total"] > 0
    assert summary["policy"] == "leaf-default 2.0.0" and summary["design"] == "portable-2s"
    waived = runner.invoke(app, ["fleet", "assemble", str(small_fleet), "--json",
                                 "--waive-lifetime-data", "generated fleet, no BMS history read"])
    assert waived.exit_code == 0, waived.output
    w = json.loads(waived.stdout)
    assert w["policy"] == "leaf-default+no-lifetime-data 2.0.0"
    assert w["grades"]["reject"] < summary["grades"]["reject"]
    unknown = runner.invoke(app, ["fleet", "assemble", str(small_fleet), "--design", "nope"])
    assert unknown.exit_code != 0 and "unknown design" in unknown.output
    missing = runner.invoke(app, ["fleet", "grade", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such dataset" in missing.output


# ------------------------------------------------------------------------------------------- the Dask engine
@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed", reason="the Dask engine needs dask[distributed] "
                                                            "(pip install 'releaf[fleet]')")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            distributed.Client(c) as client:
        yield client


def _result(out) -> tuple[pl.DataFrame, pl.DataFrame]:
    grades = pl.read_parquet(out / "grades").with_columns(pl.col("grade", "destination").cast(pl.String))
    stations = pl.read_parquet(out / "stations").with_columns(pl.col("grade").cast(pl.String))
    return grades.sort("module_id"), stations.sort("module_a")


def _assert_same(local, dask):
    (gl, sl), (gd, sd) = local, dask
    assert gl.equals(gd)
    assert sl.height > 0 and sl.equals(sd)


@pytest.mark.parametrize("design", ["portable-2s", None])
def test_dask_engine_equals_local_with_many_buckets(small_fleet, waived, dask_client, tmp_path, design):
    # buckets of ~500 modules: dozens of range partitions, so that many stations straddle two of them
    sl = fleet.grade_and_assemble_local(small_fleet, waived, out=tmp_path / "local", design=design)
    sd = fleet.grade_and_assemble_dask(small_fleet, waived, dask_client, out=tmp_path / "dask", target_rows=500,
                                       design=design)
    _assert_same(_result(tmp_path / "local"), _result(tmp_path / "dask"))
    assert (sl.grades, sl.destinations, sl.stations, sl.series_capacity_Ah, sl.unassigned, sl.paired_grades) == (
        sd.grades, sd.destinations, sd.stations, sd.series_capacity_Ah, sd.unassigned, sd.paired_grades)
    assert (tmp_path / "dask" / "stations" / "part-edges.parquet").exists()


def test_dask_engine_equals_local_on_a_million_modules(policy, dask_client, tmp_path):
    write_fleet(tmp_path / "fleet", 20_834, packs_per_file=20_834 // 4, seed=11)  # 1,000,032 modules, 5 files
    sl = fleet.grade_and_assemble_local(tmp_path / "fleet", policy, out=tmp_path / "local")
    sd = fleet.grade_and_assemble_dask(tmp_path / "fleet", policy, dask_client, out=tmp_path / "dask",
                                       target_rows=40_000)
    assert sl.modules == sd.modules == 1_000_032
    _assert_same(_result(tmp_path / "local"), _result(tmp_path / "dask"))
    assert (sl.grades, sl.stations, sl.series_capacity_Ah, sl.unassigned) == (
        sd.grades, sd.stations, sd.series_capacity_Ah, sd.unassigned)
    # the stations are the sorted reference's (grade C, the portable stations' destination)
    graded = fleet.grade_frame(pl.scan_parquet(tmp_path / "fleet" / "*.parquet"), policy).select(
        "module_id", "grade", "capacity_Ah").collect()
    stations = _result(tmp_path / "dask")[1]
    assert set(stations.select("module_a", "module_b", "grade").iter_rows()) == _sorted_reference(graded, ("C",))


def test_run_fleet_grades_on_a_running_scheduler(small_fleet, dask_client, tmp_path):
    # --scheduler tcp://...: a second client on the running cluster, grading only
    sd = fleet.run_fleet(small_fleet, scheduler=dask_client.scheduler.address, out=tmp_path / "dask", assemble=False)
    sl = fleet.run_fleet(small_fleet, out=tmp_path / "local", assemble=False)
    assert sd.engine.startswith("dask") and sl.engine.startswith("local")
    assert sd.grades == sl.grades and sd.failed_safety == sl.failed_safety and sd.unassigned is None
    grades = [pl.read_parquet(tmp_path / e / "grades").with_columns(pl.col("grade", "destination").cast(pl.String))
              .sort("module_id") for e in ("local", "dask")]
    assert grades[0].equals(grades[1])
    assert not (tmp_path / "dask" / "stations").exists()


def test_brute_force_helper_agrees_with_itertools():
    # the brute force above, checked once against an enumeration of perfect matchings of 6 modules
    caps = [5.0, 1.0, 4.0, 2.0, 6.0, 3.0]
    best = 0.0
    for perm in itertools.permutations(range(6)):
        best = max(best, sum(min(caps[perm[i]], caps[perm[i + 1]]) for i in range(0, 6, 2)))
    assert _best_sum_of_mins(caps) == best == 1.0 + 3.0 + 5.0
