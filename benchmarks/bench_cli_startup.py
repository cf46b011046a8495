"""Whole-process cost of ``releaf read`` on a small file against a bare polars process reading the same file.

    .venv/bin/python benchmarks/bench_cli_startup.py [--repeat 15] [FILE]

Each round starts three fresh processes in turn: ``python -c "import polars; polars.read_csv(FILE)"`` (the floor:
interpreter start, polars import and the parse), ``releaf read FILE --json`` and ``releaf --version`` (the
command line's own start-up). Printed: best and median wall time of each and the ratios to the floor, best over
best and per round (a round shares the machine's load). Default file: the real Arbin export bundled as a test
fixture (26 kB, 248 rows). Goal (issue 9): ``releaf read`` of a small file within 3x the bare polars process.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "tests" / "fixtures" / "arbin" / "FastCharge_000025_CH8.csv"


def _wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    releaf = str(Path(sys.executable).with_name("releaf"))
    cmds = {
        "bare polars process": [sys.executable, "-c", f"import polars; polars.read_csv({str(args.file)!r})"],
        "releaf read --json": [releaf, "read", str(args.file), "--json"],
        "releaf --version": [releaf, "--version"],
    }
    for cmd in cmds.values():  # warm the file cache and the byte-code
        _wall(cmd)
    times = {name: [] for name in cmds}
    for _ in range(args.repeat):
        for name, cmd in cmds.items():
            times[name].append(_wall(cmd))
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, python {platform.python_version()}; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"file: {args.file} ({args.file.stat().st_size / 1e3:.0f} kB); {args.repeat} rounds")
    floor = times["bare polars process"]
    print(f"  {'process':24s} {'best s':>7s} {'median s':>9s} {'x bare (best)':>14s} "
          f"{'x bare per round min/med/max':>30s}")
    for name, ts in times.items():
        per_round = [t / f for t, f in zip(ts, floor, strict=True)]
        print(f"  {name:24s} {min(ts):7.3f} {statistics.median(ts):9.3f} {min(ts) / min(floor):14.2f} "
              f"{min(per_round):10.2f} / {statistics.median(per_round):.2f} / {max(per_round):.2f}")
    ratio = min(times["releaf read --json"]) / min(floor)
    print(f"  goal: releaf read within 3x the bare polars process -> {'met' if ratio <= 3 else 'NOT met'} "
          f"({ratio:.2f}x, best over best)")


if __name__ == "__main__":
    main()
