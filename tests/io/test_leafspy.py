"""LeafSpy Pro logs and hand-copied BMS histories, checked against an independent parse with the csv module."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SHARED_DATA, shared

from releaf.errors import InputFileError
from releaf.io import reader_modules
from releaf.io.leafspy import read_bms_history, read_leafspy, sniff_leafspy
from releaf.io.textfile import head_of

FIXTURES = REPO / "tests" / "fixtures" / "leafspy" / "2020-leaf-splus-62kwh"
CAR_A = "2013-leaf-24kwh-a"
LOGS = [(CAR_A, n) for n in (
    "Log_XXXXXXXX_170330_24CA1_1.csv", "Log_XXXXXXXX_170415_24CA1_2.csv", "Log_XXXXXXXX_170609_FC8E8.csv",
    "Log_XXXXXXXX_170903_01133.csv", "Log_XXXXXXXX_170909_01133.csv", "Log_XXXXXXXX_171030_01133.csv",
    "Log_XXXXXXXX_180914_24CA1.csv", "Log_XXXXXXXX_181101_24CA1.csv", "Log_XXXXXXXX_190128_6dfa0.csv")]
LOGS += [("2020-aze0-30kwh-uk", "Log_XXXXXXXX_200130_a7c06.csv")]
LOGS += [("2020-leaf-splus-62kwh", trip, f"day{d}_clean.csv")
         for trip in ("2022_Denver_to_Portland", "2022_Portland_to_Denver") for d in (1, 2, 3)]
HISTORIES = ["battery-2013-12--2019-10.csv", "battery-2019-10--2020-10.csv", "battery-2020-10--2021-10.csv",
             "battery-2021-10--2022-11.csv"]
# positions (0-based) in the full layout, from the data catalogue; the 62 kWh logs lack Lat, Long and VIN
FULL = {"SOC": 6, "AHr": 7, "Pack Volts": 8, "Pack Amps": 9, "CP1": 23, "Hx": 121, "SOH": 131, "epoch": 134}
NO_GPS = {"SOC": 4, "AHr": 5, "Pack Volts": 6, "Pack Amps": 7, "CP1": 21, "Hx": 118, "SOH": 128, "epoch": 131}


def raw_rows(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """Header (or None) and rows of fields, by the csv module (no quoting in these files)."""
    text = path.read_bytes().decode("latin-1")
    rows = list(csv.reader(io.StringIO(text), quoting=csv.QUOTE_NONE))
    if rows[0][0] == "Date/Time":
        return rows[0], rows[1:]
    return None, rows


@pytest.mark.parametrize("parts", LOGS, ids=lambda p: "/".join(p[-2:]))
def test_every_log_parses_and_matches_the_raw_text(parts):
    path = shared("leafspy", *parts)
    log = read_leafspy(path)
    header, rows = raw_rows(path)
    d = log.data
    # one row per data line: lines minus header minus dropped (a repaired line gives one row)
    assert d.height == len(rows) - len(log.meta.dropped)
    assert log.meta.dropped == ()
    glued = path.name == "Log_XXXXXXXX_181101_24CA1.csv"
    assert [r["line"] for r in log.meta.repaired] == ([45] if glued else [])
    whole = [(i + (2 if header else 1), r) for i, r in enumerate(rows) if len(r) < 200]
    assert d["line_no"].to_list() == sorted([n for n, _ in whole] + ([45] if glued else []))
    pos = NO_GPS if header and "Lat" not in header else FULL
    by_line = {n: r for n, r in whole}
    sample = d.filter(d["line_no"].is_in(list(by_line)))
    raw = [by_line[n] for n in sample["line_no"]]
    col = {k: np.array([float(r[i]) for r in raw]) for k, i in pos.items() if k != "CP1"}
    assert np.allclose(sample["soc_pct"].to_numpy() * 10000, col["SOC"], atol=1e-6)  # SOC x 10000
    assert np.allclose(sample["ahr_Ah"].to_numpy() * 10000, col["AHr"], atol=1e-6)  # AHr x 10000
    assert np.allclose(sample["pack_voltage_V"].to_numpy(), col["Pack Volts"])
    assert np.allclose(sample["pack_current_A"].to_numpy(), -col["Pack Amps"])  # LeafSpy + = discharge
    assert np.allclose(sample["epoch_s"].to_numpy(), col["epoch"])
    assert np.allclose(sample["hx_pct"].to_numpy(), col["Hx"], atol=1e-4)
    assert np.allclose(sample["soh_pct"].to_numpy(), col["SOH"])
    cp = np.array([[float(x) for x in r[pos["CP1"]:pos["CP1"] + 96]] for r in raw])
    assert np.array_equal(sample.select([f"cp_mV_{k}" for k in range(1, 97)]).to_numpy(), np.abs(cp))
    # negative cell-pair voltage = balancing shunt active: abs() into the voltage, counted in the mask
    mask = log.shunt_mask[np.isin(d["line_no"].to_numpy(), sample["line_no"].to_numpy())]
    assert np.array_equal(mask, cp < 0)
    assert (d["shunt_count"].to_numpy() == log.shunt_mask.sum(axis=1)).all()
    assert 0 <= d["soc_pct"].min() and d["soc_pct"].max() <= 100
    assert d["datetime"].dt.year().min() >= 2017


def test_glued_records_on_line_45_are_split_and_reported():
    path = shared("leafspy", CAR_A, "Log_XXXXXXXX_181101_24CA1.csv")
    line45 = path.read_text().splitlines()[44].split(",")
    assert len(line45) == 246 and line45[86] == "-402411/01/2018 13:27:46"
    log = read_leafspy(path)
    (fix,) = log.meta.repaired
    assert fix["line"] == 45 and fix["fields"] == 246 and "11/01/2018 13:27:46" in fix["detail"]
    row = log.data.filter(log.data["line_no"] == 45)
    assert row.height == 1 and row["date_text"][0] == "11/01/2018 13:27:46"
    kept = ["11/01/2018 13:27:46"] + line45[87:]  # the whole record after the glued date
    assert row["soc_pct"][0] * 10000 == pytest.approx(float(kept[6]))
    assert row["cp_mV_96"][0] == abs(float(kept[118]))
    assert row["epoch_s"][0] == float(kept[134])
    assert log.data["line_no"].is_sorted()
    with pytest.raises(InputFileError) as err:
        read_leafspy(path, strict=True)
    assert err.value.line == 45


def test_headerless_crlf_log_uses_the_155_field_layout():
    path = shared("leafspy", CAR_A, "Log_XXXXXXXX_170415_24CA1_2.csv")
    assert b"\r\n" in path.read_bytes() and not path.read_text().startswith("Date/Time")
    log = read_leafspy(path)
    assert log.meta.variant.startswith("headerless") and log.meta.line_ending == "CRLF"
    assert log.meta.header_fields is None and log.data.height == 11
    assert log.data["line_no"][0] == 1 and log.data["date_text"][0] == "04/15/2017 10:10:26"
    assert log.data["soc_pct"][0] == pytest.approx(97.0308)
    assert log.data["pack_temperature_C_3"].null_count() == 11  # 'none'


def test_155_name_header_with_158_field_rows():
    path = shared("leafspy", CAR_A, "Log_XXXXXXXX_170903_01133.csv")
    log = read_leafspy(path)
    assert log.meta.header_fields == 155 and log.meta.field_counts == {155: 100, 158: 2036}
    header, rows = raw_rows(path)
    first158 = next(i for i, r in enumerate(rows) if len(r) == 158)
    row = log.data.row(first158, named=True)
    assert row["line_no"] == first158 + 2
    assert row["epoch_s"] == float(rows[first158][134]) and row["cp_mV_96"] == abs(float(rows[first158][118]))
    # 'Hx' printed as 78.48999999999999 by the app is rounded
    assert 78.49 in log.data["hx_pct"].to_list()


def test_62kwh_logs_map_columns_by_name_and_keep_float_epoch():
    path = FIXTURES / "day1_clean.csv"  # bundled (MIT), runs without the shared folder
    log = read_leafspy(path)
    header, rows = raw_rows(path)
    assert "Lat" not in header and header.count("Debug") == 2 and len(header) == 158
    assert "Lat/Long/VIN removed" in log.meta.variant and log.meta.vin is None
    assert log.data.height == len(rows) == 112
    r = rows[0]
    assert log.data["soc_pct"][0] == pytest.approx(float(r[NO_GPS["SOC"]]) / 10000)
    assert log.data["ahr_Ah"][0] == pytest.approx(168.1444)
    assert log.data["hx_pct"][0] == float(r[NO_GPS["Hx"]]) and log.data["soh_pct"][0] == float(r[NO_GPS["SOH"]])
    assert log.data["epoch_s"][0] == pytest.approx(1662991713.477)
    assert str(log.data["datetime"][0]).startswith("2022-09-12 14:08:33.477")


def test_empty_lat_long_and_none_temperatures_are_fine():
    log = read_leafspy(shared("leafspy", CAR_A, "Log_XXXXXXXX_171030_01133.csv"))
    assert log.data.height == 878 and log.data["pack_temperature_C_1"].null_count() == 0


def test_without_epoch_times_the_date_text_is_read(tmp_path):
    """A log whose ``epoch time`` is empty takes its time from ``Date/Time`` (``releaf.io.datetimes`` formats), as
    the phone's local time; it keeps the spacing of the epoch times."""
    lines = (FIXTURES / "day1_clean.csv").read_text().split("\n")
    k = lines[0].split(",").index("epoch time")
    blank = [lines[0]] + [",".join("" if i == k else f for i, f in enumerate(ln.split(","))) for ln in lines[1:] if ln]
    log, with_epoch = read_leafspy(_copy(tmp_path, "\n".join(blank) + "\n")), read_leafspy(FIXTURES / "day1_clean.csv")
    assert log.meta.datetime_source.startswith("Date/Time (%m/%d/%Y %H:%M:%S, phone local time")
    assert str(log.data["datetime"][0]) == "2022-09-12 08:08:33+00:00"
    np.testing.assert_allclose(np.diff(log.data["epoch_s"].to_numpy()), np.diff(with_epoch.data["epoch_s"].to_numpy()),
                               atol=1.0)


