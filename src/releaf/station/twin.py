"""Station twin: a string of second-life modules behind a BMS, an inverter and a DC converter.

The model is deliberately simple (a fuller ECM + BMS twin comes later) but every number is computed, not
assumed:

* every series group (2 cells in parallel in a Leaf module) is an OCV source with an ohmic resistance R0; its
  OCV follows the cell OCV-SOC table of the design's module (``station_profile.module.ocv_table``, see
  ``releaf.models.ocv``; parallel cells share one voltage, so the cell table is the group table) with SOC counted
  against the group's own measured capacity;
* the station starts full: the BMS charged every group to its upper limit (``group_v_max_V``) — top-balanced;
* the load draws constant power at the battery terminals (the DC bus); the series string carries one current, so
  the charge drawn ``q`` [Ah] is the single state of the whole string;
* the discharge ends when ANY group's loaded voltage (OCV + I·R0, I < 0 on discharge) reaches the BMS cut-off
  ``group_v_min_V``: the weakest group ends it.

Because the string has one state, the discharge is integrated on a grid in charge rather than in time
(``dt/dq = 1/|I(q)|``): that is exact in the state, fully vectorised and takes well under a millisecond.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from releaf.errors import ConfigError, InputFileError
from releaf.models.ocv import soc_pct_at_ocv
from releaf.parameters import StationProfile
from releaf.schema.records import Certification, Diagnosis, UseCaseRuntime
from releaf.station.loads import UseCase

REFERENCE_POWER_W = 100.0
"""Power at the DC bus at which a station's usable energy is quoted [W] (about C/9 for a fresh 2-module station)."""


@dataclass(frozen=True)
class ModuleState:
    """What the twin needs to know about one module.

    Attributes
    ----------
    serial : module serial number
    group_capacity_Ah : capacity of each series group [Ah], in series order
    group_r0_mOhm : ohmic resistance of each series group [mOhm], in series order
    """

    serial: str
    group_capacity_Ah: tuple[float, ...]
    group_r0_mOhm: tuple[float, ...]

    def __post_init__(self):
        cap, r0 = tuple(self.group_capacity_Ah), tuple(self.group_r0_mOhm)
        if not cap or len(cap) != len(r0):
            raise InputFileError(self.serial, "group_capacity_Ah and group_r0_mOhm need one value per group")
        if not all(c is not None and np.isfinite(c) and c > 0 for c in cap):
            raise InputFileError(self.serial, f"every group needs a positive capacity [Ah], got {cap}")
        if not all(r is not None and np.isfinite(r) and r >= 0 for r in r0):
            raise InputFileError(self.serial, f"every group needs a resistance >= 0 [mOhm], got {r0}")
        object.__setattr__(self, "group_capacity_Ah", tuple(float(c) for c in cap))
        object.__setattr__(self, "group_r0_mOhm", tuple(float(r) for r in r0))


def module_state_from_diagnosis(serial: str, diagnosis: Diagnosis, *,
                                default_r0_mOhm: float | None = None) -> ModuleState:
    """Build a :class:`ModuleState` from a module's diagnosis.

    Group values come from ``diagnosis.groups``. Where the test had no group voltage taps (or a group value is
    missing) the module values stand in: every group of a series module carries the module's charge, so each
    group gets ``capacity_Ah``, and the module R0 is split evenly, ``r0_mOhm / series_groups``.

    Parameters
    ----------
    serial : module serial number
    diagnosis : the module's :class:`releaf.schema.records.Diagnosis`
    default_r0_mOhm : module R0 to assume when none was measured [mOhm]; None (default) raises instead

    Raises
    ------
    InputFileError : no capacity measured, or no R0 measured and no default given
    """
    n = diagnosis.series_groups or len(diagnosis.groups)
    if n < 1:
        raise InputFileError(diagnosis.file, f"module {serial}: the diagnosis has no series groups")
    groups = {g.group: g for g in diagnosis.groups}
    module_r0 = diagnosis.r0_mOhm if diagnosis.r0_mOhm is not None else default_r0_mOhm
    caps, r0s = [], []
    for k in range(1, n + 1):
        g = groups.get(k)
        cap = g.capacity_Ah if g is not None and g.capacity_Ah is not None else diagnosis.capacity_Ah
        r0 = g.r0_mOhm if g is not None and g.r0_mOhm is not None else (
            None if module_r0 is None else module_r0 / n)
        if cap is None:
            raise InputFileError(diagnosis.file, f"module {serial}: no capacity measured (needs a full discharge)")
        if r0 is None:
            raise InputFileError(diagnosis.file, f"module {serial}: no R0 measured; give default_r0_mOhm")
        caps.append(cap)
        r0s.append(r0)
    return ModuleState(serial, tuple(caps), tuple(r0s))


