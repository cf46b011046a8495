"""Battery and station profiles: the data of a product, kept apart from the algorithms.

Each number carries its source. A profile is plain data; a new pack type is a new profile, not new code.
"""

from __future__ import annotations

from dataclasses import dataclass

from releaf.errors import InputFileError


@dataclass(frozen=True)
class BatteryProfile:
    """A unit under test: a cell, a module or a string of modules.

    Attributes
    ----------
    name : profile key used on the command line
    series_groups : series groups in one unit (a Leaf module: 2)
    parallel_cells : cells in parallel per group (a Leaf module: 2)
    nominal_capacity_Ah : capacity of a new unit [Ah], the SOH denominator
    nominal_voltage_V : nominal voltage of one unit [V]
    group_v_min_V, group_v_max_V : voltage window of one series group [V]
    chemistry : cathode / anode
    source : where the numbers come from
    """

    name: str
    series_groups: int
    parallel_cells: int
    nominal_capacity_Ah: float
    nominal_voltage_V: float
    group_v_min_V: float
    group_v_max_V: float
    chemistry: str
    source: str

    @property
    def nominal_group_voltage_V(self) -> float:
        return self.nominal_voltage_V / self.series_groups

    @property
    def nominal_energy_Wh(self) -> float:
        return self.nominal_capacity_Ah * self.nominal_voltage_V


@dataclass(frozen=True)
class StationProfile:
    """A second-life product built from matched modules.

    Attributes
    ----------
    name : design key (``portable-2s``)
    module : profile of the modules it is built from
    modules_in_series, modules_in_parallel : arrangement of the modules
    rated_energy_Wh : energy on the product label [Wh]
    mass_kg : product mass [kg]
    group_v_min_V : BMS under-voltage cut-off per series group [V] (above the cell limit to spare ageing)
    group_v_max_V : BMS charge limit per series group [V]
    inverter_efficiency : DC→AC efficiency at rated load (fraction)
    inverter_idle_W : inverter no-load draw while on [W]
    dc_efficiency : DC→USB/12 V converter efficiency (fraction)
    source : where the numbers come from
    """

    name: str
    module: BatteryProfile
    modules_in_series: int
    modules_in_parallel: int
    rated_energy_Wh: float
    mass_kg: float
    group_v_min_V: float
    group_v_max_V: float
    inverter_efficiency: float
    inverter_idle_W: float
    dc_efficiency: float
    source: str

    @property
    def modules(self) -> int:
        return self.modules_in_series * self.modules_in_parallel

    @property
    def series_groups(self) -> int:
        return self.modules_in_series * self.module.series_groups


LEAF_CELL = BatteryProfile(
    name="leaf-24kwh-cell",
    series_groups=1,
    parallel_cells=1,
    nominal_capacity_Ah=33.1,
    nominal_voltage_V=3.8,
    group_v_min_V=3.0,
    group_v_max_V=4.2,
    chemistry="LiMn2O4+LiNiO2 / graphite (laminated pouch)",
    source=(
        "ORNL, Wiggins, Allu, Wang, 'Battery cell data from a 2013 Nissan Leaf', doi:10.5281/zenodo.2580327: "
        "rated 33.1 Ah, 3.8 V average, window 3.0-4.2 V"
    ),
)

LEAF_MODULE = BatteryProfile(
    name="leaf-24kwh-module",
    series_groups=2,
    parallel_cells=2,
    nominal_capacity_Ah=65.0,
    nominal_voltage_V=7.6,
    group_v_min_V=3.0,
    group_v_max_V=4.2,
    chemistry=LEAF_CELL.chemistry,
    source=(
        "2013 Nissan Leaf (ZE0/AZE0 24 kWh) module, 2S2P of the ORNL cell: ORNL module tests use 65 Ah as the 1C "
        "basis (test names '65Ah', 65 A = 1C); 2 x 3.8 V; cell window 3.0-4.2 V (doi:10.5281/zenodo.2580327). "
        "48 modules make the 24 kWh pack (Nissan)."
    ),
)

PORTABLE_2S = StationProfile(
    name="portable-2s",
    module=LEAF_MODULE,
    modules_in_series=2,
    modules_in_parallel=1,
    rated_energy_Wh=633.0,
    mass_kg=14.4,
    group_v_min_V=3.2,
    group_v_max_V=4.1,
    inverter_efficiency=0.90,
    inverter_idle_W=8.0,
    dc_efficiency=0.92,
    source=(
        "Two matched second-life Leaf modules in series (product label: 633 Wh, 14.4 kg). BMS window 3.2-4.1 V "
        "per group and converter figures are releaf design assumptions for a 300-500 W pure-sine inverter "
        "(typical datasheet values: 88-92 % efficiency, 5-10 W no-load), not measurements."
    ),
)

BATTERY_PROFILES = {p.name: p for p in (LEAF_MODULE, LEAF_CELL)}
STATION_PROFILES = {p.name: p for p in (PORTABLE_2S,)}
DEFAULT_BATTERY_PROFILE = LEAF_MODULE.name


def battery_profile(name: str) -> BatteryProfile:
    """Look up a battery profile by name; a clear error lists the known ones."""
    if isinstance(name, BatteryProfile):
        return name
    try:
        return BATTERY_PROFILES[name]
    except KeyError:
        raise InputFileError("--profile", f"unknown profile {name!r}; known: {', '.join(BATTERY_PROFILES)}") from None


def station_profile(name: str) -> StationProfile:
    try:
        return STATION_PROFILES[name]
    except KeyError:
        raise InputFileError("--design", f"unknown design {name!r}; known: {', '.join(STATION_PROFILES)}") from None
