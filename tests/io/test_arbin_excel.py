"""Arbin Excel (.xlsx) reader, on an Arbin-style workbook made from a real Arbin CSV export.

No original Arbin workbook is available with a clear licence, so ``arbin_workbook`` CONVERTS the real TRI export
``tests/fixtures/arbin/FastCharge_000025_CH8.csv`` into the MITS Pro Excel layout (see
``tests/fixtures/arbin_excel/SOURCE.txt``); the values are checked against the CSV read with the ``csv`` module.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xlsxwriter

from releaf.errors import InputFileError
from releaf.io import detect, read
from releaf.io.arbin_excel import read_arbin_xlsx

ARBIN = Path(__file__).parents[1] / "fixtures" / "arbin"
CSV = ARBIN / "FastCharge_000025_CH8.csv"
METADATA = ARBIN / "FastCharge_000025_CH8_Metadata.csv"
# CSV column -> MITS Pro Excel header (with units)
EXCEL_HEADER = {"Data_Point": "Data_Point", "Test_Time": "Test_Time(s)", "DateTime": "Date_Time",
                "Step_Time": "Step_Time(s)", "Step_Index": "Step_Index", "Cycle_Index": "Cycle_Index",
                "Current": "Current(A)", "Voltage": "Voltage(V)", "Charge_Capacity": "Charge_Capacity(Ah)",
                "Discharge_Capacity": "Discharge_Capacity(Ah)", "Charge_Energy": "Charge_Energy(Wh)",
                "Discharge_Energy": "Discharge_Energy(Wh)", "dV/dt": "dV/dt(V/s)",
                "Internal_Resistance": "Internal_Resistance(Ohm)", "Temperature": "Temperature(C)"}


def _rows() -> list[dict[str, str]]:
    with CSV.open() as fh:
        return list(csv.DictReader(fh))


def arbin_workbook(out: Path, *, rows_per_sheet: int | None = None, mutate=None) -> Path:
    """Write the real Arbin CSV export as an Arbin MITS Pro-style workbook (a conversion, see module doc)."""
    rows = _rows()
    with METADATA.open() as fh:
        record = next(csv.DictReader(fh))
    wb = xlsxwriter.Workbook(str(out))
    info = wb.add_worksheet("Info")
    keys = [k for k in record if k]
    info.write_row(0, 0, keys)
    info.write_row(1, 0, [record[k] for k in keys])
    size = rows_per_sheet or len(rows)
    for part, start in enumerate(range(0, len(rows), size), start=1):
        sheet = wb.add_worksheet(f"Channel_8_{part}")
        sheet.write_row(0, 0, list(EXCEL_HEADER.values()))
        for r, row in enumerate(rows[start:start + size], start=1):
            values = []
            for col in EXCEL_HEADER:
                if col == "DateTime":
                    stamp = datetime.fromtimestamp(float(row[col]), UTC)
                    values.append(stamp.strftime("%m/%d/%Y %H:%M:%S"))
                else:
                    values.append(float(row[col]))
            if mutate:
                values = mutate(start + r - 1, values)
            sheet.write_row(r, 0, values)
    stats = wb.add_worksheet("Statistics_8_1")
    stats.write_row(0, 0, ["Cycle_Index", "Test_Time(s)", "Charge_Capacity(Ah)", "Discharge_Capacity(Ah)"])
    by_cycle: dict[float, dict[str, str]] = {}
    for row in rows:
        by_cycle[float(row["Cycle_Index"])] = row
    for r, (cycle, row) in enumerate(sorted(by_cycle.items()), start=1):
        stats.write_row(r, 0, [cycle, float(row["Test_Time"]), float(row["Charge_Capacity"]),
                               float(row["Discharge_Capacity"])])
    wb.close()
    return out


@pytest.fixture
def workbook(tmp_path) -> Path:
    return arbin_workbook(tmp_path / "FastCharge_000025_CH8.xlsx")


def test_values_match_the_real_csv(workbook):
    ts = read(workbook)
    rows = _rows()
    assert ts.meta.format == "arbin-xlsx" and ts.meta.vendor == "Arbin"
    assert ts.data.height == len(rows) == 248
    np.testing.assert_array_equal(ts.data["test_time_s"].to_numpy(), [float(r["Test_Time"]) for r in rows])
    np.testing.assert_array_equal(ts.data["current_A"].to_numpy(), [float(r["Current"]) for r in rows])
    np.testing.assert_array_equal(ts.data["voltage_V"].to_numpy(), [float(r["Voltage"]) for r in rows])
    np.testing.assert_allclose(ts.data["temperature_C"].to_numpy(), [float(r["Temperature"]) for r in rows])
    net = [float(r["Charge_Capacity"]) - float(r["Discharge_Capacity"]) for r in rows]
    np.testing.assert_allclose(ts.data["vendor_capacity_Ah"].to_numpy(), net)
    # the Info sheet (test record) travels with the table
    assert ts.meta.channel == "7" and ts.meta.header["schedule_file_name"].endswith(".SDU")
    assert ts.meta.units_found["Current(A)"] == "a"


def test_a_test_split_over_channel_sheets_is_concatenated(tmp_path):
    whole = read(arbin_workbook(tmp_path / "one.xlsx"))
    split = read(arbin_workbook(tmp_path / "two.xlsx", rows_per_sheet=100))
    assert split.data.equals(whole.data)
    assert any("Channel_8_1, Channel_8_2, Channel_8_3" in c for c in split.meta.conversions)


def test_milliamps_are_scaled(tmp_path):
    path = tmp_path / "ma.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    sheet = wb.add_worksheet("Channel_1_1")
    sheet.write_row(0, 0, ["Data_Point", "Test_Time(s)", "Current(mA)", "Voltage(V)"])
    sheet.write_row(1, 0, [1, 0.0, 0.0, 3.9])
    sheet.write_row(2, 0, [2, 1.0, -1500.0, 3.85])
    wb.close()
    ts = read(path)
    np.testing.assert_allclose(ts.data["current_A"].to_numpy(), [0.0, -1.5])
    assert "'Current(mA)' x 0.001 -> A" in ts.meta.conversions


def test_text_in_a_number_column_names_sheet_row_and_column(tmp_path):
    def bad(i, values):
        return values[:6] + ["n/a"] + values[7:] if i == 41 else values

    path = arbin_workbook(tmp_path / "bad.xlsx", mutate=bad)
    with pytest.raises(InputFileError) as err:
        read(path)
    assert err.value.line == 43 and err.value.column == "Current(A)"
    assert "Channel_8_1" in err.value.file and "'n/a'" in err.value.message


def test_missing_voltage_column(tmp_path):
    path = tmp_path / "novolt.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    sheet = wb.add_worksheet("Channel_1_1")
    sheet.write_row(0, 0, ["Data_Point", "Test_Time(s)", "Current(A)"])
    sheet.write_row(1, 0, [1, 0.0, 0.0])
    wb.close()
    assert detect(path) == "arbin-xlsx"
    with pytest.raises(InputFileError, match="'voltage' is missing"):
        read(path)


def test_other_workbooks_and_broken_files_are_not_claimed(tmp_path):
    other = tmp_path / "other.xlsx"
    wb = xlsxwriter.Workbook(str(other))
    wb.add_worksheet("Sheet1").write_row(0, 0, ["Time", "Voltage"])
    wb.close()
    with pytest.raises(InputFileError):
        detect(other)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(InputFileError):
        read_arbin_xlsx(broken)
