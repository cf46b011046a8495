"""Write a long Arbin CSV for the ingest benchmark: the real TRI export's header and rows, repeated.

    .venv/bin/python benchmarks/make_long_arbin.py OUT.csv --rows 1000000

The rows of ``tests/fixtures/arbin/FastCharge_000025_CH8.csv`` (a real Arbin export) are tiled with time,
data point and cycle index continued, so the file has the real column set, number formatting and line endings
at any length. It is a benchmark input, not data: nothing is measured from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

SOURCE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "arbin" / "FastCharge_000025_CH8.csv"


def write_long_arbin(out: Path, rows: int) -> Path:
    base = pl.read_csv(SOURCE, infer_schema_length=0)
    n = base.height
    reps = -(-rows // n)
    period_s = float(base["Test_Time"].cast(pl.Float64).max()) + 10.0
    k = pl.int_range(0, n * reps, eager=True) // n
    tiled = pl.concat([base] * reps).with_columns(k.alias("_rep"))
    tiled = tiled.with_columns(
        pl.int_range(0, pl.len()).alias("Data_Point").cast(pl.String),
        (pl.col("Test_Time").cast(pl.Float64) + pl.col("_rep") * period_s).round(4).cast(pl.String),
        (pl.col("DateTime").cast(pl.Float64) + pl.col("_rep") * period_s).round(4).cast(pl.String),
        (pl.col("Cycle_Index").cast(pl.Float64) + pl.col("_rep")).cast(pl.Int64).cast(pl.String),
    ).drop("_rep").head(rows)
    tiled.write_csv(out, line_terminator="\r\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    path = write_long_arbin(args.out, args.rows)
    print(f"{path}: {args.rows} rows, {path.stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
