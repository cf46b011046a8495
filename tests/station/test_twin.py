import json
import time

import numpy as np
import pytest

from releaf.errors import ConfigError, InputFileError
from releaf.models.ocv import mean_ocv_V, soc_pct_at_ocv
from releaf.parameters import PORTABLE_2S
from releaf.schema.records import Diagnosis, GroupDiagnosis
from releaf.station.loads import USE_CASES, UseCase
from releaf.station.twin import (
    ModuleState,
    bus_power_W,
    certify,
    module_state_from_diagnosis,
    simulate_discharge,
    usable_energy_estimate_Wh,
)

FRESH = [ModuleState("M1", (65.0, 65.0), (0.9, 0.9)), ModuleState("M2", (65.0, 65.0), (0.9, 0.9))]


def ocv_energy_Wh(caps):
    """Independent loss-free energy: every group moves the charge of the smallest one over its own SOC window."""
    table = PORTABLE_2S.module.ocv_table
    soc_hi = float(soc_pct_at_ocv(PORTABLE_2S.group_v_max_V, table))
    soc_lo = float(soc_pct_at_ocv(PORTABLE_2S.group_v_min_V, table))
    q = min(caps) * (soc_hi - soc_lo) / 100
    return sum(q * mean_ocv_V(soc_hi - q / c * 100, soc_hi, table) for c in caps)


def test_lossless_energy_equals_capacity_times_mean_ocv():
    caps = (65.0, 60.0, 64.0, 63.0)
    mods = [ModuleState("a", caps[:2], (0.0, 0.0)), ModuleState("b", caps[2:], (0.0, 0.0))]
    d = simulate_discharge(mods, PORTABLE_2S, 100.0)
    assert d.energy_Wh == pytest.approx(ocv_energy_Wh(caps), rel=0.005)
    assert d.limiting_group == 2
    assert d.end_reason == "group_v_min"


def test_lossless_equal_groups_textbook():
    # 4 equal groups: 4 x C x window x mean OCV
    table = PORTABLE_2S.module.ocv_table
    soc_hi = float(soc_pct_at_ocv(4.1, table))
    soc_lo = float(soc_pct_at_ocv(3.2, table))
    expected = 4 * 65.0 * (soc_hi - soc_lo) / 100 * mean_ocv_V(soc_lo, soc_hi, table)
    mods = [ModuleState("a", (65.0, 65.0), (0.0, 0.0)), ModuleState("b", (65.0, 65.0), (0.0, 0.0))]
    assert simulate_discharge(mods, PORTABLE_2S, 300.0).energy_Wh == pytest.approx(expected, rel=0.005)


def test_fresh_pair_near_rating():
    d = simulate_discharge(FRESH, PORTABLE_2S, 100.0)
    # ~893 Wh at the DC bus over the 3.2-4.1 V window: above the 633 Wh label (which leaves margin for ageing)
    assert 850 < d.energy_Wh < 950
    assert d.energy_Wh > PORTABLE_2S.rated_energy_Wh
    assert d.energy_Wh == pytest.approx(d.power_W * d.duration_s / 3600)


def test_trajectory_arrays():
    d = simulate_discharge(FRESH, PORTABLE_2S, 200.0, dt_s=60.0)
    n = d.time_s.size
    assert d.string_voltage_V.shape == (n,) and d.current_A.shape == (n,) and d.group_voltage_V.shape == (n, 4)
    assert np.all(np.diff(d.time_s) > 0) and d.time_s[-1] == pytest.approx(d.duration_s)
    assert np.allclose(np.diff(d.time_s)[:-1], 60.0)
    assert np.all(d.current_A < 0)  # discharge; positive = charge
    assert np.allclose(-d.current_A * d.string_voltage_V, 200.0, rtol=1e-3)
    # starts near the BMS upper limit, ends with the limiting group at the cut-off
    assert d.group_voltage_V[0].max() == pytest.approx(4.1, abs=0.02)
    assert d.group_voltage_V[-1, d.limiting_group - 1] == pytest.approx(PORTABLE_2S.group_v_min_V, abs=1e-3)


