"""Grading: a module's diagnosis against a versioned acceptance policy → A / B / C / reject, with reasons.

The thresholds live in YAML policies (``parameters/policies/<name>.yaml``), not here. UL 1974 (Evaluation for
Repurposing Batteries) leaves the acceptance criteria of repurposed cells and modules to the repurposer, who must
define and document them; the packaged ``leaf-default`` policy is releaf's documented choice for the portable-2s
product, and every :class:`Grade` records the policy name and version it was made under.

Policy structure
----------------
``rules``: one entry per metric of :func:`grading_metrics` with thresholds ``A``, ``B``, ``C``. For ``soh_pct``
a grade needs the value >= its threshold; for the other metrics <= its threshold; a value that meets none is
``reject``. ``if_missing`` says what a missing metric does: a grade (``A``/``B``/``C``/``reject``: "at best
that grade") or ``ignore``; the default is ``reject``. ``soh_pct`` takes no ``if_missing``: without a full
discharge there is no capacity, and the module is rejected.

``screens``: safety limits that force ``reject`` (``max_temperature_C``, ``min_group_voltage_V``,
``max_soh_pct``). A screen whose metric was not measured does not apply.

``assembly``: options for ``releaf.assembly`` (``allow_mixed_grades``).

Reasons list only what limited the grade: an ``A`` has no reasons.

References
----------
UL 1974, Standard for Evaluation for Repurposing Batteries (2018), sorting and grading of cells and modules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from releaf import parameters
from releaf.errors import ConfigError
from releaf.parameters import BATTERY_PROFILES
from releaf.schema.records import GRADES, Diagnosis, Grade, GradeClass

# metric -> (label, unit, higher_is_better)
RULES: dict[str, tuple[str, str, bool]] = {
    "soh_pct": ("SOH", "%", True),
    "r0_mOhm": ("R0", "mOhm", False),
    "group_capacity_imbalance_pct": ("group capacity imbalance", "%", False),
    "group_end_voltage_spread_V": ("group end-voltage spread", "V", False),
}
# screen -> (metric, label, unit, reject when value is above the limit)
SCREENS: dict[str, tuple[str, str, str, bool]] = {
    "max_temperature_C": ("max_temperature_C", "temperature", "°C", True),
    "min_group_voltage_V": ("min_group_voltage_V", "lowest group voltage", "V", False),
    "max_soh_pct": ("soh_pct", "SOH", "%", True),
}
ASSEMBLY_OPTIONS = {"allow_mixed_grades": bool}
_TOP_KEYS = ("name", "version", "profile", "rules", "screens", "assembly")


@dataclass(frozen=True)
class Policy:
    """A grading policy (see the module docstring for its structure)."""

    name: str
    version: str
    profile: str
    rules: dict
    screens: dict = field(default_factory=dict)
    assembly: dict = field(default_factory=dict)


def _fail(file, key: str, message: str):
    raise ConfigError(file, f"{key}: {message}")


def _number(file, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(file, key, f"expected a number, found {value!r}")
    return float(value)


def _validate(data, file) -> Policy:
    if not isinstance(data, dict):
        raise ConfigError(file, "a policy is a YAML mapping with keys " + ", ".join(_TOP_KEYS))
    for key in data:
        if key not in _TOP_KEYS:
            _fail(file, str(key), f"unknown key; expected one of {', '.join(_TOP_KEYS)}")
    for key in ("name", "version", "profile", "rules"):
        if data.get(key) in (None, ""):
            _fail(file, key, "missing")
    if not isinstance(data["version"], str):
        _fail(file, "version", f"write the version as a quoted string (\"1.0.0\"), found {data['version']!r}")
    if data["profile"] not in BATTERY_PROFILES:
        _fail(file, "profile", f"unknown battery profile {data['profile']!r}; known: {', '.join(BATTERY_PROFILES)}")

    rules_in = data["rules"]
    if not isinstance(rules_in, dict):
        _fail(file, "rules", "expected a mapping of metric -> thresholds")
    if "soh_pct" not in rules_in:
        _fail(file, "rules.soh_pct", "missing (every policy grades the state of health)")
    rules = {}
    for metric, spec in rules_in.items():
        key = f"rules.{metric}"
        if metric not in RULES:
            _fail(file, key, f"unknown rule; known: {', '.join(RULES)}")
        if not isinstance(spec, dict):
            _fail(file, key, "expected a mapping with A, B, C (and if_missing)")
        for k in spec:
            if k not in ("A", "B", "C", "if_missing"):
                _fail(file, f"{key}.{k}", "unknown key; expected A, B, C, if_missing")
        thresholds = {}
        for g in ("A", "B", "C"):
            if g not in spec:
                _fail(file, f"{key}.{g}", "missing threshold")
            thresholds[g] = _number(file, f"{key}.{g}", spec[g])
        a, b, c = thresholds["A"], thresholds["B"], thresholds["C"]
        higher = RULES[metric][2]
        if not ((a >= b >= c) if higher else (a <= b <= c)):
            order = "A >= B >= C" if higher else "A <= B <= C"
            _fail(file, key, f"thresholds not monotonic from A to C: need {order}, found {a:g}, {b:g}, {c:g}")
        if_missing = spec.get("if_missing", "reject")
        if metric == "soh_pct" and "if_missing" in spec:
            _fail(file, f"{key}.if_missing", "not allowed: a module without a measured capacity is rejected")
        if if_missing not in (*GRADES, "ignore"):
            _fail(file, f"{key}.if_missing", f"expected A, B, C, reject or ignore, found {if_missing!r}")
        rules[metric] = {**thresholds, "if_missing": if_missing}

    screens_in = data.get("screens") or {}
    if not isinstance(screens_in, dict):
        _fail(file, "screens", "expected a mapping of screen -> limit")
    screens = {}
    for name, limit in screens_in.items():
        if name not in SCREENS:
            _fail(file, f"screens.{name}", f"unknown screen; known: {', '.join(SCREENS)}")
        screens[name] = _number(file, f"screens.{name}", limit)

    assembly_in = data.get("assembly") or {}
    if not isinstance(assembly_in, dict):
        _fail(file, "assembly", "expected a mapping")
    for name, value in assembly_in.items():
        if name not in ASSEMBLY_OPTIONS:
            _fail(file, f"assembly.{name}", f"unknown option; known: {', '.join(ASSEMBLY_OPTIONS)}")
        if not isinstance(value, ASSEMBLY_OPTIONS[name]):
            _fail(file, f"assembly.{name}", f"expected {ASSEMBLY_OPTIONS[name].__name__}, found {value!r}")
    return Policy(name=str(data["name"]), version=data["version"], profile=data["profile"], rules=rules,
                  screens=screens, assembly=dict(assembly_in))


def load_policy(name_or_path: str = "leaf-default") -> Policy:
    """Read and check a grading policy.

    Parameters
    ----------
    name_or_path : a packaged policy name (``releaf/parameters/policies/<name>.yaml``, read by
        :func:`releaf.parameters.policy_text`) or the path of a YAML file

    Raises
    ------
    ConfigError : unknown packaged policy (the message lists them), unreadable file, YAML syntax error (with its
        line), or a wrong key (named in the message): unknown rule or screen,
        missing version/profile/threshold, thresholds not monotonic from A to C
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
    return _validate(data, file)


