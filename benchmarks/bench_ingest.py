"""Ingest benchmark: file -> canonical table by releaf, BEEP and cellpy, against a bare ``polars.read_csv`` floor.

    .venv/bin/python benchmarks/bench_ingest.py [--quick] [--files F ...] [--repeat N] [--json-out OUT.json]
                                               [--peers-python /tmp/peers/bin/python] [--workdir /tmp/releaf-bench]

The files: every real export under ``../shared/data/cycler-formats/`` (sidecars such as ``*_Metadata.csv`` and
``.mpl`` skipped), the four ORNL module files in ``data/ornl-leaf/``, and two long Arbin CSVs generated with
``make_long_arbin.write_long_arbin`` in ``--workdir``: 1,000,000 rows, and 10,000,000 rows (>= 1 GB; skipped with
``--quick``). Generated files are reused when their recorded size still matches.

Every measurement (tool x file) runs in its own fresh process (``_peer_worker.py``), so time and peak RSS are per
measurement: releaf and the polars floor with this interpreter, BEEP and cellpy with ``--peers-python`` (a separate
venv, so their pandas/numpy pins never meet releaf's). Only the parse-to-table call is timed, best of ``--repeat``
(1 for the >= 1 GB file); import time is reported separately. What each tool does:

- polars: ``pl.read_csv(path, **opts)``, the floor: no units, no validation. ``opts`` are the minimal ones the
  layout needs (separator, the header line as ``skip_rows``, ``quote_char=None`` for Novonix' quoted lines) plus,
  only where the default 100-row type inference fails on the file, ``infer_schema_length=None``; the options used
  are printed. Binary formats have no floor.
- releaf: ``releaf.io.read(path)`` (detect + parse + units + validate). On the >= 1 GB file also streaming:
  iterate ``releaf.io.arbin.iter_arbin_csv`` batches (1,000,000 and 100,000 rows), counting rows and summing
  current, never holding the table; its peak RSS is compared with the whole-file read and the file size.
- BEEP: ``beep.structure.<module>.<Vendor>Datapath.from_file(path)`` (its ``raw_data`` is the table).
- cellpy: ``cellpy.get(path, instrument=..., auto_summary=False, refuse_copying=True)`` (``.data.raw``): no step
  table or summary, no copy to a temp dir, i.e. cellpy's cheapest path from file to raw table.

A peer without a reader for a format is reported as "no reader"; a peer whose reader fails on the file as
"cannot read (its error)". Rows per tool are printed where they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "_peer_worker.py"
SHARED_FORMATS = REPO.parent / "shared" / "data" / "cycler-formats"
ORNL = REPO / "data" / "ornl-leaf"
PEERS_PYTHON = "/tmp/peers/bin/python"
INSTALL_HINT = "python -m venv /tmp/peers && /tmp/peers/bin/pip install beep cellpy psutil polars"
LONG_ROWS, BIG_ROWS, BIG_MIN_BYTES = 1_000_000, 10_000_000, 1_000_000_000
STREAM_BATCHES = {"releaf-stream-1M": 1_000_000, "releaf-stream-100k": 100_000}  # label -> iter_arbin_csv batch_rows
PROBE_MAX_BYTES = 200_000_000  # larger files get their polars options without a trial parse in this process
SIDECARS = ("_metadata.csv",)
SKIP_SUFFIXES = (".mpl", ".txt", ".md")  # settings/log sidecars, SOURCE/LICENSE notes

# -- how each tool is called, by releaf's format name ----------------------------------------------------------------

# polars floor: (separator, a token of the header line or None for line 1, extra options)
FLOOR = {
    "arbin-csv": (",", None, {}),
    "maccor": ("\t", "Rec#", {}),
    "novonix": (",", "Cycle Number", {"quote_char": None}),  # every line is one quoted field: split it unquoted
    "biologic-csv": (";", None, {}),
    "biologic-mpt": ("\t", "mode\t", {"encoding": "utf8-lossy"}),
    "neware-csv": (",", None, {}),
    "pec": (",", "Total Time", {}),
    "bdf-csv": (",", None, {}),
    "batteryarchive-csv": (",", None, {}),
    "bitrode-cell": (",", None, {}),
    "bitrode-module": (",", "Total Time", {}),
}
BINARY = {"biologic-mpr", "neware-nda", "arbin-res", "arbin-excel"}

BEEP = {
    "arbin-csv": ("arbin", "ArbinDatapath"),
    "maccor": ("maccor", "MaccorDatapath"),
    "novonix": ("novonix", "NovonixDatapath"),
    "biologic-csv": ("biologic", "BiologicDatapath"),
    "biologic-mpt": ("biologic", "BiologicDatapath"),
    "neware-csv": ("neware", "NewareDatapath"),
    "batteryarchive-csv": ("battery_archive", "BatteryArchiveDatapath"),
}
BEEP_NONE = {"biologic-mpr": "BiologicDatapath reads BioLogic text exports (.csv/.txt), not binary .mpr"}

CELLPY = {
    "arbin-csv": {"instrument": "arbin_sql_csv"},
    "arbin-res": {"instrument": "arbin_res"},
    "arbin-excel": {"instrument": "arbin_sql_xlsx"},
    "maccor": {"instrument": "maccor_txt", "model": "one"},  # + skiprows = header line (below)
    "neware-csv": {"instrument": "neware_txt", "model": "one"},
    "neware-nda": {"instrument": "neware_nda"},
    "pec": {"instrument": "pec_csv"},
    "biologic-mpr": {"instrument": "biologics_mpr"},
    "bdf-csv": {"instrument": "batmo_bdf"},
}


@dataclass
class Case:
    path: Path
    format: str
    releaf_reads: bool
    size_MB: float
    big: bool = False
    results: dict = field(default_factory=dict)  # tool -> worker result or {"skip": reason}


# -- machine, files --------------------------------------------------------------------------------------------------

def machine() -> dict:
    info = {"cpus": os.cpu_count(), "cpu_model": platform.processor() or "?", "ram_GB": None,
            "python": platform.python_version(), "polars": pl.__version__, "platform": platform.platform()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_GB"] = round(int(line.split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    try:
        info["load_avg"] = os.getloadavg()
    except OSError:
        pass
    return info


def peer_versions(python: str) -> dict:
    code = ("import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
            "('beep', 'cellpy', 'pandas', 'numpy', 'polars')}))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError) as err:
        return {"error": str(err)[:200]}


def real_files() -> list[Path]:
    files = []
    for p in sorted(SHARED_FORMATS.rglob("*")):
        name = p.name.lower()
        if not p.is_file() or name.endswith(SIDECARS) or name.endswith(SKIP_SUFFIXES) or name.startswith(
                ("source", "license", "readme")):
            continue
        files.append(p)
    return files + sorted(ORNL.glob("module123-*.csv"))


def generated(workdir: Path, rows: int, min_bytes: int = 0) -> Path:
    """A long Arbin CSV of ``rows`` rows in ``workdir`` (made once by make_long_arbin; reused if intact)."""
    out = workdir / f"arbin_long_{rows}.csv"
    stamp = out.with_suffix(".json")
    if out.exists() and stamp.exists():
        rec = json.loads(stamp.read_text())
        if rec.get("rows") == rows and rec.get("bytes") == out.stat().st_size and out.stat().st_size >= min_bytes:
            return out
    need = rows * 130 * 2  # the file plus make_long_arbin's working room, generously
    free = shutil.disk_usage(workdir).free
    if free < need:
        raise SystemExit(f"not enough space in {workdir}: {free / 1e9:.1f} GB free, ~{need / 1e9:.1f} GB needed")
    print(f"generating {out} ({rows:,} rows) ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, str(HERE / "make_long_arbin.py"), str(out), "--rows", str(rows)], check=True,
                   stdout=sys.stderr)
    size = out.stat().st_size
    if size < min_bytes:
        raise SystemExit(f"{out} is {size / 1e9:.2f} GB, less than {min_bytes / 1e9:.2f} GB: raise --big-rows")
    stamp.write_text(json.dumps({"rows": rows, "bytes": size}))
    return out


def classify(path: Path) -> tuple[str, bool]:
    """releaf's format name (and True), or a content-based guess (and False) when releaf cannot read it."""
    import releaf.io

    try:
        return releaf.io.detect(path), True
    except Exception:  # noqa: BLE001 - a file releaf cannot read is still benchmarked for the peers
        head = path.open("rb").read(64)
        if b"Standard Jet DB" in head:
            return "arbin-res", False
        if head.startswith(b"BIO-LOGIC MODULAR FILE"):
            return "biologic-mpr", False
        if head.startswith(b"PK\x03\x04") and path.suffix.lower() in (".ndax", ".nda"):
            return "neware-nda", False
        return "unknown", False