def _string_arrays(modules: Sequence[ModuleState], profile: StationProfile) -> tuple[np.ndarray, np.ndarray]:
    """Group capacities [Ah] and resistances [Ohm] of the series string, checked against the design."""
    if profile.modules_in_parallel != 1:
        raise ConfigError(profile.name, "the station twin models one series string (modules_in_parallel = 1)")
    if len(modules) != profile.modules_in_series:
        raise ConfigError(profile.name, f"design {profile.name} takes {profile.modules_in_series} modules "
                                             f"in series, got {len(modules)}")
    for m in modules:
        if len(m.group_capacity_Ah) != profile.module.series_groups:
            raise InputFileError(m.serial, f"{len(m.group_capacity_Ah)} groups; the design's modules have "
                                             f"{profile.module.series_groups}")
    cap = np.array([c for m in modules for c in m.group_capacity_Ah])
    r_ohm = np.array([r for m in modules for r in m.group_r0_mOhm]) * 1e-3
    return cap, r_ohm


def _discharge_current_A(emf_V, r_ohm: float, power_W: float):
    """Current magnitude [A] that delivers ``power_W`` at the terminals of a source ``emf_V`` behind ``r_ohm``.

    Smaller root of ``R I² − E I + P = 0``; NaN where the power exceeds the source's maximum ``E²/4R``.
    """
    emf_V = np.asarray(emf_V, dtype=float)
    if r_ohm <= 0:
        return power_W / emf_V
    disc = emf_V**2 - 4.0 * r_ohm * power_W
    with np.errstate(invalid="ignore"):
        # written as 2P / (E + sqrt(disc)) to avoid cancellation when R·P is small
        return np.where(disc >= 0, 2.0 * power_W / (emf_V + np.sqrt(np.maximum(disc, 0.0))), np.nan)


def _cell_table(station_profile: StationProfile, ocv_table) -> tuple[np.ndarray, np.ndarray]:
    """The ``(soc_pct, ocv_V)`` arrays to use: the one given, else the OCV table of the design's module."""
    soc_pct, ocv_V = station_profile.module.ocv_table if ocv_table is None else ocv_table
    return soc_pct, ocv_V


def _ocv_integral_Vpct(soc_pct, table) -> np.ndarray:
    """∫₀^soc OCV dSOC [V·%], exact for the piecewise-linear table (vectorised)."""
    x, y = table
    soc = np.clip(np.asarray(soc_pct, dtype=float), x[0], x[-1])
    nodes = np.concatenate(([0.0], np.cumsum((y[1:] + y[:-1]) / 2.0 * np.diff(x))))
    i = np.clip(np.searchsorted(x, soc, side="right") - 1, 0, x.size - 2)
    ds = soc - x[i]
    v = y[i] + (y[i + 1] - y[i]) / (x[i + 1] - x[i]) * ds
    return nodes[i] + (y[i] + v) / 2.0 * ds


@dataclass(frozen=True)
class StationDischarge:
    """Result of :func:`simulate_discharge`.

    ``energy_Wh`` is the energy delivered at the DC bus (battery terminals); ``limiting_group`` is 1-based over
    the station's series groups (module 1 holds groups 1-2, module 2 groups 3-4 in portable-2s). The arrays are
    sampled every ``dt_s`` (plus the end point); with a duty cycle below 1 they show the string while the load
    is on. ``current_A`` is negative (discharge; positive = charge).
    """

    power_W: float
    energy_Wh: float
    charge_Ah: float
    duration_s: float
    limiting_group: int
    end_reason: str
    time_s: np.ndarray
    string_voltage_V: np.ndarray
    current_A: np.ndarray
    group_voltage_V: np.ndarray


