from __future__ import annotations

import numpy as np
import pytest

from releaf.diagnostics.ecm import EcmParameters, simulate


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