def test_weakest_group_ends_the_discharge():
    mods = [ModuleState("a", (60.0, 61.0), (1.0, 1.0)), ModuleState("b", (52.0, 60.0), (1.0, 1.0))]
    d = simulate_discharge(mods, PORTABLE_2S, 100.0)
    assert d.limiting_group == 3
    strong = simulate_discharge([mods[0], ModuleState("c", (60.0, 60.0), (1.0, 1.0))], PORTABLE_2S, 100.0)
    assert d.energy_Wh < strong.energy_Wh


def test_resistance_costs_energy():
    lossy = [ModuleState(m.serial, m.group_capacity_Ah, (5.0, 5.0)) for m in FRESH]
    assert simulate_discharge(lossy, PORTABLE_2S, 500.0).energy_Wh < simulate_discharge(FRESH, PORTABLE_2S,
                                                                                       500.0).energy_Wh


def test_power_limit():
    lossy = [ModuleState(m.serial, m.group_capacity_Ah, (400.0, 400.0)) for m in FRESH]
    d = simulate_discharge(lossy, PORTABLE_2S, 200.0)
    assert d.end_reason in ("power_limit", "group_v_min")
    assert d.energy_Wh < 1.0


def test_closed_form_agrees_with_simulation():
    rng = np.random.default_rng(7)
    for power_W in (50.0, 100.0, 500.0):
        for _ in range(10):
            caps = rng.uniform(35, 66, 4)
            r0 = rng.uniform(0.5, 3.0, 4)
            mods = [ModuleState("a", tuple(caps[:2]), tuple(r0[:2])), ModuleState("b", tuple(caps[2:]), tuple(r0[2:]))]
            sim = simulate_discharge(mods, PORTABLE_2S, power_W).energy_Wh
            assert float(usable_energy_estimate_Wh(caps, r0, PORTABLE_2S, power_W)) == pytest.approx(sim, rel=0.01)


def test_fast_enough():
    simulate_discharge(FRESH, PORTABLE_2S, 100.0)
    t0 = time.perf_counter()
    for _ in range(50):
        simulate_discharge(FRESH, PORTABLE_2S, 100.0)
    assert (time.perf_counter() - t0) / 50 < 0.02


def test_bus_power():
    on, off = bus_power_W(USE_CASES["fridge"], PORTABLE_2S)
    assert on == pytest.approx(150 / 0.9 + 8) and off == 8.0
    assert bus_power_W(USE_CASES["phone"], PORTABLE_2S) == pytest.approx((18 / 0.92, 0.0))


def test_certify_fresh_pair():
    c = certify(FRESH, PORTABLE_2S, USE_CASES.values())
    assert c.reference_power_W == 100.0
    assert c.usable_Wh == pytest.approx(simulate_discharge(FRESH, PORTABLE_2S, 100.0).energy_Wh)
    runs = {u.name: u for u in c.use_cases}
    # amp: runtime = usable energy at its bus power / that power
    amp_bus_W = 100 / 0.9 + 8
    amp_Wh = simulate_discharge(FRESH, PORTABLE_2S, amp_bus_W).energy_Wh
    assert runs["guitar-amp"].runtime_h == pytest.approx(amp_Wh / amp_bus_W, rel=1e-6)
    assert runs["guitar-amp"].output_Wh == pytest.approx(100 * runs["guitar-amp"].runtime_h)
    assert 6.5 < runs["guitar-amp"].runtime_h < 8.5
    # phone: charges = energy to the phone / 15 Wh
    phone_Wh = simulate_discharge(FRESH, PORTABLE_2S, 18 / 0.92).energy_Wh
    assert runs["phone"].units == pytest.approx(phone_Wh * 0.92 * 0.85 / 15, rel=1e-6)
    assert runs["phone"].unit_name == "phone charges"
    # fridge: 58 W mean at the bus (inverter idle all the time)
    assert runs["fridge"].bus_power_mean_W == pytest.approx(0.3 * (150 / 0.9 + 8) + 0.7 * 8)
    assert 13 < runs["fridge"].runtime_h < 17
    assert runs["fridge"].units is None
    assert c.warnings == ()
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d


