"""An independent protocol corpus with known truth: GENERATED module tests that releaf did not make.

    PYTHONPATH=src .venv/bin/python benchmarks/protocol_corpus.py --out /tmp/releaf-corpus [--quick] [--cases a,b]

Writes module test files in four cycler layouts (Arbin CSV with Aux_Voltage group taps, Bitrode VisuaLCN module
CSV with ``Cell Voltage A1..A2``, Maccor tab-separated text export, Neware CSV in mA / mAh) and a ``truth.csv``
with the values a perfect diagnosis would report. Written apart from ``releaf.sim`` / ``releaf.synth`` /
``releaf.models``: nothing of releaf is imported here (``validate_protocols.py`` reads the files back with
``releaf.io.read``).

Physics
-------
* Unit under test: a Nissan-Leaf-sized module of two series groups (2s), each group one Thevenin equivalent
  circuit (OCV(SOC) + R0 + one R1||C1 pair, the model of ``pybamm.equivalent_circuit.Thevenin``) with its own
  capacity, R0, R1, tau1 and initial SOC, so that the groups differ. Temperature is constant (25 degC).
* OCV: NOT releaf's Leaf table. It is built from PyBaMM's ``ParameterValues("Mohtat2020")`` (NMC532 / graphite,
  shipped in the pybamm wheel, no download): OCV(SOC) = U_p(y) - U_n(x) along the stoichiometry path that
  ``pybamm.lithium_ion.get_min_max_stoichiometries`` gives for the set's own 2.8-4.2 V window (SOC 0 = 2.8 V,
  SOC 1 = 4.2 V; OCV 4.077 V at 90 % SOC), extended linearly beyond both ends (reached only by the weak group
  of a module cut off at 6.0-6.2 V, which ends at 2.5-2.8 V under load: the over-discharge a module-only cut-off
  allows). The capacity scale is the group's (44-62 Ah; Leaf new: 65 Ah).
  So the chemistry is deliberately not the Leaf's LMO: a diagnosis that only works on releaf's own table fails.
* The circuit is integrated here, not by PyBaMM's solver (a PyBaMM experiment per CC-CV/cut-off step would
  dominate the run time); ``--check-pybamm`` compares this integrator with ``pybamm.equivalent_circuit.Thevenin``
  on the same circuit (1C and C/20 discharges to 3.0 V: within 0.005 mV and 1 ms at the cut-off). Scheme:
  constant current within a sub-step of at most 5 s, the RC pair solved exactly (v1 <- v1 e + I R1 (1 - e),
  e = exp(-dt / tau1)); a stop condition (voltage limit) is located by bisection of the last sub-step to 1 ms, so
  a logged discharge ends on its limit. CV: the module voltage is held, the current follows from the state each
  sub-step, until it falls to the taper current (C/20 of 65 Ah).
* Logging as a cycler does: 1 s for the first 30 s of each step, then every ``log_dt`` s, and the step's last
  point; voltages with 0.2 mV Gaussian noise (seeded) and the layout's resolution (Bitrode: module 10 mV, groups
  1 mV, as in the ORNL files).

Truth (``truth.csv``)
---------------------
``capacity_Ah_true``: charge the cycler counts in the test's last capacity discharge (partial discharges: the
discharge that ended on time or charge) -- |I| x duration, exactly what a correct integral of the file gives.
``full_discharge``: False for those partial discharges (cut-off on time or charge): their ``capacity_Ah_true`` is
the throughput, not the module's capacity; the module's capacity to 3.0 V per group is the smaller
``group_k_capacity_Ah``.
``group_k_capacity_Ah``: charge group k alone would deliver from its state at the start of that discharge, at the
test's current, down to 3.0 V at its terminals (its capacity at the test's own charge voltage and C-rate).
``group_k_r0_mOhm``: the circuit's R0. ``weakest_group``: 1-based, the group with the smaller such capacity, i.e.
the one that ends a discharge to 3.0 V per group. ``min_group_V`` / ``max_group_V``: the lowest and highest group
terminal voltage over the whole test (without noise), e.g. a weak group over-discharged by a module cut-off.

Everything here is GENERATED, not measurements. MIT licence (releaf's).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

import numpy as np  # noqa: E402

SEED = 20261205
NOMINAL_AH = 65.0  # module rating used for C-rates (Leaf module, 2 x 2p of 32.5 Ah cells)
GROUP_V_MIN = 3.0
TAPER_C = 1 / 20
CHARGE_C = 1 / 3
SUBSTEP_S = 5.0
DENSE_S = 30.0  # 1 s logging at the start of every step
NOISE_V = 0.2e-3
START = datetime(2026, 11, 2, 8, 0, 0)
OCV_SOURCE = ("PyBaMM ParameterValues('Mohtat2020') (NMC532/graphite): U_p(y) - U_n(x) on the 2.8-4.2 V "
              "stoichiometry window of pybamm.lithium_ion.get_min_max_stoichiometries")


# ---------------------------------------------------------------------------------------------------------------
# OCV from PyBaMM
# ---------------------------------------------------------------------------------------------------------------

def mohtat_ocv_table(n: int = 401) -> tuple[np.ndarray, np.ndarray]:
    """Full-cell OCV [V] against SOC [-] from PyBaMM's Mohtat2020 electrode OCPs: SOC 0 at 2.8 V, 1 at 4.2 V (the
    set's own ``Open-circuit voltage at 0% / 100% SOC [V]``)."""
    import pybamm

    pv = pybamm.ParameterValues("Mohtat2020")
    x0, x100, y100, y0 = (float(v) for v in pybamm.lithium_ion.get_min_max_stoichiometries(pv))
    soc = np.linspace(0.0, 1.0, n)
    x = x0 + soc * (x100 - x0)
    y = y0 - soc * (y0 - y100)
    up = pv["Positive electrode OCP [V]"](pybamm.Vector(y)).evaluate().ravel()
    un = pv["Negative electrode OCP [V]"](pybamm.Vector(x)).evaluate().ravel()
    ocv = up - un
    if not np.all(np.diff(ocv) > 0):
        raise RuntimeError("Mohtat2020 OCV is not increasing along the stoichiometry path")
    return soc, ocv


