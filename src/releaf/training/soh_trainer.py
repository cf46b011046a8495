"""Training and validation of the packaged fast-SOH models (``releaf train-soh``).

Two data sources:

* ``retired-cells-pulse`` (measured, Tao et al.): three workbooks, one per cell type. Validated leave-one-workbook-
  out (the fixed split of the shared data README); the shipped model is then fitted on all three.
* Leaf modules GENERATED with a physics model (PyBaMM SPMe, parameter set ``OKane2022`` = LG M50 NMC811 /
  graphite-SiOx, which ships in the PyBaMM wheel; **no LMO/graphite set ships with PyBaMM**, so the Leaf's LMO cell
  is stood in for by this cell scaled by C-rate to the 65 Ah module and 2 series groups). Each aged state has:

  - an SEI layer of thickness ``L_sei`` on the negative particles. The lithium bound in it is lost to cycling,
    ``dQ_Li = (L_sei - L_0) a_n L_n A z F / V_sei`` (``a_n = 3 eps_n / R_n`` particle surface per volume,
    ``z`` Li per SEI molecule, ``V_sei`` SEI partial molar volume, from the parameter set), AND the same layer
    is an ionic film resistance ``rho_sei L_sei`` on every particle (PyBaMM option
    ``"SEI film resistance": "distributed"``). Capacity fade and resistance growth are coupled through one
    thickness: the coupling is physical, not a fitted correlation.
  - loss of active material in each electrode (fractions of ``eps_n``, ``eps_p``): less capacity of the electrode
    and less particle surface, hence higher charge-transfer and film overpotentials at the same current.
  - the SEI resistivity of each state is 0.1–0.5 x the set's 2e5 Ohm m (uniform; a releaf ASSUMPTION: SEI
    composition varies, and the full value makes a 65 %-SOH cell ~3x as resistive as new, more than retired Leaf
    packs show), so the resistance-capacity link is physical but not one-to-one.
  - Leaf calibration (releaf ASSUMPTION, fitted): uncalibrated, the stand-in is 2.2-3.2x more resistive per Ah than
    the ORNL Leaf cell, so real Leaf modules fell outside the training domain. Both electrodes' exchange-current
    densities are multiplied by ``J0_SCALE`` = 10 and both particle diffusivities by ``DS_SCALE`` = 100 (electrolyte
    untouched): a least-squares fit, rounded, of the new stand-in module's pulse resistances (first sample, 1 s,
    end of each of the three pulses, 50 % SOC, 25 degC) to the same test simulated on releaf's 2-RC ECM fitted to
    the MEASURED ORNL Leaf cell HPPC at 25 degC (``ornl-leaf/cell-low-current-hppc-25c-2.csv``, Wiggins, Allu,
    Wang, doi:10.5281/zenodo.2580327; ``load_fitted_ecm("leaf_cell_ecm2_25C")`` as 2s2p, see
    :func:`ornl_ecm_module_test`). After rounding the new stand-in reads 8-14 % below the ORNL module at
    30/50/70 % SOC (the ORNL cell is itself aged, 30.5 of 33.1 Ah). The factors are an empirical calibration of a
    different chemistry to the Leaf's pulse response, not measured LMO material properties (LMO's solid diffusivity
    is, however, orders of magnitude above NMC811's). The SEI film resistance is not rescaled: the same SEI adds
    the same Ohm·Ah, so its growth relative to the new cell is larger than before.
  - nuisance spread not tied to ageing: contact resistance 0–1.5 mOhm per cell, temperature 22–28 degC, SOC of
    the module 20–80 %.

  SOH is the equilibrium capacity (PyBaMM electrode-SOH solver between the set's 2.5 and 4.2 V) over the fresh
  cell's. The fast test (``releaf.protocols.fast_pulse``) is simulated and measured with 1 mV voltage noise and 50 mA
  current noise (module level) at 10 Hz.

References
----------
O'Kane et al., "Lithium-ion battery degradation: how to model it", PCCP 24 (2022) 7909, doi:10.1039/D2CP00417H.
Sulzer et al., "Python Battery Mathematical Modelling (PyBaMM)", J. Open Res. Softw. 9 (2021) 14,
doi:10.5334/jors.309. Mohtat et al., "Towards better estimability of electrode-specific state of health",
J. Electrochem. Soc. 166 (2019) A3348, doi:10.1149/2.0751915jes (electrode SOH).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from releaf.diagnostics import soh as soh_mod
from releaf.errors import ConfigError, InputFileError
from releaf.protocols import fast_pulse as fast_protocol

RETIRED_WORKBOOKS = ("Cylind21", "Pouch31", "Pouch52")
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[4] / "shared" / "data" / "retired-cells-pulse"
COVERAGE = 0.9
MODEL_VERSION = "1.0.0"
LEAF_MODULE_Ah, LEAF_SERIES = 65.0, 2
PARAMETER_SET = "OKane2022"
L_SEI0_m = 5e-9
V_NOISE_V, I_NOISE_A = 1e-3, 0.05
RHO_SEI_OHM_M = 2e5             # OKane2022 value
RHO_SEI_SPREAD = (0.1, 0.5)     # per aged state, x RHO_SEI_OHM_M: releaf ASSUMPTION, see generate_leaf_dataset
# Leaf calibration of the stand-in (see the module docstring): both electrodes' exchange-current densities x10 and
# particle diffusivities x100, fitted (rounded) so that the new stand-in module's pulse resistances match the
# ORNL-fitted Leaf ECM module (ecm_fit.load_fitted_ecm("leaf_cell_ecm2_25C").scaled(2, 2)) at 50 % SOC
J0_SCALE, DS_SCALE = 10.0, 100.0
ORNL_ECM = "leaf_cell_ecm2_25C"


def _require(module: str) -> None:
    # scikit-learn and PyBaMM are the optional `training` extra; the estimator (releaf.diagnostics.soh) needs neither
    name = {"sklearn": "scikit-learn", "pybamm": "PyBaMM"}[module]
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(name, f"training the SOH models needs {name} (the 'training' extra): "
                          "pip install 'releaf[training]'") from err


def user_models_dir() -> Path:
    """Where ``releaf train-soh`` writes unless told otherwise: ``$RELEAF_HOME/soh-models`` when ``RELEAF_HOME`` is
    set, else ``$XDG_DATA_HOME/releaf/soh-models``, else ``~/.local/share/releaf/soh-models`` (the XDG Base Directory
    default). Never the installed package: the packaged models stay as shipped.

    References
    ----------
    XDG Base Directory Specification 0.8 (freedesktop.org, 2021), ``$XDG_DATA_HOME``.
    """
    if home := os.environ.get("RELEAF_HOME"):
        return Path(home).expanduser() / "soh-models"
    data = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data):  # the specification: a relative path is invalid and ignored
        data = Path.home() / ".local" / "share"
    return Path(data) / "releaf" / "soh-models"


# ----------------------------------------------------------------------------------------------- retired cells
def load_retired_cells(data_dir=None) -> pl.DataFrame:
    """Sheet ``All`` of the three workbooks, empty rows dropped, with ``workbook`` and ``cell`` (Idx prefix)."""
    folder = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    frames = []
    for wb in RETIRED_WORKBOOKS:
        path = folder / f"data_{wb}.xlsx"
        if not path.exists():
            raise InputFileError(path, "workbook of retired-cells-pulse not found (pass data_dir=)")
        df = pl.read_excel(path, sheet_name="All").filter(pl.col("Idx").is_not_null())
        cells = [wb + ":" + (m.group(1) if (m := re.match(r"SOC-([^-]+)-", s)) else s.split("-")[0])
                 for s in df["Idx"]]
        frames.append(df.select(["Qn", "SOH", "SOC", *[f"U{k}" for k in range(1, 22)]])
                      .with_columns(workbook=pl.lit(wb), cell=pl.Series(cells)))
    return pl.concat(frames)


def u_voltages(df: pl.DataFrame) -> np.ndarray:
    """The 21 pulse-response voltages ``U1..U21`` [V] of each row of :func:`load_retired_cells`, shape (n, 21)."""
    return df.select([f"U{k}" for k in range(1, 22)]).to_numpy()


def fit_model(x, y, groups, *, name: str, input_kind: str, feature_names, soc_pct, capacity_Ah,
              seed: int = 0, info: dict | None = None, folds: int = 5) -> soh_mod.SohModel:
    """Fit the GP, its split-conformal half-width (grouped out-of-fold residuals) and the OOD domain.

    Parameters
    ----------
    x : (n, m) features; y : (n,) SOH [fraction]; groups : (n,) cell labels (rows of one cell stay together)
    soc_pct, capacity_Ah : (n,) SOC [%] and nominal capacity [Ah] of the rows (their ranges bound the domain)
    seed : random state of the optimiser restarts and the fold assignment

    Raises
    ------
    ConfigError : scikit-learn is not installed (``pip install 'releaf[training]'``).
    """
    _require("sklearn")
    from sklearn.covariance import LedoitWolf
    from sklearn.model_selection import GroupKFold

    x, y = np.asarray(x, float), np.asarray(y, float)
    groups = np.asarray(groups)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    xs = (x - mean) / scale
    gp = soh_gp(seed).fit(xs, y)
    # out-of-fold residuals, cells kept together: the conformal scores
    res = np.empty(len(y))
    cv = GroupKFold(n_splits=min(folds, len(np.unique(groups))))
    for tr, te in cv.split(xs, y, groups):
        res[te] = np.abs(soh_gp(seed).fit(xs[tr], y[tr]).predict(xs[te]) - y[te])
    n = len(res)
    half = 100.0 * conformal_halfwidth(res)
    lw = LedoitWolf().fit(xs)
    maha = soh_mod.mahalanobis(xs, lw.location_, lw.precision_)
    kern = gp.regressor_.kernel_
    info = dict(info or {})
    info.update(trained=date.today().isoformat(), n_rows=int(n), n_cells=int(len(np.unique(groups))),
                oof_mae_pct=round(100 * float(res.mean()), 3), kernel=str(kern), seed=seed)
    return soh_mod.SohModel(
        name=name, version=MODEL_VERSION, input_kind=input_kind, feature_names=tuple(feature_names),
        x_mean=mean, x_scale=scale, x_train=xs, alpha=np.asarray(gp.regressor_.alpha_, float).ravel(),
        length_scale=float(kern.k1.k2.length_scale), signal_var=float(kern.k1.k1.constant_value),
        y_mean=float(gp.transformer_.mean_[0]), y_std=float(gp.transformer_.scale_[0]), conformal_halfwidth_pct=half,
        coverage_nominal=COVERAGE, maha_center=np.asarray(lw.location_, float), maha_precision=lw.precision_,
        maha_threshold=float(np.quantile(maha, 0.995)),
        soc_range_pct=(float(np.min(soc_pct)), float(np.max(soc_pct))),
        capacity_range_Ah=(float(np.min(capacity_Ah)), float(np.max(capacity_Ah))), info=info)


def conformal_halfwidth(abs_residuals, coverage: float = COVERAGE) -> float:
    """Split-conformal half-width: the ceil((n + 1) coverage)-th smallest absolute out-of-fold residual (the
    largest one when n is small), in the residuals' unit."""
    res = np.sort(np.asarray(abs_residuals, dtype=float))
    return float(res[min(res.size, int(np.ceil((res.size + 1) * coverage))) - 1])


