"""PEC (SBT cycler, LifeTest software) CSV exports.

Layout: a block of ``key:,value`` lines (test number, test regime, chemistry, ``Parameter names:`` /
``Parameter values:`` pairs such as the C-rate basis, start and end time; some exports add a ``#RESULTS CHECK``
… ``#END RESULTS CHECK`` table), then a header starting ``Test,Cell,Rack,Shelf,Position`` and one line per
sample; header and rows end with a trailing comma. The unit is in each name and decides the scale
(:mod:`releaf.io.units`): ``Voltage (V|mV)``, ``Current (A|mA|µA)``, ``… Capacity (Ah|mAh)``, ``… Energy (Wh|mWh)``
(older exports call the energy columns ``Charge Capacity (mWh)``: the unit, not the name, tells energy from
charge), times as ``(Seconds)``, ``(Minutes)``, ``(Decimal Hours)`` or ``(Hours in hh:mm:ss.xxx)`` (hours may
exceed 24).

Current sign. PEC writes signed current and splits the charge and discharge counters
(``Charge Capacity``, ``Discharge Capacity``); cellpy reads PEC current with no sign change, i.e. positive =
charge. The reader checks this on every file from the file itself: on lines with |I| > 1 mA where exactly one
counter grows, the current should be positive when ``Charge Capacity`` grows and negative when ``Discharge
Capacity`` grows. If most such lines say the opposite, the current is negated and the metadata says so; if no
line decides (a rest-only file such as the OCV test in the shipped example, whose largest |I| is 6 µA), the
current is kept as written and the metadata says that the convention was assumed, not seen.

``Temp (°C)`` (or ``Cell surface temperature``) → ``temperature_C``; ``Real Time`` (month/day/year wall clock,
no time zone) is taken as UTC; ``Instruction Name`` is kept as ``vendor_instruction``. The reader takes one cell
per table and refuses a file that holds several.

Hand-written on polars (with the shared toolkit in :mod:`releaf.io.maccor`): cellpy's ``pec_csv`` loader is the
only field reader, a pandas/cellpy dependency without line-exact errors.

References
----------
PEC Products, SBT/ACT series cyclers, LifeTest CSV export.
jepegit/cellpy, ``cellpy/readers/instruments/pec_csv.py`` (units in names, time formats, RESULTS CHECK block).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from releaf.errors import InputFileError
from releaf.io import datetimes, textfile, units
from releaf.io.maccor import Table, column_key, durations_s, numbers, read_table
from releaf.schema import SourceMeta, TimeSeries, step_type_from_current, validate

HEADER_START = "Test,Cell,Rack,Shelf,Position"
# column (lower case, unit split off) -> dimension (releaf.io.units); the unit in the name decides the scale
_DIMENSIONS = {"voltage": "voltage", "current": "current", "charge capacity": "charge", "discharge capacity": "charge",
               "charge energy": "energy", "discharge energy": "energy"}
_DURATION_UNIT = "hours in hh:mm:ss.xxx"  # a duration written h:mm:ss.xxx, not a number
_DECIDING_CURRENT_A = 1e-3


def _header_index(lines: list[str]) -> int | None:
    return next((i for i, ln in enumerate(lines) if ln.lstrip("\ufeff").startswith(HEADER_START)), None)


def sniff(head: textfile.Head) -> str | None:
    """``pec`` if a header line ``Test,Cell,Rack,Shelf,Position,…`` is in the first bytes, else None."""
    return "pec" if _header_index(head.text.split("\n")) is not None else None


def read_pec(path) -> TimeSeries:
    """Read a PEC CSV export into the canonical table.

    Parameters
    ----------
    path : path of the ``.csv`` export

    Returns
    -------
    TimeSeries with ``test_time_s`` [s], ``voltage_V`` [V], ``current_A`` [A, + = charge], ``step_index``,
    ``cycle_index``, ``step_time_s`` [s, ``Step Time``], ``step_type`` (from the current's sign),
    ``vendor_instruction``, ``temperature_C`` [degC],
    ``vendor_capacity_Ah`` [Ah] / ``vendor_energy_Wh`` [Wh] (charge minus discharge counters) and ``datetime``
    [UTC]. ``meta.header`` holds the ``key:,value`` block with the ``Parameter names``/``values`` paired up.

    Raises
    ------
    InputFileError
        no PEC header, a missing column, a unit it does not know, a line with the wrong number of fields,
        a non-number, several cells in one file.
    """
    path = Path(path)
    data = textfile.read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    at = data.find(HEADER_START.encode())
    if at < 0 or (at > 0 and data[at - 1:at] != b"\n"):
        raise InputFileError(path, f"not a PEC export: no header line starting {HEADER_START!r}", line=1)
    header_end = data.find(b"\n", at)
    header_end = len(data) if header_end < 0 else header_end
    header_line_no = data.count(b"\n", 0, at) + 1
    header = data[at:header_end].decode("utf-8", "replace").rstrip("\r").split(",")
    table = read_table(path, data[header_end + 1:], first_line_no=header_line_no + 1, width=len(header),
                       separator=",")
    block = _key_values(data[:at].decode("utf-8", "replace"))
    df, units_found, conversions, channel = _canonical(path, table, header, header_line_no)
    meta = SourceMeta(path=str(path), sha256=textfile.sha256_of(path), format="pec", vendor="PEC", channel=channel,
                      units_found=units_found, conversions=tuple(conversions), header=block)
    return validate(TimeSeries(df, meta), line_of_row=table.line_of_row)


def _canonical(path, table: Table, header: list[str], header_line_no: int):
    found: dict[str, tuple[str, str, str | None]] = {}  # base -> (column, name as in file, unit)
    for k, name in enumerate(header):
        base, unit = column_key(name.replace("Â°", "°"))
        if unit and unit.lower() in ("wh", "mwh"):  # older exports: 'Charge Capacity (mWh)' is an energy
            base = base.replace("capacity", "energy")
        if base:
            found.setdefault(base, (f"c{k}", name, unit))
    units_found, conversions = {}, []

    def need(base: str) -> tuple[str, str, str | None]:
        if base not in found:
            raise InputFileError(path, f"column {base!r} is missing from the header", line=header_line_no)
        return found[base]

    def num(base: str, **kw) -> pl.Series:
        col, name, unit = need(base)
        if unit is None:
            return numbers(path, table, col, name=name, **kw)
        scale = units.resolve(path, name, unit, _DIMENSIONS.get(base), units_found=units_found,
                              conversions=conversions, line=header_line_no)
        return units.apply(numbers(path, table, col, name=name, scale=scale[0], **kw), 1.0, scale[1])

    columns = {"test_time_s": _time_s(path, table, need("total time"), header_line_no, units_found, conversions),
               "voltage_V": num("voltage"), "current_A": num("current"),
               "step_index": num("step").cast(pl.Int64), "cycle_index": num("cycle").cast(pl.Int64)}
    if "step time" in found:
        columns["step_time_s"] = _time_s(path, table, found["step time"], header_line_no, units_found, conversions)
    if "instruction name" in found:
        columns["vendor_instruction"] = table.fields[found["instruction name"][0]].str.strip_chars()
    for cell_temp in ("temp", "cell surface temperature", "cell temperature"):
        if cell_temp in found:
            columns["temperature_C"] = numbers(path, table, found[cell_temp][0], name=found[cell_temp][1],
                                               allow_empty=True)
            units_found[found[cell_temp][1]] = "degC"
            break
    counters = {}
    for base in ("charge capacity", "discharge capacity", "charge energy", "discharge energy"):
        if base in found:
            counters[base] = num(base, allow_empty=True)
    if "charge capacity" in counters and "discharge capacity" in counters:
        columns["vendor_capacity_Ah"] = counters["charge capacity"] - counters["discharge capacity"]
    if "charge energy" in counters and "discharge energy" in counters:
        columns["vendor_energy_Wh"] = counters["charge energy"] - counters["discharge energy"]
    df = pl.DataFrame(columns)
    df, note = _orient_current(df, counters)
    conversions.append(note)
    df = df.with_columns(step_type_from_current(pl.col("current_A")).alias("step_type"))
    if "real time" in found:
        parsed = datetimes.to_utc(table.fields[found["real time"][0]])
        if parsed is not None:
            df = df.with_columns(parsed)
            conversions.append("'Real Time': wall clock without a time zone, taken as UTC")
        else:
            conversions.append("'Real Time' in an unknown format: datetime left out")
    return df, units_found, conversions, _channel(path, table, found, header_line_no)


def _time_s(path, table: Table, source: tuple[str, str, str | None], header_line_no: int, units_found: dict,
            conversions: list) -> pl.Series:
    col, name, unit = source
    duration = (unit or "").lower() == _DURATION_UNIT
    scale = None if duration or unit is None else units.conversion(unit, "time")
    if not duration and scale is None:
        raise InputFileError(path, f"time unit {unit!r} not understood (expected Seconds, Minutes, Decimal Hours "
                                     "or Hours in hh:mm:ss.xxx)", line=header_line_no, column=name)
    units_found[name] = unit
    if duration:
        conversions.append(f"'{name}' hh:mm:ss.xxx -> s")
        return durations_s(path, table, col, name=name)
    if (text := units.note(name, *scale, "time")) is not None:
        conversions.append(text)
    return numbers(path, table, col, name=name, scale=scale[0])


def _orient_current(df: pl.DataFrame, counters: dict[str, pl.Series]) -> tuple[pl.DataFrame, str]:
    """Keep or negate the current so that it is positive where the file's charge counter grows."""
    if "charge capacity" not in counters or "discharge capacity" not in counters:
        return df, "current sign as written (no charge/discharge counters to check it against)"
    grows_c = (counters["charge capacity"].diff() > 0).fill_null(False).to_numpy()
    grows_d = (counters["discharge capacity"].diff() > 0).fill_null(False).to_numpy()
    current = df["current_A"].to_numpy()
    deciding = (np.abs(current) > _DECIDING_CURRENT_A) & (grows_c != grows_d)
    agree = int(np.sum(deciding & ((grows_c & (current > 0)) | (grows_d & (current < 0)))))
    disagree = int(np.sum(deciding)) - agree
    if disagree > agree:
        return (df.with_columns(-pl.col("current_A")),
                f"current negated: on {disagree} of {agree + disagree} lines the charge counter grows while the "
                "current is negative (or the discharge counter while it is positive)")
    if agree:
        return df, f"current sign as written (+ = charge), confirmed by the counters on {agree} of " \
                   f"{agree + disagree} lines"
    return df, "current sign as written (+ = charge assumed, as cellpy reads PEC): no line with |I| > 1 mA " \
               "and one growing counter decides it in this file"


def _channel(path, table: Table, found: dict, header_line_no: int) -> str | None:
    """``rack/shelf/position`` of the cell; a file with several cells is refused."""
    if "cell" in found:
        cells = table.fields[found["cell"][0]].str.strip_chars().unique()
        if len(cells) > 1:
            raise InputFileError(path, f"{len(cells)} cells in one file ({', '.join(sorted(cells.to_list()))}); "
                                         "releaf reads one cell per table: export one cell per file",
                                   line=header_line_no, column=found["cell"][1])
    parts = [table.fields[found[k][0]][0].strip() for k in ("rack", "shelf", "position") if k in found]
    return "/".join(parts) or None


def _key_values(text: str) -> dict[str, str]:
    """The ``key:,value`` block, with ``Parameter names:``/``Parameter values:`` paired into their own keys."""
    out: dict[str, str] = {}
    in_check = False
    for line in text.splitlines():
        if line.startswith("#"):
            in_check = not in_check if "RESULTS CHECK" in line.upper() else in_check
            continue
        if in_check or ":" not in line:
            continue
        key, _, value = line.partition(",")
        out[key.strip().rstrip(":").strip()] = value.strip().rstrip(",")
    names, values = out.get("Parameter names", ""), out.get("Parameter values", "")
    if names and values:
        for n, v in zip(names.split(","), values.split(","), strict=False):
            if n.strip():
                out[n.strip()] = v.strip()
    return {k: v for k, v in out.items() if k}


FORMATS = {"pec": read_pec}
