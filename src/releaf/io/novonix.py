"""Novonix HPC (high-precision charger) CSV exports.

Layout: a ``[Summary]`` block of ``key: value`` lines (channel, cell, protocol, nominal capacity, start time,
software version), a ``[Protocol]`` block (the protocol as text), a ``[Data]`` marker, then a comma-separated
header and one line per sample. Newer exports wrap every header and data line in double quotes as one field
(``"Date and Time,Cycle Number,…"``); older ones do not. Both are read.

Columns used: ``Run Time (h)`` → ``test_time_s`` (x 3600), ``Step Time (h)`` → ``step_time_s`` (x 3600),
``Potential (V)``, ``Current (A)``, ``Cycle Number``,
``Step Number``, ``Step Type`` (Novonix's step code), ``Temperature (°C)`` (cell thermocouple),
``Capacity (Ah)`` / ``Energy (Wh)`` (vendor counters), ``Date and Time`` (wall clock, no time zone: taken as UTC),
``Circuit Temperature (°C)`` (the channel's board, kept as ``vendor_circuit_temperature_C``). The unit in each
name decides the scale (:mod:`releaf.io.units`; a ``Run Time`` without one is in hours); ``Date and Time`` is read
with :func:`releaf.io.datetimes.to_utc`.

Current sign: Novonix writes **positive current on charge**, releaf's convention; no change. Checked on the real
formation file: every line of the charge steps (codes 1, 7, 8 — the protocol's CC and CC-CV charges) has
current > 0 and rising voltage.

Step codes (Novonix ``Step Type``): 0 open circuit (rest), 1 CC charge, 2 CC discharge, 7 CC part of a CC-CV
charge, 8 its CV part, 9 CC part of a CC-CV discharge, 10 its CV part (preparenovonix). Novonix has been seen to
write 1 for a CC discharge too, so on current-carrying codes the direction comes from the sign of the current when
it exceeds 1 mA, and from the code otherwise; an unknown code takes the current's sign. The code is kept as
``vendor_step_type``. ``Capacity (Ah)`` / ``Energy (Wh)`` are magnitudes (BEEP splits them into charge and
discharge by step code); releaf keeps them negative on discharge rows as ``vendor_capacity_Ah`` /
``vendor_energy_Wh``.

Hand-written on polars (with the shared toolkit in :mod:`releaf.io.maccor`): no maintained library reads these
files; BEEP and preparenovonix use pandas line by line and give no line-exact errors.

References
----------
Novonix Ltd., High Precision Charger (HPC) software, data export.
BatLabLancaster/preparenovonix, ``novonix_variables.py`` (step codes 0, 1, 2, 7, 8, 9, 10).
TRI-AMDD/beep, ``beep/structure/novonix.py`` (columns; capacity split by step code).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from releaf.errors import InputFileError
from releaf.io import datetimes, textfile, units
from releaf.io.maccor import column_key, numbers, read_table, signed_by_direction
from releaf.schema import SourceMeta, TimeSeries, step_type_from_current, validate

DATA_MARKER = b"[Data]"
STEP_CODES = {0: "rest", 1: "charge", 2: "discharge", 7: "charge", 8: "charge", 9: "discharge", 10: "discharge"}
# column (lower case, unit split off) -> dimension (releaf.io.units); the unit in the name decides the scale
_DIMENSIONS = {"run time": "time", "step time": "time", "potential": "voltage", "current": "current",
               "capacity": "charge", "energy": "energy", "temperature": "temperature",
               "circuit temperature": "temperature"}
_REQUIRED = ("run time", "potential", "current")


def _header_fields(line: str) -> list[str]:
    line = line.strip().strip("\ufeff")
    if len(line) >= 2 and line[0] == line[-1] == '"':
        line = line[1:-1]
    return [f.strip() for f in line.split(",")]


def _is_header(line: str) -> bool:
    bases = {column_key(f)[0] for f in _header_fields(line)}
    return {"run time", "potential", "current", "step type"} <= bases


def sniff(head: textfile.Head) -> str | None:
    """``novonix`` for a ``[Summary]`` block naming Novonix, or a Novonix data header, else None."""
    lines = head.text.lstrip("\ufeff").split("\n", 3)
    if lines[0].strip() == "[Summary]" and any("Novonix" in ln for ln in lines[1:3]):
        return "novonix"
    marker = head.text.find("[Data]")
    if marker >= 0:
        after = head.text[marker:].split("\n", 2)
        if len(after) > 1 and _is_header(after[1]):
            return "novonix"
    if _is_header(head.first_line):
        return "novonix"
    return None


def read_novonix(path) -> TimeSeries:
    """Read a Novonix HPC CSV export into the canonical table.

    Parameters
    ----------
    path : path of the ``.csv`` export

    Returns
    -------
    TimeSeries with ``test_time_s`` [s], ``voltage_V`` [V], ``current_A`` [A, + = charge], ``step_index``,
    ``cycle_index``, ``step_time_s`` [s], ``step_type``, ``vendor_step_type`` (Novonix code), ``temperature_C`` [degC],
    ``vendor_circuit_temperature_C`` [degC], ``vendor_capacity_Ah`` [Ah], ``vendor_energy_Wh`` [Wh] (negative on
    discharge) and ``datetime`` [UTC]. ``meta.header`` holds the ``[Summary]`` key/values.

    Raises
    ------
    InputFileError
        no ``[Data]`` header, a missing column, a line with the wrong number of fields, a non-number.
    """
    path = Path(path)
    data = textfile.read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    marker = data.find(b"\n" + DATA_MARKER)
    header_start = 0
    if marker >= 0:
        header_start = data.find(b"\n", marker + 1) + 1
        if header_start == 0 or not data[header_start:].strip():
            raise InputFileError(path, "'[Data]' marker but no header after it (file truncated?)",
                                   line=data.count(b"\n", 0, marker) + 2)
    header_end = data.find(b"\n", header_start)
    header_end = len(data) if header_end < 0 else header_end
    header_line_no = data.count(b"\n", 0, header_start) + 1
    header = _header_fields(data[header_start:header_end].decode("utf-8", "replace"))
    if not _is_header(",".join(header)):
        what = "the line after '[Data]'" if marker >= 0 else "no '[Data]' marker, and the first line"
        raise InputFileError(path, f"not a Novonix export: {what} is not a header with 'Run Time (h)', "
                                     "'Potential (V)', 'Current (A)' and 'Step Type'", line=header_line_no)
    table = read_table(path, data[header_end + 1:], first_line_no=header_line_no + 1, width=len(header),
                       separator=",", unquote=True)
    summary = _summary(data[:marker if marker >= 0 else 0].decode("utf-8", "replace"))
    df, units_found, conversions = _canonical(path, table, header, header_line_no)
    meta = SourceMeta(path=str(path), sha256=textfile.sha256_of(path), format="novonix", vendor="Novonix",
                      channel=summary.get("Channel"), units_found=units_found, conversions=tuple(conversions),
                      header=summary)
    return validate(TimeSeries(df, meta), line_of_row=table.line_of_row)


def _canonical(path, table, header: list[str], header_line_no: int):
    found: dict[str, tuple[str, str, str | None]] = {}  # base -> (column, name as in file, unit)
    for k, name in enumerate(header):
        base, unit = column_key(name)
        found.setdefault(base, (f"c{k}", name, unit))
    for base in _REQUIRED:
        if base not in found:
            raise InputFileError(path, f"no {base!r} column in the header", line=header_line_no)
    units_found, conversions = {}, []

    def num(base: str, **kw) -> pl.Series:
        col, name, unit = found[base]
        if unit:
            units_found[name] = unit
        if base not in _DIMENSIONS:
            return numbers(path, table, col, name=name, **kw)
        dimension = _DIMENSIONS[base]
        written = unit or ("h" if base in ("run time", "step time") else units.CANONICAL_UNIT[dimension])  # hours
        scale = units.conversion(written, dimension)
        if scale is None:
            what = "time unit" if dimension == "time" else "unit"
            raise InputFileError(path, f"{what} {written.lower()!r} not understood", line=header_line_no,
                                 column=name)
        if (text := units.note(name, *scale, dimension)) is not None:
            conversions.append(text)
        return units.apply(numbers(path, table, col, name=name, scale=scale[0], **kw), 1.0, scale[1])

    columns = {
        "test_time_s": num("run time"),
        "voltage_V": num("potential"),
        "current_A": num("current"),
    }
    for base, target in (("step number", "step_index"), ("cycle number", "cycle_index"),
                         ("step type", "vendor_step_type")):
        if base in found:
            columns[target] = num(base).cast(pl.Int64)
    if "step time" in found:
        columns["step_time_s"] = num("step time")
    for base, target in (("temperature", "temperature_C"), ("circuit temperature", "vendor_circuit_temperature_C"),
                         ("capacity", "vendor_capacity_Ah"), ("energy", "vendor_energy_Wh")):
        if base in found:
            columns[target] = num(base, allow_empty=True)
    df = pl.DataFrame(columns)
    by_current = step_type_from_current(pl.col("current_A"))
    if "vendor_step_type" in df.columns:
        by_code = pl.col("vendor_step_type").replace_strict(STEP_CODES, default=None, return_dtype=pl.String)
        step_type = (pl.when(by_code.is_null()).then(by_current)
                     .when((by_code == "rest") | (by_current == "rest")).then(by_code)
                     .otherwise(by_current))
        conversions.append("step_type from 'Step Type' codes (0 rest; 1, 7, 8 charge; 2, 9, 10 discharge), the "
                           "direction of current-carrying steps from the current's sign above 1 mA")
    else:
        step_type = by_current
    df = df.with_columns(step_type.alias("step_type"))
    signed = [c for c in ("vendor_capacity_Ah", "vendor_energy_Wh") if c in df.columns]
    if signed:
        df = df.with_columns(signed_by_direction(pl.col(c), pl.col("step_type")).alias(c) for c in signed)
        conversions.append("'Capacity (Ah)'/'Energy (Wh)' (magnitudes) negative on discharge rows -> vendor counters")
    if "date and time" in found:
        parsed = datetimes.to_utc(table.fields[found["date and time"][0]])
        if parsed is not None:
            df = df.with_columns(parsed)
            conversions.append("'Date and Time': wall clock without a time zone, taken as UTC")
        else:
            conversions.append("'Date and Time' in an unknown format: datetime left out")
    return df, units_found, conversions


def _summary(text: str) -> dict[str, str]:
    """``key: value`` lines of the ``[Summary]`` block (the first two lines name the file type and vendor)."""
    m = re.search(r"\[Summary\](.*?)\[End Summary\]", text, re.S)
    out = {}
    for line in (m.group(1) if m else "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


FORMATS = {"novonix": read_novonix}
