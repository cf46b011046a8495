"""Plain typed records passed between the pipeline stages (no I/O, no behaviour beyond serialisation)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


def _clean(value):
    """JSON-safe: NaN/inf become None, tuples become lists, floats are rounded to 6 significant places."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class Discharge:
    """One full discharge: from the top of the preceding charge down to the lower cut-off.

    ``capacity_Ah`` and ``energy_Wh`` are integrals of the measured current and power (positive numbers);
    ``vendor_capacity_Ah`` is the cycler's own counter at the end of the discharge, for cross-checking only.
    """

    start_s: float
    end_s: float
    capacity_Ah: float
    energy_Wh: float
    mean_current_A: float
    c_rate: float
    start_voltage_V: float
    end_voltage_V: float
    reached_cutoff: bool
    vendor_capacity_Ah: float | None = None
    start_index: int = 0
    end_index: int = 0
    from_full: bool = True

    @property
    def is_full(self) -> bool:
        """Started at the top of charge and ended at the cut-off: a capacity measurement."""
        return self.from_full and self.reached_cutoff


@dataclass(frozen=True)
class PulseResistance:
    """DC resistance at one current step, read at several times after the step.

    ``r_0p1s_mOhm`` etc. are ΔV(t)/ΔI with ΔV measured from the last sample before the step; ``r0_mOhm`` uses
    the first sample after the step (within 1 s): the ohmic part.
    """

    time_s: float
    soc_pct: float | None
    current_before_A: float
    current_after_A: float
    duration_s: float
    r0_mOhm: float | None
    r_0p1s_mOhm: float | None
    r_1s_mOhm: float | None
    r_10s_mOhm: float | None
    r_end_mOhm: float | None
    group_r0_mOhm: tuple[float | None, ...] = ()
    group_r_1s_mOhm: tuple[float | None, ...] = ()
    group_r_10s_mOhm: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class GroupDiagnosis:
    """One series group (2 parallel cells in a Leaf module).

    ``capacity_Ah`` for the group that limits the string is the measured string capacity; for the others it is
    that plus the charge they still held when the string stopped, estimated on the limiting group's own discharge
    curve (see ``releaf.diagnostics.groups``).
    """

    group: int
    capacity_Ah: float | None
    r0_mOhm: float | None
    end_voltage_V: float | None
    min_voltage_V: float | None
    r_1s_mOhm: float | None = None
    r_10s_mOhm: float | None = None


@dataclass(frozen=True)
class Diagnosis:
    """Everything releaf measured on one test file."""

    file: str
    format: str
    sha256: str
    profile: str
    series_groups: int
    capacity_Ah: float | None
    energy_Wh: float | None
    soh_pct: float | None
    r0_mOhm: float | None
    groups: tuple[GroupDiagnosis, ...]
    weakest_group: int | None
    warnings: tuple[str, ...]
    discharges: tuple[Discharge, ...] = ()
    resistances: tuple[PulseResistance, ...] = ()
    r0_soc_pct: float | None = None
    max_temperature_C: float | None = None
    min_group_voltage_V: float | None = None
    max_group_voltage_V: float | None = None
    duration_s: float = 0.0
    rows: int = 0
    ocv_table: str | None = None
    hppc: tuple[dict, ...] = ()
    ecm: dict | None = None
    soh_method: str | None = None
    soh_interval_pct: tuple[float, float] | None = None
    ood: bool | None = None
    soh_estimate: dict | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self, *, full: bool = False) -> dict:
        """The ``releaf diagnose --json`` record; ``full`` adds every discharge and resistance."""
        d = asdict(self)
        if not full:
            d.pop("discharges")
            d.pop("resistances")
            d.pop("extra")
        return _clean(d)
