"""Maccor text exports (the numbered ``.0NN`` files written by Maccor's MIMS / Backup export).

Layout: a preamble (in the TRI/BEEP files one line ``Today's Date … Date of Test: … Filename: … Procedure: …
Comment/Barcode: …``; other exports spread it over several lines with blank lines between), then a tab-separated
header starting ``Rec#  Cyc#  Step`` and one line per sample. One reader handles the header variants seen in the
field: ``Test (Sec)`` / ``Test (Min)`` / ``Test (Hr)`` as numbers, or ``TestTime`` as a duration
``0d 00:00:00.0000``; ``Amps`` / ``mAmps``, ``Volts`` / ``mVolts``, ``Amp-hr`` / ``mAmp-hr``, ``Watt-hr`` /
``mWatt-hr``; with or without the ``Loop1..4`` columns.

Conventions and what the reader does to them:

* ``Amps`` is written by Maccor as a magnitude with the direction in ``State`` (``C`` charge, ``D`` discharge,
  ``R`` rest, and ``O``, ``S``, ``E``, ``P``, ``FRA`` (EIS) …); some exports (the TRI files) already carry a
  sign. The reader sets ``current_A = -|Amps|`` on ``D`` rows, ``+|Amps|`` on ``C`` rows and keeps other rows
  as written, which is right for both.
* ``Amp-hr`` / ``Watt-hr`` are per-step magnitudes reset at each step; they become ``vendor_capacity_Ah`` /
  ``vendor_energy_Wh`` with the same sign rule (negative on discharge), for cross-checks only.
* ``Test (Sec)`` is kept as the cycler wrote it: time since the test started, also when the file starts
  mid-test (then the first sample is far from 0 s and the metadata says so). During an EIS (``FRA``) step
  Maccor holds the test time while the wall clock runs on; releaf keeps that as written.
* ``DPt Time`` is the cycler PC's wall clock without a time zone; it is taken as UTC and the metadata says so.
* The channel is the extension of the original file name in the preamble (Maccor numbers its exports by
  channel: ``….034`` is channel 34) — read from the file's content, not from the name it has now.

Hand-written on polars: no field library reads these exports (cellpy and BEEP read them with pandas and
per-layout configuration, but are heavy dependencies and neither gives line-exact errors). This module also
holds the small vectorised line/field toolkit that the Novonix and PEC readers share.

References
----------
Maccor Inc., MIMS Client / Maccor Export utility, text export of test data (``.0NN`` files).
TRI-AMDD/beep, ``beep/structure/maccor.py`` (layout of the TRI exports, ``State`` codes ``C``/``D``).
battery-data-toolkit (Argonne), MACCOR extractor: ``Amps`` negated where ``State == 'D'``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from releaf.errors import InputFileError
from releaf.io import datetimes, textfile, units
from releaf.schema import SourceMeta, TimeSeries, validate

HEADER_START = re.compile(r"^Rec#[\t,]\s*Cyc#[\t,]\s*Step[\t,]")
PREAMBLE_KEYS = ("Today's Date", "Date of Test:", "Filename:", "Procedure:", "Comment/Barcode:")
STATE_TO_STEP_TYPE = {"C": "charge", "D": "discharge", "R": "rest", "FRA": "eis"}
_PREFIXED = {  # name as in file (lower case) -> (role, its unit, dimension of releaf.io.units)
    "amps": ("current", "A", "current"), "mamps": ("current", "mA", "current"),
    "volts": ("voltage", "V", "voltage"), "mvolts": ("voltage", "mV", "voltage"),
    "amp-hr": ("capacity", "Ah", "charge"), "mamp-hr": ("capacity", "mAh", "charge"),
    "watt-hr": ("energy", "Wh", "energy"), "mwatt-hr": ("energy", "mWh", "energy"),
}
_DURATION = r"^\s*(?:(?P<d>\d+)d\s*)?(?P<h>\d+):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d*)?)\s*$"


# ---------------------------------------------------------------------------------------------------------------
# Vectorised toolkit shared by the text readers of this package (maccor, novonix, pec)
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Table:
    """The data lines of a file split into string fields ``c0..c{n-1}``, and the file line of every row."""

    fields: pl.DataFrame
    line_no: np.ndarray  # 1-based line in the file of each row

    def line_of_row(self, i: int) -> int:
        return int(self.line_no[i])


def read_table(path, body: bytes, *, first_line_no: int, width: int, separator: str,
               unquote: bool = False) -> Table:
    """Split ``body`` (the data lines of a file) into ``width`` string fields per line, vectorised.

    Blank lines are dropped (their line numbers are skipped, so errors still name the right line). A line with
    another number of fields raises :class:`InputFileError` naming it.

    Parameters
    ----------
    path : file the bytes came from (for error messages)
    body : the data lines, LF or CRLF endings
    first_line_no : 1-based line number in the file of the first line of ``body``
    width : number of fields every data line must have
    separator : field separator (one character)
    unquote : strip one pair of double quotes wrapping a whole line (Novonix writes each line as one quoted field)
    """
    try:
        lines = pl.read_csv(io.BytesIO(body), separator="\x1f", has_header=False, new_columns=["line"],
                            infer_schema=False, quote_char='"' if unquote else None, encoding="utf8-lossy",
                            truncate_ragged_lines=False)["line"]
    except pl.exceptions.NoDataError:
        lines = pl.Series("line", [], dtype=pl.String)
    except pl.exceptions.PolarsError as err:
        raise _explain(path, body, first_line_no, err) from None
    line_no = np.arange(first_line_no, first_line_no + len(lines))
    keep = (lines.is_not_null() & (lines.str.strip_chars() != "")).to_numpy()
    if not keep.all():
        lines, line_no = lines.filter(pl.Series(keep)), line_no[keep]
    if len(lines) == 0:
        raise InputFileError(path, "header but no data rows", line=first_line_no - 1)
    counts = lines.str.count_matches(separator, literal=True) + 1
    wrong = counts != width
    if wrong.any():
        i = int(wrong.arg_true()[0])
        found = int(counts[i])
        hint = " (file truncated?)" if i == len(lines) - 1 and found < width else ""
        sep_name = {"\t": "tab", ",": "comma", ";": "semicolon"}.get(separator, repr(separator))
        raise InputFileError(path, f"{found} {sep_name}-separated fields where {width} were expected{hint}",
                               line=int(line_no[i]))
    names = [f"c{k}" for k in range(width)]
    fields = lines.str.split_exact(separator, width - 1).struct.rename_fields(names).struct.unnest()
    return Table(fields, line_no)


def _explain(path, body: bytes, first_line_no: int, err: Exception) -> InputFileError:
    """Name the line polars could not split (only reached for a faulty file, so a Python scan is fine)."""
    lines = textfile.split_lines(body)
    for i, ln in enumerate(lines):
        if ln.count(b'"') % 2:
            hint = " (file truncated?)" if i == len(lines) - 1 else ""
            return InputFileError(path, f"unbalanced double quote{hint}", line=first_line_no + i)
    return InputFileError(path, f"could not be read as text lines: {str(err).splitlines()[0]}")


def numbers(path, table: Table, column: str, *, name: str, scale: float = 1.0,
            allow_empty: bool = False) -> pl.Series:
    """One string column as float (times ``scale``); a non-number names its line and the column as in the file."""
    return textfile.floats(path, table.fields[column], source_name=name, line_of_row=table.line_of_row, scale=scale,
                        allow_empty=allow_empty)


def durations_s(path, table: Table, column: str, *, name: str) -> pl.Series:
    """Durations written ``[Nd ]h:mm:ss[.fff]`` (hours may exceed 24) as seconds [s]."""
    raw = table.fields[column].str.strip_chars()
    parts = raw.str.extract_groups(_DURATION)
    d, h, m, s = (parts.struct.field(k).cast(pl.Float64) for k in ("d", "h", "m", "s"))
    seconds = d.fill_null(0.0) * 86400.0 + h * 3600.0 + m * 60.0 + s
    bad = seconds.is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        what = "an empty field" if raw[i] in (None, "") else f"text {raw[i]!r}"
        raise InputFileError(path, f"{what} where a duration like '0d 01:02:03.5' or '01:02:03.5' was expected",
                               line=table.line_of_row(i), column=name)
    return seconds.rename(column)


def column_key(name: str) -> tuple[str, str | None]:
    """``'Current (mA)'`` → ``('current', 'mA')``: the name in lower case with single spaces, and the unit in
    parentheses as written (:func:`releaf.io.units.split_unit`)."""
    base, unit = units.split_unit(name, styles=("()",))
    return re.sub(r"\s+", " ", base).lower(), unit


def signed_by_direction(values: pl.Expr, direction: pl.Expr) -> pl.Expr:
    """``-|x|`` where ``direction`` is ``'discharge'``, ``+|x|`` where ``'charge'``, else ``x`` as written."""
    return (pl.when(direction == "discharge").then(-values.abs())
            .when(direction == "charge").then(values.abs())
            .otherwise(values))


# ---------------------------------------------------------------------------------------------------------------
# Maccor
# ---------------------------------------------------------------------------------------------------------------

def _header_index(text: str) -> int | None:
    for i, line in enumerate(text.split("\n")[:40]):
        if HEADER_START.match(line.lstrip("\ufeff")):
            return i
    return None


def sniff(head: textfile.Head) -> str | None:
    """``maccor`` if a header line ``Rec#<tab>Cyc#<tab>Step…`` is among the first lines, else None."""
    return "maccor" if _header_index(head.text) is not None else None


