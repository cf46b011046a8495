from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from releaf.diagnostics import capacity


@st.composite
def piecewise_constant(draw):
    """A cycler-like record: steps of constant current, sampled at the step ends and at random times inside."""
    n_steps = draw(st.integers(1, 6))
    t, i, step, exact = [0.0], [0.0], [0], 0.0
    for k in range(1, n_steps + 1):
        current = draw(st.floats(-100, 100, allow_nan=False))
        length = draw(st.floats(1, 5000))
        inner = sorted(draw(st.lists(st.floats(0.01, 0.99), max_size=5)))
        start = t[-1]
        for frac in [*inner, 1.0]:
            t.append(start + frac * length)
            i.append(current)
            step.append(k)
        exact += current * length / 3600
    return np.array(t), np.array(i), np.array(step), exact


@settings(max_examples=200, deadline=None)
@given(piecewise_constant())
def test_cumulative_charge_is_exact_for_step_currents(case):
    t, i, step, exact = case
    q = capacity.cumulative_Ah(t, i, step)
    assert q[-1] == pytest.approx(exact, rel=1e-9, abs=1e-9)


def test_trapezoid_without_steps_books_half_a_gap_into_the_rest():
    # why the step rule exists: a 60 s gap after a 65 A step would add 0.54 Ah to the discharge
    t = np.array([0.0, 3600.0, 3660.0])
    i = np.array([-65.0, -65.0, 0.0])
    assert -capacity.cumulative_Ah(t, i)[-1] == pytest.approx(65 + 65 * 30 / 3600)
    assert -capacity.cumulative_Ah(t, i, step_index=[1, 1, 2])[-1] == pytest.approx(65.0)


def _cc_discharge(capacity_Ah=50.0, current_A=-25.0, dt_s=10.0, top_V=4.15):
    """Rest, CC discharge with a linear voltage ramp to 3.0 V, rest; one series group."""
    duration = capacity_Ah / -current_A * 3600
    t_dis = np.arange(dt_s, duration + dt_s / 2, dt_s)
    t = np.concatenate(([0.0], t_dis, [duration + 600]))
    i = np.concatenate(([0.0], np.full(t_dis.size, current_A), [0.0]))
    v = np.concatenate(([top_V], np.linspace(4.05, 3.0, t_dis.size), [3.3]))
    step = np.concatenate(([1], np.full(t_dis.size, 2), [3]))
    return t, v, i, step


def test_full_discharge_capacity_energy_and_flags():
    t, v, i, step = _cc_discharge()
    (d,) = capacity.full_discharges(t, v, i, step_index=step, cutoff_voltage_V=3.0,
                                    charge_floor_V=4.0, nominal_capacity_Ah=65)
    assert d.capacity_Ah == pytest.approx(50.0, rel=1e-9)
    # energy by hand: the first 10 s at the first sample's 4.05 V (step change), then the linear ramp's mean
    duration_s = 50.0 / 25.0 * 3600
    expected_Wh = 25.0 * (4.05 * 10 + (4.05 + 3.0) / 2 * (duration_s - 10)) / 3600
    assert d.energy_Wh == pytest.approx(expected_Wh, rel=1e-9)
    assert d.is_full and d.c_rate == pytest.approx(25 / 65, rel=1e-6)


def test_discharge_not_from_full_is_not_a_capacity_measurement():
    t, v, i, step = _cc_discharge(top_V=3.9)
    (d,) = capacity.full_discharges(t, v, i, step_index=step, cutoff_voltage_V=3.0,
                                    charge_floor_V=4.0, nominal_capacity_Ah=65)
    assert d.reached_cutoff and not d.from_full and not d.is_full


def test_recharge_starts_a_new_segment_but_a_regen_pulse_does_not():
    t1, v1, i1, s1 = _cc_discharge()
    # a 10 s regen pulse in the middle of the discharge (0.06 Ah, far below 2 % of 65 Ah) stays in the segment
    i1 = i1.copy()
    i1[100] = 22.5
    charge_t = t1[-1] + np.arange(1, 721) * 10.0  # 2 h at 25 A = 50 Ah back in
    t = np.concatenate((t1, charge_t, t1[1:] + charge_t[-1]))
    i = np.concatenate((i1, np.full(720, 25.0), i1[1:]))
    v = np.concatenate((v1, np.full(720, 4.15), v1[1:]))
    s = np.concatenate((s1, np.full(720, 4), s1[1:] + 4))
    ds = capacity.full_discharges(t, v, i, step_index=s, cutoff_voltage_V=3.0,
                                  charge_floor_V=4.0, nominal_capacity_Ah=65)
    assert len(ds) == 2
    assert ds[0].capacity_Ah == pytest.approx(50.0 - (22.5 + 25.0) * 10 / 3600, rel=1e-9)