def _copy(tmp_path, text: str, name="bad.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_errors_name_file_line_and_column(tmp_path):
    text = (FIXTURES / "day2_clean.csv").read_text()
    lines = text.split("\n")
    fields = lines[5].split(",")
    fields[4] = "n/a?"  # SOC
    bad = _copy(tmp_path, "\n".join(lines[:5] + [",".join(fields)] + lines[6:]))
    with pytest.raises(InputFileError) as err:
        read_leafspy(bad)
    assert err.value.line == 6 and err.value.column == "SOC" and "bad.csv" in str(err.value)
    # a missing cell-pair column
    header = lines[0].replace(",CP50,", ",CPX,")
    with pytest.raises(InputFileError) as err:
        read_leafspy(_copy(tmp_path, "\n".join([header] + lines[1:])))
    assert err.value.column == "CP50"
    # wrong delimiter
    with pytest.raises(InputFileError, match="not a LeafSpy log"):
        read_leafspy(_copy(tmp_path, text.replace(",", ";")))
    # empty file
    with pytest.raises(InputFileError, match="empty"):
        read_leafspy(_copy(tmp_path, ""))


def test_truncated_last_line_is_dropped_and_reported_or_refused_when_strict(tmp_path):
    text = (FIXTURES / "day2_clean.csv").read_text()
    cut = _copy(tmp_path, text[: len(text) - 300])  # the last record loses its tail
    log = read_leafspy(cut)
    n_lines = len(cut.read_text().splitlines())
    assert [d["line"] for d in log.meta.dropped] == [n_lines]
    assert log.data.height == n_lines - 1 - 1
    with pytest.raises(InputFileError) as err:
        read_leafspy(cut, strict=True)
    assert err.value.line == n_lines


def test_bms_histories_read_and_merge():
    from releaf.intake import merge_bms_history

    paths = [shared("leafspy", "2013-aze0-24kwh-b", n) for n in HISTORIES]
    assert "A\u22c5h" in paths[0].read_text(encoding="utf-8")
    hists = [read_bms_history(p) for p in paths]
    raw = [list(csv.DictReader(p.open(encoding="utf-8"))) for p in paths]
    assert [h.data.height for h in hists] == [len(r) for r in raw]
    first = hists[0].data.row(0, named=True)
    assert str(first["date"]) == "2013-12-01" and first["ahr_Ah"] is None and first["soh_pct"] == 100
    last = raw[-1][-1]
    row = hists[-1].data.row(-1, named=True)
    assert row["ahr_Ah"] == float(last["A\u22c5h"]) and row["l1l2_count"] == int(last["Type 1,2 charges"])
    merged, repeated = merge_bms_history(hists)
    dates = {r["Date"] for rows in raw for r in rows}
    assert merged.height == len(dates) and repeated == sum(map(len, raw)) - len(dates)
    assert merged["date"].is_sorted()


def test_sniffer_claims_leafspy_files_only():
    for parts in LOGS:
        path = SHARED_DATA.joinpath("leafspy", *parts)
        if path.exists():
            assert sniff_leafspy(head_of(path)) == "leafspy-log"
            # the cycler readers must not claim a LeafSpy log
            assert [m.__name__ for m in reader_modules() if m.sniff(head_of(path))] == []
    for name in HISTORIES:
        path = SHARED_DATA / "leafspy" / "2013-aze0-24kwh-b" / name
        if path.exists():
            assert sniff_leafspy(head_of(path)) == "leafspy-bms-history"
    others = [p for d in ("cycler-formats", "ornl-leaf") for p in sorted((SHARED_DATA / d).rglob("*")) if p.is_file()]
    if not others:
        pytest.skip("shared data not present")
    assert [p.name for p in others if sniff_leafspy(head_of(p))] == []
