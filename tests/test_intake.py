"""Pack pre-screen from LeafSpy logs: structure and plausibility of the results for every car in the data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, shared

from releaf.errors import ConfigError, InputFileError
from releaf.intake import LAYOUTS, heatmap, identify_pack, intake_logs, prescreen, vin_is_real
from releaf.io.leafspy import read_leafspy

FIXTURES = REPO / "tests" / "fixtures" / "leafspy" / "2020-leaf-splus-62kwh"
PNG = b"\x89PNG\r\n\x1a\n"


def _one(paths):
    (report,) = intake_logs(paths)
    json.dumps(report.to_dict(), allow_nan=False)  # the CLI's --json form
    return report


def _check_modules(report, units: int, pairs: int):
    assert len(report.modules) == units
    assert sorted(k for m in report.modules for k in m["cell_pairs"]) == list(range(1, 97))
    assert all(len(m["cell_pairs"]) == pairs for m in report.modules)
    scores = [m["score"] for m in report.inspect_first]
    assert scores == sorted(scores, reverse=True) and len(scores) == 5
    assert all(m["reasons"] for m in report.inspect_first)


def test_24kwh_car_a_all_logs():
    report = _one([shared("leafspy", "2013-leaf-24kwh-a")])
    assert report.layout == "leaf-24kwh" and report.unit == "module" and report.mapping_uncertain
    assert report.grouped_by == "folder"  # the VINs are masked: grouped by folder, not by 'SJNXXXX...'
    _check_modules(report, 48, 2)
    assert len(report.files) == 9 and len(report.history) == 9
    glued = next(f for f in report.files if f["file"].endswith("_181101_24CA1.csv"))
    assert [r["line"] for r in glued["repaired"]] == [45]
    # SOH/Hx/AHr latest = the last row of the latest log, read independently
    path = shared("leafspy", "2013-leaf-24kwh-a", "Log_XXXXXXXX_190128_6dfa0.csv")
    last = list(csv.reader(path.open()))[-1]
    assert report.latest["soh_pct"] == float(last[131]) and report.latest["ahr_Ah"] == pytest.approx(
        float(last[7]) / 1e4)
    assert 0 < report.latest["soh_pct"] <= 110 and 0 < report.latest["hx_pct"] <= 110
    soh = [e["soh_pct"] for e in report.history]
    assert all(0 < s <= 110 for s in soh) and report.soh_trend_pct_per_year < 0  # 2017 -> 2019
    # sag per ampere: a positive, Leaf-plausible module resistance; the modules add up to the pack
    sag = np.array([m["sag_mOhm"] for m in report.modules])
    assert report.pack["sag_samples"] > 100
    assert (sag > 1.0).all() and (sag < 5.0).all()
    assert report.pack["pack_sag_mOhm"] == pytest.approx(sag.sum(), rel=0.05)
    spread = [m["pair_spread_rest_mV"] for m in report.modules]
    assert all(0 <= s < 50 for s in spread)
    assert report.mapping_check["rows"] == report.pack["rest_rows"]


def test_30kwh_car():
    report = _one([shared("leafspy", "2020-aze0-30kwh-uk", "Log_XXXXXXXX_200130_a7c06.csv")])
    assert report.layout == "leaf-30kwh"
    _check_modules(report, 48, 2)
    assert 0 < report.latest["soh_pct"] <= 110
    assert report.latest["ahr_Ah"] > 60  # a 30 kWh pack's AHr scale
    sag = np.array([m["sag_mOhm"] for m in report.modules])
    assert report.pack["sag_samples"] > 10 and (sag > 1.0).all() and (sag < 5.0).all()


def test_62kwh_car_reported_per_cell_pair_and_trips_in_one_folder():
    report = _one([shared("leafspy", "2020-leaf-splus-62kwh")])
    assert report.layout == "leaf-62kwh" and report.unit == "cell_pair"
    _check_modules(report, 96, 1)
    assert len(report.files) == 6
    assert report.pack["sag_samples"] == 0 and any("sag_mOhm unavailable" in w for w in report.warnings)
    assert all(np.isfinite(m["excess_sag_mOhm"]) for m in report.modules)
    assert 0 < report.latest["soh_pct"] <= 110


def test_history_only_pack():
    report = _one([shared("leafspy", "2013-aze0-24kwh-b")])
    assert report.layout == "leaf-24kwh" and report.modules == [] and report.inspect_first == []
    assert len(report.history) == 36  # 40 rows, boundary rows repeated by consecutive files
    assert report.latest["datetime"].date().isoformat() == "2022-12-08"
    assert all(0 < e["soh_pct"] <= 110 for e in report.history)
    with pytest.raises(InputFileError, match="no per-module data"):
        heatmap(report, "/dev/null")


def test_masked_vin_does_not_merge_cars():
    reports = intake_logs([shared("leafspy", "2020-aze0-30kwh-uk"), shared("leafspy", "2013-leaf-24kwh-a")])
    assert [r.layout for r in reports] == ["leaf-24kwh", "leaf-30kwh"]
    assert not vin_is_real("SJNXXXXXXXXXXXXXX") and vin_is_real("1N4AZ0CP5DC412345") and not vin_is_real(None)


def test_heatmap_png(tmp_path):
    for folder in ("2013-leaf-24kwh-a", "2020-leaf-splus-62kwh"):
        report = _one([shared("leafspy", folder)])
        out = heatmap(report, tmp_path / f"{folder}.png")
        data = out.read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    out = heatmap(report, tmp_path / "dev.png", metric="rest_deviation_mV")
    assert out.read_bytes().startswith(PNG)
    with pytest.raises(ConfigError, match="metric"):
        heatmap(report, tmp_path / "x.png", metric="cell_pairs")


def test_prescreen_on_bundled_logs(tmp_path):
    logs = [read_leafspy(FIXTURES / n) for n in ("day2_clean.csv", "day1_clean.csv")]
    report = prescreen(logs, pack_id="trip")
    assert report.layout == "leaf-62kwh" and len(report.history) == 2
    assert report.history[0]["file"] == "day1_clean.csv"  # sorted by time, not by argument order
    assert report.latest["file"] == "day2_clean.csv"
    assert report.pack["rows"] == sum(lg.data.height for lg in logs)
    assert heatmap(report, tmp_path / "h.png").read_bytes().startswith(PNG)


def test_bad_inputs(tmp_path):
    other = tmp_path / "notes.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(InputFileError, match="neither a LeafSpy log"):
        intake_logs([other])
    with pytest.raises(InputFileError, match="not found"):
        intake_logs([tmp_path / "missing.csv"])
    with pytest.raises(InputFileError, match="no LeafSpy log"):
        intake_logs([tmp_path])
    with pytest.raises(InputFileError, match="matches no known Leaf pack"):
        identify_pack(20.0)
    assert {lay.name for lay in LAYOUTS} == {"leaf-24kwh", "leaf-30kwh", "leaf-62kwh"}


VINS = ("1N4AZ0CP5DC412345", "1N4AZ0CP5DC467890")


def _with_vin(src, dst, vin: str | None):
    """A copy of a real log (with a header row) with its VIN column set to ``vin`` (appended where it has none)."""
    header, *rows = src.read_text(encoding="latin-1").splitlines()
    names = header.split(",")
    if "VIN" in names:
        k = names.index("VIN")
        out = [header] + [",".join(f[:k] + [vin or ""] + f[k + 1:]) for f in (r.split(",") for r in rows)]
    else:
        out = [header + ",VIN"] + [f"{r},{vin or ''}" for r in rows]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(out) + "\n", encoding="latin-1")
    return dst


def test_one_pack_per_vin_even_in_one_folder(tmp_path):
    # bundled logs only: two cars' logs side by side in one folder, told apart by their VINs
    day1, day2 = FIXTURES / "day1_clean.csv", FIXTURES / "day2_clean.csv"
    _with_vin(day1, tmp_path / "drop" / "a.csv", VINS[0])
    _with_vin(day2, tmp_path / "drop" / "b.csv", VINS[1])
    _with_vin(day2, tmp_path / "drop" / "c.csv", VINS[0])
    reports = intake_logs([tmp_path / "drop"])
    assert [(r.pack_id, r.grouped_by, len(r.files)) for r in reports] == [(VINS[0], "vin", 2), (VINS[1], "vin", 1)]


def test_fleet_folder_gives_one_pack_per_car(tmp_path):
    a24 = shared("leafspy", "2013-leaf-24kwh-a", "Log_XXXXXXXX_170415_24CA1_2.csv")
    a24b = shared("leafspy", "2013-leaf-24kwh-a", "Log_XXXXXXXX_170330_24CA1_1.csv")
    uk30 = shared("leafspy", "2020-aze0-30kwh-uk", "Log_XXXXXXXX_200130_a7c06.csv")
    fleet = tmp_path / "fleet"
    for src in (a24, a24b):
        (fleet / "car-a").mkdir(parents=True, exist_ok=True)
        (fleet / "car-a" / src.name).write_bytes(src.read_bytes())
    for day in ("day1_clean.csv", "day2_clean.csv"):  # a car folder with one subfolder per trip
        (fleet / "car-e" / f"trip-{day[:4]}").mkdir(parents=True)
        (fleet / "car-e" / f"trip-{day[:4]}" / day).write_bytes((FIXTURES / day).read_bytes())
    (fleet / "mixed").mkdir()  # logs of a 24 and a 30 kWh car dropped in one folder, VINs masked
    (fleet / "mixed" / uk30.name).write_bytes(uk30.read_bytes())
    (fleet / "mixed" / a24.name).write_bytes(a24.read_bytes())
    _with_vin(a24b, fleet / "v1.csv", VINS[0])  # two cars with real VINs, loose in the fleet folder
    _with_vin(a24b, fleet / "v2.csv", VINS[1])
    reports = intake_logs([fleet])
    got = {r.pack_id: (r.grouped_by, r.layout, sorted(Path(f["file"]).name for f in r.files)) for r in reports}
    assert got == {
        VINS[0]: ("vin", "leaf-24kwh", ["v1.csv"]),
        VINS[1]: ("vin", "leaf-24kwh", ["v2.csv"]),
        "car-a": ("folder", "leaf-24kwh", sorted([a24.name, a24b.name])),
        "car-e": ("folder", "leaf-62kwh", ["day1_clean.csv", "day2_clean.csv"]),
        "mixed/leaf-24kwh": ("folder", "leaf-24kwh", [a24.name]),
        "mixed/leaf-30kwh": ("folder", "leaf-30kwh", [uk30.name]),
    }


def test_the_shared_leafspy_folder_is_four_cars():
    reports = intake_logs([shared("leafspy")])
    assert [(r.pack_id, r.layout) for r in reports] == [
        ("2013-aze0-24kwh-b", "leaf-24kwh"), ("2013-leaf-24kwh-a", "leaf-24kwh"),
        ("2020-aze0-30kwh-uk", "leaf-30kwh"), ("2020-leaf-splus-62kwh", "leaf-62kwh")]
