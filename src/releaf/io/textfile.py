"""Shared plumbing of the readers: bytes in, checked polars columns out (file head for sniffing, sha256, lines,
field counts, numbers with line-exact errors).

Hand-written because the vendor files need line-exact errors (which line, which column) that a bare
``polars.read_csv`` failure does not give; the parsing itself is still done by polars.
"""

from __future__ import annotations

import hashlib
import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from releaf import filedigest
from releaf.errors import InputFileError

SNIFF_BYTES = 64 * 1024
# A file up to IN_MEMORY_BYTES is read into memory once, and the hash, the separator count and the parser share the
# bytes: for a small file, a second read and a hashing thread cost more than the hash itself.
IN_MEMORY_BYTES = filedigest.IN_MEMORY_BYTES


def sha256_of(path: Path) -> str:
    """The file's sha256: the one a command started early (:mod:`releaf.filedigest`), or computed here."""
    early = filedigest.claim(path, any_count=True)
    if early is not None:
        return early.result()[0]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def count_byte(data: bytes, byte: bytes) -> int:
    """How many times one byte (e.g. ``b","``) occurs in ``data`` (numpy: several times faster than
    ``bytes.count``)."""
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == ord(byte)))


class _Digest:
    def __init__(self, worker=None):
        self.value: str | None = None
        self.separators: int | None = None  # count of the separator byte, when asked for
        self._worker = worker

    def ready(self) -> bool:
        """Whether the hash has finished, so the end of the ``with`` block will not wait for it."""
        return self.value is not None or (self._worker is not None and self._worker.done())

    def hexdigest(self) -> str:
        if self.value is None:
            raise RuntimeError("digest read before hashing finished")
        return self.value


@contextmanager
def hashing(path: Path, count: bytes | None = None):
    """Compute the file's sha256 on a worker thread during the ``with`` block (hashlib releases the GIL).

    ``digest.hexdigest()`` is ready after the block; with ``count`` (one byte, e.g. ``b","``), so is
    ``digest.separators``, the number of times it occurs in the file (a cheap check of the field counts). A hash
    that a command started before it imported the readers (:func:`releaf.filedigest.start`) is taken over.
    """
    worker = filedigest.claim(path, count) or filedigest.FileDigest(path, count)
    digest = _Digest(worker)
    try:
        yield digest
    finally:
        digest.value, digest.separators = worker.result()


def read_bytes(path: Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a directory, not a file") from None
    if not data.strip():
        raise InputFileError(path, "file is empty")
    return data


@dataclass(frozen=True)
class Head:
    """What a sniffer sees of a file: its path, its first bytes, and those bytes as text."""

    path: Path
    raw: bytes
    text: str

    @property
    def first_line(self) -> str:
        end = self.text.find("\n")  # not split: that would copy the rest of the head on every access
        return (self.text if end < 0 else self.text[:end]).rstrip("\r")

    @property
    def is_binary(self) -> bool:
        return b"\x00" in self.raw[:4096]


def head_of(path: Path, n: int = SNIFF_BYTES) -> Head:
    """The :class:`Head` of a file (text: UTF-8 with BOM stripped, else latin-1)."""
    with open(path, "rb") as f:
        return head_of_bytes(path, f.read(n), n)


def head_of_bytes(path: Path, data: bytes, n: int = SNIFF_BYTES) -> Head:
    """The :class:`Head` of a file whose bytes are already in memory (what :func:`head_of` would read)."""
    raw = data[:n]
    return Head(Path(path), raw, head_text(path, n, raw=raw))


def head_text(path: Path, n: int = SNIFF_BYTES, *, raw: bytes | None = None) -> str:
    """The first bytes of a file as text (UTF-8 with BOM stripped, else latin-1), for format detection."""
    if raw is None:
        with open(path, "rb") as f:
            raw = f.read(n)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_lines(data: bytes) -> list[bytes]:
    """Lines without their LF/CRLF endings; a missing final newline is fine."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]


def check_field_counts(path, lines: list[bytes], first_line_no: int, expected: int) -> None:
    """Every data line must have ``expected`` comma-separated fields; name the first that does not."""
    for i, ln in enumerate(lines):
        n = ln.count(b",") + 1
        if n != expected:
            hint = " (file truncated?)" if i == len(lines) - 1 and n < expected else ""
            raise InputFileError(path, f"{n} fields where {expected} were expected{hint}", line=first_line_no + i)


def frame_from_lines(path, lines: list[bytes], names: list[str]) -> pl.DataFrame:
    """All-string DataFrame of comma-separated ``lines`` with the given column names."""
    body = b"\n".join(lines)
    try:
        return pl.read_csv(io.BytesIO(body), has_header=False, new_columns=names, infer_schema=False,
                           quote_char=None, truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as e:
        raise InputFileError(path, f"could not be parsed as CSV: {str(e).splitlines()[0]}") from None


def floats(path, text: pl.Series, *, source_name: str, line_of_row, scale: float = 1.0,
           allow_empty: bool = False) -> pl.Series:
    """A text column as float (times ``scale``); a non-number names its line (``line_of_row(i)``) and the
    column as the file calls it."""
    raw = text.str.strip_chars()
    values = raw.cast(pl.Float64, strict=False)
    bad = values.is_null() & raw.is_not_null() & (raw != "")
    if not allow_empty:
        bad = bad | raw.is_null() | (raw == "")
    if bad.any():
        i = int(bad.arg_true()[0])
        found = raw[i]
        what = "an empty field" if found in (None, "") else f"text {found!r}"
        raise InputFileError(path, f"{what} where a number was expected", line=line_of_row(i), column=source_name)
    return values * scale if scale != 1.0 else values


def to_float(path, df: pl.DataFrame, column: str, *, source_name: str, first_line_no: int,
             scale: float = 1.0, allow_empty: bool = False) -> pl.Series:
    """Parse one text column of ``df`` as float; lines are counted from ``first_line_no`` (see :func:`floats`)."""
    return floats(path, df[column], source_name=source_name, line_of_row=lambda i: first_line_no + i, scale=scale,
                  allow_empty=allow_empty)
