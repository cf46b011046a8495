"""The plant chain: diagnose → grade → assemble → certify, as one pure object (like pvlib's ``ModelChain``).

:class:`PlantChain` strings the topical stage functions together, configured from one parameter set (battery
profile, grading policy, station design, use cases). It does no I/O, no database work and no printing: it takes
tables that were already read (or records made earlier) and returns typed records; progress goes through a
callback. The app layer (``releaf.app``: CLI, report, demo, store writes; later the API and the fleet) reads the
files, calls the chain and persists what it returns.

Each step is a field holding a function, so a step can be swapped (``dataclasses.replace(chain,
grade_step=my_grade)``), and the chain can start part-way: from time series (:meth:`PlantChain.run`), from
diagnoses (:meth:`PlantChain.run_from_diagnoses`) or from grades (:meth:`PlantChain.run_from_grades`).

Every module that goes in comes out in :class:`releaf.schema.records.RunResult` with an
:class:`~releaf.schema.records.AssemblyStatus`: matched into a station, unmatched (with why), rejected by its
grade, refused by the design (with why), or already built into a station earlier.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from releaf import assembly, grading
from releaf.diagnostics import diagnose as diagnose_test
from releaf.errors import ConfigError, InputFileError, OverrideRefused
from releaf.parameters import BatteryProfile, StationProfile, battery_profile, station_profile
from releaf.schema.records import (
    GRADES,
    AssemblyStatus,
    Diagnosis,
    DuplicateTest,
    Grade,
    GradeClass,
    Inspection,
    ModuleEntry,
    ModuleResult,
    Override,
    Pairing,
    RunResult,
    StationBuild,
    StationFlag,
    StationPlace,
)
from releaf.schema.timeseries import TimeSeries
from releaf.station import twin
from releaf.station.loads import UseCase

Built = Mapping[str, StationPlace | None] | frozenset[str]
"""Modules already in stored stations: serial → where (or just the serials)."""
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called after each item of a stage (``total`` items in all)."""


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def station_serial(module_serials: Iterable[str]) -> str:
    """A station's serial: ``PS-`` and the first 10 hex digits of the sha256 of its sorted module serials.

    The same modules always make the same serial, so a run repeated on the same lot finds its stations again.
    """
    digest = hashlib.sha256("+".join(sorted(module_serials)).encode()).hexdigest()[:10].upper()
    return f"PS-{digest}"


