"""The generated demo fleet (releaf.sim.fleet) and the ECM table it is built on."""

from __future__ import annotations

import csv
import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

import releaf.io
from releaf import parameters
from releaf.sim import fleet as synth

DATA = Path(__file__).parents[2] / ".." / "shared" / "data"
HPPC = DATA / "ornl-leaf" / "cell-low-current-hppc-25c-2.csv"
SCRIPT = Path(__file__).parents[2] / "scripts" / "fit_leaf_ecm.py"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    out = tmp_path_factory.mktemp("fleet")
    t0 = time.perf_counter()
    manifest = synth.generate_fleet(out, packs=2, modules_per_pack=4, seed=7)
    elapsed = time.perf_counter() - t0
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return out, rows, elapsed


def _arrays(path):
    d = releaf.io.read(path).data
    return {c: d[c].to_numpy() for c in d.columns if c not in ("step_type",)}


def test_small_fleet_is_fast_and_labelled_generated(fleet):
    out, rows, elapsed = fleet
    assert elapsed < 5.0
    assert len(rows) == 8
    assert {r["generated"] for r in rows} == {"true"}
    assert all("(generated)" in r["pack_model"] and r["pack_vin"].startswith("GEN") for r in rows)
    assert [int(r["module_position"]) for r in rows] == [1, 2, 3, 4] * 2
    assert "GENERATED" in (out / "README.txt").read_text(encoding="utf-8")


def test_files_parse_as_arbin_with_generated_metadata(fleet):
    out, rows, _ = fleet
    for r in rows:
        ts = releaf.io.read(out / r["file"])
        assert ts.meta.format == "arbin-csv"
        assert ts.meta.header["generated"] == "true" and "NOT a measurement" in ts.meta.header["comment"]
        assert ts.group_columns == ["group_voltage_V_1", "group_voltage_V_2"]
        assert ts.data.height < 3000
        assert abs(ts.data["temperature_C"].mean() - float(r["true_temperature_C"])) < 0.1


def test_deterministic_for_a_seed(fleet, tmp_path):
    out, rows, _ = fleet
    synth.generate_fleet(tmp_path / "again", packs=2, modules_per_pack=4, seed=7)
    synth.generate_fleet(tmp_path / "other", packs=2, modules_per_pack=4, seed=8)
    for name in ["manifest.csv", "README.txt"] + [r["file"] for r in rows]:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    assert (tmp_path / "other" / "manifest.csv").read_bytes() != (out / "manifest.csv").read_bytes()


def test_coulomb_count_to_first_group_cutoff_is_true_capacity(fleet):
    out, rows, _ = fleet
    for r in rows:
        a = _arrays(out / r["file"])
        end = np.flatnonzero(a["step_index"] == 6)[-1]  # the CC discharge stops at the first group's 3.0 V
        groups = np.column_stack([a["group_voltage_V_1"], a["group_voltage_V_2"]])
        assert groups[end].min() == pytest.approx(3.0, abs=5e-3)
        assert int(np.argmin(groups[end])) + 1 == int(r["true_weakest_group"])
        charge_Ah = -np.trapezoid(a["current_A"][: end + 1], a["test_time_s"][: end + 1]) / 3600.0
        assert charge_Ah == pytest.approx(float(r["true_capacity_Ah"]), rel=0.01)
        assert float(r["true_capacity_Ah"]) == pytest.approx(
            min(float(r["true_group_capacity_Ah_1"]), float(r["true_group_capacity_Ah_2"])), rel=1e-6)


def test_group_voltages_sum_to_module_voltage(fleet):
    out, rows, _ = fleet
    for r in rows:
        a = _arrays(out / r["file"])
        diff = a["voltage_V"] - a["group_voltage_V_1"] - a["group_voltage_V_2"]
        assert abs(diff.mean()) < 5e-4 and diff.std() < 2.5e-3 and np.abs(diff).max() < 0.012


