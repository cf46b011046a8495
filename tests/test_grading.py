import copy
import dataclasses
import json
import math
from datetime import UTC, datetime

import pytest
import yaml

from releaf import parameters
from releaf.errors import ConfigError, OverrideRefused
from releaf.grading import (
    SAFETY_SCREENS,
    SCREEN_ORDER,
    ModuleEvidence,
    grade,
    grade_lot,
    grading_metrics,
    load_policy,
    override,
    policy_from_data,
    waive_lifetime_data,
)
from releaf.schema.records import GRADES, Diagnosis, Grade, GroupDiagnosis, Inspection

POLICY_YAML = """\
name: test
version: "2.0"
profile: leaf-24kwh-module
lifetime_data: {required: false, why: "bench tests of a lab lot"}
screens:
  visual_inspection:
    damage_flags: {value: [swelling, leak], why: "physical damage"}
    required: {value: false, why: "not yet recorded"}
  ocv_window:
    min_group_voltage_V: {value: 2.5, why: "over-discharge"}
  capacity:
    soh_pct: {A: 80, B: 70, C: 60, why: "4R tiers"}
    max_soh_pct: {value: 105, why: "implausible"}
  resistance:
    r0_mOhm: {A: 3.0, B: 4.0, C: 5.5, if_missing: C, why: "power"}
  temperature:
    max_temperature_C: {value: 60, why: "thermal fault"}
destinations:
  A: {value: ev-replacement, why: "4R Energy"}
  B: {value: stationary-storage, why: "4R Energy"}
  C: {value: portable-station, why: "4R Energy"}
  reject: {value: recycling, why: "4R Energy"}
"""


def make_diagnosis(soh_pct=90.0, r0_mOhm=2.0, groups=((58.0, 1.0, 3.30), (58.5, 1.0, 3.32)), **kw):
    capacity = None if soh_pct is None else soh_pct / 100 * 65.0
    gd = tuple(GroupDiagnosis(group=k, capacity_Ah=c, r0_mOhm=r, end_voltage_V=v, min_voltage_V=v)
               for k, (c, r, v) in enumerate(groups, start=1))
    fields = dict(file="m1.csv", format="arbin", sha256="0" * 64, profile="leaf-24kwh-module", series_groups=2,
                  capacity_Ah=capacity, energy_Wh=None, soh_pct=soh_pct, r0_mOhm=r0_mOhm, groups=gd,
                  weakest_group=1, warnings=(), max_temperature_C=30.0)
    fields.update(kw)
    return Diagnosis(**fields)


@pytest.fixture(scope="module")
def policy():
    return load_policy()


def with_history(d: Diagnosis, **kw) -> ModuleEvidence:
    """A module with recorded lifetime data (an intake row with nothing remarkable) and a clean inspection."""
    return ModuleEvidence(d, inspection=kw.pop("inspection", Inspection(("none",))),
                          intake=kw.pop("intake", {"rest_deviation_mV": -3.0, "reasons": []}), **kw)


def graded(policy, **kw):
    return grade(with_history(make_diagnosis(**kw)), policy)


def test_default_policy_loads(policy):
    assert (policy.name, policy.version, policy.profile) == ("leaf-default", "2.0.0", "leaf-24kwh-module")
    assert policy.lifetime_data.required and "IEC 63338" in policy.lifetime_data.why
    assert policy.screens.temperature.max_temperature_C.value == 60.0
    assert policy.allow_mixed_grades is False
    assert (policy.group_capacity_tolerance, policy.group_r0_tolerance) == (0.05, 0.15)
    assert "Gogoana" in policy.assembly.group_r0_tolerance.why
    assert [policy.destination(g) for g in GRADES] == ["ev-replacement", "stationary-storage", "portable-station",
                                                      "recycling"]


