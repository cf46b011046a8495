from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, shared

from releaf.errors import InputFileError
from releaf.io import detect, read, reader_modules, textfile

FIXTURES = Path(__file__).parents[1] / "fixtures" / "maccor"
MID_TEST = FIXTURES / "PredictionDiagnostics_000151_test.052"
EIS = FIXTURES / "maccor_test_file_4267-66-6519.041"
MY_FORMATS = {"maccor", "novonix", "pec"}


def _raw_rows(path: Path) -> list[dict[str, str]]:
    """Independent parse: the csv module over the tab-separated lines after the one-line preamble."""
    with path.open(newline="", encoding="latin-1") as fh:
        lines = fh.read().splitlines()[1:]
    return [r for r in csv.DictReader(lines, delimiter="\t") if r["Rec#"]]


def _signed(rows, column):
    sign = {"D": -1.0, "C": 1.0}
    return np.array([sign[r["State"]] * abs(float(r[column])) if r["State"] in sign else float(r[column])
                     for r in rows])


@pytest.mark.parametrize("path", [MID_TEST, "PreDiag_000229_000229_truncated.034"])
def test_values_match_an_independent_parse(path):
    path = path if isinstance(path, Path) else shared("cycler-formats", "beep-TRI-AMDD", path)
    ts = read(path)
    rows = _raw_rows(path)
    d = ts.data
    assert ts.meta.format == "maccor" and ts.meta.vendor == "Maccor"
    assert d.height == len(rows)  # every data line, the trailing blank line of the .052 left out
    np.testing.assert_allclose(d["test_time_s"].to_numpy(), [float(r["Test (Sec)"]) for r in rows])
    np.testing.assert_allclose(d["voltage_V"].to_numpy(), [float(r["Volts"]) for r in rows])
    np.testing.assert_allclose(d["current_A"].to_numpy(), _signed(rows, "Amps"))
    np.testing.assert_allclose(d["vendor_capacity_Ah"].to_numpy(), _signed(rows, "Amp-hr"))
    np.testing.assert_allclose(d["vendor_energy_Wh"].to_numpy(), _signed(rows, "Watt-hr"))
    assert d["step_index"].to_list() == [int(r["Step"]) for r in rows]
    assert d["cycle_index"].to_list() == [int(r["Cyc#"]) for r in rows]
    assert d["vendor_state"].to_list() == [r["State"] for r in rows]
    assert str(d["datetime"][0]).startswith(
        "{2}-{0}-{1} {3}".format(*rows[0]["DPt Time"].replace(" ", "/").split("/")))


def test_prediag_charge_positive_discharge_negative_and_header():
    ts = read(shared("cycler-formats", "beep-TRI-AMDD", "PreDiag_000229_000229_truncated.034"))
    d = ts.data
    assert d.height == 4061
    charge = d.filter(d["step_type"] == "charge")
    discharge = d.filter(d["step_type"] == "discharge")
    assert charge["current_A"].min() > 0 and discharge["current_A"].max() < 0
    assert (d.filter(d["step_type"] == "rest")["current_A"] == 0).all()
    # the preamble line travels with the table; the channel is the extension of the original name (.034)
    assert ts.meta.header["Procedure"] == "PreDiag_000229.000" and ts.meta.header["Comment/Barcode"] == "000229"
    assert ts.meta.channel == "34"
    assert any("sign from State" in c for c in ts.meta.conversions)


def test_mid_test_file_keeps_the_cyclers_test_time():
    ts = read(MID_TEST)
    assert ts.data["test_time_s"][0] == pytest.approx(769267.24)
    assert ts.data.height == 333
    assert (ts.data["step_type"] == "discharge").all() and ts.data["current_A"].max() < -4.8
    assert any("mid-test" in c and "769267.24" in c for c in ts.meta.conversions)


def test_eis_variant_durations_and_repeated_fra_records():
    ts = read(EIS)
    rows = _raw_rows(EIS)
    d = ts.data
    # 74 data lines; 59 FRA lines repeat Rec# 12 with time, voltage, current and step unchanged
    assert len(rows) == 74 and d.height == 15
    assert d["test_time_s"].to_list() == [float(k) for k in range(11)] + [10.0] * 4
    assert d["vendor_state"].to_list() == ["R"] * 11 + ["FRA", "FRA", "P", "O"]
    assert d["step_type"].to_list() == ["rest"] * 11 + ["eis", "eis", "other", "other"]
    assert d["voltage_V"][11] == pytest.approx(float(rows[11]["Volts"]))
    assert any("59 lines repeating the previous Rec#" in c for c in ts.meta.conversions)
    assert ts.meta.units_found["TestTime"] == "d hh:mm:ss"
    assert "Loop1" not in rows[0]


