"""The fast pulse test behind the SOH estimator: a 60 s step list, its schedule text and the plant throughput.

The sequence (for a Leaf module, 65 Ah new, so 1C = 65 A; positive current = charge)::

    1 rest            5 s    open-circuit voltage of the rested module
    2 discharge 1C   10 s    -65 A
    3 rest           10 s    relaxation
    4 charge 1C      10 s    +65 A
    5 rest           10 s    relaxation
    6 discharge 2C    5 s    -130 A (second current level: the non-linear, charge-transfer part)
    7 rest           10 s    relaxation
                     60 s total, sampled every 0.1 s (10 Hz)

Net charge moved: -65 A x 10 s + 65 A x 10 s - 130 A x 5 s = -650 A s = 0.18 Ah (0.3 % of 65 Ah), so the module
leaves the test at the SOC it came in with. Preconditions (not on the channel): the module rests at least 30 min
(a staging rack) and sits between 20 % and 80 % SOC (group rest voltage 3.70–4.05 V for the Leaf LMO cell, from
``parameters/leaf-24kwh/leaf_cell_ocv_25C.csv``); 25 +/- 3 degC. Limits: group voltage 3.0–4.2 V, |current| <= 130 A.

The currents are C-rates of the unit's nominal capacity, so the same list serves a cell or another module type.
``releaf.protocols.schedules`` writes the list as a Maccor procedure file and an Arbin schedule
(``releaf fast-protocol``).

References
----------
USABC/INL Battery Test Manual for Electric Vehicles rev. 3 (2015), HPPC: pulse / rest structure (the 10 s pulse).
Drallmeier et al., "A Fast Diagnostic to Inform Screening of Discarded or Retired Batteries", arXiv:2203.12376
(2022): pulse tests of tens of seconds to screen retired cells.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from releaf.errors import InputFileError


@dataclass(frozen=True)
class Step:
    """One step of the fast test.

    Attributes
    ----------
    kind : ``rest`` | ``charge`` | ``discharge``
    duration_s : step duration [s]
    c_rate : current magnitude as a multiple of the nominal capacity [1/h] (0 for rests)
    purpose : why the step is there
    """

    kind: str
    duration_s: float
    c_rate: float
    purpose: str

    def current_A(self, nominal_capacity_Ah: float) -> float:
        """Signed current of the step [A], positive = charge."""
        sign = {"rest": 0.0, "charge": 1.0, "discharge": -1.0}[self.kind]
        return sign * self.c_rate * nominal_capacity_Ah


FAST_PULSE_STEPS: tuple[Step, ...] = (
    Step("rest", 5.0, 0.0, "rested open-circuit voltage"),
    Step("discharge", 10.0, 1.0, "1C discharge pulse: ohmic + charge-transfer + diffusion response"),
    Step("rest", 10.0, 0.0, "relaxation after discharge"),
    Step("charge", 10.0, 1.0, "1C charge pulse: asymmetry of the kinetics, restores the charge"),
    Step("rest", 10.0, 0.0, "relaxation after charge"),
    Step("discharge", 5.0, 2.0, "2C discharge pulse: current dependence (Butler-Volmer non-linearity)"),
    Step("rest", 10.0, 0.0, "relaxation after the 2C pulse"),
)
SAMPLE_PERIOD_S = 0.1
MAX_WINDOW_S = 60.0
GROUP_V_LIMITS_V = (3.0, 4.2)
MAX_C_RATE = 2.0


def protocol_duration_s(steps=FAST_PULSE_STEPS) -> float:
    """Total duration of the step list [s] (60 s for the default)."""
    return float(sum(s.duration_s for s in steps))


def pulse_edges_s(steps=FAST_PULSE_STEPS) -> list[tuple[float, float, float]]:
    """Start, end [s] and signed C-rate of every pulse, in protocol time (the test starts at 0)."""
    out, t = [], 0.0
    for s in steps:
        if s.kind != "rest":
            out.append((t, t + s.duration_s, s.c_rate * (1.0 if s.kind == "charge" else -1.0)))
        t += s.duration_s
    return out


def current_profile(nominal_capacity_Ah: float, *, sample_period_s: float = SAMPLE_PERIOD_S,
                    steps=FAST_PULSE_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Planned current of the test on its sampling grid.

    Parameters
    ----------
    nominal_capacity_Ah : nominal capacity of the unit [Ah] (a Leaf module: 65)
    sample_period_s : sampling period [s]

    Returns
    -------
    ``test_time_s`` [s] and ``current_A`` [A] (positive = charge); the current at a sample is the current that
    flowed up to it (cycler convention), so the first sample of a pulse is 0.1 s into the pulse.
    """
    if not nominal_capacity_Ah > 0:
        raise InputFileError("<fast protocol>", f"nominal capacity must be > 0 Ah, got {nominal_capacity_Ah}")
    total = protocol_duration_s(steps)
    t = np.round(np.arange(0.0, total + sample_period_s / 2, sample_period_s), 6)
    i = np.zeros_like(t)
    for t0, t1, c in pulse_edges_s(steps):
        i[(t > t0 + 1e-9) & (t <= t1 + 1e-9)] = c * nominal_capacity_Ah
    return t, i


