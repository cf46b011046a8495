"""Test oracle for NsMp packs: the brute force over every assembly of a tiny lot, and shared lot makers.

The brute force tries every choice of disjoint packs and every split of a pack into parallel groups: exponential,
for lots of up to 9 modules. It shares no code with ``releaf.packs`` or ``releaf.packs_exact``.
"""

import itertools

import numpy as np
from hypothesis import strategies as st

from releaf.assembly import relative_spread
from releaf.packs import CAPACITY_TOLERANCE, R0_TOLERANCE


def brute_force_packs_Ah(caps, r0s, n_series, n_parallel, ct=CAPACITY_TOLERANCE, rt=R0_TOLERANCE):
    """Best total pack capacity over every choice of disjoint packs and every split of a pack into groups."""
    def group_ok(g):
        c, r = [caps[i] for i in g], [r0s[i] for i in g]
        return max(c) - min(c) <= ct * max(c) and max(r) - min(r) <= rt * max(r)

    def best_split(mods):  # the pack's capacity: best min group sum over the splits into valid groups
        if not mods:
            return np.inf
        first, rest = mods[0], mods[1:]
        value = -np.inf
        for mates in itertools.combinations(rest, n_parallel - 1):
            g = (first, *mates)
            if group_ok(g):
                left = [m for m in rest if m not in mates]
                value = max(value, min(sum(caps[i] for i in g), best_split(left)))
        return value

    def best(mods):
        if len(mods) < n_series * n_parallel:
            return 0.0
        first, rest = mods[0], mods[1:]
        value = best(rest)
        for others in itertools.combinations(rest, n_series * n_parallel - 1):
            cap = best_split([first, *others])
            if cap > 0:
                value = max(value, cap + best([m for m in rest if m not in others]))
        return value
    return best(list(range(len(caps))))


SMALL_LOT = st.lists(st.tuples(st.floats(40, 60), st.floats(1.0, 2.5)), min_size=0, max_size=9)
"""Up to 9 modules: (capacity [Ah], R0 [mOhm]), small enough for the brute force."""


def lot_arrays(mods):
    """Capacities and resistances of a SMALL_LOT example as arrays."""
    return np.array([c for c, _ in mods]), np.array([r for _, r in mods])


def assert_valid_packs(packs, caps, r0s):
    """No module twice; every parallel group within the default capacity and R0 spreads."""
    assert len(set(packs.reshape(-1).tolist())) == packs.size
    for pk in packs:
        for g in pk:
            assert relative_spread(caps[g]) <= CAPACITY_TOLERANCE + 1e-12
            assert relative_spread(r0s[g]) <= R0_TOLERANCE + 1e-12


def generated_lot(n, seed):
    """A GENERATED lot of n modules: capacities [Ah] (SOH ~ N(0.78, 0.06) of 65 Ah) and R0 [mOhm] (growing as
    capacity fades)."""
    rng = np.random.default_rng(seed)
    soh = np.clip(rng.normal(0.78, 0.06, n), 0.55, 0.95)
    return 65 * soh, 2.0 * (0.8 / soh) ** 1.5 * rng.lognormal(0, 0.06, n)
