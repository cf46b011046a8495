"""The safety invariant: whatever the policy and whatever overrides are attempted, a module that failed a safety
screen never ends up in a station.

Policies are generated inside the validation limits (and validated by the loader's own models); lots of synthetic
diagnoses are graded together (``grade_lot``), people try random overrides (refusals are caught), some callers even
forge a grade by hand, and the chain assembles what is left.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from releaf import PlantChain, parameters
from releaf.assembly import ModuleCandidate, assemble_lot
from releaf.errors import ConfigError, OverrideRefused
from releaf.grading import ModuleEvidence, grade_lot, override, policy_from_data
from releaf.schema.records import (
    GRADES,
    AssemblyStatus,
    Diagnosis,
    GradeClass,
    GroupDiagnosis,
    Inspection,
    ModuleEntry,
    ModuleResult,
)

MAX_EXAMPLES = 600  # ~16 s alone on the shared 2-core machine, ~40 s while the whole suite runs beside it

BASE = yaml.safe_load(parameters.policy_text("leaf-default")[1])
FLAGS = ("none", "swelling", "leak", "terminal-damage", "casing-damage", "corrosion", "burn-marks", "dirty")


@pytest.fixture(scope="module")
def chain():
    """The packaged chain with a design that takes every reusable destination: more modules reach assembly."""
    c = PlantChain.from_parameters()
    return c.replace(design=dataclasses.replace(c.design, destinations=()))


def _sorted3(lo: float, hi: float, *, descending: bool):
    return st.lists(st.floats(lo, hi), min_size=3, max_size=3).map(lambda v: sorted(v, reverse=descending))


@st.composite
def policies(draw):
    """A policy anywhere inside the validation limits, validated by the loader's models.

    Half the policies are drawn over the whole validation range, half over a plausible one (so that the
    lots build stations often enough for the invariant to be tested on them).
    """
    wide = draw(st.booleans())
    data = copy.deepcopy(BASE)
    s = data["screens"]
    a, b, c = draw(_sorted3(1.0, 100.0, descending=True) if wide else _sorted3(40.0, 90.0, descending=True))
    s["capacity"]["soh_pct"].update(A=a, B=b, C=c)
    s["capacity"]["max_soh_pct"]["value"] = draw(st.floats(100.0, 150.0))
    a, b, c = draw(_sorted3(0.5, 8.0, descending=False) if wide else _sorted3(2.5, 8.0, descending=False))
    s["resistance"]["r0_mOhm"].update(A=a, B=b, C=c, if_missing=draw(st.sampled_from([*GRADES, "ignore"])))
    s["resistance"]["lot_outlier"].update(max_robust_z=draw(st.floats(0.5, 6.0)), min_lot_size=draw(st.integers(3, 8)),
                                          grade=draw(st.sampled_from(["B", "C", "reject"])))
    for rule, hi in (("group_capacity_imbalance_pct", 40.0), ("group_end_voltage_spread_V", 1.0)):
        a, b, c = draw(_sorted3(0.0, hi, descending=False) if wide else _sorted3(hi / 4, hi, descending=False))
        s["imbalance"][rule].update(A=a, B=b, C=c, if_missing=draw(st.sampled_from([*GRADES, "ignore"])))
    s["ocv_window"]["min_group_voltage_V"]["value"] = draw(st.floats(0.5, 3.0))
    s["temperature"]["max_temperature_C"]["value"] = draw(st.floats(1.0, 100.0) if wide else st.floats(45.0, 100.0))
    s["self_discharge"]["max_pct_per_day"]["value"] = draw(st.floats(0.1, 10.0))
    s["visual_inspection"]["damage_flags"]["value"] = draw(
        st.lists(st.sampled_from(FLAGS[1:]), min_size=1, max_size=4, unique=True))
    s["visual_inspection"]["required"]["value"] = draw(st.booleans())
    s["bms_history"]["max_abs_rest_deviation_mV"].update(value=draw(st.floats(5.0, 100.0)),
                                                         grade=draw(st.sampled_from(["B", "C", "reject"])))
    data["lifetime_data"]["required"] = draw(st.booleans())
    data["assembly"]["allow_mixed_grades"]["value"] = draw(st.booleans())
    return policy_from_data(data, "<generated>")


def risky(ok, bad):
    """Mostly a healthy value, one draw in six a bad one, sometimes not measured."""
    return st.integers(0, 11).flatmap(lambda k: st.none() if k == 0 else bad if k <= 2 else ok)


@st.composite
def modules(draw, k: int):
    serial = f"S{k:02d}"
    capacity = draw(risky(st.floats(40.0, 65.0), st.floats(20.0, 75.0)))
    r0 = draw(risky(st.floats(1.5, 2.5), st.floats(0.8, 9.0)))
    n = draw(st.sampled_from([2] * 7 + [6]))
    spread = draw(st.floats(0.0, 0.3))
    vmin = draw(risky(st.floats(3.0, 3.6), st.floats(1.5, 3.6)))
    groups = tuple(GroupDiagnosis(group=g, capacity_Ah=None if capacity is None else capacity * (1 - spread * (g - 1)),
                                  r0_mOhm=None if r0 is None else r0 / n, end_voltage_V=3.0 + 0.05 * g,
                                  min_voltage_V=vmin) for g in range(1, n + 1))
    d = Diagnosis(file=f"{serial}.csv", format="arbin-csv", sha256=serial.ljust(64, "0"),
                  profile="leaf-24kwh-module", series_groups=n, capacity_Ah=capacity,
                  energy_Wh=None if capacity is None else capacity * 7.5,
                  soh_pct=None if capacity is None else capacity / 65 * 100, r0_mOhm=r0, groups=groups,
                  weakest_group=1, warnings=(), min_group_voltage_V=vmin,
                  max_temperature_C=draw(risky(st.floats(15.0, 40.0), st.floats(40.0, 95.0))),
                  self_discharge_pct_per_day=draw(risky(st.floats(0.0, 0.1), st.floats(0.1, 6.0))))
    flags = draw(risky(st.just(("none",)), st.lists(st.sampled_from(FLAGS), min_size=1, max_size=2).map(tuple)))
    intake = draw(risky(st.fixed_dictionaries({"rest_deviation_mV": st.floats(-5.0, 5.0), "reasons": st.just([])}),
                        st.fixed_dictionaries({"rest_deviation_mV": st.floats(-120.0, 40.0),
                                               "reasons": st.lists(st.just("sags more under load"), max_size=2)})))
    entry = ModuleEntry(path=Path(f"{serial}.csv"), module_serial=serial)
    return entry, ModuleEvidence(d, None if flags is None else Inspection(flags), intake)


@st.composite
def lots(draw):
    size = draw(st.integers(2, 12))
    return [draw(modules(k)) for k in range(size)]


attempts = st.lists(st.tuples(st.integers(0, 11), st.sampled_from([*GRADES, "recycling"]),
                              st.sampled_from(["ana", "ana", ""]), st.sampled_from(["customer order"] * 2 + [""]),
                              st.integers(0, 4).map(lambda k: k == 0)), max_size=8)


@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies(), lot=lots(), tries=attempts)
def test_no_safety_failure_is_ever_placed_in_a_station(chain, policy, lot, tries):
    graded = grade_lot([ev for _, ev in lot], policy)
    unsafe = {e.module_serial for (e, _), g in zip(lot, graded, strict=True) if g.failed_safety}
    for g in graded:  # a safety failure is always a reject bound for recycling
        if g.failed_safety:
            assert g.grade == GradeClass.REJECT and g.destination == "recycling"
            assert all(s.allows == GradeClass.REJECT for s in g.failed_screens if s.safety)
    modules_ = [ModuleResult(entry=e, diagnosis=ev.diagnosis, grade=g) for (e, ev), g in zip(lot, graded, strict=True)]
    for k, new, user, reason, forge in tries:
        if k >= len(modules_):
            continue
        m = modules_[k]
        if forge:  # a caller that bypasses override() and writes the grade by hand
            forged = dataclasses.replace(m.grade, grade=GradeClass("reject" if new == "recycling" else new))
            modules_[k] = dataclasses.replace(m, grade=forged)
            continue
        try:
            o = override(m.grade, new, reason=reason, user=user, role="quality")
        except (OverrideRefused, ConfigError):
            if m.grade.failed_safety and user and reason:
                event("a safety failure's override to a product refused")
            assert not (user and reason) or (m.grade.failed_safety and new not in ("reject", "recycling"))
            continue
        assert not m.grade.failed_safety or o.grade == GradeClass.REJECT
        assert o.failed_safety == m.grade.failed_safety and o.policy_grade == m.grade.policy_grade
        modules_[k] = dataclasses.replace(m, grade=o)
    out = chain.replace(policy=policy).run_from_grades(modules_)
    in_stations = {s for station in out.stations for s in station.modules}
    event(f"stations built: {min(len(out.stations), 3)}{'+' if len(out.stations) >= 3 else ''}")
    event(f"lot has a safety failure: {bool(unsafe)}")
    assert not (in_stations & unsafe)
    for m in out.modules:
        if m.serial in unsafe:
            assert m.status in (AssemblyStatus.REJECTED, AssemblyStatus.REFUSED) and m.station is None
    # the same modules into stationary packs (releaf assemble's path): forged grades included
    candidates = [ModuleCandidate(m.serial, str(m.grade.grade),
                                  tuple(g.capacity_Ah or 1.0 for g in m.diagnosis.groups),
                                  tuple(g.r0_mOhm or 1.0 for g in m.diagnosis.groups),
                                  failed_safety=m.grade.failed_safety)
                  for m in modules_ if m.diagnosis.series_groups == 2]
    packs = assemble_lot(candidates, "2s2p", allow_mixed_grades=True, group_capacity_tolerance=1.0,
                         group_r0_tolerance=1.0)  # any spread: as many packs as the lot allows
    in_packs = {s for pack in packs.stations for group in pack.groups for s in group}
    event(f"packs built: {min(len(packs.stations), 2)}")
    assert not (in_packs & unsafe)
