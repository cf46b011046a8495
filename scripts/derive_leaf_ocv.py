"""Derive the packaged OCV–SOC table of the Leaf cell at 25 degC from the ORNL HPPC and C/15 cycling tests.

    .venv/bin/python scripts/derive_leaf_ocv.py [--data DIR] [--out FILE]

Method (Plett 2015, vol. I, section 2.10, "OCV from slow charge/discharge", anchored to rest points):

1. Rest points (accurate, few): the voltage at the end of each 1 h rest of the 25 degC HPPC (the rested full
   charge = 100 % and the 10 levels), SOC coulomb-counted with ``releaf.diagnostics.capacity.cumulative_Ah``
   from the rested full charge to the 3.0 V end of the last 10 A discharge (0 %). No rest was recorded at 0 %
   at 25 degC; the 10 and 40 degC HPPC files start with a 10 A discharge to 3.0 V and a 1 h rest. Each file's
   own coulomb count (rested full charge to the 3.0 V end of its test = 0 %) puts that rest at -1.2 to -1.4 %:
   the short opening discharge reaches 3.0 V deeper than the last one of the HPPC. The bottom point is the mean
   of the two (SOC and voltage; = their linear interpolation to 25 degC); the OCV at 0 % lies on the straight
   line from it to the pseudo-OCV. (Placing the rested voltage at 0 % instead would put the table below the
   voltage the C/15 discharges recover to within 5 min at ~1.5-2 % SOC.)
2. Pseudo-OCV (dense shape): the C/15 (2.17 A) CC discharges and CC charges of the cycling file, each
   discharge from the end of a CC-CV charge (100 %) and the following charge counted on from the discharge's
   end, on one SOC axis (coulomb count from full over the 25 degC HPPC capacity). Discharge and charge at the
   same |I| are averaged per SOC: their I R drops (the cell's and the ~111 mOhm outside it) and the hysteresis
   cancel to first order. Only the CC part of each charge is used (its CV tail at 4.2 V measured is left out):
   it reaches only ~52-58 % SOC, because the external resistance brings the 4.2 V limit early. Above the top
   of the common CC window the pseudo-OCV is the mean discharge curve plus the mean half-gap (charge minus
   discharge, over 2) of the top 5 % of that window. The first 2 % of each discharge (RC transient from rest)
   and the first 1 % of each charge are left out.
3. Anchoring: at each rest point inside the pseudo-OCV range the offset rest - pseudo is taken; the table is
   pseudo + the piecewise-linear interpolation of these offsets (constant beyond the outer ones), so it passes
   through the rest points and takes its shape between them from the C/15 curves. Between the pseudo-OCV's
   range and the bottom and 100 % rest points the table is a straight line to them.

The cycling file has no temperature column (its name says 10/24/40 degC; which cycle ran at which temperature is
not recorded): all its CC discharge/charge pairs that start from a CC-CV full charge are averaged, and only
the shape between the 25 degC rest points is taken from them. Deterministic: the same input writes the same bytes.

References
----------
G. L. Plett, Battery Management Systems, Vol. I: Battery Modeling, Artech House (2015), section 2.10.
Wiggins, Allu, Wang, "Battery cell data from a 2013 Nissan Leaf", ORNL, doi:10.5281/zenodo.2580327.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from releaf.diagnostics.capacity import cumulative_Ah
from releaf.io import read

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ornl-leaf"
DEFAULT_OUT = REPO / "src" / "releaf" / "parameters" / "leaf-24kwh" / "leaf_cell_ocv_25C.csv"
HPPC_25C = "cell-low-current-hppc-25c-2.csv"
HPPC_BOTTOM = ("cell-low-current-hppc-10c.csv", "cell-low-current-hppc-40c-1.csv")
CYCLING = "cell-cycling-10c-24c-40c.csv"
C15_A = 2.17  # the C/15 set-point of the cycling file (README), a test condition
CC_TOLERANCE_A = 0.03
FINE_STEP_PCT = 0.05
DISCHARGE_SKIP_PCT = 2.0  # RC transient at the start of a discharge from rest
CHARGE_SKIP_PCT = 1.0
TOP_HALF_GAP_PCT = 5.0
MIN_SPACING_PCT = 0.2  # grid points this close to a rest point are dropped
GRID_PCT = np.unique(np.concatenate((np.arange(0.0, 10.0, 0.5), np.arange(10.0, 100.0 + 1e-9, 1.0))))


def _blocks(step: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal step index as ``(step, first_row, end_row_exclusive)``."""
    edges = np.flatnonzero(np.diff(step) != 0) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [step.size]))
    return [(int(step[a]), int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _arrays(ts):
    d = ts.data
    t, v, i = d["test_time_s"].to_numpy(), d["voltage_V"].to_numpy(), d["current_A"].to_numpy()
    step = d["step_index"].to_numpy()
    return t, v, i, step, cumulative_Ah(t, i, step)


def hppc_rest_points(path: Path) -> tuple[list[tuple[float, float]], float, str]:
    """Rested (soc_pct, ocv_V) points of the 25 degC HPPC (100 % and the levels, no 0 %), the full-to-empty
    charge [Ah] and the file's sha256."""
    ts = read(path)
    t, v, i, step, q = _arrays(ts)
    full = int(np.flatnonzero(step == 5)[-1])  # end of the rest after the CC-CV charge
    empty = int(np.flatnonzero(step == 9)[-1])  # 3.0 V at 10 A, end of test
    capacity = q[full] - q[empty]
    rest_ends = [k for k in np.flatnonzero(np.diff(step) != 0) if step[k] == 10]
    points = [(100.0, float(v[full]))]
    points += [(100.0 * (1 - (q[full] - q[k]) / capacity), float(v[k])) for k in rest_ends]
    return sorted(points), float(capacity), ts.meta.sha256


def bottom_rest_point(path: Path) -> tuple[float, float, str]:
    """The 1 h rest (step 3) after the opening 10 A discharge to 3.0 V (step 2) of the 10 / 40 degC HPPC files:
    its SOC [%] on the file's own axis (coulomb count from the rested full charge, step 5, over the charge from
    there to the 3.0 V end of the test), its rested voltage [V] and the file's sha256."""
    ts = read(path)
    _, v, _, step, q = _arrays(ts)
    blocks = _blocks(step)
    k = next(n for n, (s, _, _) in enumerate(blocks) if s == 2)
    if blocks[k + 1][0] != 3:
        raise ValueError(f"{path.name}: expected a rest (step 3) after the opening discharge")
    rest_end = blocks[k + 1][2] - 1
    full = int(np.flatnonzero(step == 5)[-1])
    capacity = q[full] - q[-1]
    return float(100.0 * (1 - (q[full] - q[rest_end]) / capacity)), float(v[rest_end]), ts.meta.sha256


def pseudo_ocv(path: Path, capacity_Ah: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Mean of the C/15 CC discharge and charge curves on a fine SOC grid [%, V] (see the module docstring).

    Returns
    -------
    soc_pct, ocv_V : the pseudo-OCV on a ``FINE_STEP_PCT`` grid [%, V]
    info : ``sha256``, ``cycles`` (pairs used), ``cc_top_pct`` (top of the common CC-charge window),
        ``half_gap_mV`` (mean half-gap used above it), ``cycle_spread_mV`` (max spread of the per-cycle
        averages inside the common window, below and above 10 % SOC)
    """
    ts = read(path)
    t, v, i, step, q = _arrays(ts)
    blocks = _blocks(step)
    grid = np.round(np.arange(0.0, 100.0 + 1e-9, FINE_STEP_PCT), 6)
    dis, chg, lows, tops = [], [], [], []
    for n, (s, a, b) in enumerate(blocks):
        # discharge (step 2) right after the rest (step 5) that follows a CC-CV charge, then rest, then charge
        if s != 2 or n == 0 or blocks[n - 1][0] != 5 or n + 2 >= len(blocks) or blocks[n + 2][0] != 4:
            continue
        full = a - 1
        soc = 100.0 - 100.0 * (q[full] - q) / capacity_Ah
        kd = np.arange(a, b)
        kd = kd[np.abs(i[kd] + C15_A) < CC_TOLERANCE_A]
        ca, cb = blocks[n + 2][1:]
        kc = np.arange(ca, cb)
        cc = np.abs(i[kc] - C15_A) < CC_TOLERANCE_A
        kc = kc[: int(np.argmin(cc))] if not cc.all() else kc  # the CC part up to the first CV sample
        keep_d = soc[kd] <= 100.0 - DISCHARGE_SKIP_PCT
        keep_c = soc[kc] >= soc[kc[0]] + CHARGE_SKIP_PCT
        dis.append(np.interp(grid, soc[kd][keep_d][::-1], v[kd][keep_d][::-1], left=np.nan, right=np.nan))
        chg.append(np.interp(grid, soc[kc][keep_c], v[kc][keep_c], left=np.nan, right=np.nan))
        lows.append(float(soc[kc][keep_c][0]))
        tops.append(float(soc[kc][-1]))
    dis, chg = np.array(dis), np.array(chg)
    lo, hi = max(lows), min(tops)
    common = (grid >= lo) & (grid <= hi)
    mean_d, mean_c = dis.mean(axis=0), chg.mean(axis=0)
    half_gap = float(np.mean(((mean_c - mean_d) / 2)[common & (grid >= hi - TOP_HALF_GAP_PCT)]))
    ocv = np.where(common, (mean_d + mean_c) / 2, np.nan)
    above = (grid > hi) & ~np.isnan(mean_d) & np.all(~np.isnan(dis), axis=0)
    ocv[above] = mean_d[above] + half_gap
    ok = ~np.isnan(ocv)
    per_cycle = (dis + chg) / 2
    spread = per_cycle.max(axis=0) - per_cycle.min(axis=0)
    spread_low, spread_high = (float(np.max(spread[common & m])) for m in (grid < 10.0, grid >= 10.0))
    info = {"sha256": ts.meta.sha256, "cycles": len(lows), "cc_top_pct": hi, "half_gap_mV": 1e3 * half_gap,
            "cycle_spread_mV": (1e3 * spread_low, 1e3 * spread_high)}
    return grid[ok], ocv[ok], info


def anchor(pseudo_soc, pseudo_v, rests: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The table: pseudo-OCV + piecewise-linear offsets through the rest points, straight lines to the rest
    points outside the pseudo-OCV's range, on ``GRID_PCT`` plus the rest SOCs."""
    rs, rv = np.array([p[0] for p in rests]), np.array([p[1] for p in rests])
    lo, hi = pseudo_soc[0], pseudo_soc[-1]
    inside = (rs >= lo) & (rs <= hi)
    offset = rv[inside] - np.interp(rs[inside], pseudo_soc, pseudo_v)
    grid = np.array([g for g in GRID_PCT if np.min(np.abs(rs - g)) >= MIN_SPACING_PCT])
    grid = np.unique(np.concatenate((grid, rs[(rs >= 0.0) & (rs <= 100.0)])))
    inner = (grid >= lo) & (grid <= hi)
    table = np.empty(grid.size)
    table[inner] = np.interp(grid[inner], pseudo_soc, pseudo_v) + np.interp(grid[inner], rs[inside], offset)
    # outside: straight lines from the anchored pseudo-OCV at the end of its range to the outer rest points
    ends = np.array([lo, hi])
    v_ends = np.interp(ends, pseudo_soc, pseudo_v) + np.interp(ends, rs[inside], offset)
    knots_s = np.concatenate((rs[rs < lo], ends, rs[rs > hi]))
    knots_v = np.concatenate((rv[rs < lo], v_ends, rv[rs > hi]))
    table[~inner] = np.interp(grid[~inner], knots_s, knots_v)
    return [(float(a), float(b)) for a, b in zip(grid, table, strict=True)]


def derive(data_dir: Path) -> tuple[list[tuple[float, float]], dict]:
    """(soc_pct, ocv_V) rows of the table and what the header reports."""
    data_dir = Path(data_dir)
    rests, capacity, sha_hppc = hppc_rest_points(data_dir / HPPC_25C)
    bottoms = [bottom_rest_point(data_dir / name) for name in HPPC_BOTTOM]
    # linear in temperature between 10 and 40 degC = the mean at 25 degC
    rests = [(float(np.mean([b[0] for b in bottoms])), float(np.mean([b[1] for b in bottoms])))] + rests
    p_soc, p_v, info = pseudo_ocv(data_dir / CYCLING, capacity)
    points = anchor(p_soc, p_v, rests)
    s, v = np.array(points).T
    if np.any(np.diff(s) <= 0) or np.any(np.diff(np.round(v, 4)) <= 0):
        raise ValueError("the derived OCV table is not strictly increasing")
    info.update(capacity_Ah=capacity, sha_hppc=sha_hppc, sha_bottom=[b[2] for b in bottoms],
                bottom=[b[:2] for b in bottoms], pseudo_range=(float(p_soc[0]), float(p_soc[-1])),
                rests=rests)
    return points, info


def render(points, info: dict) -> str:
    (s10, v10), (s40, v40) = info["bottom"]
    lo, hi = info["pseudo_range"]
    sp_low, sp_high = info["cycle_spread_mV"]
    lines = [
        "# SOURCE: ORNL 2013 Nissan Leaf cell (github.com/batterysim/equiv-circ-model, MIT, (c) 2020 BatterySim; "
        "Wiggins, Allu, Wang, doi:10.5281/zenodo.2580327): HPPC at 25 degC (cell-low-current-hppc-25c-2.csv, "
        f"sha256 {info['sha_hppc']}), HPPC at 10 and 40 degC (cell-low-current-hppc-10c.csv sha256 "
        f"{info['sha_bottom'][0]}, cell-low-current-hppc-40c-1.csv sha256 {info['sha_bottom'][1]}), C/15 cycling "
        f"(cell-cycling-10c-24c-40c.csv, sha256 {info['sha256']}).",
        "# METHOD: rest points = voltage at the end of each 1 h rest of the 25 degC HPPC, SOC by coulomb counting "
        "(releaf.diagnostics.capacity.cumulative_Ah) from the rested full charge (100 %) to the 3.0 V cut-off at "
        f"10 A (0 %), {info['capacity_Ah']:.2f} Ah. Bottom point = mean of the 1 h rests after a 10 A discharge to "
        f"3.0 V at 10 degC ({v10:.3f} V at {s10:.2f} %) and 40 degC ({v40:.3f} V at {s40:.2f} %), SOC coulomb-counted "
        "on each file's own axis (no rest at 0 % at 25 degC). Shape between them: pseudo-OCV (Plett 2015, vol. I, "
        f"sec. 2.10) = mean of {info['cycles']} C/15 (2.17 A) CC discharge and CC charge curves (CV tail left "
        "out; IR incl. the ~111 mOhm outside the cell and hysteresis cancel) on one coulomb-counted SOC axis; "
        f"above {info['cc_top_pct']:.1f} % (top of the CC charge) discharge + {info['half_gap_mV']:.1f} mV "
        f"(mean half-gap); range {lo:.2f}-{hi:.2f} %; spread of the per-cycle averages {sp_low:.0f} mV below "
        f"10 %, {sp_high:.0f} mV above (no temperature column in that file; the shape only is used). "
        "Table = pseudo-OCV + piecewise-linear offsets through the rest points; straight lines to the bottom and "
        "100 % points. Regenerate with scripts/derive_leaf_ocv.py.",
        "soc_pct,ocv_V",
    ]
    lines += [f"{s:.2f},{v:.4f}" for s, v in points]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the ornl-leaf folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    points, info = derive(args.data)
    args.out.write_text(render(points, info))
    print(f"wrote {args.out}: {len(points)} points; sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
