"""Self-describing Parquet files of the canonical table: the data, where it came from, and what its columns mean.

The table is written with pyarrow, batch by batch (:class:`ParquetSink`, bounded memory for a streamed file), and
the file's key-value metadata carries what a reader of the file needs without releaf's reader at hand (as battdat
stores its schema beside the data):

======================== ===================================================================================
key                      value (JSON text)
======================== ===================================================================================
``releaf.source``        the :class:`~releaf.schema.SourceMeta` of the table: path, format, vendor, sha256,
                         channel, units as found, conversions, the vendor's header record
``releaf.columns``       per column: ``unit``, ``description`` (from :data:`releaf.schema.COLUMNS`, plus
                         ``group_voltage_V_k`` and ``temperature_C_k``), ``required``, ``monotonic``
``releaf.schema_version`` :data:`SCHEMA_VERSION`, the version of this layout
``releaf.version``       the releaf that wrote the file, when installed as a package
======================== ===================================================================================

:func:`read_parquet` reads such a file back into a :class:`~releaf.schema.TimeSeries` with its metadata.
pyarrow is imported only here, so ``import releaf.io`` does not pay for it.

References
----------
Apache Parquet format, ``FileMetaData.key_value_metadata``. battery-data-toolkit (battdat, Argonne): column schema
and provenance stored with the data.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl

from releaf.errors import InputFileError
from releaf.schema import COLUMNS, GROUP_VOLTAGE_PREFIX, TEMPERATURE_PREFIX, SourceMeta, TimeSeries, validate

SCHEMA_VERSION = "1"
SOURCE_KEY = "releaf.source"
COLUMNS_KEY = "releaf.columns"
SCHEMA_VERSION_KEY = "releaf.schema_version"
VERSION_KEY = "releaf.version"
_BY_NAME = {c.name: c for c in COLUMNS}


def describe_columns(names) -> dict[str, dict]:
    """Unit and meaning of each column of a canonical table, as stored under ``releaf.columns``.

    Parameters
    ----------
    names : the table's column names

    Returns
    -------
    ``{name: {"unit", "description", "required", "monotonic"}}``; a column releaf's schema does not define (a
    reader's ``vendor_*`` column) has unit None.
    """
    out = {}
    for name in names:
        if name in _BY_NAME:
            c = _BY_NAME[name]
            out[name] = {"unit": c.unit, "description": c.description, "required": c.required,
                         "monotonic": c.monotonic}
        elif name.startswith(GROUP_VOLTAGE_PREFIX) and name.removeprefix(GROUP_VOLTAGE_PREFIX).isdigit():
            k = name.removeprefix(GROUP_VOLTAGE_PREFIX)
            out[name] = {"unit": "V", "description": f"voltage of series group {k} (1-based) inside the module",
                         "required": False, "monotonic": False}
        elif name.startswith(TEMPERATURE_PREFIX) and name.removeprefix(TEMPERATURE_PREFIX).isdigit():
            k = name.removeprefix(TEMPERATURE_PREFIX)
            out[name] = {"unit": "degC", "description": f"temperature sensor {k} (1-based)", "required": False,
                         "monotonic": False}
        else:
            out[name] = {"unit": None, "description": "the reader's own column, kept for traceability",
                         "required": False, "monotonic": False}
    return out


def file_metadata(meta: SourceMeta, names) -> dict[str, str]:
    """The key-value metadata written with a table (see the module docstring)."""
    out = {
        SOURCE_KEY: json.dumps(dataclasses.asdict(meta), default=str),
        COLUMNS_KEY: json.dumps(describe_columns(names)),
        SCHEMA_VERSION_KEY: SCHEMA_VERSION,
    }
    version = _releaf_version()
    if version is not None:
        out[VERSION_KEY] = version
    return out


def _releaf_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("releaf")
    except PackageNotFoundError:
        return None


class ParquetSink:
    """A Parquet file written batch by batch; the first batch's metadata describes the file.

    Parameters
    ----------
    path : file to write (replaced if it exists)
    **options : passed to ``pyarrow.parquet.ParquetWriter`` (``compression`` ...)

    Examples
    --------
    >>> with ParquetSink("run.parquet") as sink:  # doctest: +SKIP
    ...     for batch in releaf.io.stream("run.csv"):
    ...         sink.write(batch)
    """

    def __init__(self, path, **options):
        self.path = Path(path)
        self.rows = 0
        self._options = options
        self._writer = None

    def write(self, batch: TimeSeries) -> None:
        """Append one canonical batch; every batch must have the first one's columns and types."""
        import pyarrow.parquet as pq

        table = batch.data.to_arrow()
        if self._writer is None:
            schema = table.schema.with_metadata({**(table.schema.metadata or {}),
                                                 **file_metadata(batch.meta, table.column_names)})
            self._writer = pq.ParquetWriter(str(self.path), schema, **self._options)
        self._writer.write_table(table)  # the file's schema metadata stays the first batch's
        self.rows += table.num_rows

    def close(self) -> None:
        """Finish the file (its footer holds the metadata); a sink that was given no batch writes nothing."""
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_parquet(ts: TimeSeries, path, **options) -> Path:
    """Write a whole canonical table as one self-describing Parquet file (see :class:`ParquetSink`)."""
    with ParquetSink(path, **options) as sink:
        sink.write(ts)
    return sink.path


def parquet_metadata(path) -> dict:
    """The releaf metadata of a Parquet file, decoded, without reading its data.

    Returns
    -------
    ``{"source": dict, "columns": dict, "schema_version": str, "version": str | None}``.

    Raises
    ------
    InputFileError
        not a Parquet file, or one written without releaf's metadata.
    """
    import pyarrow.parquet as pq

    try:
        raw = pq.read_schema(str(path)).metadata or {}
    except (OSError, ValueError) as err:  # pyarrow: ArrowInvalid (a ValueError) for a file that is not Parquet
        raise InputFileError(path, f"not a readable Parquet file: {err}") from None
    found = {k.decode(): v.decode() for k, v in raw.items()}
    if SOURCE_KEY not in found:
        raise InputFileError(path, f"a Parquet file without releaf's metadata (no {SOURCE_KEY!r} key)")
    return {"source": json.loads(found[SOURCE_KEY]), "columns": json.loads(found.get(COLUMNS_KEY, "{}")),
            "schema_version": found.get(SCHEMA_VERSION_KEY), "version": found.get(VERSION_KEY)}


def read_parquet(path) -> TimeSeries:
    """Read a Parquet file written by :class:`ParquetSink` back into a validated canonical table.

    Parameters
    ----------
    path : the ``.parquet`` file

    Returns
    -------
    TimeSeries whose ``meta`` is the :class:`~releaf.schema.SourceMeta` stored in the file (path, sha256 ... of
    the original source, not of the Parquet file).

    Raises
    ------
    InputFileError
        not a Parquet file, no releaf metadata, or a table that fails validation.
    """
    import pyarrow.parquet as pq

    stored = parquet_metadata(path)
    fields = {f.name for f in dataclasses.fields(SourceMeta)}
    source = {k: v for k, v in stored["source"].items() if k in fields}
    source["conversions"] = tuple(source.get("conversions", ()))
    data = pl.from_arrow(pq.read_table(str(path)).replace_schema_metadata(None))
    return validate(TimeSeries(data, SourceMeta(**source)))
