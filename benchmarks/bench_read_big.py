"""Whole-process cost of ``releaf read BIG.csv --json`` on a large Arbin CSV against a bare polars parse of it.

    .venv/bin/python benchmarks/bench_read_big.py [--rows 10000000] [--repeat 3] [--file BIG.csv]
        [--workdir /tmp/releaf-bench] [--parquet] [--src OTHER/src]

The file is made by ``make_long_arbin.py`` in ``--workdir`` unless ``--file`` is given (10 M rows = 1.16 GB;
it is kept for the next run). Each round starts, in turn, ``python -c "import polars as pl; pl.read_csv(FILE)"``
(the floor) and ``python -m releaf.app.cli read FILE --json`` (with ``--parquet``, also writing the Parquet file),
both under ``/usr/bin/time``: wall time, CPU time (user + system) and peak RSS of each process. Printed: each
round, the best and median of each, and the ratios releaf / floor (best over best, and per round min/max).
releaf is imported from this checkout's ``src`` (PYTHONPATH). Goal (issue 10, item 7): wall within 1.3x the
floor, peak RSS below it. ``--src`` runs releaf from another checkout's ``src`` instead (e.g. the code before a
change, extracted with ``git archive COMMIT src | tar -x -C /tmp/old``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _run(cmd: list[str], env: dict) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one process, from GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%e %U %S %M", *cmd], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        wall, user, sys_, rss_kb = out.read().split()[-4:]
    return float(wall), float(user) + float(sys_), int(rss_kb) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/releaf-bench"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--parquet", action="store_true", help="releaf also writes the Parquet file (--parquet)")
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="the releaf source tree to run")
    args = ap.parse_args()
    path = args.file
    if path is None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        path = args.workdir / f"arbin_{args.rows}.csv"
        if not path.exists():
            from make_long_arbin import write_long_arbin

            write_long_arbin(path, args.rows)
    env = {**os.environ, "PYTHONPATH": str(args.src.resolve())}
    releaf = [sys.executable, "-m", "releaf.app.cli", "read", str(path), "--json"]
    if args.parquet:
        releaf += ["--parquet", str(args.workdir / "bench_read_big.parquet")]
    cmds = {
        "bare polars.read_csv": [sys.executable, "-c", f"import polars as pl; pl.read_csv({str(path)!r})"],
        "releaf read --json": releaf,
    }
    for cmd in cmds.values():  # warm the page cache and the byte-code
        _run(cmd, env)
    res = {name: [] for name in cmds}
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, python {platform.python_version()}; "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"releaf from {args.src.resolve()}")
    print(f"file: {path} ({path.stat().st_size / 1e9:.2f} GB); {args.repeat} alternating rounds"
          + ("; releaf writes Parquet" if args.parquet else ""))
    for r in range(args.repeat):
        for name, cmd in cmds.items():
            res[name].append(_run(cmd, env))
        (fw, fc, fm), (rw, rc, rm) = res["bare polars.read_csv"][-1], res["releaf read --json"][-1]
        print(f"  round {r + 1}: bare {fw:.2f} s wall {fc:.2f} s CPU {fm:.0f} MB | releaf {rw:.2f} s wall "
              f"{rc:.2f} s CPU {rm:.0f} MB | x{rw / fw:.2f} wall x{rc / fc:.2f} CPU")
    print(f"  {'process':22s} {'wall best/med s':>16s} {'CPU best/med s':>15s} {'peak RSS max MB':>16s}")
    for name, xs in res.items():
        w, c, m = zip(*xs, strict=True)
        print(f"  {name:22s} {min(w):7.2f} /{statistics.median(w):6.2f} {min(c):7.2f} /{statistics.median(c):6.2f}"
              f" {max(m):16.0f}")
    floor, ours = res["bare polars.read_csv"], res["releaf read --json"]
    per_round = [o[0] / f[0] for o, f in zip(ours, floor, strict=True)]
    wall = min(o[0] for o in ours) / min(f[0] for f in floor)
    cpu = min(o[1] for o in ours) / min(f[1] for f in floor)
    rss = max(o[2] for o in ours) / max(f[2] for f in floor)
    print(f"  releaf / bare: wall x{wall:.2f} (per round {min(per_round):.2f}-{max(per_round):.2f}), "
          f"CPU x{cpu:.2f}, peak RSS x{rss:.2f}")
    print(f"  goal: wall within 1.3x and peak RSS below the bare parse -> "
          f"{'met' if wall <= 1.3 and rss < 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
