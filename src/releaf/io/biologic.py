"""BioLogic EC-Lab / BT-Lab files: binary ``.mpr``, text ``.mpt`` and the BT-Lab ``;``-separated CSV export.

``biologic-mpr``: ``BIO-LOGIC MODULAR FILE``, read with galvani (field library; it knows the binary column ids,
including the rare column 27 ``Ewe-Ece/V``). ``biologic-mpt``: EC-Lab/BT-Lab text export (``EC-Lab ASCII FILE``,
``Nb header lines : N``, column names on line N, tab-separated, decimal point or comma), parsed with polars: the
header layout is simple and polars gives line-exact errors where galvani's row-by-row reader does not.
``biologic-csv``: BT-Lab "Text export" as CSV (``;``-separated, a leading unnamed index column, ``time/s`` either
seconds or an absolute date ``MM/DD/YYYY hh:mm:ss.fff``; the ``.mpl`` log beside it says which date order:
``Time format : Absolute MMDDYYYY``), parsed with polars.

Columns used: voltage ``Ecell/V`` (cell voltage of a battery channel), else ``Ewe-Ece/V`` (working minus counter
electrode of a 3-electrode cell), else ``Ewe/V`` / ``<Ewe>/V`` (working electrode; the cell voltage of a 2-electrode
cell); current ``I/mA`` / ``<I>/mA`` × 0.001, else — when the file records no current — the charge step
``dq/mA.h`` over the time step (``I = dq · 3.6 / Δt`` [A]); ``Ns`` → ``step_index`` and ``step_time_s`` (time since
the sequence's first sample: BioLogic writes no step time, but logs a point when a sequence starts); ``cycle number`` →
``cycle_index``; ``(Q-Qo)/mA.h`` × 0.001 → ``vendor_capacity_Ah``; ``Temperature/°C`` or ``T/°C`` →
``temperature_C``.

Sign: BioLogic's ``I`` is positive for an anodic (oxidation) current at the working electrode, i.e. current flowing
into the working-electrode lead. For a full cell on a battery channel the working lead is the positive terminal,
so positive ``I`` charges the cell; for a half cell ``Ewe`` is the voltage of the working electrode against the
counter/reference, and positive ``I`` raises it (delithiates an anode, charges the cell it forms). Both match
releaf's convention (+ = charge): no sign change.

Impedance (EIS) points — rows with ``freq/Hz`` > 0 — are not time-series samples: they are dropped and the
metadata says how many; a record made only of impedance points is refused with a clear error.

References
----------
BioLogic, EC-Lab Software User's Manual (v11), "Data file format" and "Text export"; BT-Lab User's Manual.
galvani, https://github.com/echemdata/galvani (GPL-3.0).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import polars as pl

from releaf.errors import InputFileError
from releaf.io import datetimes, textfile
from releaf.io.optional import require
from releaf.io.units import conversion, note, split_unit
from releaf.schema import SourceMeta, TimeSeries, rest_threshold_A, step_type_from_current, validate

MPR_MAGIC = b"BIO-LOGIC MODULAR FILE"
MPT_MAGICS = ("EC-Lab ASCII FILE", "BT-Lab ASCII FILE")
VOLTAGE_NAMES = ("Ecell/V", "Ewe-Ece/V", "Ewe/V", "<Ewe>/V", "<Ewe/V>")
CURRENT_NAMES = ("I/mA", "<I>/mA")
TEMPERATURE_NAMES = ("Temperature/°C", "T/°C")
# the text columns the canonical table is built from; BT-Lab exports carry ~70, most of them derived
USED_NAMES = frozenset((*VOLTAGE_NAMES, *CURRENT_NAMES, *TEMPERATURE_NAMES, "dq/mA.h", "Ns", "cycle number",
                        "(Q-Qo)/mA.h", "freq/Hz", "time/s"))
_NB_HEADER = re.compile(r"Nb header lines\s*:\s*(\d+)")


def sniff(head: textfile.Head) -> str | None:
    """``biologic-mpr``, ``biologic-mpt``, ``biologic-csv`` or None, from the first bytes of a file."""
    if head.raw.startswith(MPR_MAGIC):
        return "biologic-mpr"
    if head.is_binary:
        return None
    if head.first_line.strip() in MPT_MAGICS:
        return "biologic-mpt"
    for sep, fmt in (("\t", "biologic-mpt"), (";", "biologic-csv")):
        names = {n.strip() for n in head.first_line.split(sep)}
        if "time/s" in names and names & set(VOLTAGE_NAMES) and names & {*CURRENT_NAMES, "dq/mA.h"}:
            return fmt
    return None


def read_biologic_mpr(path) -> TimeSeries:
    """Read a BioLogic ``.mpr`` binary file (via galvani) into the canonical table.

    Parameters
    ----------
    path : path of the ``.mpr`` file

    Returns
    -------
    TimeSeries with ``test_time_s`` [s, the instrument's ``time/s``], ``voltage_V`` [V], ``current_A`` [A, + =
    charge], ``step_index`` (``Ns``), ``step_time_s`` [s, since the sequence's first sample], ``cycle_index``,
    ``step_type`` (from the current), ``vendor_capacity_Ah`` [Ah] and ``temperature_C`` [degC] where recorded. The
    start time (local, no zone) is in the metadata.

    Raises
    ------
    InputFileError
        for a file galvani cannot read, or a record of impedance points only.
    ConfigError
        galvani is not installed: it is GPL-3.0, so releaf (MIT) installs it only with ``releaf[biologic]``.
    """
    path = Path(path)
    BioLogic = require("galvani", path=path, format="biologic-mpr").BioLogic
    textfile.read_bytes(path)
    try:
        mpr = BioLogic.MPRfile(str(path))
    except Exception as err:  # galvani raises ValueError/NotImplementedError/struct.error on bad input
        raise InputFileError(path, f"galvani could not read it as a BioLogic .mpr file: "
                                     f"{type(err).__name__}: {err}") from None
    data = mpr.data
    columns = {name: pl.Series(name, np.asarray(data[name], dtype=np.float64)) for name in data.dtype.names}
    header = {}
    if getattr(mpr, "timestamp", None) is not None:
        header["start_datetime_local"] = mpr.timestamp.isoformat(sep=" ")
    return _canonical(path, columns, "biologic-mpr", header, line_of_row=lambda i: i + 1)


def read_biologic_mpt(path) -> TimeSeries:
    """Read a BioLogic EC-Lab/BT-Lab text export (``.mpt``) into the canonical table.

    Parameters
    ----------
    path : path of the text export

    Returns
    -------
    As :func:`read_biologic_mpr`.
    """
    path = Path(path)
    data = textfile.read_bytes(path)
    lines = textfile.split_lines(data)
    first = lines[0].decode("latin-1").strip()
    header_line = 1
    if first in MPT_MAGICS:
        m = _NB_HEADER.search(lines[1].decode("latin-1")) if len(lines) > 1 else None
        if m is None:
            raise InputFileError(path, "line 2 should read 'Nb header lines : N'", line=2)
        header_line = int(m.group(1))
        if not 3 <= header_line <= len(lines):
            raise InputFileError(path, f"'Nb header lines : {header_line}' but the file has {len(lines)} lines "
                                         f"(truncated?)", line=2)
    names = _decode(lines[header_line - 1]).split("\t")
    if names and names[-1].strip() == "":
        names = names[:-1]
    if "time/s" not in names:
        raise InputFileError(path, f"no 'time/s' column in the column names on line {header_line}",
                               line=header_line)
    body = lines[header_line:]
    if not body:
        raise InputFileError(path, "column names but no data rows", line=header_line)
    body = [ln[:-1] if ln.endswith(b"\t") else ln for ln in body]
    first_line_no = header_line + 1
    _check_fields(path, body, first_line_no, len(names), b"\t")
    raw = _read_text_table(path, body, len(names), "\t")
    header = {"technique": lines[3].decode("latin-1").strip()} if header_line > 4 else {}
    for ln in lines[:header_line - 1]:
        key, sep, value = ln.decode("latin-1").partition(" : ")
        if sep and key.strip() in ("Acquisition started on", "Run on channel", "Device"):
            header[key.strip()] = value.strip()
    columns = _numeric_columns(path, raw, names, first_line_no)
    return _canonical(path, columns, "biologic-mpt", header, line_of_row=lambda i: first_line_no + i)


def read_biologic_csv(path) -> TimeSeries:
    """Read a BioLogic BT-Lab CSV export (``;``-separated) into the canonical table.

    Parameters
    ----------
    path : path of the CSV export; a settings/log file ``<stem>.mpl`` beside it is read for the date format

    Returns
    -------
    As :func:`read_biologic_mpr`; an absolute ``time/s`` (date string) becomes seconds since the first sample.
    """
    path = Path(path)
    data = textfile.read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = textfile.split_lines(data)
    names = [n.strip() for n in _decode(lines[0]).split(";")]
    if sniff(textfile.Head(path, lines[0], "\n".join([";".join(names)]))) != "biologic-csv":
        raise InputFileError(path, "not a BioLogic BT-Lab CSV: the ';'-separated header needs time/s, a voltage "
                                     "(Ecell/V or Ewe/V) and I/mA", line=1)
    body = lines[1:]
    if not body:
        raise InputFileError(path, "header but no data rows", line=1)
    _check_fields(path, body, 2, len(names), b";")
    raw = _read_text_table(path, body, len(names), ";")
    conversions, header = [], _mpl_header(path)
    time_col = f"c{names.index('time/s')}"
    text_time = raw[time_col].str.strip_chars()
    numeric = {n: c for n, c in zip(names, raw.columns, strict=True) if n and n != "time/s"}
    columns = _numeric_columns(path, raw.select(numeric.values()), list(numeric), 2)
    if text_time.str.contains("/").any():
        order = header.get("Time format", "Absolute MMDDYYYY")
        fmt = "%d/%m/%Y %H:%M:%S%.f" if "DDMMYYYY" in order else "%m/%d/%Y %H:%M:%S%.f"
        stamps = datetimes.to_utc(text_time, fmt, partial=True)  # local wall clock: only its differences are used
        bad = stamps.is_null()
        if bad.any():
            i = int(bad.arg_true()[0])
            raise InputFileError(path, f"text {text_time[i]!r} where a date {fmt} was expected", line=2 + i,
                                   column="time/s")
        columns["time/s"] = (stamps - stamps[0]).dt.total_microseconds().cast(pl.Float64) * 1e-6
        source = "the .mpl log" if "Time format" in header else "BT-Lab's default, no .mpl beside the file"
        conversions.append(f"'time/s' absolute local date ({fmt}, order from {source}) -> seconds since the "
                           f"first sample")
        header["start_datetime_local"] = str(stamps[0].replace(tzinfo=None))
    else:
        columns["time/s"] = textfile.to_float(path, raw, time_col, source_name="time/s", first_line_no=2)
    return _canonical(path, columns, "biologic-csv", header, line_of_row=lambda i: 2 + i, conversions=conversions)


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("cp1252", errors="replace")


def _check_fields(path, body: list[bytes], first_line_no: int, expected: int, sep: bytes) -> None:
    counts = np.fromiter((ln.count(sep) + 1 for ln in body), dtype=np.int64, count=len(body))
    bad = np.flatnonzero(counts != expected)
    if bad.size:
        i = int(bad[0])
        hint = " (file truncated?)" if i == len(body) - 1 and counts[i] < expected else ""
        if counts[i] == 1 and sep != b",":
            hint = f" (is the file separated by {sep.decode()!r}?)"
        raise InputFileError(path, f"{counts[i]} fields where {expected} were expected{hint}",
                               line=first_line_no + i)


def _read_text_table(path, body: list[bytes], width: int, sep: str) -> pl.DataFrame:
    try:
        return pl.read_csv(io.BytesIO(b"\n".join(body)), separator=sep, has_header=False, infer_schema=False,
                           new_columns=[f"c{i}" for i in range(width)], quote_char=None, encoding="utf8-lossy")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as e:
        raise InputFileError(path, f"could not be parsed: {str(e).splitlines()[0]}") from None


def _numeric_columns(path, raw: pl.DataFrame, names: list[str], first_line_no: int) -> dict[str, pl.Series]:
    """Float columns by BioLogic name (only those releaf uses); a decimal comma is read as a point; empty fields
    become null."""
    out = {}
    for name, c in zip(names, raw.columns, strict=True):
        if not name or name in out or name not in USED_NAMES:
            continue
        col = raw[c].str.strip_chars().str.replace(",", ".", literal=True).to_frame("v")
        out[name] = textfile.to_float(path, col, "v", source_name=name, first_line_no=first_line_no, allow_empty=True)
    return out


def _mpl_header(path: Path) -> dict[str, str]:
    """``key : value`` lines of the BT-Lab/EC-Lab log ``<stem>.mpl`` beside an export, if there is one."""
    mpl = path.with_suffix(".mpl")
    if not mpl.is_file():
        return {}
    out = {}
    for ln in mpl.read_bytes().decode("cp1252", errors="replace").splitlines()[:80]:
        key, sep, value = ln.partition(" : ")
        if sep and key.strip() in ("Run on channel", "Acquisition started on", "Device", "Time format"):
            out[key.strip()] = value.strip()
    return out




def _canonical(path: Path, columns: dict[str, pl.Series], fmt: str, header: dict, *, line_of_row,
               conversions: list | None = None) -> TimeSeries:
    conversions = list(conversions or [])
    n = len(next(iter(columns.values()))) if columns else 0
    keep = pl.Series([True] * n)
    if "freq/Hz" in columns:
        eis = (columns["freq/Hz"].fill_null(0.0) > 0)
        if eis.all():
            raise InputFileError(path, f"an impedance (EIS) record only: all {n} rows have freq/Hz > 0, there is "
                                         "no time series of current and voltage to read")
        if eis.any():
            keep = ~eis
            conversions.append(f"{int(eis.sum())} impedance (EIS) rows with freq/Hz > 0 dropped")
    rows = keep.arg_true()
    cols = {k: v.gather(rows) for k, v in columns.items()}
    old_line = line_of_row

    def line(i: int) -> int:
        return old_line(int(rows[i]))

    if "time/s" not in cols:
        raise InputFileError(path, "no 'time/s' column")
    volt = next((v for v in VOLTAGE_NAMES if v in cols), None)
    if volt is None:
        raise InputFileError(path, f"no voltage column (one of {', '.join(VOLTAGE_NAMES)})")
    units = {"time/s": "s", volt: "V"}
    df = {"test_time_s": cols["time/s"], "voltage_V": cols[volt]}
    if volt != "Ecell/V":
        conversions.append(f"voltage_V from '{volt}'")
    cur = next((c for c in CURRENT_NAMES if c in cols), None)
    if cur is not None:
        unit = split_unit(cur, styles=("/",))[1]
        factor, _ = conversion(unit, "current")
        df["current_A"] = cols[cur] * factor
        units[cur] = unit
        conversions.append(f"{note(cur, factor, 0.0, 'current')} (BioLogic + = anodic at the working electrode = "
                           "charge)")
    elif "dq/mA.h" in cols:
        dt = cols["time/s"].diff()
        dq = cols["dq/mA.h"]
        derived = pl.select(pl.when(dt > 0).then(dq * 3.6 / dt).otherwise(0.0)).to_series()
        df["current_A"] = derived.fill_null(0.0)
        units["dq/mA.h"] = "mA.h"
        conversions.append("no current column: current_A = 'dq/mA.h' x 3.6 / time step (mean current over the "
                           "step; 0 at the first sample)")
    else:
        raise InputFileError(path, f"no current column (one of {', '.join(CURRENT_NAMES)}, or dq/mA.h)")
    if "Ns" in cols:
        df["step_index"] = cols["Ns"].cast(pl.Int64)
        df["step_time_s"] = _time_since_step_start(df["test_time_s"], df["step_index"])
        conversions.append("step_time_s = time since the first sample of each 'Ns' sequence (EC-Lab/BT-Lab log a "
                           "point when a sequence starts)")
    if "cycle number" in cols:
        df["cycle_index"] = cols["cycle number"].cast(pl.Int64)
    if "(Q-Qo)/mA.h" in cols:
        factor, _ = conversion("mA.h", "charge")
        df["vendor_capacity_Ah"] = cols["(Q-Qo)/mA.h"] * factor
        units["(Q-Qo)/mA.h"] = "mA.h"
        conversions.append(f"'(Q-Qo)/mA.h' x {factor:g} -> vendor_capacity_Ah")
    temp = next((t for t in TEMPERATURE_NAMES if t in cols and cols[t].is_not_null().any()), None)
    if temp is not None:
        df["temperature_C"] = cols[temp]
        units[temp] = "degC"
    threshold = rest_threshold_A(df["current_A"])
    table = pl.DataFrame(df).with_columns(step_type_from_current(pl.col("current_A"), threshold).alias("step_type"))
    meta = SourceMeta(path=str(path), sha256=textfile.sha256_of(path), format=fmt, vendor="BioLogic",
                      channel=header.get("Run on channel"), units_found=units, conversions=tuple(conversions),
                      header=header)
    return validate(TimeSeries(table, meta), line_of_row=line)


def _time_since_step_start(test_time_s: pl.Series, step: pl.Series) -> pl.Series:
    """Seconds since the first sample of each run of ``step``.

    BioLogic files have no step time, but EC-Lab and BT-Lab record a point when a sequence (``Ns``) starts: in the
    TRI BT-Lab CSV the charge counter ``(Q-Qo)`` has moved 1.4 uAh (2 ms at 2.5 A) at a charge's first sample,
    22.8 s after the rest's last. Booking that gap to the new sequence would add 16 mAh (+1.1 %) to the charge.
    """
    new = step.ne_missing(step.shift(1)).fill_null(True)
    run = new.cast(pl.Int64).cum_sum() - 1
    return (test_time_s - test_time_s.filter(new).gather(run)).alias("step_time_s")


FORMATS = {"biologic-mpr": read_biologic_mpr, "biologic-mpt": read_biologic_mpt, "biologic-csv": read_biologic_csv}
