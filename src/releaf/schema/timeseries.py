"""The canonical time series every reader produces and every diagnostic consumes.

Glossary of names (each carries its unit):

===================== ======= ========================================================================
name                  unit    meaning
===================== ======= ========================================================================
test_time_s           s       time since the start of the test, non-decreasing (required)
voltage_V             V       terminal voltage of the unit under test (required)
current_A             A       current, **positive = charge**, negative = discharge (required)
step_index            -       cycler step number as the cycler wrote it
cycle_index           -       cycler cycle number
step_time_s           s       time since the cycler step began (restarts at every step; sets where a step began)
step_type             -       ``charge`` | ``discharge`` | ``rest`` (from the cycler's mode, else the current)
temperature_C         degC    main temperature sensor
datetime              UTC     wall-clock time of the sample
group_voltage_V_k     V       voltage of series group k (1-based) inside a module or string
temperature_C_k       degC    temperature sensor k (1-based)
ambient_temperature_C degC    chamber / environment temperature
vendor_capacity_Ah    Ah      the cycler's own capacity counter, kept only to cross-check releaf's integral
vendor_energy_Wh      Wh      the cycler's own energy counter, cross-check only
capacity_Ah           Ah      charge, always recomputed by integrating ``current_A`` over ``test_time_s``
energy_Wh             Wh      energy, always recomputed by integrating ``voltage_V * current_A``
r0_mOhm               mOhm    ohmic resistance (voltage step over current step across <= 1 s)
soh_pct               %       state of health: measured capacity over the profile's nominal capacity
soc_pct               %       state of charge
===================== ======= ========================================================================

Readers may add ``vendor_*`` columns (the cycler's own state codes, instruction names) for traceability;
nothing in releaf computes with them.

References
----------
battdat (battery-data-toolkit), Argonne National Laboratory: columns that carry their unit and sign.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from releaf.errors import InputFileError


@dataclass(frozen=True)
class Column:
    """One column of the canonical table: its type, unit and rules."""

    name: str
    dtype: type[pl.DataType]
    unit: str
    required: bool = False
    monotonic: bool = False
    description: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("test_time_s", pl.Float64, "s", required=True, monotonic=True, description="time since test start"),
    Column("voltage_V", pl.Float64, "V", required=True, description="terminal voltage"),
    Column("current_A", pl.Float64, "A", required=True, description="current, positive = charge"),
    Column("step_index", pl.Int64, "", description="cycler step number"),
    Column("cycle_index", pl.Int64, "", description="cycler cycle number"),
    Column("step_time_s", pl.Float64, "s", description="time since the cycler step began"),
    Column("step_type", pl.String, "", description="charge | discharge | rest"),
    Column("temperature_C", pl.Float64, "degC", description="main temperature sensor"),
    Column("ambient_temperature_C", pl.Float64, "degC", description="chamber / environment temperature"),
    Column("datetime", pl.Datetime, "UTC", description="wall-clock time of the sample"),
    Column("vendor_capacity_Ah", pl.Float64, "Ah", description="cycler's capacity counter (cross-check only)"),
    Column("vendor_energy_Wh", pl.Float64, "Wh", description="cycler's energy counter (cross-check only)"),
)
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
GROUP_VOLTAGE_PREFIX = "group_voltage_V_"
TEMPERATURE_PREFIX = "temperature_C_"

# Physical plausibility limits for a Li-ion cell, module or string (|value| beyond these means a unit mix-up:
# mV read as V, mA as A, ms as s ...). A 3-module Leaf string is ~25 V; a pack is ~400 V.
MAX_ABS_VOLTAGE_V = 1000.0
MAX_ABS_CURRENT_A = 2000.0
TEMPERATURE_RANGE_C = (-60.0, 150.0)


@dataclass(frozen=True)
class SourceMeta:
    """Where a table came from and what the reader did to it."""

    path: str
    sha256: str
    format: str
    vendor: str
    channel: str | None = None
    units_found: dict[str, str] = field(default_factory=dict)
    conversions: tuple[str, ...] = ()
    header: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TimeSeries:
    """A canonical table plus its provenance."""

    data: pl.DataFrame
    meta: SourceMeta

    @property
    def group_columns(self) -> list[str]:
        """Series-group voltage columns in group order (1-based suffix)."""
        return sorted(
            (c for c in self.data.columns if c.startswith(GROUP_VOLTAGE_PREFIX)),
            key=lambda c: int(c.removeprefix(GROUP_VOLTAGE_PREFIX)),
        )

    @property
    def name(self) -> str:
        return Path(self.meta.path).name

    def with_data(self, data: pl.DataFrame) -> TimeSeries:
        return replace(self, data=data)


def _row_of(df: pl.DataFrame, mask: pl.Series) -> int:
    return int(mask.arg_true()[0])


def validate(ts: TimeSeries, *, line_of_row=None) -> TimeSeries:
    """Check a table against the canonical schema; raise a clear error on the first problem.

    Parameters
    ----------
    ts : the table to check
    line_of_row : callable mapping a 0-based row index to the 1-based line in the source file
        (readers pass it so that errors name the file line); identity + 1 if omitted

    Returns
    -------
    The same TimeSeries (columns cast to their canonical dtypes).

    Raises
    ------
    InputFileError
        missing required column, empty table, NaN/inf in a required column, time going backwards,
        values outside physical limits (a unit mix-up), a row repeating the previous one exactly (same time,
        voltage, current and step: a duplicated record, not a new sample).
    """
    df = ts.data
    file = ts.meta.path
    line = line_of_row or (lambda i: i + 1)
    for name in REQUIRED:
        if name not in df.columns:
            raise InputFileError(file, f"required column {name!r} is missing (found: {', '.join(df.columns)})")
    if df.height == 0:
        raise InputFileError(file, "no data rows")
    schema = dict(zip(df.columns, df.dtypes, strict=True))  # df.schema builds a Schema object on every access
    casts = []
    for col in COLUMNS:
        if col.name in schema and col.dtype is not pl.Datetime and schema[col.name] != col.dtype:
            casts.append(pl.col(col.name).cast(col.dtype, strict=False))
    casts += [pl.col(c).cast(pl.Float64, strict=False) for c in schema
              if c.startswith((GROUP_VOLTAGE_PREFIX, TEMPERATURE_PREFIX)) and schema[c] != pl.Float64]
    if casts:
        df = df.with_columns(casts)
        schema = dict(zip(df.columns, df.dtypes, strict=True))

    if not _surely_clean(df, schema) and _any_problem(df):
        _find_problem(df, file, line)
    return ts.with_data(df)


def _surely_clean(df: pl.DataFrame, schema: dict) -> bool:
    """True when the table certainly passes every check of :func:`_any_problem`, decided with numpy on the
    columns' buffers (a polars query per table is a fixed cost that dominates a small file); False means
    "not sure" (nulls, NaN, or a problem found) and the polars checks decide. ``schema``: column name → dtype.
    """
    series = dict(zip(df.columns, df.get_columns(), strict=True))  # one call, not a lookup per column
    finite = _finite_columns(df)
    key = _duplicate_key(df)
    temperatures = _temperature_columns(df)
    if any(series[c].null_count() for c in (*finite, *key)) or any(schema[c] != pl.Float64 for c in finite):
        return False
    values = {c: series[c].to_numpy() for c in {*finite, *key}}
    if not all(np.isfinite(values[c]).all() for c in finite):
        return False
    if (np.diff(values["test_time_s"]) < 0).any():
        return False
    same = np.ones(df.height - 1, dtype=bool)
    for c in key:  # finite floats and null-free integers: numpy's == is polars' eq_missing here
        same &= values[c][1:] == values[c][:-1]
    if same.any():
        return False
    if _outside_np(values["voltage_V"], -MAX_ABS_VOLTAGE_V, MAX_ABS_VOLTAGE_V) or _outside_np(
            values["current_A"], -MAX_ABS_CURRENT_A, MAX_ABS_CURRENT_A):
        return False
    for c in temperatures:
        if schema[c] != pl.Float64:
            return False
        t = series[c].to_numpy()  # nulls become NaN; a NaN of the file is out of range for polars, not for numpy
        if np.count_nonzero(np.isnan(t)) != series[c].null_count() or _outside_np(t, *TEMPERATURE_RANGE_C):
            return False
    return True


def _outside_np(values: np.ndarray, lo: float, hi: float) -> bool:
    return bool(((values < lo) | (values > hi)).any())


def _finite_columns(df: pl.DataFrame) -> list[str]:
    return [*REQUIRED, *(c for c in df.columns if c.startswith(GROUP_VOLTAGE_PREFIX))]


def _temperature_columns(df: pl.DataFrame) -> list[str]:
    return [c for c in df.columns
            if c in ("temperature_C", "ambient_temperature_C") or c.startswith(TEMPERATURE_PREFIX)]


def _duplicate_key(df: pl.DataFrame) -> list[str]:
    return [c for c in (*REQUIRED, "step_index", "cycle_index") if c in df.columns]


def _repeated(key: list[str]) -> pl.Expr:
    same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(1)) for c in key])
    return same & pl.int_range(pl.len()).gt(0)


def _outside(name: str, lo: float, hi: float) -> pl.Expr:
    return (pl.col(name) < lo) | (pl.col(name) > hi)


def _any_problem(df: pl.DataFrame) -> bool:
    """All the checks in one parallel pass; only a failing table pays for finding the first bad row."""
    checks = [(pl.col(c).is_null() | ~pl.col(c).is_finite()).any() for c in _finite_columns(df)]
    checks.append((pl.col("test_time_s").diff() < 0).any())
    checks.append(_repeated(_duplicate_key(df)).any())
    checks.append(_outside("voltage_V", -MAX_ABS_VOLTAGE_V, MAX_ABS_VOLTAGE_V).any())
    checks.append(_outside("current_A", -MAX_ABS_CURRENT_A, MAX_ABS_CURRENT_A).any())
    checks += [_outside(c, *TEMPERATURE_RANGE_C).any() for c in _temperature_columns(df)]
    return any(df.select([c.alias(f"check{k}") for k, c in enumerate(checks)]).row(0))


def _find_problem(df: pl.DataFrame, file: str, line) -> None:
    """Raise for the first problem, in a fixed order of checks, naming its line and column."""
    for name in _finite_columns(df):
        values = df[name]
        bad = values.is_null() | ~values.is_finite()
        if bad.any():
            i = _row_of(df, bad)
            raise InputFileError(file, f"{name} is {values[i]!r} where a finite number was expected",
                                   line=line(i), column=name)
    t = df["test_time_s"]
    backwards = t.diff() < 0
    if backwards.any():
        i = _row_of(df, backwards)
        raise InputFileError(file, f"time goes backwards ({t[i - 1]} s then {t[i]} s)",
                               line=line(i), column="test_time_s")
    key = _duplicate_key(df)
    dup = df.select(_repeated(key).alias("dup"))["dup"]
    if dup.any():
        i = _row_of(df, dup)
        raise InputFileError(file, f"duplicated row: the same sample as line {line(i - 1)} "
                                     f"({', '.join(key)} all equal)", line=line(i))
    _check_range(df, file, line, "voltage_V", -MAX_ABS_VOLTAGE_V, MAX_ABS_VOLTAGE_V, "V (mV read as V?)")
    _check_range(df, file, line, "current_A", -MAX_ABS_CURRENT_A, MAX_ABS_CURRENT_A, "A (mA read as A?)")
    for c in _temperature_columns(df):
        _check_range(df, file, line, c, *TEMPERATURE_RANGE_C, "degC (degF or K?)")

def _check_range(df, file, line, name, lo, hi, unit_hint):
    values = df[name]
    out = ((values < lo) | (values > hi)).fill_null(False)
    if out.any():
        i = _row_of(df, out)
        raise InputFileError(file, f"{name} = {values[i]} is outside the physical range [{lo}, {hi}] {unit_hint}",
                               line=line(i), column=name)


REST_CURRENT_A = 1e-3
"""Largest default rest threshold [A]: 1 mA, at or below the current resolution of the cyclers releaf reads."""
REST_FRACTION_OF_PEAK = 1e-3
"""Default rest threshold as a fraction of the file's largest |current| when that is below ``REST_CURRENT_A``."""


