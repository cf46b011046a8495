import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matching_oracle import max_weight_matching

from releaf.assembly import ModuleCandidate, match_pairs, pair_usable_Wh
from releaf.errors import ConfigError, InputFileError
from releaf.parameters import PORTABLE_2S
from releaf.station.twin import simulate_discharge


def cand(serial, grade, caps, r0=(1.0, 1.0)):
    return ModuleCandidate(serial, grade, tuple(caps), tuple(r0))


def series_Ah(c):
    return min(c.group_capacity_Ah)


def all_matchings(items):
    """Every matching of ``items`` (each item unmatched or paired with a later one), as lists of pairs."""
    if not items:
        yield []
        return
    first, others = items[0], items[1:]
    yield from all_matchings(others)  # first left unmatched
    for k, other in enumerate(others):
        for rest in all_matchings(others[:k] + others[k + 1:]):
            yield [(first, other), *rest]


def brute_force_series_Ah(cands, allow_mixed, tolerance=None):
    """The largest total series capacity over all matchings that respect grades (and the tolerance)."""
    def ok(a, b):
        if a.grade == "reject" or b.grade == "reject" or (not allow_mixed and a.grade != b.grade):
            return False
        hi, lo = max(series_Ah(a), series_Ah(b)), min(series_Ah(a), series_Ah(b))
        return tolerance is None or hi - lo <= tolerance * hi
    return max(sum(min(series_Ah(a), series_Ah(b)) for a, b in m)
               for m in all_matchings(list(cands)) if all(ok(a, b) for a, b in m))


module = st.tuples(
    st.sampled_from(["A", "A", "B", "reject"]),
    # few distinct values as well, so that ties in capacity occur
    st.tuples(st.one_of(st.floats(35, 66), st.sampled_from([40.0, 50.0])),
              st.one_of(st.floats(35, 66), st.sampled_from([40.0, 50.0]))),
    st.tuples(st.floats(0.5, 3.0), st.floats(0.5, 3.0)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(module, min_size=0, max_size=10), st.booleans(),
       st.one_of(st.none(), st.sampled_from([0.0, 0.02, 0.05, 0.2])))
def test_pairing_equals_brute_force(mods, allow_mixed, tolerance):
    cands = [cand(f"S{i}", g, c, r) for i, (g, c, r) in enumerate(mods)]
    p = match_pairs(cands, PORTABLE_2S, allow_mixed_grades=allow_mixed, capacity_tolerance=tolerance)
    assert p.optimal
    assert p.total_series_capacity_Ah == pytest.approx(brute_force_series_Ah(cands, allow_mixed, tolerance),
                                                       rel=1e-9, abs=1e-9)
    used = [s for station in p.stations for s in station.modules]
    assert len(used) == len(set(used))
    assert sorted(used + list(p.unmatched) + list(p.excluded)) == sorted(c.serial for c in cands)
    by = {c.serial: c for c in cands}
    for s in p.stations:
        a, b = (by[m] for m in s.modules)
        assert s.series_capacity_Ah == pytest.approx(min(series_Ah(a), series_Ah(b)))
        assert s.usable_Wh == pytest.approx(pair_usable_Wh(a, b, PORTABLE_2S))
        assert allow_mixed or a.grade == b.grade
    assert p.total_usable_Wh == pytest.approx(sum(s.usable_Wh for s in p.stations))


def test_equals_milp_on_the_complete_graph():
    """The HiGHS maximum-weight matching MILP (the old product code) over all pairs of 60 modules agrees."""
    rng = np.random.default_rng(5)
    cands = [cand(f"m{i:02d}", "A", rng.uniform(38, 62, 2), rng.uniform(0.8, 2.5, 2)) for i in range(61)]
    caps = np.array([series_Ah(c) for c in cands])
    weights = np.minimum(caps[:, None], caps[None, :])
    pairs, proven = max_weight_matching(weights, time_limit_s=120)
    assert proven
    p = match_pairs(cands, PORTABLE_2S)
    assert len(p.stations) == len(pairs) == 30
    assert p.total_series_capacity_Ah == pytest.approx(sum(weights[i, j] for i, j in pairs), rel=1e-9)
    assert p.unmatched == (cands[int(np.argmin(caps))].serial,)


def test_similar_modules_are_paired():
    cands = [cand("a", "A", (50, 50)), cand("b", "A", (60, 60)), cand("c", "A", (50.5, 50)), cand("d", "A", (60, 61))]
    p = match_pairs(cands, PORTABLE_2S)
    # strongest first, serials sorted within a station
    assert [s.modules for s in p.stations] == [("b", "d"), ("a", "c")]
    assert [s.series_capacity_Ah for s in p.stations] == [60.0, 50.0]
    assert p.total_series_capacity_Ah == 110.0
    assert p.stations[0].usable_Wh > p.stations[1].usable_Wh
    assert p.total_usable_Wh == pytest.approx(sum(s.usable_Wh for s in p.stations))
    assert p.unmatched == () and p.optimal
    assert "exact" in p.method and "min(capacity" in p.objective


def test_resistance_breaks_ties():
    # four modules of one capacity: the two low-resistance ones go together, the two high ones together
    cands = [cand("a", "A", (50, 50), (1.0, 1.0)), cand("b", "A", (50, 50), (2.0, 2.0)),
             cand("c", "A", (50, 50), (1.1, 1.0)), cand("d", "A", (50, 50), (2.0, 2.1))]
    p = match_pairs(cands, PORTABLE_2S)
    assert sorted(s.modules for s in p.stations) == [("a", "c"), ("b", "d")]


def test_capacity_tolerance_leaves_lone_modules():
    cands = [cand("a", "A", (50, 50)), cand("b", "A", (51, 51)), cand("c", "A", (60, 60)), cand("d", "A", (52, 52))]
    p = match_pairs(cands, PORTABLE_2S, capacity_tolerance=0.03)
    # c has no partner within 3 %; of a, b, d the best is (b, d): 51 > 50
    assert [s.modules for s in p.stations] == [("b", "d")]
    assert p.unmatched == ("a", "c") and "0.03" in p.method


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
    assert p.total_series_capacity_Ah == 51 + 53


def test_large_lot_is_exact():
    """Sorted-order pairing: the closed form, checked independently of the programme."""
    rng = np.random.default_rng(3)
    caps = rng.uniform(40, 65, (10_001, 2))
    cands = [cand(f"m{i:05d}", "A", caps[i], (1.0, 1.0)) for i in range(len(caps))]
    p = match_pairs(cands, PORTABLE_2S)
    assert p.optimal and len(p.stations) == 5000 and len(p.unmatched) == 1
    expected = np.sort(caps.min(axis=1))[1::2].sum()  # drop the smallest, pair neighbours: the lower ones count
    assert p.total_series_capacity_Ah == pytest.approx(expected, rel=1e-12)
    wh = [s.usable_Wh for s in p.stations]
    assert wh == sorted(wh, reverse=True)


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