class Ocv:
    """OCV(SOC) by linear interpolation, extended linearly with the end slopes (SOC slightly outside 0..1)."""

    def __init__(self, soc: np.ndarray, ocv: np.ndarray):
        self.soc, self.ocv = soc, ocv
        self.lo_slope = (ocv[1] - ocv[0]) / (soc[1] - soc[0])
        self.hi_slope = (ocv[-1] - ocv[-2]) / (soc[-1] - soc[-2])

    def __call__(self, z: np.ndarray) -> np.ndarray:
        v = np.interp(z, self.soc, self.ocv)
        v = np.where(z < 0, self.ocv[0] + (z - self.soc[0]) * self.lo_slope, v)
        return np.where(z > 1, self.ocv[-1] + (z - self.soc[-1]) * self.hi_slope, v)

    def soc_at(self, v: float) -> float:
        return float(np.interp(v, self.ocv, self.soc))


# ---------------------------------------------------------------------------------------------------------------
# The module: one Thevenin circuit per series group
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Module:
    ocv: Ocv
    capacity_Ah: np.ndarray  # per group
    r0_ohm: np.ndarray
    r1_ohm: np.ndarray
    tau1_s: np.ndarray
    soc: np.ndarray
    v1: np.ndarray = field(default=None)

    def __post_init__(self):
        if self.v1 is None:
            self.v1 = np.zeros_like(self.soc)

    def copy(self) -> Module:
        return Module(self.ocv, self.capacity_Ah, self.r0_ohm, self.r1_ohm, self.tau1_s, self.soc.copy(),
                      self.v1.copy())

    def group_v(self, current_A: float) -> np.ndarray:
        """Terminal voltage of each group [V] at ``current_A`` (+ = charge)."""
        return self.ocv(self.soc) + current_A * self.r0_ohm + self.v1

    def advance(self, current_A: float, dt: float) -> None:
        e = np.exp(-dt / self.tau1_s)
        self.soc = self.soc + current_A * dt / 3600.0 / self.capacity_Ah
        self.v1 = self.v1 * e + current_A * self.r1_ohm * (1.0 - e)


# ---------------------------------------------------------------------------------------------------------------
# The cycler: steps, stop conditions, logging
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Log:
    t: list = field(default_factory=list)
    i: list = field(default_factory=list)
    vg: list = field(default_factory=list)
    step: list = field(default_factory=list)
    cycle: list = field(default_factory=list)
    kind: list = field(default_factory=list)  # "C", "D", "R"
    step_t: list = field(default_factory=list)


