from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from releaf.diagnostics import resistance


def first_order_pulse(r0_mOhm, r1_mOhm, tau_s, i_A=-30.0, dt_s=0.1, ocv_V=3.9):
    """Rest 5 s, a 30 s current pulse into a 1-RC cell, rest 40 s; sampled every ``dt_s``."""
    t = np.round(np.arange(0, 75 + dt_s / 2, dt_s), 9)
    on = (t > 5) & (t <= 35)
    i = np.where(on, i_A, 0.0)
    since = np.clip(t - 5, 0, 30)
    v_rc = i_A * r1_mOhm / 1000 * (1 - np.exp(-since / tau_s))
    v_rc = np.where(t > 35, v_rc * np.exp(-(t - 35) / tau_s), v_rc)
    v = ocv_V + i * r0_mOhm / 1000 + np.where(t > 5, v_rc, 0.0)
    step = np.where(t <= 5, 1, np.where(on, 2, 3))
    return t, v, i, step


@settings(max_examples=50, deadline=None)
@given(st.floats(0.5, 10), st.floats(0.1, 5), st.floats(2, 60))
def test_pulse_resistance_recovers_a_known_circuit(r0, r1, tau):
    t, v, i, step = first_order_pulse(r0, r1, tau)
    steps = resistance.current_steps(i, min_step_A=3.0, step_index=step)
    assert len(steps) == 2
    r = resistance.step_resistance(t, v, i, steps[0])
    # first sample is 0.1 s after the step: R0 plus the RC part built in 0.1 s
    assert r.r0_mOhm == pytest.approx(r0 + r1 * (1 - np.exp(-0.1 / tau)), rel=1e-6)
    assert r.r_1s_mOhm == pytest.approx(r0 + r1 * (1 - np.exp(-1.0 / tau)), rel=1e-6)
    assert r.r_10s_mOhm == pytest.approx(r0 + r1 * (1 - np.exp(-10.0 / tau)), rel=1e-6)
    assert r.r_end_mOhm == pytest.approx(r0 + r1 * (1 - np.exp(-30.0 / tau)), rel=1e-6)
    assert r.duration_s == pytest.approx(30.0)


def test_r0_needs_samples_within_one_second():
    t, v, i, step = first_order_pulse(2.0, 1.0, 10.0, dt_s=2.5)
    steps = resistance.current_steps(i, min_step_A=3.0, step_index=step)
    r = resistance.step_resistance(t, v, i, steps[0])
    assert r.r0_mOhm is None and r.r_0p1s_mOhm is None
    assert r.r_10s_mOhm == pytest.approx(2.0 + 1.0 * (1 - np.exp(-1.0)), rel=1e-6)


def test_pick_r0_prefers_discharge_pulse_nearest_50_pct():
    def pr(soc, before, after, r0):
        return resistance.PulseResistance(0, soc, before, after, 10, r0, None, None, None, None)

    rs = [pr(90, 0, -30, 1.0), pr(52, 0, 22.5, 2.0), pr(45, 0, -30, 3.0), pr(20, 0, -30, 4.0)]
    assert resistance.pick_r0(rs, rest_A=0.5).r0_mOhm == 3.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.9, 1.0, 5.0, 10.0]), min_size=2, max_size=60),
       st.lists(st.sampled_from([0.0, -1.0, 5.0, -5.0, 2.0]), min_size=60, max_size=60), st.booleans())
def test_all_steps_at_once_equal_one_step_at_a_time(dt, current, shuffled):
    """Whole-test interpolation must read exactly what per-step interpolation reads, duplicate times included."""
    t = np.cumsum(dt) + 0.3
    if shuffled:  # unsorted time: the per-step path
        t = t[::-1].copy()
    i = np.asarray(current[: len(t)])
    v = 4.0 + 0.01 * np.sin(np.arange(len(t)))
    groups = (v / 2 + 0.001, v / 2)
    steps = resistance.current_steps(i, min_step_A=1.0)
    socs = [float(k) if k % 2 else None for k in range(len(steps))]
    with np.errstate(divide="ignore", invalid="ignore"):
        one = [resistance.step_resistance(t, v, i, s, group_voltages_V=groups, soc_pct=x)
               for s, x in zip(steps, socs, strict=True)]
    assert repr(resistance.step_resistances(t, v, i, steps, group_voltages_V=groups, soc_pct=socs)) == repr(one)
    # any read time: at 1 s and 10 s the same values as the per-step reading of step_resistance
    for after_s, field in ((1.0, "r_1s_mOhm"), (10.0, "r_10s_mOhm")):
        terminal, *per_group = resistance.resistances_at(t, (v, *groups), i, steps, after_s)
        assert repr(terminal) == repr([getattr(r, field) for r in one])
        group_field = "group_" + field
        assert repr([tuple(g[k] for g in per_group) for k in range(len(steps))]) == repr(
            [getattr(r, group_field) for r in one])
