"""Readers, one module per source, behind one ``read(path)`` that detects the format by content.

Each reader module defines ``FORMATS`` (format name → reader function ``f(path) -> TimeSeries``) and
``sniff(head) -> format name | None`` (``head`` is a :class:`releaf.io.textfile.Head`: the file's first bytes and
their text). Detection asks the modules in ``READER_MODULES`` order (:func:`reader_modules`), most specific first,
and never looks at the file name.

What the readers share, each in one public module: :mod:`~releaf.io.textfile` (bytes, lines, fields and numbers
with line-exact errors), :mod:`~releaf.io.units` (the unit table and header splitter),
:mod:`~releaf.io.datetimes` (the wall-clock formats and their parser) and :mod:`~releaf.io.optional` (the rare
formats' libraries, imported only when such a file is read). Writers: :mod:`~releaf.io.parquet` (self-describing
Parquet) and :mod:`~releaf.io.export` (BDF, BatteryArchive).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from releaf.errors import InputFileError
from releaf.io import textfile
from releaf.schema import TimeSeries

READER_MODULES = (
    "bitrode", "arbin", "arbin_res", "arbin_excel", "maccor", "novonix", "pec", "neware", "biologic",
    "batteryarchive", "bdf",
)
# formats a sniffer may name that are not time series: why, and what to do instead
NOT_TIME_SERIES = {
    "arbin-metadata": "an Arbin test-record (metadata) file, not a time series: read the data file beside it; "
                      "its metadata is attached automatically",
}


def _load_modules():
    modules = []
    for name in READER_MODULES:
        try:
            modules.append(importlib.import_module(f"releaf.io.{name}"))
        except ModuleNotFoundError as err:
            if err.name != f"releaf.io.{name}":
                raise  # a reader whose own dependency is missing must say so, not vanish
    return modules


_LOADED = tuple(_load_modules())
READERS = {fmt: fn for m in _LOADED for fmt, fn in m.FORMATS.items()}
# formats that can also be read in bounded memory, batch by batch (module attribute STREAMERS)
STREAMERS = {fmt: fn for m in _LOADED for fmt, fn in getattr(m, "STREAMERS", {}).items()}
# formats whose reader can leave the wall-clock column out (module attribute WALL_CLOCK_OPTIONAL)
WALL_CLOCK_OPTIONAL = frozenset(f for m in _LOADED for f in getattr(m, "WALL_CLOCK_OPTIONAL", ()))


def reader_modules() -> tuple[ModuleType, ...]:
    """The reader modules in detection order (``READER_MODULES``), each with ``FORMATS`` and ``sniff(head)``."""
    return _LOADED


def detect(path) -> str:
    """Name of the file's format, judged by its content (never its name).

    Raises
    ------
    InputFileError
        for an empty, missing or unrecognised file.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "file not found")
    if path.is_dir():
        raise InputFileError(path, "is a directory, not a file")
    if path.stat().st_size == 0:
        raise InputFileError(path, "file is empty")
    try:
        head = textfile.head_of(path)
    except OSError as err:
        raise InputFileError(path, f"cannot read the file: {err.strerror or err}") from None
    if head.raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputFileError(path, "UTF-16 text: cycler exports are read as UTF-8/ASCII; convert it "
                                     "(iconv -f UTF-16 -t UTF-8) or export again as ASCII/UTF-8", line=1)
    for module in _LOADED:
        found = module.sniff(head)
        if found in NOT_TIME_SERIES:
            raise InputFileError(path, NOT_TIME_SERIES[found], line=1)
        if found:
            return found
    if head.is_binary:
        raise InputFileError(path, "binary content that no reader recognises; known formats: " + ", ".join(READERS))
    if not head.text.strip():
        raise InputFileError(path, "file is empty")
    first = head.first_line[:80]
    raise InputFileError(path, f"unrecognised format (first line {first!r}); known formats: {', '.join(READERS)}",
                           line=1)


def read(path, format: str | None = None, *, mapping=None, wall_clock: bool = True) -> TimeSeries:
    """Read a cycler export into the canonical, validated table.

    Parameters
    ----------
    path : file to read
    format : one of ``READERS``; detected from the content if omitted
    mapping : a YAML column mapping for a CSV no reader knows (see ``releaf.io.mapped``); overrides detection
    wall_clock : False lets readers in ``WALL_CLOCK_OPTIONAL`` skip decoding the wall-clock (``datetime``)
        column, for callers that only need the test time (the diagnosis); other readers keep it
    """
    if mapping is not None:
        from releaf.io.mapped import read_mapped

        return read_mapped(path, mapping)
    fmt = format or detect(path)
    if fmt not in READERS:
        raise InputFileError(path, f"unknown format {fmt!r}; known: {', '.join(READERS)}")
    try:
        if not wall_clock and fmt in WALL_CLOCK_OPTIONAL:
            return READERS[fmt](path, wall_clock=False)
        return READERS[fmt](path)
    except OSError as err:  # a file that vanished or became unreadable while it was read
        raise InputFileError(path, f"cannot read the file: {err.strerror or err}") from None


def stream(path, format: str | None = None, *, batch_rows: int = 1_000_000, mapping=None):
    """Read a file as validated canonical batches (bounded memory where the format supports it).

    Formats without a streaming reader are read whole and yielded as one batch.

    Yields
    ------
    TimeSeries batches in file order, each with the file's metadata.
    """
    if mapping is not None:
        yield read(path, mapping=mapping)
        return
    fmt = format or detect(path)
    if fmt in STREAMERS:
        batches = 0
        for batch in STREAMERS[fmt](path, batch_rows=batch_rows):
            batches += 1
            yield batch
        if not batches:  # a header without data rows: the same error as ``read`` gives
            yield read(path, fmt)
    else:
        yield read(path, fmt)
