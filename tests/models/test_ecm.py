from __future__ import annotations

import numpy as np
import pytest

from releaf.models.ecm import EcmParameters, butler_volmer_current_A, simulate


def flat(r0=2e-3, r1=1e-3, tau1=30.0, r2=0.5e-3, tau2=600.0, q=30.0):
    g = np.array([0.0, 100.0])
    one = np.ones(2)
    return EcmParameters(q, g, np.array([3.0, 4.2]), r0 * one, r1 * one, tau1 * one, r2 * one, tau2 * one)


def test_step_response_matches_the_analytic_solution():
    p = flat()
    t = np.arange(0, 301.0, 1.0)
    i = np.where(t > 0, -30.0, 0.0)
    out = simulate(p, t, i, soc0_pct=50.0)
    soc = 50.0 - 100 * 30.0 * t / 3600 / 30.0
    ocv = 3.0 + 1.2 * soc / 100
    expected = ocv - 30.0 * (2e-3 + 1e-3 * (1 - np.exp(-t / 30.0)) + 0.5e-3 * (1 - np.exp(-t / 600.0)))
    np.testing.assert_allclose(out["voltage_V"][1:], expected[1:], atol=1e-9)
    np.testing.assert_allclose(out["soc_pct"], soc, atol=1e-9)


def test_result_does_not_depend_on_sampling_for_a_held_current():
    p = flat()
    coarse = np.arange(0, 601.0, 10.0)
    fine = np.arange(0, 601.0, 0.5)
    vc = simulate(p, coarse, np.where(coarse > 0, -20.0, 0.0), soc0_pct=80.0)["voltage_V"]
    vf = simulate(p, fine, np.where(fine > 0, -20.0, 0.0), soc0_pct=80.0)["voltage_V"]
    np.testing.assert_allclose(vc, np.interp(coarse, fine, vf), atol=1e-9)


def test_scaling_to_a_2s2p_module():
    cell = flat()
    module = cell.scaled(series=2, parallel=2)
    assert module.capacity_Ah == 60.0
    assert module.r0_Ohm[0] == pytest.approx(2e-3) and module.ocv_V[1] == pytest.approx(8.4)
    t = np.arange(0, 100.0)
    vm = simulate(module, t, np.full(t.size, -40.0), soc0_pct=60)["voltage_V"]
    vc = simulate(cell, t, np.full(t.size, -20.0), soc0_pct=60)["voltage_V"]
    np.testing.assert_allclose(vm, 2 * vc, atol=1e-12)


def test_dict_round_trip():
    p = flat()
    q = EcmParameters.from_dict(p.to_dict())
    assert q.to_dict() == p.to_dict()


def test_butler_volmer_option_off_is_the_linear_model_bit_for_bit():
    p = flat()
    t = np.arange(0, 200.0, 0.5)
    i = np.where(t > 10, -40.0, 0.0)
    a = simulate(p, t, i, soc0_pct=70.0)
    b = simulate(p, t, i, soc0_pct=70.0, i0_A=None)
    for k in a:
        assert np.array_equal(a[k], b[k])


def test_butler_volmer_reduces_to_the_linear_model_at_small_current():
    p = flat()
    t = np.arange(0, 120.0, 1.0)
    for cur, i0 in ((-0.05, 20.0), (-30.0, 1e6)):
        i = np.where(t > 0, cur, 0.0)
        lin = simulate(p, t, i, soc0_pct=50.0)["voltage_V"]
        bv = simulate(p, t, i, soc0_pct=50.0, i0_A=i0)["voltage_V"]
        # asinh(x) = x (1 - x^2 / 6 + ...): the first pair differs by R1 |i| x^2 / 6 at most
        x = abs(cur) / (2 * i0)
        assert np.max(np.abs(bv - lin)) <= 1e-3 * abs(cur) * x**2 / 6 + 1e-15


def test_butler_volmer_steady_state_is_the_symmetric_overpotential():
    # held current, long after tau1: v1 = R1 2 I0 asinh(i / (2 I0)); chord resistance falls with the current
    p = flat(tau1=5.0)
    t = np.arange(0, 200.0, 1.0)
    for cur in (-10.0, -30.0, -90.0, 22.5):
        out = simulate(p, t, np.where(t > 0, cur, 0.0), soc0_pct=50.0, i0_A=15.0)
        expected = 1e-3 * 2 * 15.0 * np.arcsinh(cur / 30.0)
        assert out["v1_V"][-1] == pytest.approx(expected, rel=1e-9)
    chord = [butler_volmer_current_A(c, 15.0) / c for c in (10.0, 30.0, 90.0)]
    assert chord[0] > chord[1] > chord[2] and chord[2] == pytest.approx(np.arcsinh(3.0) / 3.0)