@dataclass(frozen=True)
class PlantChain:
    """The plant's chain of stages over one lot of modules, configured from one parameter set.

    Attributes
    ----------
    profile : battery profile of the modules under test (SOH denominator, voltage window, OCV)
    policy : grading policy (``releaf.grading.load_policy``)
    design : station design the modules are assembled into
    use_cases : loads each station is certified for (the parameter set's use cases)
    diagnose_step : ``f(ts, profile) -> Diagnosis``
    grade_step : ``f(diagnosis, policy) -> Grade``; the default (``grading.grade``) grades a lot together
        (``grading.grade_lot``: R0 compared with the lot's), another is called module by module
    assemble_step : ``f(candidates, design, *, allow_mixed_grades) -> Pairing``
    certify_step : ``f(module_states, design, use_cases) -> Certification``

    Examples
    --------
    >>> chain = PlantChain.from_parameters()                      # doctest: +SKIP
    >>> result = chain.run((entry, releaf.read(entry.path)) for entry in entries)  # doctest: +SKIP
    """

    profile: BatteryProfile
    policy: grading.Policy
    design: StationProfile
    use_cases: tuple[UseCase, ...]
    diagnose_step: Callable[[TimeSeries, BatteryProfile], Diagnosis] = diagnose_test
    grade_step: Callable[[Diagnosis, grading.Policy], Grade] = grading.grade
    assemble_step: Callable[..., Pairing] = assembly.match_pairs
    certify_step: Callable[..., twin.Certification] = twin.certify

    @classmethod
    def from_parameters(cls, parameter_set: str = "leaf-24kwh", *, profile: str | BatteryProfile | None = None,
                        policy: str | grading.Policy | None = None, design: str | StationProfile | None = None,
                        **steps) -> PlantChain:
        """A chain configured from one parameter set; any of its parts can be named (or given) instead.

        Parameters
        ----------
        parameter_set : a packaged set name (``"leaf-24kwh"``) or the path of a parameter-set YAML file; it gives
            the default unit (profile), the grading policy, the first station design and the use cases
        profile : battery profile name, YAML path or object; default the policy's profile, else the set's unit
        policy : grading policy name, YAML path or object; default the set's policy
        design : station design name or object; default the set's first design
        steps : replacement step functions (``grade_step=...``)

        Raises
        ------
        ConfigError : an unknown set, profile, policy or design, or a set without a policy or design
        """
        from releaf.parameters import load_parameter_set, use_cases

        params = load_parameter_set(parameter_set)
        if policy is None and params.policy is None:
            raise ConfigError(params.file, "the parameter set names no grading policy: give policy=")
        pol = policy if isinstance(policy, grading.Policy) else grading.load_policy(policy or params.policy)
        prof = battery_profile(profile if profile is not None else pol.profile)
        if design is None and not params.stations:
            raise ConfigError(params.file, "the parameter set has no station design: give design=")
        des = station_profile(design if design is not None else next(iter(params.stations.values())))
        return cls(profile=prof, policy=pol, design=des, use_cases=tuple(use_cases(parameter_set).values()), **steps)

    def replace(self, **changes) -> PlantChain:
        """A copy with some settings or steps swapped."""
        return dataclasses.replace(self, **changes)

    # ---- stages, each usable alone ------------------------------------------------------------------------------

    def diagnose(self, ts: TimeSeries) -> Diagnosis:
        """Diagnose one test with the chain's profile."""
        return self.diagnose_step(ts, self.profile)

    def grade(self, diagnosis: Diagnosis | grading.ModuleEvidence) -> Grade:
        """Grade one module alone under the chain's policy."""
        return self.grade_step(diagnosis, self.policy)

    def grade_lot(self, evidence: Sequence[grading.ModuleEvidence]) -> list[Grade]:
        """Grade a lot under the chain's policy (the default step compares each R0 with the lot's)."""
        if self.grade_step is grading.grade:
            return grading.grade_lot(evidence, self.policy)
        return [self.grade_step(e.diagnosis, self.policy) for e in evidence]

    def assemble(self, modules: Sequence[ModuleResult], *, already_built: Built = frozenset(),
                 progress: Progress = _no_progress) -> RunResult:
        """Match graded modules into stations, certify each, and account for every module.

        Parameters
        ----------
        modules : graded modules (their ``status`` is decided here)
        already_built : modules already in a stored station (serial → :class:`StationPlace`, or a set of
            serials); they are not offered again. A retest of such a module that grades it reject, or below the
            grade its station was built as, flags the station for disassembly (``RunResult.flagged``).
        progress : callback, one call per certified station

        Returns
        -------
        :class:`RunResult` with the stations strongest first and every module given a status and reason.
        A module's grade in force (``grade.grade``: a person's override where there is one) decides; a module
        that failed a safety screen is rejected whatever its grade says.
        """
        candidates, outcome, flagged = [], {}, []
        built = already_built if isinstance(already_built, Mapping) else {s: None for s in already_built}
        groups = self.design.module.series_groups
        for m in modules:
            serial, d = m.serial, m.diagnosis
            if serial in built:
                status, reason, flag = _retest_outcome(m, built[serial])
                outcome[serial] = (status, reason)
                if flag is not None:
                    flagged.append(flag)
            elif d.series_groups != groups:
                outcome[serial] = (AssemblyStatus.REFUSED,
                                   f"{d.series_groups} series groups in the test: not one {self.design.module.name} "
                                   f"module ({groups} groups), so not assembled into {self.design.name}")
            elif m.grade.grade == "reject" or m.grade.failed_safety:
                candidates.append(assembly.ModuleCandidate(serial, "reject"))
                why = "failed a safety screen" if m.grade.failed_safety else "graded reject"
                outcome[serial] = (AssemblyStatus.REJECTED, f"{why}: " + "; ".join(m.grade.reasons))
            elif self.design.destinations and m.grade.destination not in self.design.destinations:
                outcome[serial] = (AssemblyStatus.OTHER_DESTINATION,
                                   f"grade {m.grade.grade} goes to {m.grade.destination}; {self.design.name} is built "
                                   f"from {', '.join(self.design.destinations)} modules")
            else:
                try:
                    state = twin.module_state_from_diagnosis(serial, d)
                except InputFileError as err:
                    outcome[serial] = (AssemblyStatus.REFUSED, f"cannot be certified: {err.message}")
                    continue
                candidates.append(assembly.ModuleCandidate(state.serial, m.grade.grade, state.group_capacity_Ah,
                                                           state.group_r0_mOhm))
        pairing = self.assemble_step(candidates, self.design,
                                     allow_mixed_grades=self.policy.allow_mixed_grades)
        by_serial = {c.serial: c.state for c in candidates if c.grade != "reject"}
        stations = []
        for k, pair in enumerate(pairing.stations, start=1):
            cert = self.certify_step([by_serial[s] for s in pair.modules], self.design, self.use_cases)
            stations.append(StationBuild(serial=station_serial(pair.modules), modules=pair.modules,
                                         grade=pair.grade, certification=cert))
            progress("certifying", k, len(pairing.stations))
        stations.sort(key=lambda st: -st.usable_Wh)
        in_station = {s: st.serial for st in stations for s in st.modules}
        grade_of = {m.serial: m.grade.grade for m in modules}
        for serial in pairing.unmatched:
            outcome[serial] = (AssemblyStatus.UNMATCHED, _unmatched_reason(grade_of[serial], self.policy))
        results = []
        for m in modules:
            if m.serial in in_station:
                status, reason = AssemblyStatus.MATCHED, None
            else:
                status, reason = outcome[m.serial]
            results.append(dataclasses.replace(m, status=status, reason=reason, station=in_station.get(m.serial)))
        return RunResult(modules=tuple(results), stations=tuple(stations), pairing=pairing, flagged=tuple(flagged))

    # ---- entry points ---------------------------------------------------------------------------------------------

    def run(self, tests: Iterable[tuple[ModuleEntry, TimeSeries]], *, total: int | None = None,
            already_built: frozenset[str] = frozenset(), progress: Progress = _no_progress) -> RunResult:
        """The whole chain from time series: diagnose and grade each module, then assemble and certify.

        Parameters
        ----------
        tests : pairs of the module's entry and its test's canonical table (may be a generator that reads lazily)
        total : number of tests, for the progress callback (``len(tests)`` when it has one)
        already_built : serials already in a stored station
        progress : callback ``(stage, done, total)``
        """
        total = total if total is not None else (len(tests) if hasattr(tests, "__len__") else 0)
        diagnoses = []
        for k, (entry, ts) in enumerate(tests, start=1):
            diagnoses.append((entry, self.diagnose(ts)))
            progress("reading + diagnosing", k, total)
        return self.run_from_diagnoses(diagnoses, already_built=already_built, progress=progress)

    def run_from_diagnoses(self, diagnoses: Iterable[tuple[ModuleEntry, Diagnosis]], *,
                           inspections: Mapping[str, Inspection] | None = None,
                           intake: Mapping[str, Mapping] | None = None,
                           lifetime_data: Mapping[str, bool] | None = None,
                           already_built: Built = frozenset(), known_tests: Mapping[str, str] | None = None,
                           overrides: Mapping[str, Override] | None = None,
                           progress: Progress = _no_progress) -> RunResult:
        """The chain from diagnoses made earlier (e.g. read back from the store): grade the lot, assemble, certify.

        A test is known by the sha256 of its file. A file whose bytes are already the test of a module (earlier in
        this lot, or in ``known_tests``: sha256 → module serial, e.g. from the plant database) is the same test:
        it is listed in ``RunResult.duplicates`` and makes no module. The same file again for the same module (a
        repeated run) is simply that module's test.

        Parameters
        ----------
        diagnoses : pairs of the module's entry and its diagnosis
        inspections : visual inspection record per module serial (missing: not inspected)
        intake : the module's ``releaf intake`` row per serial (missing: no BMS history row)
        lifetime_data : whether recorded lifetime data exists, per serial (missing: whether it has an intake row)
        already_built : modules already in stored stations (see :meth:`assemble`)
        known_tests : sha256 → module serial of the tests already stored
        overrides : a person's override per serial, re-applied to the fresh grade through
            :func:`releaf.grading.override` (so a safety failure still refuses it; then the policy's grade stands
            and its reasons say so)
        progress : as :meth:`run`
        """
        known = dict(known_tests or {})
        pairs, duplicates, in_lot = [], [], set()
        for e, d in diagnoses:
            owner = known.get(d.sha256) if d.sha256 else None
            if d.sha256 and (d.sha256 in in_lot or (owner is not None and owner != e.module_serial)):
                duplicates.append(DuplicateTest(entry=e, sha256=d.sha256, same_as=owner))
                continue
            if d.sha256:
                in_lot.add(d.sha256)
                known[d.sha256] = e.module_serial
            pairs.append((e, d))
        inspections, intake, lifetime_data = inspections or {}, intake or {}, lifetime_data or {}
        evidence = [grading.ModuleEvidence(d, inspections.get(e.module_serial), intake.get(e.module_serial),
                                           lifetime_data.get(e.module_serial)) for e, d in pairs]
        grades = self.grade_lot(evidence)
        if overrides:
            grades = [_reapply(g, overrides.get(e.module_serial)) for (e, _), g in zip(pairs, grades, strict=True)]
        modules = [ModuleResult(entry=e, diagnosis=d, grade=g) for (e, d), g in zip(pairs, grades, strict=True)]
        result = self.run_from_grades(modules, already_built=already_built, progress=progress)
        return dataclasses.replace(result, duplicates=tuple(duplicates))

    def run_from_grades(self, modules: Sequence[ModuleResult], *, already_built: Built = frozenset(),
                        progress: Progress = _no_progress) -> RunResult:
        """The chain from graded modules (e.g. after a human override): assemble and certify.

        Raises
        ------
        ConfigError : one serial listed twice
        """
        seen = set()
        for m in modules:
            if m.serial in seen:
                raise ConfigError(m.entry.path, f"module serial {m.serial!r} appears twice in the lot")
            seen.add(m.serial)
        return self.assemble(list(modules), already_built=already_built, progress=progress)