def simulate_discharge(modules: Sequence[ModuleState], station_profile: StationProfile, power_W: float, *,
                       dt_s: float = 10.0, duty_cycle: float = 1.0, off_power_W: float = 0.0,
                       points: int = 1501, ocv_table=None) -> StationDischarge:
    """Discharge a full station at constant power at the DC bus until the weakest group hits the BMS cut-off.

    Parameters
    ----------
    modules : the station's modules in series order
    station_profile : design (BMS window ``group_v_min_V``..``group_v_max_V`` per group [V])
    power_W : power drawn at the DC bus while the load is on [W]
    dt_s : sample interval of the returned arrays [s] (the integration itself runs on a charge grid)
    duty_cycle : fraction of the time ``power_W`` is drawn; the rest of the time ``off_power_W`` is drawn.
        The BMS cut-off is checked under ``power_W`` (it trips when the load is on); the cycle is assumed short
        against the discharge (quasi-steady)
    off_power_W : power at the DC bus while the load is off [W] (e.g. the inverter's idle draw)
    points : charge-grid points (accuracy ~0.01 % at the default)
    ocv_table : ``(soc_pct, ocv_V)`` cell table; default the design's module table
        (``station_profile.module.ocv_table``)

    Returns
    -------
    :class:`StationDischarge`; ``end_reason`` is ``"group_v_min"`` (BMS cut-off), ``"power_limit"`` (the string
    can no longer deliver ``power_W``) or ``"empty"`` (a group reached the bottom of the OCV table).
    """
    if not power_W > 0 or off_power_W < 0 or not 0 < duty_cycle <= 1:
        raise InputFileError(station_profile.name, f"need power_W > 0, off_power_W >= 0 and 0 < duty_cycle <= 1; "
                                                     f"got {power_W}, {off_power_W}, {duty_cycle}")
    table = _cell_table(station_profile, ocv_table)
    cap, r = _string_arrays(modules, station_profile)
    r_string = float(r.sum())
    v_min = station_profile.group_v_min_V
    soc0 = float(soc_pct_at_ocv(station_profile.group_v_max_V, table))
    q_max = float(np.min(cap)) * (soc0 - table[0][0]) / 100.0

    q = np.linspace(0.0, q_max, points)
    ocv = np.interp(soc0 - q[:, None] / cap[None, :] * 100.0, *table)
    i_on = _discharge_current_A(ocv.sum(axis=1), r_string, power_W)
    v_grp = ocv - i_on[:, None] * r
    margin = np.nan_to_num(v_grp.min(axis=1) - v_min, nan=-1.0)

    below = np.flatnonzero(margin <= 0)
    if below.size == 0:
        n, q_end, reason = points, q_max, "empty"
    elif below[0] == 0:
        n, q_end = 1, 0.0
        reason = "power_limit" if np.isnan(i_on[0]) else "group_v_min"
    else:
        j = int(below[0])
        reason = "power_limit" if np.isnan(i_on[j]) else "group_v_min"
        frac = 0.0 if reason == "power_limit" else margin[j - 1] / (margin[j - 1] - margin[j])
        n, q_end = j, q[j - 1] + frac * (q[j] - q[j - 1])
    if n < points or q_end < q[-1]:
        # close the grid exactly at the end point
        q = np.append(q[:n], q_end) if q_end > q[n - 1] else q[:n]
        ocv = np.interp(soc0 - q[:, None] / cap[None, :] * 100.0, *table)
        i_on = _discharge_current_A(ocv.sum(axis=1), r_string, power_W)
        if np.isnan(i_on[-1]):  # only at the power limit: the last point sits on the maximum-power boundary
            i_on[-1] = ocv[-1].sum() / (2.0 * r_string)
        v_grp = ocv - i_on[:, None] * r
    limiting = int(np.argmin(v_grp[-1] - v_min)) + 1

    if duty_cycle < 1.0:
        i_off = (_discharge_current_A(ocv.sum(axis=1), r_string, off_power_W) if off_power_W > 0
                 else np.zeros_like(i_on))
        i_mean = duty_cycle * i_on + (1.0 - duty_cycle) * i_off
    else:
        i_mean = i_on
    inv_i = 3600.0 / i_mean
    t = np.concatenate(([0.0], np.cumsum((inv_i[1:] + inv_i[:-1]) / 2.0 * np.diff(q))))
    duration_s = float(t[-1])
    mean_power_W = duty_cycle * power_W + (1.0 - duty_cycle) * off_power_W

    t_out = np.append(np.arange(0.0, duration_s, dt_s), duration_s) if duration_s > 0 else np.zeros(1)
    grp_out = np.column_stack([np.interp(t_out, t, v_grp[:, k]) for k in range(cap.size)])
    return StationDischarge(
        power_W=float(power_W),
        energy_Wh=mean_power_W * duration_s / 3600.0,
        charge_Ah=float(q[-1]),
        duration_s=duration_s,
        limiting_group=limiting,
        end_reason=reason,
        time_s=t_out,
        string_voltage_V=grp_out.sum(axis=1),
        current_A=-np.interp(t_out, t, i_on),
        group_voltage_V=grp_out,
    )


