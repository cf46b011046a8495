"""Read + validate + diagnose the real ORNL module files, against a bare ``polars.read_csv`` of the same bytes.

    .venv/bin/python benchmarks/bench_read_diagnose.py [--repeat N]

Prints, per file, the best-of-N wall time of: the bare polars parse (the floor: no validation, no units, no
diagnosis), releaf's reader (parse + unit conversion + validation) and reader + diagnosis, and their ratios to
the floor. Peers (BEEP, cellpy) have no Bitrode VisuaLCN reader, so the floor is the only comparison here;
issue 3 adds the cross-peer ingest benchmark.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl
from _timing import best_of

from releaf.diagnostics import diagnose
from releaf.io import read
from releaf.parameters import LEAF_MODULE

FILES = sorted((Path(__file__).resolve().parents[1] / "data" / "ornl-leaf").glob("module123-*.csv"))



def bare(path: Path):
    # the header is on line 18; the trailer line of some files is dropped by truncate_ragged_lines + filter
    return pl.read_csv(path, skip_rows=17, truncate_ragged_lines=True, infer_schema_length=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"{'file':40s} {'rows':>6s} {'polars ms':>10s} {'read ms':>9s} {'x':>5s} {'read+diag ms':>13s} {'x':>5s}")
    for path in FILES:
        rows = read(path).data.height
        t_bare = best_of(lambda p=path: bare(p), args.repeat)
        t_read = best_of(lambda p=path: read(p), args.repeat)
        t_diag = best_of(lambda p=path: diagnose(read(p), LEAF_MODULE), args.repeat)
        print(f"{path.name:40s} {rows:6d} {t_bare * 1e3:10.1f} {t_read * 1e3:9.1f} {t_read / t_bare:5.1f} "
              f"{t_diag * 1e3:13.1f} {t_diag / t_bare:5.1f}")


if __name__ == "__main__":
    main()
