"""releaf.packs_anneal: regrouping NsMp packs by simulated annealing, against the brute force and the level MILP."""

import importlib.util

import numpy as np
import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st
from pack_oracle import SMALL_LOT, assert_valid_packs, brute_force_packs_Ah, generated_lot, lot_arrays

from releaf.packs import build_packs, pack_capacity_Ah, pack_capacity_upper_bound
from releaf.packs_anneal import anneal_packs
from releaf.packs_exact import level_milp, polish_packs


def _benchmark_lot(n, seed):
    """``random_lot`` of ``benchmarks/assembly_gap.py``: the gap table's lots, loaded from the benchmark itself."""
    spec = importlib.util.spec_from_file_location("assembly_gap", REPO / "benchmarks" / "assembly_gap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.random_lot(n, seed)


@settings(max_examples=40, deadline=None)
@given(SMALL_LOT, st.sampled_from([(2, 2), (1, 3), (1, 2), (2, 3)]), st.integers(0, 3))
def test_anneal_keeps_valid_packs_and_never_loses(mods, design, seed):
    n_series, n_parallel = design
    caps, r0s = lot_arrays(mods)
    before = build_packs(caps, r0s, n_series, n_parallel)
    after = anneal_packs(caps, r0s, before, iterations=3000, seed=seed)
    assert after.shape == before.shape
    assert_valid_packs(after, caps, r0s)
    total = pack_capacity_Ah(caps, after).sum()
    assert pack_capacity_Ah(caps, before).sum() - 1e-9 <= total
    assert total <= brute_force_packs_Ah(caps, r0s, n_series, n_parallel) + 1e-9
    # packs strongest first, positions strongest first
    q = pack_capacity_Ah(caps, after)
    assert np.all(np.diff(q) <= 1e-12)
    assert np.all(np.diff(caps[after].sum(axis=2), axis=1) <= 1e-12)


def test_anneal_is_reproducible():
    caps, r0s = generated_lot(60, 4)
    before = build_packs(caps, r0s, 4, 3)
    first = anneal_packs(caps, r0s, before, iterations=20_000, seed=7)
    assert np.array_equal(first, anneal_packs(caps, r0s, before, iterations=20_000, seed=7))


@pytest.mark.parametrize("seed, heuristic_Ah, optimum_Ah", [(7, 300.0871, 300.1260), (11, 395.6927, 396.0542)])
def test_anneal_reaches_the_proven_optimum(seed, heuristic_Ah, optimum_Ah):
    # 32 generated modules, 4s2p, where the heuristic stops below the level MILP's proven optimum with as many packs
    # and re-solving one pack at a time (with the nearest unused modules) finds nothing: annealing reaches it
    caps, r0s = generated_lot(32, seed)
    before = build_packs(caps, r0s, 4, 2)
    exact = level_milp(caps, r0s, 4, 2, time_limit_s=60)
    assert exact.closed and exact.dual_bound_Ah == pytest.approx(optimum_Ah, abs=1e-4)
    assert pack_capacity_Ah(caps, before).sum() == pytest.approx(heuristic_Ah, abs=1e-4)
    windows = polish_packs(caps, r0s, before, time_limit_s=20, window=1, anneal_iterations=0)
    assert pack_capacity_Ah(caps, windows).sum() == pytest.approx(heuristic_Ah, abs=1e-4)
    after = anneal_packs(caps, r0s, before)
    assert_valid_packs(after, caps, r0s)
    assert pack_capacity_Ah(caps, after).sum() == pytest.approx(exact.dual_bound_Ah, rel=1e-6)


def test_anneal_uses_the_module_the_heuristic_strands():
    # issue 12's last lot above the 0.1 % goal (benchmarks/assembly_gap.py, 4s3p, 200 modules, seed 0). The
    # heuristic leaves out a 46.06 Ah module of unusually low R0 (1.875 mOhm) and uses a 43.12 Ah one that caps the
    # weakest pack at 133.00 Ah, 1.39 Ah below that pack's mean; HiGHS found nothing better over the four weakest
    # packs in 500 s. Annealing the whole lot reaches within 0.01 % of the mean-of-groups bound
    group_caps, group_r0s = _benchmark_lot(200, 0)
    caps, r0s = group_caps.min(axis=1), group_r0s.sum(axis=1)  # as the benchmark makes modules of its groups
    before = build_packs(caps, r0s, 4, 3)
    bound = pack_capacity_upper_bound(caps, r0s, 4, 3)
    assert pack_capacity_Ah(caps, before).sum() == pytest.approx(2439.522, abs=1e-3)
    assert bound == pytest.approx(2442.207, abs=1e-3)
    stranded = int(np.flatnonzero(np.isclose(caps, 46.06, atol=0.005))[0])
    assert stranded not in before
    after = anneal_packs(caps, r0s, before)
    assert_valid_packs(after, caps, r0s)
    assert stranded in after
    assert pack_capacity_Ah(caps, after).sum() >= 0.9999 * bound
