"""Arbin CSV exports (MITS Pro channel export, and the unit-less variant written by BEEP/TRI tooling).

Column names are matched after normalisation (case, spaces/underscores, the unit in parentheses split off), so
``Test_Time(s)``, ``Test Time (s)`` and ``Test_Time`` are the same column. The unit in the name decides the scale
(``Current(mA)`` → A, ``Charge_Capacity(mAh)`` → Ah, ``Test_Time(h)`` → s); a name without a unit is taken in the
Arbin default (s, A, V, Ah, Wh, degC) and the metadata says so. Arbin's sign convention is releaf's (+ = charge).

``Aux_Voltage_k`` become ``group_voltage_V_k`` (the auxiliary voltage channels of a module test carry the series
groups); ``Aux_Temperature_k`` / ``Temperature`` become ``temperature_C_k`` / ``temperature_C``.
A test-record file ``<name>_Metadata.csv`` beside the data file (schedule, channel, start) is attached to the
metadata.

Reading has two paths. The fast one hands the whole file to polars' multi-threaded CSV parser with the numeric
columns typed up front (only those releaf uses) and converts them column by column; a well-formed file never
leaves it. When polars refuses the file, or a required value comes out empty, the careful path re-reads it line by
line to name the exact line and column of the first problem (polars' own messages do not). Large files can be
read in bounded memory with :func:`iter_arbin_csv`.

References
----------
Arbin Instruments, MITS Pro data export (CSV/Excel channel sheets).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from releaf.errors import InputFileError
from releaf.io import textfile
from releaf.schema import SourceMeta, TimeSeries, validate

_UNIT_SCALE = {
    "s": ("s", 1.0), "sec": ("s", 1.0), "ms": ("s", 1e-3), "min": ("s", 60.0), "h": ("s", 3600.0),
    "hr": ("s", 3600.0), "a": ("A", 1.0), "ma": ("A", 1e-3), "v": ("V", 1.0), "mv": ("V", 1e-3),
    "ah": ("Ah", 1.0), "mah": ("Ah", 1e-3), "wh": ("Wh", 1.0), "mwh": ("Wh", 1e-3), "c": ("degC", 1.0),
    "degc": ("degC", 1.0), "°c": ("degC", 1.0), "ohm": ("Ohm", 1.0), "w": ("W", 1.0), "v/s": ("V/s", 1.0),
    "1": ("1", 1.0),
}
_DEFAULT_UNIT = {"test_time": "s", "step_time": "s", "current": "a", "voltage": "v", "charge_capacity": "ah",
                 "discharge_capacity": "ah", "charge_energy": "wh", "discharge_energy": "wh", "temperature": "c",
                 "step_index": "1", "cycle_index": "1", "datetime": "1", "date_time": "1"}
_SEPARATORS = re.compile(r"[\s_]+")
_NAME = re.compile(r"^\s*(?P<base>[^()]*?)\s*(\((?P<unit>[^()]*)\))?\s*$")
_DATETIME_FORMATS = ("%m/%d/%Y %H:%M:%S%.f", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%Y-%m-%d %H:%M:%S%.f",
                     "%Y-%m-%dT%H:%M:%S%.f", "%d/%m/%Y %H:%M:%S%.f", "%d.%m.%Y %H:%M:%S%.f")
_MITS_DATETIME = _DATETIME_FORMATS[0]
# MM/DD/YYYY HH:MM:SS.ffffff, byte by byte: the lowest and highest byte allowed at each position
_MITS_LOW = np.frombuffer(b"00/00/0000 00:00:00.000000", np.uint8)
_MITS_HIGH = np.frombuffer(b"19/39/9999 29:59:59.999999", np.uint8)
# place value of each byte: of MM/DD/YYYY in a date key (any distinct weights), of HH:MM:SS.ffffff in microseconds
_MITS_DATE_PLACES = np.array([1e5, 1e4, 0, 1e3, 1e2, 0, 1e9, 1e8, 1e7, 1e6])
_MITS_TIME_US = np.array([36e9, 36e8, 0, 6e8, 6e7, 0, 1e7, 1e6, 0, 1e5, 1e4, 1e3, 1e2, 1e1, 1])
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_AUX = re.compile(r"aux_(voltage|temperature)_(\d+)")
_AUX_ORDER = re.compile(r"aux_\w+?_(\d+)")
FIRST_DATA_LINE = 2
_ARBIN_CSV_COLUMNS = frozenset({"data_point", "test_time", "current", "voltage"})  # what makes a file arbin-csv


@functools.lru_cache(maxsize=4096)  # a plant's files share a few headers; sniffing and planning split every name
def _split(name: str) -> tuple[str, str | None]:
    m = _NAME.match(name)
    if m is None:
        return name.strip().lower(), None
    base = _SEPARATORS.sub("_", m.group("base").strip().lower())
    unit = m.group("unit")
    return base, (unit.strip().lower() if unit else None)


def sniff(head: textfile.Head) -> str | None:
    """``arbin-csv``, ``arbin-metadata`` or None, from the first bytes of a file."""
    bases = {_split(n)[0] for n in head.first_line.split(",")}
    if _ARBIN_CSV_COLUMNS <= bases:
        return "arbin-csv"
    if {"test_id", "iv_ch_id", "schedule_file_name"} <= bases:
        return "arbin-metadata"
    return None


@dataclass(frozen=True)
class _Source:
    """One file column releaf uses: its name in the file, its position, and the scale to releaf's unit."""

    name: str
    index: int
    scale: float
    optional: bool  # may be empty (vendor counters, temperatures)


