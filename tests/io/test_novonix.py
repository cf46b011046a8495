from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import shared

from releaf.errors import InputFileError
from releaf.io import detect, read

FIXTURE = Path(__file__).parents[1] / "fixtures" / "novonix" / "test_Nova_Form-CH01-01_head200.csv"
FULL = ("cycler-formats", "beep-TRI-AMDD", "test_Nova_Form-CH01-01_short.csv")
HEADER_LINE = 58  # 1-based: '[Data]' is line 57


def _raw_rows(path: Path) -> list[dict[str, str]]:
    """Independent parse: csv module unquotes each line (one field), then a second csv pass splits it."""
    with path.open(newline="", encoding="utf-8") as fh:
        lines = [row[0] if row else "" for row in csv.reader(fh)]
    start = lines.index("[Data]") + 1
    return list(csv.DictReader(lines[start:]))


@pytest.mark.parametrize("which", ["fixture", "full"])
def test_values_match_an_independent_parse(which):
    path = FIXTURE if which == "fixture" else shared(*FULL)
    ts = read(path)
    rows = _raw_rows(path)
    d = ts.data
    assert ts.meta.format == "novonix" and ts.meta.vendor == "Novonix"
    assert d.height == len(rows) == (200 if which == "fixture" else 3942)
    np.testing.assert_allclose(d["test_time_s"].to_numpy(), [3600 * float(r["Run Time (h)"]) for r in rows])
    np.testing.assert_allclose(d["voltage_V"].to_numpy(), [float(r["Potential (V)"]) for r in rows])
    np.testing.assert_allclose(d["current_A"].to_numpy(), [float(r["Current (A)"]) for r in rows])
    np.testing.assert_allclose(d["temperature_C"].to_numpy(), [float(r["Temperature (°C)"]) for r in rows])
    assert d["step_index"].to_list() == [int(r["Step Number"]) for r in rows]
    assert d["cycle_index"].to_list() == [int(r["Cycle Number"]) for r in rows]
    assert d["vendor_step_type"].to_list() == [int(r["Step Type"]) for r in rows]
    # no discharge in this formation file: the vendor counters are the file's, unchanged
    np.testing.assert_allclose(d["vendor_capacity_Ah"].to_numpy(), [float(r["Capacity (Ah)"]) for r in rows])
    first = datetime.strptime(rows[0]["Date and Time"], "%Y-%m-%d %I:%M:%S %p")
    last = datetime.strptime(rows[-1]["Date and Time"], "%Y-%m-%d %I:%M:%S %p")
    assert d["datetime"][0].replace(tzinfo=None) == first and d["datetime"][-1].replace(tzinfo=None) == last


def test_full_file_sign_step_types_and_summary():
    ts = read(shared(*FULL))
    d = ts.data
    # the protocol's charges (codes 1 CC, 7 CC part and 8 CV part of a CC-CV) all carry positive current
    charging = d.filter(d["vendor_step_type"].is_in([1, 7, 8]) & (d["current_A"].abs() > 1e-3))
    assert charging.height > 2900 and charging["current_A"].min() > 0
    assert set(d.filter(d["vendor_step_type"].is_in([1, 7, 8]))["step_type"]) == {"charge"}
    assert set(d.filter(d["vendor_step_type"] == 0)["step_type"]) == {"rest"}
    # voltage rises over the CC charge of step 3
    step3 = d.filter(d["step_index"] == 3)["voltage_V"]
    assert step3[-1] > step3[0] + 1.5
    assert ts.meta.channel == "01"
    assert ts.meta.header["Capacity (Ah)"] == "0.24" and ts.meta.header["Protocol"].endswith(".pro1")
    assert "'Run Time (h)' x 3600 -> s" in ts.meta.conversions


def test_unquoted_export_reads_the_same(tmp_path):
    text = FIXTURE.read_text(encoding="utf-8").split("\n")
    data_at = text.index("[Data]")
    plain = text[: data_at + 1] + [ln[1:-1] if ln.startswith('"') else ln for ln in text[data_at + 1:]]
    src = tmp_path / "plain.csv"
    src.write_text("\n".join(plain), encoding="utf-8")
    a, b = read(FIXTURE).data, read(src).data
    assert a.equals(b)


def test_discharge_counter_is_negative_and_a_mislabelled_code_follows_the_current(tmp_path):
    body = ("[Summary]\nNovonix HPC data file\nNovonix\nChannel: 07\n[End Summary]\n[Data]\n"
            "Date and Time,Cycle Number,Step Type,Run Time (h),Step Time (h),Current (A),Potential (V),"
            "Capacity (Ah),Temperature (°C),Energy (Wh),Step Number\n"
            "2022-04-11 10:58:07 AM,1,0,0,0,0,4.1,0,25,0,1\n"
            "2022-04-11 10:58:08 AM,1,2,0.001,0.001,-1.5,4.0,0.0015,25,0.006,2\n"
            "2022-04-11 10:58:09 AM,1,1,0.002,0.002,-1.5,3.9,0.0030,25,0.012,2\n"
            "2022-04-11 10:58:10 AM,1,8,0.003,0.000,0.0004,4.2,0.0031,25,0.013,3\n")
    src = tmp_path / "nova.csv"
    src.write_text(body, encoding="utf-8")
    d = read(src).data
    assert d["step_type"].to_list() == ["rest", "discharge", "discharge", "charge"]
    np.testing.assert_allclose(d["vendor_capacity_Ah"].to_numpy(), [0, -0.0015, -0.003, 0.0031])
    np.testing.assert_allclose(d["test_time_s"].to_numpy(), [0, 3.6, 7.2, 10.8])


def test_truncated_file_names_the_last_line(tmp_path):
    data = FIXTURE.read_bytes()
    bad = tmp_path / "cut.csv"
    bad.write_bytes(data[:-60])
    with pytest.raises(InputFileError) as err:
        read(bad)
    assert err.value.line == data[:-60].count(b"\n") + 1 and "truncated" in str(err.value)


def test_non_number_names_line_and_column(tmp_path):
    lines = FIXTURE.read_text(encoding="utf-8").split("\n")
    k = HEADER_LINE + 10  # 0-based index of file line HEADER_LINE + 11
    fields = lines[k].split(",")
    fields[6] = "3.4x"  # Potential (V)
    lines[k] = ",".join(fields)
    bad = tmp_path / "nan.csv"
    bad.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(InputFileError) as err:
        read(bad)
    assert (err.value.line, err.value.column) == (HEADER_LINE + 11, "Potential (V)")


def test_marker_without_header_and_missing_column(tmp_path):
    text = FIXTURE.read_text(encoding="utf-8")
    cut = tmp_path / "marker-only.csv"
    cut.write_text(text[: text.index("[Data]") + len("[Data]\n")], encoding="utf-8")
    with pytest.raises(InputFileError, match="no header after it"):
        read(cut, format="novonix")
    renamed = tmp_path / "no-current.csv"
    renamed.write_text(text.replace("Current (A)", "Strom (A)", 1), encoding="utf-8")
    with pytest.raises(InputFileError) as err:
        read(renamed, format="novonix")
    assert err.value.line == HEADER_LINE


def test_detection_is_by_content_not_name(tmp_path):
    renamed = tmp_path / "CH8_Metadata.csv"
    renamed.write_bytes(FIXTURE.read_bytes())
    assert detect(renamed) == "novonix"