def test_policy_from_path(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(POLICY_YAML)
    p = load_policy(str(f))
    assert (p.name, p.version) == ("test", "2.0")
    assert p.screens.capacity.soh_pct.if_missing == "reject"
    assert p.screens.bms_history is None and p.screens.self_discharge is None
    # no assembly section: releaf's defaults for the NsMp parallel-group tolerances
    assert (p.group_capacity_tolerance, p.group_r0_tolerance) == (0.05, 0.15)


@pytest.mark.parametrize("value, ok", [(0.1, True), (0.0, True), (1.0, True), (1.5, False), (-0.05, False)])
def test_policy_group_tolerances(tmp_path, value, ok):
    f = tmp_path / "tol.yaml"
    f.write_text(POLICY_YAML + f"assembly:\n  group_capacity_tolerance: {{value: {value}, why: \"bench lots\"}}\n")
    if ok:
        assert load_policy(str(f)).group_capacity_tolerance == value
    else:
        expected = f"assembly.group_capacity_tolerance: {value:g} is not a fraction from 0 to 1"
        with pytest.raises(ConfigError, match=expected):
            load_policy(str(f))


def test_metrics():
    m = grading_metrics(make_diagnosis(groups=((50.0, 1.0, 3.2), (55.0, 1.2, 3.35))))
    assert m["group_capacity_imbalance_pct"] == pytest.approx(5 / 55 * 100)
    assert m["group_end_voltage_spread_V"] == pytest.approx(0.15)
    assert m["min_group_voltage_V"] == pytest.approx(3.2)
    assert m["soh_pct"] == 90.0 and m["r0_mOhm"] == 2.0 and m["max_temperature_C"] == 30.0


def test_metrics_without_groups():
    m = grading_metrics(make_diagnosis(groups=()))
    assert m["group_capacity_imbalance_pct"] is None
    assert m["group_end_voltage_spread_V"] is None
    assert m["min_group_voltage_V"] is None


def test_fresh_module_is_a_without_reasons(policy):
    g = graded(policy)
    assert g.grade == "A" and g.destination == "ev-replacement"
    assert g.reasons == () and not g.failed_safety
    assert (g.policy_name, g.policy_version) == ("leaf-default", "2.0.0")


def test_screens_are_recorded_in_ul1974_order(policy):
    g = graded(policy)
    names = [s.name for s in g.screens]
    assert names == [n for n in SCREEN_ORDER if n in names]
    assert names[:2] == ["visual_inspection", "lifetime_data"] and names[-1] == "temperature"
    assert {s.name for s in g.screens if s.safety} == SAFETY_SCREENS
    assert next(s for s in g.screens if s.name == "resistance_outlier").passed is None  # graded alone
    assert next(s for s in g.screens if s.name == "self_discharge").passed is None  # not measured


def test_no_lifetime_data_is_not_reused(policy):
    """IEC 63338: without recorded lifetime data (no intake/BMS history) a module is not reused."""
    g = grade(make_diagnosis(), policy)
    assert g.grade == "reject" and g.destination == "recycling" and not g.failed_safety
    assert g.reasons == ("no recorded lifetime data (no intake/BMS history): not reused (IEC 63338)",)
    waived = waive_lifetime_data(policy, "lab lot without BMS logs")
    g = grade(make_diagnosis(), waived)
    assert g.grade == "A" and g.policy_name == "leaf-default+no-lifetime-data"
    life = next(s for s in g.screens if s.name == "lifetime_data")
    assert life.passed is None and "switched off" in life.reason and "lab lot" in life.reason
    with pytest.raises(ConfigError, match="why"):
        waive_lifetime_data(policy, " ")


def test_soh_reason_names_value_unit_and_threshold(policy):
    g = graded(policy, soh_pct=67.2)
    assert g.grade == "C" and g.destination == "portable-station"
    assert g.reasons == ("SOH 67.2 % below 70 % needed for B",)


def test_worst_rule_wins(policy):
    g = graded(policy, soh_pct=85.0, r0_mOhm=3.5)
    assert g.grade == "B" and g.destination == "stationary-storage"
    assert g.reasons == ("R0 3.5 mOhm above 3 mOhm allowed for A",)
    g = graded(policy, soh_pct=75.0, r0_mOhm=5.0)
    assert g.grade == "C"
    assert len(g.reasons) == 2


def test_below_c_is_reject(policy):
    g = graded(policy, soh_pct=55.0)
    assert g.grade == "reject" and g.destination == "recycling" and not g.failed_safety
    assert g.reasons == ("SOH 55 % below 60 % needed for C",)


def test_missing_capacity_rejects(policy):
    g = graded(policy, soh_pct=None)
    assert g.grade == "reject"
    assert any("no full discharge to measure capacity" in r for r in g.reasons)


def test_nan_is_missing(policy):
    g = graded(policy, soh_pct=math.nan)
    assert g.grade == "reject"
    assert g.metrics["soh_pct"] is None


def test_if_missing(policy):
    # no R0 -> at best C; no group taps -> imbalance at best C; end-voltage spread ignored
    g = graded(policy, r0_mOhm=None)
    assert g.grade == "C"
    assert g.reasons == ("R0 not measured: at best C (policy if_missing)",)
    g = graded(policy, groups=())
    assert g.grade == "C"
    assert len(g.reasons) == 1 and "group capacity imbalance not measured" in g.reasons[0]


@pytest.mark.parametrize(
    ("kw", "text", "screen"),
    [
        ({"max_temperature_C": 65.0}, "temperature 65 °C above the 60 °C safety screen", "temperature"),
        ({"min_group_voltage_V": 2.4}, "lowest group voltage 2.4 V below the 2.5 V safety screen", "ocv_window"),
        ({"self_discharge_pct_per_day": 3.5}, "self-discharge 3.5 %/day above the 2 %/day safety screen",
         "self_discharge"),
    ],
)
def test_safety_screens_reject(policy, kw, text, screen):
    g = graded(policy, **kw)
    assert g.grade == "reject" and g.failed_safety and g.destination == "recycling"
    assert text in g.reasons
    assert [s.name for s in g.failed_screens] == [screen]


def test_visual_damage_is_a_safety_failure(policy):
    g = grade(with_history(make_diagnosis(), inspection=Inspection(("swelling", "dirty"))), policy)
    assert g.grade == "reject" and g.failed_safety
    assert g.reasons == ("visual inspection found swelling (safety screen)",)
    # not inspected: graded on the measurements (the packaged policy does not require the record yet)
    g = grade(with_history(make_diagnosis(), inspection=None), policy)
    assert g.grade == "A" and g.screens[0].passed is None


def test_implausible_capacity_rejects_without_safety(policy):
    g = graded(policy, soh_pct=110.0)
    assert g.grade == "reject" and not g.failed_safety
    assert "SOH 110 % above the 105 % plausibility limit (re-test)" in g.reasons


def test_intake_history_lowers_the_grade(policy):
    g = grade(with_history(make_diagnosis(), intake={"rest_deviation_mV": -55.0, "reasons": []}), policy)
    assert g.grade == "C" and g.reasons[0].startswith("intake rest deviation from the pack median -55 mV")
    g = grade(with_history(make_diagnosis(), intake={"rest_deviation_mV": 1.0, "reasons": ["sags more"]}), policy)
    assert g.grade == "C" and [s.name for s in g.failed_screens] == ["bms_outlier_flags"]


def test_resistance_outlier_against_the_lot(policy):
    lot = [with_history(make_diagnosis(r0_mOhm=r, file=f"m{k}.csv"))
           for k, r in enumerate([2.0, 2.05, 1.95, 2.1, 2.0, 1.9, 2.02, 2.9])]
    grades = grade_lot(lot, policy)
    assert [g.grade for g in grades] == ["A"] * 7 + ["C"]
    assert "robust SD above the lot median" in grades[-1].reasons[0]
    assert grades[-1].metrics["r0_robust_z"] > 3.5
    # the same module alone is an A: its absolute R0 is within the A limit
    assert grade(lot[-1], policy).grade == "A"
    # a lot smaller than min_lot_size is not compared
    assert all(g.grade == "A" for g in grade_lot(lot[-4:], policy))


def test_screen_not_applied_when_not_measured(policy):
    assert graded(policy, max_temperature_C=None).grade == "A"


def test_profile_mismatch_is_a_config_error(policy):
    with pytest.raises(ConfigError, match="leaf-24kwh-cell"):
        grade(make_diagnosis(profile="leaf-24kwh-cell"), policy)


def test_grade_to_dict_is_json(policy):
    g = graded(policy, soh_pct=67.2)
    d = g.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["grade"] == "C" and d["metrics"]["soh_pct"] == 67.2 and d["schema_version"] == "1.1.0"
    assert d["destination"] == "portable-station" and d["screens"][0]["name"] == "visual_inspection"
    assert Grade.from_dict(d).screens == tuple(
        dataclasses.replace(s, value=Grade.from_dict(d).screens[k].value) for k, s in enumerate(g.screens))
    assert isinstance(Grade("A", (), "p", "1", {}).to_dict()["reasons"], list)


# ---- override ------------------------------------------------------------------------------------------------

def test_override_keeps_the_policy_grade(policy):
    g = graded(policy, soh_pct=75.0)
    at = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    o = override(g, "C", reason="customer order for portable stations", user="ana", role="quality", at=at)
    assert (o.grade, o.destination, o.policy_grade) == ("C", "portable-station", "B")
    assert o.override.original_grade == "B" and o.override.original_destination == "stationary-storage"
    assert (o.override.user, o.override.role, o.override.at) == ("ana", "quality", at)
    assert o.reasons[-1] == "overridden to C by ana (quality): customer order for portable stations"
    again = override(o, "A", reason="re-measured", user="bo", role="lead", at=at)
    assert again.override.original_grade == "B" and again.destination == "ev-replacement"
    assert json.loads(json.dumps(o.to_dict()))["override"]["at"].startswith("2026-12-05T12:00")


def test_override_of_a_safety_failure_is_refused(policy):
    g = graded(policy, max_temperature_C=75.0)
    with pytest.raises(OverrideRefused, match="temperature"):
        override(g, "C", reason="looks fine", user="ana", role="quality")
    assert override(g, "recycling", reason="confirmed", user="ana", role="quality").destination == "recycling"


@pytest.mark.parametrize(("user", "reason"), [("", "why"), ("ana", ""), ("  ", "why"), ("ana", " ")])
def test_override_needs_user_and_reason(policy, user, reason):
    with pytest.raises(OverrideRefused):
        override(graded(policy, soh_pct=75.0), "C", reason=reason, user=user, role="quality")


def test_override_refuses_unknown_grade_and_naive_time(policy):
    g = graded(policy, soh_pct=75.0)
    with pytest.raises(ConfigError, match="unknown grade"):
        override(g, "D", reason="x", user="ana", role="q")
    with pytest.raises(ConfigError, match="timezone"):
        override(g, "C", reason="x", user="ana", role="q", at=datetime(2026, 1, 1))


# ---- the policy file -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("old", "new", "key", "line"),
    [
        ('version: "2.0"\n', "", "version: missing", None),
        ('version: "2.0"', "version: 2.0", "version: write the version as a quoted string", 2),
        ("    r0_mOhm:", "    r1_mOhm:", "screens.resistance.r1_mOhm: unknown key", 15),
        ("{A: 80, B: 70, C: 60,", "{A: 60, B: 70, C: 80,", "screens.capacity.soh_pct: thresholds not monotonic", 12),
        ("{A: 3.0, B: 4.0", "{A: 4.5, B: 4.0", "screens.resistance.r0_mOhm: thresholds not monotonic", 15),
        ("C: 5.5, if_missing: C", "C: 5.5, if_missing: D", "screens.resistance.r0_mOhm.if_missing", 15),
        ("{A: 80, B: 70, C: 60,", "{A: 80, B: 70,", "screens.capacity.soh_pct.C: missing threshold", 12),
        ("C: 60, why", "C: 60, if_missing: C, why", "screens.capacity.soh_pct.if_missing: not allowed", 12),
        ("{A: 80, B: 70, C: 60,", "{A: high, B: 70, C: 60,", "screens.capacity.soh_pct.A: expected a number", 12),
        ("max_temperature_C", "max_humidity_pct", "screens.temperature.max_humidity_pct: unknown key", 17),
        ("profile: leaf-24kwh-module", "profile: tesla", "profile: unknown battery profile", None),
        ("name: test", "name: test\ncolour: green", "colour: unknown key", 2),
        (', why: "power"', "", "screens.resistance.r0_mOhm.why: missing rationale", 15),
        ('{value: 60, why: "thermal fault"}', "{value: 60}", "screens.temperature.max_temperature_C.why: missing "
         "rationale", 17),
        ('why: "over-discharge"', 'why: ""', "screens.ocv_window.min_group_voltage_V.why: rationale too short", 10),
        ("{value: 2.5,", "{value: 3.5,", "screens.ocv_window.min_group_voltage_V: 3.5 V is outside", None),
        ('value: recycling', 'value: stationary-storage', "destinations.reject: a rejected module goes to", 22),
        ("[swelling, leak]", "[swelling, none]", "screens.visual_inspection.damage_flags: 'none'", 7),
    ],
)
def test_malformed_policy_names_file_key_and_line(tmp_path, old, new, key, line):
    assert old in POLICY_YAML
    f = tmp_path / "bad.yaml"
    f.write_text(POLICY_YAML.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_policy(str(f))
    assert err.value.file == str(f)
    assert key in err.value.message
    if line is not None:
        assert err.value.line == line


def test_packaged_policy_gives_every_threshold_a_reason():
    """Removing any `why` of the packaged policy is refused (every threshold carries its rationale)."""
    data = yaml.safe_load(parameters.policy_text("leaf-default")[1])

    def paths(node, at=()):
        if isinstance(node, dict):
            if "why" in node:
                yield at
            for k, v in node.items():
                yield from paths(v, (*at, k))

    found = list(paths(data))
    assert len(found) >= 15
    for at in found:
        bad = copy.deepcopy(data)
        node = bad
        for k in at:
            node = node[k]
        del node["why"]
        with pytest.raises(ConfigError, match="missing rationale"):
            policy_from_data(bad, "leaf-default.yaml")


def test_yaml_syntax_error_has_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nrules: [1, 2\nversion: '1'\n")
    with pytest.raises(ConfigError) as err:
        load_policy(str(f))
    assert err.value.line is not None


def test_unknown_policy_lists_packaged():
    with pytest.raises(ConfigError, match="leaf-default"):
        load_policy("no-such-policy")
