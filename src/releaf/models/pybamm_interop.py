"""Export a releaf equivalent-circuit model to PyBaMM's Thevenin model, and run it there.

releaf's ECM (``releaf.models.ecm``) and PyBaMM's ``pybamm.equivalent_circuit.Thevenin`` are the same circuit
(OCV source, series resistor R0, RC pairs), so a fitted module can be handed to anyone who uses PyBaMM. The mapping:

===============================  =================================================================================
PyBaMM parameter                 from ``EcmParameters``
===============================  =================================================================================
``Open-circuit voltage [V]``     ``ocv_V`` over ``SoC = soc_pct / 100``
``R0 [Ohm]``, ``Rk [Ohm]``       ``r0_Ohm``, ``rk_Ohm`` over SoC (PyBaMM passes (T_cell, current, SoC); the
                                 tables depend on SoC only)
``Ck [F]``                       ``tauk_s(SoC) / rk_Ohm(SoC)``, each interpolated, so ``tau = R C`` is releaf's
                                 linearly interpolated ``tauk_s`` (interpolating C itself would not be)
``Cell capacity [A.h]``          ``capacity_Ah`` (PyBaMM's "cell" is whatever unit the parameters describe: a
                                 cell, a group, a module)
``Initial SoC``                  ``initial_soc_pct / 100``
``Entropic change [V/K]``        0 (releaf's model has no entropic term)
===============================  =================================================================================

Tables are ``pybamm.Interpolant(..., interpolator="linear")`` with one extra point beyond each end holding the end
value, which reproduces ``np.interp`` (linear inside, clamped outside) exactly.

Sign: releaf's current is positive on CHARGE; PyBaMM's ECM current (``Current function [A]``, ``Current [A]``) is
positive on DISCHARGE. ``pybamm_current`` and ``simulate_pybamm`` negate it; the RC voltages
(``Element-k overpotential [V]``) then carry the same sign as releaf's ``v1_V``, ``v2_V``.

Pairs with ``r_k = 0`` everywhere are left out (``{"number of rc elements": n}`` counts the others), so a 1-RC
model exports as a 1-RC Thevenin model.

PyBaMM's thermal model (cell and jig lumped masses) is built in but does not feed back into the voltage here, since
releaf's tables are for one temperature. Its parameters default to the values of PyBaMM's ``ECM_Example`` set
(placeholders; pass ``overrides`` for a real module).

References
----------
Sulzer, Marquis, Timms, Robinson, Chapman, "Python Battery Mathematical Modelling (PyBaMM)", J. Open Res. Softw.
9 (2021) 14, doi:10.5334/jors.309. Barletta et al., "Thevenin's battery model parameter estimation based on
Simulink", Energies 15 (2022) 6207, doi:10.3390/en15176207 (the model PyBaMM cites). G. L. Plett, Battery
Management Systems, Vol. I, Artech House (2015), ch. 2.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from releaf.errors import InputFileError
from releaf.models.ecm import EcmParameters

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")

KELVIN = 273.15
# PyBaMM's ECM_Example thermal values (pybamm/input/parameters/ecm/example_set.py): placeholders, see module doc
DEFAULT_THERMAL = {
    "Cell thermal mass [J/K]": 1000.0,
    "Cell-jig heat transfer coefficient [W/K]": 10.0,
    "Jig thermal mass [J/K]": 500.0,
    "Jig-air heat transfer coefficient [W/K]": 10.0,
}
_LEFT_LIMIT_S = 1e-6  # read PyBaMM just before a current step: a sample's voltage is the one under its own current


def _pybamm():
    try:
        import pybamm
    except ImportError as exc:  # optional dependency: pip install releaf[physics]
        raise ImportError("PyBaMM is needed for releaf.models.pybamm_interop: pip install 'releaf[physics]'") from exc
    return pybamm


def rc_pairs(params: EcmParameters) -> list[int]:
    """The RC pairs of ``params`` that exist (1-based): pair k is left out when ``r_k = 0`` at every SOC point."""
    pairs = [k for k in (1, 2) if np.any(np.asarray(getattr(params, f"r{k}_Ohm")) != 0)]
    for k in pairs:
        r, tau = getattr(params, f"r{k}_Ohm"), getattr(params, f"tau{k}_s")
        if np.any(r < 0) or np.any(tau <= 0):
            raise InputFileError(params.source or "EcmParameters",
                                   f"pair {k}: PyBaMM's RC element needs r{k}_Ohm >= 0 and tau{k}_s > 0 everywhere")
    return pairs


def _check(params: EcmParameters) -> None:
    where = params.source or "EcmParameters"
    s = np.asarray(params.soc_pct, dtype=float)
    if s.ndim != 1 or s.size < 1 or np.any(np.diff(s) <= 0):
        raise InputFileError(where, "soc_pct must be a strictly increasing grid")
    for name in ("ocv_V", "r0_Ohm", "r1_Ohm", "tau1_s", "r2_Ohm", "tau2_s"):
        a = np.asarray(getattr(params, name), dtype=float)
        if a.shape != s.shape or not np.all(np.isfinite(a)):
            raise InputFileError(where, f"{name} must be finite, one value per soc_pct point", column=name)
    if not params.capacity_Ah > 0:
        raise InputFileError(where, f"capacity_Ah must be positive, got {params.capacity_Ah}")


def _table(pybamm, soc_pct: np.ndarray, values: np.ndarray, name: str):
    """A function of SoC (fraction) equal to ``np.interp(100 * soc, soc_pct, values)``."""
    x = np.asarray(soc_pct, dtype=float) / 100.0
    y = np.asarray(values, dtype=float)
    if x.size == 1:  # a constant
        return lambda soc: pybamm.Scalar(float(y[0]))
    # one more point beyond each end with the end value: linear extrapolation of a flat segment = clamping
    x = np.concatenate(([x[0] - 1.0], x, [x[-1] + 1.0]))
    y = np.concatenate(([y[0]], y, [y[-1]]))
    return lambda soc: pybamm.Interpolant(x, y, soc, name=name, interpolator="linear")


# PyBaMM's element functions take (T_cell, current, SoC) and nothing else: its JSON writer calls them with one
# symbol per argument, so the tables are closed over rather than passed as default arguments
def _element(table):
    def element(T_cell, current, soc):
        return table(soc)

    return element


def soc_element(soc_pct, values, name: str):
    """A PyBaMM element function ``f(T_cell, current, soc)``: ``values`` interpolated linearly over ``soc_pct``
    [%] and held constant beyond its ends, as :func:`to_pybamm` gives ``R0 [Ohm]`` and ``Rk [Ohm]``; for overrides.

    Parameters
    ----------
    soc_pct : strictly increasing SOC grid [%]
    values : one value per grid point (the unit of the parameter it replaces)
    name : name of the PyBaMM interpolant
    """
    return _element(_table(_pybamm(), soc_pct, values, name))


def _capacitance(pybamm, r, tau):
    def capacitance(T_cell, current, soc):
        # C = tau / R with both interpolated, so that R C is releaf's tau; where R = 0 the pair's voltage relaxes to
        # 0 with time constant tau whatever C is, and a tiny floor keeps the division finite
        return tau(soc) / pybamm.maximum(r(soc), 1e-12)

    return capacitance


def to_pybamm(params: EcmParameters, *, initial_soc_pct: float, temperature_C: float | None = None,
              lower_cutoff_V: float | None = None, upper_cutoff_V: float | None = None,
              overrides: Mapping[str, Any] | None = None):
    """PyBaMM parameter values and model options for ``pybamm.equivalent_circuit.Thevenin``.

    Parameters
    ----------
    params : releaf ECM of one unit (1 or 2 RC pairs; a pair with ``r_k = 0`` everywhere is left out)
    initial_soc_pct : SOC at the start [%], strictly between 0 and 100 (PyBaMM stops at SoC 0 and 1)
    temperature_C : initial and ambient temperature [degC]; default ``params.temperature_C``, else 25
    lower_cutoff_V, upper_cutoff_V : voltage limits that end a PyBaMM simulation [V]. Default: none in effect
        (0 V and twice the highest OCV), like ``releaf.models.ecm.simulate``; pass the unit's window (a Leaf
        module: 6.0 and 8.4 V) to stop where a cycler would.
    overrides : further PyBaMM parameters, set last (e.g. the thermal ones, ``Current function [A]``)

    Returns
    -------
    parameter_values : ``pybamm.ParameterValues``; ``Current function [A]`` is 0 (rest) unless overridden,
        positive = DISCHARGE (PyBaMM's sign; see ``pybamm_current``)
    options : ``{"number of rc elements": n}`` for ``pybamm.equivalent_circuit.Thevenin(options=options)``

    Examples
    --------
    >>> pv, options = to_pybamm(module, initial_soc_pct=50)                 # doctest: +SKIP
    >>> model = pybamm.equivalent_circuit.Thevenin(options=options)         # doctest: +SKIP
    >>> pybamm.Simulation(model, parameter_values=pv).solve([0, 3600])      # doctest: +SKIP
    """
    pybamm = _pybamm()
    _check(params)
    if not 0.0 < initial_soc_pct < 100.0:
        raise InputFileError(params.source or "EcmParameters",
                               f"initial_soc_pct must lie strictly between 0 and 100, got {initial_soc_pct}")
    pairs = rc_pairs(params)
    t_C = temperature_C if temperature_C is not None else (params.temperature_C if params.temperature_C
                                                             is not None else 25.0)
    s = params.soc_pct
    values: dict[str, Any] = {
        "chemistry": "ecm",
        "Cell capacity [A.h]": float(params.capacity_Ah),
        "Nominal cell capacity [A.h]": float(params.capacity_Ah),
        "Initial SoC": float(initial_soc_pct) / 100.0,
        "Initial temperature [K]": float(t_C) + KELVIN,
        "Ambient temperature [K]": float(t_C) + KELVIN,
        "Current function [A]": 0.0,
        "Lower voltage cut-off [V]": 0.0 if lower_cutoff_V is None else float(lower_cutoff_V),
        "Upper voltage cut-off [V]": (2.0 * float(np.max(params.ocv_V)) if upper_cutoff_V is None
                                      else float(upper_cutoff_V)),
        "Open-circuit voltage [V]": _table(pybamm, s, params.ocv_V, "ocv_V"),
        "Entropic change [V/K]": 0.0,
        **DEFAULT_THERMAL,
    }
    values["R0 [Ohm]"] = _element(_table(pybamm, s, params.r0_Ohm, "r0_Ohm"))
    for n, k in enumerate(pairs, start=1):
        r = _table(pybamm, s, getattr(params, f"r{k}_Ohm"), f"r{k}_Ohm")
        tau = _table(pybamm, s, getattr(params, f"tau{k}_s"), f"tau{k}_s")
        values[f"R{n} [Ohm]"] = _element(r)
        values[f"C{n} [F]"] = _capacitance(pybamm, r, tau)
        values[f"Element-{n} initial overpotential [V]"] = 0.0
    values.update(dict(overrides or {}))
    return pybamm.ParameterValues(values), {"number of rc elements": len(pairs)}


def pybamm_current(test_time_s, current_A, *, piecewise_constant: bool = True):
    """``Current function [A]`` for PyBaMM from a releaf current record (sign negated: PyBaMM + = discharge).

    Parameters
    ----------
    test_time_s : sample times [s], increasing; the simulation starts at ``test_time_s[0]``, taken as t = 0
    current_A : current at each sample [A], releaf sign (+ = charge)
    piecewise_constant : True: the current ``current_A[k+1]`` is held over ``(t_k, t_k+1]``, which is what a cycler
        logs and what ``releaf.models.ecm.simulate`` assumes (built from Heaviside steps at the samples where
        the current changes; PyBaMM's IDAKLU solver restarts at each; ``current_A[0]`` is not used, nothing flowed
        before the first sample). False: linear between samples (a
        ``pybamm.Interpolant``, PyBaMM's usual drive cycle; faster for records whose current changes at every
        sample, but not the same current as releaf's between samples).

    Returns
    -------
    function of PyBaMM time ``t`` [s] (from 0) giving the current [A], positive = discharge
    """
    pybamm = _pybamm()
    t = np.asarray(test_time_s, dtype=float)
    t = t - t[0]
    i_dis = -np.asarray(current_A, dtype=float)
    if not piecewise_constant:
        return lambda tt: pybamm.Interpolant(t, i_dis, tt, name="releaf_current", interpolator="linear")
    held = i_dis[1:]  # value over (t_k, t_k+1]
    steps = np.nonzero(np.diff(held))[0]
    at_s, jump_A = t[1:][steps], np.diff(held)[steps]

    def current(tt):
        terms = [float(b) * (tt > float(a)) for a, b in zip(at_s, jump_A, strict=True)]
        while len(terms) > 1:  # a balanced sum: a chain thousands deep overflows PyBaMM's recursion
            terms = [terms[j] + terms[j + 1] if j + 1 < len(terms) else terms[j] for j in range(0, len(terms), 2)]
        return pybamm.Scalar(float(held[0])) + terms[0] if terms else pybamm.Scalar(float(held[0]))

    return current


def simulate_pybamm(params: EcmParameters, test_time_s, current_A, *, soc0_pct: float,
                    temperature_C: float | None = None, piecewise_constant: bool = True,
                    rtol: float = 1e-8, atol: float = 1e-10) -> dict[str, np.ndarray]:
    """PyBaMM's Thevenin model, with ``to_pybamm(params)``, under a releaf current record.

    The counterpart of ``releaf.models.ecm.simulate`` (same arguments and outputs), for cross-checks.

    Parameters
    ----------
    params : releaf ECM
    test_time_s : sample times [s], increasing
    current_A : current at each sample [A], positive = charge (negated for PyBaMM)
    soc0_pct : SOC at the first sample [%], strictly between 0 and 100
    temperature_C : see ``to_pybamm``
    piecewise_constant : see ``pybamm_current``
    rtol, atol : IDAKLU solver tolerances

    Returns
    -------
    ``voltage_V``, ``soc_pct``, ``v1_V``, ``v2_V`` [V, %, V, V] at the samples (``v2_V`` is 0 for a 1-RC model).
    The voltage at a sample after which the current steps is read just before the step, i.e. under the sample's
    own current, as a cycler logs it.
    """
    pybamm = _pybamm()
    t = np.asarray(test_time_s, dtype=float)
    i = np.asarray(current_A, dtype=float)
    if t.ndim != 1 or t.shape != i.shape or t.size < 2 or np.any(np.diff(t) <= 0):
        raise InputFileError("current record", "test_time_s must increase strictly, one current per time")
    pv, options = to_pybamm(params, initial_soc_pct=soc0_pct, temperature_C=temperature_C,
                            overrides={"Current function [A]": pybamm_current(t, i,
                                                                              piecewise_constant=piecewise_constant)})
    model = pybamm.equivalent_circuit.Thevenin(options=options)
    solver = pybamm.IDAKLUSolver(rtol=rtol, atol=atol)
    sim = pybamm.Simulation(model, parameter_values=pv, solver=solver)
    tp = t - t[0]
    sol = sim.solve(t_eval=[0.0, float(tp[-1])], t_interp=tp)
    if sol.termination != "final time":
        raise InputFileError("current record", f"PyBaMM stopped early: {sol.termination} at t = {sol.t[-1]:.1f} s")
    tq = tp.copy()
    if piecewise_constant:
        steps = np.nonzero(np.diff(i[1:]))[0] + 1  # samples after which the current changes
        tq[steps] -= _LEFT_LIMIT_S
    out = {"voltage_V": sol["Voltage [V]"](tq), "soc_pct": 100.0 * sol["SoC"](tq)}
    pairs = rc_pairs(params)
    for k in (1, 2):
        out[f"v{k}_V"] = (sol[f"Element-{pairs.index(k) + 1} overpotential [V]"](tq) if k in pairs
                          else np.zeros_like(t))
    return out


def write_pybamm_parameters(params: EcmParameters, path, *, initial_soc_pct: float = 50.0, **kwargs) -> Path:
    """Write the PyBaMM parameter set of ``params`` as PyBaMM's own JSON form.

    Load it with ``pybamm.ParameterValues.from_json(path)`` (PyBaMM >= 25.1); the tables are stored as PyBaMM
    expression trees (``Interpolant`` of SoC). Use it with ``pybamm.equivalent_circuit.Thevenin(options={"number
    of rc elements": n})``, ``n`` stored in the same file under the key ``"releaf: number of rc elements"``
    (PyBaMM ignores keys its model does not ask for).

    Parameters
    ----------
    params : releaf ECM
    path : output file (``.json``)
    initial_soc_pct : ``Initial SoC`` stored in the file [%]; change it in PyBaMM as needed
    kwargs : further arguments of ``to_pybamm`` (temperature_C, cut-offs, overrides)

    Returns
    -------
    the path written
    """
    pv, options = to_pybamm(params, initial_soc_pct=initial_soc_pct, **kwargs)
    data = pv.to_json()
    data["releaf: number of rc elements"] = options["number of rc elements"]
    path = Path(path)
    path.write_text(json.dumps(data, indent=1, default=_json_value), encoding="utf-8")
    return path


def _json_value(obj):
    # the values PyBaMM's to_json leaves to the JSON writer, converted as PyBaMM's own file writer does
    if isinstance(obj, Enum):
        return obj.name
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    raise TypeError(f"Object of type {type(obj)} is not JSON serializable.")


def hppc_drive_profile(capacity_Ah: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A GENERATED test current for cross-checks: four HPPC-like blocks, then a drive-like stretch (4,820 s).

    Per block (C = ``capacity_Ah`` per hour): discharge pulse 1C 30 s, rest 40 s, charge (regen) pulse 0.75C 10 s,
    rest 60 s, discharge C/2 600 s, rest 300 s; pulses sampled every 0.5 s, the rest every 1 s. Then 30 steps
    of 10 s at currents uniform in [-2C, +1C] (seeded), and a 300 s rest. About 40 % of the capacity is taken out.

    Returns
    -------
    test_time_s [s], current_A [A] (+ = charge; ``current_A[k]`` flowed over ``(t_k-1, t_k]``)
    """
    c = float(capacity_Ah)
    segments = [(60.0, 0.0, 1.0)]  # (duration s, current A, sample interval s)
    for _ in range(4):
        segments += [(30.0, -c, 0.5), (40.0, 0.0, 0.5), (10.0, 0.75 * c, 0.5), (60.0, 0.0, 1.0),
                     (600.0, -0.5 * c, 1.0), (300.0, 0.0, 1.0)]
    rng = np.random.default_rng(seed)
    segments += [(10.0, float(x), 1.0) for x in np.round(rng.uniform(-2.0 * c, 1.0 * c, 30), 1)]
    segments.append((300.0, 0.0, 1.0))
    t, i, now = [0.0], [0.0], 0.0
    for duration, current, dt in segments:
        n = int(round(duration / dt))
        t.extend(now + dt * np.arange(1, n + 1))
        i.extend([current] * n)
        now += duration
    return np.asarray(t), np.asarray(i)


def illustrative_leaf_module(r2_over_r1: float = 0.6, tau2_s: float = 600.0) -> EcmParameters:
    """A Leaf module (2s2p) ECM with two RC pairs, for examples and cross-checks; the second pair is ASSUMED.

    OCV: ``leaf_cell_ocv_25C``; R0, R1, tau1: the packaged 1-RC fit ``leaf_cell_ecm_25C`` (ORNL cell HPPC, 25 degC),
    both put on the union of their SOC grids (``np.interp``, clamped). Second pair, NOT fitted:
    ``r2 = r2_over_r1 * r1(SOC)`` and ``tau2 = tau2_s`` (a slow, diffusion-like pair). Cell capacity 30.5 Ah (the
    fit's 0-100 % charge), scaled with ``EcmParameters.scaled(2, 2)``.

    References
    ----------
    Wiggins, Allu, Wang, "Battery cell data from a 2013 Nissan Leaf", ORNL, doi:10.5281/zenodo.2580327.
    """
    from releaf.models.ocv import load_ocv_table
    from releaf.sim.fleet import load_ecm_table

    ecm = load_ecm_table()
    soc_ocv, ocv = load_ocv_table()
    grid = np.unique(np.concatenate((soc_ocv, ecm["soc_pct"])))
    r1 = np.interp(grid, ecm["soc_pct"], ecm["r1_mOhm"]) / 1e3
    cell = EcmParameters(
        capacity_Ah=30.5, soc_pct=grid, ocv_V=np.interp(grid, soc_ocv, ocv),
        r0_Ohm=np.interp(grid, ecm["soc_pct"], ecm["r0_mOhm"]) / 1e3, r1_Ohm=r1,
        tau1_s=np.interp(grid, ecm["soc_pct"], ecm["tau1_s"]), r2_Ohm=r2_over_r1 * r1,
        tau2_s=np.full(grid.size, float(tau2_s)), temperature_C=25.0,
        source=f"leaf_cell_ecm_25C + assumed pair 2 (r2 = {r2_over_r1:g} r1, tau2 = {tau2_s:g} s)")
    return cell.scaled(2, 2)