@dataclass(frozen=True)
class _Plan:
    """What to take from a file with this header, and how: decided once, applied to every batch."""

    header: list[str]
    sources: dict[str, _Source]  # canonical or intermediate name → source
    units_found: dict[str, str]
    conversions: tuple[str, ...]
    unix_datetime: bool = False  # DateTime holds unix seconds (parsed as a number) rather than text
    datetime_format: str | None = None  # strptime format of a text DateTime, found on the first data row


def _plan(path, header: list[str], first_row: list[str] | None = None, *, wall_clock: bool = True) -> _Plan:
    found: dict[str, tuple[int, str, str | None]] = {}
    for k, name in enumerate(header):
        base, unit = _split(name)
        found.setdefault(base, (k, name, unit))
    sources, units_found, conversions = {}, {}, []

    def take(base: str, target: str, *, optional: bool = False, required: bool = True) -> None:
        if base not in found:
            if required:
                raise InputFileError(path, f"column {base!r} is missing from the header", line=1)
            return
        k, name, unit = found[base]
        key = unit or _DEFAULT_UNIT.get(base)
        if key is None and base.startswith("aux_voltage"):
            key = "v"
        if key is None and base.startswith("aux_temperature"):
            key = "c"
        if key not in _UNIT_SCALE:
            raise InputFileError(path, f"unit {unit!r} not understood", line=1, column=name)
        canonical, scale = _UNIT_SCALE[key]
        if canonical != "1":
            units_found[name] = unit or f"(none; Arbin default {canonical})"
        if scale != 1.0:
            conversions.append(f"'{name}' x {scale:g} -> {canonical}")
        sources[target] = _Source(name, k, scale, optional)

    take("test_time", "test_time_s")
    take("voltage", "voltage_V")
    take("current", "current_A")
    take("step_index", "step_index", optional=True, required=False)
    take("cycle_index", "cycle_index", optional=True, required=False)
    for part in ("charge_capacity", "discharge_capacity", "charge_energy", "discharge_energy"):
        take(part, part, optional=True, required=False)
    if wall_clock:
        take("datetime" if "datetime" in found else "date_time", "datetime", optional=True, required=False)
    if "datetime" in sources:
        conversions.append(f"'{sources['datetime'].name}': unix seconds, or wall-clock text without a time zone "
                           "taken as UTC")
    take("temperature", "temperature_C", optional=True, required=False)
    for base in sorted(found, key=_aux_order):
        m = _AUX.fullmatch(base)
        if m:
            target = ("group_voltage_V_" if m.group(1) == "voltage" else "temperature_C_") + m.group(2)
            take(base, target, optional=m.group(1) == "temperature")
    unix, fmt = False, None
    if "datetime" in sources and first_row and len(first_row) > sources["datetime"].index:
        text = first_row[sources["datetime"].index].strip()
        try:
            float(text)
            unix = True
        except ValueError:
            fmt = _datetime_format(text)
    return _Plan(header, sources, units_found, tuple(conversions), unix, fmt)


