"""Fit the 2-RC Thevenin model to the ORNL Nissan Leaf cell HPPC tests at 10, 25 and 40 °C.

Writes ``src/releaf/parameters/leaf-24kwh/leaf_cell_ecm2_<T>C.json`` (per CELL): ``parameters`` (the
:class:`releaf.models.ecm.EcmParameters` as ``to_dict``), ``fit`` (quality per SOC level), ``source`` and
``method``. Deterministic: same input file -> same table. Read back with
``releaf.models.ecm_fit.load_fitted_ecm("leaf_cell_ecm2_25C")``. Run from anywhere::

    .venv/bin/python scripts/fit_leaf_ecm2.py [--data DIR] [--out-dir DIR]

References
----------
Wiggins, Allu, Wang, "Battery cell data from a 2013 Nissan Leaf", ORNL, doi:10.5281/zenodo.2580327 (files from
github.com/batterysim/equiv-circ-model, MIT, (c) 2020 BatterySim).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import releaf.io
from releaf.models.ecm_fit import fit_ecm_2rc
from releaf.models.validation import HPPC_FILES
from releaf.parameters import LEAF_CELL

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
DEFAULT_OUT = ROOT / "src" / "releaf" / "parameters" / "leaf-24kwh"
METHOD = (
    "2-RC Thevenin model per CELL, v = ocv(soc) + i*R0 + v1 + v2 (current + = charge), fitted per HPPC level with "
    "scipy.optimize.least_squares (releaf.models.ecm_fit.fit_ecm_2rc) to the 30 A / 30 s discharge pulse, "
    "the 40 s rest, the regen pulse and the 1 h relaxation after the 10 A SOC step (the SOC step itself is "
    "simulated, not fitted); the lowest level (no rest after it) fits R0, R1, tau1 on its pulses with R2, tau2 "
    "of the level above. OCV: the packaged dense table leaf_cell_ocv_25C (C/15 pseudo-OCV anchored to the 25 degC "
    "HPPC rests, scripts/derive_leaf_ocv.py) moved through the rested voltages before each level of this file "
    "by a piecewise-linear offset (releaf.models.ecm_fit.anchored_ocv; held below the lowest level). "
    "SOC by coulomb counting from the end of the CC-CV charge (100 %) to the end of the test at 3.0 V (0 %). "
    "Resistances are clamped outside the fitted levels."
)


def fit_file(path: Path, temperature_C: float) -> dict:
    """The JSON document of one HPPC file."""
    ts = releaf.io.read(path)
    params, report = fit_ecm_2rc(ts, temperature_C=temperature_C, ocv_shape=LEAF_CELL.ocv_table)
    cols = ["level", "soc_pct", "r0_mOhm", "r1_mOhm", "tau1_s", "r2_mOhm", "tau2_s", "rmse_mV", "r_squared",
            "rmse_pulse_mV", "edge_r0_mOhm", "window"]
    fit = [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
           for row in report.levels.select(cols).to_dicts()]
    return {
        "source": (f"ORNL 2013 Nissan Leaf cell HPPC at {temperature_C:g} degC (ornl-leaf/{path.name}, sha256 "
                   f"{ts.meta.sha256}; github.com/batterysim/equiv-circ-model, MIT, (c) 2020 BatterySim; "
                   "Wiggins, Allu, Wang, doi:10.5281/zenodo.2580327)"),
        "method": METHOD,
        "regenerate": "scripts/fit_leaf_ecm2.py",
        "parameters": params.to_dict(),
        "fit": fit,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding ornl-leaf/")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for temperature_C, name in HPPC_FILES.items():
        doc = fit_file(args.data / "ornl-leaf" / name, temperature_C)
        out = args.out_dir / f"leaf_cell_ecm2_{temperature_C:g}C.json"
        out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        for row in doc["fit"]:
            print(f"{temperature_C:4g} C  SOC {row['soc_pct']:6.2f} %  R0 {row['r0_mOhm']:.3f}  R1 {row['r1_mOhm']:.3f}"
                  f"  tau1 {row['tau1_s']:7.1f}  R2 {row['r2_mOhm']:.3f}  tau2 {row['tau2_s']:7.1f}  "
                  f"RMSE {row['rmse_mV']:.2f} mV  R2fit {row['r_squared']:.4f}")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