def step_table(nominal_capacity_Ah: float = 65.0, steps=FAST_PULSE_STEPS) -> list[dict]:
    """The cycler-neutral step list as plain records (JSON/CSV-ready), with the current in A for this unit."""
    rows = []
    for k, s in enumerate(steps, start=1):
        d = asdict(s)
        d.update(step=k, current_A=s.current_A(nominal_capacity_Ah), record_every_s=SAMPLE_PERIOD_S)
        rows.append(d)
    return rows


def maccor_procedure_text(nominal_capacity_Ah: float = 65.0, *, series_groups: int = 2,
                          steps=FAST_PULSE_STEPS) -> str:
    """The step list as a Maccor procedure table, for reading or typing into the MIMS procedure editor.

    Columns follow the editor: step, type, mode, value, limit (end condition), goto, report (data record interval).
    The importable procedure file (``.000``, XML) is written by ``releaf.protocols.schedules.maccor_procedure_xml``;
    this table
    is the human-readable check of it.
    """
    v_lo, v_hi = (v * series_groups for v in GROUP_V_LIMITS_V)
    lines = [f"; releaf fast SOH pulse test, {protocol_duration_s(steps):.0f} s, unit {nominal_capacity_Ah:g} Ah",
             "; Step  Type       Mode      Value      End condition          Goto    Report",
             f";      safety limits on every step: voltage {v_lo:.2f}-{v_hi:.2f} V -> step END"]
    for k, s in enumerate(steps, start=1):
        if s.kind == "rest":
            typ, mode, val = "Rest", "", ""
        else:
            typ = "Charge" if s.kind == "charge" else "Dischrg"
            mode, val = "Current", f"{s.c_rate * nominal_capacity_Ah:.2f} A"
        lines.append(f"  {k:<5} {typ:<10} {mode:<9} {val:<10} StepTime >= {s.duration_s:>5.1f} s   Next    "
                     f"Time {SAMPLE_PERIOD_S:g} s")
    lines.append(f"  {len(steps) + 1:<5} End")
    return "\n".join(lines) + "\n"


def pack_test_time_s(n_modules: int = 48, n_channels: int = 8, *, test_s: float | None = None,
                     handling_s: float = 90.0, operators: int = 1) -> float:
    """Wall time to run the fast test on every module of a pack [s].

    Each module needs ``handling_s`` of operator time at a channel (unclamp the previous module, scan the label,
    clamp the leads, start) and then ``test_s`` of channel time with nobody attending. Modules are served in order
    by the first free operator on the first free channel (an event simulation), so with few channels the channels
    limit the rate and with many channels the operators do.

    Parameters
    ----------
    n_modules : modules to test (a Leaf 24 kWh pack: 48)
    n_channels : cycler channels able to carry 130 A
    test_s : channel time per module [s]; default: the protocol duration (60 s)
    handling_s : operator time per module at the channel [s] (releaf ASSUMPTION: 90 s with quick-connect clamps)
    operators : people connecting modules

    Returns
    -------
    Time from the first connection to the end of the last test [s]. Rest before the test (>= 30 min in a staging
    rack, in parallel for the whole pack) and pack disassembly are not included.
    """
    if n_modules < 1 or n_channels < 1 or operators < 1:
        raise InputFileError("<fast protocol>", "modules, channels and operators must be >= 1")
    test_s = protocol_duration_s() if test_s is None else float(test_s)
    channel_free = [0.0] * n_channels
    operator_free = [0.0] * operators
    for _ in range(n_modules):
        c = min(range(n_channels), key=channel_free.__getitem__)
        o = min(range(operators), key=operator_free.__getitem__)
        start = max(channel_free[c], operator_free[o])
        operator_free[o] = start + handling_s
        channel_free[c] = start + handling_s + test_s
    return float(max(channel_free))


def modules_per_hour(n_channels: int, *, test_s: float | None = None, handling_s: float = 90.0,
                     operators: int = 1) -> float:
    """Steady-state modules tested per hour: channel-limited or operator-limited, whichever is lower."""
    test_s = protocol_duration_s() if test_s is None else float(test_s)
    channel_rate = n_channels * 3600.0 / (test_s + handling_s)
    operator_rate = operators * 3600.0 / handling_s
    return float(min(channel_rate, operator_rate))


def throughput_table(channels=(8, 16, 48), *, n_modules: int = 48, handling_s: float = 90.0,
                     operators: int = 1) -> list[dict]:
    """Pack test time and module rate for several channel counts (rows for docs and the CLI)."""
    return [{"channels": n, "operators": operators, "handling_s": handling_s,
             "pack_minutes": math.ceil(pack_test_time_s(n_modules, n, handling_s=handling_s,
                                                        operators=operators) / 6.0) / 10.0,
             "modules_per_hour": round(modules_per_hour(n, handling_s=handling_s, operators=operators), 1)}
            for n in channels]
