from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import MODULE_FILES, shared
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releaf.diagnostics.capacity import cumulative_Ah
from releaf.io import detect, read
from releaf.io.export import write_batteryarchive, write_bdf
from releaf.schema import SourceMeta, TimeSeries, validate

FIXTURES = Path(__file__).parents[1] / "fixtures"
SOURCES = {
    "ornl-module": MODULE_FILES["1_0c"],
    "arbin": FIXTURES / "arbin" / "FastCharge_000025_CH8.csv",
    "bdf": FIXTURES / "bdf" / "batmo_bdf_head1000.csv",
}
# canonical columns each format carries (BatteryArchive: no steps, one cell temperature, per-cycle counters)
BDF_COLUMNS = None  # all of them
BA_COLUMNS = {"test_time_s", "voltage_V", "current_A", "cycle_index", "datetime", "temperature_C",
              "ambient_temperature_C"}


def assert_same(original: pl.DataFrame, back: pl.DataFrame, columns=None):
    for c in original.columns:
        if columns is not None and c not in columns or c == "vendor_flag":
            continue
        assert c in back.columns, c
        a, b = original[c], back[c]
        if a.dtype.is_float():
            np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-12, atol=1e-12, err_msg=c)
        elif a.dtype == pl.Datetime or isinstance(a.dtype, pl.Datetime):
            diff = (a.dt.epoch("us") - b.dt.epoch("us")).abs().max()
            assert diff is None or diff <= 1, c
        else:
            assert a.to_list() == b.to_list(), c


@pytest.mark.parametrize("name", SOURCES)
def test_bdf_round_trip_of_real_files(tmp_path, name):
    ts = read(SOURCES[name])
    out = tmp_path / f"{name}.bdf.csv"
    result = write_bdf(ts, out)
    assert detect(out) == "bdf-csv" and result.rows == ts.data.height
    back = read(out)
    assert_same(ts.data, back.data, BDF_COLUMNS)
    assert back.group_columns == ts.group_columns
    if name == "ornl-module":
        assert "Group Voltage 6 / V" in result.columns and result.dropped == ("vendor_flag",)


@pytest.mark.parametrize("name", SOURCES)
def test_batteryarchive_round_trip_of_real_files(tmp_path, name):
    ts = read(SOURCES[name])
    out = tmp_path / f"{name}_timeseries.csv"
    result = write_batteryarchive(ts, out)
    assert detect(out) == "batteryarchive-csv" and result.columns[:3] == ("Date_Time", "Test_Time (s)", "Cycle_Index")
    back = read(out)
    assert_same(ts.data, back.data, BA_COLUMNS)
    if name == "ornl-module":
        assert back.data["temperature_C"].to_list() == ts.data["temperature_C_1"].to_list()
        assert {"step_index", "group_voltage_V_1", "vendor_capacity_Ah"} <= set(result.dropped)


def test_counters_are_the_integral_split_by_direction(tmp_path):
    ts = read(MODULE_FILES["1_0c"])
    d = ts.data
    bdf = tmp_path / "m.bdf.csv"
    write_bdf(ts, bdf)
    with bdf.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    charge = np.array([float(r["Charging Capacity / Ah"]) for r in rows])
    discharge = np.array([float(r["Discharging Capacity / Ah"]) for r in rows])
    assert (np.diff(charge) >= 0).all() and (np.diff(discharge) >= 0).all()
    net = cumulative_Ah(d["test_time_s"].to_numpy(), d["current_A"].to_numpy(), d["step_index"].to_numpy())
    np.testing.assert_allclose(charge - discharge, net, atol=1e-9)
    # a 1C discharge of a 65 Ah string: the discharged charge is tens of Ah, the rest current adds next to nothing
    assert 40 < discharge[-1] < 70 and charge[-1] < 0.01
    assert np.isclose(float(rows[-1]["Cycler Net Capacity / Ah"]), d["vendor_capacity_Ah"][-1])


