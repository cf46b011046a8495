import json
import math

import pytest

from releaf.errors import ConfigError
from releaf.grading import Grade, grade, grading_metrics, load_policy
from releaf.schema.records import Diagnosis, GroupDiagnosis

POLICY_YAML = """\
name: test
version: "2.0"
profile: leaf-24kwh-module
rules:
  soh_pct: {A: 80, B: 70, C: 60}
  r0_mOhm: {A: 3.0, B: 4.0, C: 5.5, if_missing: C}
screens:
  max_temperature_C: 60
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


def test_default_policy_loads(policy):
    assert policy.name == "leaf-default"
    assert policy.version == "1.0.0"
    assert policy.profile == "leaf-24kwh-module"
    assert set(policy.rules) == {"soh_pct", "r0_mOhm", "group_capacity_imbalance_pct", "group_end_voltage_spread_V"}
    assert policy.screens["max_temperature_C"] == 60.0
    assert policy.assembly == {"allow_mixed_grades": False}


def test_policy_from_path(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(POLICY_YAML)
    p = load_policy(str(f))
    assert (p.name, p.version) == ("test", "2.0")
    assert p.rules["soh_pct"]["if_missing"] == "reject"


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
    g = grade(make_diagnosis(), policy)
    assert g.grade == "A"
    assert g.reasons == ()
    assert (g.policy_name, g.policy_version) == ("leaf-default", "1.0.0")


def test_soh_reason_names_value_unit_and_threshold(policy):
    g = grade(make_diagnosis(soh_pct=67.2), policy)
    assert g.grade == "C"
    assert g.reasons == ("SOH 67.2 % below 70 % needed for B",)


def test_worst_rule_wins(policy):
    g = grade(make_diagnosis(soh_pct=85.0, r0_mOhm=3.5), policy)
    assert g.grade == "B"
    assert g.reasons == ("R0 3.5 mOhm above 3 mOhm allowed for A",)
    g = grade(make_diagnosis(soh_pct=75.0, r0_mOhm=5.0), policy)
    assert g.grade == "C"
    assert len(g.reasons) == 2


def test_below_c_is_reject(policy):
    g = grade(make_diagnosis(soh_pct=55.0), policy)
    assert g.grade == "reject"
    assert g.reasons == ("SOH 55 % below 60 % needed for C",)


def test_missing_capacity_rejects(policy):
    g = grade(make_diagnosis(soh_pct=None), policy)
    assert g.grade == "reject"
    assert any("no full discharge to measure capacity" in r for r in g.reasons)


def test_nan_is_missing(policy):
    g = grade(make_diagnosis(soh_pct=math.nan), policy)
    assert g.grade == "reject"
    assert g.metrics["soh_pct"] is None


def test_if_missing(policy):
    # no R0 -> at best C; no group taps -> imbalance at best C; end-voltage spread ignored
    g = grade(make_diagnosis(r0_mOhm=None), policy)
    assert g.grade == "C"
    assert g.reasons == ("R0 not measured: at best C (policy if_missing)",)
    g = grade(make_diagnosis(groups=()), policy)
    assert g.grade == "C"
    assert len(g.reasons) == 1 and "group capacity imbalance not measured" in g.reasons[0]


@pytest.mark.parametrize(
    ("kw", "text"),
    [
        ({"max_temperature_C": 65.0}, "temperature 65 °C above the 60 °C safety screen"),
        ({"min_group_voltage_V": 2.4}, "lowest group voltage 2.4 V below the 2.5 V safety screen"),
        ({"soh_pct": 110.0}, "SOH 110 % above the 105 % safety screen"),
    ],
)
def test_safety_screens_reject(policy, kw, text):
    g = grade(make_diagnosis(**kw), policy)
    assert g.grade == "reject"
    assert text in g.reasons


def test_screen_not_applied_when_not_measured(policy):
    assert grade(make_diagnosis(max_temperature_C=None), policy).grade == "A"


def test_profile_mismatch_is_a_config_error(policy):
    with pytest.raises(ConfigError, match="leaf-24kwh-cell"):
        grade(make_diagnosis(profile="leaf-24kwh-cell"), policy)


def test_grade_to_dict_is_json(policy):
    d = grade(make_diagnosis(soh_pct=67.2), policy).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["grade"] == "C" and d["metrics"]["soh_pct"] == 67.2
    assert isinstance(Grade("A", (), "p", "1", {}).to_dict()["reasons"], list)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('version: "2.0"\n', "", "version: missing"),
        ('version: "2.0"', "version: 2.0", "version: write the version as a quoted string"),
        ("  r0_mOhm:", "  r1_mOhm:", "rules.r1_mOhm: unknown rule"),
        ("{A: 80, B: 70, C: 60}", "{A: 60, B: 70, C: 80}", "rules.soh_pct: thresholds not monotonic"),
        ("{A: 3.0, B: 4.0", "{A: 4.5, B: 4.0", "rules.r0_mOhm: thresholds not monotonic"),
        ("C: 5.5, if_missing: C", "C: 5.5, if_missing: D", "rules.r0_mOhm.if_missing"),
        ("{A: 80, B: 70, C: 60}", "{A: 80, B: 70}", "rules.soh_pct.C: missing threshold"),
        ("{A: 80, B: 70, C: 60}", "{A: 80, B: 70, C: 60, if_missing: C}", "rules.soh_pct.if_missing"),
        ("{A: 80, B: 70, C: 60}", "{A: high, B: 70, C: 60}", "rules.soh_pct.A: expected a number"),
        ("max_temperature_C", "max_humidity_pct", "screens.max_humidity_pct: unknown screen"),
        ("profile: leaf-24kwh-module", "profile: tesla", "profile: unknown battery profile"),
        ("name: test", "name: test\ncolour: green", "colour: unknown key"),
    ],
)
def test_malformed_policy_names_file_and_key(tmp_path, old, new, key):
    assert old in POLICY_YAML
    f = tmp_path / "bad.yaml"
    f.write_text(POLICY_YAML.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_policy(str(f))
    assert err.value.file == str(f)
    assert key in err.value.message


def test_yaml_syntax_error_has_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nrules: [1, 2\nversion: '1'\n")
    with pytest.raises(ConfigError) as err:
        load_policy(str(f))
    assert err.value.line is not None


def test_unknown_policy_lists_packaged():
    with pytest.raises(ConfigError, match="leaf-default"):
        load_policy("no-such-policy")