def header_line(path: Path, token: str | None, limit: int = 500) -> int | None:
    """0-based index of the first line containing ``token`` (0 when token is None), within ``limit`` lines."""
    if token is None:
        return 0
    with path.open("rb") as f:
        for k, line in enumerate(f):
            if k >= limit:
                break
            if token.encode() in line:
                return k
    return None


def floor_options(path: Path, fmt: str) -> dict | str:
    """Minimal ``pl.read_csv`` options for the file, or the reason there is no floor."""
    if fmt in BINARY or fmt not in FLOOR:
        return "binary" if fmt in BINARY else "no plain-CSV layout"
    sep, token, extra = FLOOR[fmt]
    skip = header_line(path, token)
    if skip is None:
        return f"header line ({token!r}) not found"
    opts = dict(extra)
    if sep != ",":
        opts["separator"] = sep
    if skip:
        opts["skip_rows"] = skip
    if fmt == "bitrode-cell" and b"Time(s)" not in path.open("rb").readline():
        opts["has_header"] = False
    if path.stat().st_size > PROBE_MAX_BYTES:
        return opts
    for more in ({}, {"infer_schema_length": None}, {"infer_schema_length": None, "truncate_ragged_lines": True}):
        try:
            pl.read_csv(path, **opts, **more)
            return {**opts, **more}
        except pl.exceptions.PolarsError as err:
            last = str(err).splitlines()[0]
    return f"polars cannot parse it ({last[:80]})"


