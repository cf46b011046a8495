"""Wall-clock text of cycler exports to UTC datetimes: the formats the readers know and one parser for them.

Cyclers write the wall clock as text without a time zone, in the layout of the tester PC's locale. Every reader
takes its datetime column through :func:`to_utc` with the formats of :data:`DATETIME_FORMATS` (or one format it
knows better, e.g. from a settings file); what differs between readers (which column, what to do when nothing
fits) stays in the reader.

Formats are polars/chrono ``strftime`` patterns; ``%.f`` is an optional fraction of a second (``.5``, ``.123456``,
or none). The order matters only where two formats read the same text differently: month-first dates (the US
default of Arbin, Maccor, PEC and LeafSpy) come before day-first ones, so ``03/05/2017`` is March 5 unless the
reader knows better.

References
----------
chrono ``format::strftime`` (the pattern language of ``polars.Series.str.to_datetime``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import numpy as np
import polars as pl

MITS_FORMAT = "%m/%d/%Y %H:%M:%S%.f"  # Arbin MITS Pro's DateTime; decoded by numpy (:func:`mits_datetimes`)
DATETIME_FORMATS: tuple[str, ...] = (
    "%m/%d/%Y %H:%M:%S",  # month first: Arbin MITS Pro, Maccor DPt Time, PEC Real Time, LeafSpy (US locale)
    MITS_FORMAT,
    "%m/%d/%Y %I:%M:%S %p",  # 12-hour clock: Arbin, Maccor, PEC, Novonix
    "%m/%d/%Y %H:%M",  # PEC, LeafSpy
    "%Y-%m-%d %H:%M:%S",  # ISO 8601: Novonix, BatteryArchive (pandas export of the archive)
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %I:%M:%S %p",  # Novonix HPC
    "%Y-%m-%d %H:%M",  # BatteryArchive
    "%d/%m/%Y %H:%M:%S",  # day first (European locales): after month first
    "%d/%m/%Y %H:%M:%S%.f",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S%.f",  # German locale (Arbin)
)

# MM/DD/YYYY HH:MM:SS.ffffff, byte by byte: the lowest and highest byte allowed at each position
_MITS_LOW = np.frombuffer(b"00/00/0000 00:00:00.000000", np.uint8)
_MITS_HIGH = np.frombuffer(b"19/39/9999 29:59:59.999999", np.uint8)
# place value of each byte: of MM/DD/YYYY in a date key (any distinct weights), of HH:MM:SS.ffffff in microseconds
_MITS_DATE_PLACES = np.array([1e5, 1e4, 0, 1e3, 1e2, 0, 1e9, 1e8, 1e7, 1e6])
_MITS_TIME_US = np.array([36e9, 36e8, 0, 6e8, 6e7, 0, 1e7, 1e6, 0, 1e5, 1e4, 1e3, 1e2, 1e1, 1])
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def format_of(text: str, formats: Sequence[str] = DATETIME_FORMATS) -> str | None:
    """The first of ``formats`` that reads one wall-clock text (e.g. a file's first row), or None.

    Parameters
    ----------
    text : one value, e.g. ``'05/13/2017 10:00:00.123'``
    formats : polars/chrono patterns, tried in order

    Returns
    -------
    The pattern, to parse the whole column with (:func:`to_utc`); None when none reads ``text``.
    """
    text = text.strip()
    for fmt in formats:
        # Python's strptime has no optional fraction: %.f is tried as ".%f" and as nothing
        for python_fmt in dict.fromkeys((fmt.replace("%.f", ".%f"), fmt.replace("%.f", ""))):
            try:
                datetime.strptime(text, python_fmt)
                return fmt
            except ValueError:
                continue
    return None


def to_utc(values, formats: str | Sequence[str] = DATETIME_FORMATS, *, time_zone: str = "UTC",
           partial: bool = False) -> pl.Series | None:
    """Wall-clock text as a UTC datetime column [us], read with the first format that reads every value.

    Parameters
    ----------
    values : text column (polars Series, numpy array or list of str); surrounding spaces are ignored and an empty
        value is null
    formats : one polars/chrono pattern or several, tried in order (default :data:`DATETIME_FORMATS`)
    time_zone : the zone the wall clock was kept in (IANA name); the default takes zone-less text as UTC. A time
        that does not exist there (spring forward) is null; an ambiguous one (fall back) takes the earlier
    partial : when no format reads every value, return the first format's reading with null where it fails (for
        a caller that names the bad row itself) instead of None

    Returns
    -------
    ``datetime`` column of dtype ``Datetime("us", "UTC")``, or None when no format reads every non-empty value
    (and ``partial`` is False).
    """
    raw = values if isinstance(values, pl.Series) else pl.Series("datetime", values, dtype=pl.String)
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    if not formats:
        raise ValueError("no datetime format given")
    if formats[0] == MITS_FORMAT and time_zone == "UTC" and (decoded := mits_datetimes(raw)) is not None:
        return decoded
    text = raw.str.strip_chars().replace("", None)
    sample = text.drop_nulls().head(16)  # a format that fails on these cannot read every value: skip its full parse
    for fmt in formats:
        if sample.len() and sample.str.to_datetime(fmt, strict=False, time_unit="us").null_count():
            continue
        parsed = text.str.to_datetime(fmt, strict=False, time_unit="us")
        if parsed.null_count() == text.null_count():
            return _zoned(parsed, time_zone)
    if not partial:
        return None
    return _zoned(text.str.to_datetime(formats[0], strict=False, time_unit="us"), time_zone)


def _zoned(parsed: pl.Series, time_zone: str) -> pl.Series:
    zoned = parsed.dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
    return zoned.dt.convert_time_zone("UTC").rename("datetime")


def mits_datetimes(text: pl.Series) -> pl.Series | None:
    """MITS Pro's ``MM/DD/YYYY HH:MM:SS[.f]`` wall-clock text [UTC] decoded with numpy, or None unless every value
    has exactly that layout (same width, up to 6 fraction digits) and is a valid date and time.

    What polars' ``str.to_datetime(MITS_FORMAT)`` gives for such text, at a fraction of its cost (about 0.2 us a
    row, a third of the parse of a small Arbin file); anything else (blanks, other widths, 02/30, 24:00, leap
    seconds) returns None and is left to polars, so odd text still reads exactly as polars reads it.
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
        days = [_mm_dd_yyyy(bytes(raw[r, :10])).toordinal() - _EPOCH_ORDINAL for r in starts]
    except ValueError:  # 02/30, month 13, year 0
        return None
    us = np.repeat(np.asarray(days, dtype=np.int64) * 86_400_000_000, np.diff([*starts, n])) + time_us
    return pl.Series("datetime", us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))


def _mm_dd_yyyy(text: bytes) -> date:
    return date(int(text[6:]), int(text[:2]), int(text[3:5]))
