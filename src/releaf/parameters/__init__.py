"""Parameter sets: the data of a battery and of the products made from it, kept apart from the algorithms.

Like PyBaMM's parameter sets, one set per battery, named after it and carrying its sources. A packaged set is a
folder ``releaf/parameters/<set>/`` with a ``parameters.yaml`` that names its units (cell, module) with their OCV
tables, its ECM tables, station designs, use cases, grading policy and fast-SOH model; the files it names sit next
to it. Policies (``policies/``) and SOH models (``soh-models/``) are shared folders that sets refer to by name.

Every packaged file is read here, by one loader (:func:`resource`); the algorithms take the values as arguments
and never default to a battery.

A user's own battery is a YAML file passed wherever a profile name is accepted (``battery_profile(path)``,
``releaf diagnose FILE --profile my-cell.yaml``)::

    name: my-cell
    source: where the numbers come from
    series_groups: 1
    parallel_cells: 1
    nominal_capacity_Ah: 3.0
    nominal_voltage_V: 3.6
    group_v_min_V: 2.5
    group_v_max_V: 4.2
    chemistry: NMC / graphite
    ocv_table:                # or {file: my-cell-ocv.csv} (soc_pct,ocv_V; relative to this file)
      source: ...
      soc_pct: [0, 10, ..., 100]
      ocv_V: [3.0, 3.45, ..., 4.19]

A YAML file laid out like a packaged ``parameters.yaml`` (``units:``, ``ocv_tables:`` ...) works as well; its
``default_unit`` is the profile.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

from releaf.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

# numpy and yaml are imported where a set is read, and the packaged names below are built on first use: importing
# releaf (the CLI's --help) reads no file.

PARAMETER_FILE = "parameters.yaml"
# Defaults of a unit's capacity-test window where its parameter set does not state one: a charge whose top lies
# within DEFAULT_CHARGE_WINDOW_V below group_v_max_V ended at its limit, and a discharge whose mean group voltage
# ended within DEFAULT_MODULE_CUTOFF_WINDOW_V above group_v_min_V ended at a cut-off set on the module. A set states
# its own (``full_charge_min_V``, ``module_cutoff_max_V``) where its plants' practice differs.
DEFAULT_CHARGE_WINDOW_V = 0.25
DEFAULT_MODULE_CUTOFF_WINDOW_V = 0.22
DEFAULT_PARAMETER_SET = "leaf-24kwh"
YAML_SUFFIXES = (".yaml", ".yml")


# ---------------------------------------------------------------------------------------------------- the data


@dataclass(frozen=True, eq=False)
class OcvTable:
    """Open-circuit voltage of one cell (one series group) against state of charge, piecewise linear.

    Unpacks like the ``(soc_pct, ocv_V)`` pair the OCV functions take (``soc, v = table``; ``np.interp(x, *table)``).

    Attributes
    ----------
    name : table name (``leaf_cell_ocv_25C``), recorded in a diagnosis
    soc_pct : state of charge [%], strictly increasing (read-only array)
    ocv_V : open-circuit voltage [V], strictly increasing (read-only array)
    source : where the table comes from
    """

    name: str
    soc_pct: np.ndarray
    ocv_V: np.ndarray
    source: str = ""

    def __iter__(self):
        return iter((self.soc_pct, self.ocv_V))

    def __repr__(self) -> str:
        return f"OcvTable({self.name!r}, {self.soc_pct.size} points)"


@dataclass(frozen=True)
class BatteryProfile:
    """A unit under test: a cell, a module or a string of modules.

    Attributes
    ----------
    name : profile key (a packaged unit name or the ``name`` of a user's parameter-set file)
    series_groups : series groups in one unit (a Leaf module: 2)
    parallel_cells : cells in parallel per group (a Leaf module: 2)
    nominal_capacity_Ah : capacity of a new unit [Ah], the SOH denominator
    nominal_voltage_V : nominal voltage of one unit [V]
    group_v_min_V, group_v_max_V : voltage window of one series group [V]
    chemistry : cathode / anode
    source : where the numbers come from
    ocv_table : OCV of one cell = one series group (parallel cells share one voltage)
    soh_model : packaged fast-SOH model for this unit (``releaf.diagnostics.soh``), or None for none
    full_charge_min_V : lowest top of a charge per group that counts as a full charge in a capacity test [V];
        default ``group_v_max_V - DEFAULT_CHARGE_WINDOW_V``
    module_cutoff_max_V : highest end voltage per group (the module's over its groups) that counts as a cut-off
        set on the module [V]; default ``group_v_min_V + DEFAULT_MODULE_CUTOFF_WINDOW_V``
    """

    name: str
    series_groups: int
    parallel_cells: int
    nominal_capacity_Ah: float
    nominal_voltage_V: float
    group_v_min_V: float
    group_v_max_V: float
    chemistry: str
    source: str
    ocv_table: OcvTable
    soh_model: str | None = None
    full_charge_min_V: float | None = None
    module_cutoff_max_V: float | None = None

    @property
    def full_charge_floor_V(self) -> float:
        """Lowest charge top per group that makes a full charge [V] (``full_charge_min_V`` or its default)."""
        if self.full_charge_min_V is not None:
            return self.full_charge_min_V
        return self.group_v_max_V - DEFAULT_CHARGE_WINDOW_V

    @property
    def module_cutoff_ceiling_V(self) -> float:
        """Highest end voltage per group that is a module cut-off [V] (``module_cutoff_max_V`` or its default)."""
        if self.module_cutoff_max_V is not None:
            return self.module_cutoff_max_V
        return self.group_v_min_V + DEFAULT_MODULE_CUTOFF_WINDOW_V

    @property
    def nominal_group_voltage_V(self) -> float:
        return self.nominal_voltage_V / self.series_groups

    @property
    def nominal_energy_Wh(self) -> float:
        return self.nominal_capacity_Ah * self.nominal_voltage_V


@dataclass(frozen=True)
class StationProfile:
    """A second-life product built from matched modules.

    Attributes
    ----------
    name : design key (``portable-2s``)
    module : profile of the modules it is built from
    modules_in_series, modules_in_parallel : arrangement of the modules
    rated_energy_Wh : energy on the product label [Wh]
    mass_kg : product mass [kg]
    group_v_min_V : BMS under-voltage cut-off per series group [V] (above the cell limit to spare ageing)
    group_v_max_V : BMS charge limit per series group [V]
    inverter_efficiency : DC→AC efficiency at rated load (fraction)
    inverter_idle_W : inverter no-load draw while on [W]
    dc_efficiency : DC→USB/12 V converter efficiency (fraction)
    source : where the numbers come from
    destinations : the grading destinations this product is built from (``portable-station``); empty: any
        module the policy reuses
    """

    name: str
    module: BatteryProfile
    modules_in_series: int
    modules_in_parallel: int
    rated_energy_Wh: float
    mass_kg: float
    group_v_min_V: float
    group_v_max_V: float
    inverter_efficiency: float
    inverter_idle_W: float
    dc_efficiency: float
    source: str
    destinations: tuple[str, ...] = ()

    @property
    def modules(self) -> int:
        return self.modules_in_series * self.modules_in_parallel

    @property
    def series_groups(self) -> int:
        return self.modules_in_series * self.module.series_groups


@dataclass(frozen=True)
class ParameterSet:
    """One battery's parameter set as read from its YAML file.

    Attributes
    ----------
    name, version, description, source : identity of the set
    file : where it was read from (a packaged path ``releaf/parameters/<set>/parameters.yaml`` or a user's file)
    default_unit : name of the unit a bare set name stands for
    units : battery profiles by name, in file order
    stations : station designs by name
    use_cases : use-case data by name (mappings; :func:`use_cases` turns them into ``UseCase`` objects)
    ocv_tables : OCV tables by name
    ecm_tables : ECM table entries by name (``file``, ``model``, ``temperature_C``, ``source``)
    policy : name of the packaged grading policy made for these units, or None
    soh_model : name of the packaged fast-SOH model for these units, or None
    """

    name: str
    version: str
    description: str
    source: str
    file: str
    default_unit: str
    units: Mapping[str, BatteryProfile]
    stations: Mapping[str, StationProfile]
    use_cases: Mapping[str, Mapping]
    ocv_tables: Mapping[str, OcvTable]
    ecm_tables: Mapping[str, Mapping]
    policy: str | None
    soh_model: str | None


# ---------------------------------------------------------------------------------------------- packaged files


def resource(*parts: str) -> Traversable:
    """A packaged file or folder under ``releaf/parameters`` (``resource("policies", "leaf-default.yaml")``).

    Every packaged parameter file is reached through here.
    """
    return resources.files(__name__).joinpath(*parts)


def _label(*parts: str) -> str:
    return "/".join(("releaf", "parameters", *parts))


def _read_packaged(parts: tuple[str, ...], what: str, known) -> str:
    try:
        return resource(*parts).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ConfigError(_label(*parts), f"the packaged {what} file is missing (known: {', '.join(known)})") \
            from None


@functools.lru_cache(maxsize=1)
def packaged_sets() -> tuple[str, ...]:
    """Names of the packaged parameter sets (folders holding a ``parameters.yaml``), sorted."""
    return tuple(sorted(p.name for p in resources.files(__name__).iterdir()
                        if p.is_dir() and p.joinpath(PARAMETER_FILE).is_file()))


# ------------------------------------------------------------------------------------------------- validation


def _fail(file: str, key: str | None, message: str):
    raise ConfigError(file, message, column=key)


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _mapping(value, file: str, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        _fail(file, where or None, f"expected a mapping of keys, found {type(value).__name__}")
    return value


def _only(data: Mapping, allowed, file: str, where: str) -> None:
    for key in data:
        if key not in allowed:
            _fail(file, _key(where, str(key)), f"unknown key; expected one of {', '.join(allowed)}")


def _text(data: Mapping, key: str, file: str, where: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            _fail(file, _key(where, key), "missing")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        _fail(file, _key(where, key), f"expected text, found {value!r}")
    return str(value)


def _number(data: Mapping, key: str, file: str, where: str, *, low: float | None = None, high: float | None = None,
            low_open: bool = True, integer: bool = False, required: bool = True) -> float | int | None:
    value = data.get(key)
    if value is None:
        if required:
            _fail(file, _key(where, key), "missing")
        return None
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or (
            integer and value != int(value)):
        _fail(file, _key(where, key), f"expected {kind}, found {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        _fail(file, _key(where, key), f"must be {'>' if low_open else '>='} {low:g}, found {value!r}")
    if high is not None and value > high:
        _fail(file, _key(where, key), f"must be <= {high:g}, found {value!r}")
    return int(value) if integer else float(value)


def read_ocv_csv(text: str, file: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse an OCV table written as CSV: header ``soc_pct,ocv_V``, ``#`` lines for the source and method.

    Raises
    ------
    ConfigError : bad header, non-numeric row, fewer than two points, or a column that does not increase strictly
    """
    soc, ocv = [], []
    header_seen = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not header_seen:
            if [c.strip() for c in line.split(",")] != ["soc_pct", "ocv_V"]:
                raise ConfigError(file, f"expected header 'soc_pct,ocv_V', found {line!r}", line=lineno)
            header_seen = True
            continue
        try:
            s, v = (float(x) for x in line.split(","))
        except ValueError:
            raise ConfigError(file, f"expected two numbers, found {line!r}", line=lineno) from None
        soc.append(s)
        ocv.append(v)
    return _ocv_arrays(soc, ocv, file, None)


def _ocv_arrays(soc, ocv, file: str, where: str | None) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    try:
        soc_pct, ocv_v = np.asarray(soc, dtype=float), np.asarray(ocv, dtype=float)
    except (TypeError, ValueError):
        _fail(file, where, "soc_pct and ocv_V must be lists of numbers")
    if soc_pct.ndim != 1 or soc_pct.shape != ocv_v.shape:
        _fail(file, where, f"soc_pct and ocv_V need one value each per point ({soc_pct.size} and {ocv_v.size})")
    if soc_pct.size < 2:
        _fail(file, where, "an OCV table needs at least two points")
    if not (np.all(np.isfinite(soc_pct)) and np.all(np.isfinite(ocv_v))):
        _fail(file, where, "soc_pct and ocv_V must be finite numbers")
    # strictly increasing in both columns: the curve must be invertible (SOC at a given voltage)
    if np.any(np.diff(soc_pct) <= 0) or np.any(np.diff(ocv_v) <= 0):
        _fail(file, where, "soc_pct and ocv_V must both increase strictly")
    soc_pct.flags.writeable = False
    ocv_v.flags.writeable = False
    return soc_pct, ocv_v


# ---------------------------------------------------------------------------------------------------- parsing


class _Source:
    """Where a set's files are: a packaged folder or the folder of a user's YAML file."""

    def __init__(self, file: str, *, packaged: str | None = None, folder: Path | None = None):
        self.file, self.packaged, self.folder = file, packaged, folder

    def read(self, name: str, key: str) -> tuple[str, str]:
        """(label, text) of a file named in the set."""
        if self.packaged is not None:
            label = _label(self.packaged, name)
            try:
                return label, resource(self.packaged, name).read_text(encoding="utf-8")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                _fail(self.file, key, f"names {name!r}, which is not in the packaged set")
        path = Path(name) if Path(name).is_absolute() else self.folder / name
        try:
            return str(path), path.read_text(encoding="utf-8")
        except OSError as exc:
            _fail(self.file, key, f"cannot read {str(path)!r}: {exc.strerror or exc}")


_OCV_KEYS = ("name", "file", "soc_pct", "ocv_V", "source", "temperature_C")


def _ocv_table(spec, src: _Source, where: str, default_name: str) -> OcvTable:
    if isinstance(spec, str):
        spec = {"file": spec}
    spec = _mapping(spec, src.file, where)
    _only(spec, _OCV_KEYS, src.file, where)
    source = _text(spec, "source", src.file, where, required=False) or ""
    if "file" in spec:
        if "soc_pct" in spec or "ocv_V" in spec:
            _fail(src.file, where, "give the OCV table either as a file or as soc_pct/ocv_V lists, not both")
        fname = _text(spec, "file", src.file, where)
        label, text = src.read(fname, _key(where, "file"))
        soc, ocv = read_ocv_csv(text, label)
        name = _text(spec, "name", src.file, where, required=False) or Path(fname).stem
        if not source:  # the CSV's own '# SOURCE:' line
            source = next((ln.lstrip("# ").removeprefix("SOURCE:").strip() for ln in text.splitlines()
                           if ln.startswith("# SOURCE:")), "")
    else:
        for key in ("soc_pct", "ocv_V"):
            if not isinstance(spec.get(key), list):
                _fail(src.file, _key(where, key), "missing: a list of numbers (or give `file`, a CSV)")
        soc, ocv = _ocv_arrays(spec["soc_pct"], spec["ocv_V"], src.file, where)
        name = _text(spec, "name", src.file, where, required=False) or default_name
    return OcvTable(name=name, soc_pct=soc, ocv_V=ocv, source=source)


_UNIT_KEYS = ("series_groups", "parallel_cells", "nominal_capacity_Ah", "nominal_voltage_V", "group_v_min_V",
              "group_v_max_V", "chemistry", "source", "ocv_table", "soh_model", "full_charge_min_V",
              "module_cutoff_max_V")


def _unit(name: str, spec, src: _Source, where: str, tables: Mapping[str, OcvTable],
          soh_model: str | None) -> BatteryProfile:
    spec = _mapping(spec, src.file, where)
    _only(spec, (*_UNIT_KEYS, "name"), src.file, where)
    f = src.file
    v_min, v_max = _voltage_window(spec, f, where)
    table_spec = spec.get("ocv_table")
    if table_spec is None:
        _fail(f, _key(where, "ocv_table"), "missing: every unit needs the OCV table of its cell")
    if isinstance(table_spec, str) and table_spec in tables:
        table = tables[table_spec]
    elif isinstance(table_spec, str) and not table_spec.endswith(".csv"):
        _fail(f, _key(where, "ocv_table"), f"unknown OCV table {table_spec!r}; this set has "
                                           f"{', '.join(tables) or 'none'} (or give a .csv file or soc_pct/ocv_V)")
    else:
        table = _ocv_table(table_spec, src, _key(where, "ocv_table"), f"{name}-ocv")
    model = _text(spec, "soh_model", f, where, required=False) or soh_model
    if model is not None:
        _check_soh_model(model, f, _key(where, "soh_model"))
    return BatteryProfile(
        name=name,
        series_groups=_number(spec, "series_groups", f, where, low=1, low_open=False, integer=True),
        parallel_cells=_number(spec, "parallel_cells", f, where, low=1, low_open=False, integer=True),
        nominal_capacity_Ah=_number(spec, "nominal_capacity_Ah", f, where, low=0.0),
        nominal_voltage_V=_number(spec, "nominal_voltage_V", f, where, low=0.0),
        group_v_min_V=v_min,
        group_v_max_V=v_max,
        chemistry=_text(spec, "chemistry", f, where),
        source=_text(spec, "source", f, where),
        ocv_table=table,
        soh_model=model,
        full_charge_min_V=_number(spec, "full_charge_min_V", f, where, low=v_min, high=v_max, required=False),
        module_cutoff_max_V=_number(spec, "module_cutoff_max_V", f, where, low=v_min, high=v_max, required=False),
    )


def _voltage_window(spec, file: str, where: str) -> tuple[float, float]:
    """``group_v_min_V`` and ``group_v_max_V`` of a unit or a station design, the second above the first [V]."""
    v_min = _number(spec, "group_v_min_V", file, where, low=0.0)
    v_max = _number(spec, "group_v_max_V", file, where, low=0.0)
    if not v_max > v_min:
        _fail(file, _key(where, "group_v_max_V"), f"must exceed group_v_min_V ({v_min:g} V), found {v_max:g}")
    return v_min, v_max


_STATION_KEYS = ("module", "modules_in_series", "modules_in_parallel", "rated_energy_Wh", "mass_kg",
                 "group_v_min_V", "group_v_max_V", "inverter_efficiency", "inverter_idle_W", "dc_efficiency",
                 "source", "destinations")


def _station(name: str, spec, file: str, where: str, units: Mapping[str, BatteryProfile]) -> StationProfile:
    spec = _mapping(spec, file, where)
    _only(spec, _STATION_KEYS, file, where)
    module = _text(spec, "module", file, where)
    if module not in units:
        _fail(file, _key(where, "module"), f"unknown unit {module!r}; this set has {', '.join(units)}")
    v_min, v_max = _voltage_window(spec, file, where)
    return StationProfile(
        name=name,
        module=units[module],
        modules_in_series=_number(spec, "modules_in_series", file, where, low=1, low_open=False, integer=True),
        modules_in_parallel=_number(spec, "modules_in_parallel", file, where, low=1, low_open=False, integer=True),
        rated_energy_Wh=_number(spec, "rated_energy_Wh", file, where, low=0.0),
        mass_kg=_number(spec, "mass_kg", file, where, low=0.0),
        group_v_min_V=v_min,
        group_v_max_V=v_max,
        inverter_efficiency=_number(spec, "inverter_efficiency", file, where, low=0.0, high=1.0),
        inverter_idle_W=_number(spec, "inverter_idle_W", file, where, low=0.0, low_open=False),
        dc_efficiency=_number(spec, "dc_efficiency", file, where, low=0.0, high=1.0),
        source=_text(spec, "source", file, where),
        destinations=_destinations(spec, file, where),
    )


def _destinations(spec, file: str, where: str) -> tuple[str, ...]:
    value = spec.get("destinations", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        _fail(file, _key(where, "destinations"), f"expected a list of destination names, found {value!r}")
    return tuple(v.strip() for v in value)


_USE_CASE_KEYS = ("description", "power_W", "duty_cycle", "output", "energy_per_unit_Wh", "unit_name",
                  "unit_efficiency", "source")
_ECM_KEYS = ("file", "model", "temperature_C", "source")
_SET_KEYS = ("name", "version", "description", "source", "default_unit", "ocv_tables", "ecm_tables", "soh_model",
             "policy", "units", "stations", "use_cases")


def _check_soh_model(name: str, file: str, key: str) -> None:
    if name not in soh_models():
        _fail(file, key, f"unknown SOH model {name!r}; packaged: {', '.join(soh_models())}")


def _named_sections(data: Mapping, key: str, file: str) -> Mapping:
    section = data.get(key) or {}
    return _mapping(section, file, key)


def _parse_set(data, src: _Source) -> ParameterSet:
    file = src.file
    data = _mapping(data, file, "")
    if "units" not in data:  # a single unit: the user's own cell or module
        return _parse_unit_file(data, src)
    _only(data, _SET_KEYS, file, "")
    name = _text(data, "name", file, "")
    tables = {str(k): _ocv_table(v, src, f"ocv_tables.{k}", str(k))
              for k, v in _named_sections(data, "ocv_tables", file).items()}
    ecm = {}
    for k, v in _named_sections(data, "ecm_tables", file).items():
        _only(_mapping(v, file, f"ecm_tables.{k}"), _ECM_KEYS, file, f"ecm_tables.{k}")
        _text(v, "file", file, f"ecm_tables.{k}")
        _text(v, "source", file, f"ecm_tables.{k}")
        ecm[str(k)] = dict(v)
    soh_model = _text(data, "soh_model", file, "", required=False)
    if soh_model is not None:
        _check_soh_model(soh_model, file, "soh_model")
    policy = _text(data, "policy", file, "", required=False)
    if policy is not None and policy not in policies():
        _fail(file, "policy", f"unknown policy {policy!r}; packaged: {', '.join(policies())}")
    units = {str(k): _unit(str(k), v, src, f"units.{k}", tables, soh_model)
             for k, v in _named_sections(data, "units", file).items()}
    if not units:
        _fail(file, "units", "a parameter set needs at least one unit")
    default_unit = _text(data, "default_unit", file, "", required=False) or next(iter(units))
    if default_unit not in units:
        _fail(file, "default_unit", f"unknown unit {default_unit!r}; this set has {', '.join(units)}")
    stations = {str(k): _station(str(k), v, file, f"stations.{k}", units)
                for k, v in _named_sections(data, "stations", file).items()}
    uses = {}
    for k, v in _named_sections(data, "use_cases", file).items():
        _only(_mapping(v, file, f"use_cases.{k}"), _USE_CASE_KEYS, file, f"use_cases.{k}")
        uses[str(k)] = {"name": str(k), **v}
    return ParameterSet(
        name=name, version=_text(data, "version", file, ""), description=_text(data, "description", file, "",
                                                                                 required=False) or "",
        source=_text(data, "source", file, ""), file=file, default_unit=default_unit, units=units,
        stations=stations, use_cases=uses, ocv_tables=tables, ecm_tables=ecm, policy=policy, soh_model=soh_model)


def _parse_unit_file(data: Mapping, src: _Source) -> ParameterSet:
    file = src.file
    _only(data, ("name", "version", "description", *_UNIT_KEYS), file, "")
    name = _text(data, "name", file, "")
    unit_spec = {k: v for k, v in data.items() if k not in ("name", "version", "description")}
    unit = _unit(name, unit_spec, src, "", {}, None)
    return ParameterSet(
        name=name, version=_text(data, "version", file, "", required=False) or "",
        description=_text(data, "description", file, "", required=False) or "", source=unit.source, file=file,
        default_unit=name, units={name: unit}, stations={}, use_cases={}, ocv_tables={unit.ocv_table.name:
                                                                                     unit.ocv_table},
        ecm_tables={}, policy=None, soh_model=unit.soh_model)


def _load_yaml(text: str, file: str):
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(file, f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                          line=mark.line + 1 if mark is not None else None) from None


# ------------------------------------------------------------------------------------------------ the loaders


@functools.lru_cache(maxsize=8)
def _packaged_set(name: str) -> ParameterSet:
    file = _label(name, PARAMETER_FILE)
    text = _read_packaged((name, PARAMETER_FILE), "parameter set", packaged_sets())
    return _parse_set(_load_yaml(text, file), _Source(file, packaged=name))


@functools.lru_cache(maxsize=16)
def _file_set(path: str, _mtime_ns: int, _size: int) -> ParameterSet:
    text = Path(path).read_text(encoding="utf-8")
    return _parse_set(_load_yaml(text, path), _Source(path, folder=Path(path).parent))


def _is_path(name_or_path) -> bool:
    s = str(name_or_path)
    return isinstance(name_or_path, Path) or s.lower().endswith(YAML_SUFFIXES) or Path(s).is_file()


def load_parameter_set(name_or_path: str | Path = DEFAULT_PARAMETER_SET) -> ParameterSet:
    """Read a parameter set: a packaged one by name (``"leaf-24kwh"``) or a YAML file by path.

    A packaged set is read once per process; a file is read again when it changes.

    Raises
    ------
    ConfigError : unknown name, unreadable file, YAML syntax error (with its line) or a wrong key (named, with
        the file): a missing or unknown key, a number out of range, an OCV table that does not increase
    """
    if not _is_path(name_or_path):
        if name_or_path not in packaged_sets():
            raise ConfigError("parameter set", f"unknown parameter set {name_or_path!r}; packaged: "
                                               f"{', '.join(packaged_sets())} (or give the path of a YAML file)")
        return _packaged_set(str(name_or_path))
    path = Path(name_or_path).expanduser()
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the parameter set: {exc.strerror or exc}") from None
    if not path.is_file():
        raise ConfigError(str(path), "a parameter set is a YAML file, not a folder")
    return _file_set(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _packaged_units() -> dict[str, BatteryProfile]:
    return {k: u for s in packaged_sets() for k, u in _packaged_set(s).units.items()}


def _packaged_stations() -> dict[str, StationProfile]:
    return {k: st for s in packaged_sets() for k, st in _packaged_set(s).stations.items()}


def battery_profile(name_or_path: str | Path | BatteryProfile) -> BatteryProfile:
    """The battery profile of a unit: a packaged unit name, a packaged set name (its default unit), the path of a
    user's parameter-set YAML file, or a :class:`BatteryProfile` (returned as is).

    Raises
    ------
    ConfigError : unknown name (the message lists the known ones) or a malformed file
    """
    if isinstance(name_or_path, BatteryProfile):
        return name_or_path
    units = _packaged_units()
    if isinstance(name_or_path, str) and name_or_path in units:
        return units[name_or_path]
    if isinstance(name_or_path, str) and name_or_path in packaged_sets():
        s = _packaged_set(name_or_path)
        return s.units[s.default_unit]
    if _is_path(name_or_path):
        s = load_parameter_set(name_or_path)
        return s.units[s.default_unit]
    raise ConfigError("battery profile", f"unknown profile {name_or_path!r}; known: {', '.join(units)} "
                                         "(or the path of a parameter-set YAML file)")


def station_profile(name: str | StationProfile) -> StationProfile:
    """A packaged station design by name (``"portable-2s"``), or a :class:`StationProfile` (returned as is).

    Raises
    ------
    ConfigError : unknown design (the message lists the known ones)
    """
    if isinstance(name, StationProfile):
        return name
    stations = _packaged_stations()
    try:
        return stations[name]
    except (KeyError, TypeError):
        raise ConfigError("station design", f"unknown design {name!r}; known: {', '.join(stations)}") from None


def use_cases(name_or_path: str | Path = DEFAULT_PARAMETER_SET) -> dict:
    """The use cases of a parameter set, ``{name: releaf.station.loads.UseCase}`` in file order.

    Raises
    ------
    ConfigError : unknown set, or a use case whose values ``UseCase`` refuses (named with file and key)
    """
    from releaf.errors import InputFileError
    from releaf.station.loads import UseCase  # the station module owns the type; it reads its data from here

    s = load_parameter_set(name_or_path)
    out = {}
    for key, spec in s.use_cases.items():
        try:
            out[key] = UseCase(**spec)
        except TypeError as exc:  # a missing required field
            raise ConfigError(s.file, str(exc), column=f"use_cases.{key}") from None
        except InputFileError as exc:
            raise ConfigError(s.file, exc.message, column=f"use_cases.{key}") from None
    return out


def ocv_table(name: str) -> OcvTable:
    """A packaged OCV table by name (``"leaf_cell_ocv_25C"``), from whichever packaged set holds it.

    Raises
    ------
    ConfigError : no packaged OCV table of that name
    """
    tables = {k: t for s in packaged_sets() for k, t in _packaged_set(s).ocv_tables.items()}
    try:
        return tables[name]
    except (KeyError, TypeError):
        raise ConfigError(f"{name}.csv", f"no packaged OCV table named {name!r}; packaged: {', '.join(tables)}") \
            from None


def ecm_table_text(name: str) -> tuple[str, str]:
    """``(file label, text)`` of a packaged ECM table (``"leaf_cell_ecm2_25C"``), from the set that lists it.

    Raises
    ------
    ConfigError : no packaged ECM table of that name
    """
    for s in packaged_sets():
        entry = _packaged_set(s).ecm_tables.get(name)
        if entry is not None:
            parts = (s, entry["file"])
            return _label(*parts), _read_packaged(parts, "ECM table", [name])
    known = [k for s in packaged_sets() for k in _packaged_set(s).ecm_tables]
    raise ConfigError(name, f"no packaged ECM table named {name!r}; packaged: {', '.join(known)}")


@functools.lru_cache(maxsize=1)
def policies() -> tuple[str, ...]:
    """Names of the packaged grading policies (``releaf/parameters/policies/<name>.yaml``)."""
    return tuple(sorted(p.name.removesuffix(".yaml") for p in resource("policies").iterdir()
                        if p.name.endswith(".yaml")))


def policy_text(name: str) -> tuple[str, str]:
    """``(file label, text)`` of a packaged grading policy (``"leaf-default"``).

    Raises
    ------
    ConfigError : no packaged policy of that name (the message lists them)
    """
    if name not in policies():
        raise ConfigError(name, f"no such policy file or packaged policy; packaged: {', '.join(policies())}")
    parts = ("policies", f"{name}.yaml")
    return _label(*parts), _read_packaged(parts, "policy", policies())


@functools.lru_cache(maxsize=1)
def soh_models() -> tuple[str, ...]:
    """Names of the packaged fast-SOH models (``releaf/parameters/soh-models/<name>.json`` + ``.npz``)."""
    folder = resource("soh-models")
    names = {p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")}
    return tuple(sorted(n for n in names if folder.joinpath(f"{n}.npz").is_file()))


def soh_model_files(name: str) -> tuple[Traversable, Traversable]:
    """The packaged files of a fast-SOH model: ``(<name>.json, <name>.npz)`` (scalars and provenance; arrays).

    Raises
    ------
    ConfigError : no packaged model of that name
    """
    if name not in soh_models():
        raise ConfigError(f"{name}.json", f"no packaged SOH model named {name!r}; packaged: "
                                          f"{', '.join(soh_models())} (retrain: releaf train-soh)")
    return resource("soh-models", f"{name}.json"), resource("soh-models", f"{name}.npz")


# ------------------------------------------------------------------------------- the packaged names, as before

DEFAULT_BATTERY_PROFILE = "leaf-24kwh-module"
"""``default_unit`` of the default set (a literal so that importing releaf reads no file; the tests check it)."""

_PACKAGED_NAMES = {
    "LEAF_MODULE": lambda: _packaged_set(DEFAULT_PARAMETER_SET).units["leaf-24kwh-module"],
    "LEAF_CELL": lambda: _packaged_set(DEFAULT_PARAMETER_SET).units["leaf-24kwh-cell"],
    "PORTABLE_2S": lambda: _packaged_set(DEFAULT_PARAMETER_SET).stations["portable-2s"],
    "BATTERY_PROFILES": _packaged_units,
    "STATION_PROFILES": _packaged_stations,
}


def __getattr__(name: str):
    """``LEAF_MODULE``, ``LEAF_CELL``, ``PORTABLE_2S``, ``BATTERY_PROFILES``, ``STATION_PROFILES``: read from the
    packaged sets on first use, then kept."""
    try:
        build = _PACKAGED_NAMES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = globals()[name] = build()
    return value

__all__ = [
    "BATTERY_PROFILES", "DEFAULT_BATTERY_PROFILE", "DEFAULT_PARAMETER_SET", "LEAF_CELL", "LEAF_MODULE",
    "PORTABLE_2S", "STATION_PROFILES", "BatteryProfile", "OcvTable", "ParameterSet", "StationProfile",
    "battery_profile", "ecm_table_text", "load_parameter_set", "ocv_table", "packaged_sets", "policies",
    "policy_text", "read_ocv_csv", "resource", "soh_model_files", "soh_models", "station_profile", "use_cases",
]
