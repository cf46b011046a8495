"""``step_time_s``: each reader's step time against the file's own column, parsed here independently."""

from __future__ import annotations

import csv
import io as textio
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import MODULE_FILES, shared

from releaf.io import read

FIXTURES = Path(__file__).parents[1] / "fixtures"


def _rows(path: Path, header_starts: str, delimiter: str = ",", encoding: str = "latin-1") -> list[dict]:
    text = path.read_text(encoding=encoding)
    start = text.index(header_starts)
    return list(csv.DictReader(textio.StringIO(text[start:]), delimiter=delimiter))


def _hms(text: str) -> float:
    m = re.fullmatch(r"\s*(?:(\d+)d\s*)?(\d+):(\d+):([\d.]+)\s*", text)
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h) * 3600 + int(mi) * 60 + float(s)


def test_arbin_step_time():
    path = FIXTURES / "arbin" / "FastCharge_000025_CH8.csv"
    expected = [float(r["Step_Time"]) for r in _rows(path, "Data_Point")]
    np.testing.assert_allclose(read(path).data["step_time_s"].to_numpy(), expected, rtol=0, atol=1e-9)


def test_maccor_step_time_from_day_durations():
    path = FIXTURES / "maccor" / "maccor_test_file_4267-66-6519.041"
    expected = [_hms(r["StepTime"]) for r in _rows(path, "Rec#", "\t")]
    got = read(path).data["step_time_s"].to_numpy()
    assert got.size <= len(expected)  # the reader drops repeated EIS lines, none in this file
    np.testing.assert_allclose(got, expected[: got.size], rtol=0, atol=1e-6)
    assert np.max(got) > 0


def test_maccor_step_time_in_seconds():
    path = FIXTURES / "maccor" / "PredictionDiagnostics_000151_test.052"
    expected = [float(r["Step (Sec)"]) for r in _rows(path, "Rec#", "\t")]
    np.testing.assert_allclose(read(path).data["step_time_s"].to_numpy(), expected, rtol=0, atol=1e-9)


def test_neware_csv_step_time_hms():
    path = FIXTURES / "neware" / "neware_uio_rows3301-3900.csv"
    expected = [_hms(r["Time"]) for r in _rows(path, "DataPoint")]
    np.testing.assert_allclose(read(path).data["step_time_s"].to_numpy(), expected, rtol=0, atol=1e-9)


def test_novonix_step_time_hours():
    path = FIXTURES / "novonix" / "test_Nova_Form-CH01-01_head200.csv"
    text = path.read_text(encoding="utf-8").replace('"', "")
    rows = list(csv.DictReader(textio.StringIO(text[text.index("Date and Time"):])))
    expected = [float(r["Step Time (h)"]) * 3600 for r in rows]
    np.testing.assert_allclose(read(path).data["step_time_s"].to_numpy(), expected, rtol=1e-12, atol=1e-9)


def test_pec_step_time_seconds():
    path = FIXTURES / "pec" / "Test25209.csv"
    expected = [float(r["Step Time (Seconds)"]) for r in _rows(path, "Test,Cell")]
    np.testing.assert_allclose(read(path).data["step_time_s"].to_numpy(), expected, rtol=0, atol=1e-9)


def test_bitrode_module_step_time():
    path = MODULE_FILES["1_0c"]
    expected = [float(r["Step time"]) for r in _rows(path, "Total Time")]
    np.testing.assert_allclose(read(path).data["step_time_s"].to_numpy(), expected, rtol=0, atol=1e-9)


def test_bitrode_cell_step_time():
    path = shared("ornl-leaf", "cell-discharge-bitrode-1c.csv")
    rows = list(csv.reader(path.read_text(encoding="latin-1").splitlines()))
    expected = [float(r[7]) for r in rows if r and r[0] in ("No", "Yes")]
    np.testing.assert_allclose(read(path).data["step_time_s"].to_numpy(), expected, rtol=0, atol=1e-9)


def test_bdf_step_time_where_the_counters_restart_at_each_step():
    # BDF has no step time: cellpy's BattMo export writes its counters 0 at every step's first sample
    ts = read(FIXTURES / "bdf" / "batmo_bdf_head1000.csv")
    d = ts.data
    first = np.concatenate(([True], d["step_index"].to_numpy()[1:] != d["step_index"].to_numpy()[:-1]))
    assert (d["step_time_s"].to_numpy()[first] == 0).all()
    assert any("step_time_s" in c for c in ts.meta.conversions)


@pytest.mark.parametrize("name", ["FastCharge_000025_CH8.csv"])
def test_bdf_round_trip_keeps_the_step_time(tmp_path, name):
    from releaf.io.export import write_bdf

    ts = read(FIXTURES / "arbin" / name)
    write_bdf(ts, tmp_path / "out.bdf.csv")
    back = read(tmp_path / "out.bdf.csv")
    np.testing.assert_allclose(back.data["step_time_s"].to_numpy(), ts.data["step_time_s"].to_numpy(), atol=1e-12)