class Cycler:
    """Runs steps on a :class:`Module` and logs them like a cycler."""

    def __init__(self, module: Module, log_dt: float):
        self.m, self.log_dt = module, log_dt
        self.t, self.step, self.cycle = 0.0, 0, 1
        self.log = Log()

    def _record(self, step_t: float, current_A: float, kind: str) -> None:
        lg = self.log
        if lg.t and lg.step[-1] == self.step and abs(lg.t[-1] - self.t) < 1e-3:
            return  # a step that ended on a logging instant: already logged
        lg.t.append(self.t)
        lg.i.append(current_A)
        lg.vg.append(self.m.group_v(current_A))
        lg.step.append(self.step)
        lg.cycle.append(self.cycle)
        lg.kind.append(kind)
        lg.step_t.append(step_t)

    def _next_log(self, step_t: float) -> float:
        return step_t + 1.0 if step_t < DENSE_S else step_t + self.log_dt

    def run(self, kind: str, current_A: float = 0.0, *, stop=None, max_s: float = math.inf,
            cv_module_V: float | None = None, taper_A: float = 0.0) -> float:
        """One step. ``stop(group_v, current)`` -> True ends a CC step (located by bisection); a CV step holds
        ``cv_module_V`` until |I| <= ``taper_A``. Returns the step's duration [s]."""
        self.step += 1
        step_t = 0.0
        i_now = current_A
        while True:
            target = min(self._next_log(step_t), max_s)
            ended = target >= max_s - 1e-6
            while step_t < target - 1e-9:
                dt = min(SUBSTEP_S, target - step_t)
                if cv_module_V is not None:
                    m = self.m
                    i_cv = (cv_module_V - float(np.sum(m.ocv(m.soc) + m.v1))) / float(np.sum(m.r0_ohm))
                    i_now = min(current_A, i_cv)
                    if i_now <= taper_A:
                        ended = True
                        break
                before = self.m.copy()
                self.m.advance(i_now, dt)
                if stop is not None and stop(self.m.group_v(i_now), i_now):
                    lo, hi = 0.0, dt
                    while hi - lo > 1e-3:
                        mid = 0.5 * (lo + hi)
                        probe = before.copy()
                        probe.advance(i_now, mid)
                        if stop(probe.group_v(i_now), i_now):
                            hi = mid
                        else:
                            lo = mid
                    self.m = before
                    self.m.advance(i_now, hi)
                    step_t += hi
                    self.t += hi
                    ended = True
                    break
                step_t += dt
                self.t += dt
            self._record(step_t, i_now, kind)
            if ended:
                return step_t


def own_capacity_Ah(m: Module, current_A: float) -> np.ndarray:
    """Charge each group alone delivers at ``current_A`` (< 0) from its present state to 3.0 V at its terminals."""
    out = []
    for k in range(len(m.soc)):
        g = Module(m.ocv, m.capacity_Ah[k:k + 1], m.r0_ohm[k:k + 1], m.r1_ohm[k:k + 1], m.tau1_s[k:k + 1],
                   m.soc[k:k + 1].copy(), m.v1[k:k + 1].copy())
        c = Cycler(g, log_dt=1e9)
        seconds = c.run("D", current_A, stop=lambda v, i: v.min() <= GROUP_V_MIN)
        out.append(-current_A * seconds / 3600.0)
    return np.array(out)


# ---------------------------------------------------------------------------------------------------------------
# Protocols
# ---------------------------------------------------------------------------------------------------------------

LAYOUTS = ("arbin", "bitrode", "maccor", "neware")
HAS_GROUPS = {"arbin": True, "bitrode": True, "maccor": False, "neware": False}
RATES = {"C/20": 1 / 20, "C/10": 1 / 10, "C/3": 1 / 3, "1C": 1.0}


@dataclass(frozen=True)
class Case:
    name: str
    layout: str
    charge_V: float  # per group; the cycler charges the module to 2x this
    charge_mode: str  # "CC" or "CCCV"
    rest_s: float  # rest after every charge
    rate: str
    cutoff: str  # "module" (module voltage), "group" (lower group at 3.0 V), "time", "capacity"
    cutoff_module_V: float
    cycles: int
    start: str  # "charged" (discharge first) or "discharged" (charge first)
    pulses: bool = False

    @property
    def variation(self) -> str:
        return (f"{self.layout}|{self.charge_mode}{self.charge_V:.2f}|rest{self.rest_s / 60:.0f}min|{self.rate}|"
                f"cut-{self.cutoff}|{self.cycles}cyc|{self.start}-start" + ("|pulses" if self.pulses else ""))