def usable_energy_estimate_Wh(group_capacity_Ah, group_r0_mOhm, station_profile: StationProfile,
                              power_W: float = REFERENCE_POWER_W, ocv_table=None) -> np.ndarray:
    """Closed-form usable energy of series strings at constant power, consistent with :func:`simulate_discharge`.

    Vectorised over strings: the last axis holds the series groups. Steps: (1) the cut-off OCV of each group is
    ``group_v_min_V + I_end·R0`` with ``I_end = P / (groups·group_v_min_V)`` (an upper bound of the end current);
    (2) the charge drawn is the smallest over the groups of ``capacity × (SOC_full − SOC_cut)``; (3) the OCV
    energy is the exact integral of each group's OCV over the SOC it traverses; (4) the ohmic loss is
    ``R_string · I_mean · q`` with ``I_mean`` the current that delivers ``power_W`` from the mean string OCV.

    Parameters
    ----------
    group_capacity_Ah : capacities [Ah], shape (..., groups)
    group_r0_mOhm : ohmic resistances [mOhm], same shape
    station_profile : design (BMS window per group)
    power_W : power at the DC bus [W]
    ocv_table : ``(soc_pct, ocv_V)``; default the design's module table (``station_profile.module.ocv_table``)

    Returns
    -------
    Energy delivered at the DC bus [Wh], shape (...). Agrees with :func:`simulate_discharge` within about 1 %
    up to ~1 kW for Leaf modules (checked in the tests).
    """
    table = _cell_table(station_profile, ocv_table)
    cap = np.asarray(group_capacity_Ah, dtype=float)
    r = np.asarray(group_r0_mOhm, dtype=float) * 1e-3
    n_groups = cap.shape[-1]
    v_min = station_profile.group_v_min_V
    soc0 = float(soc_pct_at_ocv(station_profile.group_v_max_V, table))
    i_end = power_W / (n_groups * v_min)
    soc_cut = soc_pct_at_ocv(v_min + i_end * r, table)
    q = np.maximum(np.min(cap * (soc0 - soc_cut) / 100.0, axis=-1), 0.0)
    soc_low = soc0 - q[..., None] / cap * 100.0
    e_ocv = np.sum(cap / 100.0 * (_ocv_integral_Vpct(soc0, table) - _ocv_integral_Vpct(soc_low, table)), axis=-1)
    r_string = r.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        v_mean = np.where(q > 0, e_ocv / np.where(q > 0, q, 1.0), n_groups * v_min)
        disc = np.maximum(v_mean**2 - 4.0 * r_string * power_W, 0.0)
        i_mean = 2.0 * power_W / (v_mean + np.sqrt(disc))
    return np.maximum(e_ocv - r_string * i_mean * q, 0.0)


