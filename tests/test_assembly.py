import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from releaf.assembly import ModuleCandidate, match_pairs, pair_usable_Wh
from releaf.errors import ConfigError, InputFileError
from releaf.parameters import PORTABLE_2S
from releaf.station.twin import simulate_discharge


def cand(serial, grade, caps, r0=(1.0, 1.0)):
    return ModuleCandidate(serial, grade, tuple(caps), tuple(r0))


def best_matching_Wh(cands, allow_mixed):
    """Brute force: the heaviest of all matchings (each module unmatched or paired with a later one)."""
    def best(rest):
        if not rest:
            return 0.0
        first, others = rest[0], rest[1:]
        value = best(others)  # first left unmatched
        for k, other in enumerate(others):
            if first.grade == "reject" or other.grade == "reject":
                continue
            if not allow_mixed and first.grade != other.grade:
                continue
            w = pair_usable_Wh(first, other, PORTABLE_2S)
            value = max(value, w + best(others[:k] + others[k + 1:]))
        return value
    return best(list(cands))


module = st.tuples(
    st.sampled_from(["A", "A", "B", "reject"]),
    st.tuples(st.floats(35, 66), st.floats(35, 66)),
    st.tuples(st.floats(0.5, 3.0), st.floats(0.5, 3.0)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(module, min_size=0, max_size=8), st.booleans())
def test_milp_equals_brute_force(mods, allow_mixed):
    cands = [cand(f"S{i}", g, c, r) for i, (g, c, r) in enumerate(mods)]
    p = match_pairs(cands, PORTABLE_2S, allow_mixed_grades=allow_mixed)
    assert p.optimal
    assert p.total_usable_Wh == pytest.approx(best_matching_Wh(cands, allow_mixed), rel=1e-9, abs=1e-9)
    used = [s for station in p.stations for s in station.modules]
    assert len(used) == len(set(used))
    assert sorted(used + list(p.unmatched) + list(p.excluded)) == sorted(c.serial for c in cands)


def test_similar_modules_are_paired():
    cands = [cand("a", "A", (50, 50)), cand("b", "A", (60, 60)), cand("c", "A", (50.5, 50)), cand("d", "A", (60, 61))]
    p = match_pairs(cands, PORTABLE_2S)
    # strongest first, serials sorted within a station
    assert [s.modules for s in p.stations] == [("b", "d"), ("a", "c")]
    assert p.stations[0].usable_Wh > p.stations[1].usable_Wh
    assert p.total_usable_Wh == pytest.approx(sum(s.usable_Wh for s in p.stations))
    assert p.unmatched == () and p.optimal
    assert "complete graph" in p.method


def test_rejects_excluded_and_grades_not_mixed():
    cands = [cand("a", "A", (60, 60)), cand("b", "B", (60, 60)), cand("r1", "reject", (60, 60)),
             cand("r2", "reject", ()), cand("c", "B", (55, 55))]
    p = match_pairs(cands, PORTABLE_2S)
    assert [s.modules for s in p.stations] == [("b", "c")]
    assert [s.grade for s in p.stations] == ["B"]
    assert p.unmatched == ("a",)
    assert p.excluded == ("r1", "r2")
    mixed = match_pairs(cands, PORTABLE_2S, allow_mixed_grades=True)
    assert mixed.stations[0].modules == ("a", "b") and mixed.stations[0].grade == "B"
    assert all("r1" not in s.modules and "r2" not in s.modules for s in mixed.stations)


def test_odd_count_leaves_one_unmatched():
    cands = [cand(f"m{i}", "A", (50 + i, 50 + i)) for i in range(5)]
    p = match_pairs(cands, PORTABLE_2S)
    assert len(p.stations) == 2 and len(p.unmatched) == 1
    assert p.unmatched == ("m0",)  # the weakest is the odd one out


def test_large_lot_uses_blocks():
    rng = np.random.default_rng(3)
    cands = [cand(f"m{i:03d}", "A", rng.uniform(40, 65, 2), rng.uniform(0.8, 2.5, 2)) for i in range(51)]
    p = match_pairs(cands, PORTABLE_2S, block_size=20)
    assert not p.optimal and "blocks" in p.method
    used = [s for station in p.stations for s in station.modules]
    assert len(used) == len(set(used)) == 50 and len(p.unmatched) == 1
    wh = [s.usable_Wh for s in p.stations]
    assert wh == sorted(wh, reverse=True)
    full = match_pairs(cands, PORTABLE_2S)
    assert full.optimal and full.total_usable_Wh >= p.total_usable_Wh - 1e-6
    assert p.total_usable_Wh == pytest.approx(full.total_usable_Wh, rel=0.01)


def test_edge_weight_matches_station_twin():
    rng = np.random.default_rng(11)
    for _ in range(12):
        a = cand("a", "A", rng.uniform(35, 66, 2), rng.uniform(0.5, 3.0, 2))
        b = cand("b", "A", rng.uniform(35, 66, 2), rng.uniform(0.5, 3.0, 2))
        sim = simulate_discharge([a.state, b.state], PORTABLE_2S, 100.0).energy_Wh
        assert pair_usable_Wh(a, b, PORTABLE_2S, 100.0) == pytest.approx(sim, rel=0.01)


def test_bad_inputs():
    with pytest.raises(InputFileError, match="grade"):
        ModuleCandidate("x", "D", (60, 60), (1, 1))
    with pytest.raises(InputFileError, match="positive capacity"):
        match_pairs([cand("x", "A", (60, float("nan"))), cand("y", "A", (60, 60))], PORTABLE_2S)
    with pytest.raises(InputFileError, match="one value per group"):
        match_pairs([cand("x", "A", ()), cand("y", "A", (60, 60))], PORTABLE_2S)
    with pytest.raises(InputFileError, match="twice"):
        match_pairs([cand("x", "A", (60, 60)), cand("x", "A", (60, 60))], PORTABLE_2S)
    with pytest.raises(ConfigError, match="two modules in series"):
        match_pairs([], dataclasses.replace(PORTABLE_2S, modules_in_series=3))


def test_empty_and_to_dict():
    p = match_pairs([], PORTABLE_2S)
    assert p.stations == () and p.total_usable_Wh == 0.0 and p.optimal
    d = match_pairs([cand("a", "A", (60, 60)), cand("b", "A", (60, 60))], PORTABLE_2S).to_dict()
    assert d["stations"][0]["modules"] == ["a", "b"] and d["stations"][0]["grade"] == "A"


def test_solver_prints_nothing_on_stdout():
    """`--json` output stays clean: creating HiGHS and solving a matching write nothing to the C-level stdout.

    HiGHS prints its banner at most once per process, so the check runs in a fresh interpreter whose file
    descriptor 1 is captured (an in-process capture would pass once any earlier test had created a solver).
    """
    code = ("from releaf.assembly import ModuleCandidate, match_pairs\n"
            "from releaf.parameters import PORTABLE_2S\n"
            "caps = {'a': 50.0, 'b': 60.0, 'c': 50.5, 'd': 61.0, 'e': 55.0}\n"
            "p = match_pairs([ModuleCandidate(s, 'A', (c, c), (1.0, 1.0)) for s, c in caps.items()], PORTABLE_2S)\n"
            "assert len(p.stations) == 2 and p.optimal, p\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