# -- running the measurements ----------------------------------------------------------------------------------------

def run_worker(python: str, tool: str, path: Path, repeat: int, opts: dict, cwd: Path, timeout: float) -> dict:
    cmd = [python, str(WORKER), tool, str(path), "--repeat", str(repeat), "--opts", json.dumps(opts)]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    except subprocess.TimeoutExpired:
        return {"ok": False, "stage": "timeout", "error": f"no result within {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT_JSON "):
            result = json.loads(line[len("RESULT_JSON "):])
            result["process_wall_s"] = wall
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
    return {"ok": False, "stage": "crash", "error": f"worker exit {proc.returncode}: {tail[0][:200]}",
            "process_wall_s": wall}


def plan_tools(case: Case, peers_ok: bool) -> dict[str, tuple[str, dict] | str]:
    """tool -> (tool kind, opts) to run, or the reason it is not run."""
    plan: dict[str, tuple[str, dict] | str] = {}
    floor = floor_options(case.path, case.format)
    plan["polars"] = ("polars", {"read_csv": floor}) if isinstance(floor, dict) else f"n/a ({floor})"
    plan["releaf"] = ("releaf", {}) if case.releaf_reads else "cannot read (no releaf reader detects it)"
    if case.big and case.format == "arbin-csv":
        for label, batch_rows in STREAM_BATCHES.items():
            plan[label] = ("releaf-stream", {"batch_rows": batch_rows})
    if not peers_ok:
        plan["beep"] = plan["cellpy"] = "peers not installed"
        return plan
    if case.format in BEEP:
        module, cls = BEEP[case.format]
        plan["beep"] = ("beep", {"module": module, "class": cls})
    else:
        plan["beep"] = "no reader (" + BEEP_NONE.get(case.format, "no Datapath for this format in beep.structure") + ")"
    if case.format in CELLPY:
        opts = json.loads(json.dumps(CELLPY[case.format]))
        if case.format == "maccor":  # cellpy's Maccor models expect 3 or 12 preamble lines; these files have 1
            opts["kwargs"] = {"skiprows": header_line(case.path, "Rec#") or 0}
        plan["cellpy"] = ("cellpy", opts)
    else:
        plan["cellpy"] = "no reader (no loader for this format in cellpy.readers.instruments)"
    return plan


def measure(case: Case, args, peers_ok: bool, cwd: Path) -> None:
    repeat = 1 if case.big else args.repeat
    for tool, how in plan_tools(case, peers_ok).items():
        if isinstance(how, str):
            case.results[tool] = {"ok": False, "skip": how}
            continue
        kind, opts = how
        python = args.peers_python if kind in ("beep", "cellpy") else sys.executable
        print(f"  {case.path.name}: {tool} ...", file=sys.stderr, flush=True)
        case.results[tool] = run_worker(python, kind, case.path, repeat, opts, cwd, args.timeout)


# -- output ----------------------------------------------------------------------------------------------------------

def _fmt_ms(r: dict) -> str:
    if r.get("ok"):
        s = r["best_s"] * 1e3
        return f"{s:.0f}" if s >= 100 else f"{s:.1f}"
    return "n/a" if r.get("skip", "").startswith("n/a") else "-"


def _ratio(a: dict, b: dict) -> str:
    if a.get("ok") and b.get("ok") and b["best_s"] > 0:
        return f"{a['best_s'] / b['best_s']:.2f}"
    return "-"


