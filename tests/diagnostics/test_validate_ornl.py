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
from releaf.diagnostics import validation


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


def test_goals_met_capacity_at_3c_and_voltage_at_1c_before_the_knee(result):
    d3 = _from_full(result, "plain", 3)
    assert max(abs(d.capacity_error_pct) for d in d3) <= 2.0
    d1 = _from_full(result, "plain", 1)
    assert max(d.rmse_to_90pct_mV for d in d1) <= 20.0


def test_goals_missed_are_the_measured_figures(result):
    """Measured (25 degC model): full-discharge RMSE 47-64 mV at every rate (the knee below the lowest HPPC
    level, 6 % SOC, where the OCV is an extrapolation, and at 2C/3C resistances from 30 A pulses that are too
    high for 61-92 A); capacity -2.5 % at 1C and -3.5 % at 2C (cut-off reached early)."""
    rmse = {c: np.mean([d.rmse_mV for d in _from_full(result, "plain", c)]) for c in (1, 2, 3)}
    cap = {c: np.mean([d.capacity_error_pct for d in _from_full(result, "plain", c)]) for c in (1, 2, 3)}
    assert 40 < rmse[1] < 55 and 55 < rmse[2] < 70 and 40 < rmse[3] < 55
    assert -3.0 < cap[1] < -2.0 and -4.0 < cap[2] < -3.0
    assert all(r > 20.0 for r in rmse.values())
    # before the knee the error grows with the rate: the 10 A / 30 A HPPC over-predicts the drop at 2C and 3C
    early = [np.mean([d.rmse_to_90pct_mV for d in _from_full(result, "plain", c)]) for c in (1, 2, 3)]
    assert early[0] < early[1] < early[2]


def test_temperature_correction_helps_at_2c(result):
    # Arrhenius resistances through the 10/25/40 degC fits, driven by the mid-cell thermocouple (TC2)
    plain = np.mean([d.rmse_mV for d in _from_full(result, "plain", 2)])
    thermal = np.mean([d.rmse_mV for d in _from_full(result, "thermal", 2)])
    assert thermal < plain - 10.0
    # the 3C .lvm covers only the first discharge (start not recorded): measured +1.3 %, RMSE ~52 mV
    (d3,) = result["thermal"][3]
    assert d3.index == 1 and 0.5 < d3.capacity_error_pct < 2.0 and 45 < d3.rmse_mV < 60


def test_lvm_reader_rejects_text(tmp_path):
    from releaf.errors import ReleafInputError

    bad = tmp_path / "x.lvm"
    bad.write_text("\t25.0\t25.1\t25.2\t25.0\r\n\tn/a\t1\t2\t3\r\n")
    with pytest.raises(ReleafInputError, match="line 2"):
        validation.read_lvm_temperatures(bad)
