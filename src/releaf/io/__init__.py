"""Readers, one module per source, behind one ``read(path)`` that detects the format by content."""

from __future__ import annotations

from pathlib import Path

from releaf.errors import ReleafInputError
from releaf.io import _text, arbin, bitrode
from releaf.schema import TimeSeries

READERS = {
    "bitrode-cell": bitrode.read_bitrode,
    "bitrode-module": bitrode.read_bitrode,
    "arbin-csv": arbin.read_arbin_csv,
}
SNIFFERS = (bitrode.sniff, arbin.sniff)


def detect(path) -> str:
    """Name of the file's format, judged by its content (never its name).

    Raises
    ------
    ReleafInputError
        for an empty, missing or unrecognised file.
    """
    path = Path(path)
    if not path.exists():
        raise ReleafInputError(path, "file not found")
    if path.is_dir():
        raise ReleafInputError(path, "is a directory, not a file")
    if path.stat().st_size == 0:
        raise ReleafInputError(path, "file is empty")
    head = _text.head_text(path)
    if "\x00" in head[:4096]:
        raise ReleafInputError(path, "binary content where a text export was expected; known formats: "
                                     + ", ".join(READERS))
    if not head.strip():
        raise ReleafInputError(path, "file is empty")
    for sniff in SNIFFERS:
        found = sniff(head)
        if found == "arbin-metadata":
            raise ReleafInputError(path, "an Arbin test-record (metadata) file, not a time series: read the data "
                                         "file beside it; its metadata is attached automatically", line=1)
        if found:
            return found
    first = head.splitlines()[0][:80] if head.splitlines() else ""
    raise ReleafInputError(path, f"unrecognised format (first line {first!r}); known formats: {', '.join(READERS)}",
                           line=1)


def read(path, format: str | None = None) -> TimeSeries:
    """Read a cycler export into the canonical, validated table.

    Parameters
    ----------
    path : file to read
    format : one of ``READERS``; detected from the content if omitted
    """
    fmt = format or detect(path)
    if fmt not in READERS:
        raise ReleafInputError(path, f"unknown format {fmt!r}; known: {', '.join(READERS)}")
    return READERS[fmt](path)
