"""The typed, versioned records the plant chain passes from stage to stage.

Each record is a frozen standard-library dataclass: cheap to build inside the chain (a pack's diagnosis builds
thousands of them), typed, and immutable. JSON appears only at the edges (store, CLI, report, API): ``to_dict``
gives the JSON-safe form, ``from_dict`` validates JSON back into a record, and ``json_schema`` describes it; the
last two use pydantic's ``TypeAdapter``, which reads the dataclass annotations, so the schema cannot drift from
the code. Every record carries ``schema_version`` (semantic versioning: a new major version is a breaking change
of the stored or served JSON; ``from_dict`` refuses another major version). The parts of a record (a discharge,
a group, a use-case runtime) are plain frozen dataclasses versioned with the record that holds them.

Records and the stage that makes them:

================== ============================ ==================================================
record             made by                      what
================== ============================ ==================================================
``Diagnosis``      ``diagnostics.diagnose``     capacity, energy, resistance, groups, SOH of one test
``Grade``          ``grading.grade``            grade class, reasons, screens, destination, override
``Pairing``        ``assembly.match_pairs``     which modules go together, and which are left over
``Certification``  ``station.twin.certify``     usable energy and runtime per use case of a station
``StationBuild``   ``chain.PlantChain``         one built station: serial, members, certification
``ModuleResult``   ``chain.PlantChain``         one module's way: diagnosis, grade, assembly outcome
``RunResult``      ``chain.PlantChain``         a whole run: every module accounted for, stations
================== ============================ ==================================================
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import numpy as np

SCHEMA_VERSION = "1.0.0"
"""Version of every record's JSON as first published (records bump their own ``schema_version`` when they change)."""


class GradeClass(StrEnum):
    """The grade classes of a module or station, best first; anything below C is ``reject``."""

    A = "A"
    B = "B"
    C = "C"
    REJECT = "reject"

    @property
    def rank(self) -> int:
        """0 for A ... 3 for reject: the larger, the worse."""
        return _GRADE_ORDER.index(self)

    @classmethod
    def worst(cls, *grades: str) -> GradeClass:
        """The worst of several grades (a station is graded as its worst module)."""
        return max((cls(g) for g in grades), key=lambda g: g.rank)


_GRADE_ORDER = tuple(GradeClass)
GRADES = tuple(g.value for g in GradeClass)
"""The grade class names in order, best first (``("A", "B", "C", "reject")``)."""


def jsonable(value, *, round_floats: bool = True):
    """A JSON-safe copy: records become dicts, NaN/inf None, numpy scalars Python numbers, tuples lists.

    Floats are rounded to 6 significant digits when ``round_floats`` (what the CLI and the store print).
    """
    if isinstance(value, float | np.floating):
        value = float(value)
        if not math.isfinite(value):
            return None
        return float(f"{value:.6g}") if round_floats else value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), round_floats=round_floats)
                for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v, round_floats=round_floats) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v, round_floats=round_floats) for v in value]
    return value


@functools.cache
def _adapter(cls):
    from pydantic import TypeAdapter  # only the edges pay for pydantic's import

    return TypeAdapter(cls)


