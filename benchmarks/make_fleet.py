"""Write a GENERATED fleet dataset for ``releaf fleet`` and ``bench_fleet.py``: one row of grading features per
module, a directory of Parquet files of ~1 M modules each (``releaf.sim.fleet_table`` documents the columns and the
fleet model).

    python benchmarks/make_fleet.py [--packs 650000] [--out /tmp/releaf-fleet-<packs>] [--seed 2026]

The default is the >650,000 Leafs sold: 31.2 M modules (48 per pack).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from releaf.sim.fleet_table import DEFAULT_PACKS_PER_FILE, LEAF_PACKS_SOLD, MODULES_PER_PACK, write_fleet


def default_path(n_packs: int) -> Path:
    return Path(f"/tmp/releaf-fleet-{n_packs}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packs", type=int, default=LEAF_PACKS_SOLD, help="packs of 48 modules")
    parser.add_argument("--out", type=Path, help="output directory (default /tmp/releaf-fleet-<packs>)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--packs-per-file", type=int, default=DEFAULT_PACKS_PER_FILE)
    args = parser.parse_args(argv)
    out = args.out or default_path(args.packs)
    t0 = time.perf_counter()
    files = write_fleet(out, args.packs, seed=args.seed, packs_per_file=args.packs_per_file)
    size = sum(f.stat().st_size for f in files)
    print(f"{args.packs * MODULES_PER_PACK:,} modules ({args.packs:,} packs) in {len(files)} files, "
          f"{size / 1e6:,.0f} MB, {time.perf_counter() - t0:.1f} s: {out}")


if __name__ == "__main__":
    main()
