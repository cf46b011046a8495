"""LeafSpy Pro logs (Nissan Leaf BMS readings over OBD) and hand-copied LeafSpy BMS histories.

A LeafSpy log is a CSV written by the phone app while it is connected to the car: one line every few seconds
with the pack's BMS values (SOC, AHr, SOH, Hx, GIDs, pack volts/amps) and the 96 cell-pair voltages. It is not a
cycler time series, so it is not registered in :data:`releaf.io.READERS`; :mod:`releaf.intake` consumes it.

Variants handled (see the data catalogue, section ``leafspy/``):

- header of 155, 158 or 159 names (app versions); 159-name files write 160 fields per row (one unnamed
  trailing field), and a 155-name header can be followed by 158-field rows (app updated mid-file): the extra
  fields are named from the 158-field layout;
- no header at all (columns from the layout of the row width), LF or CRLF line endings;
- the 62 kWh car's logs with ``Lat``, ``Long`` and ``VIN`` removed and a second ``Debug`` column: every column
  is found **by name**, never by position;
- a truncated record glued to the next one on one line (``-402411/01/2018 13:27:46``): the line is split at the
  glued date, the complete record is kept, the truncated one dropped, and both are reported with the line number;
  any other line of unexpected width is dropped and reported (``strict=True`` raises instead).

Conversions at the edge (each is listed in ``meta.conversions``): ``SOC`` and ``AHr`` are written x 10000 (a
file whose values are already in % / Ah is detected and left alone); ``Pack Amps`` is positive on discharge in
LeafSpy and is negated (releaf: positive = charge); cell-pair voltages written negative mark a balancing shunt
that is active on that pair: the voltage is ``abs()`` and the shunt goes to ``shunt_mask`` / ``shunt_count``;
``none`` / ``na`` become null; ``Ambient`` is converted from degF; an odometer of 0 means "not read" (null);
``Hx`` is rounded to 4 decimals (the app prints ``78.48999999999999``). Time comes from ``epoch time`` (Unix s,
UTC, integer or float); the locale-dependent ``Date/Time`` text is kept as ``date_text`` and parsed only when
the epoch column is missing or empty (then it is local time of the phone and the metadata says so).

Hand-written on top of polars' CSV parser: no field library reads LeafSpy logs, and the quirks above need
line-exact repairs and reports.

References
----------
LeafSpy Pro Help, version 1.2.1 (Turbo3): the app, its screens and its logs.
releaf data catalogue (``data/README.md`` of the shared data, section ``leafspy/``): column meanings and
scalings (SOC and AHr x 10000, Pack Amps + = discharge, negative cell pair = shunt) and the variants above.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from releaf.errors import InputFileError
from releaf.io import datetimes, textfile

N_CELL_PAIRS = 96
_CP = [f"CP{k}" for k in range(1, N_CELL_PAIRS + 1)]
# the layouts by row width, as written by the app versions found in real logs (names exactly as in the header)
_LAYOUT_155 = (
    ["Date/Time", "Lat", "Long", "Elv", "Speed", "Gids", "SOC", "AHr", "Pack Volts", "Pack Amps", "Max CP mV",
     "Min CP mV", "Avg CP mV", "CP mV Diff", "Judgment Value", "Pack T1 F", "Pack T1 C", "Pack T2 F", "Pack T2 C",
     "Pack T3 F", "Pack T3 C", "Pack T4 F", "Pack T4 C"] + _CP
    + ["12v Bat Amps", "VIN", "Hx", "12v Bat Volts", "Odo(km)", "QC", "L1/L2", "TP-FL", "TP-FR", "TP-RR", "TP-RL",
       "Ambient", "SOH", "RegenWh", "BLevel", "epoch time", "Motor Pwr(100w)", "Aux Pwr(100w)", "A/C Pwr(250w)",
       "A/C Comp(0.1MPa)", "Est Pwr A/C(50w)", "Est Pwr Htr(250w)", "Plug State", "Charge Mode", "OBC Out Pwr",
       "Gear", "HVolt1", "HVolt2", "GPS Status", "Power SW", "BMS", "OBC", "Debug", "Motor Temp",
       "Inverter 2 Temp", "Inverter 4 Temp"]
)
_LAYOUT_158 = [("Motor Pwr(w)" if n == "Motor Pwr(100w)" else n) for n in _LAYOUT_155] + [
    " Speed1", " Speed2", "Wiper Status"]
_LAYOUT_160 = _LAYOUT_158 + ["Torque Nm", ""]
LAYOUTS = {155: _LAYOUT_155, 158: _LAYOUT_158, 160: _LAYOUT_160}
HEADER_PREFIX = "Date/Time,"
HISTORY_PREFIX = "Date,Odometer (km),"
_DATE = r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}(?::\d{2})?"
_HEADERLESS_ROW = re.compile(rf"^{_DATE},")
_NULL_TEXT = ("", "none", "na", "n/a", "nan")

# output column <- LeafSpy column (by name), scale; required ones must be present
_REQUIRED = ("SOC", "AHr", "Pack Volts", "Pack Amps")
_NUMERIC = {
    "gids": "Gids", "soc_pct": "SOC", "ahr_Ah": "AHr", "soh_pct": "SOH", "hx_pct": "Hx",
    "pack_voltage_V": "Pack Volts", "pack_current_A": "Pack Amps", "cp_max_mV": "Max CP mV",
    "cp_min_mV": "Min CP mV", "cp_avg_mV": "Avg CP mV", "cp_diff_mV": "CP mV Diff",
    "judgment_value_mV": "Judgment Value", "pack_temperature_C_1": "Pack T1 C", "pack_temperature_C_2": "Pack T2 C",
    "pack_temperature_C_3": "Pack T3 C", "pack_temperature_C_4": "Pack T4 C", "ambient_C": "Ambient",
    "odometer_km": "Odo(km)", "qc_count": "QC", "l1l2_count": "L1/L2", "aux_battery_V": "12v Bat Volts",
    "regen_Wh": "RegenWh", "plug_state": "Plug State", "charge_mode": "Charge Mode", "gear": "Gear",
}
_INTEGER = ("gids", "qc_count", "l1l2_count", "plug_state", "charge_mode", "gear")
UNITS_FOUND = {"SOC": "% x 10000", "AHr": "Ah x 10000", "Pack Volts": "V", "Pack Amps": "A, + = discharge",
               "CP1..CP96": "mV, negative = balancing shunt active", "Pack Tn C": "degC", "Ambient": "degF",
               "Odo(km)": "km", "Hx": "%", "SOH": "%", "epoch time": "s since 1970-01-01 UTC",
               "RegenWh": "Wh", "12v Bat Volts": "V"}


@dataclass(frozen=True)
class LeafSpyMeta:
    """Where a LeafSpy log came from and what the reader did to it.

    ``repaired`` and ``dropped`` hold one dict per line: ``line`` (1-based line in the file), ``fields`` and a
    ``detail`` sentence. ``field_counts`` maps a row width to the number of lines of that width.
    """

    path: str
    sha256: str
    variant: str
    header_fields: int | None
    field_counts: dict[int, int]
    line_ending: str
    repaired: tuple[dict, ...] = ()
    dropped: tuple[dict, ...] = ()
    conversions: tuple[str, ...] = ()
    units_found: dict[str, str] = field(default_factory=dict)
    datetime_source: str = "epoch time"
    vin: str | None = None


@dataclass(frozen=True)
class LeafSpyLog:
    """A parsed LeafSpy log.

    Attributes
    ----------
    data : one row per record, in file order: ``line_no`` (1-based line in the file), ``epoch_s`` [s],
        ``datetime`` (UTC), ``date_text`` (as written), ``soc_pct`` [%], ``ahr_Ah`` [Ah], ``soh_pct`` [%],
        ``hx_pct`` [%], ``gids``, ``pack_voltage_V`` [V], ``pack_current_A`` [A, + = charge],
        ``cp_max_mV`` ... ``cp_diff_mV`` [mV] and ``judgment_value_mV`` as the app computed them,
        ``pack_temperature_C_1..4`` [degC], ``ambient_C`` [degC], ``odometer_km`` [km], ``qc_count``,
        ``l1l2_count``, ``aux_battery_V`` [V], ``regen_Wh`` [Wh], ``plug_state``, ``charge_mode``, ``gear``,
        ``cp_mV_1`` ... ``cp_mV_96`` [mV, abs], ``shunt_count`` (pairs with an active balancing shunt).
    shunt_mask : bool array (rows x 96): True where the pair's shunt was active (value written negative)
    meta : :class:`LeafSpyMeta`
    """

    data: pl.DataFrame
    shunt_mask: np.ndarray
    meta: LeafSpyMeta

    @property
    def name(self) -> str:
        return Path(self.meta.path).name

    def cell_pairs_mV(self) -> np.ndarray:
        """Cell-pair voltages as a (rows x 96) float array [mV]."""
        return self.data.select(cp_columns()).to_numpy().astype(float)


def cp_columns() -> list[str]:
    """Names of the 96 cell-pair voltage columns, in LeafSpy order (CP1 first)."""
    return [f"cp_mV_{k}" for k in range(1, N_CELL_PAIRS + 1)]


def sniff_leafspy(head: textfile.Head) -> str | None:
    """``leafspy-log``, ``leafspy-bms-history`` or None, from a file's first bytes (never its name)."""
    first = head.first_line.lstrip("\ufeff")
    if first.startswith(HEADER_PREFIX) and all(f",{n}," in first for n in ("SOC", "AHr", "Pack Volts", "CP1")):
        return "leafspy-log"
    if _HEADERLESS_ROW.match(first) and first.count(",") + 1 in LAYOUTS:
        fields = first.split(",")
        # the 155/158/160 layouts have the 96 cell pairs at 23..118, all integers of mV (signed)
        if all(re.fullmatch(r"-?\d{3,4}", f) for f in fields[23:119]):
            return "leafspy-log"
    if first.startswith(HISTORY_PREFIX) and "SoH" in first and "Hx" in first:
        return "leafspy-bms-history"
    return None