def read_maccor(path) -> TimeSeries:
    """Read a Maccor text export into the canonical table.

    Parameters
    ----------
    path : path of the export (``.0NN``, ``.txt`` …)

    Returns
    -------
    TimeSeries with ``test_time_s`` [s, since the test started, as the cycler wrote it], ``voltage_V`` [V],
    ``current_A`` [A, + = charge; sign from ``State``], ``step_index``, ``cycle_index``, ``step_time_s`` [s, from
    ``Step (Sec)`` / ``StepTime``], ``step_type``
    (``charge``/``discharge``/``rest``/``eis``/``other`` from ``State``), ``vendor_state`` (``State`` as written),
    ``vendor_capacity_Ah`` [Ah] and ``vendor_energy_Wh`` [Wh] (per-step counters, negative on discharge) and
    ``datetime`` [UTC, from ``DPt Time``].

    Raises
    ------
    InputFileError
        no ``Rec#`` header, a missing column, a line with the wrong number of fields, a non-number.
    """
    path = Path(path)
    data = textfile.read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    head_lines = data.split(b"\n", 41)[:41]
    header_i = _header_index(b"\n".join(head_lines).decode("latin-1"))
    if header_i is None:
        raise InputFileError(path, "not a Maccor text export: no header line starting 'Rec#', 'Cyc#', 'Step' "
                                     "in the first 40 lines", line=1)
    header_line = head_lines[header_i].rstrip(b"\r").decode("latin-1")
    separator = "\t" if "\t" in header_line else ","
    header = [h.strip() for h in header_line.split(separator)]
    body_start = sum(len(ln) + 1 for ln in head_lines[: header_i + 1])
    table = read_table(path, data[body_start:], first_line_no=header_i + 2, width=len(header), separator=separator)
    preamble = _preamble(b"\n".join(head_lines[:header_i]).decode("latin-1"))
    df, units_found, conversions = _canonical(path, table, header, header_i + 1)
    df, table = _drop_repeated_records(path, df, table, conversions)
    first_time = df["test_time_s"][0]
    if first_time > 0:
        conversions.append(f"test time kept as the cycler wrote it: the file starts mid-test, at "
                           f"{first_time:.10g} s after the test started")
    meta = SourceMeta(path=str(path), sha256=textfile.sha256_of(path), format="maccor", vendor="Maccor",
                      channel=_channel(preamble.get("Filename")), units_found=units_found,
                      conversions=tuple(conversions), header=preamble)
    return validate(TimeSeries(df, meta), line_of_row=table.line_of_row)