def _canonical(raw: pl.DataFrame, plan: _Plan) -> pl.DataFrame:
    """Typed file columns (named by position ``c<k>``) → canonical columns.

    Series arithmetic rather than one polars query: the same kernels, without a query's fixed cost (a tenth of a
    millisecond, as much as the conversion of a small file).
    """
    s = plan.sources
    file_columns = dict(zip(raw.columns, raw.get_columns(), strict=True))

    def col(target: str) -> pl.Series:
        src = s[target]
        c = file_columns[f"c{src.index}"]
        c = c if c.dtype == pl.Float64 else c.cast(pl.Float64)
        return c * src.scale if src.scale != 1.0 else c

    out = [col("test_time_s").alias("test_time_s"), col("voltage_V").alias("voltage_V"),
           col("current_A").alias("current_A")]
    for target in ("step_index", "cycle_index"):
        if target in s:
            out.append(col(target).cast(pl.Int64).alias(target))
    if "charge_capacity" in s and "discharge_capacity" in s:
        out.append((col("charge_capacity") - col("discharge_capacity")).alias("vendor_capacity_Ah"))
    if "charge_energy" in s and "discharge_energy" in s:
        out.append((col("charge_energy") - col("discharge_energy")).alias("vendor_energy_Wh"))
    for target in s:
        if target == "temperature_C" or target.startswith(("group_voltage_V_", "temperature_C_")):
            out.append(col(target).alias(target))
    # no step_type: Arbin writes none, and one made from the current's sign would add nothing to current_A
    if "datetime" in s:
        out.append(_datetime_column(file_columns[f"c{s['datetime'].index}"], plan))
    if "temperature_C" not in s and "temperature_C_1" in s:
        out.append(col("temperature_C_1").alias("temperature_C"))
    return pl.DataFrame(out)


def _datetime_column(values: pl.Series, plan: _Plan) -> pl.Series:
    """The file's DateTime column as ``datetime`` [UTC]: MITS Pro text decoded by numpy when it has the fixed
    layout (:func:`_mits_datetime`), anything else by the polars expression :func:`_datetime_expr`."""
    if plan.datetime_format == _MITS_DATETIME and not plan.unix_datetime:
        decoded = _mits_datetime(values)
        if decoded is not None:
            return decoded
    return values.to_frame("text").select(_datetime_expr(pl.col("text"), plan).alias("datetime")).to_series()


def _datetime_format(text: str) -> str | None:
    """The first of ``_DATETIME_FORMATS`` that reads ``text`` (month first is Arbin's US default), or None."""
    from datetime import datetime

    for fmt in _DATETIME_FORMATS:
        try:
            datetime.strptime(text, fmt.replace("%.f", ".%f"))
            return fmt
        except ValueError:
            continue
    return None


def _mits_datetime(text: pl.Series) -> pl.Series | None:
    """MITS Pro's ``MM/DD/YYYY HH:MM:SS[.f]`` wall-clock text [UTC] decoded with numpy, or None unless every value
    has exactly that layout (same width, up to 6 fraction digits) and is a valid date and time.

    What polars' strptime of ``_MITS_DATETIME`` gives for such text, at a fraction of its cost (about 0.2 us a
    row, a third of the parse of a small Arbin file); anything else (blanks, other widths, 02/30, 24:00, leap
    seconds) returns None and is left to polars, so odd text still reads exactly as before.
    """
    n = text.len()
    if n == 0 or text.null_count():
        return None
    arrow = text.to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string: offsets + one data buffer
    _, offsets, data = arrow.buffers()
    offsets = np.frombuffer(offsets, np.int64)[arrow.offset : arrow.offset + n + 1]
    width = int(offsets[1] - offsets[0])
    if not (width == 19 or 21 <= width <= 26) or (np.diff(offsets) != width).any():
        return None
    raw = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]].reshape(n, width)
    if ((raw < _MITS_LOW[:width]) | (raw > _MITS_HIGH[:width])).any():  # digits where digits belong, in range
        return None
    if ((raw[:, 11] == ord("2")) & (raw[:, 12] > ord("3"))).any():  # hour 24-29
        return None
    # digit bytes -> numbers by one product with the place values (exact: integers far below 2**53)
    x = raw.astype(np.float64)
    day_key = x[:, :10] @ _MITS_DATE_PLACES - ord("0") * _MITS_DATE_PLACES.sum()
    time_us = (x[:, 11:] @ _MITS_TIME_US[: width - 11] - ord("0") * _MITS_TIME_US[: width - 11].sum()).astype(np.int64)
    # the date changes rarely: each run of equal dates is checked and counted once, by Python's datetime
    starts = [0, *(np.flatnonzero(np.diff(day_key)) + 1).tolist()]
    if len(starts) > 1 + n // 8:
        return None
    try:
        days = [_date(bytes(raw[r, :10])).toordinal() - _EPOCH_ORDINAL for r in starts]
    except ValueError:  # 02/30, month 13, year 0
        return None
    us = np.repeat(np.asarray(days, dtype=np.int64) * 86_400_000_000, np.diff([*starts, n])) + time_us
    return pl.Series("datetime", us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))