def bus_power_W(use: UseCase, station_profile: StationProfile) -> tuple[float, float]:
    """Power at the DC bus for a use case, while the load is on and while it is off [W].

    AC: ``power_W / inverter_efficiency + inverter_idle_W`` on, ``inverter_idle_W`` off (the inverter stays on).
    USB/DC: ``power_W / dc_efficiency`` on, 0 off. The efficiencies are the profile's rated-load figures; the
    idle draw stands in for the inverter's extra loss at part load.
    """
    if use.output == "ac":
        idle = station_profile.inverter_idle_W
        return use.power_W / station_profile.inverter_efficiency + idle, idle
    return use.power_W / station_profile.dc_efficiency, 0.0


def certify(modules: Sequence[ModuleState], station_profile: StationProfile,
            use_cases: Iterable[UseCase], *,
            reference_power_W: float = REFERENCE_POWER_W) -> Certification:
    """Certify a station: usable energy and the runtime of each use case.

    Runtime of a use case = time to the BMS cut-off when the DC bus carries :func:`bus_power_W` (load on) and the
    off-power (inverter idle for AC) for the rest of the duty cycle; see :func:`simulate_discharge`.

    Parameters
    ----------
    modules : the station's modules in series order
    station_profile : design
    use_cases : the loads to certify for (a parameter set's ``use_cases``; ``releaf.station.loads.USE_CASES``
        for the Leaf set)
    reference_power_W : DC-bus power for the headline usable energy [W]

    Returns
    -------
    :class:`Certification`. Warnings: usable energy below the product label, and group capacities that differ by
    more than 5 % (the weakest group strands the others' charge).
    """
    uses = list(use_cases)
    ref = simulate_discharge(modules, station_profile, reference_power_W)
    per_module = station_profile.module.series_groups

    def module_of(group: int) -> str:
        return modules[(group - 1) // per_module].serial

    runtimes = []
    for use in uses:
        on_W, off_W = bus_power_W(use, station_profile)
        d = simulate_discharge(modules, station_profile, on_W, duty_cycle=use.duty_cycle, off_power_W=off_W)
        runtime_h = d.duration_s / 3600.0
        output_Wh = use.mean_power_W * runtime_h
        per_unit = use.output_energy_per_unit_Wh
        notes = []
        if d.end_reason == "power_limit":
            notes.append(f"the string cannot deliver {on_W:.0f} W down to the BMS cut-off: stops at the power limit")
        runtimes.append(UseCaseRuntime(
            name=use.name, output=use.output, bus_power_on_W=on_W,
            bus_power_mean_W=use.duty_cycle * on_W + (1.0 - use.duty_cycle) * off_W,
            runtime_h=runtime_h, output_Wh=output_Wh,
            units=None if per_unit is None else output_Wh / per_unit, unit_name=use.unit_name,
            limiting_group=d.limiting_group, limiting_module=module_of(d.limiting_group), warnings=tuple(notes)))

    warnings = []
    if ref.energy_Wh < station_profile.rated_energy_Wh:
        warnings.append(f"usable energy {ref.energy_Wh:.0f} Wh at {reference_power_W:g} W is below the "
                        f"{station_profile.rated_energy_Wh:g} Wh label")
    cap, _ = _string_arrays(modules, station_profile)
    spread_pct = (cap.max() - cap.min()) / cap.max() * 100.0
    if spread_pct > 5.0:
        weakest = int(np.argmin(cap)) + 1
        warnings.append(f"group capacities differ by {spread_pct:.1f} %: group {weakest} (module "
                        f"{module_of(weakest)}) ends every discharge")
    return Certification(
        design=station_profile.name, serials=tuple(m.serial for m in modules),
        reference_power_W=float(reference_power_W), usable_Wh=ref.energy_Wh,
        rated_energy_Wh=station_profile.rated_energy_Wh, limiting_group=ref.limiting_group,
        limiting_module=module_of(ref.limiting_group), use_cases=tuple(runtimes), warnings=tuple(warnings))