def test_magnitude_only_amps_in_milliamps_and_minutes(tmp_path):
    src = tmp_path / "export.txt"
    src.write_text(
        "Today's Date\t03/28/2022 12:50:27 PM\n\nDate of Test:\t08/23/2021 6:04:18 PM\n\n"
        "Rec#\tCyc#\tStep\tTest (Min)\tStep (Min)\tmAmp-hr\tmWatt-hr\tmAmps\tVolts\tState\tES\tDPt Time\n"
        "1\t0\t1\t0\t0\t0\t0\t0\t3.9\tR\t0\t08/23/2021 6:04:18 PM\n"
        "2\t0\t2\t1\t0\t25\t95\t1500\t3.8\tD\t0\t08/23/2021 6:05:18 PM\n"
        "3\t0\t3\t2\t0\t25\t100\t1500\t3.95\tC\t0\t08/23/2021 6:06:18 PM\n"
    )
    ts = read(src)
    np.testing.assert_allclose(ts.data["current_A"].to_numpy(), [0, -1.5, 1.5])
    np.testing.assert_allclose(ts.data["test_time_s"].to_numpy(), [0, 60, 120])
    np.testing.assert_allclose(ts.data["vendor_capacity_Ah"].to_numpy(), [0, -0.025, 0.025])
    assert str(ts.data["datetime"][1]) == "2021-08-23 18:05:18+00:00"
    assert any("(1 rows changed sign)" in c for c in ts.meta.conversions)
    assert "'mAmps' x 0.001 -> A" in ts.meta.conversions
    assert ts.meta.header == {"Today's Date": "03/28/2022 12:50:27 PM", "Date of Test": "08/23/2021 6:04:18 PM"}


def test_truncated_file_names_the_last_line(tmp_path):
    text = MID_TEST.read_bytes()
    bad = tmp_path / "cut.052"
    bad.write_bytes(text[: len(text) // 2])  # cut mid-line
    n_lines = bad.read_bytes().count(b"\n") + 1
    with pytest.raises(InputFileError) as err:
        read(bad)
    assert err.value.line == n_lines and "truncated" in str(err.value)


def test_non_number_names_line_and_column(tmp_path):
    lines = MID_TEST.read_text().split("\n")
    fields = lines[99].split("\t")
    fields[8] = "n/a"  # Volts
    lines[99] = "\t".join(fields)
    bad = tmp_path / "nan.052"
    bad.write_text("\n".join(lines))
    with pytest.raises(InputFileError) as err:
        read(bad)
    assert (err.value.line, err.value.column) == (100, "Volts")


def test_wrong_delimiter_and_missing_column(tmp_path):
    semicolons = tmp_path / "semi.052"
    semicolons.write_text(MID_TEST.read_text().replace("\t", ";"))
    with pytest.raises(InputFileError) as err:
        read(semicolons, format="maccor")
    assert "Rec#" in str(err.value)
    no_state = tmp_path / "nostate.052"
    no_state.write_text(MID_TEST.read_text().replace("\tState\t", "\tMode\t", 1))
    with pytest.raises(InputFileError) as err:
        read(no_state)
    assert "'State'" in str(err.value) and err.value.line == 2


def test_detection_is_by_content_not_name(tmp_path):
    renamed = tmp_path / "looks-like-arbin_CH8.csv"
    renamed.write_bytes(EIS.read_bytes())
    assert detect(renamed) == "maccor"


def test_every_sniffer_against_every_real_file():
    """Exactly one format claims each Maccor / Novonix / PEC file; these three sniffers claim nothing else."""
    files = []
    for folder in [SHARED_DATA / "ornl-leaf", *sorted((SHARED_DATA / "cycler-formats").glob("*")), FIXTURES.parent]:
        for source in folder.rglob("SOURCE.txt"):  # the catalogued files only, not stray copies left by other runs
            listed = source.read_text(encoding="utf-8", errors="replace")
            files += sorted(p for p in source.parent.iterdir() if p.is_file() and p.name != "SOURCE.txt"
                            and p.name in listed)
    mine = {".034": "maccor", ".052": "maccor", ".041": "maccor", "test_Nova_Form-CH01-01_short.csv": "novonix",
            "test_Nova_Form-CH01-01_head200.csv": "novonix", "Test25209.csv": "pec"}
    checked = 0
    for path in files:
        head = textfile.head_of(path)
        claims = [found for m in reader_modules() if (found := m.sniff(head))]
        expected = mine.get(path.suffix) or mine.get(path.name)
        if expected:
            assert claims == [expected], path
            checked += 1
        else:
            assert not MY_FORMATS & set(claims), path
    assert checked >= (9 if (SHARED_DATA / "cycler-formats").is_dir() else 4)