def test_pulse_edge_resistance_is_true_r0(fleet):
    out, rows, _ = fleet
    for r in rows:
        a = _arrays(out / r["file"])
        k = np.flatnonzero(a["step_index"] == 4)[0]
        assert a["test_time_s"][k] - a["test_time_s"][k - 1] == pytest.approx(0.1)
        r0_mOhm = 1e3 * (a["voltage_V"][k] - a["voltage_V"][k - 1]) / (a["current_A"][k] - a["current_A"][k - 1])
        assert r0_mOhm == pytest.approx(float(r["true_r0_mOhm"]), rel=0.06)


def test_fleet_distribution_is_plausible():
    fleet = synth.draw_fleet(3, 48, seed=2026)
    soh = np.array([m.soh for m in fleet])
    assert 0.70 < soh.mean() < 0.88 and soh.min() >= 0.45
    # resistance coupled to fade: the most faded modules have the highest resistance scale
    r = np.array([np.mean(m.r_scale) for m in fleet])
    assert np.corrcoef(soh, r)[0, 1] < -0.8


def test_packaged_ecm_table():
    ecm = synth.load_ecm_table()
    assert np.all(np.diff(ecm["soc_pct"]) > 0) and ecm["soc_pct"].size == 10
    for name in ("r0_mOhm", "r1_mOhm", "tau1_s"):
        assert np.all(ecm[name] > 0), name
    assert 1.0 < np.interp(50.0, ecm["soc_pct"], ecm["r0_mOhm"]) < 2.5  # Leaf cell: ~1.6 mOhm
    text = parameters.resource("leaf-24kwh", "leaf_cell_ecm_25C.csv").read_text("utf-8")
    for needle in ("sha256 8b4135978f15", "MIT", "doi:10.5281/zenodo.2580327", "RMSE", "least_squares"):
        assert needle in text


def _packaged_rows():
    text = parameters.resource("leaf-24kwh", "leaf_cell_ecm_25C.csv").read_text("utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return np.array([[float(x) for x in ln.split(",")] for ln in lines[1:]])


@pytest.mark.skipif(not HPPC.is_file(), reason="ORNL data not available (../shared/data)")
def test_ecm_fit_reproduces_packaged_table():
    spec = importlib.util.spec_from_file_location("fit_leaf_ecm", SCRIPT)
    fit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit)
    rows, info = fit.fit_hppc(HPPC)
    fitted = np.array([[r["soc_pct"], r["r0_mOhm"], r["r1_mOhm"], r["tau1_s"]]
                       for r in sorted(rows, key=lambda r: r["soc_pct"])])
    packaged = _packaged_rows()
    assert fitted.shape == packaged.shape
    for j, half_digit in enumerate((0.005, 0.00005, 0.00005, 0.005)):  # the CSV's rounding
        np.testing.assert_allclose(fitted[:, j], packaged[:, j], rtol=0, atol=half_digit * 1.01)
    assert max(r["rmse_mV"] for r in rows if r["soc_pct"] > 10) < 2.0


@pytest.mark.skipif(not HPPC.is_file(), reason="ORNL data not available (../shared/data)")
def test_r0_at_half_soc_matches_plain_pulse_edge():
    """Independent check: dV/dI from the last rest sample to the first pulse sample (0.5 s) at ~50 % SOC."""
    cols = np.genfromtxt(HPPC, delimiter=",", skip_header=1, usecols=(1, 6, 8, 9))
    t, step, i, v = cols.T
    starts = np.flatnonzero((step[1:] == 6) & (step[:-1] != 6)) + 1
    packaged = _packaged_rows()
    level = int(np.argmin(np.abs(packaged[:, 0] - 50.0)))  # the table is ascending, the pulses descend in SOC
    k = starts[::-1][level]
    edge_mOhm = 1e3 * (v[k] - v[k - 1]) / (i[k] - i[k - 1])
    assert 1.4 < edge_mOhm < 1.8
    assert packaged[level, 1] == pytest.approx(edge_mOhm, rel=0.10)