def read_leafspy(path, *, strict: bool = False) -> LeafSpyLog:
    """Read a LeafSpy Pro log.

    Parameters
    ----------
    path : the ``.csv`` log
    strict : raise on a line of unexpected width instead of repairing or dropping it (and reporting it)

    Returns
    -------
    :class:`LeafSpyLog` (columns and conversions: see the module docstring).

    Raises
    ------
    InputFileError
        not a LeafSpy log (no ``Date/Time,`` header and not a headerless LeafSpy row), a required column
        missing (``SOC``, ``AHr``, ``Pack Volts``, ``Pack Amps``, ``CP1``..``CP96``, and ``epoch time`` or
        ``Date/Time``), text where a number is expected, no usable row, or more than 10 % of lines unusable.
    """
    path = Path(path)
    data = textfile.read_bytes(path)
    line_ending = "CRLF" if b"\r\n" in data[:65536] else "LF"
    text = data.decode("latin-1").removeprefix("\ufeff").removeprefix("\xef\xbb\xbf")
    lines = pl.Series("text", text.split("\n")).str.strip_suffix("\r")
    if lines[-1] == "":
        lines = lines.head(-1)
    first = lines[0]
    if first.startswith(HEADER_PREFIX):
        header = _dedupe(first.split(","))
        body, first_line_no = lines.slice(1), 2
    elif sniff_leafspy(textfile.Head(path, first[:4096].encode("latin-1"), first)) == "leafspy-log":
        header, body, first_line_no = None, lines, 1
    else:
        raise InputFileError(path, f"not a LeafSpy log: expected a header starting {HEADER_PREFIX!r} or a "
                                     f"headerless LeafSpy row, found {first[:60]!r}", line=1)
    if body.is_empty():
        raise InputFileError(path, "header but no data rows", line=1)
    table = pl.DataFrame({"text": body, "line_no": pl.int_range(first_line_no, first_line_no + body.len(),
                                                                 eager=True, dtype=pl.Int64)})
    table = table.with_columns((pl.col("text").str.count_matches(",", literal=True) + 1).alias("width"))
    counts = dict(table.group_by("width").len().sort("width").iter_rows())
    names_of = {w: _names_for_width(header, w) for w in counts}
    frames, repaired, dropped = [], [], []
    for w, names in names_of.items():
        if names is not None:
            frames.append(_frame(table.filter(pl.col("width") == w), names))
    bad = table.filter(pl.col("width").is_in([w for w, n in names_of.items() if n is None]))
    for line_no, line in zip(bad["line_no"], bad["text"], strict=True):  # only the damaged lines, rare
        fields = line.split(",")
        if strict:
            raise InputFileError(path, f"{len(fields)} fields where {_expected(header)} were expected",
                                   line=line_no)
        fixed = _split_glued(fields, header)
        if fixed is not None:
            record, detail = fixed
            repaired.append({"line": line_no, "fields": len(fields), "detail": detail})
            one = pl.DataFrame({"text": [",".join(record)], "line_no": [line_no]},
                               schema={"text": pl.String, "line_no": pl.Int64})
            frames.append(_frame(one, _names_for_width(header, len(record))))
        else:
            dropped.append({"line": line_no, "fields": len(fields),
                            "detail": f"{len(fields)} fields where {_expected(header)} were expected "
                                      "(truncated or damaged record): line dropped"})
    if not frames:
        raise InputFileError(path, f"no usable data row (row widths found: {counts})", line=first_line_no)
    if len(dropped) > 0.1 * body.len():
        raise InputFileError(path, f"{len(dropped)} of {body.len()} lines have an unexpected number of fields; "
                                     "not a LeafSpy log, or a damaged one", line=dropped[0]["line"])
    raw = pl.concat(frames, how="diagonal").sort("line_no")
    return _convert(path, raw, header, counts, line_ending, tuple(repaired), tuple(dropped))


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}.{seen[n] - 1}")
    return out


