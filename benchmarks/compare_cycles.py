"""Per-cycle summaries side by side: releaf's ``cycle_summary`` against BEEP's and cellpy's, on the same real files.

    .venv/bin/python benchmarks/compare_cycles.py [--files F ...] [--peers-python /tmp/peers/bin/python]
                                                  [--threshold-pct 0.5] [--json-out OUT.json]

Files: every real export in ``../shared/data/cycler-formats/`` (as ``bench_ingest.py`` lists them) and the ORNL
module files (``data/ornl-leaf`` and ``../shared/data/ornl-leaf``). releaf runs here (``releaf.io.read`` then
``releaf.diagnostics.cycles.cycle_summary``); BEEP (``structure()`` then ``structured_summary``) and cellpy
(``cellpy.get`` then ``data.summary``) run in their own venv through ``_cycles_peer_worker.py``, one process per
file and peer (set-up: ``../shared/peers/README.md``).

Prints, per file, which peer read it, then one table of every per-cycle value (charge / discharge capacity and
energy; cellpy's summary has no energy) where a peer differs from releaf by more than ``--threshold-pct`` of the
larger of the two, and cycles one side has and the other not, each with its cause. The causes are checks on the
numbers, not labels by file: a ratio of 1000 (a unit), a last cycle missing, the peer equal to the cycler's
per-cycle counter maximum, the gap before each step's first sample (``releaf.diagnostics.capacity``'s step-change
rule), charge and discharge swapped, a counter already running at the file's first sample, cycle numbering; a
difference none of them explains is printed as "unexplained".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_ingest as bi  # noqa: E402 - the file list, format detection and peer readers of the ingest benchmark

WORKER = HERE / "_cycles_peer_worker.py"
ORNL_DIRS = (bi.REPO / "data" / "ornl-leaf", bi.REPO.parent / "shared" / "data" / "ornl-leaf")
FIELDS = (("charge_Ah", "charge_capacity_Ah"), ("discharge_Ah", "discharge_capacity_Ah"),
          ("charge_Wh", "charge_energy_Wh"), ("discharge_Wh", "discharge_energy_Wh"))
NOISE_AH = 1e-6  # below this on both sides a difference is the counters' resolution, not a method difference


def files() -> list[Path]:
    out = [p for p in bi.real_files() if p.parent.name != "ornl-leaf"]
    seen = set()
    for d in ORNL_DIRS:
        for p in sorted(d.glob("*.csv")) if d.exists() else []:
            if p.name not in seen:
                seen.add(p.name)
                out.append(p)
    return out


def run_peer(python: str, tool: str, path: Path, opts: dict, cwd: Path) -> dict:
    cmd = [python, str(WORKER), tool, str(path.resolve()), "--opts", json.dumps(opts)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=cwd)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "timeout (900 s)"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT_JSON "):
            return json.loads(line.removeprefix("RESULT_JSON "))
    return {"ok": False, "error": (proc.stderr.strip().splitlines() or ["no result"])[-1][:200]}


def releaf_side(path: Path) -> tuple[str, dict | str]:
    import releaf.io
    from releaf.diagnostics.cycles import cycle_summary

    try:
        ts = releaf.io.read(path)
    except Exception as err:  # noqa: BLE001 - a file releaf cannot read is reported, the peers still run
        fmt, _ = bi.classify(path)
        return fmt, f"cannot read ({type(err).__name__}: {str(err)[:120]})"
    return ts.meta.format, {"ts": ts, "cycles": {c.cycle_index: c for c in cycle_summary(ts)}}


def plan(fmt: str, path: Path) -> dict[str, tuple[dict] | str]:
    out: dict[str, tuple[dict] | str] = {}
    if fmt in bi.BEEP:
        module, cls = bi.BEEP[fmt]
        out["beep"] = ({"module": module, "class": cls},)
    else:
        out["beep"] = "no reader"
    if fmt in bi.CELLPY:
        opts = json.loads(json.dumps(bi.CELLPY[fmt]))
        if fmt == "maccor":
            opts["kwargs"] = {"skiprows": bi.header_line(path, "Rec#") or 0}
        out["cellpy"] = (opts,)
    else:
        out["cellpy"] = "no reader"
    return out


# -- causes: each a check on the numbers ------------------------------------------------------------------------------

def _close(a: float | None, b: float | None, rel: float = 2e-3) -> bool:
    return a is not None and b is not None and abs(a - b) <= rel * max(abs(a), abs(b)) + 1e-9


def _cycle_facts(ts, cycle_index: int) -> dict:
    """What a per-cycle value might have been computed from, for one releaf cycle.

    ``first_Ah`` / ``first_Wh``: the cycler's counters at the file's first sample when the file starts in this cycle
    (a file cut out of a longer test); ``max_counter``: the largest |counter| on the samples of each direction (what a
    maximum-per-cycle summary of the counter gives); ``lead_in``: |I| (|P|) of each step's first sample times the gap
    before it, summed (what releaf's step-change rule adds and a count from each step's first sample leaves out).
    """
    import numpy as np

    d = ts.data
    facts: dict = {"first_Ah": None, "first_Wh": None, "max_counter": {}, "lead_in_Ah": 0.0, "lead_in_Wh": 0.0}
    if "cycle_index" not in d.columns:
        return facts
    rows = np.flatnonzero(d["cycle_index"].to_numpy() == cycle_index)
    if rows.size == 0:
        return facts
    t, i, v = (d[c].to_numpy() for c in ("test_time_s", "current_A", "voltage_V"))
    for col, unit in (("vendor_capacity_Ah", "Ah"), ("vendor_energy_Wh", "Wh")):
        if col not in d.columns:
            continue
        c = np.abs(d[col].to_numpy()[rows].astype(float))
        if rows[0] == 0:
            facts[f"first_{unit}"] = float(c[0])
        for name, mask in (("charge", i[rows] > 0), ("discharge", i[rows] < 0)):
            if mask.any() and np.isfinite(c[mask]).any():
                facts["max_counter"][f"{name}_{unit}"] = float(np.nanmax(c[mask]))
    if "step_index" in d.columns:
        step = d["step_index"].to_numpy()
        new = rows[(rows > 0) & (step[rows] != step[np.maximum(rows - 1, 0)])]
        gap = t[new] - t[new - 1]
        facts["lead_in_Ah"] = float(np.sum(np.abs(i[new]) * gap) / 3600)
        facts["lead_in_Wh"] = float(np.sum(np.abs(i[new] * v[new]) * gap) / 3600)
    return facts


def cause(peer: str, fmt: str, key: str, ours: float, theirs: float, ts, cycle: int, our_cycle: dict,
          their_cycle: dict) -> str:
    parts = []
    if theirs and ours and 0.95 < theirs / ours / 1000 < 1.05:
        parts.append("x1000: the peer's reader reads mA and declares A (cellpy neware_nda.py)" if fmt == "neware-nda"
                     else "x1000: a unit the peer's reader mislabels")
        theirs /= 1000
        if _close(ours, theirs):
            return "; ".join(parts)
    if key.endswith("_Wh") and theirs == 0 and ours > 0:
        return "the peer's summary has 0 energy for this direction (its column map for this format has none)"
    other = key.replace("discharge", "@").replace("charge", "discharge").replace("@", "charge")
    if _close(theirs, our_cycle.get(other)) and _close(their_cycle.get(other), ours):
        return ("charge and discharge swapped: the peer books this file's positive current (anodic, the cycler's "
                "own counter rising) as discharge")
    facts = _cycle_facts(ts, cycle)
    unit = key.split("_")[-1]
    first = facts[f"first_{unit}"]
    if first and _close(theirs, ours + first, 1e-2):
        parts.append(f"the file starts inside a step with the cycler's counter at {first:.4g} {unit}: the peer "
                     "takes the counter's value, releaf integrates from the first sample")
    elif facts[f"lead_in_{unit}"] and abs(ours - theirs) <= facts[f"lead_in_{unit}"] * 1.05 + 1e-7:
        parts.append("step change: the peer counts each step from its first sample, releaf also books the interval "
                     "before it (|I| of the step's first sample x the gap, summed over the cycle's steps, covers the "
                     "difference; releaf.diagnostics.capacity.interval_weights, the rule under review)")
    elif _close(theirs, facts["max_counter"].get(key), 1e-3):
        parts.append("the peer takes the cycler's counter maximum per cycle; the counter restarts in every step, "
                     "releaf integrates all steps")
    return "; ".join(parts) or "unexplained"


def compare(path: Path, fmt: str, ours: dict, peer: str, result: dict, threshold: float) -> list[dict]:
    rows = []
    theirs = {c["cycle_index"]: c for c in result["cycles"]}
    mine = sorted(ours["cycles"])
    if theirs and len(theirs) == len(mine) and set(theirs) != set(mine) and len(
            {a - b for a, b in zip(sorted(theirs), mine, strict=True)}) == 1:
        rows.append({"file": path.name, "peer": peer, "cycle": mine[0], "value": "(numbering)", "releaf": mine[0],
                     "peer_value": sorted(theirs)[0], "diff_pct": None,
                     "cause": "the peer numbers the cycles from another start than the file's cycle_index"})
        theirs = dict(zip(mine, (theirs[k] for k in sorted(theirs)), strict=True))
    for k in sorted(set(theirs) | set(mine)):
        if k not in theirs:
            why = ("the peer drops the file's last cycle" if k == mine[-1] else "cycle missing in the peer's summary")
            rows.append({"file": path.name, "peer": peer, "cycle": k, "value": "(cycle)", "releaf": "present",
                         "peer_value": "absent", "diff_pct": None, "cause": why})
            continue
        if k not in ours["cycles"]:
            rows.append({"file": path.name, "peer": peer, "cycle": k, "value": "(cycle)", "releaf": "absent",
                         "peer_value": "present", "diff_pct": None, "cause": "cycle not in the file's cycle_index"})
            continue
        our_cycle = {pk: getattr(ours["cycles"][k], ok) for pk, ok in FIELDS}
        for peer_key, _ in FIELDS:
            p, o = theirs[k].get(peer_key), our_cycle[peer_key]
            if p is None:
                continue
            scale = max(abs(o), abs(p))
            if peer_key.endswith("_Ah") and scale < NOISE_AH or scale == 0:
                continue
            diff = 100 * (p - o) / scale
            if abs(diff) > threshold:
                rows.append({"file": path.name, "peer": peer, "cycle": k, "value": peer_key, "releaf": o,
                             "peer_value": p, "diff_pct": diff,
                             "cause": cause(peer, fmt, peer_key, o, p, ours["ts"], k, our_cycle, theirs[k])})
    return rows


def grouped(rows: list[dict]) -> list[dict]:
    """Rows of one file, peer, value and cause merged: cycles as ranges, the spread of the differences."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["file"], r["peer"], r["value"], r["cause"]), []).append(r)
    out = []
    for (file, peer, value, why), rs in groups.items():
        diffs = [r["diff_pct"] for r in rs if r["diff_pct"] is not None]
        one = len(rs) == 1
        out.append({"file": file, "peer": peer, "cycles": _ranges([r["cycle"] for r in rs]), "value": value,
                    "releaf": rs[0]["releaf"] if one else f"e.g. {_num(rs[0]['releaf'])}",
                    "peer_value": rs[0]["peer_value"] if one else f"e.g. {_num(rs[0]['peer_value'])}",
                    "diff": "" if not diffs else (f"{diffs[0]:+.2f}" if len(diffs) == 1
                                                  else f"{min(diffs):+.2f} to {max(diffs):+.2f}"),
                    "cause": why})
    return out


