from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from conftest import MODULE_FILES

from releaf.errors import InputFileError
from releaf.io.mapped import read_mapped

HERE = Path(__file__).parents[1] / "fixtures" / "mapped"
DATA, MAPPING = HERE / "example_eu.csv", HERE / "example_eu.yaml"


def _ornl_rows(n: int) -> list[dict]:
    """The source rows of the example, parsed independently from the ORNL Bitrode file."""
    lines = MODULE_FILES["1_0c"].read_text(encoding="latin-1").splitlines()[17:18 + n]
    return list(csv.DictReader(lines))


def test_example_matches_the_ornl_measurement():
    ts = read_mapped(DATA, MAPPING)
    rows = _ornl_rows(300)
    d = ts.data
    assert d.height == 300 and ts.meta.format == "mapped-csv"
    np.testing.assert_allclose(d["test_time_s"].to_numpy(), [float(r["Total Time"]) for r in rows], atol=1e-9)
    np.testing.assert_allclose(d["voltage_V"].to_numpy(), [float(r["Voltage"]) for r in rows])
    # the file writes discharge as +65000 mA; the mapping's sign: discharge_positive gives -65 A
    np.testing.assert_allclose(d["current_A"].to_numpy(), [float(r["Current"]) for r in rows])
    np.testing.assert_allclose(d["vendor_capacity_Ah"].to_numpy(), [float(r["Amp-Hours"]) for r in rows], atol=1e-12)
    np.testing.assert_allclose(d["group_voltage_V_2"].to_numpy(), [float(r["Cell Voltage A6"]) for r in rows])
    assert d["step_type"].to_list() == [{"REST": "rest", "DCHG": "discharge"}[r["Mode"]] for r in rows]
    local = datetime.strptime(rows[0]["Real Time"], "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=ZoneInfo("America/New_York"))
    assert d["datetime"][0] == local
    assert ts.meta.units_found["I [mA]"] == "mA" and any("sign flipped" in c for c in ts.meta.conversions)


def _write(tmp_path, mapping: str, data: str | None = None):
    m = tmp_path / "layout.yaml"
    m.write_text(mapping)
    d = tmp_path / "data.csv"
    d.write_text(data if data is not None else "t;U;I\n0;3,9;0\n1;3,8;-1,5\n")
    return d, m


BASE = 'delimiter: ";"\ndecimal: ","\ncolumns:\n  test_time_s: t\n  voltage_V: U\n  current_A: {column: I}\n'


def test_minimal_mapping_with_shorthand_names(tmp_path):
    d, m = _write(tmp_path, BASE)
    ts = read_mapped(d, m)
    assert ts.data["current_A"].to_list() == [0.0, -1.5] and ts.data["step_type"].to_list() == ["rest", "discharge"]


@pytest.mark.parametrize(
    "mapping, key, line, words",
    [
        (BASE + "sheet: 2\n", "sheet", 7, "unknown key"),
        (BASE.replace("{column: I}", "{column: I, scale: 2}"), "columns.current_A.scale", 6, "unknown key"),
        (BASE.replace("  voltage_V: U\n", ""), "columns", 3, "voltage_V"),
        (BASE.replace("{column: I}", "{column: I, sign: negative}"), "columns.current_A.sign", 6, "discharge_positive"),
        (BASE.replace("{column: I}", "{column: I, unit: furlong}"), "columns.current_A.unit", 6, "furlong"),
        (BASE.replace("{column: I}", "{column: Amps}"), "columns.current_A.column", 6, "not found in the header"),
        (BASE.replace('delimiter: ";"', 'delimiter: ","'), "decimal", 2, "also the delimiter"),
        (BASE + "  soc_pct: SOC\n", "columns.soc_pct", 7, "unknown canonical column"),
        (BASE.replace("test_time_s: t", "test_time_s: {column: t, format: datetime}"), "columns.test_time_s", 4,
         "datetime_format"),
    ],
)
def test_mapping_mistakes_name_the_mapping_file_key_and_line(tmp_path, mapping, key, line, words):
    d, m = _write(tmp_path, mapping)
    with pytest.raises(InputFileError) as err:
        read_mapped(d, m)
    assert err.value.file == str(m) and err.value.line == line
    assert f"key {key!r}" in err.value.message and words in err.value.message


def test_missing_and_invalid_mapping_files(tmp_path):
    d, _ = _write(tmp_path, BASE)
    with pytest.raises(InputFileError, match="mapping file not found"):
        read_mapped(d, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: [unclosed\n")
    with pytest.raises(InputFileError, match="not valid YAML"):
        read_mapped(d, bad)


@pytest.mark.parametrize(
    "data, line, column, words",
    [
        ("t;U;I\n0;3,9;0\n1;x;-1\n", 3, "U", "text 'x'"),
        ("t;U;I\n0;3,9;0\n1;3,8\n", 3, None, "truncated"),
    ],
)
def test_data_mistakes_name_the_data_file_line_and_column(tmp_path, data, line, column, words):
    d, m = _write(tmp_path, BASE, data)
    with pytest.raises(InputFileError) as err:
        read_mapped(d, m)
    assert err.value.file == str(d) and err.value.line == line and err.value.column == column
    assert words in err.value.message


def test_wrong_delimiter_shows_what_the_header_split_into(tmp_path):
    d, m = _write(tmp_path, BASE, "t,U,I\n0,3.9,0\n")
    with pytest.raises(InputFileError) as err:
        read_mapped(d, m)
    assert err.value.file == str(m) and "split at ';'" in err.value.message and "'t,U,I'" in err.value.message


def test_time_formats_hours_hms_and_datetime(tmp_path):
    mapping = ("columns:\n  test_time_s: {column: t, format: hours}\n  voltage_V: U\n  current_A: {column: I, "
               "unit: mA}\n")
    d, m = _write(tmp_path, mapping, "t,U,I\n0,3.9,0\n0.5,3.8,-1500\n")
    ts = read_mapped(d, m)
    assert ts.data["test_time_s"].to_list() == [0.0, 1800.0] and ts.data["current_A"].to_list() == [0.0, -1.5]

    d, m = _write(tmp_path, mapping.replace("format: hours", 'format: "hh:mm:ss"'), "t,U,I\n0:00:00,3.9,0\n"
                  "26:00:01.5,3.8,-1500\n")
    assert read_mapped(d, m).data["test_time_s"].to_list() == [0.0, 93601.5]
    d.write_text("t,U,I\n0:00:00,3.9,0\n1 day,3.8,-1500\n")
    with pytest.raises(InputFileError, match="hh:mm:ss") as err:
        read_mapped(d, m)
    assert err.value.line == 3 and err.value.column == "t"

    dt_map = mapping.replace("format: hours", 'format: datetime, datetime_format: "%Y-%m-%d %H:%M:%S"')
    d, m = _write(tmp_path, dt_map, "t,U,I\n2024-03-01 10:00:00,3.9,0\n2024-03-01 10:01:30,3.8,-1500\n")
    ts = read_mapped(d, m)
    assert ts.data["test_time_s"].to_list() == [0.0, 90.0]
    assert str(ts.data["datetime"][1]) == "2024-03-01 10:01:30+00:00"
    d.write_text("t,U,I\n2024-03-01 10:00:00,3.9,0\n01.03.2024 10:01,3.8,-1500\n")
    with pytest.raises(InputFileError, match="does not match") as err:
        read_mapped(d, m)
    assert err.value.line == 3
