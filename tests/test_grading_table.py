"""grade_table (vectorised, for fleets) agrees with grade / grade_lot module by module."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from releaf.grading import ModuleEvidence, features, grade, grade_lot, grade_table, load_policy, waive_lifetime_data
from releaf.grading_table import INPUT_COLUMNS
from releaf.schema.records import Diagnosis, GroupDiagnosis, Inspection

N_MODULES = 400
FLAGS = ("none", "swelling", "leak", "terminal-damage", "dirty")


def generated_lot(seed: int = 11, n: int = N_MODULES) -> list[ModuleEvidence]:
    """Modules spread over every screen's pass/fail/missing cases (healthy most of the time)."""
    rng = np.random.default_rng(seed)

    def maybe(ok, bad, p_bad=0.15, p_none=0.08):
        u = rng.random()
        return None if u < p_none else (bad() if u < p_none + p_bad else ok())

    out = []
    for k in range(n):
        cap = maybe(lambda: rng.uniform(40, 65), lambda: rng.uniform(20, 72))
        r0 = maybe(lambda: rng.uniform(1.5, 2.8), lambda: rng.uniform(0.8, 8.0))
        vmin = maybe(lambda: rng.uniform(3.0, 3.5), lambda: rng.uniform(2.0, 3.0))
        spread = rng.uniform(0, 0.15)
        ngroups = 0 if rng.random() < 0.05 else 2
        groups = tuple(GroupDiagnosis(group=g, capacity_Ah=None if cap is None else cap * (1 - spread * (g - 1)),
                                      r0_mOhm=None, end_voltage_V=3.0 + rng.uniform(0, 0.3), min_voltage_V=vmin)
                       for g in range(1, ngroups + 1))
        d = Diagnosis(file=f"m{k}.csv", format="arbin-csv", sha256=f"{k:064d}", profile="leaf-24kwh-module",
                      series_groups=2, capacity_Ah=cap, energy_Wh=None, soh_pct=None if cap is None else cap / 65 * 100,
                      r0_mOhm=r0, groups=groups, weakest_group=1, warnings=(),
                      min_group_voltage_V=vmin if ngroups == 0 else None,
                      max_temperature_C=maybe(lambda: rng.uniform(20, 45), lambda: rng.uniform(45, 80)),
                      self_discharge_pct_per_day=maybe(lambda: rng.uniform(0, 1.5), lambda: rng.uniform(1.5, 5)))
        flags = maybe(lambda: ("none",), lambda: tuple(rng.choice(FLAGS, size=rng.integers(1, 3))))
        intake = maybe(lambda: {"rest_deviation_mV": rng.uniform(-10, 10), "reasons": []},
                       lambda: {"rest_deviation_mV": rng.uniform(-80, 30), "reasons": ["x"] * int(rng.integers(0, 3))})
        out.append(ModuleEvidence(d, None if flags is None else Inspection(flags), intake))
    return out


def frame_of(lot: list[ModuleEvidence], lots: list[int] | None = None) -> pl.DataFrame:
    rows = [features(e) for e in lot]
    frame = pl.DataFrame(rows, schema={**{c: pl.Float64 for c in rows[0] if c not in
                                          ("has_lifetime_data", "visual_flags")},
                                       "has_lifetime_data": pl.Boolean, "visual_flags": pl.List(pl.String)})
    return frame if lots is None else frame.with_columns(pl.Series("lot", lots))


def first_failed(g) -> str | None:
    return next((s.name for s in g.screens if s.passed is False), None)


@pytest.fixture(scope="module", params=["packaged", "waived"])
def policy(request):
    p = load_policy()
    return p if request.param == "packaged" else waive_lifetime_data(p, "table test without BMS history")


def test_grade_table_equals_grade_module_by_module(policy):
    lot = generated_lot()
    table = grade_table(frame_of(lot), policy)
    grades = [grade(e, policy) for e in lot]
    assert table["grade"].to_list() == [g.grade.value for g in grades]
    assert table["destination"].to_list() == [g.destination for g in grades]
    assert table["failed_safety"].to_list() == [g.failed_safety for g in grades]
    assert table["first_failed_screen"].to_list() == [first_failed(g) for g in grades]
    assert table["failed_screens"].to_list() == [",".join(s.name for s in g.failed_screens) for g in grades]
    # the lot covers every outcome, so the comparison means something
    assert set(table["grade"]) == {"A", "B", "C", "reject"} and table["failed_safety"].any()


def test_grade_table_with_lots_equals_grade_lot(policy):
    lot = generated_lot(seed=5)
    lots = [k % 4 for k in range(len(lot))]
    # one lot with a clear R0 outlier
    table = grade_table(frame_of(lot, lots), policy)
    expected = {}
    for lot_id in range(4):
        members = [k for k in range(len(lot)) if lots[k] == lot_id]
        for k, g in zip(members, grade_lot([lot[k] for k in members], policy), strict=True):
            expected[k] = g
    grades = [expected[k] for k in range(len(lot))]
    assert table["grade"].to_list() == [g.grade.value for g in grades]
    assert table["failed_screens"].to_list() == [",".join(s.name for s in g.failed_screens) for g in grades]
    assert table["failed_screens"].str.contains("resistance_outlier").any()


def test_grade_table_input_columns_are_documented():
    doc = grade_table.__doc__
    assert all(f"``{c}``" in doc for c in INPUT_COLUMNS)
    # visual_damage: the fleet tables' boolean alternative to visual_flags
    assert set(features(generated_lot(n=1)[0])) | {"lot", "visual_damage"} == set(INPUT_COLUMNS)


def test_fast_forms_give_the_same_grades(policy):
    # a LazyFrame, screens_out=False and a visual_damage column instead of visual_flags: the same grades as the
    # full form, which the tests above compare with grade / grade_lot
    lot = generated_lot(seed=3)
    frame = frame_of(lot, [k % 3 for k in range(len(lot))])
    full = grade_table(frame, policy).select("grade", "destination", "failed_safety")
    damage = set(policy.screens.visual_inspection.damage_flags.value)
    as_bool = frame.with_columns(visual_damage=pl.col("visual_flags").list.eval(pl.element().is_in(list(damage)))
                                 .list.any()).drop("visual_flags")
    for fast in (grade_table(frame.lazy(), policy, screens_out=False).collect(),
                 grade_table(as_bool, policy, screens_out=False), grade_table(as_bool.lazy(), policy).collect()):
        assert fast.select("grade", "destination", "failed_safety").equals(full)
    assert grade_table(frame.lazy(), policy, screens_out=False).collect().columns == [
        *frame.columns, "grade", "destination", "failed_safety"]
    with pytest.raises(ValueError, match="not both"):
        grade_table(frame.with_columns(visual_damage=pl.lit(False)), policy)


def test_missing_columns_count_as_not_measured():
    policy = waive_lifetime_data(load_policy(), "table test without BMS history")
    out = grade_table(pl.DataFrame({"soh_pct": [90.0, None, 65.0]}), policy)
    # no R0 and no group taps: at best C (if_missing); no SOH: reject
    assert out["grade"].to_list() == ["C", "reject", "C"]
    assert out["first_failed_screen"].to_list() == ["resistance", "capacity", "capacity"]
    # an all-null column (nobody inspected) arrives as List(Null) or Null
    nobody = pl.DataFrame({"soh_pct": [90.0], "r0_mOhm": [2.0], "visual_flags": [None]})
    assert grade_table(nobody, policy)["grade"].to_list() == ["C"]  # imbalance not measured: at best C
