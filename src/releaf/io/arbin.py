"""Arbin CSV exports (MITS Pro channel export, and the unit-less variant written by BEEP/TRI tooling).

Column names are matched after normalisation (case, spaces/underscores, the unit in parentheses split off), so
``Test_Time(s)``, ``Test Time (s)`` and ``Test_Time`` are the same column. The unit in the name decides the scale
(:mod:`releaf.io.units`: ``Current(mA)`` → A, ``Charge_Capacity(mAh)`` → Ah, ``Test_Time(h)`` → s); a name
without a unit is taken in the Arbin default (s, A, V, Ah, Wh, degC) and the metadata says so. Arbin's sign
convention is releaf's (+ = charge). ``DateTime`` holds unix seconds (TRI exports) or the tester PC's wall clock as
text, in the first of :data:`releaf.io.datetimes.DATETIME_FORMATS` that reads the first row; both are kept as UTC.

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

import dataclasses
import functools
import hashlib
import io
import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from releaf.errors import InputFileError
from releaf.io import datetimes, textfile, units
from releaf.schema import SourceMeta, TimeSeries, validate

# Arbin's columns by normalised name -> dimension (releaf.io.units); a name without a unit is in the canonical one
COLUMN_DIMENSIONS = {"test_time": "time", "step_time": "time", "current": "current", "voltage": "voltage",
                     "charge_capacity": "charge", "discharge_capacity": "charge", "charge_energy": "energy",
                     "discharge_energy": "energy", "temperature": "temperature", "step_index": "count",
                     "cycle_index": "count"}
AUX_COLUMN = re.compile(r"aux_(voltage|temperature)_(\d+)")  # auxiliary channels: series groups, sensors
_SEPARATORS = re.compile(r"[\s_]+")
_AUX_ORDER = re.compile(r"aux_\w+?_(\d+)")
FIRST_DATA_LINE = 2
_ARBIN_CSV_COLUMNS = frozenset({"data_point", "test_time", "current", "voltage"})  # what makes a file arbin-csv


@functools.lru_cache(maxsize=4096)  # a plant's files share a few headers; sniffing and planning split every name
def column_key(name: str) -> tuple[str, str | None]:
    """Arbin's name normalisation: ``'Test Time (s)'`` → ``('test_time', 's')``.

    The name in lower case with runs of spaces and underscores as one ``_``; the unit in parentheses
    (:func:`releaf.io.units.split_unit`) in lower case, None when there is none.
    """
    base, unit = units.split_unit(name, styles=("()",))
    return _SEPARATORS.sub("_", base.lower()), (unit.lower() or None) if unit is not None else None


def aux_order(base: str) -> tuple[str, int]:
    """Sort key of normalised column names that puts ``aux_voltage_10`` after ``aux_voltage_9``."""
    m = _AUX_ORDER.fullmatch(base)
    return (base.rsplit("_", 1)[0], int(m.group(1))) if m else (base, 0)


def column_scale(where, name: str, base: str, unit: str | None, units_found: dict,
                 conversions: list) -> tuple[float, float]:
    """``(factor, offset)`` of one Arbin column to releaf's unit (:mod:`releaf.io.units`).

    The unit in the name decides; a name without one is in Arbin's default, the canonical unit of the column's
    dimension (:data:`COLUMN_DIMENSIONS`; ``aux_voltage_k`` V, ``aux_temperature_k`` degC). The unit found goes
    to ``units_found`` (as written, lower case) and a scaling to ``conversions``.

    Raises
    ------
    InputFileError
        for a unit the table does not know for that column, naming ``where`` (file, or file and sheet), line 1
        and the column.
    """
    dimension = COLUMN_DIMENSIONS.get(base)
    if dimension is None and (aux := AUX_COLUMN.fullmatch(base)):
        dimension = aux.group(1)  # "voltage" or "temperature"
    if dimension is None:
        return 1.0, 0.0  # text columns (DateTime): no unit
    return units.resolve(where, name, unit, dimension, units_found=units_found, conversions=conversions,
                         vendor="Arbin")


def sniff(head: textfile.Head) -> str | None:
    """``arbin-csv``, ``arbin-metadata`` or None, from the first bytes of a file."""
    bases = {column_key(n)[0] for n in head.first_line.split(",")}
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
    offset: float  # canonical = value * scale + offset
    optional: bool  # may be empty (vendor counters, temperatures)


@dataclass(frozen=True)
class _Plan:
    """What to take from a file with this header, and how: decided once, applied to every batch."""

    header: list[str]
    sources: dict[str, _Source]  # canonical or intermediate name → source
    units_found: dict[str, str]
    conversions: tuple[str, ...]
    unix_datetime: bool = False  # DateTime holds unix seconds (parsed as a number) rather than text
    datetime_format: str | None = None  # format of a text DateTime (releaf.io.datetimes), from the first data row


def _plan(path, header: list[str], first_row: list[str] | None = None, *, wall_clock: bool = True) -> _Plan:
    found: dict[str, tuple[int, str, str | None]] = {}
    for k, name in enumerate(header):
        base, unit = column_key(name)
        found.setdefault(base, (k, name, unit))
    sources, units_found, conversions = {}, {}, []

    def take(base: str, target: str, *, optional: bool = False, required: bool = True) -> None:
        if base not in found:
            if required:
                raise InputFileError(path, f"column {base!r} is missing from the header", line=1)
            return
        k, name, unit = found[base]
        scale, offset = column_scale(path, name, base, unit, units_found, conversions)
        sources[target] = _Source(name, k, scale, offset, optional)

    take("test_time", "test_time_s")
    take("voltage", "voltage_V")
    take("current", "current_A")
    take("step_index", "step_index", optional=True, required=False)
    take("cycle_index", "cycle_index", optional=True, required=False)
    take("step_time", "step_time_s", optional=True, required=False)
    for part in ("charge_capacity", "discharge_capacity", "charge_energy", "discharge_energy"):
        take(part, part, optional=True, required=False)
    if wall_clock:
        take("datetime" if "datetime" in found else "date_time", "datetime", optional=True, required=False)
    if "datetime" in sources:
        conversions.append(f"'{sources['datetime'].name}': unix seconds, or wall-clock text without a time zone "
                           "taken as UTC")
    take("temperature", "temperature_C", optional=True, required=False)
    for base in sorted(found, key=aux_order):
        m = AUX_COLUMN.fullmatch(base)
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
            fmt = datetimes.format_of(text)
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
        return units.apply(c, src.scale, src.offset)

    out = [col("test_time_s").alias("test_time_s"), col("voltage_V").alias("voltage_V"),
           col("current_A").alias("current_A")]
    for target in ("step_index", "cycle_index"):
        if target in s:
            out.append(col(target).cast(pl.Int64).alias(target))
    if "step_time_s" in s:
        out.append(col("step_time_s").alias("step_time_s"))
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
    """Arbin's DateTime as ``datetime`` [UTC]: unix seconds (TRI exports) or local wall-clock text (MITS Pro) in
    the first row's format (:func:`releaf.io.datetimes.to_utc`; MITS Pro's layout is decoded by numpy), both kept
    as UTC; a text that format does not read becomes null (the column is informative only)."""
    if plan.unix_datetime:
        return (values.cast(pl.Float64) * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC")).rename("datetime")
    if plan.datetime_format is None:
        return pl.Series("datetime", [None] * values.len(), dtype=pl.Datetime("us", "UTC"))
    return datetimes.to_utc(values, plan.datetime_format, partial=True)


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
    ``cycle_index``, ``step_time_s`` [s, ``Step_Time``], ``datetime`` [UTC, from a unix ``DateTime`` column],
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


_HELD_ROWS = 3_000_000
"""Most rows :func:`iter_arbin_csv` parses ahead while the file is still being hashed (a few hundred MB)."""


def iter_arbin_csv(path, *, batch_rows: int = 1_000_000) -> Iterator[TimeSeries]:
    """Read a large Arbin CSV in bounded memory: validated canonical batches of at most ``batch_rows`` rows.

    Each batch is validated with the file's line numbers; time must keep increasing across batches too.
    The sha256 of the file is computed once, streaming, on another thread while polars parses; every batch carries
    the same metadata, hash included, so the batches parsed before the hash is done (at most ``_HELD_ROWS`` rows)
    are held and yielded after it. As in :func:`read_arbin_csv`, only the columns releaf uses are
    parsed, and the file's comma count (taken with the hash) checks the field counts: a line with too many or
    too few fields is named after the last batch.

    Parameters
    ----------
    path : path of the CSV export
    batch_rows : rows per batch (memory is about ``batch_rows`` x columns x 8 bytes, times a small factor)
    """
    path = Path(path)
    plan = _plan(path, *_read_header(path))
    schema = _schema(plan)
    used = [f"c{k}" for k in sorted({src.index for src in plan.sources.values()})]
    lazy = pl.scan_csv(path, has_header=False, skip_rows=1, new_columns=list(schema), schema=schema,
                       quote_char=None, truncate_ragged_lines=False, encoding="utf8-lossy").select(used)
    provisional = _meta(path, plan, sha256="(being hashed)")  # errors name the path; the hash comes after
    first_line, last_time = FIRST_DATA_LINE, None

    def canonical(raw: pl.DataFrame) -> TimeSeries:
        nonlocal first_line, last_time
        df = _canonical(raw, plan)
        if last_time is not None and df.height and df["test_time_s"][0] < last_time:
            raise InputFileError(path, f"time goes backwards ({last_time} s then {df['test_time_s'][0]} s)",
                                   line=first_line, column="test_time_s")
        offset = first_line
        ts = validate(TimeSeries(df, provisional), line_of_row=lambda i, o=offset: o + i)
        if df.height:
            last_time = df["test_time_s"][-1]
        first_line += raw.height
        return ts

    try:
        with textfile.hashing(path, count=b",") as digest:  # hashed (and commas counted) on another thread
            # every batch carries the file's sha256, so none can be yielded before the hash is done; meanwhile the
            # parse goes on (up to _HELD_ROWS rows held) instead of waiting: the hash and the parse overlap
            batches = iter(lazy.collect_batches(chunk_size=batch_rows))
            held: list[TimeSeries] = []
            for raw in batches:
                held.append(canonical(raw))
                if digest.ready() or len(held) * batch_rows >= _HELD_ROWS:
                    break
        meta = dataclasses.replace(provisional, sha256=digest.hexdigest())
        for ts in itertools.chain(held, (canonical(raw) for raw in batches)):
            yield TimeSeries(ts.data, meta)
    except pl.exceptions.PolarsError as err:
        raise InputFileError(path, f"could not be parsed after line {first_line - 1}: "
                                     f"{str(err).splitlines()[0]}") from None
    if not _fields_consistent(plan, first_line - FIRST_DATA_LINE, digest.separators):
        _name_bad_line(path, len(plan.header))


def _name_bad_line(path: Path, fields: int, block: int = 1 << 24) -> None:
    """Raise naming the first data line of a large file without ``fields`` fields, reading it in blocks of whole
    lines (reached only when the comma count says there is one)."""
    line_no, rest = 1, b""  # line_no: the file line of the block's first line
    with open(path, "rb") as f:
        while True:
            chunk = f.read(block)
            data = rest + chunk
            cut = data.rfind(b"\n") + 1 if chunk else len(data)
            data, rest = data[:cut], data[cut:]
            lines = textfile.split_lines(data)
            if line_no == 1:
                textfile.check_field_counts(path, lines[1:], FIRST_DATA_LINE, fields)
            else:
                textfile.check_field_counts(path, lines, line_no, fields)
            line_no += len(lines)
            if not chunk:
                break
    raise InputFileError(path, f"the file's comma count does not match {fields} fields on every line")


def _sibling_metadata(path: Path) -> dict[str, str]:
    """The Arbin test record ``<stem>_Metadata.csv`` next to the data file, if there is one."""
    stem = os.path.join(os.path.dirname(path), path.stem)  # os.path: pathlib's with_name is slow for a lookup
    for candidate in (stem + "_Metadata.csv", stem + "_metadata.csv"):
        if os.path.isfile(candidate):
            try:
                table = pl.read_csv(io.BytesIO(Path(candidate).read_bytes()), infer_schema=False, n_rows=1)
            except pl.exceptions.PolarsError:
                return {}
            return {column_key(k)[0]: v for k, v in table.row(0, named=True).items() if k and v is not None}
    return {}


FORMATS = {"arbin-csv": read_arbin_csv}
STREAMERS = {"arbin-csv": iter_arbin_csv}
# readers that take ``wall_clock=False`` (see :func:`releaf.io.read`)
WALL_CLOCK_OPTIONAL = frozenset({"arbin-csv"})
