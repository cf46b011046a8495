"""Grading policies: the YAML file, its pydantic models, and the one loader.

A policy is data (``parameters/policies/<name>.yaml``), versioned, and every threshold in it carries the reason it
was chosen (``why``): a threshold without a rationale is refused. The screens are listed in the order UL 1974
evaluates a module (visual inspection, history, voltage, capacity, resistance, self-discharge, balance,
temperature); ``releaf.grading`` runs them in that order whatever order the file writes them in.

File format
-----------
.. code-block:: yaml

    name: leaf-default
    version: "2.0.0"                 # quoted: a version is a string
    profile: leaf-24kwh-module       # battery profile the SOH is relative to
    lifetime_data: {required: true, why: "IEC 63338 ..."}
    screens:
      visual_inspection:
        damage_flags: {value: [swelling, leak, terminal-damage], why: ...}   # safety
        required: {value: false, why: ...}
      bms_history:
        max_abs_rest_deviation_mV: {value: 40, grade: C, why: ...}
        max_outlier_flags: {value: 0, grade: C, why: ...}
      ocv_window:
        min_group_voltage_V: {value: 2.5, why: ...}                    # safety
      capacity:
        soh_pct: {A: 80, B: 70, C: 60, why: ...}                      # graded: value >= threshold
        max_soh_pct: {value: 105, why: ...}                           # implausible above: reject
      resistance:
        r0_mOhm: {A: 3.0, B: 4.0, C: 5.5, if_missing: C, why: ...}    # graded: value <= threshold
        lot_outlier: {max_robust_z: 3.5, min_lot_size: 8, min_scale_mOhm: 0.1, grade: C, why: ...}
      self_discharge:
        max_pct_per_day: {value: 2.0, why: ...}                       # safety
      imbalance:
        group_capacity_imbalance_pct: {A: 3, B: 6, C: 10, if_missing: C, why: ...}
        group_end_voltage_spread_V: {A: 0.05, B: 0.1, C: 0.2, if_missing: ignore, why: ...}
      temperature:
        max_temperature_C: {value: 60, why: ...}                      # safety
    destinations:
      A: {value: ev-replacement, why: ...}
      B: {value: stationary-storage, why: ...}
      C: {value: portable-station, why: ...}
      reject: {value: recycling, why: ...}
    assembly:
      allow_mixed_grades: {value: false, why: ...}
      group_capacity_tolerance: {value: 0.05, why: ...}               # NsMp parallel groups, (max - min) / max
      group_r0_tolerance: {value: 0.15, why: ...}

Every key is required except ``bms_history``, ``resistance.lot_outlier``, ``self_discharge``, ``imbalance``'s
rules and ``assembly`` (a missing optional screen does not apply). ``if_missing`` of a graded rule is a grade
(``A``/``B``/``C``/``reject``: "at best that grade"), or ``ignore``; default ``reject``; ``capacity.soh_pct``
takes none (no capacity, no grade).

Validation errors are :class:`releaf.errors.ConfigError` naming the file, the key path (``screens.capacity.
soh_pct.why``) and, where the key is in the file, its line.

References
----------
UL 1974, Standard for Evaluation for Repurposing Batteries (2018): the repurposer defines and documents the
acceptance criteria. IEC 63338:2021 (TS), General guidance for reuse of secondary cells and batteries: reuse only
with the battery's recorded history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError, model_validator

from releaf import parameters
from releaf.errors import ConfigError
from releaf.packs import CAPACITY_TOLERANCE, R0_TOLERANCE, check_tolerance
from releaf.parameters import BATTERY_PROFILES
from releaf.schema.records import GRADES

Why = Annotated[StrictStr, Field(min_length=3, description="the rationale of the threshold (required)")]
GradeName = Literal["A", "B", "C", "reject"]
LowerGrade = Literal["B", "C", "reject"]  # what failing a non-safety limit gives (A would change nothing)
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # strict: `yes` is not 1.0, "80" not 80
LIFETIME_WAIVED_SUFFIX = "+no-lifetime-data"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Limit(_Model):
    """One limit: its value and why it was chosen."""

    value: Number
    why: Why


class GradedLimit(Limit):
    """A limit whose failure lowers the grade to ``grade`` (not a safety limit)."""

    grade: LowerGrade


class Flag(_Model):
    value: StrictBool
    why: Why


class Flags(_Model):
    value: tuple[StrictStr, ...]
    why: Why


class Destination(_Model):
    value: Annotated[StrictStr, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    why: Why


class GradedRule(_Model):
    """Thresholds per grade, A best; ``higher_is_better`` is fixed by the metric, not the file."""

    A: Number
    B: Number
    C: Number
    if_missing: Literal["A", "B", "C", "reject", "ignore"] = "reject"
    why: Why

    def check_order(self, higher_is_better: bool) -> GradedRule:
        a, b, c = self.A, self.B, self.C
        if not ((a >= b >= c) if higher_is_better else (a <= b <= c)):
            order = "A >= B >= C" if higher_is_better else "A <= B <= C"
            raise ValueError(f"thresholds not monotonic from A to C: need {order}, found {a:g}, {b:g}, {c:g}")
        return self


class LowerBetterRule(GradedRule):
    @model_validator(mode="after")
    def _order(self):
        return self.check_order(False)


class SohRule(GradedRule):
    A: Annotated[float, Field(strict=True, gt=0, le=100, allow_inf_nan=False)]
    B: Annotated[float, Field(strict=True, gt=0, le=100, allow_inf_nan=False)]
    C: Annotated[float, Field(strict=True, gt=0, le=100, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _order(self):
        if "if_missing" in self.model_fields_set:
            raise ValueError("if_missing: not allowed: a module without a measured capacity is rejected")
        return self.check_order(True)


class PositiveRule(LowerBetterRule):
    A: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
    B: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
    C: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]


class NonNegativeRule(LowerBetterRule):
    A: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
    B: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
    C: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


class VisualInspection(_Model):
    damage_flags: Flags
    required: Flag

    @model_validator(mode="after")
    def _flags(self):
        if not self.damage_flags.value:
            raise ValueError("damage_flags: list at least one damage flag")
        if "none" in self.damage_flags.value:
            raise ValueError("damage_flags: 'none' means nothing was found; it cannot be a damage flag")
        return self


class BmsHistory(_Model):
    max_abs_rest_deviation_mV: GradedLimit | None = None
    max_outlier_flags: GradedLimit | None = None


class OcvWindow(_Model):
    min_group_voltage_V: Limit


class Capacity(_Model):
    soh_pct: SohRule
    max_soh_pct: Limit


class LotOutlier(_Model):
    max_robust_z: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
    min_lot_size: Annotated[int, Field(strict=True, ge=3)]
    min_scale_mOhm: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
    grade: LowerGrade
    why: Why


class Resistance(_Model):
    r0_mOhm: PositiveRule
    lot_outlier: LotOutlier | None = None


class SelfDischarge(_Model):
    max_pct_per_day: Limit


class Imbalance(_Model):
    group_capacity_imbalance_pct: NonNegativeRule | None = None
    group_end_voltage_spread_V: NonNegativeRule | None = None


class Temperature(_Model):
    max_temperature_C: Limit


class Screens(_Model):
    visual_inspection: VisualInspection
    bms_history: BmsHistory | None = None
    ocv_window: OcvWindow
    capacity: Capacity
    resistance: Resistance
    self_discharge: SelfDischarge | None = None
    imbalance: Imbalance = Imbalance()
    temperature: Temperature


class Destinations(_Model):
    A: Destination
    B: Destination
    C: Destination
    reject: Destination

    @model_validator(mode="after")
    def _recycling(self):
        if self.reject.value != "recycling":
            raise ValueError(f"reject: a rejected module goes to 'recycling', not {self.reject.value!r}")
        return self

    def of(self, grade: str) -> str:
        """The destination of a grade class."""
        return getattr(self, str(grade)).value

    def as_dict(self) -> dict[str, str]:
        return {g: self.of(g) for g in GRADES}


class Lifetime(_Model):
    required: StrictBool
    why: Why


class Assembly(_Model):
    allow_mixed_grades: Flag | None = None
    group_capacity_tolerance: Limit | None = None
    group_r0_tolerance: Limit | None = None


class Policy(_Model):
    """A grading policy (see the module docstring for the file format)."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    version: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    profile: StrictStr
    lifetime_data: Lifetime
    screens: Screens
    destinations: Destinations
    assembly: Assembly = Assembly()

    @model_validator(mode="after")
    def _profile(self):
        if self.profile not in BATTERY_PROFILES:
            raise ValueError(f"profile: unknown battery profile {self.profile!r}; known: "
                             f"{', '.join(BATTERY_PROFILES)}")
        floor = self.screens.ocv_window.min_group_voltage_V.value
        group_min = BATTERY_PROFILES[self.profile].group_v_min_V
        if not 0 < floor <= group_min:
            raise ValueError(f"screens.ocv_window.min_group_voltage_V: {floor:g} V is outside (0, {group_min:g}] V "
                             f"(the over-discharge floor lies at or below the profile's discharge floor)")
        if not 100 <= self.screens.capacity.max_soh_pct.value <= 150:
            raise ValueError("screens.capacity.max_soh_pct: expected 100 to 150 %")
        if not 0 < self.screens.temperature.max_temperature_C.value <= 100:
            raise ValueError("screens.temperature.max_temperature_C: expected 0 to 100 °C")
        sd = self.screens.self_discharge
        if sd is not None and not 0 < sd.max_pct_per_day.value <= 100:
            raise ValueError("screens.self_discharge.max_pct_per_day: expected 0 to 100 %/day")
        for key in ("group_capacity_tolerance", "group_r0_tolerance"):
            limit = getattr(self.assembly, key)
            if limit is not None:
                try:
                    check_tolerance(f"assembly.{key}", limit.value)
                except ConfigError as err:
                    raise ValueError(str(err)) from None
        return self

    @property
    def allow_mixed_grades(self) -> bool:
        """Whether stations may mix modules of different grades (``assembly.allow_mixed_grades``)."""
        flag = self.assembly.allow_mixed_grades
        return bool(flag.value) if flag is not None else False

    @property
    def group_capacity_tolerance(self) -> float:
        """Largest relative capacity spread ``(max - min) / max`` inside an NsMp parallel group (fraction)."""
        limit = self.assembly.group_capacity_tolerance
        return float(limit.value) if limit is not None else CAPACITY_TOLERANCE

    @property
    def group_r0_tolerance(self) -> float:
        """Largest relative resistance spread inside an NsMp parallel group (fraction)."""
        limit = self.assembly.group_r0_tolerance
        return float(limit.value) if limit is not None else R0_TOLERANCE

    def destination(self, grade: str) -> str:
        """The destination of a grade class (``"recycling"`` for reject)."""
        return self.destinations.of(grade)


