from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import shared

from releaf.errors import InputFileError
from releaf.io import detect, read

FIXTURE = Path(__file__).parents[1] / "fixtures" / "arbin" / "FastCharge_000025_CH8.csv"


def test_arbin_csv_values_match_the_raw_file():
    ts = read(FIXTURE)
    assert ts.meta.format == "arbin-csv" and ts.meta.vendor == "Arbin"
    with FIXTURE.open() as fh:
        rows = list(csv.DictReader(fh))
    assert ts.data.height == len(rows)
    np.testing.assert_allclose(ts.data["current_A"].to_numpy(), [float(r["Current"]) for r in rows])
    np.testing.assert_allclose(ts.data["voltage_V"].to_numpy(), [float(r["Voltage"]) for r in rows])
    np.testing.assert_allclose(ts.data["test_time_s"].to_numpy(), [float(r["Test_Time"]) for r in rows])
    net = [float(r["Charge_Capacity"]) - float(r["Discharge_Capacity"]) for r in rows]
    np.testing.assert_allclose(ts.data["vendor_capacity_Ah"].to_numpy(), net)
    # the sibling _Metadata.csv (test record) travels with the table
    assert ts.meta.channel == "7" and ts.meta.header["schedule_file_name"].endswith(".SDU")


def test_second_tri_arbin_export():
    ts = read(shared("cycler-formats", "beep-TRI-AMDD", "2017-05-09_test-TC-contact_CH33.csv"))
    assert ts.meta.format == "arbin-csv" and ts.data.height > 100


def test_milliamp_units_are_scaled_and_reported(tmp_path):
    src = tmp_path / "ma.csv"
    src.write_text(
        "Data_Point,Test_Time(s),Step_Index,Current(mA),Voltage(V),Charge_Capacity(mAh),Discharge_Capacity(mAh)\n"
        "1,0,1,0,3.9,0,0\n2,1,2,-1500,3.85,0,0.4\n3,2,2,-1500,3.84,0,0.8\n"
    )
    ts = read(src)
    np.testing.assert_allclose(ts.data["current_A"].to_numpy(), [0, -1.5, -1.5])
    np.testing.assert_allclose(ts.data["vendor_capacity_Ah"].to_numpy(), [0, -0.0004, -0.0008])
    assert any("Current(mA)" in c for c in ts.meta.conversions)


def test_aux_voltages_become_group_voltages(tmp_path):
    src = tmp_path / "aux.csv"
    src.write_text(
        "Data_Point,Test_Time(s),Step_Index,Current(A),Voltage(V),Aux_Voltage_2(V),Aux_Voltage_1(V)\n"
        "1,0,1,0,8.2,4.1,4.1\n2,1,2,-30,8.0,4.0,4.0\n"
    )
    ts = read(src)
    assert ts.group_columns == ["group_voltage_V_1", "group_voltage_V_2"]


@pytest.mark.parametrize(
    "body, column",
    [("1,0,1,0,3.9\n2,1,2,abc,3.8\n", "Current(A)"), ("1,0,1,0,3.9\n2,1,2,inf,3.8\n", "Current(A)")],
)
def test_bad_values_name_line_and_column(tmp_path, body, column):
    src = tmp_path / "bad.csv"
    src.write_text("Data_Point,Test_Time(s),Step_Index,Current(A),Voltage(V)\n" + body)
    with pytest.raises(InputFileError) as err:
        read(src)
    assert err.value.line == 3
    assert err.value.column in (column, "current_A")


def test_detection_is_by_content_not_name(tmp_path):
    renamed = tmp_path / "module-from-bitrode.csv"
    renamed.write_bytes(FIXTURE.read_bytes())
    assert detect(renamed) == "arbin-csv"


def test_mits_pro_wall_clock_date_time(tmp_path):
    src = tmp_path / "mits.csv"
    src.write_text("Data_Point,Test_Time(s),Date_Time,Step_Index,Current(A),Voltage(V)\n"
                   "1,0,05/13/2017 03:14:03,1,0,3.9\n2,1,05/13/2017 03:14:04,2,-1.5,3.85\n")
    ts = read(src)
    assert str(ts.data["datetime"][1]) == "2017-05-13 03:14:04+00:00"
    assert any("Date_Time" in c for c in ts.meta.conversions)


def test_reading_without_the_wall_clock_leaves_only_the_datetime_out(tmp_path):
    """``wall_clock=False`` (what the diagnosis reads) drops ``datetime`` and its conversion note, nothing else."""
    src = tmp_path / "mits.csv"
    src.write_text("Data_Point,Test_Time(s),Date_Time,Step_Index,Current(mA),Voltage(V)\n"
                   "1,0,05/13/2017 03:14:03,1,0,3.9\n2,1,05/13/2017 03:14:04,2,-1500,3.85\n")
    for path in (src, FIXTURE):
        whole, lean = read(path), read(path, wall_clock=False)
        assert "datetime" in whole.data.columns and "datetime" not in lean.data.columns
        assert lean.data.equals(whole.data.drop("datetime"))
        assert lean.meta.sha256 == whole.meta.sha256
        assert [c for c in whole.meta.conversions if "wall-clock" not in c] == list(lean.meta.conversions)
    assert read(src, wall_clock=False).data["current_A"].to_list() == [0.0, -1.5]


