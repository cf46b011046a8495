"""PlantChain: every module accounted for, steps that can be swapped, entry points that start part-way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from releaf import PlantChain, grading
from releaf.errors import ConfigError
from releaf.schema.records import (
    AssemblyStatus,
    Diagnosis,
    Grade,
    GradeClass,
    GroupDiagnosis,
    Inspection,
    ModuleEntry,
    ModuleResult,
    RunResult,
    StationPlace,
)


def diagnosis(serial: str, capacity_Ah: float | None, r0_mOhm: float | None, groups: int = 2) -> Diagnosis:
    """A module diagnosis as the chain receives it (group values split evenly; none where not measured)."""
    g = tuple(GroupDiagnosis(group=k, capacity_Ah=capacity_Ah, r0_mOhm=None if r0_mOhm is None else r0_mOhm / groups,
                             end_voltage_V=3.0, min_voltage_V=3.0) for k in range(1, groups + 1))
    return Diagnosis(file=f"{serial}.csv", format="arbin-csv", sha256=serial.ljust(64, "0"),
                     profile="leaf-24kwh-module", series_groups=groups, capacity_Ah=capacity_Ah,
                     energy_Wh=None if capacity_Ah is None else capacity_Ah * 7.5,
                     soh_pct=None if capacity_Ah is None else capacity_Ah / 65 * 100, r0_mOhm=r0_mOhm, groups=g,
                     weakest_group=1, warnings=())


def entry(serial: str) -> ModuleEntry:
    return ModuleEntry(path=Path(f"{serial}.csv"), module_serial=serial)


LOT = {  # serial -> (capacity Ah, R0 mOhm, series groups)
    "M1": (58.0, 2.0, 2), "M2": (57.5, 2.1, 2), "M3": (58.2, 2.0, 2),   # three A: one is the odd one out
    "M4": (50.0, None, 2),                                              # graded C (no R0), cannot be certified
    "M5": (30.0, 2.0, 2),                                               # SOH 46 %: reject
    "M6": (55.0, 6.0, 6),                                               # a string of three modules
}


def lab_chain() -> PlantChain:
    """The default chain with IEC 63338's lifetime-data requirement waived (these test lots have no BMS history)
    and a station design that takes every reusable destination (the packaged one takes portable-station only)."""
    chain = PlantChain.from_parameters()
    return chain.replace(policy=grading.waive_lifetime_data(chain.policy, "synthetic test lot without BMS history"),
                         design=dataclasses.replace(chain.design, destinations=()))


def test_a_design_is_built_from_its_destination_only():
    """portable-2s takes the modules graded for portable stations (C); A and B are kept for their own lines."""
    chain = lab_chain()
    chain = chain.replace(design=PlantChain.from_parameters().design)
    assert chain.design.destinations == ("portable-station",)
    lot = [(entry(s), diagnosis(s, c, 2.0)) for s, c in (("A1", 58.0), ("A2", 57.0), ("C1", 41.0), ("C2", 40.5))]
    out = chain.run_from_diagnoses(lot)
    assert [st.modules for st in out.stations] == [("C1", "C2")]
    kept = {m.serial: m.reason for m in out.by_status(AssemblyStatus.OTHER_DESTINATION)}
    assert set(kept) == {"A1", "A2"} and "goes to ev-replacement" in kept["A1"]


@pytest.fixture(scope="module")
def chain():
    return lab_chain()


@pytest.fixture(scope="module")
def result(chain) -> RunResult:
    return chain.run_from_diagnoses([(entry(s), diagnosis(s, c, r, n)) for s, (c, r, n) in LOT.items()])


def test_every_module_is_accounted_for(result):
    status = {m.serial: m.status for m in result.modules}
    assert set(status) == set(LOT)
    assert sorted(s for s, st in status.items() if st == AssemblyStatus.MATCHED) == \
        sorted(m for st in result.stations for m in st.modules)
    assert status["M5"] == AssemblyStatus.REJECTED
    assert status["M6"] == AssemblyStatus.REFUSED
    assert status["M4"] == AssemblyStatus.REFUSED
    assert [s for s, st in status.items() if st == AssemblyStatus.UNMATCHED] in (["M1"], ["M2"], ["M3"])
    for m in result.modules:
        assert (m.station is not None) == (m.status == AssemblyStatus.MATCHED)
        assert m.status == AssemblyStatus.MATCHED or m.reason


def test_module_without_r0_is_graded_and_refused_with_the_reason(result):
    """A module graded C for a missing R0 used to vanish from the run; now it is listed with why."""
    m4 = next(m for m in result.modules if m.serial == "M4")
    assert m4.grade.grade == GradeClass.C and any("R0 not measured" in r for r in m4.grade.reasons)
    assert m4.status == AssemblyStatus.REFUSED and "no R0 measured" in m4.reason
    m6 = next(m for m in result.modules if m.serial == "M6")
    assert "6 series groups" in m6.reason


def test_the_run_summary_names_them(result):
    from releaf.app.report import pairing_note, summarise

    note = pairing_note(result)
    assert "refused by the design: M4, M6" in note and "rejected: 1" in note
    summary = summarise(result, database="sqlite://", title="t")
    assert {m["serial"]: m["status"] for m in summary["modules"]}["M4"] == "refused"


def test_steps_can_be_swapped(chain, result):
    def everyone_b(d, policy):
        return Grade(grade=GradeClass.B, reasons=("test policy",), policy_name="test", policy_version="0",
                     metrics={})

    swapped = chain.replace(grade_step=everyone_b)
    out = swapped.run_from_diagnoses([(entry(s), diagnosis(s, c, r, n)) for s, (c, r, n) in LOT.items()])
    assert {m.grade.grade for m in out.modules} == {GradeClass.B}
    assert {m.serial for m in out.by_status(AssemblyStatus.REJECTED)} == set()
    # M5 (30 Ah) now takes part: the matching pairs it, or leaves it over, but never loses it
    assert {m.serial for m in out.modules} == set(LOT)


def test_entry_from_grades_equals_the_whole_chain(chain, result):
    """Starting from the grades (after, say, a human review) gives the same stations."""
    graded = [ModuleResult(entry=m.entry, diagnosis=m.diagnosis, grade=m.grade) for m in result.modules]
    again = chain.run_from_grades(graded)
    assert again.stations == result.stations
    assert [(m.serial, m.status) for m in again.modules] == [(m.serial, m.status) for m in result.modules]


def test_already_built_modules_are_not_offered_again(chain):
    lot = [(entry(s), diagnosis(s, c, r, n)) for s, (c, r, n) in LOT.items()]
    out = chain.run_from_diagnoses(lot, already_built=frozenset({"M1", "M2"}))
    assert {m.serial for m in out.by_status(AssemblyStatus.ALREADY_BUILT)} == {"M1", "M2"}
    assert not out.stations  # M3 has no partner of grade A left


def test_duplicate_serials_and_bad_configuration_are_config_errors(chain):
    d = diagnosis("M1", 58.0, 2.0)
    other_file = dataclasses.replace(d, sha256="f" * 64)
    with pytest.raises(ConfigError, match="appears twice"):
        chain.run_from_diagnoses([(entry("M1"), d), (entry("M1"), other_file)])
    with pytest.raises(ConfigError, match="design"):
        PlantChain.from_parameters(design="nope")


def test_the_same_bytes_under_two_names_are_one_test_not_two_modules(chain):
    """A copy of M1's file named M9 (in the lot, or already stored as M1's test) makes no module M9."""
    lot = [(entry(s), diagnosis(s, c, r, n)) for s, (c, r, n) in LOT.items()]
    copy = (entry("M9"), lot[0][1])  # M1's diagnosis: same sha256
    out = chain.run_from_diagnoses([*lot, copy])
    assert "M9" not in {m.serial for m in out.modules}
    assert [(d.entry.module_serial, d.same_as) for d in out.duplicates] == [("M9", "M1")]
    assert "not made into module M9" in out.duplicates[0].reason
    # the stored database already knows the file as M1's test: the lot's copy is a duplicate as well
    stored = chain.run_from_diagnoses([copy], known_tests={lot[0][1].sha256: "M1"})
    assert not stored.modules and stored.duplicates[0].same_as == "M1"
    # the same file again for the same module (a repeated run) is that module's test, not a duplicate
    again = chain.run_from_diagnoses([lot[0]], known_tests={lot[0][1].sha256: "M1"})
    assert [m.serial for m in again.modules] == ["M1"] and not again.duplicates


def test_a_retest_to_reject_flags_the_station_for_disassembly(chain):
    built = {"M1": StationPlace("PS-1", GradeClass.A), "M2": StationPlace("PS-1", GradeClass.A)}
    retest = [(entry("M1"), dataclasses.replace(diagnosis("M1", 30.0, 2.0), sha256="e" * 64)),
              (entry("M2"), dataclasses.replace(diagnosis("M2", 58.0, 2.0), sha256="d" * 64))]
    out = chain.run_from_diagnoses(retest, already_built=built)
    m1, m2 = out.modules
    assert m1.grade.grade == "reject" and m1.status == AssemblyStatus.REJECTED
    assert "flagged for disassembly" in m1.reason
    assert [(f.station, f.module) for f in out.flagged] == [("PS-1", "M1")]
    assert m2.status == AssemblyStatus.ALREADY_BUILT and not out.stations
    # a retest below the station's grade (A station, module now C) flags it too; one at its grade does not
    worse = chain.run_from_diagnoses([(entry("M2"), diagnosis("M2", 41.0, 2.0))], already_built=built)
    assert worse.modules[0].grade.grade == "C" and [f.module for f in worse.flagged] == ["M2"]
    same = chain.run_from_diagnoses([(entry("M2"), diagnosis("M2", 58.0, 2.0))], already_built=built)
    assert not same.flagged


def test_chain_is_configured_from_one_parameter_set(chain):
    assert chain.profile.name == chain.policy.profile == "leaf-24kwh-module"
    assert PlantChain.from_parameters().policy.lifetime_data.required
    assert chain.design.module == chain.profile
    assert isinstance(chain.policy, grading.Policy)
    assert dataclasses.is_dataclass(chain) and chain.replace(use_cases=()).use_cases == ()


module_spec = st.tuples(
    st.one_of(st.none(), st.floats(20.0, 66.0)),           # capacity [Ah]; None: no full discharge
    st.one_of(st.none(), st.floats(0.8, 7.0)),             # R0 [mOhm]; None: no pulse measured
    st.sampled_from([2, 2, 2, 6]),                          # a module, or a string of three
)


@settings(max_examples=60, deadline=None)
@given(st.lists(module_spec, max_size=12), st.sets(st.integers(0, 11), max_size=3))
def test_no_module_ever_vanishes(chain, specs, built_idx):
    """Whatever the lot, every module comes out once, with a status that agrees with the stations built."""
    lot = [(entry(f"S{k:02d}"), diagnosis(f"S{k:02d}", c, r, n)) for k, (c, r, n) in enumerate(specs)]
    built = frozenset(f"S{k:02d}" for k in built_idx if k < len(specs))
    out = chain.run_from_diagnoses(lot, already_built=built)
    assert [m.serial for m in out.modules] == [e.module_serial for e, _ in lot]
    in_stations = [s for st_ in out.stations for s in st_.modules]
    assert len(in_stations) == len(set(in_stations))
    assert {m.serial for m in out.by_status(AssemblyStatus.MATCHED)} == set(in_stations)
    rejected = {m.serial for m in out.modules if m.grade.grade == GradeClass.REJECT}
    # a built module is still in its station, unless its retest rejects it (then it is flagged, never kept quietly)
    assert {m.serial for m in out.by_status(AssemblyStatus.ALREADY_BUILT)} == built - rejected
    assert {f.module for f in out.flagged} <= built & rejected
    for m in out.modules:
        assert m.status is not None and (m.status == AssemblyStatus.MATCHED or m.reason)
        if m.grade.grade == GradeClass.REJECT:
            assert m.status in (AssemblyStatus.REJECTED, AssemblyStatus.REFUSED)


def test_a_users_parameter_set_configures_the_chain(tmp_path):
    """A set of one's own: its unit is the profile; a set without a policy or a design must say which to use."""
    from conftest import REPO

    example = REPO / "tests" / "fixtures" / "parameters"
    own = next(p for p in sorted(example.glob("*.yaml")))
    with pytest.raises(ConfigError, match="grading policy|station design"):
        PlantChain.from_parameters(own)
    leaf = PlantChain.from_parameters("leaf-24kwh")
    assert [u.name for u in leaf.use_cases] == ["phone", "guitar-amp", "fridge"]
    assert leaf.design.name == "portable-2s" and leaf.policy.name == "leaf-default"


