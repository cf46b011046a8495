"""`releaf assemble`: a graded lot CSV into stations or NsMp packs, checked against brute force."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pack_oracle import brute_force_packs_Ah
from test_assembly import all_matchings

from releaf.assembly import ModuleCandidate, pair_usable_Wh
from releaf.parameters import PORTABLE_2S

RELEAF = [str(Path(sys.executable).with_name("releaf"))]

LOT = """module_id,capacity_Ah,r0_mOhm,grade,group_capacity_Ah_1,group_capacity_Ah_2,group_r0_mOhm_1,group_r0_mOhm_2
m1,50.0,2.0,A,50.0,51.0,1.0,1.0
m2,58.0,1.8,A,59.0,58.0,0.9,0.9
m3,52.0,2.2,A,53.0,52.0,1.1,1.1
m4,57.0,1.9,A,57.0,57.5,0.9,1.0
m5,49.0,2.4,A,49.5,49.0,1.2,1.2
m6,55.0,2.0,A,55.0,56.0,1.0,1.0
m7,51.0,2.1,A,51.0,51.0,1.0,1.1
r1,,,reject,,,,
b1,45.0,2.6,B,45.0,46.0,1.3,1.3
b2,44.0,2.7,B,44.0,44.5,1.3,1.4
"""


def releaf(*args):
    return subprocess.run([*RELEAF, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture
def lot_csv(tmp_path):
    path = tmp_path / "lot.csv"
    path.write_text(LOT)
    return path


def modules():
    rows = [line.split(",") for line in LOT.strip().splitlines()[1:]]
    return {r[0]: ModuleCandidate(r[0], r[3], (float(r[4]), float(r[5])), (float(r[6]), float(r[7])))
            for r in rows if r[3] != "reject"}


def grade_a_arrays(mods):
    """The grade-A modules of LOT (the B modules cannot fill a 2s2p pack): serials, capacities [Ah], R0 [mOhm]."""
    serials = [s for s in mods if mods[s].grade == "A"]
    return (serials, np.array([min(mods[s].group_capacity_Ah) for s in serials]),
            np.array([sum(mods[s].group_r0_mOhm) for s in serials]))


def test_assemble_pairs_json_is_the_brute_force_optimum(lot_csv):
    out = releaf("assemble", "--modules", lot_csv, "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)  # stdout is JSON only
    mods = modules()
    cap = {s: min(m.group_capacity_Ah) for s, m in mods.items()}
    best = 0.0
    for grade in ("A", "B"):
        same = [s for s in mods if mods[s].grade == grade]
        best += max(sum(min(cap[a], cap[b]) for a, b in m) for m in all_matchings(same))
    assert res["design"] == "portable-2s" and res["optimal"] is True
    assert res["total_series_capacity_Ah"] == pytest.approx(best)
    # by hand: A sorted 49 50 51 52 55 57 58 → drop 49, pairs (50, 51) (52, 55) (57, 58); B (44, 45)
    assert best == 50.0 + 52.0 + 57.0 + 44.0
    assert len(res["stations"]) == 4
    for st in res["stations"]:
        a, b = (mods[s] for s in st["members"])
        assert st["usable_Wh"] == pytest.approx(pair_usable_Wh(a, b, PORTABLE_2S))
        assert st["grade"] == a.grade == b.grade
    assert res["total_usable_Wh"] == pytest.approx(sum(st["usable_Wh"] for st in res["stations"]))
    reasons = {u["module_id"]: u["reason"] for u in res["unassigned"]}
    assert set(reasons) == {"m5", "r1"} and reasons["r1"] == "graded reject" and "odd one out" in reasons["m5"]


def test_assemble_packs_json(lot_csv):
    out = releaf("assemble", "--modules", lot_csv, "--design", "2s2p", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    mods = modules()
    serials, caps, r0 = grade_a_arrays(mods)
    best = brute_force_packs_Ah(caps, r0, 2, 2)  # the B modules cannot fill a pack
    assert res["design"] == "2s2p" and res["total_series_capacity_Ah"] == pytest.approx(best)
    assert res["total_series_capacity_Ah"] <= res["upper_bound_Ah"]
    for st in res["stations"]:
        assert len(st["groups"]) == 2 and all(len(g) == 2 for g in st["groups"])
        assert st["members"] == [s for g in st["groups"] for s in g]
        assert st["usable_Wh"] == pytest.approx(st["series_capacity_Ah"] * 7.6 * 2)
    unassigned = {u["module_id"] for u in res["unassigned"]}
    used = {s for st in res["stations"] for s in st["members"]}
    assert unassigned | used == set(mods) | {"r1"} and not unassigned & used


def test_assemble_table_output(lot_csv):
    out = releaf("assemble", "--modules", lot_csv, "--design", "12s1p")
    assert out.returncode == 0, out.stderr
    assert "0 x 12s1p" in out.stdout and "unassigned" in out.stdout


@pytest.mark.parametrize("args, text, expected", [
    (["--design", "portable-2s"], "module_id,capacity_Ah,grade\nm1,50,A\n", "line 1, column 'r0_mOhm': missing"),
    (["--design", "portable-2s"], "module_id,capacity_Ah,r0_mOhm,grade\nm1,50,2,A\nm1,51,2,A\n",
     "line 3, column 'module_id'"),
    (["--design", "4s4x"], "module_id,capacity_Ah,r0_mOhm,grade\nm1,50,2,A\n", "error: design: unknown design"),
    (["--design", "2s2p", "--group-capacity-tolerance", "5"], "module_id,capacity_Ah,r0_mOhm,grade\nm1,50,2,A\n",
     "error: group_capacity_tolerance: 5 is not a fraction from 0 to 1"),
    (["--design", "2s2p", "--policy", "no-such-policy"], "module_id,capacity_Ah,r0_mOhm,grade\nm1,50,2,A\n",
     "no-such-policy"),
])
def test_assemble_errors_one_line_exit_2(tmp_path, args, text, expected):
    path = tmp_path / "bad-lot.csv"
    path.write_text(text)
    out = releaf("assemble", "--modules", path, *args, "--json")
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    if "design:" not in expected and "tolerance" not in expected and "policy" not in expected:
        assert str(path) in lines[0]


def test_assemble_tolerances_come_from_the_policy(lot_csv, tmp_path):
    # the packs the tolerances allow, checked against the brute force at each tolerance: the packaged policy's 5 %,
    # a policy file's 20 % (a group of 57 and 52 Ah, 8.8 % apart, becomes possible), and the command line's 3 %
    # over that policy
    serials, caps, r0 = grade_a_arrays(modules())
    cap_of = dict(zip(serials, caps, strict=True))
    src = Path(__file__).parents[2] / "src/releaf/parameters/policies/leaf-default.yaml"
    wide = tmp_path / "wide.yaml"
    wide.write_text(src.read_text().replace("  group_capacity_tolerance:\n    value: 0.05",
                                            "  group_capacity_tolerance:\n    value: 0.2"))
    spreads = {}
    for tolerance, extra in ((0.05, ()), (0.2, ("--policy", wide)),
                             (0.03, ("--policy", wide, "--group-capacity-tolerance", "0.03"))):
        out = releaf("assemble", "--modules", lot_csv, "--design", "2s2p", *extra, "--json")
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout)
        assert f"{tolerance:g} capacity and 0.15 R0 spread" in res["method"]
        assert res["total_series_capacity_Ah"] == pytest.approx(brute_force_packs_Ah(caps, r0, 2, 2, ct=tolerance))
        spreads[tolerance] = [1 - min(cap_of[m] for m in g) / max(cap_of[m] for m in g)
                              for st in res["stations"] for g in st["groups"]]
        assert max(spreads[tolerance]) <= tolerance + 1e-12
    assert max(spreads[0.2]) > 0.05  # the wider policy was used, not the default


def test_assemble_improve_s_reaches_the_brute_force_optimum(lot_csv):
    # a lot this small is one window: the exact re-solving ends at the optimum over every assembly
    _, caps, r0 = grade_a_arrays(modules())
    out = releaf("assemble", "--modules", lot_csv, "--design", "2s2p", "--improve-s", "5", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert "exact re-solving of adjacent packs" in res["method"]
    assert res["total_series_capacity_Ah"] == pytest.approx(brute_force_packs_Ah(caps, r0, 2, 2))
