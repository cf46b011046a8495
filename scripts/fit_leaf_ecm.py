"""Fit a 1-RC Thevenin model per SOC level to the ORNL Nissan Leaf cell HPPC test at 25 °C.

Writes ``src/releaf/parameters/leaf-24kwh/leaf_cell_ecm_25C.csv`` (``soc_pct, r0_mOhm, r1_mOhm, tau1_s``, per CELL).
Deterministic: same input file → same table. Run from anywhere::

    .venv/bin/python scripts/fit_leaf_ecm.py [--data DIR] [--out FILE]

Model (positive current = charge)::

    v(t) = ocv(t) + i(t) * R0 + v1(t),      dv1/dt = -v1 / tau1 + i(t) / C1,   R1 = tau1 / C1

over the 30 A / 30 s discharge pulse (step 6) and the 40 s rest after it (step 7). ``v1 = 0`` at the pulse start
(after 1 h rest); ``ocv(t)`` is the rest voltage before the pulse moved along the packaged OCV curve by the charge
the pulse removes (~0.8 % SOC). The current is a rectangle: the pulse starts one sample period before the first
pulse sample and ends at the last pulse sample (Bitrode logs every 0.5 s in the pulse).

References
----------
Wiggins, Allu, Wang, "Battery cell data from a 2013 Nissan Leaf", ORNL, doi:10.5281/zenodo.2580327 (file from
github.com/batterysim/equiv-circ-model, MIT, (c) 2020 BatterySim).
USABC/INL Battery Test Manual for Electric Vehicles (rev. 3, 2015), HPPC test.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

import releaf.io
from releaf.models.ocv import ocv_V
from releaf.parameters import LEAF_CELL

ROOT = Path(__file__).resolve().parents[1]
DATA_FILE = "ornl-leaf/cell-low-current-hppc-25c-2.csv"
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
DEFAULT_OUT = ROOT / "src" / "releaf" / "parameters" / "leaf-24kwh" / "leaf_cell_ecm_25C.csv"
CHARGE_STEP, PULSE_STEP, PULSE_REST_STEP, DISCHARGE_STEP = 4, 6, 7, 9


def _blocks(step: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal step index as ``(step, first_row, end_row_exclusive)``."""
    edges = np.flatnonzero(np.diff(step) != 0) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [step.size]))
    return [(int(step[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def pulse_response(t_s, *, t_off_s, current_A, r0_Ohm, r1_Ohm, tau1_s):
    """Terminal-voltage change of a 1-RC cell to a rectangular current pulse from t = 0 to ``t_off_s``.

    Parameters
    ----------
    t_s : time since the pulse start [s]
    t_off_s : pulse length [s]
    current_A : pulse current [A], + = charge
    r0_Ohm, r1_Ohm : series and RC resistance [Ohm]
    tau1_s : RC time constant [s]

    Returns
    -------
    ``v - ocv`` [V] (the OCV drift is added by the caller).
    """
    t = np.asarray(t_s, dtype=float)
    on = t <= t_off_s
    v1_off = current_A * r1_Ohm * (1.0 - np.exp(-t_off_s / tau1_s))
    v1 = np.where(on, current_A * r1_Ohm * (1.0 - np.exp(-np.clip(t, 0, None) / tau1_s)),
                  v1_off * np.exp(-(t - t_off_s) / tau1_s))
    return np.where(on, current_A * r0_Ohm, 0.0) + v1


def fit_hppc(path) -> tuple[list[dict], dict]:
    """Fit R0, R1, tau1 at every HPPC level of the ORNL cell file.

    Parameters
    ----------
    path : the Bitrode cell CSV (``cell-low-current-hppc-25c-2.csv``)

    Returns
    -------
    rows : one dict per level, high SOC first: ``soc_pct`` [%], ``r0_mOhm``, ``r1_mOhm`` [mOhm], ``tau1_s`` [s],
        ``rmse_mV`` [mV], ``n`` (samples fitted)
    info : ``sha256``, ``capacity_Ah`` (coulomb count from full to the 3.0 V end)
    """
    ts = releaf.io.read(path)
    df = ts.data
    t = df["test_time_s"].to_numpy()
    v = df["voltage_V"].to_numpy()
    i = df["current_A"].to_numpy()
    step = df["step_index"].to_numpy()
    blocks = _blocks(step)
    # charge counted from the end of the CC-CV charge to 4.2 V; each sample's current holds over the interval
    # that ends at it (right rectangles: exact for the Bitrode step edges, where trapezoids smear half a period)
    full = max(e for s, _, e in blocks if s == CHARGE_STEP) - 1
    dq = np.concatenate(([0.0], i[1:] * np.diff(t))) / 3600.0
    q_Ah = np.cumsum(dq) - np.cumsum(dq)[full]  # Ah, negative = removed since full
    capacity_Ah = -float(q_Ah[max(e for s, _, e in blocks if s == DISCHARGE_STEP) - 1])

    rows = []
    for k, (s, b0, b1) in enumerate(blocks):
        if s != PULSE_STEP or b0 <= full:
            continue
        rest_step, r0_, r1_ = blocks[k + 1]
        if rest_step != PULSE_REST_STEP:
            continue
        period = float(np.median(np.diff(t[b0:b1])))
        t_on = t[b0] - period
        t_off = t[b1 - 1] - t_on
        current = float(np.median(i[b0:b1]))
        soc0 = 100.0 * (1.0 + q_Ah[b0 - 1] / capacity_Ah)
        tt = t[b0:r1_] - t_on
        q_pulse = current * np.clip(tt, 0, t_off) / 3600.0
        drift = ocv_V(soc0 + 100.0 * q_pulse / capacity_Ah, LEAF_CELL.ocv_table) - ocv_V(soc0, LEAF_CELL.ocv_table)
        target = v[b0:r1_] - v[b0 - 1] - drift

        def resid(x, tt=tt, t_off=t_off, current=current, target=target):
            return pulse_response(tt, t_off_s=t_off, current_A=current, r0_Ohm=x[0] * 1e-3,
                                  r1_Ohm=x[1] * 1e-3, tau1_s=x[2]) - target

        fit = least_squares(resid, x0=[1.5, 1.0, 20.0], bounds=([0.0, 0.0, 0.5], [20.0, 50.0, 600.0]),
                            x_scale=[1.0, 1.0, 10.0], method="trf", xtol=1e-12, ftol=1e-12, gtol=1e-12)
        rmse_mV = 1e3 * float(np.sqrt(np.mean(fit.fun**2)))
        rows.append({"soc_pct": soc0, "r0_mOhm": fit.x[0], "r1_mOhm": fit.x[1], "tau1_s": fit.x[2],
                     "rmse_mV": rmse_mV, "n": int(tt.size)})
    return rows, {"sha256": ts.meta.sha256, "capacity_Ah": capacity_Ah}


def render_csv(rows: list[dict], info: dict) -> str:
    """The packaged table as text: ``#`` source/method lines, then ascending SOC rows."""
    rmse = "; ".join(f"{r['soc_pct']:.1f} %: {r['rmse_mV']:.2f}" for r in sorted(rows, key=lambda r: r["soc_pct"]))
    lines = [
        "# SOURCE: ORNL 2013 Nissan Leaf cell HPPC at 25 degC (ornl-leaf/cell-low-current-hppc-25c-2.csv, sha256 "
        f"{info['sha256']}; github.com/batterysim/equiv-circ-model, licence MIT, (c) 2020 BatterySim; "
        "Wiggins, Allu, Wang, 'Battery cell data from a 2013 Nissan Leaf', ORNL, doi:10.5281/zenodo.2580327)",
        "# METHOD: 1-RC Thevenin model per CELL, v = ocv + i*R0 + v1, fitted with scipy.optimize.least_squares to "
        "the 30 A / 30 s discharge pulse (step 6) and the 40 s rest after it (step 7) at each of the 10 levels; "
        "v1 = 0 after the 1 h rest; ocv drifts along leaf_cell_ocv_25C with the pulse charge. SOC by coulomb "
        f"counting from the end of the CC-CV charge to 4.2 V (100 %) to the 3.0 V end at 10 A (0 %, "
        f"{info['capacity_Ah']:.2f} Ah), taken at the pulse start. C1 = tau1_s / R1.",
        f"# FIT RMSE [mV] per level: {rmse}",
        "# Regenerate with scripts/fit_leaf_ecm.py",
        "soc_pct,r0_mOhm,r1_mOhm,tau1_s",
    ]
    for r in sorted(rows, key=lambda r: r["soc_pct"]):
        lines.append(f"{r['soc_pct']:.2f},{r['r0_mOhm']:.4f},{r['r1_mOhm']:.4f},{r['tau1_s']:.2f}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding ornl-leaf/")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    rows, info = fit_hppc(args.data / DATA_FILE)
    args.out.write_text(render_csv(rows, info), encoding="utf-8")
    for r in rows:
        print(f"SOC {r['soc_pct']:6.2f} %  R0 {r['r0_mOhm']:.3f}  R1 {r['r1_mOhm']:.3f} mOhm  "
              f"tau1 {r['tau1_s']:6.1f} s  RMSE {r['rmse_mV']:.2f} mV")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