def test_streamed_batches_equal_the_whole_read(tmp_path):
    from releaf.io.arbin import iter_arbin_csv

    whole = read(FIXTURE).data
    batches = list(iter_arbin_csv(FIXTURE, batch_rows=50))
    assert len(batches) >= 5
    import polars as pl

    assert pl.concat([b.data for b in batches]).equals(whole)


@pytest.mark.parametrize("held_rows", [1, 100, 10**9])
def test_batches_parsed_while_hashing_carry_the_hash(monkeypatch, held_rows):
    # batches parsed before the hash is done are held, then yielded in order, each with the file's sha256
    import hashlib

    import polars as pl

    from releaf.io import arbin

    monkeypatch.setattr(arbin, "_HELD_ROWS", held_rows)
    batches = list(arbin.iter_arbin_csv(FIXTURE, batch_rows=50))
    sha = hashlib.sha256(FIXTURE.read_bytes()).hexdigest()
    assert {b.meta.sha256 for b in batches} == {sha}
    assert pl.concat([b.data for b in batches]).equals(read(FIXTURE).data)


def test_streamed_time_backwards_across_batches_names_the_line(tmp_path):
    from releaf.io.arbin import iter_arbin_csv

    rows = ["Data_Point,Test_Time(s),Step_Index,Current(A),Voltage(V)"]
    rows += [f"{k},{k},1,-1.0,3.8" for k in range(1, 101)]
    rows[61] = "61,5,1,-1.0,3.8"  # line 62 goes back in time, first row of the third batch
    src = tmp_path / "back.csv"
    src.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputFileError) as err:
        list(iter_arbin_csv(src, batch_rows=30))
    assert err.value.line == 62


def test_a_wall_clock_in_no_known_layout_leaves_datetime_empty(tmp_path):
    """A first-row DateTime no format of ``releaf.io.datetimes`` reads gives an all-null column (the values are
    still read), not a failure."""
    src = tmp_path / "odd-clock.csv"
    src.write_text("Data_Point,Test_Time(s),Date_Time,Step_Index,Current(A),Voltage(V)\n"
                   "1,0,Tue 13 May 2017 3:14,1,0,3.9\n2,1,Tue 13 May 2017 3:15,2,-1.5,3.85\n")
    ts = read(src)
    assert ts.data["datetime"].null_count() == 2 and ts.data["current_A"].to_list() == [0.0, -1.5]


def test_units_come_from_the_shared_table(tmp_path):
    """Arbin reads any spelling of ``releaf.io.units`` for its column's dimension, and refuses one of another."""
    body = "1,0,1,0,3.9\n2,1,2,-1500,3.85\n"
    src = tmp_path / "ua.csv"
    src.write_text("Data_Point,Test_Time(min),Step_Index,Current(uA),Voltage(V)\n" + body)
    ts = read(src)
    assert ts.data["current_A"].to_list() == [0.0, -1500 * 1e-6] and ts.data["test_time_s"].to_list() == [0.0, 60.0]
    assert "'Current(uA)' x 1e-06 -> A" in ts.meta.conversions and ts.meta.units_found["Current(uA)"] == "ua"
    src.write_text("Data_Point,Test_Time(s),Step_Index,Current(V),Voltage(V)\n" + body)
    with pytest.raises(InputFileError, match="unit 'v' not understood") as err:
        read(src)
    assert (err.value.line, err.value.column) == (1, "Current(V)")


@pytest.mark.parametrize(("change", "message"), [
    (lambda fields: [*fields, b"1"], "16 fields where 15 were expected"),  # a long line
    (lambda fields: fields[:-1], "14 fields where 15 were expected"),  # a short line (an optional column)
])
def test_streamed_read_names_a_line_with_the_wrong_field_count(tmp_path, change, message):
    """The streamed reader parses only the columns releaf uses; the comma count still finds a line with too many
    or too few fields, and it is named as the whole read names it."""
    from releaf.io.arbin import iter_arbin_csv

    lines = FIXTURE.read_bytes().split(b"\r\n")
    lines[50] = b",".join(change(lines[50].split(b",")))
    src = tmp_path / "ragged.csv"
    src.write_bytes(b"\r\n".join(lines))
    for reader in (read, lambda p: list(iter_arbin_csv(p, batch_rows=40))):
        with pytest.raises(InputFileError, match=message) as err:
            reader(src)
        assert err.value.line == 51