def test_batteryarchive_counters_restart_every_cycle(tmp_path):
    t = np.arange(8, dtype=float) * 3600
    df = pl.DataFrame({"test_time_s": t, "voltage_V": [3.7] * 8, "current_A": [1.0, 1, 1, 1, -1, -1, -1, -1],
                       "cycle_index": [1, 1, 1, 1, 2, 2, 2, 2]})
    ts = validate(TimeSeries(df, SourceMeta("mem", "", "test", "test")))
    out = tmp_path / "c_timeseries.csv"
    write_batteryarchive(ts, out)
    back = pl.read_csv(out)
    assert back["Charge_Capacity (Ah)"].to_list() == [0, 1, 2, 3, 0, 0, 0, 0]
    assert back["Discharge_Capacity (Ah)"].to_list() == [0, 0, 0, 0, 0, 1, 2, 3]
    np.testing.assert_allclose(back["Discharge_Energy (Wh)"].to_numpy()[-1], 3 * 3.7)


def test_full_bdf_file_round_trip_is_fast(tmp_path):
    import time

    ts = read(shared("cycler-formats", "cellpy", "batmo_bdf.csv"))
    start = time.perf_counter()
    write_bdf(ts, tmp_path / "b.bdf.csv")
    write_batteryarchive(ts, tmp_path / "b_timeseries.csv")
    assert time.perf_counter() - start < 2.0
    assert_same(ts.data, read(tmp_path / "b.bdf.csv").data)


finite = st.floats(min_value=-500, max_value=500, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def tables(draw):
    n = draw(st.integers(min_value=1, max_value=40))
    steps = draw(st.lists(st.floats(min_value=1e-3, max_value=1e4, allow_nan=False), min_size=n, max_size=n))
    data = {
        "test_time_s": np.cumsum(steps),
        "voltage_V": draw(st.lists(st.floats(min_value=0, max_value=900, allow_nan=False), min_size=n, max_size=n)),
        "current_A": draw(st.lists(finite, min_size=n, max_size=n)),
        "cycle_index": np.sort(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))),
        "step_index": draw(st.lists(st.integers(0, 30), min_size=n, max_size=n)),
        "temperature_C": draw(st.lists(st.floats(min_value=-40, max_value=80, allow_nan=False), min_size=n,
                                       max_size=n)),
        "group_voltage_V_1": draw(st.lists(st.floats(min_value=0, max_value=5, allow_nan=False), min_size=n,
                                           max_size=n)),
        "vendor_capacity_Ah": draw(st.lists(finite, min_size=n, max_size=n)),
    }
    df = pl.DataFrame(data).with_columns(
        (pl.lit(1_600_000_000_000_000) + (pl.col("test_time_s") * 1e6).cast(pl.Int64))
        .cast(pl.Datetime("us", "UTC")).alias("datetime"))
    return validate(TimeSeries(df, SourceMeta("mem", "", "test", "test")))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ts=tables())
def test_hypothesis_round_trip(tmp_path, ts):
    write_bdf(ts, tmp_path / "h.bdf.csv")
    back = read(tmp_path / "h.bdf.csv")
    assert_same(ts.data, back.data)
    write_batteryarchive(ts, tmp_path / "h_timeseries.csv")
    back = read(tmp_path / "h_timeseries.csv")
    assert_same(ts.data, back.data, BA_COLUMNS)


def test_a_current_that_changes_sign_between_two_samples_is_not_read_as_flipped(tmp_path):
    # found by test_hypothesis_round_trip: -2 A then +1 A in one step; the trapezoid of that interval (-0.5 A)
    # grows the discharge counter while the logged current is positive, which once made the reader flip the sign
    df = pl.DataFrame({"test_time_s": [1.0, 2.0], "voltage_V": [3.7, 3.7], "current_A": [-2.0, 1.0],
                       "step_index": [0, 0]})
    ts = validate(TimeSeries(df, SourceMeta("mem", "", "test", "test")))
    write_bdf(ts, tmp_path / "s.bdf.csv")
    back = read(tmp_path / "s.bdf.csv")
    assert back.data["current_A"].to_list() == [-2.0, 1.0]
    assert not any("flipped" in c for c in back.meta.conversions)
