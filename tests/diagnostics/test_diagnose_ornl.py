"""The ORNL module-string discharges, diagnosed, against an independent reading of the raw Bitrode file.

The reference values here are computed in the test from the raw CSV with the standard library (not with
releaf's reader), and checked against the cycler's own Amp-Hours / Watt-Hours counters: two independent sources.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import MODULE_FILES

from releaf.diagnostics import diagnose
from releaf.io import read
from releaf.parameters import LEAF_MODULE


def raw_module(path):
    """Rows of a VisuaLCN module file as floats, parsed by hand (header on line 18, trailer dropped)."""
    lines = path.read_text().splitlines()
    header = [h.strip() for h in lines[17].split(",")]
    rows = [r for r in csv.reader(lines[18:]) if r and not r[0].startswith("Total Number")]

    def col(name):
        k = header.index(name)
        return np.array([float(r[k]) for r in rows])

    return {name: col(name) for name in (
        "Total Time", "Step", "Current", "Voltage", "Amp-Hours", "Watt-Hours",
        *(f"Cell Voltage A{k}" for k in range(1, 7)),
    )}


def independent(path):
    raw = raw_module(path)
    t, step, i, v = raw["Total Time"], raw["Step"], raw["Current"], raw["Voltage"]
    on = np.flatnonzero(step == 2)  # the CC discharge step
    first, last = on[0], on[-1]
    # held (right-rectangle) integration from the last rest sample: an integration rule different from releaf's
    seg = slice(first - 1, last + 1)
    dt = np.diff(t[seg])
    capacity = -np.sum(i[first : last + 1] * dt) / 3600
    energy = -np.sum((i * v)[first : last + 1] * dt) / 3600
    ends = np.array([raw[f"Cell Voltage A{k}"][last] for k in range(1, 7)])
    di = i[first] - i[first - 1]
    group_r0 = np.array([(raw[f"Cell Voltage A{k}"][first] - raw[f"Cell Voltage A{k}"][first - 1]) / di
                         for k in range(1, 7)]) * 1000
    return {
        "capacity_Ah": capacity, "energy_Wh": energy, "vendor_Ah": -raw["Amp-Hours"][last],
        "vendor_Wh": -raw["Watt-Hours"][last], "ends": ends, "weakest": int(np.argmin(ends)) + 1,
        "group_r0": group_r0, "string_r0": (v[first] - v[first - 1]) / di * 1000,
    }


@pytest.fixture(scope="module", params=sorted(MODULE_FILES))
def case(request):
    path = MODULE_FILES[request.param]
    return diagnose(read(path), LEAF_MODULE), independent(path)


def test_capacity_matches_independent_integral_and_cycler_counter(case):
    d, ref = case
    assert d.capacity_Ah == pytest.approx(ref["capacity_Ah"], rel=2e-3)
    assert d.capacity_Ah == pytest.approx(ref["vendor_Ah"], rel=2e-3)
    assert d.soh_pct == pytest.approx(100 * ref["capacity_Ah"] / 65.0, rel=2e-3)


def test_energy_matches_independent_integral_and_cycler_counter(case):
    d, ref = case
    assert d.energy_Wh == pytest.approx(ref["energy_Wh"], rel=2e-3)
    assert d.energy_Wh == pytest.approx(ref["vendor_Wh"], rel=5e-3)


def test_group_end_voltages_resistances_and_limiting_group(case):
    d, ref = case
    assert d.series_groups == 6
    np.testing.assert_allclose([g.end_voltage_V for g in d.groups], ref["ends"], atol=1e-9)
    np.testing.assert_allclose([g.r0_mOhm for g in d.groups], ref["group_r0"], rtol=1e-9)
    assert d.r0_mOhm == pytest.approx(ref["string_r0"], rel=1e-9)
    assert d.weakest_group == ref["weakest"]
    # the limiting group ends at the 3.0 V cut-off; the string capacity is its capacity, the others hold more
    limiting = d.groups[d.weakest_group - 1]
    assert limiting.end_voltage_V == pytest.approx(3.0, abs=0.01)
    assert limiting.capacity_Ah == d.capacity_Ah
    assert all(g.capacity_Ah > d.capacity_Ah for g in d.groups if g.group != d.weakest_group)


def test_rate_capability_energy_falls_with_c_rate():
    energies = [diagnose(read(MODULE_FILES[k]), LEAF_MODULE).energy_Wh for k in ("0_3c", "1_0c", "2_0c", "2_75c")]
    assert energies == sorted(energies, reverse=True)


def _fast_test(seconds_before: float = 120.0):
    """The fast pulse protocol on a Leaf module simulated with the 2-RC fit of the ORNL cell (2s2p), after a rest."""
    import polars as pl

    from releaf.models.ecm import simulate
    from releaf.models.ecm_fit import load_fitted_ecm
    from releaf.protocols import fast_pulse as fast_protocol
    from releaf.schema import SourceMeta, TimeSeries

    t, i = fast_protocol.current_profile(65.0)
    t = np.concatenate((np.arange(0.0, seconds_before, 1.0), t + seconds_before))
    i = np.concatenate((np.zeros(int(seconds_before)), i))
    v = simulate(load_fitted_ecm("leaf_cell_ecm2_25C").scaled(2, 2), t, i, soc0_pct=50.0)["voltage_V"]
    meta = SourceMeta(path="fast-test.csv", sha256="0" * 64, format="test", vendor="simulated")
    return TimeSeries(pl.DataFrame({"test_time_s": t, "voltage_V": v, "current_A": i}), meta)


def test_fast_pulse_window_is_found_and_estimated_or_refused_with_reasons():
    from releaf.diagnostics.diagnose import fast_test_window

    ts = _fast_test()
    window = fast_test_window(ts, 65.0)
    assert window is not None
    span = window.data["test_time_s"]
    assert span[0] == pytest.approx(120.0) and span[-1] - span[0] <= 60.0
    d = diagnose(ts, LEAF_MODULE)
    # no full discharge in the file: the SOH comes from the estimator, with its interval, inside its domain
    assert d.soh_estimate is not None and d.ood is False
    assert d.soh_method == "fast-pulse" and d.soh_interval_pct[0] <= d.soh_pct <= d.soh_interval_pct[1]
    # the simulated module is two ORNL cells of 30.5 Ah (93.9 % of 65 Ah): inside the 90 % interval
    assert d.soh_interval_pct[0] <= 93.9 <= d.soh_interval_pct[1]


def test_fast_pulse_estimate_is_refused_outside_the_models_domain():
    ts = _fast_test()
    v = ts.data["voltage_V"]
    scaled = ts.with_data(ts.data.with_columns(voltage_V=v[0] + (v - v[0]) * 6))  # every pulse response x 6
    d = diagnose(scaled, LEAF_MODULE)
    assert d.ood is True and d.soh_pct is None and d.soh_method is None
    assert any("refused" in w for w in d.warnings)


def test_fast_pulse_window_the_estimator_cannot_read_is_a_warning():
    import dataclasses

    ts = _fast_test()
    half = ts.with_data(ts.data.with_columns(current_A=ts.data["current_A"] * 0.5))  # 0.5C pulses, not 1C
    d = diagnose(half, LEAF_MODULE)
    assert d.soh_estimate is None and d.soh_pct is None
    assert "no fast SOH estimate: pulse 1: expected -1C, found -0.50C" in d.warnings
    # a profile without a fast-SOH model says so instead of borrowing another battery's model
    d = diagnose(ts, dataclasses.replace(LEAF_MODULE, soh_model=None))
    assert d.soh_estimate is None and any("has no fast-SOH model" in w for w in d.warnings)


def test_capacity_soh_is_measured_not_estimated():
    d = diagnose(read(MODULE_FILES["1_0c"]), LEAF_MODULE)
    assert d.soh_method == "capacity" and d.soh_interval_pct is None and d.soh_estimate is None
    assert d.ocv_table == "leaf_cell_ocv_25C" and d.hppc == ()