def corpus_cases(quick: bool = False) -> list[Case]:
    """48 cases that combine the variations (each value of each dimension appears several times), plus 2 pulse
    tests; ``quick``: every fifth case (all layouts and cut-offs) and the pulse tests."""
    charge_vs = (4.0, 4.1, 4.15, 4.2)
    rates = tuple(RATES)
    module_cuts = (6.0, 6.2, 6.4)
    cases = []
    for n in range(48):
        layout = LAYOUTS[n % 4]
        cut = ("module", "group", "time", "capacity", "group", "module")[n % 6]
        if cut == "group" and not HAS_GROUPS[layout]:
            cut = "module"  # a cycler that logs no group voltage cannot stop on one
        case = Case(
            name=f"c{n:02d}_{layout}", layout=layout, charge_V=charge_vs[(n // 4) % 4],
            charge_mode=("CCCV", "CC")[(n // 2) % 2], rest_s=(3600.0, 0.0, 1800.0)[(n // 3) % 3],
            rate=rates[(n + n // 4) % 4], cutoff=cut, cutoff_module_V=module_cuts[n % 3],
            cycles=1 + (n // 5) % 2, start=("discharged", "charged")[(n // 7) % 2],
        )
        cases.append(case)
    cases.append(Case("p00_bitrode_pulses", "bitrode", 4.15, "CCCV", 3600.0, "C/3", "group", 6.0, 1,
                      "discharged", pulses=True))
    cases.append(Case("p01_arbin_pulses", "arbin", 4.2, "CCCV", 1800.0, "1C", "module", 6.2, 1,
                      "charged", pulses=True))
    if quick:
        cases = cases[:48:5] + cases[48:]
    return cases


def make_module(rng: np.random.Generator, ocv: Ocv) -> Module:
    """Two groups that differ: capacity 44-62 Ah (one 5-12 % below the other), R0 0.9-2.0 mOhm,
    R1 0.4-0.9 mOhm, tau1 25-60 s; the smaller group also starts 2-5 % lower in SOC (uneven self-discharge).

    Two groups in series get the same charge, so which one ends a discharge depends on the charge each holds above
    its 3.0 V point, not on capacity alone; making the smaller group also the emptier one keeps the true weakest
    group at least ~2 % clear of the other in every test.
    """
    big = rng.uniform(48.0, 62.0)
    small = big * (1 - rng.uniform(0.05, 0.12))
    soc_big = rng.uniform(0.12, 0.22)
    soc_small = soc_big - rng.uniform(0.02, 0.05)
    weak = int(rng.integers(0, 2))
    q = np.array([small, big] if weak == 0 else [big, small])
    soc = np.array([soc_small, soc_big] if weak == 0 else [soc_big, soc_small])
    r0 = rng.uniform(0.9e-3, 2.0e-3, 2)
    r1 = rng.uniform(0.4e-3, 0.9e-3, 2)
    tau = rng.uniform(25.0, 60.0, 2)
    return Module(ocv, q, r0, r1, tau, soc)


def log_interval_s(rate: str) -> float:
    return {"C/20": 120.0, "C/10": 60.0, "C/3": 30.0, "1C": 10.0}[rate]


def simulate_case(case: Case, module: Module) -> tuple[Log, dict]:
    """Run the case's protocol; returns the log and the truth of its last capacity discharge."""
    c = Cycler(module, log_dt=log_interval_s(case.rate))
    i_chg = CHARGE_C * NOMINAL_AH
    i_dis = -RATES[case.rate] * NOMINAL_AH
    v_chg_module = 2 * case.charge_V

    def charge() -> None:
        c.log_dt = 60.0
        c.run("C", i_chg, stop=lambda v, i: v.sum() >= v_chg_module)
        if case.charge_mode == "CCCV":
            c.run("C", i_chg, cv_module_V=v_chg_module, taper_A=TAPER_C * NOMINAL_AH)
        if case.rest_s > 0:
            c.run("R", 0.0, max_s=case.rest_s)
        c.log_dt = log_interval_s(case.rate)

    def discharge_stop():
        if case.cutoff == "module":
            return lambda v, i: v.sum() <= case.cutoff_module_V
        return lambda v, i: v.min() <= GROUP_V_MIN  # "group"; and the safety limit of partial discharges

    def discharge(full: bool = True) -> dict:
        start = c.m.copy()
        max_s = math.inf
        if not full or case.cutoff == "time":
            max_s = 0.6 / RATES[case.rate] * 3600.0  # 60 % of the rating
        if case.cutoff == "capacity" and full:
            max_s = 0.5 * NOMINAL_AH / -i_dis * 3600.0  # stop after 32.5 Ah
        seconds = c.run("D", i_dis, stop=discharge_stop(), max_s=max_s)
        own = own_capacity_Ah(start, i_dis)
        vg_end = c.m.group_v(i_dis)
        return {"capacity_Ah_true": -i_dis * seconds / 3600.0, "group_capacity_Ah": own,
                "weakest_group": int(np.argmin(own)) + 1, "ended_by_group": int(np.argmin(vg_end)) + 1,
                "discharge_start_s": c.t - seconds, "discharge_end_s": c.t}

    if case.start == "charged":
        # the module arrives charged (charged to the same voltage the day before and rested), unlogged
        pre = Cycler(module, log_dt=1e9)
        pre.run("C", i_chg, stop=lambda v, i: v.sum() >= v_chg_module)
        pre.run("C", i_chg, cv_module_V=v_chg_module, taper_A=TAPER_C * NOMINAL_AH)
        pre.run("R", 0.0, max_s=12 * 3600.0)
        c.m = pre.m
        c.run("R", 0.0, max_s=60.0)
        truth = discharge(full=True)
        c.run("R", 0.0, max_s=1800.0)
        cycles = case.cycles
    else:
        c.run("R", 0.0, max_s=60.0)
        cycles = case.cycles
        truth = None
    for _ in range(cycles if case.start == "discharged" else cycles - 1):
        c.cycle += 1
        charge()
        truth = discharge(full=True)
        c.run("R", 0.0, max_s=1800.0)
    if case.start == "charged" and case.cycles == 1:
        c.cycle += 1
        charge()  # the usual end of a capacity test: leave it charged
    if case.pulses:
        c.cycle += 1
        charge()
        c.log_dt = 30.0
        for removed_Ah in (13.0, 19.5, 13.0):  # to ~80 %, ~50 %, ~30 % of the rating
            c.run("D", -NOMINAL_AH / 3, stop=discharge_stop(), max_s=removed_Ah / (NOMINAL_AH / 3) * 3600.0)
            c.run("R", 0.0, max_s=1800.0)
            c.run("D", -NOMINAL_AH, stop=discharge_stop(), max_s=10.0)
            c.run("R", 0.0, max_s=600.0)
    truth["case"] = case
    truth["module"] = module
    vg = np.array(c.log.vg)
    truth["min_group_V"], truth["max_group_V"] = float(vg.min()), float(vg.max())
    return c.log, truth


# ---------------------------------------------------------------------------------------------------------------
# Writers (real layouts releaf reads)
# ---------------------------------------------------------------------------------------------------------------

def _arrays(log: Log, rng: np.random.Generator) -> dict:
    t = np.array(log.t)
    i = np.array(log.i)
    vg = np.array(log.vg) + rng.normal(0.0, NOISE_V, (len(t), 2))
    kind = np.array(log.kind)
    i = np.where(kind == "R", 0.0, i)
    step = np.array(log.step)
    new_step = np.r_[True, step[1:] != step[:-1]]
    # charge counted per step (Maccor), per cycle (Arbin) and cumulative (Bitrode): exact trapezoid of the log
    dq = np.r_[0.0, np.diff(t) * i[1:] / 3600.0]  # current held constant up to each sample (as simulated)
    v = vg.sum(axis=1)
    de = dq * v
    return {"t": t, "i": i, "vg": vg, "v": v, "kind": kind, "step": step, "cycle": np.array(log.cycle),
            "step_t": np.array(log.step_t), "dq": dq, "de": de, "new_step": new_step}


def _dq_first_of_step(a: dict, log: Log) -> None:
    """The first sample of a step lies ``step_t`` after the step began: its charge is counted too."""
    first = a["new_step"]
    a["dq"][first] = a["step_t"][first] * a["i"][first] / 3600.0
    a["de"][first] = a["dq"][first] * a["v"][first]


def _per(reset: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``x`` restarting where ``reset`` is True."""
    cs = np.cumsum(x)
    base = np.maximum.accumulate(np.where(reset, cs - x, 0.0))
    return cs - base


def write_arbin(path: Path, a: dict) -> None:
    reset = np.r_[True, a["cycle"][1:] != a["cycle"][:-1]]
    chg = _per(reset, np.clip(a["dq"], 0, None))
    dis = _per(reset, np.clip(-a["dq"], 0, None))
    che = _per(reset, np.clip(a["de"], 0, None))
    die = _per(reset, np.clip(-a["de"], 0, None))
    with open(path, "w", newline="") as f:
        f.write("Data_Point,Date_Time,Test_Time(s),Step_Time(s),Cycle_Index,Step_Index,Current(A),Voltage(V),"
                "Power(W),Charge_Capacity(Ah),Discharge_Capacity(Ah),Charge_Energy(Wh),Discharge_Energy(Wh),"
                "dV/dt(V/s),Internal_Resistance(Ohm),Aux_Voltage_1(V),Aux_Voltage_2(V)\n")
        for k in range(len(a["t"])):
            when = (START + timedelta(seconds=float(a["t"][k]))).strftime("%m/%d/%Y %H:%M:%S.%f")[:-3]
            f.write(f"{k + 1},{when},{a['t'][k]:.3f},{a['step_t'][k]:.3f},{a['cycle'][k]},{a['step'][k]},"
                    f"{a['i'][k]:.5f},{a['v'][k]:.5f},{a['i'][k] * a['v'][k]:.4f},{chg[k]:.6f},{dis[k]:.6f},"
                    f"{che[k]:.5f},{die[k]:.5f},0,0,{a['vg'][k, 0]:.5f},{a['vg'][k, 1]:.5f}\n")


def write_bitrode(path: Path, a: dict, name: str) -> None:
    ah = np.cumsum(a["dq"])
    wh = np.cumsum(a["de"])
    ahc, ahd = np.cumsum(np.clip(a["dq"], 0, None)), np.cumsum(np.clip(-a["dq"], 0, None))
    whc, whd = np.cumsum(np.clip(a["de"], 0, None)), np.cumsum(np.clip(-a["de"], 0, None))
    mode = {"C": "CHRG", "D": "DCHG", "R": "REST"}
    with open(path, "w", newline="") as f:
        f.write(f"Test Name,{name}\nTest Date,{START:%m/%d/%Y %I:%M:%S %p}\nOperator ID,releaf-corpus\n,\n"
                "Program Name,GENERATED protocol corpus\nProgram Description,GENERATED, not measurements\n"
                "Program Database,benchmarks/protocol_corpus.py\n,\nModule Type,xS\nModule Description,2s2p\n"
                "Address,Port: 1, Sys Controller: 1  Circuit: 1\nName,Port 1, Ctrl 1, Addr 1\nDevice ID,Unknown\n"
                ",\nNotes,GENERATED\nEditable Notes,\n\n")
        f.write("Total Time,Cycle,Loop Counter #1,Loop Counter #2,Loop Counter #3,Step,Step time,Current,Voltage,"
                "Power,Amp-Hours,Watt-Hours,Amp Hours Charge,Amp Hours Discharge,Watt Hours Charge,"
                "Watt Hours Discharge,Cell Voltage A1,Cell Voltage A2,Temperature A1,Temperature A2,Mode,"
                "Real Time,Data Acquisition Flag,\n")
        for k in range(len(a["t"])):
            when = (START + timedelta(seconds=float(a["t"][k]))).strftime("%m/%d/%Y %I:%M:%S %p")
            f.write(f"{a['t'][k]:.1f},{a['cycle'][k]},1,1,1,{a['step'][k]},{a['step_t'][k]:.1f},{a['i'][k]:.2f},"
                    f"{a['v'][k]:.2f},{a['i'][k] * a['v'][k]:.0f},{ah[k]:.3f},{wh[k]:.2f},{ahc[k]:.3f},{ahd[k]:.3f},"
                    f"{whc[k]:.2f},{whd[k]:.2f},{a['vg'][k, 0]:.3f},{a['vg'][k, 1]:.3f},25.0,25.0,"
                    f"{mode[a['kind'][k]]},{when}, ,\n")


def write_maccor(path: Path, a: dict, name: str) -> None:
    reset = a["new_step"]
    ah = _per(reset, np.abs(a["dq"]))
    wh = _per(reset, np.abs(a["de"]))
    with open(path, "w", newline="") as f:
        f.write(f"Today's Date {START:%m/%d/%Y}  Date of Test:\t{START:%m/%d/%Y}\t Filename:\tC:\\Data\\{name}.041 "
                f"Procedure: GENERATED_protocol_corpus.000\tComment/Barcode: GENERATED, not measurements\r\n")
        f.write("Rec#\tCyc#\tStep\tTest (Sec)\tStep (Sec)\tAmp-hr\tWatt-hr\tAmps\tVolts\tState\tES\tDPt Time\r\n")
        for k in range(len(a["t"])):
            when = (START + timedelta(seconds=float(a["t"][k]))).strftime("%m/%d/%Y %H:%M:%S")
            es = 0 if a["new_step"][k] else 1
            f.write(f"{k + 1}\t{a['cycle'][k]}\t{a['step'][k]}\t{a['t'][k]:.4f}\t{a['step_t'][k]:.4f}\t"
                    f"{ah[k]:.10f}\t{wh[k]:.10f}\t{abs(a['i'][k]):.10f}\t{a['v'][k]:.8f}\t{a['kind'][k]}\t{es}\t"
                    f"{when}\r\n")


def _clock(s: float) -> str:
    h, rem = divmod(s, 3600.0)
    m, sec = divmod(rem, 60.0)
    return f"{int(h)}:{int(m):02d}:{sec:06.3f}"


def write_neware(path: Path, a: dict, case: Case) -> None:
    reset = a["new_step"]
    cap = _per(reset, np.abs(a["dq"]))
    en = _per(reset, np.abs(a["de"]))
    step_no = a["step"]
    cv = {int(s) for s in step_no[(a["kind"] == "C")]}
    # a CC then CV charge of one program step: Neware writes "CC Chg" and "CV Chg" for the two steps here
    names = []
    prev_charge_step = None
    for k in range(len(a["t"])):
        kd = a["kind"][k]
        if kd == "R":
            names.append("Rest")
        elif kd == "D":
            names.append("CC DChg")
        else:
            is_cv = prev_charge_step is not None and step_no[k] == prev_charge_step + 1 and step_no[k] in cv \
                and case.charge_mode == "CCCV"
            names.append("CV Chg" if is_cv else "CC Chg")
            if a["new_step"][k] and not is_cv:
                prev_charge_step = int(step_no[k])
    with open(path, "w", newline="") as f:
        f.write("DataPoint,Cycle Index,Step Index,Step Type,Time,Cumulative Time,Current(mA),Voltage(V),"
                "Capacity(mAh),Chg. Cap.(mAh),DChg. Cap.(mAh),Energy(mWh),Chg. Energy(mWh),DChg. Energy(mWh),"
                "Date,Power(mW)\n")
        for k in range(len(a["t"])):
            i_mA = a["i"][k] * 1000.0
            chg = cap[k] * 1000 if a["kind"][k] == "C" else 0.0
            dis = cap[k] * 1000 if a["kind"][k] == "D" else 0.0
            ech = en[k] * 1000 if a["kind"][k] == "C" else 0.0
            edi = en[k] * 1000 if a["kind"][k] == "D" else 0.0
            when = (START + timedelta(seconds=float(a["t"][k]))).strftime("%Y-%m-%d %H:%M:%S")
            f.write(f"{k + 1},{a['cycle'][k]},{a['step'][k]},{names[k]},{_clock(a['step_t'][k])},"
                    f"{_clock(a['t'][k])},{i_mA:.1f},{a['v'][k]:.4f},{cap[k] * 1000:.1f},{chg:.1f},{dis:.1f},"
                    f"{en[k] * 1000:.1f},{ech:.1f},{edi:.1f},{when},{i_mA * a['v'][k]:.1f}\n")


EXTENSIONS = {"arbin": ".csv", "bitrode": ".csv", "maccor": ".041", "neware": ".csv"}


def write_case(out: Path, log: Log, case: Case, rng: np.random.Generator) -> Path:
    a = _arrays(log, rng)
    _dq_first_of_step(a, log)
    if case.layout == "bitrode":
        a["v"] = np.round(a["v"], 2)
    path = out / f"{case.name}{EXTENSIONS[case.layout]}"
    if case.layout == "arbin":
        write_arbin(path, a)
    elif case.layout == "bitrode":
        write_bitrode(path, a, case.name)
    elif case.layout == "maccor":
        write_maccor(path, a, case.name)
    else:
        write_neware(path, a, case)
    return path


TRUTH_COLUMNS = ["file", "layout", "variation", "charge_mode", "charge_V_per_group", "rest_after_charge_s",
                 "c_rate", "cutoff", "cutoff_module_V", "cycles", "start", "pulses", "has_group_voltages",
                 "full_discharge", "capacity_Ah_true", "group_1_capacity_Ah", "group_2_capacity_Ah", "group_1_r0_mOhm",
                 "group_2_r0_mOhm", "module_r0_mOhm", "weakest_group", "ended_by_group", "discharge_start_s",
                 "discharge_end_s", "min_group_V", "max_group_V", "seed"]


def truth_row(path: Path, truth: dict, seed: int) -> dict:
    case, m = truth["case"], truth["module"]
    return {
        "file": path.name, "layout": case.layout, "variation": case.variation, "charge_mode": case.charge_mode,
        "charge_V_per_group": case.charge_V, "rest_after_charge_s": case.rest_s, "c_rate": case.rate,
        "cutoff": case.cutoff, "cutoff_module_V": case.cutoff_module_V if case.cutoff == "module" else "",
        "cycles": case.cycles, "start": case.start, "pulses": case.pulses,
        "has_group_voltages": HAS_GROUPS[case.layout], "full_discharge": case.cutoff in ("module", "group"),
        "capacity_Ah_true": round(truth["capacity_Ah_true"], 4),
        "group_1_capacity_Ah": round(float(truth["group_capacity_Ah"][0]), 4),
        "group_2_capacity_Ah": round(float(truth["group_capacity_Ah"][1]), 4),
        "group_1_r0_mOhm": round(float(m.r0_ohm[0]) * 1e3, 4), "group_2_r0_mOhm": round(float(m.r0_ohm[1]) * 1e3, 4),
        "module_r0_mOhm": round(float(m.r0_ohm.sum()) * 1e3, 4), "weakest_group": truth["weakest_group"],
        "ended_by_group": truth["ended_by_group"], "discharge_start_s": round(truth["discharge_start_s"], 3),
        "discharge_end_s": round(truth["discharge_end_s"], 3), "min_group_V": round(truth["min_group_V"], 4),
        "max_group_V": round(truth["max_group_V"], 4), "seed": seed,
    }


def pybamm_crosscheck(ocv: Ocv, *, capacity_Ah: float = 52.0, r0_ohm: float = 1.4e-3, r1_ohm: float = 0.6e-3,
                      tau1_s: float = 40.0, current_A: float = -NOMINAL_AH) -> dict:
    """This file's integrator against ``pybamm.equivalent_circuit.Thevenin`` (PyBaMM's solver, its
    ``ECM_Example`` set with this OCV, R0, R1, C1 = tau1 / R1) on one group's CC discharge from 95 % SOC to 3.0 V.

    Returns the largest voltage difference [mV] on the log and the two discharge durations [s].
    """
    import pybamm

    pv = pybamm.ParameterValues("ECM_Example")
    pv.update({
        "Cell capacity [A.h]": capacity_Ah, "Nominal cell capacity [A.h]": capacity_Ah, "Initial SoC": 0.95,
        "Open-circuit voltage [V]": lambda z: pybamm.Interpolant(ocv.soc, ocv.ocv, z, "ocv", extrapolate=True),
        "R0 [Ohm]": r0_ohm, "R1 [Ohm]": r1_ohm, "C1 [F]": tau1_s / r1_ohm, "Entropic change [V/K]": 0.0,
        "Lower voltage cut-off [V]": GROUP_V_MIN, "Upper voltage cut-off [V]": 4.4,
        "Current function [A]": -current_A,  # PyBaMM: + = discharge
    }, check_already_exists=False)
    sol = pybamm.Simulation(pybamm.equivalent_circuit.Thevenin(), parameter_values=pv).solve([0, 48 * 3600])
    g = Module(ocv, np.array([capacity_Ah]), np.array([r0_ohm]), np.array([r1_ohm]), np.array([tau1_s]),
               np.array([0.95]))
    c = Cycler(g, log_dt=10.0)
    seconds = c.run("D", current_A, stop=lambda v, i: v.min() <= GROUP_V_MIN)
    t, v = np.array(c.log.t), np.array(c.log.vg)[:, 0]
    inside = t <= sol.t[-1]
    diff = np.abs(sol["Voltage [V]"](t[inside]) - v[inside])
    return {"max_dV_mV": float(1e3 * diff.max()), "own_s": seconds, "pybamm_s": float(sol.t[-1]),
            "pybamm_termination": str(sol.termination)}


def generate(out: Path, *, quick: bool = False, only: set[str] | None = None, seed: int = SEED) -> list[dict]:
    """Write the corpus into ``out``; returns the truth rows (also written to ``out/truth.csv``)."""
    out.mkdir(parents=True, exist_ok=True)
    ocv = Ocv(*mohtat_ocv_table())
    rows = []
    for case in corpus_cases(quick=quick):
        if only and case.name not in only:
            continue
        case_seed = seed + 1000 * (int(case.name[1:3]) + (100 if case.name.startswith("p") else 0))
        rng = np.random.default_rng(case_seed)
        log, truth = simulate_case(case, make_module(rng, ocv))
        path = write_case(out, log, case, rng)
        rows.append(truth_row(path, truth, case_seed))
    with open(out / "truth.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=TRUTH_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="every fifth case and the pulse tests")
    ap.add_argument("--cases", help="comma-separated case names (e.g. c03_neware,p00_bitrode_pulses)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--check-pybamm", action="store_true",
                    help="first compare the integrator with pybamm.equivalent_circuit.Thevenin (1C and C/20)")
    args = ap.parse_args(argv)
    if args.check_pybamm:
        ocv = Ocv(*mohtat_ocv_table())
        for rate in ("1C", "C/20"):
            r = pybamm_crosscheck(ocv, current_A=-RATES[rate] * NOMINAL_AH)
            print(f"PyBaMM Thevenin cross-check {rate}: max |dV| {r['max_dV_mV']:.3f} mV, discharge "
                  f"{r['own_s']:.2f} s here vs {r['pybamm_s']:.2f} s PyBaMM ({r['pybamm_termination']})")
    only = set(args.cases.split(",")) if args.cases else None
    rows = generate(args.out, quick=args.quick, only=only, seed=args.seed)
    print(f"{len(rows)} files and truth.csv in {args.out} (OCV: {OCV_SOURCE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