def _finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def grading_metrics(diagnosis: Diagnosis) -> dict[str, float | None]:
    """The values a policy grades, from one diagnosis (None where not measured).

    Returns
    -------
    ``soh_pct`` [%]; ``r0_mOhm`` [mOhm]; ``group_capacity_imbalance_pct``: (max − min) / max of the groups'
    ``capacity_Ah`` [%], None with fewer than 2 groups with a capacity; ``group_end_voltage_spread_V``: max − min
    of the groups' ``end_voltage_V`` [V], None with fewer than 2; ``max_temperature_C`` [°C];
    ``min_group_voltage_V`` [V]: the diagnosis' value, else the lowest group ``min_voltage_V``.
    """
    caps = [c for g in diagnosis.groups if (c := _finite(g.capacity_Ah)) is not None]
    ends = [v for g in diagnosis.groups if (v := _finite(g.end_voltage_V)) is not None]
    mins = [v for g in diagnosis.groups if (v := _finite(g.min_voltage_V)) is not None]
    min_group = _finite(diagnosis.min_group_voltage_V)
    if min_group is None and mins:
        min_group = min(mins)
    return {
        "soh_pct": _finite(diagnosis.soh_pct),
        "r0_mOhm": _finite(diagnosis.r0_mOhm),
        "group_capacity_imbalance_pct": (max(caps) - min(caps)) / max(caps) * 100.0
        if len(caps) >= 2 and max(caps) > 0 else None,
        "group_end_voltage_spread_V": max(ends) - min(ends) if len(ends) >= 2 else None,
        "max_temperature_C": _finite(diagnosis.max_temperature_C),
        "min_group_voltage_V": min_group,
    }


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def grade(diagnosis: Diagnosis, policy: Policy) -> Grade:
    """Grade one module: the worst grade over the policy's rules; a failed safety screen forces reject.

    Parameters
    ----------
    diagnosis : the module's diagnosis (made with the policy's battery profile)
    policy : from :func:`load_policy`

    Returns
    -------
    :class:`Grade`; ``reasons`` name the value, unit and threshold of every rule and screen that lowered the
    grade (e.g. "SOH 67.2 % below 70 % needed for B"), empty for an A.

    Raises
    ------
    ConfigError : the diagnosis was made with another known battery profile than the policy's (SOH would
        be relative to the wrong nominal capacity)

    References
    ----------
    UL 1974 (2018): the repurposer defines the acceptance criteria; the thresholds are policy choices.
    """
    if diagnosis.profile in BATTERY_PROFILES and diagnosis.profile != policy.profile:
        raise ConfigError(diagnosis.file, f"diagnosed with profile {diagnosis.profile!r}, but policy "
                                               f"{policy.name} grades {policy.profile!r}")
    metrics = grading_metrics(diagnosis)
    worst = 0
    reasons: list[str] = []

    def lower_to(g: str, reason: str):
        nonlocal worst
        worst = max(worst, GRADES.index(g))
        reasons.append(reason)

    for name, limit in policy.screens.items():
        metric, label, unit, reject_above = SCREENS[name]
        value = metrics[metric]
        if value is not None and (value > limit if reject_above else value < limit):
            side = "above" if reject_above else "below"
            lower_to("reject", f"{label} {_fmt(value)} {unit} {side} the {_fmt(limit)} {unit} safety screen")

    for metric, rule in policy.rules.items():
        label, unit, higher = RULES[metric]
        value = metrics[metric]
        if value is None:
            if metric == "soh_pct":
                lower_to("reject", "no full discharge to measure capacity (SOH unknown)")
            elif rule["if_missing"] != "ignore":
                g = rule["if_missing"]
                lower_to(g, f"{label} not measured: {'reject' if g == 'reject' else 'at best ' + g} "
                            "(policy if_missing)")
            continue
        passes = [g for g in ("A", "B", "C") if (value >= rule[g] if higher else value <= rule[g])]
        got = passes[0] if passes else "reject"
        if got != "A":
            missed = GRADES[GRADES.index(got) - 1]
            side, need = ("below", "needed") if higher else ("above", "allowed")
            lower_to(got, f"{label} {_fmt(value)} {unit} {side} {_fmt(rule[missed])} {unit} {need} for {missed}")
    return Grade(grade=GradeClass(GRADES[worst]), reasons=tuple(reasons), policy_name=policy.name,
                 policy_version=policy.version, metrics=metrics)