def waive_lifetime_data(policy: Policy, why: str) -> Policy:
    """The policy with IEC 63338's lifetime-data requirement switched off, and the switch recorded.

    The copy's name gets ``+no-lifetime-data`` appended, so every grade (and the store's ``policy_name``) says the
    requirement was waived, and ``lifetime_data.why`` says why.

    Raises
    ------
    ConfigError : ``why`` shorter than 3 characters
    """
    if len(why.strip()) < 3:
        raise ConfigError(policy.name, "lifetime_data.why: say why the lifetime-data requirement is waived")
    name = policy.name if policy.name.endswith(LIFETIME_WAIVED_SUFFIX) else policy.name + LIFETIME_WAIVED_SUFFIX
    return policy.model_copy(update={"name": name, "lifetime_data": Lifetime(required=False, why=why.strip())})


def _line_of(node, loc: tuple) -> int | None:
    """1-based line of the deepest key of ``loc`` found in the composed YAML tree."""
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if hit is None:
                break
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _message(err: dict) -> tuple[tuple, str]:
    """The key path and a plain message of one pydantic error (pydantic's own words where they are clear)."""
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    msg = err["msg"].removeprefix("Value error, ")
    kind = err["type"]
    if kind == "missing":
        last = loc[-1] if loc else ""
        msg = ("missing rationale: every threshold says why it was chosen" if last == "why"
               else "missing threshold" if last in ("A", "B", "C", "value") else "missing")
    elif kind == "string_too_short" and loc and loc[-1] == "why":
        msg = "rationale too short: say why the threshold was chosen"
    elif kind == "extra_forbidden":
        msg = "unknown key"
    elif kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        msg = f"expected a number, found {err.get('input')!r}"
    elif kind == "literal_error":
        msg = f"expected one of {err['ctx'].get('expected')}, found {err.get('input')!r}"
    elif kind in ("string_type",) and loc and loc[-1] == "version":
        msg = f"write the version as a quoted string (\"1.0.0\"), found {err.get('input')!r}"
    # a model validator names its own key ("profile: ..."): move it into the path
    head, sep, rest = msg.partition(": ")
    if sep and " " not in head and not head.startswith("expected"):
        loc, msg = loc + tuple(head.split(".")), rest
    return loc, msg


