"""One peer's per-cycle summary of one file, in the peers' interpreter (run by ``compare_cycles.py``).

    /tmp/peers/bin/python benchmarks/_cycles_peer_worker.py {beep|cellpy} PATH --opts JSON

``beep``: ``<Datapath>.from_file`` then ``dp.structure()`` and ``dp.structured_summary`` (falling back to
``dp.summarize_cycles()`` when structuring fails, and saying so). ``cellpy``: ``cellpy.get(..., refuse_copying=True)``
then ``cell.data.summary``; its capacities are taken from the ``*_absolute`` columns, which are in cellpy's charge
unit (mAh), and divided by 1000. The peers run on a private copy of the file (``_peer_worker._private_copy``).
Imports only the standard library at module level; prints one line ``RESULT_JSON {...}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peer_worker import MARKER, _private_copy, _short_error  # noqa: E402


def _num(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _beep(path: Path, opts: dict) -> dict:
    import importlib

    cls = getattr(importlib.import_module(f"beep.structure.{opts['module']}"), opts["class"])
    dp = cls.from_file(str(path.resolve()))
    try:
        dp.structure()
        summary, source = dp.structured_summary, "structured_summary"
    except Exception as err:  # noqa: BLE001 - say which summary was used
        summary, source = dp.summarize_cycles(), f"summarize_cycles (structure() failed: {_short_error(err)})"
    cycles = [{"cycle_index": int(r["cycle_index"]), "charge_Ah": _num(r["charge_capacity"]),
               "discharge_Ah": _num(r["discharge_capacity"]), "charge_Wh": _num(r["charge_energy"]),
               "discharge_Wh": _num(r["discharge_energy"])} for _, r in summary.iterrows()]
    return {"source": source, "cycles": cycles}


def _cellpy(path: Path, opts: dict) -> dict:
    import cellpy

    log_dir = tempfile.mkdtemp(prefix="cellpy-log-", dir=os.getcwd())
    kwargs = {"instrument": opts["instrument"], "refuse_copying": True, "custom_log_dir": log_dir}
    if opts.get("model"):
        kwargs["model"] = opts["model"]
    kwargs.update(opts.get("kwargs", {}))
    cell = cellpy.get(str(path), **kwargs)
    if cell is None or cell.data.summary is None or len(cell.data.summary) == 0:
        raise RuntimeError("cellpy.get gave no summary")
    s = cell.data.summary
    unit = str(cell.cellpy_units.charge)
    scale = {"mAh": 1e-3, "Ah": 1.0}.get(unit)
    if scale is None:
        raise RuntimeError(f"unexpected cellpy charge unit {unit!r}")
    cycles = [{"cycle_index": int(idx), "charge_Ah": _num(r["charge_capacity_absolute"] * scale),
               "discharge_Ah": _num(r["discharge_capacity_absolute"] * scale), "charge_Wh": None,
               "discharge_Wh": None} for idx, r in s.iterrows()]
    return {"source": f"data.summary *_absolute [{unit}] x {scale:g}", "cycles": cycles}


def main() -> None:
    parser = argparse.ArgumentParser(description="one peer's per-cycle summary (see compare_cycles.py)")
    parser.add_argument("tool", choices=("beep", "cellpy"))
    parser.add_argument("path")
    parser.add_argument("--opts", default="{}")
    args = parser.parse_args()
    out = {"tool": args.tool, "path": args.path}
    scratch = Path(tempfile.mkdtemp(prefix="cycles-", dir=os.getcwd()))
    try:
        copy = _private_copy(Path(args.path), scratch / "in")
        out.update(ok=True, **(_beep if args.tool == "beep" else _cellpy)(copy, json.loads(args.opts)))
    except Exception as err:  # noqa: BLE001 - "cannot read (reason)" is a result
        out.update(ok=False, error=_short_error(err), traceback=traceback.format_exc()[-1500:])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.stdout.flush()
    print(MARKER + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