def _names_for_width(header: list[str] | None, width: int) -> list[str] | None:
    """Column names for a row of ``width`` fields, or None when such a row cannot be a whole record."""
    if header is None:
        return LAYOUTS.get(width)
    if width == len(header):
        return header
    if width == len(header) + 1:  # 159-name header, 160-field rows: one unnamed trailing field
        return header + ["_unnamed"]
    layout = LAYOUTS.get(width)
    if layout is not None and len(header) < width and _same_names(header, layout[:len(header)]):
        return header + layout[len(header):]  # app updated mid-file: extra fields named from the newer layout
    return None


def _same_names(a: list[str], b: list[str]) -> bool:
    def norm(names):
        return [n.strip().replace("Motor Pwr(100w)", "Motor Pwr(w)") for n in names]
    return norm(a) == norm(b)


def _expected(header) -> str:
    if header is not None:
        return f"{len(header)} (or {len(header) + 1})"
    return " or ".join(str(w) for w in LAYOUTS)


def _split_glued(fields: list[str], header) -> tuple[list[str], str] | None:
    """Split a truncated record glued to the next one (``...,-4024`` + ``11/01/2018 13:27:46,...``)."""
    own = len(fields[0].split("/", 1)[0])  # the app's date style (zero-padded or not) decides the split first
    for digits in (own, 3 - own) if own in (1, 2) else (2, 1):
        glued = re.compile(rf"^(.*?)(\d{{{digits}}}/\d{{1,2}}/\d{{4}} \d{{1,2}}:\d{{2}}(?::\d{{2}})?)$")
        for k in range(1, len(fields)):
            m = glued.match(fields[k])
            if m is None:
                continue
            record = [m.group(2)] + fields[k + 1:]
            if _names_for_width(header, len(record)) is not None:
                return record, (f"two records glued on one line: a truncated record ({k + 1} fields, ending "
                                f"{fields[k - 1]!r},{m.group(1)!r}) and a whole one starting {m.group(2)!r}; "
                                f"kept the whole record ({len(record)} fields), dropped the truncated one")
    return None