def policy_from_data(data, file: str = "<policy>", *, text: str | None = None) -> Policy:
    """Validate a policy from parsed YAML/JSON data.

    Parameters
    ----------
    data : the parsed file (a mapping)
    file : the file's name, for error messages
    text : the file's YAML text, to find the line of a wrong key

    Raises
    ------
    ConfigError : the first problem, with the key path (``screens.capacity.soh_pct.why``) and line
    """
    if not isinstance(data, dict):
        raise ConfigError(file, "a policy is a YAML mapping with keys " + ", ".join(Policy.model_fields))
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a misspelt key first
        loc, msg = _message(errors[0])
        line = None
        if text is not None:
            try:
                line = _line_of(yaml.compose(text), loc)
            except yaml.YAMLError:
                line = None
        key = ".".join(str(p) for p in loc)
        raise ConfigError(file, f"{key}: {msg}" if key else msg, line=line) from None


def load_policy(name_or_path: str = "leaf-default") -> Policy:
    """Read and check a grading policy.

    Parameters
    ----------
    name_or_path : a packaged policy name (``releaf/parameters/policies/<name>.yaml``, read by
        :func:`releaf.parameters.policy_text`) or the path of a YAML file

    Raises
    ------
    ConfigError : unknown packaged policy (the message lists them), unreadable file, YAML syntax error (with its
        line), or a wrong key (named with its path and line): unknown key, missing threshold or rationale
        (``why``), thresholds not monotonic from A to C, a value outside its range
    """
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        file = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(file, f"cannot read policy: {exc.strerror or exc}") from None
    else:
        file, text = parameters.policy_text(name_or_path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(file, f"not valid YAML: {getattr(exc, 'problem', None) or exc}", line=line) from None
    return policy_from_data(data, file, text=text)


__all__ = ["Policy", "load_policy", "policy_from_data", "waive_lifetime_data"]
