"""Capacity from the test that was run: charge voltages 4.0-4.2 V per group, CC or CC-CV, cut-off at the group or
the module, with or without group taps, charge first or discharge first (issue 10, item 1).

The module is simulated here with its own toy physics (not releaf's OCV table or simulator): two series groups,
each an OCV curve ``3.0 + 1.2 soc**0.7`` [V] behind an ohmic resistance, integrated in 1 s steps. The truth is
the charge the simulation removed between its own start and stop, which the test knows exactly.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from releaf.diagnostics import diagnose
from releaf.parameters import battery_profile
from releaf.schema import SourceMeta, TimeSeries, validate

MODULE = battery_profile("leaf-24kwh-module")
CAP_AH = (52.0, 50.0)  # group 2 is the weaker
R_OHM = (0.0010, 0.0013)


def ocv(soc):
    return 3.0 + 1.2 * np.clip(soc, 0, 1) ** 0.7


def simulate(*, charge_V, cv, cutoff, c_rate, taps, charge_first=True, rest_s=1800):
    """A test: (discharge to empty first), CC(-CV) charge to charge_V per group, rest, CC discharge to the cut-off."""
    soc = np.array([0.02, 0.02]) if charge_first else np.array([0.9, 0.9])
    cap_As = np.array(CAP_AH) * 3600
    rows, t, step = [], 0.0, 0

    def log(i):
        gv = ocv(soc) + i * np.array(R_OHM)
        rows.append((t, gv.sum(), i, step, *gv))

    def run(current, until, max_s=200_000):
        nonlocal soc, t
        for _ in range(int(max_s)):
            if until(current):
                return current
            soc = soc + current / cap_As
            t += 1.0
            log(current)
        return current

    step = 1
    log(0.0)
    i_cc = 0.5 * 65
    run(i_cc, lambda i: (ocv(soc) + i * np.array(R_OHM)).max() >= charge_V)  # CC to the limit on the highest group
    if cv:  # hold the highest group at charge_V: the current tapers to C/20
        step = 2
        i = i_cc
        while i > 65 / 20:
            i = float(np.min((charge_V - ocv(soc)) / np.array(R_OHM)))
            i = max(i, 0.0)
            soc = soc + i / cap_As
            t += 1.0
            log(i)
    step = 3
    for _ in range(rest_s // 10):
        t += 10.0
        log(0.0)
    start_q = soc * cap_As
    step = 4
    i_d = -c_rate * 65

    def stop(i):
        gv = ocv(soc) + i * np.array(R_OHM)
        return gv.min() <= 3.0 if cutoff == "group" else gv.sum() <= cutoff

    run(i_d, stop)
    removed_Ah = float((start_q - soc * cap_As)[0] / 3600)
    weakest = int(np.argmin(ocv(soc) + i_d * np.array(R_OHM))) + 1  # the group at the lowest voltage at the stop
    step = 5
    for _ in range(60):
        t += 10.0
        log(0.0)
    arr = np.array(rows)
    data = {"test_time_s": arr[:, 0], "voltage_V": arr[:, 1], "current_A": arr[:, 2],
            "step_index": arr[:, 3].astype(np.int64)}
    if taps:
        data |= {"group_voltage_V_1": arr[:, 4], "group_voltage_V_2": arr[:, 5]}
    meta = SourceMeta(path="simulated.csv", format="test", vendor="test", sha256="0" * 64)
    ts = validate(TimeSeries(pl.DataFrame(data), meta))
    return ts, removed_Ah, weakest


CASES = {
    "4.2 V CC-CV, group cut-off, taps": dict(charge_V=4.2, cv=True, cutoff="group", c_rate=1 / 3, taps=True),
    "4.15 V CC-CV, group cut-off, no taps": dict(charge_V=4.15, cv=True, cutoff="group", c_rate=1 / 3, taps=False),
    "4.1 V CC, module 6.4 V cut-off, taps": dict(charge_V=4.1, cv=False, cutoff=6.4, c_rate=1 / 10, taps=True),
    "4.0 V CC-CV, module 6.3 V cut-off, 1C, no taps": dict(charge_V=4.0, cv=True, cutoff=6.3, c_rate=1.0, taps=False),
    "4.2 V, C/20, starts full (no charge first)": dict(charge_V=4.2, cv=True, cutoff="group", c_rate=1 / 20,
                                                       taps=True, charge_first=False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_capacity_of_each_protocol(case):
    ts, truth_Ah, weakest = simulate(**CASES[case])
    d = diagnose(ts, MODULE)
    assert d.capacity_Ah == pytest.approx(truth_Ah, rel=0.002), d.warnings
    c = d.capacity_conditions
    spec = CASES[case]
    # the CV holds the highest group at charge_V (independent of the record's own charge_top_V)
    assert max((c.charge_voltage_V, *c.charge_group_voltages_V)) == pytest.approx(spec["charge_V"], abs=0.02)
    assert c.charge_end == ("cv_taper" if spec["cv"] else "cc_limit")
    assert c.c_rate == pytest.approx(spec["c_rate"] * truth_Ah / truth_Ah, rel=0.02)
    expected_end = ("group_voltage_limit" if spec["taps"] else "voltage_limit") if spec["cutoff"] == "group" \
        else "module_voltage_limit"
    assert c.end_reason == expected_end
    narrower = spec["charge_V"] < 4.17 or spec["cutoff"] != "group"
    assert any("narrower window" in w for w in d.warnings) == narrower
    if spec["taps"]:
        assert d.weakest_group == weakest


def test_a_partial_discharge_is_not_a_capacity_and_says_why():
    ts, _, _ = simulate(charge_V=4.2, cv=True, cutoff=7.4, c_rate=1 / 3, taps=True)  # stopped at 3.7 V per group
    d = diagnose(ts, MODULE)
    assert d.capacity_Ah is None
    assert any("time or capacity" in w and "before the voltage limit" in w for w in d.warnings)


def test_a_charge_that_stopped_low_is_not_full():
    ts, _, _ = simulate(charge_V=3.85, cv=False, cutoff="group", c_rate=1 / 3, taps=True)
    d = diagnose(ts, MODULE)
    assert d.capacity_Ah is None
    assert any("the charge before it stopped at 3.85" in w and "below the 3.95 V" in w for w in d.warnings)


def test_the_parameter_set_decides_what_a_full_charge_is():
    """A plant whose modules count as full only from 4.15 V per group says so in its set; a 4.1 V charge is then
    refused, and a module cut-off above its ceiling is not a cut-off."""
    import dataclasses

    ts, truth_Ah, _ = simulate(charge_V=4.1, cv=True, cutoff="group", c_rate=1 / 3, taps=True)
    assert diagnose(ts, MODULE).capacity_Ah == pytest.approx(truth_Ah, rel=0.002)
    strict = dataclasses.replace(MODULE, full_charge_min_V=4.15)
    d = diagnose(ts, strict)
    assert d.capacity_Ah is None and any("below the 4.15 V a full charge reaches" in w for w in d.warnings)
    ts, truth_Ah, _ = simulate(charge_V=4.2, cv=True, cutoff=6.4, c_rate=1 / 3, taps=False)
    assert diagnose(ts, MODULE).capacity_Ah == pytest.approx(truth_Ah, rel=0.002)
    assert diagnose(ts, dataclasses.replace(MODULE, module_cutoff_max_V=3.1)).capacity_Ah is None