def _frame(rows: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """String columns named as in the file (trimmed) from the ``text`` of rows that all have len(names) fields."""
    keep = {i: n.strip() for i, n in enumerate(names) if n.strip() and not n.startswith("_")}
    parts = rows["text"].str.split_exact(",", len(names) - 1).struct.unnest()
    return parts.select([pl.col(f"field_{i}").alias(n) for i, n in keep.items()]).with_columns(rows["line_no"])


def _numbers(path, raw: pl.DataFrame, column: str, *, nullable: bool) -> pl.Series:
    """One LeafSpy column as Float64; text that is not a number names its line and column."""
    return _numbers_frame(path, raw, [column], nullable=nullable)[column]


def _numbers_frame(path, raw: pl.DataFrame, columns: list[str], *, nullable: bool) -> pl.DataFrame:
    """Several LeafSpy columns as Float64 in one pass (``none``/``na``/empty -> null where ``nullable``)."""
    text = raw.select(pl.col(columns).str.strip_chars())
    null = text.select(pl.col(columns).is_null() | pl.col(columns).str.to_lowercase().is_in(_NULL_TEXT))
    values = text.select(pl.col(columns).cast(pl.Float64, strict=False))
    bad = values.select(pl.col(columns).is_null()) if not nullable else values.select(
        [(pl.col(c).is_null() & ~null[c]) for c in columns])
    if bad.select(pl.any_horizontal(pl.all().any())).item():
        for c in columns:
            if bad[c].any():
                i = int(bad[c].arg_true()[0])
                found = text[c][i]
                what = "an empty field" if found in (None, "") else f"text {found!r}"
                raise InputFileError(path, f"{what} where a number was expected",
                                       line=int(raw["line_no"][i]), column=c)
    return values


def _convert(path: Path, raw: pl.DataFrame, header, counts, line_ending, repaired, dropped) -> LeafSpyLog:
    missing = [n for n in (*_REQUIRED, *_CP) if n not in raw.columns]
    if missing:
        raise InputFileError(path, f"column {missing[0]!r} is missing ({len(missing)} required columns missing)",
                               line=1 if header else None, column=missing[0])
    conversions = []
    cols: dict[str, pl.Series] = {"line_no": raw["line_no"]}
    epoch = _numbers(path, raw, "epoch time", nullable=True) if "epoch time" in raw.columns else None
    if epoch is not None and epoch.drop_nulls().len() and epoch.drop_nulls().median() > 1e11:
        epoch = epoch / 1000.0
        conversions.append("'epoch time' in ms -> s")
    if epoch is not None and epoch.null_count() == 0:
        source = "epoch time"
    elif "Date/Time" in raw.columns:
        local, fmt = _parse_date_text(path, raw)
        local_s = local.dt.epoch("us").cast(pl.Float64) / 1e6
        if epoch is not None and epoch.null_count() < epoch.len():
            # rows with an epoch give the phone's UTC offset (rounded to 15 min) for the rows without one
            offset_s = round(float((epoch - local_s).drop_nulls().median()) / 900.0) * 900.0
            epoch = epoch.fill_null(local_s + offset_s)
            source = f"epoch time; empty ones from Date/Time ({fmt}) with the UTC offset {offset_s / 3600:+g} h"
        else:
            epoch = local_s
            source = f"Date/Time ({fmt}, phone local time; time zone unknown, taken as UTC)"
        conversions.append(f"time: {source}")
    else:
        raise InputFileError(path, "neither 'epoch time' nor 'Date/Time' present: no time for the rows",
                               line=1 if header else None, column="epoch time")
    cols["epoch_s"] = epoch.alias("epoch_s")
    dt = (epoch * 1e6).round().cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    cols["datetime"] = dt.alias("datetime")
    cols["date_text"] = raw["Date/Time"] if "Date/Time" in raw.columns else pl.Series([None] * raw.height,
                                                                                        dtype=pl.String)
    for out, src in _NUMERIC.items():
        if src in raw.columns:
            cols[out] = _numbers(path, raw, src, nullable=src not in _REQUIRED)
        else:
            cols[out] = pl.Series(out, [None] * raw.height, dtype=pl.Float64)
    for out, src in (("soc_pct", "SOC"), ("ahr_Ah", "AHr")):
        if cols[out].abs().max() > 1000:
            cols[out] = cols[out] / 10000.0
            conversions.append(f"'{src}' x 1e-4 -> {out} (written x 10000)")
        else:
            conversions.append(f"'{src}' already in {'%' if out == 'soc_pct' else 'Ah'}: not scaled")
    cols["pack_current_A"] = -cols["pack_current_A"]
    conversions.append("'Pack Amps' negated -> pack_current_A (LeafSpy: + = discharge; releaf: + = charge)")
    # (F - 32) x 5/9 as written since the reader began; releaf.io.units' degF entry (x 5/9 - 160/9) differs in the
    # last bit, and these numbers must not move
    cols["ambient_C"] = (cols["ambient_C"] - 32.0) * (5.0 / 9.0)
    conversions.append("'Ambient' degF -> ambient_C")
    cols["odometer_km"] = pl.Series(cols["odometer_km"]).replace(0.0, None)
    conversions.append("'Odo(km)' 0 -> null (odometer not read)")
    cols["hx_pct"] = cols["hx_pct"].round(4)
    for name in _INTEGER:
        cols[name] = cols[name].cast(pl.Int64)
    cp = _numbers_frame(path, raw, _CP, nullable=False).to_numpy()
    shunts = cp < 0
    cp = np.abs(cp)
    conversions.append("CP1..CP96 negative (balancing shunt active) -> abs() into cp_mV_k; shunt in shunt_mask")
    df = pl.DataFrame({k: (v.alias(k) if isinstance(v, pl.Series) else v) for k, v in cols.items()})
    df = df.with_columns([pl.Series(f"cp_mV_{k + 1}", cp[:, k]) for k in range(N_CELL_PAIRS)]
                         + [pl.Series("shunt_count", shunts.sum(axis=1), dtype=pl.Int64)])
    vin = None
    if "VIN" in raw.columns:
        vins = raw["VIN"].drop_nulls().str.strip_chars().unique().to_list()
        vin = vins[0] if len(vins) == 1 else (",".join(sorted(vins)) or None)
    meta = LeafSpyMeta(
        path=str(path), sha256=textfile.sha256_of(path), variant=_variant(header, counts),
        header_fields=len(header) if header else None, field_counts=counts, line_ending=line_ending,
        repaired=repaired, dropped=dropped, conversions=tuple(conversions), units_found=dict(UNITS_FOUND),
        datetime_source=source, vin=vin)
    return LeafSpyLog(df, shunts, meta)


def _variant(header, counts) -> str:
    widths = "/".join(str(w) for w in sorted(counts))
    if header is None:
        return f"headerless, {widths} fields"
    name = f"{len(header)}-name header, {widths}-field rows"
    if "Lat" not in header and "VIN" not in header:
        name += ", Lat/Long/VIN removed"
    return name


def _parse_date_text(path, raw: pl.DataFrame) -> tuple[pl.Series, str]:
    """Date/Time text (phone local time, taken as UTC) to datetimes: the first of
    :data:`releaf.io.datetimes.DATETIME_FORMATS` that parses every row and keeps time non-decreasing, else the first
    that parses every row (the app writes the phone's locale: month or day first)."""
    text = raw["Date/Time"].str.strip_chars()
    for fmt in datetimes.DATETIME_FORMATS:
        dt = datetimes.to_utc(text, fmt, partial=True)
        if dt.null_count() == 0 and (dt.diff().drop_nulls() >= timedelta(0)).all():
            return dt, fmt
    for fmt in datetimes.DATETIME_FORMATS:
        dt = datetimes.to_utc(text, fmt, partial=True)
        if dt.null_count() == 0:
            return dt, fmt
    bad = datetimes.to_utc(text, datetimes.DATETIME_FORMATS[0], partial=True).is_null()
    i = int(bad.arg_true()[0])
    raise InputFileError(path, f"date {text[i]!r} matches none of {', '.join(datetimes.DATETIME_FORMATS)}",
                           line=int(raw["line_no"][i]), column="Date/Time")


# --- hand-copied BMS histories ---------------------------------------------------------------------------------

_HISTORY_NAMES = {"date": "date", "odometer": "odometer_km", "ah": "ahr_Ah", "soh": "soh_pct", "hx": "hx_pct",
                  "fastcharges": "qc_count", "type12charges": "l1l2_count"}


@dataclass(frozen=True)
class BmsHistory:
    """LeafSpy BMS readings copied by hand, one row per reading.

    ``data``: ``date`` (Date), ``odometer_km`` [km], ``ahr_Ah`` [Ah], ``soh_pct`` [%], ``hx_pct`` [%],
    ``qc_count``, ``l1l2_count``, ``line_no``. ``path``/``sha256`` say where it came from.
    """

    data: pl.DataFrame
    path: str
    sha256: str
    conversions: tuple[str, ...] = ()


def _key(name: str) -> str:
    return re.sub(r"\(.*?\)|[^a-z0-9]", "", name.lower())


def read_bms_history(path) -> BmsHistory:
    """Read a hand-copied LeafSpy history CSV (``Date,Odometer (km),A⋅h,SoH (%),Hx (%),Fast charges,...``).

    Rows are kept as written (a nominal new-battery row with an empty ``A⋅h`` stays, with null ``ahr_Ah``);
    de-duplicating the boundary rows repeated by consecutive files is left to the caller
    (:func:`releaf.intake.merge_bms_history`).

    Raises
    ------
    InputFileError
        wrong header, a missing column, a date that is not ISO ``YYYY-MM-DD``, or text where a number belongs.
    """
    path = Path(path)
    data = textfile.read_bytes(path)
    text = data.decode("utf-8-sig", errors="replace")
    if not text.startswith(HISTORY_PREFIX):
        raise InputFileError(path, f"not a LeafSpy BMS history: expected a header starting {HISTORY_PREFIX!r}",
                               line=1)
    try:
        raw = pl.read_csv(io.StringIO(text), infer_schema=False, quote_char='"')
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as e:
        raise InputFileError(path, f"could not be parsed as CSV: {str(e).splitlines()[0]}") from None
    found = {_HISTORY_NAMES[_key(c)]: c for c in raw.columns if _key(c) in _HISTORY_NAMES}
    for need in ("date", "ahr_Ah", "soh_pct", "hx_pct"):
        if need not in found:
            raise InputFileError(path, f"no column for {need} (found: {', '.join(raw.columns)})", line=1)
    raw = raw.with_columns(pl.int_range(2, raw.height + 2, dtype=pl.Int64).alias("line_no"))
    date = raw[found["date"]].str.strip_chars().str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    if date.null_count():
        i = int(date.is_null().arg_true()[0])
        raise InputFileError(path, f"date {raw[found['date']][i]!r} is not YYYY-MM-DD",
                               line=int(raw["line_no"][i]), column=found["date"])
    cols = {"date": date, "line_no": raw["line_no"]}
    for out in ("odometer_km", "ahr_Ah", "soh_pct", "hx_pct", "qc_count", "l1l2_count"):
        cols[out] = (_numbers(path, raw, found[out], nullable=True) if out in found
                     else pl.Series([None] * raw.height, dtype=pl.Float64))
    df = pl.DataFrame(cols).with_columns(pl.col("qc_count", "l1l2_count").cast(pl.Int64))
    return BmsHistory(df, str(path), textfile.sha256_of(path),
                      (f"'{found['ahr_Ah']}' -> ahr_Ah (Ah, as written)",))
