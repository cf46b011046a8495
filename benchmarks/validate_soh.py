"""Validation tables of the fast SOH estimator (releaf.diagnostics.soh).

1. retired-cells-pulse (measured, Tao et al.), the fixed split: leave-one-workbook-out, 3 folds; per held-out
   workbook: MAE [SOH points], MAPE [%], measured coverage of the 90 % conformal interval [%], share of rows
   flagged out of domain [%], MAE over the rows not flagged, conformal half-width [points].
2. Leaf modules GENERATED with PyBaMM (coupled SEI / LAM ageing, see releaf.training.soh_trainer): 25 % of the aged
   states held out.
3. The fast test simulated on releaf's ECM fitted to the measured ORNL Leaf cell HPPC (25 degC) as a 2s2p module,
   at 30 / 50 / 70 % SOC, scored by the PACKAGED leaf model: OOD flag, estimate and interval (reference 93.9 %:
   2 x 30.5 Ah measured over the 65 Ah nominal). A check, not a fit target.

Run: PYBAMM_DISABLE_TELEMETRY=true .venv/bin/python benchmarks/validate_soh.py [--states 200] [--seed 2026]
(about 2 minutes; nothing is written).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")


def main() -> None:
    from releaf.training import soh_trainer as tr

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=200)
    ap.add_argument("--socs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    rows = tr.validate_retired_cells(tr.load_retired_cells(a.data_dir), seed=a.seed)
    print(tr.format_table(rows, "retired-cells-pulse, leave-one-workbook-out (SOH points / %)"))
    print(f"[{time.perf_counter() - t0:.0f} s]\n")
    t0 = time.perf_counter()
    ds = tr.generate_leaf_dataset(a.states, socs_per_state=a.socs, seed=a.seed)
    row, _ = tr.validate_leaf(ds, seed=a.seed)
    print(tr.format_table([row], f"leaf-module-pulse, generated ({a.states} states x {a.socs} SOCs, "
                                 f"SOH {100 * ds['soh'].min():.0f}-{100 * ds['soh'].max():.0f} %), held-out states"))
    print(f"[{time.perf_counter() - t0:.0f} s]\n")
    import polars as pl

    from releaf.diagnostics import soh

    print("ORNL-fitted Leaf ECM, 2s2p module, packaged leaf-module-pulse model (reference SOH 93.9 %)")
    for soc in (30.0, 50.0, 70.0):
        e = soh.estimate_soh(pl.DataFrame(tr.ornl_ecm_module_test(soc)), nominal_capacity_Ah=tr.LEAF_MODULE_Ah)
        print(f"SOC {soc:4.0f} %: estimate {e.soh_pct:6.1f} %, interval {e.soh_interval_pct[0]:6.1f}-"
              f"{e.soh_interval_pct[1]:6.1f} %, ood={e.ood} {e.ood_reasons}")


if __name__ == "__main__":
    main()
