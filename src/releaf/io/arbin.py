"""Arbin CSV exports (MITS Pro channel export, and the unit-less variant written by BEEP/TRI tooling).

Column names are matched after normalisation (case, spaces/underscores, the unit in parentheses split off), so
``Test_Time(s)``, ``Test Time (s)`` and ``Test_Time`` are the same column. The unit in the name decides the scale
(``Current(mA)`` → A, ``Charge_Capacity(mAh)`` → Ah, ``Test_Time(h)`` → s); a name without a unit is taken in the
Arbin default (s, A, V, Ah, Wh, degC) and the metadata says so. Arbin's sign convention is releaf's (+ = charge).

``Aux_Voltage_k`` become ``group_voltage_V_k`` (the auxiliary voltage channels of a module test carry the series
groups); ``Aux_Temperature_k`` / ``Temperature`` become ``temperature_C_k`` / ``temperature_C``.
A test-record file ``<name>_Metadata.csv`` beside the data file (schedule, channel, start) is attached to the
metadata.

References
----------
Arbin Instruments, MITS Pro data export (CSV/Excel channel sheets).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import polars as pl

from releaf.errors import ReleafInputError
from releaf.io import _text
from releaf.schema import SourceMeta, TimeSeries, step_type_from_current, validate

_UNIT_SCALE = {
    "s": ("s", 1.0), "sec": ("s", 1.0), "ms": ("s", 1e-3), "min": ("s", 60.0), "h": ("s", 3600.0),
    "hr": ("s", 3600.0), "a": ("A", 1.0), "ma": ("A", 1e-3), "v": ("V", 1.0), "mv": ("V", 1e-3),
    "ah": ("Ah", 1.0), "mah": ("Ah", 1e-3), "wh": ("Wh", 1.0), "mwh": ("Wh", 1e-3), "c": ("degC", 1.0),
    "degc": ("degC", 1.0), "°c": ("degC", 1.0), "ohm": ("Ohm", 1.0), "w": ("W", 1.0), "v/s": ("V/s", 1.0),
    "1": ("1", 1.0),
}
_DEFAULT_UNIT = {"test_time": "s", "step_time": "s", "current": "a", "voltage": "v", "charge_capacity": "ah",
                 "discharge_capacity": "ah", "charge_energy": "wh", "discharge_energy": "wh", "temperature": "c",
                 "step_index": "1", "cycle_index": "1", "datetime": "1"}
_NAME = re.compile(r"^\s*(?P<base>[^()]*?)\s*(\((?P<unit>[^()]*)\))?\s*$")


def _split(name: str) -> tuple[str, str | None]:
    m = _NAME.match(name)
    if m is None:
        return name.strip().lower(), None
    base = re.sub(r"[\s_]+", "_", m.group("base").strip().lower())
    unit = m.group("unit")
    return base, (unit.strip().lower() if unit else None)


def sniff(head: _text.Head) -> str | None:
    """``arbin-csv``, ``arbin-metadata`` or None, from the first bytes of a file."""
    first = head.first_line
    bases = {_split(n)[0] for n in first.split(",")}
    if {"data_point", "test_time", "current", "voltage"} <= bases:
        return "arbin-csv"
    if {"test_id", "iv_ch_id", "schedule_file_name"} <= bases:
        return "arbin-metadata"
    return None


def read_arbin_csv(path) -> TimeSeries:
    """Read an Arbin CSV export into the canonical table.

    Parameters
    ----------
    path : path of the CSV export

    Returns
    -------
    TimeSeries with ``test_time_s`` [s], ``voltage_V`` [V], ``current_A`` [A, + = charge], ``step_index``,
    ``cycle_index``, ``step_type`` (from the current's sign), ``datetime`` [UTC, from a unix ``DateTime`` column],
    ``temperature_C`` [degC], ``group_voltage_V_k`` [V], ``vendor_capacity_Ah`` [Ah, charge − discharge counter].
    """
    path = Path(path)
    data = _text.read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = _text.split_lines(data)
    header = lines[0].decode("latin-1").split(",")
    if sniff(_text.Head(path, lines[0], lines[0].decode("latin-1"))) != "arbin-csv":
        raise ReleafInputError(path, "not an Arbin CSV: the header needs Data_Point, Test_Time, Current and "
                                     "Voltage columns", line=1)
    body = lines[1:]
    if not body:
        raise ReleafInputError(path, "header but no data rows", line=1)
    _text.check_field_counts(path, body, 2, len(header))
    cols = [f"c{i}" for i in range(len(header))]
    raw = _text.frame_from_lines(path, body, cols)
    found: dict[str, tuple[str, str, str | None]] = {}  # base -> (raw column, name as in file, unit)
    for c, name in zip(cols, header, strict=True):
        base, unit = _split(name)
        found.setdefault(base, (c, name, unit))

    units_found, conversions = {}, []

    def num(base: str, *, allow_empty: bool = False, required: bool = True) -> pl.Series | None:
        if base not in found:
            if required:
                raise ReleafInputError(path, f"column {base!r} is missing from the header", line=1)
            return None
        c, name, unit = found[base]
        key = unit or _DEFAULT_UNIT.get(base.split("_")[0] if base.startswith("aux_") else base)
        if key is None and base.startswith("aux_voltage"):
            key = "v"
        if key is None and base.startswith("aux_temperature"):
            key = "c"
        if key not in _UNIT_SCALE:
            raise ReleafInputError(path, f"unit {unit!r} not understood", line=1, column=name)
        canonical, scale = _UNIT_SCALE[key]
        if canonical != "1":
            units_found[name] = unit or f"(none; Arbin default {canonical})"
        if scale != 1.0:
            conversions.append(f"'{name}' x {scale:g} -> {canonical}")
        return _text.to_float(path, raw, c, source_name=name, first_line_no=2, scale=scale, allow_empty=allow_empty)

    columns = {"test_time_s": num("test_time"), "voltage_V": num("voltage"), "current_A": num("current")}
    for base, target in (("step_index", "step_index"), ("cycle_index", "cycle_index")):
        if base in found:
            columns[target] = num(base, allow_empty=True).cast(pl.Int64)
    charge, discharge = num("charge_capacity", allow_empty=True, required=False), num(
        "discharge_capacity", allow_empty=True, required=False)
    if charge is not None and discharge is not None:
        columns["vendor_capacity_Ah"] = charge - discharge
    e_charge, e_discharge = num("charge_energy", allow_empty=True, required=False), num(
        "discharge_energy", allow_empty=True, required=False)
    if e_charge is not None and e_discharge is not None:
        columns["vendor_energy_Wh"] = e_charge - e_discharge
    if "datetime" in found:
        unix = num("datetime", allow_empty=True).cast(pl.Float64)
        columns["datetime"] = (unix * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
    if "temperature" in found:
        columns["temperature_C"] = num("temperature", allow_empty=True)
    for base in sorted(found, key=_aux_order):
        m = re.fullmatch(r"aux_(voltage|temperature)_(\d+)", base)
        if m:
            target = "group_voltage_V_" if m.group(1) == "voltage" else "temperature_C_"
            columns[target + m.group(2)] = num(base, allow_empty=m.group(1) == "temperature")
    df = pl.DataFrame(columns)
    df = df.with_columns(step_type_from_current(pl.col("current_A")).alias("step_type"))
    if "temperature_C" not in df.columns and "temperature_C_1" in df.columns:
        df = df.with_columns(pl.col("temperature_C_1").alias("temperature_C"))
    record = _sibling_metadata(path)
    meta = SourceMeta(
        path=str(path), sha256=_text.sha256_of(path), format="arbin-csv", vendor="Arbin",
        channel=record.get("iv_ch_id"), units_found=units_found, conversions=tuple(conversions), header=record,
    )
    return validate(TimeSeries(df, meta), line_of_row=lambda i: 2 + i)


def _aux_order(base: str):
    m = re.fullmatch(r"aux_\w+?_(\d+)", base)
    return (base.rsplit("_", 1)[0], int(m.group(1))) if m else (base, 0)


def _sibling_metadata(path: Path) -> dict[str, str]:
    """The Arbin test record ``<stem>_Metadata.csv`` next to the data file, if there is one."""
    for candidate in (path.with_name(path.stem + "_Metadata.csv"), path.with_name(path.stem + "_metadata.csv")):
        if candidate.is_file():
            try:
                table = pl.read_csv(io.BytesIO(candidate.read_bytes()), infer_schema=False, n_rows=1)
            except pl.exceptions.PolarsError:
                return {}
            return {_split(k)[0]: v for k, v in table.row(0, named=True).items() if k and v is not None}
    return {}


FORMATS = {"arbin-csv": read_arbin_csv}
