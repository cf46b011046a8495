"""Series groups inside a module or string: which one limits the capacity, and by how much.

A series string stops when its first group reaches the cut-off; the others still hold charge. That remaining
charge is read off the limiting group's own discharge curve: a group that ended at voltage ``V_g`` is where the
limiting group was when it had ``q(V_g)`` Ah still to go, so its capacity is the string capacity plus that.
This assumes the groups started equally full (they were charged in series) and share the limiting group's
curve shape (same chemistry, same current); it is an estimate, and marked as such in ``releaf.schema.records``.
"""

from __future__ import annotations

import numpy as np

from releaf.schema.records import GroupDiagnosis


def remaining_Ah_on_curve(voltage_V: np.ndarray, removed_Ah: np.ndarray, end_voltage_V: float) -> float:
    """Charge the limiting group still had to deliver when it was at ``end_voltage_V`` [Ah].

    Parameters
    ----------
    voltage_V : limiting group's voltage during the discharge [V]
    removed_Ah : charge removed since the start of the discharge, same samples [Ah], non-decreasing
    end_voltage_V : voltage of another group at the end of the discharge [V]

    Returns
    -------
    ``removed_Ah[-1] - removed_Ah`` at the last sample where the limiting group was still at or above
    ``end_voltage_V``; 0 if it never dropped below it.
    """
    above = np.flatnonzero(voltage_V >= end_voltage_V)
    if above.size == 0:
        return float(removed_Ah[-1])
    k = int(above[-1])
    if k + 1 >= len(voltage_V):
        return 0.0
    # interpolate between the last sample above and the first below
    v0, v1 = voltage_V[k], voltage_V[k + 1]
    q0, q1 = removed_Ah[k], removed_Ah[k + 1]
    q = q0 if v0 == v1 else q0 + (q1 - q0) * (v0 - end_voltage_V) / (v0 - v1)
    return float(removed_Ah[-1] - q)


def diagnose_groups(
    group_voltages_V: list[np.ndarray],
    removed_Ah: np.ndarray | None,
    *,
    string_capacity_Ah: float | None,
    discharge: slice | None,
    group_r0_mOhm: tuple[float | None, ...] = (),
    group_r_1s_mOhm: tuple[float | None, ...] = (),
    group_r_10s_mOhm: tuple[float | None, ...] = (),
) -> tuple[tuple[GroupDiagnosis, ...], int | None]:
    """Per-group end voltage, minimum voltage, ohmic resistance and capacity, and the limiting group.

    Parameters
    ----------
    group_voltages_V : one array per series group, whole test [V]
    removed_Ah : charge removed since the start of ``discharge``, over the samples of ``discharge`` [Ah]
    string_capacity_Ah : capacity of the full discharge [Ah], or None if there was none
    discharge : the samples of the full discharge the capacities refer to, or None
    group_r0_mOhm, group_r_1s_mOhm, group_r_10s_mOhm : per-group resistance from the chosen current step, ohmic
        and 1 s / 10 s after it [mOhm]

    Returns
    -------
    groups : one :class:`releaf.schema.records.GroupDiagnosis` per group (``group`` is 1-based)
    weakest_group : 1-based index of the group with the lowest voltage at the end of the discharge (the one that
        reached the cut-off), or None without a discharge
    """
    n = len(group_voltages_V)
    def padded(values):
        return list(values) + [None] * (n - len(values))

    r0, r1, r10 = padded(group_r0_mOhm), padded(group_r_1s_mOhm), padded(group_r_10s_mOhm)
    if discharge is None or not group_voltages_V:  # no taps (and not one group): nothing per group to say
        groups = tuple(
            GroupDiagnosis(k + 1, None, r0[k], None, float(np.nanmin(g)), r1[k], r10[k])
            for k, g in enumerate(group_voltages_V)
        )
        return groups, None
    ends = [float(g[discharge][-1]) for g in group_voltages_V]
    weakest = int(np.argmin(ends))
    limiting_curve = group_voltages_V[weakest][discharge]
    groups = []
    for k, g in enumerate(group_voltages_V):
        capacity = None
        if string_capacity_Ah is not None and removed_Ah is not None:
            capacity = string_capacity_Ah + (
                0.0 if k == weakest else remaining_Ah_on_curve(limiting_curve, removed_Ah, ends[k])
            )
        groups.append(GroupDiagnosis(k + 1, capacity, r0[k], ends[k], float(np.nanmin(g)), r1[k], r10[k]))
    return tuple(groups), weakest + 1
