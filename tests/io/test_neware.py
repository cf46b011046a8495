"""Neware readers: the BTS CSV export and the binary .ndax (NewareNDA), against independent parses."""

from __future__ import annotations

import csv
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import shared

from releaf.errors import InputFileError
from releaf.io import detect, read
from releaf.io.neware import read_neware_csv, total_time_from_step_time

EXCERPT = Path(__file__).parents[1] / "fixtures" / "neware" / "neware_uio_rows3301-3900.csv"


def _hms(text: str) -> float:
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _check_csv_against_raw(path: Path) -> None:
    ts = read(path)
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert ts.meta.format == "neware-csv" and ts.meta.vendor == "Neware"
    assert ts.data.height == len(rows)
    np.testing.assert_array_equal(ts.data["current_A"].to_numpy(), [float(r["Current(A)"]) for r in rows])
    np.testing.assert_array_equal(ts.data["voltage_V"].to_numpy(), [float(r["Voltage(V)"]) for r in rows])
    np.testing.assert_array_equal(ts.data["test_time_s"].to_numpy(), [_hms(r["Cumulative Time"]) for r in rows])
    np.testing.assert_array_equal(ts.data["step_index"].to_numpy(), [int(r["Step Index"]) for r in rows])
    net = [float(r["Chg. Cap.(Ah)"]) - float(r["DChg. Cap.(Ah)"]) for r in rows]
    np.testing.assert_allclose(ts.data["vendor_capacity_Ah"].to_numpy(), net)
    # Neware's sign is releaf's: CC Chg > 0, CC DChg < 0, no conversion
    kinds = {"CC Chg": "charge", "CC DChg": "discharge", "Rest": "rest"}
    assert ts.data["step_type"].to_list() == [kinds[r["Step Type"]] for r in rows]
    charge = ts.data.filter(ts.data["step_type"] == "charge")["current_A"]
    assert (charge > 0).all() and (ts.data.filter(ts.data["step_type"] == "discharge")["current_A"] < 0).all()
    assert not ts.meta.conversions
    # 'Time' restarts at every step; the reader uses 'Cumulative Time'
    step_time = np.array([_hms(r["Time"]) for r in rows])
    assert (np.diff(step_time) < 0).any() and (np.diff(ts.data["test_time_s"].to_numpy()) >= 0).all()
    assert ts.meta.header["start_datetime_local"] == rows[0]["Date"]


def test_csv_excerpt_values_match_the_raw_file():
    _check_csv_against_raw(EXCERPT)


def test_whole_csv_export():
    path = shared("cycler-formats", "cellpy", "neware_uio.csv")
    _check_csv_against_raw(path)
    assert read(path).data.height == 9065


def test_csv_without_cumulative_time_rebuilds_it_from_step_times(tmp_path):
    lines = EXCERPT.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("Cumulative Time")
    out = tmp_path / "no_total.csv"
    out.write_text("\n".join(",".join(f for k, f in enumerate(ln.split(",")) if k != drop) for ln in lines))
    with_total, without = read(EXCERPT), read(out)
    rebuilt, total = without.data["test_time_s"].to_numpy(), with_total.data["test_time_s"].to_numpy()
    # both columns are whole seconds, rounded separately: they may differ by 1 s per step change (2 here)
    np.testing.assert_allclose(rebuilt - rebuilt[0], total - total[0], atol=2.0)
    assert any("rebuilt from the step time" in c for c in without.meta.conversions)


def test_csv_magnitude_only_current_gets_its_sign_from_the_step_type(tmp_path):
    text = EXCERPT.read_text().replace(",-0.", ",0.")
    out = tmp_path / "abs.csv"
    out.write_text(text)
    signed, magnitudes = read(EXCERPT), read(out)
    np.testing.assert_array_equal(magnitudes.data["current_A"].to_numpy(), signed.data["current_A"].to_numpy())
    assert any("sign taken from the step type" in c for c in magnitudes.meta.conversions)


def _set(lines: list[str], k: int, column: str, value: str) -> list[str]:
    at = lines[0].split(",").index(column)
    fields = lines[k].split(",")
    fields[at] = value
    return lines[:k] + [",".join(fields)] + lines[k + 1:]


@pytest.mark.parametrize("mutate, line, column, message", [
    (lambda ls: _set(ls, 50, "Voltage(V)", "abc"), 51, "Voltage(V)", "'abc'"),
    (lambda ls: _set(ls, 70, "Current(A)", ""), 71, "Current(A)", "empty"),
    (lambda ls: ls[:-1] + [",".join(ls[-1].split(",")[:10])], 601, None, "truncated"),
    (lambda ls: _set(ls, 20, "Cumulative Time", "54:1x:00"), 21, "Cumulative Time", "hh:mm:ss"),
    (lambda ls: [ln.replace(",", ";") for ln in ls], 1, None, "not a Neware CSV"),
])
def test_csv_errors_name_line_and_column(tmp_path, mutate, line, column, message):
    out = tmp_path / "bad.csv"
    out.write_text("\n".join(mutate(EXCERPT.read_text().splitlines())))
    with pytest.raises(InputFileError) as err:
        read_neware_csv(out)
    assert err.value.line == line and err.value.column == column and message in err.value.message


