from __future__ import annotations

import numpy as np
import pytest

from releaf.diagnostics import groups


def test_remaining_charge_read_off_the_limiting_curve():
    removed = np.linspace(0, 50, 501)
    curve = 4.1 - 0.02 * removed  # 4.1 V full, 3.1 V after 50 Ah
    # a group that ended at 3.5 V is where the limiting group was after 30 Ah: 20 Ah still in it
    assert groups.remaining_Ah_on_curve(curve, removed, 3.5) == pytest.approx(20.0)
    assert groups.remaining_Ah_on_curve(curve, removed, 3.1) == pytest.approx(0.0)


def test_diagnose_groups_names_the_lowest_end_voltage_1_based():
    removed = np.linspace(0, 50, 51)
    g1 = 4.1 - 0.018 * removed
    g2 = 4.1 - 0.020 * removed  # ends lowest
    recs, weakest = groups.diagnose_groups([g1, g2], removed, string_capacity_Ah=50.0, discharge=slice(0, 51))
    assert weakest == 2
    assert recs[1].capacity_Ah == 50.0
    # group 1 ended at 3.2 V = where group 2 was after 45 Ah: 5 Ah more
    assert recs[0].capacity_Ah == pytest.approx(55.0)


def test_diagnose_groups_without_group_voltages_is_empty_not_a_crash():
    # a string of several groups without taps: a discharge, but no group to compare (was np.argmin of [])
    recs, weakest = groups.diagnose_groups([], np.linspace(0, 50, 51), string_capacity_Ah=50.0,
                                           discharge=slice(0, 51))
    assert recs == () and weakest is None