def rest_threshold_A(current_A) -> float:
    """The default current magnitude at or below which a sample counts as rest [A], from the file's own currents.

    ``min(REST_CURRENT_A, REST_FRACTION_OF_PEAK x max |I|)``: 1 mA for cells and modules, which is below every
    deliberate current of a test and at the resolution of the readings; 0.1 % of the largest current when that is
    smaller, so that a coin cell that runs a whole test at 0.2 mA still has charge and discharge. The readers use
    it to derive ``step_type`` where the cycler does not write its mode, so a table's ``step_type == "rest"`` and
    :func:`rest_mask` agree.

    Parameters
    ----------
    current_A : the test's currents [A] (polars Series or array; nulls and NaN ignored)
    """
    if isinstance(current_A, pl.Series):
        peak = current_A.abs().max()
    else:
        a = np.abs(np.asarray(current_A, dtype=float))
        peak = float(np.nanmax(a)) if a.size and not np.all(np.isnan(a)) else None
    return min(REST_CURRENT_A, REST_FRACTION_OF_PEAK * float(peak)) if peak else REST_CURRENT_A


def rest_mask(current_A, threshold_A: float | None = None, *, step_type=None) -> np.ndarray:
    """Samples at rest: the one definition every diagnostic uses.

    A sample is at rest when ``|current_A| <= threshold_A``. Without a threshold, the cycler's own rest state
    (``step_type == "rest"``) is used when the table has it, because a rest step is open circuit by construction
    while the current reading may sit on a sensor offset (the ORNL C/15 file reads 0.01 A in 48 h rests); else the
    file's own default, :func:`rest_threshold_A`. A diagnostic that must tolerate larger offsets or small
    currents between pulses passes its own threshold (``releaf.diagnostics.capacity``: C/100 of the nominal
    capacity; ``releaf.diagnostics.hppc``: 2 % of the file's largest current).

    Parameters
    ----------
    current_A : current per sample [A] (array, polars Series or a scalar)
    threshold_A : current magnitude at or below which a sample is rest [A]; default see above
    step_type : the table's ``step_type`` column, if any (used only without ``threshold_A``)

    Returns
    -------
    Boolean array (or a numpy bool for a scalar current), True at rest.
    """
    if threshold_A is None and step_type is not None:
        if isinstance(step_type, pl.Series):
            return (step_type == "rest").fill_null(False).to_numpy()
        return np.asarray(step_type) == "rest"
    if threshold_A is None:
        threshold_A = rest_threshold_A(current_A)
    if isinstance(current_A, pl.Series):
        current_A = current_A.to_numpy()
    return np.abs(current_A) <= threshold_A


def step_type_from_current(current_A: pl.Expr, threshold_A: float = REST_CURRENT_A) -> pl.Expr:
    """``charge`` / ``discharge`` / ``rest`` from the sign of the current (positive = charge); ``rest`` is
    ``|current_A| <= threshold_A``, as in :func:`rest_mask`."""
    return (
        pl.when(current_A > threshold_A).then(pl.lit("charge"))
        .when(current_A < -threshold_A).then(pl.lit("discharge"))
        .otherwise(pl.lit("rest"))
    )

