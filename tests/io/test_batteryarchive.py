"""BatteryArchive time series. No archive file is stored (the upstream SNL file is > 4 MiB), so the tests write REAL
data in the archive's layout with the csv module: the Arbin fixture (TRI, Apache-2.0) and the ORNL module file
(MIT). These are conversions made here, not files downloaded from batteryarchive.org."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import MODULE_FILES

from releaf.errors import InputFileError
from releaf.io import detect, read, reader_modules, textfile
from releaf.io.batteryarchive import HEADER

ARBIN = Path(__file__).parents[1] / "fixtures" / "arbin" / "FastCharge_000025_CH8.csv"


def arbin_as_batteryarchive(path: Path) -> list[dict]:
    """Write the Arbin fixture's rows in the archive's eleven columns; return the Arbin rows."""
    with ARBIN.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with path.open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(HEADER)
        for r in rows:
            stamp = datetime.fromtimestamp(float(r["DateTime"]), UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            w.writerow([stamp, r["Test_Time"], r["Cycle_Index"], r["Current"], r["Voltage"], r["Charge_Capacity"],
                        r["Discharge_Capacity"], r["Charge_Energy"], r["Discharge_Energy"], "", r["Temperature"]])
    return rows


def module_as_batteryarchive(path: Path, rows_wanted: int = 400) -> list[dict]:
    """The first rows of the ORNL module discharge (real 65 A) in the archive's layout, US date order."""
    lines = MODULE_FILES["1_0c"].read_text(encoding="latin-1").splitlines()[17:18 + rows_wanted]
    rows = list(csv.DictReader(lines))
    with path.open("w", newline="") as out:
        w = csv.writer(out)
        w.writerow(HEADER)
        for r in rows:
            stamp = datetime.strptime(r["Real Time"], "%m/%d/%Y %I:%M:%S %p").strftime("%m/%d/%Y %H:%M:%S")
            ah, wh = float(r["Amp-Hours"]), float(r["Watt-Hours"])
            w.writerow([stamp, r["Total Time"], r["Cycle"], r["Current"], r["Voltage"], max(ah, 0), max(-ah, 0),
                        max(wh, 0), max(-wh, 0), "22.0", r["Temperature A1"]])
    return rows


def test_values_against_the_arbin_rows(tmp_path):
    src = tmp_path / "FastCharge_CH8_timeseries.csv"
    rows = arbin_as_batteryarchive(src)
    assert detect(src) == "batteryarchive-csv"
    ts = read(src)
    d = ts.data
    assert ts.meta.vendor == "BatteryArchive.org" and d.height == len(rows) == 248
    np.testing.assert_allclose(d["test_time_s"].to_numpy(), [float(r["Test_Time"]) for r in rows])
    np.testing.assert_allclose(d["voltage_V"].to_numpy(), [float(r["Voltage"]) for r in rows])
    np.testing.assert_allclose(d["current_A"].to_numpy(), [float(r["Current"]) for r in rows])
    np.testing.assert_allclose(d["temperature_C"].to_numpy(), [float(r["Temperature"]) for r in rows])
    net = [float(r["Charge_Capacity"]) - float(r["Discharge_Capacity"]) for r in rows]
    np.testing.assert_allclose(d["vendor_capacity_Ah"].to_numpy(), net)
    unix = d["datetime"].dt.epoch("us").to_numpy() / 1e6
    np.testing.assert_allclose(unix, [float(r["DateTime"]) for r in rows], atol=1e-6)
    assert "ambient_temperature_C" not in d.columns  # every Environment_Temperature field is empty
    assert any("UTC" in c for c in ts.meta.conversions)


def test_discharge_keeps_its_negative_sign_and_us_dates(tmp_path):
    src = tmp_path / "module_timeseries.csv"
    rows = module_as_batteryarchive(src)
    d = read(src).data
    np.testing.assert_allclose(d["current_A"].to_numpy(), [float(r["Current"]) for r in rows])
    assert d["current_A"].min() < -60 and (d.filter(d["current_A"] < -1)["step_type"] == "discharge").all()
    np.testing.assert_allclose(d["vendor_capacity_Ah"].to_numpy(), [float(r["Amp-Hours"]) for r in rows])
    assert str(d["datetime"][0]) == "2017-04-13 07:47:36+00:00"
    assert d["ambient_temperature_C"].unique().to_list() == [22.0]


@pytest.mark.parametrize(
    "edit, line, column, words",
    [
        (lambda lines: lines[:-1] + [lines[-1][:12]], 249, None, "truncated"),
        (lambda lines: lines[:5] + [lines[5].replace("2017-05-13", "13.05.2017")] + lines[6:], 6, "Date_Time",
         "date and time"),
        (lambda lines: lines[:3] + [lines[3].replace(",0.0,", ",n/a,", 1)] + lines[4:], 4, "Cycle_Index", "n/a"),
    ],
)
def test_bad_input_names_line_and_column(tmp_path, edit, line, column, words):
    src = tmp_path / "x_timeseries.csv"
    arbin_as_batteryarchive(src)
    src.write_text("\n".join(edit(src.read_text().splitlines())) + "\n")
    with pytest.raises(InputFileError) as err:
        read(src, format="batteryarchive-csv")
    assert err.value.line == line and err.value.column == column and words in err.value.message


def test_missing_current_column(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("Date_Time,Test_Time (s),Cycle_Index,Voltage (V)\n,0,1,3.9\n")
    with pytest.raises(InputFileError, match="Current"):
        read(src, format="batteryarchive-csv")


def test_arbin_and_batteryarchive_do_not_claim_each_other(tmp_path):
    ba = tmp_path / "a_timeseries.csv"
    arbin_as_batteryarchive(ba)
    arbin_like = tmp_path / "arbin_units.csv"  # an Arbin export with the same spelled-out units
    arbin_like.write_text("Data_Point,Date_Time,Test_Time (s),Step_Index,Cycle_Index,Current (A),Voltage (V),"
                          "Charge_Capacity (Ah),Discharge_Capacity (Ah)\n1,,0,1,1,0,3.9,0,0\n")
    for path, expected in ((ba, "batteryarchive-csv"), (arbin_like, "arbin-csv"), (ARBIN, "arbin-csv")):
        head = textfile.head_of(path)
        claims = [f for m in reader_modules() if (f := m.sniff(head))]
        assert claims == [expected], (path.name, claims)
