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
from releaf.diagnostics.counters import counter_resolution_Ah, log_resolution_Ah, step_charges
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
    # step agrees within 0.1 %. The steps left out are step transitions and rests whose counters move by 4e-13 to
    # 2.6e-5 Ah (benchmarks/README.md, check_counters.py: where each comes from)
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
    # sample (10 s). The file's clocks contradict each other by 3 s, at the larger current, 2 A
    t = np.array([0.0, 10.0, 12.0, 20.0])
    i = np.array([1.0, 1.0, 2.0, 2.0])
    got = log_resolution_Ah(t, i, np.array([2]), np.array([3]), np.array([1]), step_index=[1, 1, 2, 2],
                            step_time_s=[0.0, 10.0, 5.0, 13.0])
    rounding = 0.5 * 1.0 * 10.0  # the current's resolution: 1 A, over 10-20 s
    np.testing.assert_allclose(got, [(rounding + 3.0 * 2.0) / 3600])