def _drop_repeated_records(path, df: pl.DataFrame, table: Table, conversions: list[str]) -> tuple[pl.DataFrame, Table]:
    """Drop lines that repeat the previous record number with the same time, voltage, current and step.

    During an EIS (``FRA``) step Maccor writes one line per frequency with the same ``Rec#`` and the test time
    held; only the wall clock moves (the spectrum itself is in a separate file). Those lines add nothing to the
    time series, so the first is kept. Repeats in any other state are left for validation to refuse: there they
    are a damaged file, not a spectrum.
    """
    rec = numbers(path, table, "c0", name="Rec#")
    key = ["test_time_s", "voltage_V", "current_A", "step_index", "cycle_index"]
    same = pl.all_horizontal([pl.col(c) == pl.col(c).shift(1) for c in key]).fill_null(False)
    eis = df["vendor_state"].str.strip_chars().str.to_uppercase() == "FRA"
    repeated = df.select(same).to_series() & (rec == rec.shift(1)).fill_null(False) & eis
    if not repeated.any():
        return df, table
    n = int(repeated.sum())
    states = ", ".join(sorted(set(df.filter(repeated)["vendor_state"].to_list())))
    conversions.append(f"{n} lines repeating the previous Rec# with time, voltage, current and step unchanged "
                       f"(State {states}; EIS points) dropped")
    keep = ~repeated
    return df.filter(keep), Table(table.fields.filter(keep), table.line_no[keep.to_numpy()])


