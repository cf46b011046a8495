"""Use cases of a second-life power station, as data.

A use case says what a customer plugs in: the power drawn from one output of the station while the load is on,
how much of the time it is on, and, for loads that fill a battery of their own (a phone), how much energy one
"unit" takes. The conversion from the output back to the battery (inverter, DC converter, idle draw) belongs to
the station (``releaf.station.twin``), not to the load.

The use cases themselves are data: the built-in three (``phone``, ``guitar-amp``, ``fridge``) are releaf assumptions
chosen to be typical, not measurements, and live in the parameter set (``releaf.parameters.use_cases``) with a
``source`` that says where each number comes from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from releaf import parameters
from releaf.errors import ConfigError, InputFileError

OUTPUTS = ("usb_dc", "ac")


@dataclass(frozen=True)
class UseCase:
    """One load on one output of the station.

    Attributes
    ----------
    name : key used on the command line and in reports
    description : one line for people, with the assumptions
    power_W : mean power drawn from the output while the load is on [W]
    duty_cycle : fraction of the time the load is on (0..1]; the rest of the time it draws nothing
    output : ``"usb_dc"`` (USB-C / 12 V, through the DC converter) or ``"ac"`` (through the inverter)
    energy_per_unit_Wh : energy stored in one unit of the load [Wh] (a phone battery), or None
    unit_name : what one unit is called in reports (``"phone charges"``), or None
    unit_efficiency : energy stored in the unit per energy drawn from the output (the load's own charger,
        fraction); only used with ``energy_per_unit_Wh``
    source : where the numbers come from
    """

    name: str
    description: str
    power_W: float
    duty_cycle: float
    output: str
    energy_per_unit_Wh: float | None = None
    unit_name: str | None = None
    unit_efficiency: float = 1.0
    source: str = ""

    def __post_init__(self):
        where = f"use case {self.name!r}"
        if self.output not in OUTPUTS:
            raise InputFileError(where, f"output must be one of {', '.join(OUTPUTS)}, not {self.output!r}")
        if not self.power_W > 0:
            raise InputFileError(where, f"power_W must be positive, not {self.power_W!r}")
        if not 0 < self.duty_cycle <= 1:
            raise InputFileError(where, f"duty_cycle must be in (0, 1], not {self.duty_cycle!r}")
        if not 0 < self.unit_efficiency <= 1:
            raise InputFileError(where, f"unit_efficiency must be in (0, 1], not {self.unit_efficiency!r}")
        if (self.energy_per_unit_Wh is None) != (self.unit_name is None):
            raise InputFileError(where, "energy_per_unit_Wh and unit_name go together: give both or neither")
        if self.energy_per_unit_Wh is not None and not self.energy_per_unit_Wh > 0:
            raise InputFileError(where, f"energy_per_unit_Wh must be positive, not {self.energy_per_unit_Wh!r}")

    @property
    def mean_power_W(self) -> float:
        """Power drawn from the output averaged over the duty cycle [W]."""
        return self.power_W * self.duty_cycle

    @property
    def output_energy_per_unit_Wh(self) -> float | None:
        """Energy drawn from the station's output per unit [Wh] (the unit's energy over its charger efficiency)."""
        if self.energy_per_unit_Wh is None:
            return None
        return self.energy_per_unit_Wh / self.unit_efficiency

    def to_dict(self) -> dict:
        return asdict(self)


USE_CASES: dict[str, UseCase] = parameters.use_cases(parameters.DEFAULT_PARAMETER_SET)
"""The use cases of the default parameter set (``releaf/parameters/leaf-24kwh/parameters.yaml``, each with its
``source``)."""
PHONE, GUITAR_AMP, FRIDGE = USE_CASES["phone"], USE_CASES["guitar-amp"], USE_CASES["fridge"]


def use_case(name: str) -> UseCase:
    """Look up a built-in use case by name.

    Parameters
    ----------
    name : ``"phone"``, ``"guitar-amp"`` or ``"fridge"``

    Raises
    ------
    ConfigError : unknown name (the message lists the known ones)
    """
    try:
        return USE_CASES[name]
    except KeyError:
        raise ConfigError("use case", f"unknown use case {name!r}; known: {', '.join(USE_CASES)}") from None
