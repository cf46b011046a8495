from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from releaf.errors import InputFileError
from releaf.io import detect, read

FIXTURE = Path(__file__).parents[1] / "fixtures" / "pec" / "Test25209.csv"
HEADER_LINE = 46

OLD_HEADER = (  # older PEC export layout (cellpy's pec.csv): mV, mA, seconds, energy called 'Capacity (mWh)'
    "Request Year:,2019\nTest:,187\nStart Time:,02/22/2019 16:21:35\n#RESULTS CHECK\n"
    "ReqYear,Test,CellNr,Type,Value,Reason,\n2019,187,1,1,3272,3,\n#END RESULTS CHECK\n"
    "Test,Cell,Rack,Shelf,Position,Cell ID,Step,Cycle,Total Time (Seconds),Load On Time (Seconds),"
    "Step Time (Seconds),Real Time,Voltage (mV),Current (mA),Charge Capacity (mAh),Discharge Capacity (mAh),"
    "Charge Capacity (mWh),Discharge Capacity (mWh),ReasonCode,Cell surface temperature (Â°C),\n"
)


def _raw_rows(path: Path) -> list[dict[str, str]]:
    """Independent parse: the csv module from the header line (line 46) on."""
    with path.open(newline="", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    return list(csv.DictReader(lines[HEADER_LINE - 1:]))


def _seconds(hms: str) -> float:
    h, m, s = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_values_match_an_independent_parse():
    ts = read(FIXTURE)
    rows = _raw_rows(FIXTURE)
    d = ts.data
    assert ts.meta.format == "pec" and ts.meta.vendor == "PEC"
    assert d.height == len(rows) == 281
    np.testing.assert_allclose(d["test_time_s"].to_numpy(),
                               [_seconds(r["Total Time (Hours in hh:mm:ss.xxx)"]) for r in rows])
    np.testing.assert_allclose(d["voltage_V"].to_numpy(), [float(r["Voltage (V)"]) for r in rows])
    np.testing.assert_allclose(d["current_A"].to_numpy(), [float(r["Current (A)"]) for r in rows])
    net = [(float(r["Charge Capacity (mAh)"]) - float(r["Discharge Capacity (mAh)"])) / 1000 for r in rows]
    np.testing.assert_allclose(d["vendor_capacity_Ah"].to_numpy(), net)
    net_e = [(float(r["Charge Energy (mWh)"]) - float(r["Discharge Energy (mWh)"])) / 1000 for r in rows]
    np.testing.assert_allclose(d["vendor_energy_Wh"].to_numpy(), net_e)
    temps = [float(r["Temp (°C)"]) if r["Temp (°C)"] else np.nan for r in rows]
    np.testing.assert_allclose(d["temperature_C"].fill_null(np.nan).to_numpy(), temps)
    assert d["step_index"].to_list() == [int(r["Step"]) for r in rows]
    assert d["cycle_index"].to_list() == [int(r["Cycle"]) for r in rows]
    assert str(d["datetime"][0]) == "2026-01-09 15:08:38+00:00"  # '01/09/2026 15:08:38', month first


def test_rest_only_file_keeps_the_sign_and_says_it_was_assumed():
    ts = read(FIXTURE)
    d = ts.data
    # an open-circuit test: every line Idle, |I| <= 6 uA, so no line can show the convention
    assert set(d["vendor_instruction"]) == {"Idle"} and d["current_A"].abs().max() < 1e-5
    assert set(d["step_type"]) == {"rest"}
    assert any("assumed" in c for c in ts.meta.conversions)
    assert ts.meta.header["C-Rate (mAh)"] == "64000" and ts.meta.header["Chemistry"] == "Li-ion LG NMC"
    assert ts.meta.channel == "ACT4/014/1"
    assert ts.meta.units_found["Charge Capacity (mAh)"] == "mAh"


@pytest.mark.parametrize("sign, negated", [(1, False), (-1, True)])
def test_sign_is_decided_by_the_charge_and_discharge_counters(tmp_path, sign, negated):
    """Old layout in mV / mA / s; the current is negated only if the file's counters say + = discharge."""
    rows = [  # step, time s, mV, mA (charge written as +1000 when sign = 1), Qc mAh, Qd mAh
        (1, 0, 3600, 0, 0, 0), (2, 10, 3700, 1000, 2.78, 0), (2, 20, 3720, 1000, 5.56, 0),
        (3, 30, 3650, -1000, 5.56, 2.78), (3, 40, 3640, -1000, 5.56, 5.56),
    ]
    lines = [f"187,1,SBT0550,001,1,,{st},0,{t},{t},{t},02/22/2019 16:23:{t:02d},{mv},{sign * ma},{qc},{qd},0,0,30,"
             f"25.5," for st, t, mv, ma, qc, qd in rows]
    src = tmp_path / "old.csv"
    src.write_text(OLD_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    ts = read(src)
    d = ts.data
    np.testing.assert_allclose(d["current_A"].to_numpy(), [0, 1, 1, -1, -1])  # + = charge either way
    np.testing.assert_allclose(d["voltage_V"].to_numpy(), [3.6, 3.7, 3.72, 3.65, 3.64])
    assert d["step_type"].to_list() == ["rest", "charge", "charge", "discharge", "discharge"]
    np.testing.assert_allclose(d["vendor_capacity_Ah"].to_numpy(), [0, 0.00278, 0.00556, 0.00278, 0])
    assert "vendor_energy_Wh" in d.columns  # 'Charge Capacity (mWh)' is read as the energy counter
    assert any(c.startswith("current negated") for c in ts.meta.conversions) is negated
    assert any("confirmed by the counters on 4 of 4 lines" in c for c in ts.meta.conversions) is not negated
    assert "Type" not in ts.meta.header  # the RESULTS CHECK table is not metadata
    assert d["temperature_C"].to_list() == [25.5] * 5


def test_truncated_file_names_the_last_line(tmp_path):
    data = FIXTURE.read_bytes()
    bad = tmp_path / "cut.csv"
    bad.write_bytes(data[:-40])
    with pytest.raises(InputFileError) as err:
        read(bad)
    assert err.value.line == data[:-40].count(b"\n") + 1 and "truncated" in str(err.value)


def test_non_number_and_unknown_unit(tmp_path):
    lines = FIXTURE.read_text(encoding="utf-8").split("\n")
    fields = lines[HEADER_LINE + 4].split(",")
    fields[17] = "1;5"  # Current (A)
    lines[HEADER_LINE + 4] = ",".join(fields)
    bad = tmp_path / "nan.csv"
    bad.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputFileError) as err:
        read(bad)
    assert (err.value.line, err.value.column) == (HEADER_LINE + 5, "Current (A)")
    odd = tmp_path / "odd.csv"
    odd.write_text(FIXTURE.read_text(encoding="utf-8").replace("Current (A)", "Current (Ah)"), encoding="utf-8")
    with pytest.raises(InputFileError, match="unit 'Ah' not understood") as err:  # a charge, not a current
        read(odd)
    assert err.value.line == HEADER_LINE
    kilo = tmp_path / "kilo.csv"  # any current unit of releaf.io.units is read
    kilo.write_text(FIXTURE.read_text(encoding="utf-8").replace("Current (A)", "Current (kA)"), encoding="utf-8")
    assert read(kilo).data["current_A"].to_list() == (read(FIXTURE).data["current_A"] * 1e3).to_list()


def test_several_cells_in_one_file_are_refused(tmp_path):
    lines = FIXTURE.read_text(encoding="utf-8").split("\n")
    lines[HEADER_LINE + 10] = lines[HEADER_LINE + 10].replace("25209,1,", "25209,2,", 1)
    bad = tmp_path / "two.csv"
    bad.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputFileError, match="2 cells in one file"):
        read(bad)


def test_detection_is_by_content_not_name(tmp_path):
    renamed = tmp_path / "test.052"
    renamed.write_bytes(FIXTURE.read_bytes())
    assert detect(renamed) == "pec"
