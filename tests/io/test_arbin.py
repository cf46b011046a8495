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


@pytest.mark.parametrize(("texts", "decoded_by_numpy"), [
    (["03/02/2026 07:00:00.000", "03/02/2026 07:00:00.100", "03/02/2026 23:59:59.999", "03/03/2026 00:00:00.000"],
     True),
    (["02/29/2024 12:00:00", "02/29/2024 12:00:01"], True),
    (["12/31/1999 23:59:59.123456", "12/31/1999 23:59:59.000001"], True),
    (["02/30/2026 07:00:00.000", "02/28/2026 07:00:00.000"], False),  # no such day
    (["03/02/2026 24:00:00.000", "03/02/2026 07:60:00.000", "03/02/2026 07:00:60.000"], False),  # leap second too
    (["3/2/2026 07:00:00.000", " 03/02/2026 07:00:00.000", "03/02/2026 07:00:00.1234567", "03-02-2026 07:00:00"],
     False),
    (["13/02/2026 07:00:00.000", "00/02/2026 07:00:00.000", "03/00/2026 07:00:00.000", "03/02/0000 07:00:00.000"],
     False),
])
def test_mits_datetime_reads_what_polars_strptime_reads(texts, decoded_by_numpy):
    """The numpy decoder of MITS Pro DateTime text gives polars' result, or declines and polars parses the text."""
    import polars as pl

    from releaf.io.arbin import _MITS_DATETIME, _mits_datetime

    def polars_reads(values):
        return (pl.Series("datetime", values).str.strip_chars()
                .str.to_datetime(_MITS_DATETIME, strict=False, time_unit="us").dt.replace_time_zone("UTC"))

    for values in [texts, *([t] * 9 for t in texts)]:
        decoded = _mits_datetime(pl.Series("datetime", values))
        expected = polars_reads(values)
        if decoded is not None:
            assert expected.null_count() == 0 and decoded.dtype == expected.dtype
            assert decoded.to_list() == expected.to_list()
        elif decoded_by_numpy and len(set(values)) == 1:  # (few rows of many dates are left to polars)
            pytest.fail(f"a well-formed column was left to polars: {values[:2]}")