def _ranges(values: list[int]) -> str:
    values = sorted(values)
    spans, start = [], values[0]
    for a, b in zip(values, [*values[1:], None], strict=True):
        if b is None or b != a + 1:
            spans.append(str(start) if start == a else f"{start}-{a}")
            start = b
    return ", ".join(spans)


def _num(x) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", nargs="*", type=Path)
    parser.add_argument("--peers-python", default=bi.PEERS_PYTHON)
    parser.add_argument("--threshold-pct", type=float, default=0.5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/releaf-compare-cycles"))
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    peers_ok = Path(args.peers_python).exists()
    if peers_ok:
        print("peers:", ", ".join(f"{k} {v}" for k, v in bi.peer_versions(args.peers_python).items()))
    else:
        print(f"peers not installed ({args.peers_python}); set up: {bi.INSTALL_HINT} 'pandas<3'")
    diffs: list[dict] = []
    print(f"\n{'file':44} {'format':13} {'releaf':>8}  {'BEEP':34}  cellpy")
    for path in args.files or files():
        fmt, ours = releaf_side(path)
        status = {}
        for peer, how in plan(fmt, path).items():
            if isinstance(how, str) or not peers_ok or isinstance(ours, str):
                status[peer] = how if isinstance(how, str) else ("not installed" if not peers_ok else "-")
                continue
            result = run_peer(args.peers_python, peer, path, how[0], args.workdir)
            if not result.get("ok"):
                status[peer] = f"cannot read ({result.get('error', '?')[:60]})"
                continue
            status[peer] = f"{len(result['cycles'])} cycles"
            diffs += compare(path, fmt, ours, peer, result, args.threshold_pct)
        n = f"{len(ours['cycles'])} cycles" if isinstance(ours, dict) else ours[:40]
        print(f"{path.name[:44]:44} {fmt:13} {n:>8}  {status['beep'][:34]:34}  {status['cellpy']}")

    print(f"\nper-cycle differences above {args.threshold_pct} % (of the larger value; capacities below "
          f"{NOISE_AH:g} Ah on both sides skipped)\n")
    head = ("file", "peer", "cycles", "value", "releaf", "peer", "diff %", "cause")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in grouped(diffs):
        cells = (r["file"], r["peer"], r["cycles"], r["value"], _num(r["releaf"]), _num(r["peer_value"]), r["diff"],
                 r["cause"])
        print("| " + " | ".join(map(str, cells)) + " |")
    if not diffs:
        print("(none)")
    if args.json_out:
        args.json_out.write_text(json.dumps(diffs, indent=2))


if __name__ == "__main__":
    main()