def held_out_states(states, *, test_fraction: float = 0.25, seed: int = 0) -> np.ndarray:
    """Which rows belong to the held-out aged states (all SOCs of a state together): a fraction of the distinct
    states drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    distinct = np.unique(states)
    test = rng.choice(distinct, size=max(1, int(round(test_fraction * len(distinct)))), replace=False)
    return np.isin(states, test)


def soh_gp(seed: int = 0):
    """The regression of the SOH models, unfitted: a scikit-learn regressor of SOH [fraction] on features.

    A Gaussian process with an isotropic RBF + white-noise kernel (``1.0 * RBF(3.0) + WhiteKernel(0.01)``, bounds
    1e-3..1e3, 1e-2..1e3 and 1e-6..1), its hyper-parameters optimised with 2 restarts drawn with ``seed``, fitted on
    the target standardised to zero mean and unit variance (a ``TransformedTargetRegressor`` with a
    ``StandardScaler``). After ``fit``: ``regressor_.kernel_`` and ``regressor_.alpha_`` are the GP's,
    ``transformer_.mean_`` and ``transformer_.scale_`` the target's standardisation (:class:`SohModel` ``y_mean``,
    ``y_std``); ``predict`` returns SOH fractions.

    References
    ----------
    Rasmussen, Williams, Gaussian Processes for Machine Learning, MIT Press (2006), ch. 2 and 5.

    Raises
    ------
    ConfigError : scikit-learn is not installed (``pip install 'releaf[training]'``).
    """
    _require("sklearn")
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
    from sklearn.preprocessing import StandardScaler

    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(3.0, (1e-2, 1e3)) + WhiteKernel(1e-2, (1e-6, 1.0))
    gp = GaussianProcessRegressor(kernel, normalize_y=False, n_restarts_optimizer=2, random_state=seed)
    return TransformedTargetRegressor(regressor=gp, transformer=StandardScaler())


def scores(model, x, y, *, soc_pct=None, capacity_Ah=None) -> dict:
    """MAE [SOH points], MAPE [%], measured interval coverage [%] and OOD rate [%] of a model on rows."""
    out = soh_mod.predict(model, x, soc_pct=soc_pct, nominal_capacity_Ah=capacity_Ah)
    y_pct = 100.0 * np.asarray(y, float)
    err = out["soh_pct"] - y_pct
    ood = np.array([bool(r) for r in out["reasons"]])
    inside = (y_pct >= out["lo_pct"]) & (y_pct <= out["hi_pct"])
    row = {"n": int(len(y_pct)), "mae_pct": float(np.mean(np.abs(err))),
           "mape_pct": float(np.mean(np.abs(err) / y_pct) * 100.0), "coverage_pct": float(100 * inside.mean()),
           "ood_rate_pct": float(100 * ood.mean()), "halfwidth_pct": float(model.conformal_halfwidth_pct)}
    row["mae_in_domain_pct"] = float(np.mean(np.abs(err[~ood]))) if (~ood).any() else float("nan")
    return row


def validate_retired_cells(data: pl.DataFrame, *, seed: int = 0) -> list[dict]:
    """Leave-one-workbook-out: train on two workbooks, score every row of the third (the fixed split)."""
    rows = []
    for test in RETIRED_WORKBOOKS:
        tr, te = data.filter(pl.col("workbook") != test), data.filter(pl.col("workbook") == test)
        model = fit_retired_cells(tr, seed=seed)
        s = scores(model, soh_mod.u21_features(u_voltages(te), None, None), te["SOH"].to_numpy(),
                   soc_pct=te["SOC"].to_numpy(), capacity_Ah=te["Qn"].to_numpy())
        rows.append({"held_out": test, **s})
    return rows


def fit_retired_cells(df: pl.DataFrame, *, seed: int, info: dict | None = None) -> soh_mod.SohModel:
    """The ``retired-cells-pulse`` model fitted on rows of :func:`load_retired_cells` (features from U1..U21, rows
    of one cell kept together in the folds); ``info`` is recorded in the model."""
    return fit_model(soh_mod.u21_features(u_voltages(df), None, None), df["SOH"].to_numpy(), df["cell"].to_numpy(),
                     name=soh_mod.RETIRED_CELLS_MODEL, input_kind="u21", feature_names=soh_mod.U_FEATURES,
                     soc_pct=df["SOC"].to_numpy(), capacity_Ah=df["Qn"].to_numpy(), seed=seed, info=info)


# ----------------------------------------------------------------------------------------- generated Leaf data
def _pybamm_setup():
    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
    _require("pybamm")
    import pybamm

    p = pybamm.ParameterValues(PARAMETER_SET)
    q_cell = float(p["Nominal cell capacity [A.h]"])
    t_grid, i_mod = fast_protocol.current_profile(LEAF_MODULE_Ah)
    edges = fast_protocol.pulse_edges_s()

    def current(t):  # PyBaMM: positive = discharge; cell current = C-rate x cell capacity
        out = 0.0
        for t0, t1, c in edges:
            out = out + (-c * q_cell) * (t > t0) * (t <= t1)
        return out

    names = ("Initial SEI thickness [m]", "Negative electrode active material volume fraction",
             "Positive electrode active material volume fraction", "Initial concentration in negative electrode "
             "[mol.m-3]", "Initial concentration in positive electrode [mol.m-3]", "Ambient temperature [K]",
             "Contact resistance [Ohm]", "SEI resistivity [Ohm.m]")
    fresh = {n: float(p[n]) for n in names}
    for e in ("Negative", "Positive"):  # Leaf calibration: J0_SCALE, DS_SCALE (module docstring)
        for key, k in ((f"{e} electrode exchange-current density [A.m-2]", J0_SCALE),
                       (f"{e} particle diffusivity [m2.s-1]", DS_SCALE)):
            p.update({key: (lambda *a, f=p[key], k=k: k * f(*a))})
    # the set's 2.5/4.2 V cut-offs would stop the solver at the pulse peaks of the most aged states; no cycler
    # clamping is modelled (the aged states' SEI film can take the peaks beyond the protocol's 3.0-4.2 V limits)
    p.update({"Current function [A]": current, "Upper voltage cut-off [V]": 4.6, "Lower voltage cut-off [V]": 2.0})
    p.update({n: "[input]" for n in names})
    model = pybamm.lithium_ion.SPMe(options={"SEI": "constant", "SEI film resistance": "distributed",
                                             "contact resistance": "true"})
    sim = pybamm.Simulation(model, parameter_values=p,
                            solver=pybamm.IDAKLUSolver())
    esoh = pybamm.lithium_ion.ElectrodeSOHSolver(pybamm.ParameterValues(PARAMETER_SET),
                                                 pybamm.LithiumIonParameters())
    return pybamm, p, sim, esoh, fresh, q_cell, t_grid, i_mod


def _electrode_capacities(p0, eps_n: float, eps_p: float) -> tuple[float, float]:
    f = 96485.33212 / 3600.0
    area = p0["Electrode height [m]"] * p0["Electrode width [m]"]
    cn, cp = (p0[f"Maximum concentration in {e} electrode [mol.m-3]"] for e in ("negative", "positive"))
    qn = eps_n * p0["Negative electrode thickness [m]"] * area * cn * f
    qp = eps_p * p0["Positive electrode thickness [m]"] * area * cp * f
    return float(qn), float(qp)


def generate_leaf_dataset(n_states: int = 200, *, socs_per_state: int = 3, seed: int = 2026,
                          max_sei_nm: float = 1200.0, max_lam: float = 0.2) -> dict:
    """Simulate the fast test on aged Leaf-module stand-ins (see the module docstring for the physics).

    Parameters
    ----------
    n_states : aged states drawn (each a "module"); socs_per_state : SOCs simulated per state
    seed : random seed (the whole set is a deterministic function of the arguments)
    max_sei_nm : largest SEI thickness [nm]; max_lam : largest loss of active material per electrode (fraction)

    Returns
    -------
    ``features`` (n, m), ``feature_names``, ``soh`` (n,) [fraction], ``state`` (n,) aged-state number,
    ``soc_pct`` (n,), ``params`` (list of dicts per row: L_sei_nm, lam_n, lam_p, r_contact_mOhm, temperature_C).
    """
    pybamm, p, sim, esoh, fresh, q_cell, t_grid, i_mod = _pybamm_setup()
    p0 = pybamm.ParameterValues(PARAMETER_SET)
    rng = np.random.default_rng(seed)
    a_n = 3 * fresh["Negative electrode active material volume fraction"] / p0["Negative particle radius [m]"]
    surface_m2 = a_n * p0["Negative electrode thickness [m]"] * p0["Electrode height [m]"] * p0["Electrode width [m]"]
    li_per_m_Ah = surface_m2 * p0["Ratio of lithium moles to SEI moles"] / p0["SEI partial molar volume [m3.mol-1]"] \
        * 96485.33212 / 3600.0
    qn0, qp0 = _electrode_capacities(p0, fresh["Negative electrode active material volume fraction"],
                                     fresh["Positive electrode active material volume fraction"])
    area = p0["Electrode height [m]"] * p0["Electrode width [m]"]
    qli0 = (fresh["Negative electrode active material volume fraction"] * p0["Negative electrode thickness [m]"]
            * fresh["Initial concentration in negative electrode [mol.m-3]"]
            + fresh["Positive electrode active material volume fraction"] * p0["Positive electrode thickness [m]"]
            * fresh["Initial concentration in positive electrode [mol.m-3]"]) * area * 96485.33212 / 3600.0
    vmin, vmax = float(p0["Lower voltage cut-off [V]"]), float(p0["Upper voltage cut-off [V]"])
    sol0 = esoh.solve({"V_min": vmin, "V_max": vmax, "Q_n": qn0, "Q_p": qp0, "Q_Li": qli0})
    q_fresh = float(sol0["Q"])
    x50, y50 = (float(sol0["x_0"] + sol0["x_100"]) / 2, float(sol0["y_0"] + sol0["y_100"]) / 2)
    names, feats, soh, state, socs, params, skipped = None, [], [], [], [], [], 0
    for s in range(n_states):
        age = rng.uniform(0.0, 1.0)
        l_sei = L_SEI0_m + age * max_sei_nm * 1e-9 * rng.lognormal(0.0, 0.25)
        lam_n, lam_p = (age * max_lam * rng.uniform(0.2, 1.0, 2)).tolist()
        eps_n = fresh["Negative electrode active material volume fraction"] * (1 - lam_n)
        eps_p = fresh["Positive electrode active material volume fraction"] * (1 - lam_p)
        qn, qp = _electrode_capacities(p0, eps_n, eps_p)
        # lithium lost: bound in the SEI grown since new, and held by the active material lost (at the fresh
        # cell's 50 % SOC stoichiometry: a releaf ASSUMPTION, LAM in the lithiated state would lose more)
        qli = qli0 - (l_sei - L_SEI0_m) * li_per_m_Ah - lam_n * qn0 * x50 - lam_p * qp0 * y50
        sol = esoh.solve({"V_min": vmin, "V_max": vmax, "Q_n": qn, "Q_p": qp, "Q_Li": qli})
        x0, x100, y0, y100 = (float(sol[k]) for k in ("x_0", "x_100", "y_0", "y_100"))
        rho_sei = RHO_SEI_OHM_M * rng.uniform(*RHO_SEI_SPREAD)
        r_c = rng.uniform(0.0, 1.5e-3)
        temp_c = rng.uniform(22.0, 28.0)
        for soc in rng.uniform(20.0, 80.0, socs_per_state):
            z = soc / 100.0
            inputs = {"Initial SEI thickness [m]": l_sei,
                      "Negative electrode active material volume fraction": eps_n,
                      "Positive electrode active material volume fraction": eps_p,
                      "Initial concentration in negative electrode [mol.m-3]":
                          (x0 + z * (x100 - x0)) * p0["Maximum concentration in negative electrode [mol.m-3]"],
                      "Initial concentration in positive electrode [mol.m-3]":
                          (y0 - z * (y0 - y100)) * p0["Maximum concentration in positive electrode [mol.m-3]"],
                      "Ambient temperature [K]": temp_c + 273.15, "Contact resistance [Ohm]": r_c,
                      "SEI resistivity [Ohm.m]": rho_sei}
            res = sim.solve(t_eval=[0.0, float(t_grid[-1])], t_interp=t_grid, inputs=inputs)
            v_cell = np.asarray(res["Voltage [V]"](t_grid), float)
            if not np.all(np.isfinite(v_cell)):
                skipped += 1  # the solver stopped early (a voltage limit): not a measurable test
                continue
            v = LEAF_SERIES * v_cell + rng.normal(0.0, V_NOISE_V, t_grid.size)
            i = i_mod + np.where(i_mod != 0, rng.normal(0.0, I_NOISE_A, t_grid.size), 0.0)
            f = soh_mod.window_features({"test_time_s": t_grid, "voltage_V": v, "current_A": i},
                                        nominal_capacity_Ah=LEAF_MODULE_Ah)
            names = names or list(f)
            feats.append([f[k] for k in names])
            soh.append(float(sol["Q"]) / q_fresh)
            state.append(s)
            socs.append(float(soc))
            params.append({"L_sei_nm": l_sei * 1e9, "lam_n": lam_n, "lam_p": lam_p, "r_contact_mOhm": r_c * 1e3,
                           "rho_sei_Ohm_m": rho_sei,
                           "temperature_C": temp_c})
    return {"features": np.array(feats), "feature_names": names, "soh": np.array(soh), "state": np.array(state),
            "soc_pct": np.array(socs), "params": params, "q_fresh_cell_Ah": q_fresh, "skipped": skipped}


def ornl_ecm_module_test(soc_pct: float, *, ecm_name: str = ORNL_ECM) -> dict:
    """The fast test simulated on the ORNL-fitted Leaf cell ECM as a 2s2p module, from a rest.

    Parameters
    ----------
    soc_pct : SOC of the rested module [%]
    ecm_name : packaged 2-RC fit (``releaf.models.ecm_fit.load_fitted_ecm``); default the 25 degC ORNL fit

    Returns
    -------
    ``test_time_s`` [s], ``voltage_V`` [V], ``current_A`` [A] (noise-free; current of ``current_profile(65)``)
    """
    from releaf.models import ecm
    from releaf.models.ecm_fit import load_fitted_ecm

    t, i = fast_protocol.current_profile(LEAF_MODULE_Ah)
    v = ecm.simulate(load_fitted_ecm(ecm_name).scaled(LEAF_SERIES, 2), t, i, soc0_pct=soc_pct)["voltage_V"]
    return {"test_time_s": t, "voltage_V": np.asarray(v, float), "current_A": i}


def fresh_module_test(soc_pct: float, *, temperature_C: float = 25.0, r_contact_Ohm: float = 0.0,
                      rho_sei_Ohm_m: float | None = None) -> dict:
    """The fast test simulated (noise-free) on the NEW stand-in module, as in :func:`generate_leaf_dataset`.

    ``rho_sei_Ohm_m`` defaults to the middle of the sampled spread (0.3 x the set's value; the fresh 5 nm film
    contributes < 2 % of the pulse resistance either way).
    """
    pybamm, p, sim, esoh, fresh, q_cell, t, i = _pybamm_setup()
    p0 = pybamm.ParameterValues(PARAMETER_SET)
    qn, qp = _electrode_capacities(p0, fresh["Negative electrode active material volume fraction"],
                                   fresh["Positive electrode active material volume fraction"])
    area = p0["Electrode height [m]"] * p0["Electrode width [m]"]
    qli = (fresh["Negative electrode active material volume fraction"] * p0["Negative electrode thickness [m]"]
           * fresh["Initial concentration in negative electrode [mol.m-3]"]
           + fresh["Positive electrode active material volume fraction"] * p0["Positive electrode thickness [m]"]
           * fresh["Initial concentration in positive electrode [mol.m-3]"]) * area * 96485.33212 / 3600.0
    sol = esoh.solve({"V_min": float(p0["Lower voltage cut-off [V]"]), "V_max": float(p0["Upper voltage cut-off [V]"]),
                      "Q_n": qn, "Q_p": qp, "Q_Li": qli})
    x0, x100, y0, y100 = (float(sol[k]) for k in ("x_0", "x_100", "y_0", "y_100"))
    z = soc_pct / 100.0
    rho = RHO_SEI_OHM_M * float(np.mean(RHO_SEI_SPREAD)) if rho_sei_Ohm_m is None else rho_sei_Ohm_m
    inputs = {**fresh, "Ambient temperature [K]": temperature_C + 273.15, "Contact resistance [Ohm]": r_contact_Ohm,
              "SEI resistivity [Ohm.m]": rho,
              "Initial concentration in negative electrode [mol.m-3]":
                  (x0 + z * (x100 - x0)) * p0["Maximum concentration in negative electrode [mol.m-3]"],
              "Initial concentration in positive electrode [mol.m-3]":
                  (y0 - z * (y0 - y100)) * p0["Maximum concentration in positive electrode [mol.m-3]"]}
    res = sim.solve(t_eval=[0.0, float(t[-1])], t_interp=t, inputs=inputs)
    return {"test_time_s": t, "voltage_V": LEAF_SERIES * np.asarray(res["Voltage [V]"](t), float), "current_A": i}


def validate_leaf(ds: dict, *, test_fraction: float = 0.25, seed: int = 0) -> tuple[dict, soh_mod.SohModel]:
    """Hold out a fraction of the aged STATES (all their SOCs), train on the rest, score the held-out rows."""
    te = held_out_states(ds["state"], test_fraction=test_fraction, seed=seed)
    model = _fit_leaf(ds, ~te, seed=seed)
    cap = np.full(te.sum(), LEAF_MODULE_Ah)
    row = scores(model, ds["features"][te], ds["soh"][te], soc_pct=ds["soc_pct"][te], capacity_Ah=cap)
    return {"held_out": f"{len(np.unique(ds['state'][te]))} aged states", **row}, model


def _fit_leaf(ds: dict, mask, *, seed: int, info: dict | None = None) -> soh_mod.SohModel:
    return fit_model(ds["features"][mask], ds["soh"][mask], ds["state"][mask], name=soh_mod.DEFAULT_MODEL,
                     input_kind="leaf-window", feature_names=ds["feature_names"], soc_pct=ds["soc_pct"][mask],
                     capacity_Ah=np.full(int(np.sum(mask)), LEAF_MODULE_Ah), seed=seed, info=info)


# ------------------------------------------------------------------------------------------------- entry point
def format_table(rows: list[dict], title: str) -> str:
    """Plain-text table of validation rows (and their mean)."""
    keys = ("n", "mae_pct", "mape_pct", "coverage_pct", "ood_rate_pct", "mae_in_domain_pct", "halfwidth_pct")
    head = f"{'held out':<22}" + "".join(f"{k:>18}" for k in keys)
    lines = [title, head]
    for r in rows:
        lines.append(f"{r['held_out']:<22}" + "".join(f"{r[k]:>18.2f}" if k != "n" else f"{r[k]:>18d}" for k in keys))
    if len(rows) > 1:
        lines.append(f"{'mean of folds':<22}" + "".join(
            f"{np.nanmean([r[k] for r in rows]):>18.2f}" if k != "n" else f"{'':>18}" for k in keys))
    return "\n".join(lines)


def train_soh_model(out_dir=None, *, data_dir=None, which=("retired-cells-pulse", "leaf-module-pulse"),
                    n_states: int = 200, socs_per_state: int = 3, seed: int = 2026, verbose: bool = True) -> dict:
    """Regenerate the SOH model(s), validate them, write ``<name>.json`` + ``.npz``, print the tables.

    Parameters
    ----------
    out_dir : folder for the model files; default :func:`user_models_dir`. The estimator reads them when asked:
        ``releaf.diagnostics.soh.load_model(name, folder=out_dir)`` or ``RELEAF_SOH_MODELS=<out_dir>``
    data_dir : folder with the retired-cells-pulse workbooks (default: ``../shared/data/retired-cells-pulse``)
    which : models to train
    n_states, socs_per_state : size of the generated Leaf set (aged states x SOCs)
    seed : seed of everything random (data generation, splits, optimiser restarts)
    verbose : print the validation tables to stdout

    Returns
    -------
    ``{model name: {"validation": rows, "files": [json, npz]}}``

    Raises
    ------
    ConfigError : scikit-learn (or, for the Leaf model, PyBaMM) is not installed (``pip install 'releaf[training]'``),
        checked before any work.
    """
    _require("sklearn")
    if "leaf-module-pulse" in which:
        _require("pybamm")
    out_dir = Path(out_dir) if out_dir is not None else user_models_dir()
    report = {}
    if "retired-cells-pulse" in which:
        data = load_retired_cells(data_dir)
        rows = validate_retired_cells(data, seed=seed)
        info = {"data": "retired-cells-pulse (Tao et al.), sheet All of data_Cylind21/Pouch31/Pouch52.xlsx",
                "validation": "leave-one-workbook-out", "lowo": rows}
        model = fit_retired_cells(data, seed=seed, info=info)
        report[model.name] = {"validation": rows, "files": [str(f) for f in model.save(out_dir)]}
        if verbose:
            print(format_table(rows, "retired-cells-pulse, leave-one-workbook-out (SOH points / %)"))
    if "leaf-module-pulse" in which:
        ds = generate_leaf_dataset(n_states, socs_per_state=socs_per_state, seed=seed)
        row, _ = validate_leaf(ds, seed=seed)
        info = {"data": f"GENERATED: PyBaMM SPMe {PARAMETER_SET}, {n_states} aged states x {socs_per_state} SOCs, "
                        "coupled SEI (lithium loss + film resistance) and LAM; see releaf.training.soh_trainer",
                "validation": "25 % of aged states held out", "held_out": row,
                "soh_range_pct": [float(100 * ds["soh"].min()), float(100 * ds["soh"].max())]}
        model = _fit_leaf(ds, np.ones(len(ds["soh"]), bool), seed=seed, info=info)
        report[model.name] = {"validation": [row], "files": [str(f) for f in model.save(out_dir)]}
        if verbose:
            print(format_table([row], "leaf-module-pulse, generated data, held-out aged states (SOH points / %)"))
    if verbose:
        sys.stdout.flush()
    return report