def _reapply(g: Grade, o: Override | None) -> Grade:
    """A stored override on a fresh grade of the same test, or the grade with why it no longer applies."""
    if o is None:
        return g
    try:
        return grading.override(g, str(o.grade), reason=o.reason, user=o.user, role=o.role, at=o.at)
    except (OverrideRefused, ConfigError) as err:
        return dataclasses.replace(g, reasons=(*g.reasons, f"the override to {o.grade} by {o.user} no longer "
                                                           f"applies: {err.message}"))


def _retest_outcome(m: ModuleResult, place: StationPlace | None):
    """Status, reason and station flag of a module that is already built into a stored station."""
    g = m.grade.grade
    where = f"station {place.station}" if place is not None else "its station"
    if g == GradeClass.REJECT or m.grade.failed_safety:
        reason = "graded reject: " + "; ".join(m.grade.reasons)
        if place is None:
            return AssemblyStatus.REJECTED, reason, None
        return (AssemblyStatus.REJECTED, f"{reason}; {where} is flagged for disassembly",
                StationFlag(place.station, m.serial, f"module {m.serial} retested as reject ({m.entry.path.name}): "
                                                     + "; ".join(m.grade.reasons)))
    if place is not None and place.grade is not None and GRADES.index(g) > GRADES.index(place.grade):
        reason = (f"retested as {g}, below the grade {place.grade} that {where} was built as; "
                  "the station is flagged for disassembly")
        return (AssemblyStatus.ALREADY_BUILT, reason,
                StationFlag(place.station, m.serial, f"module {m.serial} retested as {g} ({m.entry.path.name}), "
                                                     f"below the station's grade {place.grade}"))
    return AssemblyStatus.ALREADY_BUILT, f"already in {where} stored earlier", None


def _unmatched_reason(grade: str, policy) -> str:
    if policy.allow_mixed_grades:
        return "no partner left: an odd number of usable modules, and this one adds least to the total"
    return (f"no partner of grade {grade} left (stations are built from one grade): the odd one out, "
            "the one that adds least to the total")
