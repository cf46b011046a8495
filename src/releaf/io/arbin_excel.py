"""Arbin Excel exports (MITS Pro "Export to Excel", ``.xlsx``).

A workbook with an ``Info`` / ``Global_Info`` sheet (test record), one or more channel sheets ``Channel_<n>_<k>``
(or ``Channel_<n>-<m>``; a long test continues on ``_2``, ``_3``… because a sheet holds at most 1 048 576 rows) and
``Statistics_…`` sheets (per-cycle summaries, not read). The channel sheets carry the columns of the CSV export
(``Data_Point, Test_Time(s), Date_Time, Step_Index, Cycle_Index, Current(A), Voltage(V), Charge_Capacity(Ah), …,
Aux_Voltage_k(V), Aux_Temperature_k(C)``), matched with the Arbin CSV reader's name normalisation and units
(:func:`releaf.io.arbin.column_key`, :func:`releaf.io.arbin.column_scale`). Read with polars' Excel reader
(fastexcel/calamine engine: Rust, no openpyxl).

Arbin's sign is releaf's (+ = charge). ``Date_Time`` is local wall-clock text without a zone: the first value is
kept in the metadata, not as ``datetime``.

References
----------
Arbin Instruments, MITS Pro user manual, "Data export (Excel)". fastexcel, https://github.com/ToucanToco/fastexcel.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import polars as pl

from releaf.errors import InputFileError
from releaf.io import textfile, units
from releaf.io.arbin import AUX_COLUMN, aux_order, column_key, column_scale
from releaf.io.optional import require
from releaf.schema import SourceMeta, TimeSeries, rest_threshold_A, step_type_from_current, validate

CHANNEL_SHEET = re.compile(r"^Channel_(\d+)(?:[_-](\d+))*$")
INFO_SHEETS = ("Info", "Global_Info")
_SHEET_NAME = re.compile(rb'<sheet [^>]*name="([^"]+)"')


def _sheet_names_in_zip(zf: zipfile.ZipFile) -> list[str]:
    return [m.decode("utf-8") for m in _SHEET_NAME.findall(zf.read("xl/workbook.xml"))]


def sniff(head: textfile.Head) -> str | None:
    """``arbin-xlsx`` for a workbook with an Arbin channel sheet and Arbin column names, else None."""
    if not head.raw.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(head.path) as zf:
            if "xl/workbook.xml" not in zf.namelist():
                return None
            if not any(CHANNEL_SHEET.match(n) for n in _sheet_names_in_zip(zf)):
                return None
            strings = b""
            if "xl/sharedStrings.xml" in zf.namelist():
                with zf.open("xl/sharedStrings.xml") as f:
                    strings = f.read(1 << 16)
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    return "arbin-xlsx" if b"Data_Point" in strings and b"Test_Time" in strings else None


def read_arbin_xlsx(path) -> TimeSeries:
    """Read an Arbin Excel export into the canonical table.

    Parameters
    ----------
    path : path of the ``.xlsx`` workbook

    Returns
    -------
    TimeSeries with ``test_time_s`` [s], ``voltage_V`` [V], ``current_A`` [A, + = charge], ``step_index``,
    ``cycle_index``, ``step_time_s`` [s], ``step_type`` (from the current), ``vendor_capacity_Ah`` [Ah, charge −
    discharge],
    ``vendor_energy_Wh`` [Wh], ``temperature_C`` [degC], ``group_voltage_V_k`` [V]. Channel sheets of one
    channel are concatenated in their order.

    Raises
    ------
    InputFileError
        not a workbook, no channel sheet, missing columns, text where a number was expected (the error names
        the sheet row as Excel numbers it and the column header).
    ConfigError
        fastexcel is not installed (``pip install 'releaf[arbin]'``).
    """
    path = Path(path)
    fastexcel = require("fastexcel", path=path, format="arbin-xlsx")
    textfile.read_bytes(path)
    try:
        names = fastexcel.read_excel(str(path)).sheet_names
    except Exception as err:  # fastexcel raises its own CalamineError family on a damaged workbook
        raise InputFileError(path, f"not a readable Excel workbook ({type(err).__name__}: {err})") from None
    channels = [n for n in names if CHANNEL_SHEET.match(n)]
    if not channels:
        raise InputFileError(path, f"no Arbin channel sheet 'Channel_<n>_<k>' (sheets: {', '.join(names)})")
    first_channel = CHANNEL_SHEET.match(channels[0]).group(1)
    channels = [n for n in channels if CHANNEL_SHEET.match(n).group(1) == first_channel]
    try:
        sheets = pl.read_excel(path, sheet_name=channels, engine="calamine", infer_schema_length=None)
    except Exception as err:
        raise InputFileError(path, f"the channel sheets could not be read ({type(err).__name__}: {err})") from None
    frames, conversions, units_found = [], [], {}
    for name in channels:
        frames.append(_channel_frame(path, name, sheets[name], units_found, conversions))
    header_cols = {frozenset(f.columns) for f in frames}
    if len(header_cols) > 1:
        raise InputFileError(path, f"the channel sheets {', '.join(channels)} have different columns")
    df = pl.concat(frames)
    df = df.with_columns(step_type_from_current(pl.col("current_A"), rest_threshold_A(df["current_A"]))
                         .alias("step_type"))
    if "temperature_C" not in df.columns and "temperature_C_1" in df.columns:
        df = df.with_columns(pl.col("temperature_C_1").alias("temperature_C"))
    header = _info(path, names)
    first_date = sheets[channels[0]].get_column("Date_Time", default=None)
    if first_date is not None and first_date.len():
        header["start_datetime_local"] = str(first_date[0])
    if len(channels) > 1:
        conversions.append(f"sheets {', '.join(channels)} concatenated")
    meta = SourceMeta(path=str(path), sha256=textfile.sha256_of(path), format="arbin-xlsx", vendor="Arbin",
                      channel=header.get("iv_ch_id", first_channel), units_found=units_found,
                      conversions=tuple(dict.fromkeys(conversions)), header=header)
    offsets = [0]
    for f in frames:
        offsets.append(offsets[-1] + f.height)

    def line(i: int) -> int:  # Excel row number within its sheet (row 1 = the header)
        k = max(j for j in range(len(frames)) if offsets[j] <= i)
        return i - offsets[k] + 2

    return validate(TimeSeries(df, meta), line_of_row=line)




def _channel_frame(path: Path, sheet: str, raw: pl.DataFrame, units_found: dict, conversions: list) -> pl.DataFrame:
    found: dict[str, tuple[str, str | None]] = {}
    for name in raw.columns:
        base, unit = column_key(name)
        found.setdefault(base, (name, unit))
    where = f"{path}, sheet {sheet}"

    def num(base: str, *, allow_empty: bool = False) -> pl.Series:
        if base not in found:
            raise InputFileError(where, f"column {base!r} is missing from the header", line=1)
        name, unit = found[base]
        scale, offset = column_scale(where, name, base, unit, units_found, conversions)
        col = raw[name]
        if col.dtype.is_numeric() and not col.is_null().any():
            return units.apply(col.cast(pl.Float64), scale, offset)
        # empty or text cells (calamine reads text in a number column as null): look at them as text; the
        # float -> text rendering of calamine is not exact, so numbers are kept from the typed read
        text = _cells_as_text(path, sheet, name)
        if col.dtype.is_numeric():
            text = pl.when(col.is_null()).then(text).otherwise(col.cast(pl.String)).alias("v")
            text = pl.select(text).to_series()
        text = text.to_frame("v")
        values = textfile.to_float(where, text, "v", source_name=name, first_line_no=2, allow_empty=allow_empty)
        return units.apply(values, scale, offset)

    if raw.height == 0:
        raise InputFileError(where, "header but no data rows", line=1)
    for base in ("data_point", "test_time", "current", "voltage"):
        if base not in found:
            raise InputFileError(where, f"column {base!r} is missing from the header", line=1)
    columns = {"test_time_s": num("test_time"), "voltage_V": num("voltage"), "current_A": num("current")}
    for base in ("step_index", "cycle_index"):
        if base in found:
            columns[base] = num(base, allow_empty=True).cast(pl.Int64)
    if "step_time" in found:
        columns["step_time_s"] = num("step_time", allow_empty=True)
    if "charge_capacity" in found and "discharge_capacity" in found:
        columns["vendor_capacity_Ah"] = (num("charge_capacity", allow_empty=True)
                                         - num("discharge_capacity", allow_empty=True))
    if "charge_energy" in found and "discharge_energy" in found:
        columns["vendor_energy_Wh"] = num("charge_energy", allow_empty=True) - num("discharge_energy",
                                                                                   allow_empty=True)
    if "temperature" in found:
        columns["temperature_C"] = num("temperature", allow_empty=True)
    for base in sorted(found, key=aux_order):
        m = AUX_COLUMN.fullmatch(base)
        if m:
            target = "group_voltage_V_" if m.group(1) == "voltage" else "temperature_C_"
            columns[target + m.group(2)] = num(base, allow_empty=m.group(1) == "temperature")
    return pl.DataFrame(columns)


def _cells_as_text(path: Path, sheet: str, name: str) -> pl.Series:
    return pl.read_excel(path, sheet_name=sheet, engine="calamine", columns=[name],
                         read_options={"dtypes": "string"})[name]


def _info(path: Path, names: list[str]) -> dict[str, str]:
    """The test record of the ``Info`` / ``Global_Info`` sheet: a names row and a values row."""
    sheet = next((n for n in names if n in INFO_SHEETS), None)
    if sheet is None:
        return {}
    try:
        info = pl.read_excel(path, sheet_name=sheet, engine="calamine", has_header=False,
                             infer_schema_length=0)
    except Exception:
        return {}
    if info.height < 2:
        return {}
    keys, values = info.row(0), info.row(1)
    return {column_key(str(k))[0]: str(v) for k, v in zip(keys, values, strict=True) if k and v not in (None, "")}


FORMATS = {"arbin-xlsx": read_arbin_xlsx}