def test_runtimes_lossless_are_energy_over_mean_bus_power():
    """With R0 = 0 the cut-off does not depend on the load: runtime = loss-free energy / mean bus power."""
    caps = (62.0, 60.0, 61.0, 63.0)
    mods = [ModuleState("a", caps[:2], (0.0, 0.0)), ModuleState("b", caps[2:], (0.0, 0.0))]
    e_Wh = ocv_energy_Wh(caps)
    uses = [*USE_CASES.values(), UseCase("heater", "", 500.0, 0.5, "ac")]
    c = certify(mods, PORTABLE_2S, uses)
    for run, use in zip(c.use_cases, uses, strict=True):
        on, off = bus_power_W(use, PORTABLE_2S)
        mean_W = use.duty_cycle * on + (1 - use.duty_cycle) * off
        assert run.runtime_h == pytest.approx(e_Wh / mean_W, rel=0.005)
        assert run.limiting_group == 2 and run.limiting_module == "a"


def test_certify_warnings():
    aged = [ModuleState("a", (45.0, 40.0), (2.0, 2.0)), ModuleState("b", (45.0, 45.0), (2.0, 2.0))]
    c = certify(aged, PORTABLE_2S, USE_CASES.values())
    assert any("below the 633 Wh label" in w for w in c.warnings)
    assert any("group 2 (module a)" in w for w in c.warnings)


def test_wrong_module_count():
    with pytest.raises(ConfigError, match="takes 2 modules"):
        simulate_discharge(FRESH[:1], PORTABLE_2S, 100.0)
    with pytest.raises(InputFileError, match="groups"):
        simulate_discharge([FRESH[0], ModuleState("x", (65.0,), (1.0,))], PORTABLE_2S, 100.0)


def test_module_state_validation():
    with pytest.raises(InputFileError, match="positive capacity"):
        ModuleState("x", (65.0, 0.0), (1.0, 1.0))
    with pytest.raises(InputFileError, match="one value per group"):
        ModuleState("x", (65.0, 65.0), (1.0,))


def _diagnosis(groups, capacity_Ah=60.0, r0_mOhm=2.0):
    return Diagnosis(file="m.csv", format="arbin", sha256="", profile="leaf-24kwh-module", series_groups=2,
                     capacity_Ah=capacity_Ah, energy_Wh=None, soh_pct=None, r0_mOhm=r0_mOhm, groups=groups,
                     weakest_group=None, warnings=())


def test_module_state_from_diagnosis():
    groups = (GroupDiagnosis(1, 60.0, 0.8, 3.2, 3.2), GroupDiagnosis(2, 62.0, 1.1, 3.3, 3.3))
    s = module_state_from_diagnosis("M7", _diagnosis(groups))
    assert s == ModuleState("M7", (60.0, 62.0), (0.8, 1.1))
    # no group taps: every group carries the module's charge; R0 split evenly
    s = module_state_from_diagnosis("M8", _diagnosis(()))
    assert s == ModuleState("M8", (60.0, 60.0), (1.0, 1.0))
    with pytest.raises(InputFileError, match="no capacity"):
        module_state_from_diagnosis("M9", _diagnosis((), capacity_Ah=None))
    with pytest.raises(InputFileError, match="no R0"):
        module_state_from_diagnosis("M9", _diagnosis((), r0_mOhm=None))
    assert module_state_from_diagnosis("M9", _diagnosis((), r0_mOhm=None), default_r0_mOhm=3.0).group_r0_mOhm == (
        1.5, 1.5)


def test_use_case_power_limit_warning():
    lossy = [ModuleState(m.serial, m.group_capacity_Ah, (150.0, 150.0)) for m in FRESH]
    c = certify(lossy, PORTABLE_2S, [UseCase("welder", "", 250.0, 1.0, "ac")])
    assert c.use_cases[0].warnings and "power limit" in c.use_cases[0].warnings[0]
    assert c.to_dict()["use_cases"][0]["warnings"] == list(c.use_cases[0].warnings)
