"""Self-describing Parquet (releaf.io.parquet): the table round-trips, and its source and column metadata travel in
the file's key-value metadata, also when written by ``releaf read FILE --parquet OUT``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from releaf.errors import InputFileError
from releaf.io import read, stream
from releaf.io.parquet import (
    COLUMNS_KEY,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    SOURCE_KEY,
    ParquetSink,
    parquet_metadata,
    read_parquet,
    write_parquet,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
ARBIN = FIXTURES / "arbin" / "FastCharge_000025_CH8.csv"


def test_round_trip_keeps_table_and_metadata(tmp_path):
    ts = read(ARBIN)
    out = write_parquet(ts, tmp_path / "arbin.parquet")
    back = read_parquet(out)
    assert back.data.equals(ts.data) and back.data.schema == ts.data.schema
    assert back.meta == ts.meta  # path, sha256, format, vendor, channel, units found, conversions, header
    assert back.meta.header["schedule_file_name"].endswith(".SDU") and back.meta.channel == "7"


def test_batches_make_one_file_with_the_first_batch_metadata(tmp_path):
    whole = read(ARBIN)
    with ParquetSink(tmp_path / "batched.parquet") as sink:
        for batch in stream(ARBIN, batch_rows=50):
            sink.write(batch)
    assert sink.rows == whole.data.height
    assert pq.ParquetFile(sink.path).metadata.num_row_groups > 1
    assert read_parquet(sink.path).data.equals(whole.data)


def test_column_units_and_descriptions(tmp_path):
    ts = read(ARBIN)
    data = ts.data.with_columns(pl.col("voltage_V").alias("group_voltage_V_2"),
                                pl.col("temperature_C").alias("temperature_C_1"), pl.lit("x").alias("vendor_state"))
    meta = parquet_metadata(write_parquet(ts.with_data(data), tmp_path / "cols.parquet"))
    columns = meta["columns"]
    assert list(columns) == data.columns
    assert columns["current_A"] == {"unit": "A", "description": "current, positive = charge", "required": True,
                                    "monotonic": False}
    assert columns["test_time_s"]["monotonic"] and columns["datetime"]["unit"] == "UTC"
    group = columns["group_voltage_V_2"]
    assert group["unit"] == "V" and "series group 2" in group["description"]
    assert columns["temperature_C_1"]["unit"] == "degC" and columns["vendor_state"]["unit"] is None
    assert meta["schema_version"] == SCHEMA_VERSION


def test_a_parquet_file_without_releaf_metadata_is_refused(tmp_path):
    plain = tmp_path / "plain.parquet"
    read(ARBIN).data.write_parquet(plain)
    with pytest.raises(InputFileError, match="without releaf's metadata"):
        read_parquet(plain)
    with pytest.raises(InputFileError, match="not a readable Parquet file"):
        read_parquet(ARBIN)


def test_cli_read_parquet_writes_the_metadata(tmp_path):
    from releaf.app.cli import app

    out = tmp_path / "out.parquet"
    result = CliRunner().invoke(app, ["read", str(ARBIN), "--parquet", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["parquet"] == str(out)
    metadata = pq.read_schema(out).metadata
    source = json.loads(metadata[SOURCE_KEY.encode()])
    expected = dataclasses.asdict(read(ARBIN).meta)
    assert source == {**expected, "conversions": list(expected["conversions"])}
    assert source["sha256"] and source["format"] == "arbin-csv" and source["vendor"] == "Arbin"
    columns = json.loads(metadata[COLUMNS_KEY.encode()])
    assert columns["voltage_V"]["unit"] == "V" and columns["vendor_capacity_Ah"]["unit"] == "Ah"
    assert metadata[SCHEMA_VERSION_KEY.encode()] == SCHEMA_VERSION.encode()
    assert pl.read_parquet(out).equals(read(ARBIN).data)
