"""The 2-RC ECM fitted on the ORNL 25 degC HPPC against the measured 1C/2C/3C discharges.

Goals of the issue: voltage RMSE <= 20 mV, capacity error <= 2 %. Where the measured figures meet a goal the
test asserts the goal; where they do not, the test pins the measured figure in a band (it fails if the model
gets better or worse, so the documentation stays true). Nothing is fitted on the discharge files.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from conftest import shared

import releaf.io
from releaf.models import validation


@pytest.fixture(scope="module")
def result():
    return validation.validate_ornl(shared("ornl-leaf").parent)


def _from_full(result, key, c_rate):
    return [d for d in result[key][c_rate] if d.from_full]


def test_every_discharge_is_predicted(result):
    counts = {c: len(result["plain"][c]) for c in (1, 2, 3)}
    assert counts == {1: 4, 2: 5, 3: 5}  # the README's 4/5/5 discharges
    # the 2C and 3C files start inside the first discharge: its start (100 % SOC) is an assumption
    assert [d.from_full for d in result["plain"][2]] == [False, True, True, True, True]
    assert [d.from_full for d in result["plain"][3]] == [False, True, True, True, True]


def test_measured_capacity_matches_the_cycler_counter(result):
    # independent: the Bitrode Capacity(Ah) counter at the last sample of each discharge step
    for c_rate, name in validation.DISCHARGE_FILES.items():
        df = releaf.io.read(shared("ornl-leaf", name)).data
        for d in result["plain"][c_rate]:
            row = df.filter(pl.col("test_time_s") == d.end_s)
            assert abs(row["vendor_capacity_Ah"][0]) == pytest.approx(d.measured_Ah, abs=0.02)


def test_temperature_trend_of_the_fits(result):
    trend = validation.temperature_trend(result["fits"], soc_pct=50.0)
    assert trend["temperature_C"].to_list() == [10.0, 25.0, 40.0]
    r0, rt = trend["r0_mOhm"].to_numpy(), trend["r_total_mOhm"].to_numpy()
    assert r0[0] > r0[1] > r0[2] and rt[0] > rt[1] > rt[2]


def test_rmse_definitions(result):
    # rmse_mV: every loaded sample to the measured cut-off (model continued past its own); the second one only
    # where both voltages are above the cut-off; recomputed here from the stored traces
    for c_rate in (1, 2, 3):
        for d in result["plain"][c_rate]:
            err = d.predicted_V - d.measured_V
            assert d.rmse_mV == pytest.approx(1e3 * np.sqrt(np.mean(err**2)), rel=1e-12)
            both = (d.predicted_V > validation.CUTOFF_V) & (d.measured_V > validation.CUTOFF_V)
            assert d.rmse_both_above_cutoff_mV == pytest.approx(1e3 * np.sqrt(np.mean(err[both] ** 2)), rel=1e-12)
            assert both.sum() > 0.95 * both.size


def test_goals_met_at_1c_and_capacity_at_2c_and_3c(result):
    """The whole-level fit (pulses, 10 A SOC step and relaxation of every HPPC level): measured 1C RMSE
    12.9-13.7 mV, capacity +0.1 to +0.3 %; 2C capacity -0.9 to -1.1 %; 3C capacity +1.4 to +1.8 %."""
    for d in _from_full(result, "plain", 1):
        assert d.rmse_mV <= 20.0 and d.rmse_both_above_cutoff_mV <= 20.0
        assert abs(d.capacity_error_pct) <= 2.0
    for c in (2, 3):
        for d in _from_full(result, "plain", c):
            assert abs(d.capacity_error_pct) <= 2.0


def test_goals_missed_are_the_measured_figures(result):
    """Measured (25 degC model, discharges from full): RMSE 21-23 mV at 2C and 30-33 mV at 3C (both definitions
    within 2 mV). Before the knee the error grows with the rate: the 10-30 A HPPC resistances do not carry to
    61-92 A."""
    rmse = {c: np.mean([d.rmse_mV for d in _from_full(result, "plain", c)]) for c in (1, 2, 3)}
    both = {c: np.mean([d.rmse_both_above_cutoff_mV for d in _from_full(result, "plain", c)]) for c in (1, 2, 3)}
    assert 20.5 < rmse[2] < 24 and 19.5 < both[2] < 23
    assert 27 < rmse[3] < 33 and 26 < both[3] < 32
    early = [np.mean([d.rmse_to_90pct_mV for d in _from_full(result, "plain", c)]) for c in (1, 2, 3)]
    assert early[0] < early[1] < early[2]


def test_fitting_the_soc_steps_is_what_carries_to_high_rates(result):
    # the same validation with the pulses and relaxations only (the SOC step simulated, not fitted): measured
    # 2C 26-29 mV, 3C 41-43 mV, 3C capacity up to +2.1 %
    pulses_only = validation.validate_ornl(shared("ornl-leaf").parent, fit_soc_step=False)
    for c, gain_mV in ((2, 4.0), (3, 9.0)):
        whole = np.mean([d.rmse_mV for d in _from_full(result, "plain", c)])
        old = np.mean([d.rmse_mV for d in _from_full(pulses_only, "plain", c)])
        assert whole < old - gain_mV
    assert max(d.capacity_error_pct for d in _from_full(pulses_only, "plain", 3)) > 2.0
    one_c = [d.rmse_mV for d in _from_full(result, "plain", 1)]
    one_c_old = [d.rmse_mV for d in _from_full(pulses_only, "plain", 1)]
    assert abs(np.mean(one_c) - np.mean(one_c_old)) < 1.0


def test_temperature_correction_at_2c(result):
    # Arrhenius factors (fits at 10/25/40 degC, relative to 25 degC) driven by the mid-cell thermocouple (TC2):
    # measured RMSE 15.0-15.3 vs 21.0-21.9 mV, capacity error -0.4 to -0.6 % vs -0.9 to -1.1 %
    plain = _from_full(result, "plain", 2)
    thermal = _from_full(result, "thermal", 2)
    assert np.mean([d.rmse_mV for d in thermal]) < np.mean([d.rmse_mV for d in plain]) - 3.0
    assert max(abs(d.capacity_error_pct) for d in thermal) < min(abs(d.capacity_error_pct) for d in plain)
    # the 3C .lvm covers only the first discharge (start not recorded): measured +2.7 %, RMSE ~52 mV
    (d3,) = result["thermal"][3]
    assert d3.index == 1 and 2.5 < d3.capacity_error_pct < 4.2 and 45 < d3.rmse_mV < 62


def test_at_25c_the_electrothermal_simulation_is_the_isothermal_one(result):
    # independent of the thermal code path: a measured temperature of exactly 25 degC must give ecm.simulate
    from releaf.models.ecm import simulate

    bv = result["bv_fit"]
    resist = validation.arrhenius_resistances(result["fits"])
    t = np.arange(0.0, 1800.0, 1.0)
    i = np.where((t // 300) % 2 == 0, -60.0, 0.0)
    iso = simulate(bv.params, t, i, soc0_pct=95.0, i0_A=bv.i0_A)["voltage_V"]
    et = validation.simulate_electrothermal(bv.params, resist, t, i, soc0_pct=95.0, i0_A=bv.i0_A,
                                            temperature_C=np.full(t.size, 25.0))["voltage_V"]
    np.testing.assert_allclose(et, iso, atol=1e-9)
    with pytest.raises(ValueError):
        validation.simulate_electrothermal(bv.params, resist, t, i, soc0_pct=95.0)


def test_electrothermal_variant_measured_figures(result):
    """Butler-Volmer + Arrhenius + lumped thermal model (tau and R_th fitted on the 1C thermocouple trace only),
    no measured temperature. Measured, discharges from full: 1C 13.2-13.4 mV, +0.2 to +0.4 %; 2C 16.5-16.8 mV,
    -0.3 to -0.5 % (the 2C goals met); 3C 45.5-55.0 mV, +2.3 to +3.4 % (worse than without heating: the 3C gap
    is not thermal). Predicted temperature within 1.1 K RMSE of TC2 at 1C and 2C (max 1.0), peak 2-2.5 K low at 2C."""
    th = result["thermal_fit"]
    assert 1000 < th.tau_s < 2500 and 0.5 < th.r_th_K_per_W < 1.3 and th.rmse_K < 0.6
    et = {c: _from_full(result, "electrothermal", c) for c in (1, 2, 3)}
    for c in (1, 2):
        for d in et[c]:
            assert d.rmse_mV <= 20.0 and d.rmse_both_above_cutoff_mV <= 20.0 and abs(d.capacity_error_pct) <= 2.0
    assert all(43 < d.rmse_mV < 58 and 2.0 < d.capacity_error_pct < 3.8 for d in et[3])
    bv3 = _from_full(result, "butler_volmer", 3)
    assert np.mean([d.rmse_mV for d in et[3]]) > np.mean([d.rmse_mV for d in bv3]) + 10
    # the predicted temperature against the thermocouple (independent measurement, not fitted at 2C)
    for c in (1, 2):
        t_T, temps = validation.read_lvm_temperatures(shared("ornl-leaf", validation.LVM_FILES[c]))
        for d in et[c]:
            measured = np.interp(d.t_s, t_T, temps[:, validation.LVM_MID_CELL])
            assert np.sqrt(np.mean((d.predicted_temperature_C - measured) ** 2)) < 1.1
            assert 0.0 < measured.max() - d.predicted_temperature_C.max() < 3.0


def test_lvm_reader_rejects_text(tmp_path):
    from releaf.errors import InputFileError

    bad = tmp_path / "x.lvm"
    bad.write_text("\t25.0\t25.1\t25.2\t25.0\r\n\tn/a\t1\t2\t3\r\n")
    with pytest.raises(InputFileError, match="line 2"):
        validation.read_lvm_temperatures(bad)


def test_butler_volmer_variant_measured_figures(result):
    """ECM + Butler-Volmer first pair, I0 fitted on the 25 degC HPPC only (measured: 26.1 A). Measured, discharges
    from full (mean; both RMSE definitions): 1C 13.2 / 13.2 mV, +0.2 %; 2C 19.4 / 18.7 mV, -0.8 %; 3C 34.6 /
    32.7 mV, +1.8 % (max 2.4 %). Better voltage at 2C than the linear model, worse at 3C (more so near the knee)
    and a worse 3C capacity."""
    assert 20.0 < result["bv_fit"].i0_A < 33.0
    bv = {c: _from_full(result, "butler_volmer", c) for c in (1, 2, 3)}
    plain = {c: _from_full(result, "plain", c) for c in (1, 2, 3)}
    assert [len(bv[c]) for c in (1, 2, 3)] == [4, 4, 4]

    def mean(preds, key):
        return float(np.mean([getattr(d, key) for d in preds]))

    for d in bv[1]:
        assert d.rmse_mV <= 20.0 and d.rmse_both_above_cutoff_mV <= 20.0 and abs(d.capacity_error_pct) <= 2.0
    assert 18.0 < mean(bv[2], "rmse_mV") < 20.0 and 17.5 < mean(bv[2], "rmse_both_above_cutoff_mV") < 20.0
    assert max(abs(d.capacity_error_pct) for d in bv[2]) <= 2.0
    assert 32.0 < mean(bv[3], "rmse_mV") < 37.5 and 30.0 < mean(bv[3], "rmse_both_above_cutoff_mV") < 35.5
    assert 1.5 < mean(bv[3], "capacity_error_pct") < 2.1 and 2.2 < max(d.capacity_error_pct for d in bv[3]) < 2.7
    assert mean(bv[2], "rmse_mV") < mean(plain[2], "rmse_mV") - 1.5
    assert mean(bv[3], "rmse_mV") > mean(plain[3], "rmse_mV")
    assert abs(mean(bv[1], "rmse_mV") - mean(plain[1], "rmse_mV")) < 0.5
    assert mean(bv[3], "capacity_error_pct") > mean(plain[3], "capacity_error_pct")


def test_time_weighted_rmse_weighs_each_minute_alike():
    # two samples 1 s apart at the start and one 60 s later: the late sample stands for most of the time
    t = np.array([0.0, 1.0, 61.0])
    err = np.array([0.0, 0.0, 0.010])
    # weights: 1, 30.5, 60 s -> sqrt(60 * 1e-4 / 91.5)
    assert validation.time_weighted_rmse_mV(t, err) == pytest.approx(1e3 * np.sqrt(60e-4 / 91.5), rel=1e-12)
    assert 1e3 * np.sqrt(np.mean(err**2)) == pytest.approx(5.7735, rel=1e-4)  # the plain RMS: 5.8 mV, not 8.1
    assert validation.time_weighted_rmse_mV([5.0], [0.003]) == pytest.approx(3.0)


def test_time_weighted_rmse_of_the_discharges(result):
    """The Bitrode files log every 1 s in a step's first 60 s and every 60 s after: 60 of the 78 loaded samples
    of a 3C discharge are its first minute, where the model is within 16 mV. Weighted by time the 25 degC model
    is off by 15-18 / 31-37 / 51-60 mV at 1C / 2C / 3C (mean 16.3 / 33.7 / 56.1 mV), well above ``rmse_mV``."""
    for c, (lo, hi) in {1: (15.0, 18.0), 2: (31.0, 37.0), 3: (51.0, 60.0)}.items():
        for d in _from_full(result, "plain", c):
            assert lo < d.rmse_time_weighted_mV < hi
            assert d.rmse_time_weighted_mV > d.rmse_mV + 2.0
    d3 = _from_full(result, "plain", 3)[0]
    assert d3.t_s.size == 78 and int(np.sum(d3.t_s - d3.t_s[0] < 60.0)) == 60
    tab = validation.summary_table(result["plain"])
    assert "rmse_time_weighted_mV" in tab.columns