def _date(mm_dd_yyyy: bytes) -> date:
    return date(int(mm_dd_yyyy[6:]), int(mm_dd_yyyy[:2]), int(mm_dd_yyyy[3:5]))


def _datetime_expr(text: pl.Expr, plan: _Plan) -> pl.Expr:
    """Arbin's DateTime: unix seconds (TRI exports) or local wall-clock text (MITS Pro), both kept as UTC; a text
    the first row's format does not read becomes null (the column is informative only)."""
    if plan.unix_datetime:
        return (text.cast(pl.Float64) * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
    if plan.datetime_format is None:
        return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    return (text.str.strip_chars().str.to_datetime(plan.datetime_format, strict=False, time_unit="us")
            .dt.replace_time_zone("UTC"))


def _schema(plan: _Plan) -> dict[str, type[pl.DataType]]:
    used = {src.index for t, src in plan.sources.items() if t != "datetime" or plan.unix_datetime}
    return {f"c{k}": (pl.Float64 if k in used else pl.String) for k in range(len(plan.header))}


def _read_header(path: Path, data: bytes | None = None) -> tuple[list[str], list[str] | None]:
    """The header's column names and the first data row's fields (None if the file has no data row yet);
    ``data``: the file's bytes, if already read."""
    head = textfile.head_of(path) if data is None else textfile.head_of_bytes(path, data)
    if sniff(head) != "arbin-csv":
        raise InputFileError(path, "not an Arbin CSV: the header needs Data_Point, Test_Time, Current and "
                                     "Voltage columns", line=1)
    text = head.text
    start = text.find("\n") + 1
    end = text.find("\n", start) if start else -1
    first_row = text[start:end].rstrip("\r").split(",") if end >= 0 else None  # a whole line only
    return head.first_line.split(","), first_row


def _meta(path: Path, plan: _Plan, sha256: str | None = None) -> SourceMeta:
    record = _sibling_metadata(path)
    return SourceMeta(
        path=str(path), sha256=sha256 or textfile.sha256_of(path), format="arbin-csv", vendor="Arbin",
        channel=record.get("iv_ch_id"), units_found=plan.units_found, conversions=plan.conversions, header=record,
    )


def _fast(source: Path | bytes, plan: _Plan) -> pl.DataFrame | None:
    """The whole file (its path, or its bytes when already in memory) through polars' parser, only the columns
    releaf uses, and into canonical columns; None when it needs the careful path to explain a problem.

    polars fills a short line with nulls and, reading only some columns, does not notice a long one; the caller
    therefore also compares the file's comma count with ``fields x lines`` (:func:`_fields_consistent`).
    """
    schema = _schema(plan)
    used = sorted({src.index for src in plan.sources.values()})
    try:
        raw = pl.read_csv(source, has_header=False, skip_rows=1, new_columns=list(schema), schema=schema,
                          columns=used, quote_char=None, truncate_ragged_lines=False, encoding="utf8-lossy")
        df = _canonical(raw, plan)
    except (pl.exceptions.PolarsError, OSError):
        return None
    required = [t for t, src in plan.sources.items() if not src.optional and t in df.columns]
    if df.height == 0 or any(df[c].null_count() for c in required):  # null counts are metadata: free
        return None
    return df


def _fields_consistent(plan: _Plan, data_rows: int, commas: int | None) -> bool:
    """Every line (header included) has the header's number of fields, judged by the total comma count.

    Blank lines hold no commas and are skipped by the parser too. A line one field short and another one field
    long would cancel out; both still fail the careful path if a required value is affected.
    """
    return commas == (len(plan.header) - 1) * (data_rows + 1)


def _careful(path: Path, plan: _Plan) -> pl.DataFrame:
    """Line-by-line parse that names the first bad line and column (only reached for a faulty file)."""
    data = textfile.read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    body = textfile.split_lines(data)[1:]
    if not body:
        raise InputFileError(path, "header but no data rows", line=1)
    textfile.check_field_counts(path, body, FIRST_DATA_LINE, len(plan.header))
    names = [f"c{k}" for k in range(len(plan.header))]
    raw = textfile.frame_from_lines(path, body, names)
    typed = {}
    for target, src in plan.sources.items():
        if target == "datetime" and not plan.unix_datetime:
            continue
        typed[f"c{src.index}"] = textfile.to_float(path, raw, f"c{src.index}", source_name=src.name,
                                                first_line_no=FIRST_DATA_LINE, allow_empty=src.optional)
    return raw.with_columns(**typed)


def read_arbin_csv(path, *, wall_clock: bool = True) -> TimeSeries:
    """Read an Arbin CSV export into the canonical table.

    Parameters
    ----------
    path : path of the CSV export
    wall_clock : also decode the DateTime column into ``datetime``; False leaves it out (it is the costliest
        column to decode, and the diagnosis does not use it)

    Returns
    -------
    TimeSeries with ``test_time_s`` [s], ``voltage_V`` [V], ``current_A`` [A, + = charge], ``step_index``,
    ``cycle_index``, ``datetime`` [UTC, from a unix ``DateTime`` column],
    ``temperature_C`` [degC], ``group_voltage_V_k`` [V], ``vendor_capacity_Ah`` [Ah, charge − discharge counter].
    """
    path = Path(path)
    data = path.read_bytes() if path.stat().st_size <= textfile.IN_MEMORY_BYTES else None
    plan = _plan(path, *_read_header(path, data), wall_clock=wall_clock)
    if data is not None:
        df = _fast(data, plan)
        sha256, commas = hashlib.sha256(data).hexdigest(), textfile.count_byte(data, b",")
    else:
        with textfile.hashing(path, count=b",") as digest:  # hashed (and commas counted) on another thread
            df = _fast(path, plan)
        sha256, commas = digest.hexdigest(), digest.separators
    if df is None or not _fields_consistent(plan, df.height, commas):
        df = _canonical(_careful(path, plan), plan)
    return validate(TimeSeries(df, _meta(path, plan, sha256)), line_of_row=lambda i: FIRST_DATA_LINE + i)


def iter_arbin_csv(path, *, batch_rows: int = 1_000_000) -> Iterator[TimeSeries]:
    """Read a large Arbin CSV in bounded memory: validated canonical batches of at most ``batch_rows`` rows.

    Each batch is validated with the file's line numbers; time must keep increasing across batches too.
    The sha256 of the file is computed once, streaming, and every batch carries the same metadata.

    Parameters
    ----------
    path : path of the CSV export
    batch_rows : rows per batch (memory is about ``batch_rows`` x columns x 8 bytes, times a small factor)
    """
    path = Path(path)
    plan = _plan(path, *_read_header(path))
    meta = _meta(path, plan)
    schema = _schema(plan)
    lazy = pl.scan_csv(path, has_header=False, skip_rows=1, new_columns=list(schema), schema=schema,
                       quote_char=None, truncate_ragged_lines=False, encoding="utf8-lossy")
    first_line, last_time = FIRST_DATA_LINE, None
    try:
        for raw in lazy.collect_batches(chunk_size=batch_rows):
            df = _canonical(raw, plan)
            if last_time is not None and df.height and df["test_time_s"][0] < last_time:
                raise InputFileError(path, f"time goes backwards ({last_time} s then {df['test_time_s'][0]} s)",
                                       line=first_line, column="test_time_s")
            offset = first_line
            yield validate(TimeSeries(df, meta), line_of_row=lambda i, o=offset: o + i)
            if df.height:
                last_time = df["test_time_s"][-1]
            first_line += raw.height
    except pl.exceptions.PolarsError as err:
        raise InputFileError(path, f"could not be parsed after line {first_line - 1}: "
                                     f"{str(err).splitlines()[0]}") from None


def _aux_order(base: str):
    m = _AUX_ORDER.fullmatch(base)
    return (base.rsplit("_", 1)[0], int(m.group(1))) if m else (base, 0)


def _sibling_metadata(path: Path) -> dict[str, str]:
    """The Arbin test record ``<stem>_Metadata.csv`` next to the data file, if there is one."""
    stem = os.path.join(os.path.dirname(path), path.stem)  # os.path: pathlib's with_name is slow for a lookup
    for candidate in (stem + "_Metadata.csv", stem + "_metadata.csv"):
        if os.path.isfile(candidate):
            try:
                table = pl.read_csv(io.BytesIO(Path(candidate).read_bytes()), infer_schema=False, n_rows=1)
            except pl.exceptions.PolarsError:
                return {}
            return {_split(k)[0]: v for k, v in table.row(0, named=True).items() if k and v is not None}
    return {}


FORMATS = {"arbin-csv": read_arbin_csv}
STREAMERS = {"arbin-csv": iter_arbin_csv}
# readers that take ``wall_clock=False`` (see :func:`releaf.io.read`)
WALL_CLOCK_OPTIONAL = frozenset({"arbin-csv"})