def _canonical(path, table: Table, header: list[str],
               header_line_no: int) -> tuple[pl.DataFrame, dict[str, str], list[str]]:
    by_name = {name: f"c{k}" for k, name in reversed(list(enumerate(header)))}  # first occurrence wins
    roles: dict[str, tuple[str, str, str]] = {}  # role -> (name as in file, unit, dimension)
    time_kind = step_time_kind = None
    for name in header:
        base, unit = column_key(name)
        key = base.replace(" ", "")
        if key in _PREFIXED and _PREFIXED[key][0] not in roles:
            role, *rest = _PREFIXED[key]
            roles[role] = (name, *rest)
        elif key in ("test", "testtime") and unit and (scale := units.conversion(unit, "time")) and time_kind is None:
            time_kind = (name, scale[0], unit)  # 'Test (Sec)', 'Test (Min)', 'TestTime(s)'
        elif key == "testtime" and unit is None and time_kind is None:
            time_kind = (name, None, "d hh:mm:ss")  # 'TestTime' written '0d 00:00:00.0000'
        elif (key in ("step", "steptime") and unit and (scale := units.conversion(unit, "time"))
              and step_time_kind is None):
            step_time_kind = (name, scale[0], unit)  # 'Step (Sec)', 'StepTime(s)'
        elif key == "steptime" and unit is None and step_time_kind is None:
            step_time_kind = (name, None, "d hh:mm:ss")  # 'StepTime' written '0d 00:00:10.0000'

    def need(name: str) -> str:
        if name not in by_name:
            raise InputFileError(path, f"column {name!r} is missing from the header", line=header_line_no)
        return by_name[name]

    for role, example in (("current", "Amps"), ("voltage", "Volts")):
        if role not in roles:
            raise InputFileError(path, f"no {role} column (expected e.g. {example!r}) in the header",
                                   line=header_line_no)
    if time_kind is None:
        raise InputFileError(path, "no test-time column (expected 'Test (Sec)' or 'TestTime') in the header",
                               line=header_line_no)

    units_found, conversions = {}, []

    def take(role: str, **kw) -> pl.Series:
        name, unit, dimension = roles[role]
        units_found[name] = unit
        scale, _ = units.conversion(unit, dimension)
        if (text := units.note(name, scale, 0.0, dimension)) is not None:
            conversions.append(text)
        return numbers(path, table, by_name[name], name=name, scale=scale, **kw)

    def seconds(kind: tuple[str, float | None, str]) -> pl.Series:
        name, scale, unit = kind
        units_found[name] = unit
        if scale is None:
            conversions.append(f"'{name}' 'Nd hh:mm:ss.ffff' -> s")
            return durations_s(path, table, by_name[name], name=name)
        if (text := units.note(name, scale, 0.0, "time")) is not None:
            conversions.append(text)
        return numbers(path, table, by_name[name], name=name, scale=scale)

    time_s = seconds(time_kind)
    state = table.fields[need("State")].str.strip_chars()
    direction = state.replace_strict(STATE_TO_STEP_TYPE, default="other").rename("step_type")
    columns = {
        "test_time_s": time_s,
        "voltage_V": take("voltage"),
        "current_A": take("current"),
        "step_index": numbers(path, table, need("Step"), name="Step").cast(pl.Int64),
        "cycle_index": numbers(path, table, need("Cyc#"), name="Cyc#").cast(pl.Int64),
        **({"step_time_s": seconds(step_time_kind)} if step_time_kind is not None else {}),
        "step_type": direction,
        "vendor_state": state,
    }
    for role, target in (("capacity", "vendor_capacity_Ah"), ("energy", "vendor_energy_Wh")):
        if role in roles:
            columns[target] = take(role, allow_empty=True)
    df = pl.DataFrame(columns).with_columns(
        signed_by_direction(pl.col(c), pl.col("step_type")).alias(c)
        for c in ("current_A", "vendor_capacity_Ah", "vendor_energy_Wh") if c in columns
    )
    current_name = roles["current"][0]
    raw_i = columns["current_A"]
    flipped = int(((state == "D") & (raw_i > 0)).sum() + ((state == "C") & (raw_i < 0)).sum())
    conversions.append(f"'{current_name}' sign from State: D -> -|I|, C -> +|I|, other states as written "
                       f"({flipped} rows changed sign)")
    if "capacity" in roles or "energy" in roles:
        conversions.append("'Amp-hr'/'Watt-hr' (per-step magnitudes) negative on D rows -> vendor counters")
    if "DPt Time" in by_name:
        when = table.fields[by_name["DPt Time"]]
        # Maccor misprints a timestamp at midnight as the date alone; those rows read as 00:00:00
        when = pl.when(when.str.contains(":")).then(when).otherwise(when + " 00:00:00")
        parsed = datetimes.to_utc(pl.select(when).to_series())
        if parsed is not None:
            df = df.with_columns(parsed)
            conversions.append("'DPt Time': cycler wall clock without a time zone, taken as UTC")
        else:
            conversions.append("'DPt Time' in an unknown date format: datetime left out")
    return df, units_found, conversions


def _preamble(text: str) -> dict[str, str]:
    """``Today's Date``, ``Date of Test``, ``Filename``, ``Procedure``, ``Comment/Barcode`` from the preamble."""
    pattern = "(" + "|".join(re.escape(k) for k in PREAMBLE_KEYS) + ")"
    parts = re.split(pattern, text.replace("''", "'"))
    out = {}
    for key, value in zip(parts[1::2], parts[2::2], strict=True):
        value = value.strip(" \t\r\n:")
        if value:
            out[key.rstrip(":")] = value
    return out


def _channel(filename: str | None) -> str | None:
    """Maccor names its exports ``<test>.0NN`` with NN the channel: ``….034`` → ``'34'``."""
    if not filename:
        return None
    m = re.search(r"\.(\d{3})\s*$", filename)
    return str(int(m.group(1))) if m else None


FORMATS = {"maccor": read_maccor}
