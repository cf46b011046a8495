from __future__ import annotations

import numpy as np
import pytest
from conftest import MODULE_FILES, shared

from releaf.errors import InputFileError
from releaf.io import detect, read


@pytest.mark.parametrize("key", sorted(MODULE_FILES))
def test_module_layout_maps_groups_temperatures_and_drops_the_trailer(key):
    path = MODULE_FILES[key]
    ts = read(path)
    assert ts.meta.format == "bitrode-module" and ts.meta.vendor.startswith("Bitrode")
    assert ts.group_columns == [f"group_voltage_V_{k}" for k in range(1, 7)]
    assert {"temperature_C_1", "temperature_C_2", "temperature_C_3"} <= set(ts.data.columns)
    assert ts.meta.header["Test Name"]  # the metadata block is kept
    # every data line became a row: count them by hand (header on line 18; trailer line not data)
    lines = path.read_text().splitlines()[18:]
    data_lines = [ln for ln in lines if ln.strip() and not ln.startswith("Total Number")]
    assert ts.data.height == len(data_lines)
    # at rest the string voltage is the sum of the six group voltages; the real files show a steady ~75 mV
    # (0.3 %) offset between the cycler's main and auxiliary channels, so the check allows 0.1 V
    d = ts.data
    sum_groups = np.sum([d[c].to_numpy() for c in ts.group_columns], axis=0)
    rest = d["current_A"].abs().to_numpy() < 1
    assert np.max(np.abs(sum_groups[rest] - d["voltage_V"].to_numpy()[rest])) < 0.1
    # current negative on discharge, as in releaf
    assert d["current_A"].min() < -10 and d["current_A"].max() <= 0.1


def test_module_trailer_line_present_in_2c_file():
    assert MODULE_FILES["2_0c"].read_text().rstrip().splitlines()[-1].startswith("Total Number of Data Lines")


@pytest.mark.parametrize("name", ["cell-discharge-bitrode-1c.csv", "cell-low-current-hppc-25c-2.csv",
                                  "cell-cycling-10c-24c-40c.csv", "cell-low-current-hppc-10c.csv"])
def test_cell_layouts_with_and_without_header(name):
    path = shared("ornl-leaf", name)
    ts = read(path)
    assert ts.meta.format == "bitrode-cell"
    first_field = path.read_text().splitlines()[0].split(",")[0]
    expected_rows = len([ln for ln in path.read_text().splitlines() if ln.strip()]) - (first_field == "Exclude")
    assert ts.data.height == expected_rows
    v = ts.data["voltage_V"]
    assert 2.9 < v.min() and v.max() < 4.25


def test_headerless_hppc_file_detected_by_content():
    assert detect(shared("ornl-leaf", "cell-low-current-hppc-10c.csv")) == "bitrode-cell"


def test_truncated_module_file_names_the_line(tmp_path):
    text = MODULE_FILES["1_0c"].read_text()
    bad = tmp_path / "cut.csv"
    bad.write_text(text[: len(text) // 2].rsplit(",", 5)[0])  # cut mid-line
    with pytest.raises(InputFileError) as err:
        read(bad)
    assert err.value.line is not None and "cut.csv" in str(err.value)


def test_non_numeric_current_names_line_and_column(tmp_path):
    lines = MODULE_FILES["1_0c"].read_text().split("\n")
    fields = lines[100].split(",")
    fields[7] = "n/a"
    lines[100] = ",".join(fields)
    bad = tmp_path / "nan.csv"
    bad.write_text("\n".join(lines))
    with pytest.raises(InputFileError) as err:
        read(bad)
    assert err.value.line == 101
    assert "Current" in str(err.value.column)