@dataclass(frozen=True)
class Record:
    """Base of the stage records: JSON at the edges, a version in every record."""

    schema_version: str = field(default=SCHEMA_VERSION, kw_only=True)

    def to_dict(self) -> dict:
        """The record as JSON-safe data (floats rounded to 6 significant digits)."""
        return jsonable(self)

    @classmethod
    def from_dict(cls, data: dict) -> Self:
        """Validate JSON data (as written by :meth:`to_dict`) back into the record.

        Raises
        ------
        releaf.errors.InputFileError : wrong fields or types, or another major ``schema_version``
        """
        from pydantic import ValidationError

        from releaf.errors import InputFileError

        version = str(data.get("schema_version", SCHEMA_VERSION)) if isinstance(data, dict) else SCHEMA_VERSION
        expected = cls.__dataclass_fields__["schema_version"].default
        if version.split(".")[0] != expected.split(".")[0]:
            raise InputFileError(cls.__name__, f"schema_version {version} cannot be read as {expected}")
        try:
            return _adapter(cls).validate_python(data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InputFileError(cls.__name__, f"{first['msg']}", column=where or None) from None

    @classmethod
    def json_schema(cls) -> dict:
        """The JSON Schema (draft 2020-12) of the record's JSON, generated from its annotations."""
        schema = _adapter(cls).json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:releaf:record:{cls.__name__}:{cls.__dataclass_fields__['schema_version'].default}"
        return schema


@dataclass(frozen=True)
class CapacityConditions:
    """What a capacity was measured under (``releaf.diagnostics.capacity.full_discharges``).

    ``charge_voltage_V`` is the highest module voltage over its groups in the charge before it, and
    ``charge_group_voltages_V`` each group's highest (where the log holds no charge: the rested voltages it starts
    at); ``charge_end`` says how that charge ended (``cv_taper``, ``cc_limit``, ``not_logged``,
    ``recharged_off_log``); ``end_reason`` what ended the discharge (``group_voltage_limit``,
    ``module_voltage_limit``, ``voltage_limit`` (no group taps), ``time_or_capacity``, ``test_end``). Voltages per
    group [V]: the groups' own where the file has them, else the module voltage over its groups.
    """

    charge_voltage_V: float
    charge_group_voltages_V: tuple[float, ...]
    charge_end: str
    rest_before_s: float
    start_group_voltages_V: tuple[float, ...]
    end_group_voltages_V: tuple[float, ...]
    start_voltage_per_group_V: float
    end_voltage_per_group_V: float
    end_reason: str
    c_rate: float
    temperature_C: float | None = None

    @property
    def charge_top_V(self) -> float:
        """The charge's top per group [V]: the higher of the module's mean and its highest group (a charge limit
        set on the module or on the highest group, either counts)."""
        return max((self.charge_voltage_V, *self.charge_group_voltages_V))


@dataclass(frozen=True)
class Discharge:
    """One full discharge: from the top of the preceding charge down to the lower cut-off.

    ``capacity_Ah`` and ``energy_Wh`` are integrals of the measured current and power (positive numbers);
    ``vendor_capacity_Ah`` is the cycler's own counter at the end of the discharge, for cross-checking only.
    """

    start_s: float
    end_s: float
    capacity_Ah: float
    energy_Wh: float
    mean_current_A: float
    c_rate: float
    start_voltage_V: float
    end_voltage_V: float
    reached_cutoff: bool
    vendor_capacity_Ah: float | None = None
    start_index: int = 0
    end_index: int = 0
    from_full: bool = True
    conditions: CapacityConditions | None = None

    @property
    def is_full(self) -> bool:
        """Started at the top of charge and ended at the cut-off: a capacity measurement."""
        return self.from_full and self.reached_cutoff


@dataclass(frozen=True)
class PulseResistance:
    """DC resistance at one current step, read at several times after the step.

    ``r_0p1s_mOhm`` etc. are ΔV(t)/ΔI with ΔV measured from the last sample before the step; ``r0_mOhm`` uses
    the first sample after the step (within 1 s): the ohmic part.
    """

    time_s: float
    soc_pct: float | None
    current_before_A: float
    current_after_A: float
    duration_s: float
    r0_mOhm: float | None
    r_0p1s_mOhm: float | None
    r_1s_mOhm: float | None
    r_10s_mOhm: float | None
    r_end_mOhm: float | None
    group_r0_mOhm: tuple[float | None, ...] = ()
    group_r_1s_mOhm: tuple[float | None, ...] = ()
    group_r_10s_mOhm: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class GroupDiagnosis:
    """One series group (2 parallel cells in a Leaf module).

    ``capacity_Ah`` for the group that limits the string is the measured string capacity; for the others it is
    that plus the charge they still held when the string stopped, estimated on the limiting group's own discharge
    curve (see ``releaf.diagnostics.groups``).
    """

    group: int
    capacity_Ah: float | None
    r0_mOhm: float | None
    end_voltage_V: float | None
    min_voltage_V: float | None
    r_1s_mOhm: float | None = None
    r_10s_mOhm: float | None = None


@dataclass(frozen=True)
class FastSohEstimate:
    """The fast pulse test's SOH estimate (``releaf.diagnostics.soh``).

    ``soh_interval_pct`` is the split-conformal interval at ``coverage_nominal``; ``ood`` is True when the pulses
    lie outside what the model was trained on (then ``ood_reasons`` says why and the estimate is not used).
    """

    soh_pct: float | None
    soh_interval_pct: tuple[float | None, float | None]
    coverage_nominal: float
    ood: bool
    ood_reasons: tuple[str, ...]
    model: str


HppcRow = dict[str, float | int | str | None]
"""One HPPC pulse (``releaf.diagnostics.hppc.hppc_records``): level, SOC, direction, resistances, per group."""


@dataclass(frozen=True)
class Diagnosis(Record):
    """Everything releaf measured on one test file.

    ``self_discharge_pct_per_day`` is the equivalent self-discharge of the module's longest identifiable rest
    [% of capacity per day] (``releaf.diagnostics.selfdischarge.rest_drift``), None where the test holds no such
    rest (schema 1.1.0).
    """

    file: str
    format: str
    sha256: str
    profile: str
    series_groups: int
    capacity_Ah: float | None
    energy_Wh: float | None
    soh_pct: float | None
    r0_mOhm: float | None
    groups: tuple[GroupDiagnosis, ...]
    weakest_group: int | None
    warnings: tuple[str, ...]
    discharges: tuple[Discharge, ...] = ()
    resistances: tuple[PulseResistance, ...] = ()
    r0_soc_pct: float | None = None
    max_temperature_C: float | None = None
    min_group_voltage_V: float | None = None
    max_group_voltage_V: float | None = None
    duration_s: float = 0.0
    rows: int = 0
    ocv_table: str | None = None
    hppc: tuple[HppcRow, ...] = ()
    ecm: dict[str, Any] | None = None
    soh_method: str | None = None
    soh_interval_pct: tuple[float, float] | None = None
    ood: bool | None = None
    soh_estimate: FastSohEstimate | None = None
    capacity_conditions: CapacityConditions | None = None
    units_in_series: int | None = None
    self_discharge_pct_per_day: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: str = field(default="1.1.0", kw_only=True)

    def to_dict(self, *, full: bool = False) -> dict:
        """The ``releaf diagnose --json`` record; ``full`` adds every discharge and resistance (the stored form)."""
        d = jsonable(self)
        if not full:
            for key in ("discharges", "resistances", "extra"):
                d.pop(key)
        return d


@dataclass(frozen=True)
class Inspection:
    """A module's visual inspection (UL 1974's first step): the flags the inspector set.

    ``flags`` are lower-case words such as ``"swelling"``, ``"leak"``, ``"terminal-damage"``, or ``("none",)``
    when the inspector found nothing; the grading policy says which flags are damage.
    """

    flags: tuple[str, ...] = ("none",)
    inspector: str | None = None


@dataclass(frozen=True)
class ScreenResult:
    """One screen of a grade, in the order the policy evaluates them (UL 1974's order).

    Attributes
    ----------
    name : the screen, one of ``releaf.grading.SCREEN_ORDER`` (``visual_inspection``, ``lifetime_data``,
        ``bms_rest_deviation``, ``bms_outlier_flags``, ``ocv_window``, ``capacity``, ``capacity_plausible``,
        ``resistance``, ``resistance_outlier``, ``self_discharge``, ``group_capacity_imbalance``,
        ``group_end_voltage_spread``, ``temperature``)
    value : what was found (a number in the unit of ``unit``, or words), None where not measured
    limit : the limit the value was held against (the one missed, or the best grade's when passed)
    unit : unit of ``value`` and ``limit`` ("" for words)
    passed : True when the screen did not limit the grade; False when it did; None when it did not apply (not
        measured, not inspected, lot too small)
    safety : a safety screen: its failure sends the module to recycling and no person can override that
    allows : the best grade this screen allows
    reason : why it failed or did not apply, None when passed
    """

    name: str
    value: float | str | None
    limit: float | str | None
    unit: str
    passed: bool | None
    safety: bool
    allows: GradeClass = GradeClass.A
    reason: str | None = None


@dataclass(frozen=True)
class Override:
    """A person's override of a module's grade (``releaf.grading.override``); the policy's grade is kept.

    ``at`` is a timezone-aware UTC time.
    """

    original_grade: GradeClass
    original_destination: str | None
    grade: GradeClass
    user: str
    role: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Grade(Record):
    """A module's grade under a policy.

    Attributes
    ----------
    grade : the grade class in force: the policy's, or a person's override (then ``override`` holds the policy's)
    reasons : what limited the grade, each with value, unit and threshold; empty for an A
    policy_name, policy_version : the policy the grade was made under
    metrics : the values graded (``releaf.grading.grading_metrics``), None where not measured
    screens : every screen in the order evaluated, passed, failed or not applicable (schema 1.1.0)
    destination : where the module goes (the policy's destination of ``grade``, e.g. ``"recycling"``)
    destinations : the policy's destination per grade class (so an override can re-route without the policy)
    override : a person's override, None when the policy's grade stands
    """

    grade: GradeClass
    reasons: tuple[str, ...]
    policy_name: str
    policy_version: str
    metrics: dict[str, float | None]
    screens: tuple[ScreenResult, ...] = ()
    destination: str | None = None
    destinations: dict[str, str] = field(default_factory=dict)
    override: Override | None = None
    schema_version: str = field(default="1.1.0", kw_only=True)

    @property
    def failed_safety(self) -> bool:
        """True when a safety screen failed: the module is recycled, whatever any override says."""
        return any(s.safety and s.passed is False for s in self.screens)

    @property
    def policy_grade(self) -> GradeClass:
        """The grade the policy gave, before any override."""
        return self.override.original_grade if self.override is not None else GradeClass(self.grade)

    @property
    def failed_screens(self) -> tuple[ScreenResult, ...]:
        """The screens that limited the grade, in the order evaluated."""
        return tuple(s for s in self.screens if s.passed is False)


@dataclass(frozen=True)
class ModuleEntry:
    """One test file and the module it tested (a line of a folder's ``manifest.csv``)."""

    path: Path
    module_serial: str
    pack_vin: str | None = None
    pack_model: str | None = None
    module_position: int | None = None
    generated: bool = False


@dataclass(frozen=True)
class MatchedPair:
    """Two modules matched into one station: its usable energy at the DC bus [Wh] (closed form) and its series
    capacity, the smaller of the two modules' weakest-group capacities [Ah] (0 in records written before it)."""

    modules: tuple[str, str]
    grade: GradeClass
    usable_Wh: float
    series_capacity_Ah: float = 0.0


@dataclass(frozen=True)
class Pairing(Record):
    """Result of ``releaf.assembly.match_pairs``.

    Attributes
    ----------
    stations : the matched pairs (module serials sorted), strongest first
    unmatched : eligible modules left over (odd one out, or no allowed partner), sorted
    excluded : rejected modules, never used, sorted
    total_usable_Wh : sum of the pairs' ``usable_Wh`` [Wh]
    method : how the matching was solved and what is proven
    optimal : True when proven optimal over all allowed pairs for ``objective``; (records written before
        releaf's exact pairing may say False: optimal over a restricted graph only)
    total_series_capacity_Ah : sum of the pairs' ``series_capacity_Ah``, the objective's value [Ah]
        (0 in records written before it)
    objective : what the matching maximises ("" in records written before it)
    """

    stations: tuple[MatchedPair, ...]
    unmatched: tuple[str, ...]
    excluded: tuple[str, ...]
    total_usable_Wh: float
    method: str
    optimal: bool
    total_series_capacity_Ah: float = 0.0
    objective: str = ""


@dataclass(frozen=True)
class UseCaseRuntime:
    """Certified runtime of one use case.

    ``bus_power_mean_W`` is averaged over the duty cycle [W]; ``output_Wh`` is what the load receives from the
    outlet [Wh]; ``units`` counts e.g. phone charges (None when the use case has no unit); ``limiting_group`` is
    1-based over the station, ``limiting_module`` its module serial; ``warnings`` e.g. a load the string cannot
    carry to the cut-off.
    """

    name: str
    output: str
    bus_power_on_W: float
    bus_power_mean_W: float
    runtime_h: float
    output_Wh: float
    units: float | None
    unit_name: str | None
    limiting_group: int
    limiting_module: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Certification(Record):
    """What a station delivers: usable energy at the reference power and the runtime of each use case.

    ``usable_Wh`` is the energy at the DC bus [Wh] when discharged from full at ``reference_power_W`` [W] until
    the weakest group reaches the BMS cut-off.
    """

    design: str
    serials: tuple[str, ...]
    reference_power_W: float
    usable_Wh: float
    rated_energy_Wh: float
    limiting_group: int
    limiting_module: str
    use_cases: tuple[UseCaseRuntime, ...]
    warnings: tuple[str, ...]

    def runtime(self, use_case: str) -> UseCaseRuntime:
        """The runtime record of one use case by name."""
        return next(u for u in self.use_cases if u.name == use_case)


@dataclass(frozen=True)
class StationBuild(Record):
    """One station the chain built: its serial, its modules in series order, grade and certification."""

    serial: str
    modules: tuple[str, ...]
    grade: GradeClass
    certification: Certification

    @property
    def usable_Wh(self) -> float:
        """Usable energy at the DC bus at the certification's reference power [Wh]."""
        return self.certification.usable_Wh

    @property
    def design(self) -> str:
        return self.certification.design


class AssemblyStatus(StrEnum):
    """What assembly did with a module; every module that enters a run ends in exactly one of these."""

    MATCHED = "matched"            # built into a station of this run
    UNMATCHED = "unmatched"        # eligible, but no partner (odd one out, or none of its grade)
    REJECTED = "rejected"          # graded reject: never reused
    REFUSED = "refused"            # not usable by this design (see the reason)
    ALREADY_BUILT = "already_built"  # already in a station stored earlier
    OTHER_DESTINATION = "other_destination"  # graded for a destination this design does not serve (ModuleResult 1.1.0)


@dataclass(frozen=True)
class StationPlace:
    """Where a module already stands: the stored station it was built into and that station's grade class."""

    station: str
    grade: GradeClass | None = None


@dataclass(frozen=True)
class DuplicateTest:
    """A test file whose bytes (sha256) are already the test of a module: the same test, not a second module."""

    entry: ModuleEntry
    sha256: str
    same_as: str

    @property
    def reason(self) -> str:
        if self.same_as == self.entry.module_serial:
            return (f"{self.entry.path.name}: the same file (sha256 {self.sha256[:12]}…) is listed twice for "
                    f"module {self.same_as}; counted once")
        return (f"{self.entry.path.name}: same bytes (sha256 {self.sha256[:12]}…) as the test of module "
                f"{self.same_as}; not made into module {self.entry.module_serial}")


@dataclass(frozen=True)
class StationFlag:
    """A stored station to take apart: a retest made ``module`` ineligible for it (``reason`` says why)."""

    station: str
    module: str
    reason: str


@dataclass(frozen=True)
class ModuleResult(Record):
    """One module's way through a run: its test entry, diagnosis, grade, and what assembly did with it."""

    schema_version: str = field(default="1.1.0", kw_only=True)
    entry: ModuleEntry
    diagnosis: Diagnosis
    grade: Grade
    status: AssemblyStatus | None = None
    reason: str | None = None
    station: str | None = None

    @property
    def serial(self) -> str:
        return self.entry.module_serial


@dataclass(frozen=True)
class RunResult(Record):
    """A run of the chain: every module that went in (with its outcome), the stations built, how they were matched.

    ``reference`` holds diagnoses of tests that are not plant modules (the demo's real ORNL strings);
    ``duplicates`` the test files that were already the test of a module (by sha256), made into nothing;
    ``flagged`` the stored stations that a retest made one member ineligible for (1.1.0 added both).
    """

    schema_version: str = field(default="1.1.0", kw_only=True)
    modules: tuple[ModuleResult, ...]
    stations: tuple[StationBuild, ...]
    pairing: Pairing | None = None
    reference: tuple[Diagnosis, ...] = ()
    duplicates: tuple[DuplicateTest, ...] = ()
    flagged: tuple[StationFlag, ...] = ()

    def by_status(self, status: AssemblyStatus) -> tuple[ModuleResult, ...]:
        """The modules that ended in ``status``."""
        return tuple(m for m in self.modules if m.status == status)

    def grade_counts(self) -> dict[str, int]:
        """Modules per grade class, every class present (zero where none)."""
        counts = dict.fromkeys(GRADES, 0)
        for m in self.modules:
            counts[m.grade.grade.value] += 1
        return counts


RECORDS: dict[str, type[Record]] = {
    cls.__name__: cls for cls in (Diagnosis, Grade, Pairing, Certification, StationBuild, ModuleResult, RunResult)
}
"""The stage records by name (``releaf schema NAME`` prints one's JSON Schema)."""


@dataclass(frozen=True)
class CycleSummary:
    """One cycle of a test (``releaf.diagnostics.cycles.cycle_summary``).

    Capacities and energies are positive integrals of the measured current and power over the cycle's charge
    (current > 0) and discharge (current < 0); mean voltages are energy over charge (charge-weighted). ``complete``:
    the cycle has a charge and a discharge and is not the truncated last cycle of the file.
    """

    cycle_index: int
    charge_capacity_Ah: float
    discharge_capacity_Ah: float
    charge_energy_Wh: float
    discharge_energy_Wh: float
    coulombic_efficiency: float | None
    energy_efficiency: float | None
    mean_charge_voltage_V: float | None
    mean_discharge_voltage_V: float | None
    max_temperature_C: float | None
    duration_s: float
    complete: bool


@dataclass(frozen=True)
class CycleReport(Record):
    """The per-cycle summary of one test file (``releaf cycles``)."""

    file: str
    format: str
    sha256: str
    cycles: tuple[CycleSummary, ...]
    warnings: tuple[str, ...] = ()


RECORDS[CycleReport.__name__] = CycleReport
