from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import BUNDLED_ORNL, SHARED_DATA, shared

from releaf.errors import InputFileError
from releaf.io import detect, read, reader_modules, textfile
from releaf.io.bdf import sniff

FIXTURES = Path(__file__).parents[1] / "fixtures"
HEAD = FIXTURES / "bdf" / "batmo_bdf_head1000.csv"


def _raw_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_batmo_excerpt_values_units_and_sign_against_the_raw_file():
    ts = read(HEAD)
    rows = _raw_rows(HEAD)
    assert ts.meta.format == "bdf-csv" and ts.data.height == len(rows) == 1000
    d = ts.data
    np.testing.assert_allclose(d["test_time_s"].to_numpy(), [float(r["Test Time / h"]) * 3600 for r in rows])
    np.testing.assert_allclose(d["voltage_V"].to_numpy(), [float(r["Voltage / V"]) for r in rows])
    # BattMo writes discharge as positive current; the reader flips it (BDF and releaf: + = charge)
    np.testing.assert_allclose(d["current_A"].to_numpy(), [-float(r["Current / A"]) for r in rows])
    assert (d.filter(d["step_type"] == "discharge")["current_A"] < 0).all()
    assert (d.filter(d["step_type"] == "charge")["current_A"] > 0).all()
    net = [float(r["Charge Capacity / Ah"]) - float(r["Discharge Capacity / Ah"]) for r in rows]
    np.testing.assert_allclose(d["vendor_capacity_Ah"].to_numpy(), net)
    assert d["cycle_index"].to_list() == [int(r["Cycle Count / 1"]) for r in rows]
    assert d["step_index"].to_list() == [int(r["Step Index / 1"]) for r in rows]
    assert d["step_type"].to_list() == [r["Step Type / 1"] for r in rows]
    conv = " ".join(ts.meta.conversions)
    assert "'Test Time / h' x 3600 -> s" in conv and "sign flipped" in conv and "program step" in conv
    assert ts.meta.header["ignored_columns"] == "Protocol Name / 1"


def test_full_batmo_file():
    ts = read(shared("cycler-formats", "cellpy", "batmo_bdf.csv"))
    assert ts.data.height == 21206
    # the vendor's counters agree in sign with the flipped current: net charge falls while discharging
    d = ts.data
    dq = np.diff(d["vendor_capacity_Ah"].to_numpy())
    i = d["current_A"].to_numpy()[1:]
    moving = (np.abs(dq) > 1e-9) & (np.abs(i) > 0)
    assert (np.sign(dq[moving]) == np.sign(i[moving])).mean() > 0.99


def test_spec_file_with_milliamps_notation_names_and_unix_time(tmp_path):
    src = tmp_path / "cell.bdf"
    src.write_text(
        "test_time_second,voltage_volt,current_ampere,unix_time_second,cycle_count,step_count\n"
        "0,3.9,0,1700000000.5,1,1\n10,3.8,-1.5,1700000010.5,1,2\n20,3.7,-1.5,1700000020.5,1,2\n"
    )
    ts = read(src)
    assert ts.meta.format == "bdf-csv" and not any("flipped" in c for c in ts.meta.conversions)
    assert ts.data["current_A"].to_list() == [0.0, -1.5, -1.5]
    assert ts.data["step_index"].to_list() == [1, 2, 2]
    assert str(ts.data["datetime"][0]) == "2023-11-14 22:13:20.500000+00:00"

    src2 = tmp_path / "ma.csv"
    src2.write_text(
        "Test Time / min,Voltage / mV,Current / mA,Step Type / 1,Charging Capacity / mAh,Discharging Capacity / mAh,"
        "Temperature T1 / degC,Ambient Temperature / degC\n"
        "0,3900,0,rest,0,0,25,24\n1,3950,500,charge,0,0,25.5,24\n2,3990,500,charge,8.3,0,26,24\n"
    )
    ts = read(src2)
    np.testing.assert_allclose(ts.data["test_time_s"].to_numpy(), [0, 60, 120])
    np.testing.assert_allclose(ts.data["voltage_V"].to_numpy(), [3.9, 3.95, 3.99])
    np.testing.assert_allclose(ts.data["current_A"].to_numpy(), [0, 0.5, 0.5])
    np.testing.assert_allclose(ts.data["vendor_capacity_Ah"].to_numpy(), [0, 0, 0.0083])
    assert ts.data["temperature_C"].to_list() == ts.data["temperature_C_1"].to_list() == [25.0, 25.5, 26.0]
    assert ts.data["ambient_temperature_C"].to_list() == [24.0, 24.0, 24.0]
    assert any("Current / mA" in c for c in ts.meta.conversions)


def test_within_step_point_counter_is_not_a_step_number(tmp_path):
    src = tmp_path / "counter.csv"
    src.write_text("Test Time / s,Voltage / V,Current / A,Step Index / 1\n0,3.9,0,1\n1,3.9,0,2\n2,3.8,-1,1\n")
    ts = read(src)
    assert "step_index" not in ts.data.columns
    assert any("point counter" in c for c in ts.meta.conversions)


@pytest.mark.parametrize(
    "body, line, column, words",
    [
        ("0,3.9,0\n1,3.9,abc\n", 3, "Current / A", "text 'abc'"),
        ("0,3.9,0\n1,3.9,0\n2,3.9\n", 4, None, "truncated"),
        ("0,3.9,0\n1,,0\n", 3, "Voltage / V", "empty field"),
    ],
)
def test_bad_values_name_line_and_column(tmp_path, body, line, column, words):
    src = tmp_path / "bad.csv"
    src.write_text("Test Time / s,Voltage / V,Current / A\n" + body)
    with pytest.raises(InputFileError) as err:
        read(src, format="bdf-csv")
    assert err.value.line == line and err.value.column == column and words in err.value.message


def test_missing_column_and_unknown_unit(tmp_path):
    src = tmp_path / "nocurrent.csv"
    src.write_text("Test Time / s,Voltage / V\n0,3.9\n")
    with pytest.raises(InputFileError, match="Current / A"):
        read(src, format="bdf-csv")
    src.write_text("Test Time / s,Voltage / V,Current / furlong\n0,3.9,1\n")
    with pytest.raises(InputFileError) as err:
        read(src, format="bdf-csv")
    assert err.value.column == "Current / furlong" and "furlong" in err.value.message


def _all_real_files():
    roots = [SHARED_DATA / "cycler-formats", SHARED_DATA / "ornl-leaf", BUNDLED_ORNL, FIXTURES]
    return sorted({p for r in roots if r.exists() for p in r.rglob("*")
                   if p.is_file() and p.suffix not in (".txt", ".py", ".yaml") and p.name != "LICENSE"})


def test_bdf_sniffer_claims_only_bdf_files_and_nobody_else_claims_them():
    files = _all_real_files()
    assert files
    for p in files:
        head = textfile.head_of(p)
        claims = [f for m in reader_modules() if (f := m.sniff(head))]
        if sniff(head):
            assert "bdf" in p.name and claims == ["bdf-csv"], (p, claims)
        else:
            assert "bdf-csv" not in claims


def test_detection_is_by_content(tmp_path):
    renamed = tmp_path / "arbin_export.txt"
    renamed.write_bytes(HEAD.read_bytes())
    assert detect(renamed) == "bdf-csv"