def test_step_change_is_split_where_the_step_began():
    # rest logged at 0 and 60 s; the discharge began at 100 s (step time 20 s at its first sample, 120 s)
    t = np.array([0.0, 60.0, 120.0, 180.0])
    i = np.array([0.0, 0.0, -10.0, -10.0])
    step, step_time = [1, 1, 2, 2], [0.0, 60.0, 20.0, 80.0]
    assert -capacity.cumulative_Ah(t, i, step, step_time)[-1] == pytest.approx(10 * 80 / 3600)
    # without a step time the whole gap belongs to the new step (a cycler that logs the old step's last sample)
    assert -capacity.cumulative_Ah(t, i, step)[-1] == pytest.approx(10 * 120 / 3600)
    # a step logged when it began (step time 0) takes none of the gap; a step time beyond the gap takes all of it
    assert -capacity.cumulative_Ah(t, i, step, [0.0, 60.0, 0.0, 60.0])[-1] == pytest.approx(10 * 60 / 3600)
    assert -capacity.cumulative_Ah(t, i, step, [0.0, 60.0, 500.0, 560.0])[-1] == pytest.approx(10 * 120 / 3600)
    dt, wl, wr = capacity.interval_weights(t, step, step_time)
    np.testing.assert_allclose(wl, [0.5, 0.0, 0.5])
    np.testing.assert_allclose(wr, [0.5, 20 / 60, 0.5])


def test_the_time_between_a_steps_last_sample_and_the_next_steps_start_carries_no_charge():
    # a 10 A discharge logged at 0 and 60 s; the rest after it began at 100 s (step time 20 s at 120 s): the
    # discharge's charge ends at its last logged sample, as the cyclers' counters count it (Arbin .res, BDF, .mpr)
    t = np.array([0.0, 60.0, 120.0, 180.0])
    i = np.array([-10.0, -10.0, 0.0, 0.0])
    q = capacity.cumulative_Ah(t, i, [1, 1, 2, 2], [0.0, 60.0, 20.0, 80.0])
    assert -q[-1] == pytest.approx(10 * 60 / 3600)
    # without a step time the new step (a rest) takes the whole interval
    assert -capacity.cumulative_Ah(t, i, [1, 1, 2, 2])[-1] == pytest.approx(10 * 60 / 3600)


def test_a_falling_step_time_is_a_step_change_and_energy_follows_the_same_rule():
    # the same step number twice in a row (a loop of one step): the step time restarting marks the change
    t = np.array([0.0, 60.0, 120.0, 180.0])
    i = np.array([-5.0, -5.0, -20.0, -20.0])
    v = np.full(4, 4.0)
    q = capacity.cumulative_Ah(t, i, [3, 3, 3, 3], [0.0, 60.0, 30.0, 90.0])
    # the repeat began at 90 s: 60-90 s lies after the first run's last sample and before the repeat, booked to none
    assert -q[-1] == pytest.approx((5 * 60 + 20 * 30 + 20 * 60) / 3600)
    e = capacity.cumulative_Wh(t, v, i, [3, 3, 3, 3], [0.0, 60.0, 30.0, 90.0])
    assert e[-1] == pytest.approx(4.0 * q[-1])


def test_a_deep_pulse_at_the_top_is_no_off_log_recharge():
    """A 2C pulse that dips 0.4 V at the top of charge, then a rest back at the top: one discharge, not two."""
    t = np.arange(0.0, 200.0, 1.0)
    i = np.zeros_like(t)
    v = np.full_like(t, 4.15)
    i[10:20], v[10:20] = -130.0, 3.75          # the pulse
    v[20:60] = 4.14                             # rested back at the top
    dis_t = np.arange(200.0, 200.0 + 3600.0, 10.0)  # then 1C to the cut-off
    t = np.concatenate((t, dis_t))
    i = np.concatenate((i, np.full(dis_t.size, -65.0)))
    v = np.concatenate((v, np.linspace(4.05, 3.0, dis_t.size)))
    step = np.concatenate((np.ones(10), np.full(10, 2), np.full(180, 3), np.full(dis_t.size, 4))).astype(int)
    ds = capacity.full_discharges(t, v, i, step_index=step, cutoff_voltage_V=3.0, charge_floor_V=3.95,
                                  nominal_capacity_Ah=65)
    assert len(ds) == 1 and ds[0].is_full
    # the pulse (10 s at 130 A) and the discharge (3591 s at 65 A, the step change held at the new current)
    assert ds[0].capacity_Ah == pytest.approx((130.0 * 10 + 65.0 * 3591) / 3600, rel=1e-9)
