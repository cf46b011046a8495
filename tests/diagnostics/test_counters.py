"""releaf's per-step charge against the cycler's own capacity counters of real files.

Every comparison is with the number the cycler wrote (``vendor_capacity_Ah``), never with releaf's own output:
within 0.1 % of the step's charge or the counter's resolution (its smallest increment). See
``benchmarks/check_counters.py`` for every shared file, including the ones not asserted here and why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import MODULE_FILES, shared

from releaf.diagnostics import capacity
from releaf.diagnostics.counters import (
    counter_resolution_Ah,
    current_resolution_A,
    log_resolution_Ah,
    step_change_bounds_Ah,
    step_charges,
)
from releaf.io import read

FIXTURES = Path(__file__).parents[1] / "fixtures"

BUNDLED = {
    "bdf head (BattMo, counters restart per step)": FIXTURES / "bdf" / "batmo_bdf_head1000.csv",
    "neware csv excerpt": FIXTURES / "neware" / "neware_uio_rows3301-3900.csv",
    "biologic mpr": FIXTURES / "biologic" / "col_27_issue_74.mpr",
}
SHARED = [
    ("cycler-formats", "cellpy", "batmo_bdf.csv"),
    ("cycler-formats", "cellpy", "20260302_IFE_BTS85_2_9_8_1.ndax"),
    ("cycler-formats", "beep-TRI-AMDD", "PreDiag_000229_000229_truncated.034"),
    ("ornl-leaf", "cell-discharge-bitrode-1c.csv"),
    ("ornl-leaf", "cell-discharge-bitrode-2c.csv"),
    ("ornl-leaf", "cell-discharge-bitrode-3c.csv"),
    ("ornl-leaf", "cell-low-current-hppc-10c.csv"),
    ("ornl-leaf", "cell-low-current-hppc-25c-2.csv"),
    ("ornl-leaf", "cell-low-current-hppc-40c-1.csv"),
    # within what their logs resolve (counters.log_resolution_Ah): two 48 h rests logged at 0.00 / 0.01 A, a CV
    # taper logged every 60 s, a step whose first sample caught the current before it settled, a rest whose counter
    # moves 4 uAh under the logged current's 1 uA resolution
    ("ornl-leaf", "cell-cycling-10c-24c-40c.csv"),
    ("cycler-formats", "beep-TRI-AMDD", "test_Nova_Form-CH01-01_short.csv"),
    ("cycler-formats", "cellpy", "neware_uio.csv"),
    ("cycler-formats", "cellpy", "Test25209.csv"),
    # step changes the file does not place (counters.step_change_bounds_Ah): one-sample Arbin steps whose counter
    # counts up to 21 ms of the old current; BioLogic rests whose counter runs the old current on past the last
    # sample (.mpr 0.4 ms, BT-Lab 38 ms), a BT-Lab charge counted from one acquisition (2 ms) before its first sample
    ("cycler-formats", "cellpy", "20160805_test001_45_cc_01.res"),
    ("cycler-formats", "cellpy", "biol.mpr"),
    ("cycler-formats", "beep-TRI-AMDD", "test_loopsnewoutput_MB_CE1_short10k.csv"),
]


def assert_every_step_agrees(path):
    r = step_charges(read(path))
    assert r is not None and r.first.size > 0
    bad = ~r.within
    assert not bad.any(), (f"{path.name}: {int(bad.sum())} of {r.first.size} steps off; rows "
                           f"{r.first[bad][:5]}: releaf {r.releaf_Ah[bad][:5]} Ah, counter {r.counter_Ah[bad][:5]} Ah")
    return r


@pytest.mark.parametrize("name", BUNDLED)
def test_every_step_of_the_bundled_fixtures_agrees_with_the_counter(name):
    assert_every_step_agrees(BUNDLED[name])


@pytest.mark.parametrize("parts", SHARED, ids=lambda p: p[-1])
def test_every_step_of_the_shared_files_agrees_with_the_counter(parts):
    assert_every_step_agrees(shared(*parts))


@pytest.mark.parametrize("rate", sorted(MODULE_FILES))
def test_ornl_module_discharge_agrees_with_the_counter(rate):
    r = assert_every_step_agrees(MODULE_FILES[rate])
    assert np.abs(r.counter_Ah).max() > 50  # the 65 Ah module's discharge step is among the steps compared


def test_batmo_discharges_take_no_rest_gap():
    # the case: the first discharge sample comes 60 s after the rest's last; the counters read 0 there
    r = assert_every_step_agrees(shared("cycler-formats", "cellpy", "batmo_bdf.csv"))
    discharges = r.counter_Ah < -0.1
    assert discharges.sum() > 50
    np.testing.assert_allclose(r.releaf_Ah[discharges], r.counter_Ah[discharges], rtol=1e-6)


@pytest.mark.parametrize("path", [FIXTURES / "arbin" / "FastCharge_000025_CH8.csv",
                                  FIXTURES / "maccor" / "PredictionDiagnostics_000151_test.052"],
                         ids=lambda p: p.parent.name)
def test_single_step_fixtures_agree_with_the_counter_from_first_to_last_sample(path):
    # one step in the file: the counter's change between its first and last sample against releaf's integral over
    # the same samples (PEC's Test25209.csv has no step with charge: its counter moves 4 uAh in a rest)
    d = read(path).data
    t, i = d["test_time_s"].to_numpy(), d["current_A"].to_numpy()
    step = d["step_index"].to_numpy()
    q = capacity.cumulative_Ah(t, i, step, d["step_time_s"].to_numpy())
    c = d["vendor_capacity_Ah"].to_numpy()
    res = counter_resolution_Ah(c)
    starts = np.concatenate(([0], np.flatnonzero(step[1:] != step[:-1]) + 1, [len(t)]))
    compared = 0
    for a, b in zip(starts[:-1], starts[1:] - 1, strict=True):
        counter = c[b] - c[a]
        if abs(counter) < 100 * res:
            continue
        assert q[b] - q[a] == pytest.approx(counter, rel=1e-3, abs=res * (1 + 1e-6)), (path.name, a, b)
        compared += 1
    assert compared >= 1


@pytest.mark.parametrize("parts", [("cellpy", "20160805_test001_45_cc_01.res"), ("cellpy", "biol.mpr"),
                                   ("beep-TRI-AMDD", "test_loopsnewoutput_MB_CE1_short10k.csv")],
                         ids=lambda p: p[-1])
def test_every_step_that_carries_charge_agrees_with_the_counter(parts):
    # Arbin .res, BioLogic .mpr and BT-Lab CSV: every step whose counter moved by at least 1 % of the file's largest
    # step agrees within 0.1 %, without the log's bounds. The steps left out are step transitions and rests whose
    # counters move by 4e-13 to 2.6e-5 Ah; they agree within what the log resolves (the SHARED cases above, and
    # test_the_counter_across_every_step_change_is_within_its_bound)
    r = step_charges(read(shared("cycler-formats", *parts)))
    big = np.abs(r.counter_Ah) >= 0.01 * np.abs(r.counter_Ah).max()
    assert big.sum() >= 4
    np.testing.assert_allclose(r.releaf_Ah[big], r.counter_Ah[big], rtol=1e-3)


def test_log_resolution_is_the_current_rounding_over_the_step_plus_the_trapezoid_bound():
    # current logged to 0.01 A; one step of rows 1-3 after row 0: rounding 0.005 A x 300 s, and the step's own
    # intervals 2.00 -> 1.00 A (60 s) and 1.00 -> 0.99 A (120 s) at half their change
    t = np.array([0.0, 120.0, 180.0, 300.0])
    i = np.array([0.0, 2.0, 1.0, 0.99])
    got = log_resolution_Ah(t, i, np.array([1]), np.array([3]), np.array([0]), step_index=[1, 2, 2, 2])
    expected = (0.005 * 300 + 1.0 * 60 / 2 + 0.01 * 120 / 2) / 3600
    np.testing.assert_allclose(got, [expected])


def test_log_resolution_counts_a_step_start_stamped_before_the_previous_steps_last_sample():
    # the second step's first sample at 12 s says it began 5 s earlier, at 7 s: 3 s before the first step's last
    # sample (10 s). The file's clocks contradict each other by 3 s (X), and it acquires at least every 2 s (P, its
    # shortest interval): the change is placed to 5 s, at the larger current, 2 A
    t = np.array([0.0, 10.0, 12.0, 20.0])
    i = np.array([1.0, 1.0, 2.0, 2.0])
    got = log_resolution_Ah(t, i, np.array([2]), np.array([3]), np.array([1]), step_index=[1, 1, 2, 2],
                            step_time_s=[0.0, 10.0, 5.0, 13.0])
    rounding = 0.5 * 1.0 * 10.0  # the current's resolution: 1 A, over 10-20 s
    np.testing.assert_allclose(got, [(rounding + (3.0 + 2.0) * 2.0) / 3600])


def test_log_resolution_counts_the_unlogged_end_of_the_previous_step():
    # BioLogic-like: a 2.5 A step logged to 10 ms, then a rest whose first sample (its sequence start, step time 0)
    # comes 40 ms after the old step's last: the old current may run on for any of those 40 ms (unlogged end,
    # 0.1 As), and the switch is placed to one acquisition, 10 ms, at 2.5 A (0.025 As)
    t = np.array([0.0, 0.01, 0.05, 0.06])
    i = np.array([2.5, 2.5, 0.0, 0.0])
    step, step_time = [1, 1, 2, 2], [0.0, 0.01, 0.0, 0.01]
    end, placement = step_change_bounds_Ah(t, i, step, step_time)
    np.testing.assert_allclose(end * 3600, [0, 0, 2.5 * 0.04, 0])
    np.testing.assert_allclose(placement * 3600, [0, 0, 2.5 * 0.01, 0])
    got = log_resolution_Ah(t, i, np.array([2]), np.array([3]), np.array([1]), step, step_time)
    rounding = 0.5 * 2.5 * 0.05  # the current's resolution: 2.5 A, over 0.01-0.06 s
    np.testing.assert_allclose(got, [(rounding + 0.1 + 0.025) / 3600])


def test_a_step_change_the_file_places_has_no_bound():
    # Bitrode-like: the new step's first step time spans the whole interval before it, so it began at the old
    # step's last sample; the file places the change and neither bound applies
    t = np.array([0.0, 1.0, 2.0, 3.0])
    end, placement = step_change_bounds_Ah(t, [65.0, 65.0, -65.0, -65.0], [1, 1, 2, 2], [0.0, 1.0, 1.0, 2.0])
    assert not end.any() and not placement.any()


@pytest.mark.parametrize("parts", [("cellpy", "20160805_test001_45_cc_01.res"), ("cellpy", "biol.mpr"),
                                   ("beep-TRI-AMDD", "test_loopsnewoutput_MB_CE1_short10k.csv")],
                         ids=lambda p: p[-1])
def test_the_counter_across_every_step_change_is_within_its_bound(parts):
    # the bound at its source: over the interval of every step change (old step's last sample to the new one's
    # first) the counter's increment and releaf's differ by no more than the change's two bounds plus the
    # current's rounding over the interval and one counter increment (Arbin's counters restart with a cycle:
    # those changes are left out)
    path = shared("cycler-formats", *parts)
    d = read(path).data
    t, i, c = d["test_time_s"].to_numpy(), d["current_A"].to_numpy(), d["vendor_capacity_Ah"].to_numpy()
    step, step_time = d["step_index"].to_numpy(), d["step_time_s"].to_numpy()
    q = capacity.cumulative_Ah(t, i, step, step_time)
    end, placement = step_change_bounds_Ah(t, i, step, step_time)
    k = np.flatnonzero(capacity.step_changes(t.size, step, step_time))
    if path.suffix == ".res":
        cycle = d["cycle_index"].to_numpy()
        k = k[cycle[k + 1] == cycle[k]]
    assert k.size >= 11
    difference = (q[k + 1] - q[k]) - (c[k + 1] - c[k])
    bound = (end[k + 1] + placement[k + 1] + 0.5 * current_resolution_A(i) * (t[k + 1] - t[k]) / 3600
             + counter_resolution_Ah(c))
    assert np.all(np.abs(difference) <= bound), (k[np.abs(difference) > bound], difference, bound)


def test_bt_lab_counter_switches_one_acquisition_before_each_first_sample():
    # the evidence for the placement bound: at all 11 step changes of the BT-Lab CSV the counter's increment over
    # the change is the old current up to 2 ms (its shortest sample interval) before the new step's first sample
    # and the new current after: 1.385e-6 Ah (2 ms of 2.493 A) at the first charge, 2.636e-5 Ah (38 of 40 ms of
    # 2.497 A) at the rest after it. Solved for the moment of the switch, to 5 us
    d = read(shared("cycler-formats", "beep-TRI-AMDD", "test_loopsnewoutput_MB_CE1_short10k.csv")).data
    t, i, c = d["test_time_s"].to_numpy(), d["current_A"].to_numpy(), d["vendor_capacity_Ah"].to_numpy()
    step = d["step_index"].to_numpy()
    k = np.flatnonzero(step[1:] != step[:-1])
    assert k.size == 11
    period_s = np.diff(t)[np.diff(t) > 0].min()
    assert period_s == pytest.approx(0.002, abs=1e-9)
    # c[k+1] - c[k] = I_old (switch - t_k) + I_new (t_k+1 - switch)
    switch = ((c[k + 1] - c[k]) * 3600 - i[k + 1] * t[k + 1] + i[k] * t[k]) / (i[k] - i[k + 1])
    np.testing.assert_allclose(t[k + 1] - switch, period_s, atol=5e-6)
