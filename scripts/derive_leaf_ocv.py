"""Derive the packaged OCV–SOC table of the Leaf cell at 25 degC from the ORNL HPPC test.

    .venv/bin/python scripts/derive_leaf_ocv.py [--data DIR] [--out FILE]

Method: the voltage at the end of each 1 h rest (step 10) is the OCV at that SOC. SOC is coulomb-counted with
releaf's own integration (``releaf.diagnostics.capacity.cumulative_Ah``, which holds the new step's current
across a step change) from the rested full charge (end of step 5, 100 %) to the 3.0 V end of the last 10 A
discharge (0 %). No rest was recorded at 0 %; its OCV is the loaded cut-off voltage plus 10 A times the 30 s pulse
resistance of the last level. Deterministic: the same input writes the same bytes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from releaf.diagnostics.capacity import cumulative_Ah
from releaf.io import read

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ornl-leaf" / "cell-low-current-hppc-25c-2.csv"
DEFAULT_OUT = REPO / "src" / "releaf" / "profiles_data" / "leaf_cell_ocv_25C.csv"


def derive(path: Path) -> tuple[list[tuple[float, float]], float, str]:
    """(soc_pct, ocv_V) points, the full-to-empty charge [Ah] and the file's sha256."""
    ts = read(path)
    d = ts.data
    t, v, i = d["test_time_s"].to_numpy(), d["voltage_V"].to_numpy(), d["current_A"].to_numpy()
    step = d["step_index"].to_numpy()
    q = cumulative_Ah(t, i, step)
    full = int(np.flatnonzero(step == 5)[-1])  # end of the rest after the CC-CV charge
    empty = int(np.flatnonzero(step == 9)[-1])  # 3.0 V at 10 A, end of test
    capacity = q[full] - q[empty]
    rest_ends = [k for k in np.flatnonzero(np.diff(step) != 0) if step[k] == 10]
    points = [(100.0, float(v[full]))]
    points += [(100.0 * (1 - (q[full] - q[k]) / capacity), float(v[k])) for k in rest_ends]
    last_pulse = np.flatnonzero(step == 6)
    last_pulse = last_pulse[last_pulse > rest_ends[-1]]
    before = last_pulse[0] - 1
    r_30s_Ohm = (v[before] - v[last_pulse[-1]]) / (i[before] - i[last_pulse[-1]])
    points.append((0.0, float(v[empty] + 10.0 * r_30s_Ohm)))
    return sorted(points), float(capacity), ts.meta.sha256


def render(points, capacity_Ah: float, sha256: str) -> str:
    lines = [
        "# SOURCE: ORNL 2013 Nissan Leaf cell HPPC at 25 degC (cell-low-current-hppc-25c-2.csv, sha256 "
        f"{sha256}; github.com/batterysim/equiv-circ-model, MIT, (c) 2020 BatterySim; Wiggins, Allu, Wang, "
        "doi:10.5281/zenodo.2580327)",
        "# METHOD: voltage at the end of each 1 h rest; SOC by coulomb counting (releaf.diagnostics.capacity."
        "cumulative_Ah) from the rested full charge (100 %) to the 3.0 V cut-off at 10 A (0 %), "
        f"{capacity_Ah:.2f} Ah between them. The 0 % point is the loaded cut-off voltage plus 10 A x the 30 s pulse "
        "resistance of the last level (no rest was recorded there). Regenerate with scripts/derive_leaf_ocv.py.",
        "soc_pct,ocv_V",
    ]
    lines += [f"{s:.2f},{v:.3f}" for s, v in points]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    args.out.write_text(render(*derive(args.data)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