def print_table(cases: list[Case]) -> list[str]:
    tools = ("polars", "releaf", "beep", "cellpy")
    head1 = f"{'':44s} {'':18s} {'':>10s} {'':>8s}" + "".join(f" | {t:^21s}" for t in tools) + " |  ratios (time)"
    head2 = (f"{'file':44s} {'format':18s} {'rows':>10s} {'size MB':>8s}"
             + "".join(f" | {'ms':>7s} {'MB/s':>6s} {'RSS':>6s}" for _ in tools)
             + f" | {'rl/pl':>6s} {'BEEP/rl':>7s} {'cp/rl':>6s}")
    print(head1)
    print(head2)
    print("-" * len(head2))
    notes: list[str] = []
    for c in cases:
        r = c.results
        rows = next((r[t]["rows"] for t in ("releaf", "polars", "beep", "cellpy") if r.get(t, {}).get("ok")), None)
        line = f"{c.path.name[:44]:44s} {c.format[:18]:18s} {rows if rows is not None else '-':>10} {c.size_MB:8.2f}"
        for t in tools:
            x = r.get(t, {})
            mbs = f"{c.size_MB / x['best_s']:.0f}" if x.get("ok") and x["best_s"] > 0 else "-"
            rss = f"{x['peak_rss_MB']:.0f}" if x.get("ok") else "-"
            line += f" | {_fmt_ms(x):>7s} {mbs:>6s} {rss:>6s}"
        line += (f" | {_ratio(r['releaf'], r['polars']):>6s} "
                 f"{_ratio(r['beep'], r['releaf']):>7s} {_ratio(r['cellpy'], r['releaf']):>6s}")
        print(line)
        counts = {t: r[t]["rows"] for t in tools if r.get(t, {}).get("ok")}
        if len(set(counts.values())) > 1:
            notes.append(f"{c.path.name}: rows differ: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
        for t in tools:
            x = r.get(t, {})
            if x.get("skip"):
                if not x["skip"].startswith("n/a (binary"):
                    notes.append(f"{c.path.name}: {t}: {x['skip']}")
            elif not x.get("ok"):
                notes.append(f"{c.path.name}: {t}: cannot read ({x.get('error')})")
    return notes


def print_big(cases: list[Case]) -> None:
    for c in cases:
        if not c.big:
            continue
        r = c.results
        print(f"\nLarge file {c.path.name}: {c.size_MB:.0f} MB")
        for t in ("polars", "releaf", *STREAM_BATCHES, "beep", "cellpy"):
            x = r.get(t, {})
            if x.get("ok"):
                print(f"  {t:18s} {x['best_s']:7.2f} s {c.size_MB / x['best_s']:6.0f} MB/s  peak RSS "
                      f"{x['peak_rss_MB']:6.0f} MB ({x['peak_rss_MB'] / c.size_MB:.2f} x file; anonymous "
                      f"{x.get('peak_anon_MB', 0):.0f} MB), rows {x['rows']:,}")
            else:
                print(f"  {t:18s} {x.get('skip') or 'cannot read (' + str(x.get('error')) + ')'}")
        w = r.get("releaf", {})
        for t in STREAM_BATCHES:
            s = r.get(t, {})
            if s.get("ok") and w.get("ok"):
                print(f"  {t}: peak RSS {s['peak_rss_MB'] / w['peak_rss_MB']:.2f} x the whole-file read, "
                      f"{s['peak_rss_MB'] / c.size_MB:.2f} x the file size")


def print_summary(cases: list[Case]) -> None:
    def collect(tool, key):
        return [c.results[tool][key] for c in cases if c.results.get(tool, {}).get("ok") and key in c.results[tool]]

    print("\nImport time (s, per fresh process; not in the timings above) and RSS after import (MB):")
    for t in ("polars", "releaf", "beep", "cellpy"):
        imp, rss = collect(t, "import_s"), collect(t, "rss_after_import_MB")
        if imp:
            print(f"  {t:7s} import {min(imp):.2f}-{max(imp):.2f} s, RSS after import {min(rss):.0f}-{max(rss):.0f} MB")
    ratios = {"releaf/polars": [], "BEEP/releaf": [], "cellpy/releaf": []}
    for c in cases:
        r = c.results
        for key, (a, b) in {"releaf/polars": ("releaf", "polars"), "BEEP/releaf": ("beep", "releaf"),
                            "cellpy/releaf": ("cellpy", "releaf")}.items():
            if r.get(a, {}).get("ok") and r.get(b, {}).get("ok"):
                ratios[key].append((r[a]["best_s"] / r[b]["best_s"], c.path.name))
    print("\nRatios of best times over the files where both tools read the file:")
    for key, vals in ratios.items():
        if vals:
            lo, hi = min(vals), max(vals)
            print(f"  {key:14s} n={len(vals):2d}  min {lo[0]:.2f} ({lo[1]})  max {hi[0]:.2f} ({hi[1]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the >= 1 GB file")
    parser.add_argument("--files", nargs="+", type=Path, help="only these files (no generated ones)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (1 for the >= 1 GB file)")
    parser.add_argument("--peers-python", default=PEERS_PYTHON)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/releaf-bench"))
    parser.add_argument("--long-rows", type=int, default=LONG_ROWS)
    parser.add_argument("--big-rows", type=int, default=BIG_ROWS)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per measurement")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    cwd = args.workdir / "cwd"  # workers' working directory: peers' scratch and log files, private input copies
    shutil.rmtree(cwd, ignore_errors=True)
    cwd.mkdir()
    mach = machine()
    print(f"machine: {mach['cpus']} CPUs, {mach['cpu_model']}, {mach['ram_GB']} GB RAM; {mach['platform']}; "
          f"load average at start {' '.join(f'{x:.2f}' for x in mach.get('load_avg', ()))}")
    peers_ok = Path(args.peers_python).exists()
    peers = peer_versions(args.peers_python) if peers_ok else {}
    if peers_ok:
        print(f"releaf python {mach['python']} polars {mach['polars']}; peers ({args.peers_python}): "
              + ", ".join(f"{k} {v}" for k, v in peers.items()))
    else:
        print(f"peers are not installed ({args.peers_python} missing): BEEP and cellpy are skipped. Install them "
              f"with: {INSTALL_HINT}")

    paths = [(p, False) for p in (args.files or real_files())]
    if not args.files:
        paths.append((generated(args.workdir, args.long_rows), False))
        if not args.quick:
            paths.append((generated(args.workdir, args.big_rows, BIG_MIN_BYTES), True))
    cases = []
    for p, big in paths:
        fmt, ok = classify(p)
        cases.append(Case(p, fmt, ok, p.stat().st_size / 1e6, big or p.stat().st_size >= BIG_MIN_BYTES))
    before = {c.path: (c.path.stat().st_size, c.path.stat().st_mtime_ns) for c in cases}
    t0 = time.perf_counter()
    for c in cases:
        measure(c, args, peers_ok, cwd)
    changed = [p for p, st in before.items() if not p.exists() or (p.stat().st_size, p.stat().st_mtime_ns) != st]
    shutil.rmtree(cwd, ignore_errors=True)
    print(f"\n{len(cases)} files; time = best of {args.repeat} parse-to-table calls in a fresh process per tool and "
          "file (1 for files >= 1 GB); RSS = peak resident memory of that process (MB, includes interpreter and "
          "imports); MB/s = file size / time; ratios are time ratios: rl/pl = releaf/polars, BEEP/rl = BEEP/releaf, "
          "cp/rl = cellpy/releaf; '-' = not read (see notes), 'n/a' = no plain-CSV floor (binary format).\n")
    notes = print_table(cases)
    print_big(cases)
    print_summary(cases)
    if notes:
        print("\nNotes:")
        for n in notes:
            print("  " + n)
    print("\npolars floor options per file:")
    for c in cases:
        x = c.results.get("polars", {})
        print(f"  {c.path.name}: " + (json.dumps(x.get("opts", {}).get("read_csv")) if "opts" in x
                                      else x.get("skip", "-")))
    print("\npeer calls:")
    seen = set()
    for c in cases:
        for t in ("beep", "cellpy"):
            x = c.results.get(t, {})
            if "opts" in x and (c.format, t) not in seen:
                seen.add((c.format, t))
                print(f"  {c.format:18s} {t:6s} {json.dumps(x['opts'])}")
    print("input files unchanged by the run" if not changed else f"WARNING: input files changed: {changed}")
    load_end = os.getloadavg() if hasattr(os, "getloadavg") else ()
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average at end {' '.join(f'{x:.2f}' for x in load_end)}")
    if args.json_out:
        payload = {"machine": mach, "peers": peers, "repeat": args.repeat, "load_avg_end": load_end,
                   "results": [{"file": str(c.path), "format": c.format, "releaf_reads": c.releaf_reads,
                                "size_MB": c.size_MB, "big": c.big, "tools": c.results} for c in cases]}
        args.json_out.write_text(json.dumps(payload, indent=1, default=str))
        print(f"results written to {args.json_out}")


if __name__ == "__main__":
    main()
