"""Equivalent-circuit model (Thevenin, two RC pairs): parameters and simulation.

    v = OCV(SOC) + i R0 + v1 + v2,   dv_k/dt = -v_k / tau_k + i R_k / tau_k,   dSOC/dt = 100 i / (3600 Q)

with i the current (positive = charge), ``tau_k = R_k C_k``. Parameters are tables over SOC (linear between
points, clamped at the ends) for one temperature. A one-RC model is the special case ``r2 = 0``.

The RC states are advanced with the exact solution for a current held over each interval (zero-order hold), so
the result does not depend on the sampling as long as the current is piecewise constant between samples, which is
what a cycler logs.

References
----------
G. L. Plett, Battery Management Systems, Vol. I: Battery Modeling, Artech House (2015), ch. 2 (ECM) and 2.10
(discretisation). USABC/INL Battery Test Manual rev. 3 (2015), HPPC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np


@dataclass(frozen=True)
class EcmParameters:
    """Two-RC Thevenin parameters of one unit (a cell, a group or a module), tabulated over SOC.

    Attributes
    ----------
    capacity_Ah : capacity between 0 and 100 % SOC [Ah]
    soc_pct : SOC grid [%], increasing
    ocv_V, r0_Ohm, r1_Ohm, tau1_s, r2_Ohm, tau2_s : values on the grid [V, Ohm, Ohm, s, Ohm, s]
    temperature_C : temperature the parameters hold for [degC], if known
    source : where they come from (file, fit, profile)
    """

    capacity_Ah: float
    soc_pct: np.ndarray
    ocv_V: np.ndarray
    r0_Ohm: np.ndarray
    r1_Ohm: np.ndarray
    tau1_s: np.ndarray
    r2_Ohm: np.ndarray
    tau2_s: np.ndarray
    temperature_C: float | None = None
    source: str = ""

    def at(self, soc_pct) -> dict[str, np.ndarray]:
        """All parameters at ``soc_pct`` (scalar or array), linear between grid points, clamped at the ends."""
        s = np.asarray(soc_pct, dtype=float)
        return {k: np.interp(s, self.soc_pct, getattr(self, k))
                for k in ("ocv_V", "r0_Ohm", "r1_Ohm", "tau1_s", "r2_Ohm", "tau2_s")}

    def scaled(self, series: int = 1, parallel: int = 1) -> EcmParameters:
        """The same cells as ``series`` x ``parallel`` (a Leaf module of cells: 2 x 2): voltages and resistances
        x series / parallel, capacity x parallel; time constants unchanged."""
        k = series / parallel
        return replace(self, capacity_Ah=self.capacity_Ah * parallel, ocv_V=self.ocv_V * series,
                       r0_Ohm=self.r0_Ohm * k, r1_Ohm=self.r1_Ohm * k, r2_Ohm=self.r2_Ohm * k,
                       source=f"{self.source} scaled {series}s{parallel}p")

    def to_dict(self) -> dict:
        """JSON-safe form (arrays as lists, resistances also in mOhm for reading)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, np.ndarray):
                d[k] = [float(x) for x in v]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EcmParameters:
        arrays = {k: np.asarray(d[k], dtype=float)
                  for k in ("soc_pct", "ocv_V", "r0_Ohm", "r1_Ohm", "tau1_s", "r2_Ohm", "tau2_s")}
        return cls(capacity_Ah=float(d["capacity_Ah"]), temperature_C=d.get("temperature_C"),
                   source=d.get("source", ""), **arrays)


def butler_volmer_current_A(current_A, i0_A: float | None):
    """The current that drives the first RC pair when it is a Butler-Volmer element [A]:
    ``2 I0 asinh(i / (2 I0))``, so that its steady-state voltage ``R1 2 I0 asinh(i / (2 I0))`` is the symmetric
    (alpha = 0.5) Butler-Volmer overpotential with small-signal resistance ``R1`` at zero current, and chord
    resistance ``R1 asinh(x) / x`` (``x = |i| / (2 I0)``) at ``i``. ``i0_A=None``: the current itself (linear).

    References
    ----------
    A. J. Bard, L. R. Faulkner, Electrochemical Methods, 2nd ed., Wiley (2001), section 3.4 (Butler-Volmer,
    symmetric transfer coefficient: i = 2 i0 sinh(F eta / (2 R T))).
    """
    i = np.asarray(current_A, dtype=float)
    if i0_A is None:
        return i
    return 2.0 * i0_A * np.arcsinh(i / (2.0 * i0_A))


def simulate(params: EcmParameters, test_time_s, current_A, *, soc0_pct: float,
             v1_0_V: float = 0.0, v2_0_V: float = 0.0, i0_A: float | None = None) -> dict[str, np.ndarray]:
    """Terminal voltage of the model under a measured or planned current.

    Parameters
    ----------
    params : the model
    test_time_s : sample times [s], non-decreasing
    current_A : current at each sample [A], positive = charge; held from one sample to the next
    soc0_pct : SOC at the first sample [%]
    v1_0_V, v2_0_V : initial RC voltages [V] (0 after a long rest)
    i0_A : optional exchange-current scale of the first RC pair [A] (of the unit simulated: x parallel for
        parallel cells). None (default): the linear model. Given: the first pair relaxes towards the Butler-Volmer
        overpotential ``R1 2 I0 asinh(i / (2 I0))`` instead of ``R1 i`` (:func:`butler_volmer_current_A`; a
        static non-linearity ahead of the linear RC dynamics, i.e. a Hammerstein element), so ``R1`` is its
        small-signal resistance at zero current and its effective resistance falls at high current. The
        ohmic R0 and the slow pair stay linear. ``i0_A`` -> infinity gives the linear model.

    Returns
    -------
    ``voltage_V``, ``soc_pct``, ``v1_V``, ``v2_V`` [V, %, V, V], one value per sample.
    """
    t = np.asarray(test_time_s, dtype=float)
    i = np.asarray(current_A, dtype=float)
    i_ct = butler_volmer_current_A(i, i0_A)
    n = len(t)
    soc = np.empty(n)
    v1 = np.empty(n)
    v2 = np.empty(n)
    soc[0], v1[0], v2[0] = soc0_pct, v1_0_V, v2_0_V
    dt = np.diff(t)
    per_As = 100.0 / (3600.0 * params.capacity_Ah)
    grid = params.soc_pct
    r1t, t1t, r2t, t2t = params.r1_Ohm, params.tau1_s, params.r2_Ohm, params.tau2_s
    for k in range(n - 1):
        # the RC parameters are taken at the SOC where the interval starts (the interval is short)
        s = soc[k]
        r1, tau1 = np.interp(s, grid, r1t), np.interp(s, grid, t1t)
        r2, tau2 = np.interp(s, grid, r2t), np.interp(s, grid, t2t)
        a1 = np.exp(-dt[k] / tau1) if tau1 > 0 else 0.0
        a2 = np.exp(-dt[k] / tau2) if tau2 > 0 else 0.0
        ik = i[k + 1]  # the cycler logs the current that flowed up to this sample
        v1[k + 1] = v1[k] * a1 + r1 * (1.0 - a1) * i_ct[k + 1]
        v2[k + 1] = v2[k] * a2 + r2 * (1.0 - a2) * ik
        soc[k + 1] = s + per_As * ik * dt[k]
    p = params.at(soc)
    voltage = p["ocv_V"] + i * p["r0_Ohm"] + v1 + v2
    return {"voltage_V": voltage, "soc_pct": soc, "v1_V": v1, "v2_V": v2}
