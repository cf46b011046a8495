"""Derive the OCV table of the example user parameter set (``tests/fixtures/parameters/``) from a real cell test.

The cell is the one in TRI's ``PreDiag_000229_000229_truncated.034`` (Maccor, from github.com/TRI-AMDD/beep,
Apache-2.0; in the shared data folder under ``cycler-formats/beep-TRI-AMDD/``): a C/7 (0.69 A) CC discharge from
the end of a CC-CV charge to 4.2 V down to 2.7 V, straight followed by a C/7 CC-CV charge back to 4.2 V. The table
is a pseudo-OCV (Plett 2015, vol. I, sec. 2.10): the mean of the discharge and the CC charge voltage on one
coulomb-counted SOC axis (0 % = the end of the discharge, 100 % = its start, the discharge capacity between). Above
the top of the CC charge (CV from there) the discharge voltage plus the mean half-gap of the 10 % below it; the
100 % point is the CV voltage (4.2 V at C/35, its few mV of polarisation neglected).

ILLUSTRATIVE: one cell, C/7 rather than C/25 or rests, no temperature record. Good enough to show a user's own
parameter set at work, not a reference OCV of any cell type. Run from the repository root::

    python scripts/derive_example_cell_ocv.py [--data ../shared/data] [--out tests/fixtures/parameters/...]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

import releaf.io
from releaf.diagnostics.capacity import cumulative_Ah

REPO = Path(__file__).resolve().parents[1]
FILE = Path("cycler-formats", "beep-TRI-AMDD", "PreDiag_000229_000229_truncated.034")
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "tests" / "fixtures" / "parameters" / "tri-prediag-cell-ocv.csv"
GRID_PCT = np.arange(0.0, 97.51, 2.5)
TOP_V = 4.2
CC_CURRENT_A = 0.68  # the charge's CC part runs at 0.69-0.70 A; the CV part tapers from there to 0.14 A
HALF_GAP_SPAN_PCT = 10.0


def derive(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(soc_pct, ocv_V, info)`` of the pseudo-OCV; ``info``: capacity, CC top and half-gap used."""
    d = releaf.io.read(path).data
    t, v, i, step, cycle = (d[k].to_numpy() for k in ("test_time_s", "voltage_V", "current_A", "step_index",
                                                        "cycle_index"))
    dis = np.flatnonzero((step == 6) & (cycle == 0))   # the C/7 discharge
    chg = np.flatnonzero((step == 5) & (cycle == 1))   # the C/7 CC-CV charge right after it
    q_dis = -cumulative_Ah(t[dis], i[dis], step[dis])
    capacity = float(q_dis[-1])
    soc_dis = 100.0 * (1.0 - q_dis / capacity)
    q_chg = cumulative_Ah(t[chg], i[chg], step[chg])
    cc = i[chg] > CC_CURRENT_A
    soc_chg = 100.0 * q_chg[cc] / capacity
    v_dis = np.interp(GRID_PCT, soc_dis[::-1], v[dis][::-1])
    v_chg = np.interp(GRID_PCT, soc_chg, v[chg][cc])
    top = float(soc_chg.max())
    near_top = (GRID_PCT <= top) & (GRID_PCT >= top - HALF_GAP_SPAN_PCT)
    half_gap = float(np.mean((v_chg - v_dis)[near_top] / 2.0))
    ocv = np.where(GRID_PCT <= top, (v_dis + v_chg) / 2.0, v_dis + half_gap)
    soc = np.append(GRID_PCT, 100.0)
    ocv = np.append(ocv, TOP_V)
    return soc, ocv, {"capacity_Ah": capacity, "cc_top_pct": top, "half_gap_V": half_gap}


def render(path: Path, soc: np.ndarray, ocv: np.ndarray, info: dict) -> str:
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    lines = [
        "# SOURCE: ILLUSTRATIVE pseudo-OCV of the cell in TRI's PreDiag_000229_000229_truncated.034 (Maccor; "
        f"github.com/TRI-AMDD/beep, Apache-2.0; sha256 {sha}); not a reference OCV of any cell type.",
        f"# METHOD: mean of the C/7 CC discharge (4.2 -> 2.7 V, {info['capacity_Ah']:.4f} Ah) and the C/7 CC charge "
        "right after it on one coulomb-counted SOC axis (100 % = start of the discharge); above the top of the CC "
        f"charge ({info['cc_top_pct']:.1f} %) discharge + the mean half-gap of the 10 % below "
        f"({1000 * info['half_gap_V']:.1f} mV); 100 % = the 4.2 V CV limit. "
        "Regenerate with scripts/derive_example_cell_ocv.py.",
        "soc_pct,ocv_V",
    ]
    lines += [f"{s:.2f},{o:.4f}" for s, o in zip(soc, ocv, strict=True)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    path = args.data / FILE
    args.out.write_text(render(path, *derive(path)), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
