"""Per-step charge of releaf's integral against every real file's own capacity counter.

For every real cycler file of the shared data folder (``../shared/data/cycler-formats/**``) and the ORNL Leaf
files (``data/ornl-leaf/*.csv``, ``../shared/data/ornl-leaf/*``): read it with :func:`releaf.io.read`, integrate
the charge of every cycler step with :func:`releaf.diagnostics.capacity.cumulative_Ah` and compare it with the
file's counter (``vendor_capacity_Ah``) over the same span (:mod:`releaf.diagnostics.counters`). Prints per file:
steps compared, whether the table has ``step_time_s``, at how many steps the counter restarted (``u``: an unsigned
counter, magnitudes compared), the worst relative difference [%] over the steps whose counter is at least 100
resolutions and 1 % of the file's largest step, the worst absolute difference [Ah], the counter's resolution
(smallest non-zero increment) [Ah] and the steps within 0.1 % or the resolution: ``strict``, the counter's
resolution alone; ``w/ log``, plus what the logged samples cannot resolve (the logged current's rounding over the
step, the trapezoid's bound between samples, and at a step change the file does not place, the old current running
on until the new step's start and the switch's placement to the acquisition period plus the file's largest
step-start contradiction: :mod:`releaf.diagnostics.counters`).

Last run (2026-12-05, after ``step_change_bounds_Ah``), strict / w/ log: Arbin ``.res`` 82/102 / 102/102, BioLogic
``biol.mpr`` 17/21 / 21/21, BT-Lab CSV 8/11 / 11/11, Novonix 1/2 / 2/2, Neware CSV 30/31 / 31/31, PEC 0/1 / 1/1,
ORNL ``cell-cycling`` 30/32 / 32/32; every other file all steps strict (``benchmarks/README.md``).

    .venv/bin/python benchmarks/check_counters.py [--data DIR]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from releaf import io
from releaf.diagnostics.counters import step_charges

ROOT = Path(__file__).resolve().parents[1]
SKIP_SUFFIXES = {".txt", ".mpl", ""}


def files(shared: Path) -> list[Path]:
    found = [p for p in sorted((shared / "cycler-formats").rglob("*"))
             if p.is_file() and p.suffix not in SKIP_SUFFIXES and "Metadata" not in p.name
             and "metadata" not in p.name]
    found += sorted((ROOT / "data" / "ornl-leaf").glob("*.csv"))
    found += [p for p in sorted((shared / "ornl-leaf").glob("*")) if p.suffix in (".csv", ".lvm")]
    return found


def row(path: Path) -> str:
    name = f"{path.parent.name}/{path.name}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ts = io.read(path)
    except Exception as exc:  # noqa: BLE001 - a file releaf cannot read is a row of the table, not a stop
        return f"{name:58s} not read: {type(exc).__name__}: {str(exc)[:60]}"
    st = "yes" if "step_time_s" in ts.data.columns else "no"
    r = step_charges(ts)
    if r is None or r.first.size == 0:
        return f"{name:58s} {'-':>5s} {st:>4s}  no counter or no steps"
    big = (np.abs(r.counter_Ah) >= 100 * r.resolution_Ah) & (np.abs(r.counter_Ah) >= 0.01 * np.abs(r.counter_Ah).max())
    rel = (np.abs(r.difference_Ah[big]) / np.abs(r.counter_Ah[big])).max() * 100 if big.any() else float("nan")
    resets = f"{int(r.restarted.sum())}{'u' if r.unsigned else ''}"
    return (f"{name:58s} {r.first.size:5d} {st:>4s} {resets:>6s} {rel:9.3f} {np.abs(r.difference_Ah).max():11.2e} "
            f"{r.resolution_Ah:9.1e} {int(r.within_strict.sum()):5d}/{r.first.size} "
            f"{int(r.within.sum()):5d}/{r.first.size}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="the shared data folder")
    args = ap.parse_args()
    print(f"{'file':58s} {'steps':>5s} {'step':>4s} {'resets':>6s} {'worst_%':>9s} {'worst_Ah':>11s} "
          f"{'resol_Ah':>9s} {'strict':>7s} {'w/ log':>7s}")
    for path in files(args.data):
        print(row(path), flush=True)


if __name__ == "__main__":
    main()
