"""releaf's diagnosis against the independent protocol corpus (``protocol_corpus.py``): how far from the truth?

    PYTHONPATH=src .venv/bin/python benchmarks/validate_protocols.py [--corpus DIR] [--quick] [--detail]

Without ``--corpus`` the corpus is generated into a temporary directory first (a minute or two). Every file is
read and diagnosed with the public API (``releaf.diagnose(path)``, default Leaf-module profile) and compared with
``truth.csv``. Printed per variation (one row per value of each dimension; a file counts in several rows):

* files; worst |capacity error| [%] over the files that got a capacity;
* worst |group R0 error| [%] (files with group voltages, groups that got an R0) and worst |module R0 error| [%];
* weakest group right n/N (files with group voltages where releaf named one / all such files);
* crashes: exceptions other than ``releaf.errors.ReleafError``; refusals: no capacity (the warning is listed);
  for a partial discharge (cut-off on time or charge, ``full_discharge`` False in the truth) a refusal is the
  right answer (counted apart, "partial refused"), and a capacity, if given, is compared with the smaller true
  group capacity (to 3.0 V).

Goals: capacity within 1 %, group R0 within 15 %, weakest group right where group voltages exist, no crash.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import traceback
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DIMENSIONS = ("layout", "charge", "rest", "rate", "cutoff", "cycles", "start", "pulses")


def _dims(t: dict) -> dict[str, str]:
    return {"layout": t["layout"], "charge": f"{t['charge_mode']} {float(t['charge_V_per_group']):.2f} V",
            "rest": f"{float(t['rest_after_charge_s']) / 60:.0f} min", "rate": t["c_rate"], "cutoff": t["cutoff"],
            "cycles": t["cycles"], "start": t["start"], "pulses": t["pulses"]}


def evaluate(corpus: Path) -> list[dict]:
    """One result per file of ``corpus/truth.csv``."""
    import releaf
    from releaf.errors import ReleafError

    with open(corpus / "truth.csv", newline="") as f:
        truths = list(csv.DictReader(f))
    results = []
    for t in truths:
        r = {"truth": t, "crash": None, "error": None, "cap_err": None, "group_r0_err": [], "module_r0_err": None,
             "weakest_ok": None, "refusal": None}
        try:
            d = releaf.diagnose(corpus / t["file"])
        except ReleafError as err:
            r["error"] = f"{type(err).__name__}: {err}"
            r["refusal"] = r["error"]
            results.append(r)
            continue
        except Exception as err:  # noqa: BLE001 -- a crash is what this benchmark counts
            r["crash"] = f"{type(err).__name__}: {err}"
            r["trace"] = traceback.format_exc(limit=3)
            results.append(r)
            continue
        # a partial discharge's throughput is not a capacity: a reported capacity is compared with the module's
        # true capacity to 3.0 V per group (the smaller group capacity); a refusal there is the right answer
        full = t["full_discharge"] == "True"
        expected = float(t["capacity_Ah_true"]) if full else min(float(t["group_1_capacity_Ah"]),
                                                                  float(t["group_2_capacity_Ah"]))
        if d.capacity_Ah is None:
            why = [w for w in d.warnings if "capacity" in w] or list(d.warnings) or ["(no warning)"]
            r["refusal"] = why[0] + ("" if full else "  [partial discharge: refusal expected]")
        else:
            r["cap_err"] = 100.0 * (d.capacity_Ah / expected - 1.0)
        if d.r0_mOhm is not None:
            r["module_r0_err"] = 100.0 * (d.r0_mOhm / float(t["module_r0_mOhm"]) - 1.0)
        if t["has_group_voltages"] == "True":
            for k, g in enumerate(d.groups[:2], start=1):
                if g.r0_mOhm is not None:
                    r["group_r0_err"].append(100.0 * (g.r0_mOhm / float(t[f"group_{k}_r0_mOhm"]) - 1.0))
            r["weakest_ok"] = d.weakest_group == int(t["weakest_group"])
            r["weakest"] = d.weakest_group
        results.append(r)
    return results


def _worst(values) -> str:
    values = [v for v in values if v is not None]
    return f"{max(values, key=abs):+.2f}" if values else "-"


def _full(r: dict) -> bool:
    return r["truth"]["full_discharge"] == "True"


def table(results: list[dict]) -> str:
    rows = defaultdict(list)
    for r in results:
        for dim, value in _dims(r["truth"]).items():
            rows[(dim, str(value))].append(r)
    rows[("all", "")] = results
    head = (f"{'variation':<24} {'files':>5} {'cap err %':>9} {'n cap':>5} {'grp R0 %':>9} {'mod R0 %':>9} "
            f"{'weakest':>8} {'crash':>5} {'refused':>7} {'partial refused':>15}")
    lines = [head, "-" * len(head)]
    for dim in (*DIMENSIONS, "all"):
        for (d, value), rs in sorted(rows.items()):
            if d != dim:
                continue
            with_groups = [r for r in rs if r["truth"]["has_group_voltages"] == "True"]
            weakest = sum(1 for r in with_groups if r["weakest_ok"])
            lines.append(
                f"{(dim + '=' + value) if value else dim:<24} {len(rs):>5} {_worst(r['cap_err'] for r in rs):>9} "
                f"{sum(r['cap_err'] is not None for r in rs):>5} "
                f"{_worst(e for r in rs for e in r['group_r0_err']):>9} {_worst(r['module_r0_err'] for r in rs):>9} "
                f"{f'{weakest}/{len(with_groups)}':>8} {sum(r['crash'] is not None for r in rs):>5} "
                f"{sum(r['refusal'] is not None and _full(r) for r in rs):>7} "
                f"{sum(r['refusal'] is not None and not _full(r) for r in rs):>15}")
    return "\n".join(lines)


def reasons(results: list[dict]) -> str:
    """Refusal warnings and crashes, counted."""
    refusals = Counter(r["refusal"] for r in results if r["refusal"])
    crashes = Counter(r["crash"] for r in results if r["crash"])
    out = ["refusals (no capacity):"] + [f"  {n:>3} x {w}" for w, n in refusals.most_common()]
    out += ["crashes:"] + ([f"  {n:>3} x {w}" for w, n in crashes.most_common()] or ["    none"])
    return "\n".join(out)


def detail(results: list[dict]) -> str:
    out = []
    for r in results:
        t = r["truth"]
        cap = f"{r['cap_err']:+.2f}" if r["cap_err"] is not None else "-"
        out.append(f"{t['file']:<26} {t['variation']:<62} cap {cap:>7} %  grpR0 "
                   f"{' '.join(f'{e:+.1f}' for e in r['group_r0_err']) or '-':<12} weakest "
                   f"{r.get('weakest')}/{t['weakest_group']}  {r['crash'] or r['refusal'] or ''}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, help="a directory written by protocol_corpus.py (default: generate one)")
    ap.add_argument("--quick", action="store_true", help="when generating: the quick corpus")
    ap.add_argument("--detail", action="store_true", help="also one line per file")
    args = ap.parse_args(argv)
    if args.corpus is None:
        import protocol_corpus

        tmp = tempfile.TemporaryDirectory(prefix="releaf-corpus-")
        args.corpus = Path(tmp.name)
        protocol_corpus.generate(args.corpus, quick=args.quick)
    results = evaluate(args.corpus)
    print(f"releaf.diagnose on {len(results)} files of {args.corpus} (truth.csv; GENERATED, not measurements)")
    print(table(results))
    print(reasons(results))
    if args.detail:
        print(detail(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