def test_csv_missing_current_column(tmp_path):
    out = tmp_path / "nocurrent.csv"
    out.write_text(EXCERPT.read_text().replace("Current(A)", "Strom"))
    with pytest.raises(InputFileError) as err:
        read_neware_csv(out)
    assert err.value.line == 1


def test_total_time_from_step_time():
    import polars as pl

    step_time = pl.Series([0.0, 1.0, 2.0, 0.0, 5.0, 0.0, 1.0])
    step = pl.Series([1, 1, 1, 2, 2, 1, 1])
    assert total_time_from_step_time(step_time, step).to_list() == [0.0, 1.0, 2.0, 2.0, 7.0, 7.0, 8.0]


def test_ndax_against_newareNDA_and_the_raw_aux_file(tmp_path):
    import NewareNDA
    from NewareNDA.NewareNDAx import read_ndc

    path = shared("cycler-formats", "cellpy", "20260302_IFE_BTS85_2_9_8_1.ndax")
    assert detect(path) == "neware-nda"
    ts = read(path)
    ref = NewareNDA.read(str(path), software_cycle_number=False)
    assert ts.data.height == len(ref) == 252951
    np.testing.assert_array_equal(ts.data["voltage_V"].to_numpy(), ref["Voltage"].to_numpy(np.float64))
    np.testing.assert_allclose(ts.data["current_A"].to_numpy(), ref["Current(mA)"].to_numpy(np.float64) * 1e-3)
    # step time restarts per step; the test time is the summed step times, and it follows the wall clock
    assert ts.data["test_time_s"][-1] == 252946.0
    wall = (ref["Timestamp"] - ref["Timestamp"].iloc[0]).dt.total_seconds().to_numpy()
    assert np.abs(ts.data["test_time_s"].to_numpy() - wall).max() < 15  # tester clock drift over 70 h
    assert ts.data["datetime"][0] == datetime.fromisoformat("2026-02-27 10:17:33.977+00:00")
    assert set(ts.data["step_type"].unique()) == {"rest", "charge"}  # 'Control' step at 0 A -> rest
    # the cell thermocouple (TestInfo ChlType 103) is data_AUX_144_3_1.ndc: read it directly
    with zipfile.ZipFile(path) as zf:
        aux = read_ndc(zf.extract("data_AUX_144_3_1.ndc", path=tmp_path))
    np.testing.assert_array_equal(ts.data["temperature_C"].to_numpy(),
                                  aux["?"].to_numpy(np.float64)[:ts.data.height])
    assert 25 < ts.data["temperature_C"].mean() < 28
    assert ts.meta.channel == "2-0-72" and "group_voltage_V_1" not in ts.data.columns
    assert any("ChlType 1122" in c for c in ts.meta.conversions)


def test_truncated_ndax(tmp_path):
    cut = tmp_path / "cut.ndax"
    cut.write_bytes(shared("cycler-formats", "cellpy", "20260302_IFE_BTS85_2_9_8_1.ndax").read_bytes()[:700_000])
    assert detect(cut) == "neware-nda"
    with pytest.raises(InputFileError, match="truncated"):
        read(cut)


def test_damaged_binaries_give_clear_errors(tmp_path):
    fake_nda = tmp_path / "x.bin"
    fake_nda.write_bytes(b"NEWARE" + b"\x00" * 2000)
    assert detect(fake_nda) == "neware-nda"
    with pytest.raises(InputFileError, match="could not be read as a Neware"):
        read(fake_nda)
    fake_ndax = tmp_path / "y.zip"
    with zipfile.ZipFile(fake_ndax, "w") as zf:
        zf.writestr("data.ndc", b"\x00" * 100)
    assert detect(fake_ndax) == "neware-nda"
    with pytest.raises(InputFileError, match="could not be read as a Neware"):
        read(fake_ndax)


MY_FILES = {  # file -> format, for the formats of arbin_res, arbin_excel, biologic, neware
    "20160805_test001_45_cc_01.res": "arbin-res", "20260302_IFE_BTS85_2_9_8_1.ndax": "neware-nda",
    "neware_uio.csv": "neware-csv", "biol.mpr": "biologic-mpr", "col_27_issue_74.mpr": "biologic-mpr",
    "test_loopsnewoutput_MB_CE1_short10k.csv": "biologic-csv",
}


def test_every_sniffer_on_every_shared_file():
    """No file is claimed by two formats; these readers' files are claimed by exactly their format."""
    from conftest import SHARED_DATA

    from releaf.io import reader_modules, textfile

    folders = [SHARED_DATA / "cycler-formats", SHARED_DATA / "ornl-leaf"]
    files = [p for d in folders if d.is_dir() for p in sorted(d.rglob("*")) if p.is_file() and p.stat().st_size]
    if not files:
        pytest.skip("shared data not present")
    for path in files:
        head = textfile.head_of(path)
        claims = [fmt for m in reader_modules() if (fmt := m.sniff(head))]
        assert len(claims) <= 1, (path.name, claims)
        if path.name in MY_FILES:
            assert claims == [MY_FILES[path.name]], path.name
        else:
            assert not set(claims) & set(MY_FILES.values()), (path.name, claims)
