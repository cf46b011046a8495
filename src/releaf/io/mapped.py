"""Any delimited text file, read through a YAML column mapping the user writes once per export layout.

Not sniffed: the user chooses it (``releaf read FILE --mapping layout.yaml``). The mapping says how to split the
file and where each canonical column is, in which unit and with which sign::

    # layout.yaml
    delimiter: ";"               # one character or "tab"; default ","
    decimal: ","                 # "." (default) or ","
    encoding: latin-1            # utf-8 (default) or latin-1
    header_line: 3               # 1-based line holding the column names; default 1
    skip_lines_after_header: 1   # e.g. a row of units under the names; default 0
    vendor: Basytec              # free text for the metadata; default "generic CSV"
    columns:
      test_time_s: {column: "Time", format: "hh:mm:ss"}       # or unit: s|min|h, or format: datetime
      voltage_V:   {column: "U[mV]", unit: mV}
      current_A:   {column: "I[mA]", unit: mA, sign: discharge_positive}
      step_index:  {column: "Step"}
      step_type:   {column: "State", values: {C: charge, D: discharge, R: rest}}
      datetime:    {column: "Date", format: "%d.%m.%Y %H:%M:%S", timezone: Europe/Berlin}
      temperature_C_1: {column: "T1", unit: degC}

Required: ``test_time_s``, ``voltage_V``, ``current_A``. Any other canonical column (``releaf.schema``) may be
mapped, plus ``group_voltage_V_k``, ``temperature_C_k`` and ``ambient_temperature_C``. ``test_time_s`` takes
``format: seconds`` (numbers in ``unit``, default s), ``hours``, ``hh:mm:ss`` (hours may exceed 24, seconds may
carry a fraction) or ``datetime`` with ``datetime_format`` (strftime); a datetime test time is counted from the
first row and also fills ``datetime`` unless that is mapped separately. ``sign`` (``charge_positive`` default,
``discharge_positive``) applies to ``current_A`` and the vendor counters.

Units are those of :mod:`releaf.io.units`; a datetime column is read by :func:`releaf.io.datetimes.to_utc` with the
mapping's format and time zone. The module also holds the delimited-text splitter that the BDF and BatteryArchive
readers share. Hand-written on polars: the mapping must name the file, the key and the line of every mistake, which a
generic CSV library does not do.

References
----------
PyYAML (``yaml.safe_load`` / ``yaml.compose``) for the mapping; polars ``read_csv`` for the table.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import polars as pl

from releaf.errors import InputFileError
from releaf.io import datetimes, textfile, units
from releaf.schema import (
    COLUMNS,
    GROUP_VOLTAGE_PREFIX,
    TEMPERATURE_PREFIX,
    SourceMeta,
    TimeSeries,
    step_type_from_current,
    validate,
)


def dimension_of(target: str) -> str | None:
    """Physical dimension of a canonical column (``None`` for text and datetime columns)."""
    if target.startswith(GROUP_VOLTAGE_PREFIX):
        return "voltage"
    if target.startswith(TEMPERATURE_PREFIX) or target in ("temperature_C", "ambient_temperature_C"):
        return "temperature"
    return {"test_time_s": "time", "step_time_s": "time", "voltage_V": "voltage", "current_A": "current",
            "step_index": "count", "cycle_index": "count", "vendor_capacity_Ah": "charge",
            "vendor_energy_Wh": "energy"}.get(target)


# --- delimited text --------------------------------------------------------------------------------------------


def decode(path, data: bytes, encoding: str | None = None) -> str:
    """File bytes as text: the given encoding, else UTF-8 (BOM stripped) falling back to latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as e:
            raise InputFileError(path, f"cannot be decoded as {encoding}: {e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_header(line: str, delimiter: str) -> list[str]:
    """Column names of one header line (quotes honoured, surrounding spaces kept off)."""
    row = next(csv.reader([line], delimiter=delimiter), [])
    return [name.strip() for name in row]


def read_delimited(path, text: str, *, delimiter: str = ",", header_line: int = 1,
                   skip_after_header: int = 0) -> tuple[list[str], pl.DataFrame, int]:
    """Header names, an all-string frame (columns ``c0..``) and the 1-based file line of its first row.

    Every data line must have as many fields as the header; a line with fewer or more is named (a short last line
    is reported as a truncated file). Fields may be double-quoted.
    """
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < header_line:
        raise InputFileError(path, f"the file has {len(lines)} lines; the header was expected on line "
                                     f"{header_line}", line=max(len(lines), 1))
    header = split_header(lines[header_line - 1], delimiter)
    first_line_no = header_line + skip_after_header + 1
    body = lines[first_line_no - 1:]
    if not body:
        raise InputFileError(path, "header but no data rows", line=header_line)
    names = [f"c{i}" for i in range(len(header))]
    joined = "\n".join(body)
    if '"' not in joined:
        _check_field_counts(path, body, first_line_no, len(header), delimiter)
    try:
        raw = pl.read_csv(io.StringIO(joined), has_header=False, new_columns=names, infer_schema=False,
                          separator=delimiter, quote_char='"', truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as e:
        raise InputFileError(path, f"could not be parsed as {delimiter!r}-separated text: "
                                     f"{str(e).splitlines()[0]}") from None
    if raw.height != len(body):
        raise InputFileError(path, f"{len(body)} data lines but {raw.height} rows parsed (a quoted field spans "
                                     f"lines?)", line=first_line_no)
    return header, raw, first_line_no


def _check_field_counts(path, body: list[str], first_line_no: int, expected: int, delimiter: str) -> None:
    counts = pl.Series(body).str.count_matches(delimiter, literal=True) + 1
    bad = counts != expected
    if bad.any():
        i = int(bad.arg_true()[0])
        n = int(counts[i])
        hint = " (file truncated?)" if i == len(body) - 1 and n < expected else ""
        if expected == 1 or n == 1:
            hint += f" (is the delimiter {delimiter!r} right?)"
        raise InputFileError(path, f"{n} fields where {expected} were expected{hint}", line=first_line_no + i)


def quantity(path, raw: pl.DataFrame, column: str, *, name: str, unit: str | None, dimension: str,
             first_line_no: int, units_found: dict, conversions: list, allow_empty: bool = True) -> pl.Series:
    """One text column read as a physical quantity in releaf's canonical unit (counts are left as numbers).

    The unit found is recorded in ``units_found`` and any conversion in ``conversions``; a unit the table does
    not know is an error naming the column.
    """
    values = numbers(path, raw, column, source_name=name, first_line_no=first_line_no, allow_empty=allow_empty)
    if dimension == "count":
        return values
    if unit is None or units.conversion(unit, dimension) is None:
        raise InputFileError(path, f"unit {unit!r} not understood for a {dimension} column", line=1, column=name)
    units_found[name] = unit
    values, note = units.convert(values, unit, dimension, name)
    if note:
        conversions.append(note)
    return values


def numbers(path, raw: pl.DataFrame, column: str, *, source_name: str, first_line_no: int, decimal: str = ".",
            allow_empty: bool = False) -> pl.Series:
    """One text column as float, a decimal comma taken as a point; a non-number names its line and column."""
    if decimal == ",":
        raw = raw.with_columns(pl.col(column).str.replace(",", ".", literal=True))
    return textfile.to_float(path, raw, column, source_name=source_name, first_line_no=first_line_no,
                          allow_empty=allow_empty)


# --- the mapping -----------------------------------------------------------------------------------------------

TOP_KEYS = {"format", "vendor", "delimiter", "decimal", "encoding", "header_line", "skip_lines_after_header",
            "columns"}
COLUMN_KEYS = {"column", "unit", "sign", "format", "datetime_format", "timezone", "values"}
REQUIRED_TARGETS = ("test_time_s", "voltage_V", "current_A")
SIGNS = ("charge_positive", "discharge_positive")
TIME_FORMATS = ("seconds", "hours", "hh:mm:ss", "datetime")
_KNOWN_TARGETS = {c.name for c in COLUMNS} | {"ambient_temperature_C"}
_INDEXED = re.compile(rf"^({GROUP_VOLTAGE_PREFIX}|{TEMPERATURE_PREFIX})([1-9]\d*)$")
_HMS = re.compile(r"^\s*(-?)(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*$")


class _Mapping:
    """The validated mapping file: settings plus one spec per canonical column, each knowing its YAML line."""

    def __init__(self, path: Path):
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputFileError(path, "mapping file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputFileError(path, f"mapping file cannot be read: {e}") from None
        import yaml  # only when a mapping is read: BDF and BatteryArchive import this module for its text helpers

        try:
            self.doc = yaml.safe_load(text)
            self.lines = _key_lines(yaml.compose(text))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            raise InputFileError(path, f"not valid YAML: {getattr(e, 'problem', e)}",
                                   line=mark.line + 1 if mark else None) from None
        if not isinstance(self.doc, dict):
            raise InputFileError(path, "the mapping must be a YAML mapping with a 'columns' key", line=1)
        for key in self.doc:
            if key not in TOP_KEYS:
                self.fail((key,), f"unknown key; expected one of {', '.join(sorted(TOP_KEYS))}")
        self.delimiter = self._delimiter()
        self.decimal = self.get(("decimal",), ".", str)
        if self.decimal not in (".", ","):
            self.fail(("decimal",), f"{self.decimal!r} where '.' or ',' was expected")
        if self.decimal == self.delimiter:
            self.fail(("decimal",), f"the decimal mark {self.decimal!r} is also the delimiter")
        self.encoding = self.get(("encoding",), "utf-8", str)
        self.header_line = self.get(("header_line",), 1, int)
        self.skip = self.get(("skip_lines_after_header",), 0, int)
        if self.header_line < 1 or self.skip < 0:
            self.fail(("header_line",) if self.header_line < 1 else ("skip_lines_after_header",),
                      "must be a positive line number" if self.header_line < 1 else "must be 0 or more")
        self.vendor = self.get(("vendor",), "generic CSV", str)
        columns = self.doc.get("columns")
        if not isinstance(columns, dict) or not columns:
            self.fail(("columns",) if "columns" in self.doc else (),
                      "'columns' must map canonical names (test_time_s, voltage_V, current_A, ...) to the file's "
                      "columns")
        for target in REQUIRED_TARGETS:
            if target not in columns:
                self.fail(("columns",), f"no mapping for the required column {target!r}")
        self.columns: dict[str, dict] = {}
        for target, spec in columns.items():
            self.columns[target] = self._column(target, spec)

    def line(self, keys: tuple) -> int | None:
        while keys and keys not in self.lines:
            keys = keys[:-1]
        return self.lines.get(keys)

    def fail(self, keys: tuple, message: str):
        where = ".".join(str(k) for k in keys)
        raise InputFileError(self.path, (f"key {where!r}: " if where else "") + message, line=self.line(keys))

    def get(self, keys: tuple, default, kind):
        node = self.doc
        for k in keys:
            if not isinstance(node, dict) or k not in node:
                return default
            node = node[k]
        if kind is int and (isinstance(node, bool) or not isinstance(node, int)):
            self.fail(keys, f"{node!r} where a whole number was expected")
        if kind is str and not isinstance(node, str):
            self.fail(keys, f"{node!r} where text was expected")
        return node

    def _delimiter(self) -> str:
        d = self.get(("delimiter",), ",", str)
        d = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ","}.get(d, d)
        if len(d) != 1:
            self.fail(("delimiter",), f"{d!r} where one character (or 'tab') was expected")
        return d

    def _column(self, target: str, spec) -> dict:
        keys = ("columns", target)
        if target not in _KNOWN_TARGETS and not _INDEXED.match(target):
            self.fail(keys, "unknown canonical column; expected one of "
                            f"{', '.join(sorted(_KNOWN_TARGETS))}, group_voltage_V_<k>, temperature_C_<k>")
        if isinstance(spec, str):
            spec = {"column": spec}
        if not isinstance(spec, dict):
            self.fail(keys, "expected the file's column name, or a mapping with 'column', 'unit', ...")
        for key in spec:
            if key not in COLUMN_KEYS:
                self.fail(keys + (key,), f"unknown key; expected one of {', '.join(sorted(COLUMN_KEYS))}")
        if not isinstance(spec.get("column"), str) or not spec["column"].strip():
            self.fail(keys + ("column",), "the name of the file's column is missing")
        dim = dimension_of(target)
        out = dict(spec)
        fmt = spec.get("format")
        if target == "test_time_s":
            fmt = fmt or "seconds"
            if fmt not in TIME_FORMATS:
                self.fail(keys + ("format",), f"{fmt!r} where one of {', '.join(TIME_FORMATS)} was expected")
            if fmt == "datetime" and not isinstance(spec.get("datetime_format"), str):
                self.fail(keys, "format 'datetime' needs 'datetime_format' (strftime, e.g. '%Y-%m-%d %H:%M:%S')")
            if fmt == "hours":
                fmt, out["unit"] = "seconds", "h"
            out["format"] = fmt
        elif target == "datetime":
            if not isinstance(fmt, str):
                self.fail(keys, "'datetime' needs 'format': a strftime pattern or 'unix' (seconds since 1970)")
        elif fmt is not None:
            self.fail(keys + ("format",), "'format' applies to test_time_s and datetime only")
        if "unit" in spec:
            if dim is None or not isinstance(spec["unit"], str) or units.conversion(spec["unit"], dim) is None:
                known = ", ".join(k for k in units.UNITS[dim] if k) if dim else "none (this column has no unit)"
                self.fail(keys + ("unit",), f"unit {spec['unit']!r} not understood for {target}; known: {known}")
        sign = spec.get("sign", "charge_positive")
        if sign not in SIGNS:
            self.fail(keys + ("sign",), f"{sign!r} where one of {', '.join(SIGNS)} was expected")
        if "sign" in spec and target not in ("current_A", "vendor_capacity_Ah", "vendor_energy_Wh"):
            self.fail(keys + ("sign",), "'sign' applies to current_A, vendor_capacity_Ah and vendor_energy_Wh only")
        if "values" in spec and (target != "step_type" or not isinstance(spec["values"], dict)):
            self.fail(keys + ("values",), "'values' maps the file's step codes to charge/discharge/rest "
                                          "(step_type only)")
        if "timezone" in spec and not isinstance(spec["timezone"], str):
            self.fail(keys + ("timezone",), "expected a time-zone name such as 'UTC' or 'Europe/Berlin'")
        out["sign"] = sign
        out["column"] = spec["column"].strip()
        return out


def _key_lines(node, prefix: tuple = ()) -> dict[tuple, int]:
    """1-based YAML line of every mapping key, by its path of keys."""
    import yaml

    out = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = prefix + (key_node.value,)
            out[path] = key_node.start_mark.line + 1
            out.update(_key_lines(value_node, path))
    return out


def read_mapped(path, mapping_path) -> TimeSeries:
    """Read a delimited text file into the canonical table through a YAML column mapping.

    Parameters
    ----------
    path : the data file
    mapping_path : the YAML mapping (see the module docstring for its keys)

    Returns
    -------
    Validated TimeSeries with every mapped canonical column, converted to canonical units [s, V, A, Ah, Wh, degC]
    and sign (+ = charge); ``step_type`` from the mapped column or else from the current's sign.

    Raises
    ------
    InputFileError
        for a mistake in the mapping (naming the mapping file, the key and its line), a mapped column missing from
        the data file's header, or a bad value in the data (naming the data file, line and column).
    """
    path, mapping_path = Path(path), Path(mapping_path)
    m = _Mapping(mapping_path)
    text = decode(path, textfile.read_bytes(path), m.encoding)
    header, raw, first = read_delimited(path, text, delimiter=m.delimiter, header_line=m.header_line,
                                        skip_after_header=m.skip)
    where = {name: f"c{i}" for i, name in reversed(list(enumerate(header)))}
    for target, spec in m.columns.items():
        if spec["column"] not in where:
            shown = ", ".join(repr(h) for h in header[:12]) + (", ..." if len(header) > 12 else "")
            m.fail(("columns", target, "column"),
                   f"column {spec['column']!r} not found in the header of {path.name} (line {m.header_line}, "
                   f"split at {m.delimiter!r}); found: {shown}")

    units_found, conversions, columns = {}, [], {}

    def num(spec, **kw):
        return numbers(path, raw, where[spec["column"]], source_name=spec["column"], first_line_no=first,
                       decimal=m.decimal, **kw)

    dt_from_time = None
    for target, spec in m.columns.items():
        name, dim = spec["column"], dimension_of(target)
        if target == "test_time_s" and spec["format"] in ("hh:mm:ss", "datetime"):
            if spec["format"] == "hh:mm:ss":
                columns[target] = _hms(path, raw[where[name]], name, first, m.decimal)
                conversions.append(f"'{name}' hh:mm:ss -> s")
            else:
                dt_from_time = _datetimes(path, raw[where[name]], name, first, spec["datetime_format"],
                                          spec.get("timezone", "UTC"))
                seconds = (dt_from_time - dt_from_time[0]).dt.total_microseconds() / 1e6
                columns[target] = seconds.cast(pl.Float64)
                conversions.append(f"'{name}' datetime ({spec['datetime_format']}) -> s since the first row")
            units_found[name] = spec["format"]
        elif target == "datetime":
            if spec["format"] == "unix":
                unix = num(spec, allow_empty=True)
                columns[target] = (unix * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
            else:
                columns[target] = _datetimes(path, raw[where[name]], name, first, spec["format"],
                                             spec.get("timezone", "UTC"))
            units_found[name] = spec["format"]
        elif target == "step_type":
            text_col = raw[where[name]].str.strip_chars()
            if "values" in spec:
                codes = {str(k): str(v) for k, v in spec["values"].items()}
                text_col = text_col.replace_strict(codes, default=text_col)
            columns[target] = text_col.str.to_lowercase().replace("", None)
        elif dim == "count":
            columns[target] = num(spec, allow_empty=True).cast(pl.Int64)
        else:
            required = target in REQUIRED_TARGETS or target.startswith(GROUP_VOLTAGE_PREFIX)
            values = num(spec, allow_empty=not required)
            unit = spec.get("unit", units.CANONICAL_UNIT[dim])
            values, note = units.convert(values, unit, dim, name)
            units_found[name] = unit
            if note:
                conversions.append(note)
            if spec["sign"] == "discharge_positive":
                values = -values
                conversions.append(f"'{name}' sign flipped (file: discharge positive) -> + = charge")
            columns[target] = values
    if dt_from_time is not None and "datetime" not in columns:
        columns["datetime"] = dt_from_time
    df = pl.DataFrame(columns)
    if "step_type" in df.columns:
        df = df.with_columns(pl.col("step_type").fill_null(step_type_from_current(pl.col("current_A"))))
    else:
        df = df.with_columns(step_type_from_current(pl.col("current_A")).alias("step_type"))
    meta = SourceMeta(
        path=str(path), sha256=textfile.sha256_of(path), format="mapped-csv", vendor=m.vendor,
        units_found=units_found, conversions=tuple(conversions),
        header={"mapping": str(mapping_path), "mapping_sha256": textfile.sha256_of(mapping_path)},
    )
    return validate(TimeSeries(df, meta), line_of_row=lambda i: first + i)


def _hms(path, raw: pl.Series, name: str, first: int, decimal: str) -> pl.Series:
    """``[-]H:MM:SS[.f]`` durations as seconds; a field that is not one names its line."""
    text = raw.str.strip_chars()
    if decimal == ",":
        text = text.str.replace(",", ".", literal=True)
    parts = text.str.extract_groups(_HMS.pattern)
    h, mi, s = (parts.struct.field(str(k)).cast(pl.Float64) for k in (2, 3, 4))
    seconds = h * 3600 + mi * 60 + s
    sign = pl.when(parts.struct.field("1") == "-").then(-1.0).otherwise(1.0)
    out = pl.select(sign * seconds).to_series()
    bad = out.is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputFileError(path, f"{raw[i]!r} where a duration hh:mm:ss was expected", line=first + i,
                               column=name)
    return out.rename("test_time_s")


def _datetimes(path, raw: pl.Series, name: str, first: int, fmt: str, timezone: str) -> pl.Series:
    """Wall-clock strings as UTC datetimes; a field that does not match ``fmt`` names its line."""
    try:
        parsed = datetimes.to_utc(raw, fmt, time_zone=timezone, partial=True)
    except (pl.exceptions.PolarsError, ValueError) as e:
        raise InputFileError(path, f"datetime format {fmt!r} / time zone {timezone!r} not usable: "
                                     f"{str(e).splitlines()[0]}", column=name) from None
    bad = parsed.is_null() & raw.str.strip_chars().replace("", None).is_not_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputFileError(path, f"{raw[i]!r} does not match the datetime format {fmt!r}", line=first + i,
                               column=name)
    return parsed