def test_the_chain_grades_with_inspections_and_lifetime_data():
    """The packaged policy reuses only modules with recorded lifetime data (IEC 63338), and never damaged ones."""
    strict = PlantChain.from_parameters()
    strict = strict.replace(design=dataclasses.replace(strict.design, destinations=()))  # A modules, any design
    lot = [(entry(s), diagnosis(s, c, r, n)) for s, (c, r, n) in LOT.items()]
    history = {"rest_deviation_mV": 1.0, "reasons": []}
    out = strict.run_from_diagnoses(lot, intake={"M1": history, "M2": history, "M3": history},
                                    inspections={"M1": Inspection(("none",)), "M2": Inspection(("swelling",))})
    by = {m.serial: m for m in out.modules}
    assert by["M2"].grade.failed_safety and by["M2"].status == AssemblyStatus.REJECTED
    assert by["M2"].reason.startswith("failed a safety screen: visual inspection found swelling")
    assert {m for st_ in out.stations for m in st_.modules} == {"M1", "M3"}
    assert by["M5"].status == AssemblyStatus.REJECTED and any("IEC 63338" in r for r in by["M5"].grade.reasons)
    assert by["M1"].grade.destination == "ev-replacement"
    # a forged grade (written by hand, not through grading.override) does not get a safety failure built in
    forged = [dataclasses.replace(m, grade=dataclasses.replace(m.grade, grade=GradeClass.A)) for m in out.modules]
    again = strict.run_from_grades(forged)
    assert "M2" not in {m for st_ in again.stations for m in st_.modules}
