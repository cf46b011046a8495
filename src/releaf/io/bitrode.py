"""Bitrode cycler exports: the cell layout and the VisuaLCN module layout.

Cell layout (``Exclude,Time(s),Cycle,Loop,Loop,Loop,Step,StepTime(s),Current(A),Voltage(V),Power(W),
Capacity(Ah),Energy(Wh),Mode,Data``), with or without its header row and with or without a trailing comma.

VisuaLCN module layout: a block of ``key,value`` metadata lines, a blank line, a header starting
``Total Time,Cycle,Loop Counter #1``, per-group ``Cell Voltage A1..An`` and ``Temperature A1..Am`` columns,
and in some exports a trailer line ``Total Number of Data Lines in the Database: …``.

Bitrode writes current < 0 on discharge, which is releaf's convention already: no sign change. Its
``Capacity(Ah)`` / ``Amp-Hours`` counter is kept as ``vendor_capacity_Ah`` for cross-checks only.

References
----------
ORNL Nissan Leaf cell and module data, doi:10.5281/zenodo.2580327 (files of this layout).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from releaf.errors import InputFileError
from releaf.io import textfile
from releaf.schema import SourceMeta, TimeSeries, validate

CELL_HEADER_PREFIX = "Exclude,Time(s),Cycle,Loop"
CELL_NAMES = ["exclude", "time", "cycle", "loop1", "loop2", "loop3", "step", "step_time", "current", "voltage",
              "power", "capacity", "energy", "mode", "flag"]
CELL_SOURCE_NAMES = dict(zip(CELL_NAMES, ["Exclude", "Time(s)", "Cycle", "Loop", "Loop", "Loop", "Step",
                                          "StepTime(s)", "Current(A)", "Voltage(V)", "Power(W)", "Capacity(Ah)",
                                          "Energy(Wh)", "Mode", "Data"], strict=True))
_HEADERLESS_ROW = re.compile(r"^(No|Yes),-?[0-9.]+,-?\d+,\d+,\d+,\d+,\d+,")
MODULE_HEADER_PREFIX = "Total Time,Cycle,Loop Counter #1"
TRAILER_PREFIX = b"Total Number of Data Lines"
MODE_TO_STEP_TYPE = {"CHRG": "charge", "DCHG": "discharge", "REST": "rest"}


def sniff(head: textfile.Head) -> str | None:
    """``bitrode-cell``, ``bitrode-module`` or None, from the first bytes of a file."""
    first = head.first_line
    if first.startswith(CELL_HEADER_PREFIX) or _HEADERLESS_ROW.match(first):
        return "bitrode-cell"
    if first.startswith("Test Name,") and ("\n" + MODULE_HEADER_PREFIX) in head.text.replace("\r\n", "\n"):
        return "bitrode-module"
    return None


def read_bitrode(path) -> TimeSeries:
    """Read a Bitrode export of either layout into the canonical table.

    Parameters
    ----------
    path : path of the ``.csv`` export

    Returns
    -------
    TimeSeries with ``test_time_s`` [s], ``voltage_V`` [V], ``current_A`` [A, + = charge], ``step_index``,
    ``cycle_index``, ``step_time_s`` [s, ``StepTime(s)`` / ``Step time``], ``step_type``, ``vendor_capacity_Ah``
    [Ah], ``vendor_energy_Wh`` [Wh], ``vendor_flag``, and for module files ``group_voltage_V_k`` [V] and
    ``temperature_C_k`` [degC].

    Raises
    ------
    InputFileError
        on a layout it does not recognise, a line with the wrong number of fields, or a non-number.
    """
    path = Path(path)
    data = textfile.read_bytes(path)
    kind = sniff(textfile.head_of(path))
    if kind == "bitrode-cell":
        return _read_cell(path, data)
    if kind == "bitrode-module":
        return _read_module(path, data)
    raise InputFileError(path, "not a Bitrode export: expected a header 'Exclude,Time(s),Cycle,…', a headerless "
                                 "Bitrode cell row, or a VisuaLCN block starting 'Test Name,'", line=1)


def _read_cell(path: Path, data: bytes) -> TimeSeries:
    lines = textfile.split_lines(data)
    has_header = lines[0].lstrip(b"\xef\xbb\xbf").decode("latin-1").startswith(CELL_HEADER_PREFIX)
    first_line_no = 2 if has_header else 1
    if has_header:
        _check_cell_header(path, lines[0])
    body = lines[1:] if has_header else lines
    if not body:
        raise InputFileError(path, "header but no data rows", line=1)
    width = body[0].count(b",") + 1
    if width not in (15, 16):
        raise InputFileError(path, f"{width} fields where 15 (or 16 with a trailing comma) were expected",
                               line=first_line_no)
    textfile.check_field_counts(path, body, first_line_no, width)
    names = CELL_NAMES + (["_trailing"] if width == 16 else [])
    raw = textfile.frame_from_lines(path, body, names)

    def num(col, **kw):
        return textfile.to_float(path, raw, col, source_name=CELL_SOURCE_NAMES[col], first_line_no=first_line_no, **kw)

    df = pl.DataFrame({
        "test_time_s": num("time"),
        "voltage_V": num("voltage"),
        "current_A": num("current"),
        "step_index": num("step").cast(pl.Int64),
        "cycle_index": num("cycle").cast(pl.Int64),
        "step_time_s": num("step_time"),
        "step_type": _step_type(path, raw["mode"], first_line_no, "Mode"),
        "vendor_capacity_Ah": num("capacity", allow_empty=True),
        "vendor_energy_Wh": num("energy", allow_empty=True),
        "vendor_flag": raw["flag"].str.strip_chars().replace("", None),
    })
    meta = SourceMeta(
        path=str(path), sha256=textfile.sha256_of(path), format="bitrode-cell", vendor="Bitrode",
        units_found={"time": "s", "current": "A", "voltage": "V", "capacity": "Ah", "energy": "Wh"},
        conversions=(() if has_header else ("no header row: columns taken from the Bitrode cell layout",)),
    )
    return validate(TimeSeries(df, meta), line_of_row=lambda i: first_line_no + i)


def _check_cell_header(path: Path, line: bytes) -> None:
    """The columns are read by position, so a header that names them differently is refused, not trusted."""
    found = [f.strip() for f in line.lstrip(b"\xef\xbb\xbf").decode("latin-1").split(",")]
    for k, expected in enumerate(CELL_SOURCE_NAMES.values()):
        got = found[k] if k < len(found) else None
        if got != expected:
            raise InputFileError(path, f"column {k + 1} is {got!r} where the Bitrode cell layout has {expected!r}",
                                   line=1, column=got or expected)


def _read_module(path: Path, data: bytes) -> TimeSeries:
    lines = textfile.split_lines(data)
    header_no = next((i for i, ln in enumerate(lines) if ln.startswith(MODULE_HEADER_PREFIX.encode())), None)
    if header_no is None:
        raise InputFileError(path, f"no header line starting {MODULE_HEADER_PREFIX!r} after the metadata block")
    header = lines[header_no].decode("latin-1").split(",")
    if header[-1] == "":
        header = header[:-1]
    width = len(header) + 1  # data rows end with a trailing comma as the header does
    body = lines[header_no + 1:]
    if body and body[-1].startswith(TRAILER_PREFIX):
        body = body[:-1]
    if not body:
        raise InputFileError(path, "header but no data rows", line=header_no + 1)
    first_line_no = header_no + 2
    textfile.check_field_counts(path, body, first_line_no, width)
    names = [f"c{i}" for i in range(width)]
    raw = textfile.frame_from_lines(path, body, names)
    by_name = {name.strip(): f"c{i}" for i, name in enumerate(header)}

    def col(name: str) -> str:
        if name not in by_name:
            raise InputFileError(path, f"column {name!r} is missing from the header", line=header_no + 1)
        return by_name[name]

    def num(name, **kw):
        return textfile.to_float(path, raw, col(name), source_name=name, first_line_no=first_line_no, **kw)

    columns = {
        "test_time_s": num("Total Time"),
        "voltage_V": num("Voltage"),
        "current_A": num("Current"),
        "step_index": num("Step").cast(pl.Int64),
        "cycle_index": num("Cycle").cast(pl.Int64),
        **({"step_time_s": num("Step time")} if "Step time" in by_name else {}),
        "step_type": _step_type(path, raw[col("Mode")], first_line_no, "Mode"),
        "vendor_capacity_Ah": num("Amp-Hours", allow_empty=True),
        "vendor_energy_Wh": num("Watt-Hours", allow_empty=True),
    }
    groups = sorted((n for n in by_name if re.fullmatch(r"Cell Voltage A\d+", n)), key=lambda n: int(n[14:]))
    for k, name in enumerate(groups, start=1):
        columns[f"group_voltage_V_{k}"] = num(name)
    temps = sorted((n for n in by_name if re.fullmatch(r"Temperature A\d+", n)), key=lambda n: int(n[13:]))
    for k, name in enumerate(temps, start=1):
        columns[f"temperature_C_{k}"] = num(name, allow_empty=True)
    if "Data Acquisition Flag" in by_name:
        columns["vendor_flag"] = raw[col("Data Acquisition Flag")].str.strip_chars().replace("", None)
    meta_block = _metadata_block(lines[:header_no])
    meta = SourceMeta(
        path=str(path), sha256=textfile.sha256_of(path), format="bitrode-module", vendor="Bitrode (VisuaLCN)",
        channel=meta_block.get("Address"),
        units_found={"Total Time": "s", "Current": "A", "Voltage": "V", "Cell Voltage A*": "V",
                     "Temperature A*": "degC", "Amp-Hours": "Ah", "Watt-Hours": "Wh"},
        conversions=tuple(f"'{name}' -> group_voltage_V_{k}" for k, name in enumerate(groups, start=1)),
        header=meta_block,
    )
    return validate(TimeSeries(pl.DataFrame(columns), meta), line_of_row=lambda i: first_line_no + i)


def _metadata_block(lines: list[bytes]) -> dict[str, str]:
    """``key,value`` lines before the header; values may contain unquoted commas."""
    out = {}
    for ln in lines:
        key, _, value = ln.decode("latin-1").partition(",")
        if key.strip():
            out[key.strip()] = value.strip()
    return out


def _step_type(path, mode: pl.Series, first_line_no: int, column: str) -> pl.Series:
    text = mode.str.strip_chars()
    mapped = text.replace_strict(MODE_TO_STEP_TYPE, default=None)
    bad = mapped.is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputFileError(path, f"mode {text[i]!r} where CHRG, DCHG or REST was expected",
                               line=first_line_no + i, column=column)
    return mapped


FORMATS = {"bitrode-cell": read_bitrode, "bitrode-module": read_bitrode}
