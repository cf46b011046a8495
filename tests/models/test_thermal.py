"""Lumped thermal model: the exact step response and the recovery of known parameters."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from releaf.models import thermal


def test_heat_is_positive_on_charge_and_discharge():
    q = thermal.irreversible_heat_W([-30.0, 30.0, 0.0], [3.6, 4.0, 3.8], [3.8, 3.8, 3.8])
    np.testing.assert_allclose(q, [6.0, 6.0, 0.0])


@settings(max_examples=30, deadline=None)
@given(tau_s=st.floats(60, 5000), r_th=st.floats(0.1, 5.0), heat_W=st.floats(0.0, 50.0), start_C=st.floats(15, 45))
def test_constant_heat_follows_the_closed_form(tau_s, r_th, heat_W, start_C):
    # irregular sampling, heat switched on at t = 0: T = Ta + q R (1 - e^-t/tau) + (T0 - Ta) e^-t/tau
    model = thermal.LumpedThermal(tau_s=tau_s, r_th_K_per_W=r_th, ambient_C=25.0)
    t = np.cumsum(np.r_[0.0, np.tile([0.5, 3.0, 60.0], 40)])
    temp = thermal.temperature_trace_C(model, t, np.full(t.size, heat_W), initial_C=start_C)
    expected = 25.0 + heat_W * r_th * (1 - np.exp(-t / tau_s)) + (start_C - 25.0) * np.exp(-t / tau_s)
    np.testing.assert_allclose(temp, expected, atol=1e-9)
    # one step at a time gives the same
    stepwise = [start_C]
    for k in range(1, 6):
        stepwise.append(model.advance_C(stepwise[-1], heat_W, t[k] - t[k - 1]))
    np.testing.assert_allclose(stepwise, expected[:6], atol=1e-9)


def test_fit_recovers_known_parameters():
    rng = np.random.default_rng(5)
    t = np.arange(0.0, 6 * 3600.0, 3.0)
    heat = np.where((t // 3600) % 2 == 0, 8.0, 0.5)  # 1 h on, 1 h off
    true = thermal.LumpedThermal(tau_s=1200.0, r_th_K_per_W=1.5, ambient_C=25.0)
    measured = thermal.temperature_trace_C(true, t, heat) + rng.normal(0, 0.1, t.size)
    fit = thermal.fit_lumped_thermal(t, heat, measured, ambient_C=25.0)
    assert fit.tau_s == pytest.approx(1200.0, rel=0.02)
    assert fit.r_th_K_per_W == pytest.approx(1.5, rel=0.01)
    assert fit.heat_capacity_J_per_K == pytest.approx(800.0, rel=0.03)
    assert fit.rmse_K == pytest.approx(0.1, rel=0.1)
