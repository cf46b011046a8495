"""Grade and pair a generated fleet at 1 M, 10 M and 31.2 M modules: wall time and peak memory per engine.

    python benchmarks/bench_fleet.py [--sizes 1M,10M,31.2M] [--engines local,dask] [--workers 2]
        [--data-dir /tmp] [--out-dir /tmp/releaf-fleet-bench] [--json-out results.json]
        [--design portable-2s] [--waive-lifetime-data REASON]

Each run is a fresh process, ``releaf fleet assemble DATASET --out DIR --json`` (``--scheduler local`` for the Dask
engine: a ``LocalCluster`` of ``--workers`` processes, one thread each, started inside that process), so the time
includes the interpreter, the imports, the cluster start, reading the Parquet files, grading, pairing and writing
the graded modules and the stations as Parquet. The policy is the packaged one (IEC 63338 on: modules of packs
without BMS history are recycled) unless ``--waive-lifetime-data`` is given; the design is ``portable-2s`` (its
stations are built from grade C, portable-station modules). Memory: the whole process tree (the CLI process and,
for Dask, its nanny and worker processes) sampled with psutil every 50 ms, the peak of the sum of RSS (shared pages
counted once per process, so an upper bound); and the largest single process's peak (``ru_maxrss`` of the
children).
``--compare`` checks that both engines wrote identical grades and stations.
The datasets are made by ``make_fleet.py`` in ``--data-dir`` (``releaf-fleet-<packs>``) when absent (a dataset
of an older generator must be regenerated: ``make_fleet.py --packs N`` replaces its files).
The goal (issue: the whole retired Leaf fleet): 31.2 M modules graded and paired in <= 60 s and <= 8 GB on 2 cores
with the local engine. The machine is shared: the load average is printed before every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
SIZES = {"1M": 20_834, "10M": 208_334, "31.2M": 650_000}  # packs of 48 modules


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_measured(cmd: list[str], interval_s: float = 0.05) -> tuple[float, int, subprocess.CompletedProcess]:
    """Run ``cmd``; wall time [s] and the peak RSS of its process tree [bytes] (sampled)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            try:
                peak = max(peak, _tree_rss(ps))
            except psutil.Error:
                pass
            stop.wait(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    return wall, peak, subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def ensure_dataset(data_dir: Path, packs: int) -> Path:
    path = data_dir / f"releaf-fleet-{packs}"
    if not any(path.glob("*.parquet")):
        subprocess.run([sys.executable, str(HERE / "make_fleet.py"), "--packs", str(packs), "--out", str(path)],
                       check=True)
    return path


def identical_outputs(a: Path, b: Path) -> dict[str, bool]:
    """Whether two output directories hold the same grades and the same stations (row order aside)."""
    import polars as pl

    def load(d: Path, sub: str, key: str) -> pl.DataFrame:
        frame = pl.scan_parquet(d / sub / "*.parquet")
        cats = [c for c, t in frame.collect_schema().items() if isinstance(t, (pl.Categorical, pl.Enum))]
        return frame.with_columns(pl.col(cats).cast(pl.String)).sort(key).collect()

    return {"grades": load(a, "grades", "module_id").equals(load(b, "grades", "module_id")),
            "stations": load(a, "stations", "module_a").equals(load(b, "stations", "module_a"))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1M,10M,31.2M", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--engines", default="local,dask")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/releaf-fleet-bench"))
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--design", default="portable-2s", help="station design (releaf fleet assemble --design)")
    parser.add_argument("--waive-lifetime-data", metavar="REASON",
                        help="passed to releaf fleet assemble: grade without IEC 63338's lifetime-data requirement")
    parser.add_argument("--compare", action="store_true",
                        help="after both engines ran a size, check that their grades and stations are identical "
                             "(reads both outputs: ~40 s and ~4 GB at 31.2 M)")
    args = parser.parse_args(argv)
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, python {platform.python_version()}")
    results = []
    for size in args.sizes.split(","):
        dataset = ensure_dataset(args.data_dir, SIZES[size])
        data_mb = sum(f.stat().st_size for f in dataset.glob("*.parquet")) / 1e6
        for engine in args.engines.split(","):
            cmd = [sys.executable, "-m", "releaf.app.cli", "fleet", "assemble", str(dataset),
                   "--out", str(args.out_dir / f"{size}-{engine}"), "--json", "--design", args.design]
            if args.waive_lifetime_data:
                cmd += ["--waive-lifetime-data", args.waive_lifetime_data]
            if engine == "dask":
                cmd += ["--scheduler", "local", "--workers", str(args.workers)]
            load = os.getloadavg()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            wall, peak, done = run_measured(cmd)
            maxrss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            if done.returncode != 0:
                print(f"{size} {engine}: failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
                continue
            s = json.loads(done.stdout)
            row = {"size": size, "engine": engine, "policy": s["policy"], "design": s["design"],
                   "modules": s["modules"], "dataset_MB": round(data_mb),
                   "wall_s": round(wall, 2), "engine_s": s["seconds"], "peak_tree_rss_MB": round(peak / 1e6),
                   # RUSAGE_CHILDREN is the max over every child so far: only meaningful when it grew
                   "largest_process_maxrss_MB": round(maxrss_kb / 1e3) if maxrss_kb > before else None,
                   "grades": s["grades"], "stations": s["stations"]["total"],
                   "series_capacity_Ah": s["series_capacity_Ah"]["total"],
                   "unassigned": s["unassigned"], "load_avg_before": [round(x, 2) for x in load]}
            results.append(row)
            print(f"{size:>6} {engine:>5}: {s['modules']:>11,} modules ({data_mb:,.0f} MB Parquet)  wall "
                  f"{wall:6.1f} s (engine {s['seconds']:6.1f} s)  peak RSS tree {peak / 1e9:5.2f} GB  "
                  f"stations {s['stations']['total']:,}  series {s['series_capacity_Ah']['total']:,.0f} Ah  "
                  f"load before {', '.join(f'{x:.2f}' for x in load)}", flush=True)
        if args.compare and {"local", "dask"} <= set(args.engines.split(",")):
            same = identical_outputs(args.out_dir / f"{size}-local", args.out_dir / f"{size}-dask")
            print(f"{size:>6}: local and dask outputs identical (grades, stations): {same}", flush=True)
            results.append({"size": size, "identical": same})
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
