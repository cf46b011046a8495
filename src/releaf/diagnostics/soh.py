"""Fast state-of-health estimate from at most 60 s of pulse data, with a conformal interval and an OOD flag.

Two packaged models, one per input form (they do not share features, so they cannot share a model):

``leaf-module-pulse``
    The releaf fast test (``releaf.protocols.fast_pulse``: 1C discharge, 1C charge, 2C discharge pulses with rests,
    60 s)
    on a Leaf module, given as a canonical time-series window. Trained on GENERATED data: a PyBaMM SPMe whose
    capacity fade and resistance growth come from the same SEI layer and loss of active material
    (``releaf.training.soh_trainer``). Not validated on measured Leaf modules (none with a known capacity and
    this test).
``retired-cells-pulse``
    The 21 pulse-response voltages ``U1..U21`` of Tao et al. at a known SOC and nameplate capacity. Trained on
    the three measured workbooks of ``retired-cells-pulse`` (heterogeneous second-life cells, not Leaf).

Both are Gaussian-process regressions (RBF + white-noise kernel) on physically normalised features: voltage steps
divided by the pulse current and multiplied by the nominal capacity, i.e. resistances in Ohm·Ah, which do not
depend on the cell size. The point estimate is the GP mean; the interval is split-conformal: the estimate +/- the
ceil((n + 1)(1 - alpha))-th smallest absolute out-of-fold residual of the training data (cross-validation folds
grouped by cell), which covers a new value with probability >= 1 - alpha when it is exchangeable with the
training data. Inputs outside the training domain are flagged (``ood=True`` with reasons): SOC or capacity outside
the training range, or a Mahalanobis distance of the features above the 99.5th percentile of the training rows.
Exchangeability is exactly what fails out of domain, so the interval there is not trusted.

References
----------
Rasmussen, Williams, Gaussian Processes for Machine Learning, MIT Press (2006), ch. 2 (GP regression).
Lei, G'Sell, Rinaldo, Tibshirani, Wasserman, "Distribution-free predictive inference for regression",
JASA 113 (2018) 1094, doi:10.1080/01621459.2017.1307116 (split conformal).
Tao et al., "Immediate remaining capacity estimation of heterogeneous second-life lithium-ion batteries via deep
generative transfer learning" (data of ``retired-cells-pulse``).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from releaf import parameters
from releaf.errors import ConfigError, InputFileError
from releaf.protocols import fast_pulse as fast_protocol
from releaf.schema import TimeSeries

MAX_WINDOW_S = fast_protocol.MAX_WINDOW_S
DEFAULT_MODEL = "leaf-module-pulse"
RETIRED_CELLS_MODEL = "retired-cells-pulse"
MODELS_ENV = "RELEAF_SOH_MODELS"
"""Environment variable: a folder of models written by ``releaf train-soh``, used instead of the packaged ones."""
# Tao et al. U-vector layout: U1 rest voltage, then five pulses of 4 samples each (first sample of the pulse, end
# of the pulse, first sample of the rest, end of the rest), alternating charge / discharge with the amplitude
# growing 1, 1, 2, 2, 3 (read from the data: the steps scale 1 : 2 : 3 in every workbook).
U_PULSES = ((1, 1.0), (5, -1.0), (9, 2.0), (13, -2.0), (17, 3.0))
U_FEATURES = tuple(f"p{k}_{n}" for k in range(1, 6) for n in ("dv_first", "dv_end", "dv_off", "relax", "dv_rest"))


@dataclass(frozen=True)
class SohModel:
    """A trained estimator: standardisation, GP regression, conformal half-width and training domain.

    Attributes
    ----------
    name, version : model key and version string
    input_kind : ``leaf-window`` (time series) or ``u21`` (Tao et al. voltage vector)
    feature_names : feature order
    x_mean, x_scale : standardisation of the features
    x_train : standardised training features, one row per training sample
    alpha : GP dual coefficients (on the standardised target)
    length_scale, signal_var : RBF kernel parameters (standardised feature units; variance)
    y_mean, y_std : standardisation of the target (SOH fraction)
    conformal_halfwidth_pct : split-conformal half-width [SOH points]
    coverage_nominal : target coverage of the interval (0.9)
    maha_center, maha_precision, maha_threshold : Mahalanobis OOD test on the standardised features
    soc_range_pct, capacity_range_Ah : training ranges of SOC [%] and nominal capacity [Ah]
    info : provenance and validation figures (free-form, JSON)
    """

    name: str
    version: str
    input_kind: str
    feature_names: tuple[str, ...]
    x_mean: np.ndarray
    x_scale: np.ndarray
    x_train: np.ndarray
    alpha: np.ndarray
    length_scale: float
    signal_var: float
    y_mean: float
    y_std: float
    conformal_halfwidth_pct: float
    coverage_nominal: float
    maha_center: np.ndarray
    maha_precision: np.ndarray
    maha_threshold: float
    soc_range_pct: tuple[float, float]
    capacity_range_Ah: tuple[float, float]
    info: dict = field(default_factory=dict)

    ARRAYS = ("x_mean", "x_scale", "x_train", "alpha", "maha_center", "maha_precision")

    def save(self, folder) -> tuple[Path, Path]:
        """Write ``<name>.json`` (scalars, provenance) and ``<name>.npz`` (arrays, no pickle) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {k: getattr(self, k) for k in ("name", "version", "input_kind", "length_scale", "signal_var",
                                               "y_mean", "y_std", "conformal_halfwidth_pct", "coverage_nominal",
                                               "maha_threshold", "info")}
        meta.update(feature_names=list(self.feature_names), soc_range_pct=list(self.soc_range_pct),
                    capacity_range_Ah=list(self.capacity_range_Ah), arrays=f"{self.name}.npz")
        jpath, npath = folder / f"{self.name}.json", folder / f"{self.name}.npz"
        jpath.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        np.savez_compressed(npath, **{k: getattr(self, k) for k in self.ARRAYS})
        return jpath, npath

    @classmethod
    def from_files(cls, meta: dict, arrays) -> SohModel:
        return cls(name=meta["name"], version=meta["version"], input_kind=meta["input_kind"],
                   feature_names=tuple(meta["feature_names"]),
                   **{k: np.asarray(arrays[k], dtype=float) for k in cls.ARRAYS},
                   length_scale=float(meta["length_scale"]), signal_var=float(meta["signal_var"]),
                   y_mean=float(meta["y_mean"]), y_std=float(meta["y_std"]),
                   conformal_halfwidth_pct=float(meta["conformal_halfwidth_pct"]),
                   coverage_nominal=float(meta["coverage_nominal"]), maha_threshold=float(meta["maha_threshold"]),
                   soc_range_pct=tuple(meta["soc_range_pct"]), capacity_range_Ah=tuple(meta["capacity_range_Ah"]),
                   info=meta.get("info", {}))


@dataclass(frozen=True)
class SohEstimate:
    """Result of :func:`estimate_soh`.

    Attributes
    ----------
    soh_pct : point estimate [%] (NaN when the input is out of domain)
    soh_interval_pct : conformal prediction interval (lo, hi) [%]
    coverage_nominal : coverage the interval is built for (0.9); measured coverage is in the model README
    ood : True when the input lies outside the training domain; the numbers are then not to be trusted
    ood_reasons : why
    model_name, model_version : the model used
    """

    soh_pct: float
    soh_interval_pct: tuple[float, float]
    coverage_nominal: float
    ood: bool
    ood_reasons: list[str]
    model_name: str
    model_version: str


def load_model(name: str = DEFAULT_MODEL, *, folder=None) -> SohModel:
    """Read a model (``<name>.json`` + ``.npz``); no download, no pickle. Read once per process and folder.

    Parameters
    ----------
    name : :data:`DEFAULT_MODEL` or :data:`RETIRED_CELLS_MODEL`
    folder : folder of models written by ``releaf train-soh``; default the folder in the environment variable
        ``RELEAF_SOH_MODELS`` (:data:`MODELS_ENV`) when set, else the packaged models (``releaf/parameters/soh-models``)
    """
    if folder is None:
        folder = os.environ.get(MODELS_ENV) or None
    return _read_model(name, None if folder is None else Path(folder).expanduser().resolve())


@functools.lru_cache(maxsize=8)
def _read_model(name: str, folder: Path | None) -> SohModel:
    """A packaged model (through :func:`releaf.parameters.soh_model_files`) or one from a user's folder."""
    if folder is None:
        meta_file, arrays_file = parameters.soh_model_files(name)  # ConfigError when unknown
    else:
        meta_file, arrays_file = folder / f"{name}.json", folder / f"{name}.npz"
        if not (meta_file.is_file() and arrays_file.is_file()):
            raise ConfigError(meta_file, f"no SOH model named {name!r} in this folder (given by {MODELS_ENV} or "
                                         f"folder=; write one with: releaf train-soh --out {folder})")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    with arrays_file.open("rb") as fh, np.load(fh, allow_pickle=False) as arrays:
        return SohModel.from_files(meta, {k: arrays[k] for k in SohModel.ARRAYS})


def u21_features(u_V, soc_pct, nominal_capacity_Ah) -> np.ndarray:
    """Features of Tao et al. pulse vectors: per pulse, voltage steps over the pulse amplitude [V per unit].

    Parameters
    ----------
    u_V : (n, 21) or (21,) voltages U1..U21 [V]
    soc_pct, nominal_capacity_Ah : not used as features (they differ between cell types and make the GP
        extrapolate); they are checked against the training domain by :func:`predict`.

    Returns
    -------
    (n, 25) array, columns :data:`U_FEATURES`: for each pulse the step from the preceding rest voltage to the first
    pulse sample and to the end of the pulse, the drop when the current stops, the relaxation during the rest and
    the net change over pulse + rest, each divided by the signed pulse amplitude (1, 2, 3 units).
    """
    u = np.atleast_2d(np.asarray(u_V, dtype=float))
    if u.shape[1] != 21:
        raise InputFileError("<pulse vector>", f"expected 21 voltages U1..U21, got {u.shape[1]}")
    if not np.all(np.isfinite(u)):
        raise InputFileError("<pulse vector>", "U1..U21 must be finite numbers")
    cols, prev = [], u[:, 0]
    for c, m in U_PULSES:
        first, end, off, rest = u[:, c], u[:, c + 1], u[:, c + 2], u[:, c + 3]
        cols += [(first - prev) / m, (end - prev) / m, (end - off) / m, (off - rest) / m, (rest - prev) / m]
        prev = rest
    return np.column_stack(cols)


def _series_from(ts_or_arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    if isinstance(ts_or_arrays, TimeSeries):
        df, name = ts_or_arrays.data, ts_or_arrays.name
    elif isinstance(ts_or_arrays, pl.DataFrame):
        df, name = ts_or_arrays, "<time series>"
    else:
        df, name = ts_or_arrays, "<arrays>"
    try:
        t, v, i = (np.asarray(df[k], dtype=float) for k in ("test_time_s", "voltage_V", "current_A"))
    except (KeyError, pl.exceptions.ColumnNotFoundError) as e:
        raise InputFileError(name, f"needs test_time_s, voltage_V and current_A ({e})") from None
    return t, v, i, name


def window_features(ts_or_arrays, *, nominal_capacity_Ah: float) -> dict[str, float]:
    """Features of one fast-test window (``releaf.protocols.fast_pulse``), for the ``leaf-module-pulse`` model.

    Parameters
    ----------
    ts_or_arrays : TimeSeries, polars DataFrame or mapping with ``test_time_s`` [s], ``voltage_V`` [V],
        ``current_A`` [A] (positive = charge); at most 60 s, sampled every <= 0.5 s
    nominal_capacity_Ah : nominal capacity of the unit [Ah], the C-rate basis

    Returns
    -------
    ``ocv_V`` (mean voltage of the first rest) and, for pulses 1..3, ``r_first``, ``r_1s``, ``r_end``, ``r_off``,
    ``r_relax`` [Ohm·Ah]: the voltage change from the pre-pulse rest at the first sample, at 1 s and at the end of
    the pulse, the jump when the current stops, and what remains at the end of the following rest, each over the
    pulse current and times the nominal capacity.
    """
    t, v, i, name = _series_from(ts_or_arrays)
    if t.size < 10 or not (np.all(np.isfinite(t)) and np.all(np.isfinite(v)) and np.all(np.isfinite(i))):
        raise InputFileError(name, "the window needs at least 10 finite samples")
    span = t[-1] - t[0]
    if span > MAX_WINDOW_S + 1e-6:
        raise InputFileError(name, f"the fast estimator takes at most {MAX_WINDOW_S:.0f} s of data, got "
                                     f"{span:.1f} s: cut the window to the pulse test", column="test_time_s")
    if np.any(np.diff(t) <= 0) or np.median(np.diff(t)) > 0.5:
        raise InputFileError(name, "test_time_s must increase, sampled every <= 0.5 s", column="test_time_s")
    q = float(nominal_capacity_Ah)
    on = np.abs(i) > 0.2 * q  # pulses are >= 1C; rests are ~0
    edges = np.flatnonzero(np.diff(on.astype(int)))
    starts, stops = list(edges[::2] + 1), list(edges[1::2] + 1)  # first pulse sample, first rest sample
    expected = fast_protocol.pulse_edges_s()
    if on[0] or len(starts) != len(expected) or len(stops) != len(expected):
        raise InputFileError(name, f"expected a rest then {len(expected)} pulses (releaf.protocols.fast_pulse), "
                                     f"found {len(starts)} pulse(s) above 0.2C", column="current_A")
    feats = {"ocv_V": float(np.mean(v[:starts[0]]))}
    for k, (a, b, (t0, t1, c)) in enumerate(zip(starts, stops, expected, strict=True), start=1):
        cur = float(np.median(i[a:b]))
        if np.sign(cur) != np.sign(c) or abs(abs(cur) / q - abs(c)) > 0.15 * abs(c):
            raise InputFileError(name, f"pulse {k}: expected {c:+.0f}C, found {cur / q:+.2f}C", column="current_A")
        if abs((t[b - 1] - t[a - 1]) - (t1 - t0)) > 0.6:
            raise InputFileError(name, f"pulse {k}: expected {t1 - t0:.0f} s, found {t[b - 1] - t[a - 1]:.1f} s")
        v_pre, t_on = v[a - 1], t[a - 1]
        nxt = starts[k] if k < len(starts) else len(t)
        scale = q / cur
        feats[f"p{k}_r_first"] = (v[a] - v_pre) * scale
        feats[f"p{k}_r_1s"] = (float(np.interp(t_on + 1.0, t[a:b], v[a:b])) - v_pre) * scale
        feats[f"p{k}_r_end"] = (v[b - 1] - v_pre) * scale
        feats[f"p{k}_r_off"] = (v[b - 1] - v[b]) * scale
        feats[f"p{k}_r_relax"] = (v[nxt - 1] - v_pre) * scale
    return {kk: float(x) for kk, x in feats.items()}


def _kernel(model: SohModel, xs: np.ndarray) -> np.ndarray:
    d2 = ((xs[:, None, :] - model.x_train[None, :, :]) ** 2).sum(axis=2)
    return model.signal_var * np.exp(-0.5 * d2 / model.length_scale ** 2)


def mahalanobis(xs, center, precision) -> np.ndarray:
    """Mahalanobis distance of each row of standardised features ``xs`` from ``center`` under ``precision`` (the
    inverse covariance, here Ledoit-Wolf's of the training rows)."""
    dz = np.atleast_2d(xs) - center
    return np.sqrt(np.einsum("ij,jk,ik->i", dz, precision, dz))


def predict(model: SohModel, x, *, soc_pct=None, nominal_capacity_Ah=None) -> dict[str, np.ndarray]:
    """Vectorised core of :func:`estimate_soh` on feature rows.

    Returns
    -------
    ``soh_pct``, ``lo_pct``, ``hi_pct`` [%], ``maha`` (Mahalanobis distance) and ``reasons`` (list of lists).
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    xs = (x - model.x_mean) / model.x_scale
    soh = 100.0 * (model.y_mean + model.y_std * (_kernel(model, xs) @ model.alpha))
    h = model.conformal_halfwidth_pct
    maha = mahalanobis(xs, model.maha_center, model.maha_precision)
    n = len(x)
    socs = np.broadcast_to(np.nan if soc_pct is None else np.asarray(soc_pct, dtype=float), (n,))
    caps = np.broadcast_to(np.nan if nominal_capacity_Ah is None else np.asarray(nominal_capacity_Ah, float), (n,))
    reasons = []
    for k in range(n):
        r = []
        if maha[k] > model.maha_threshold:
            r.append(f"pulse features far from the training data (Mahalanobis {maha[k]:.1f} > "
                     f"{model.maha_threshold:.1f})")
        lo_s, hi_s = model.soc_range_pct
        if np.isfinite(socs[k]) and not lo_s - 1e-9 <= socs[k] <= hi_s + 1e-9:
            r.append(f"SOC {socs[k]:g} % outside the training range {lo_s:g}-{hi_s:g} %")
        lo_q, hi_q = model.capacity_range_Ah
        if np.isfinite(caps[k]) and not lo_q * 0.98 <= caps[k] <= hi_q * 1.02:
            r.append(f"nominal capacity {caps[k]:g} Ah outside the training range {lo_q:g}-{hi_q:g} Ah")
        reasons.append(r)
    return {"soh_pct": soh, "lo_pct": soh - h, "hi_pct": soh + h, "maha": maha, "reasons": reasons}


def estimate_soh(ts_or_arrays, *, soc_pct: float | None = None, nominal_capacity_Ah: float | None = None,
                 model: SohModel | str | None = None) -> SohEstimate:
    """State of health from a fast pulse test.

    Parameters
    ----------
    ts_or_arrays : either a fast-test window (TimeSeries, DataFrame or mapping with ``test_time_s``,
        ``voltage_V``, ``current_A``; at most 60 s, see ``releaf.protocols.fast_pulse``) for the ``leaf-module-pulse``
        model, or a sequence of the 21 voltages U1..U21 [V] (Tao et al. format) for ``retired-cells-pulse``
    soc_pct : SOC at the test [%]; required for U1..U21, optional for a window (checked against the training
        range only: the window's rest voltage carries the SOC)
    nominal_capacity_Ah : nameplate capacity [Ah], the SOH denominator and C-rate basis; required for U1..U21;
        for a window, default the one capacity the model was trained on (``capacity_range_Ah``; 65 Ah for
        ``leaf-module-pulse``)
    model : a model or a model name for :func:`load_model` (packaged, or from ``$RELEAF_SOH_MODELS``); default by
        input form

    Returns
    -------
    :class:`SohEstimate`. Out of domain (``ood=True``) the point estimate is NaN and the interval is (NaN, NaN):
    the estimator refuses to guess; ``ood_reasons`` says why.
    """
    is_vector = not isinstance(ts_or_arrays, (TimeSeries, pl.DataFrame, dict))
    if isinstance(model, str) or model is None:
        model = load_model(model or (RETIRED_CELLS_MODEL if is_vector else DEFAULT_MODEL))
    if is_vector:
        if model.input_kind != "u21":
            raise InputFileError("<pulse vector>", f"model {model.name!r} takes a time-series window")
        if soc_pct is None or nominal_capacity_Ah is None:
            raise InputFileError("<pulse vector>", "U1..U21 need soc_pct and nominal_capacity_Ah")
        x = u21_features(ts_or_arrays, soc_pct, nominal_capacity_Ah)
        if len(x) != 1:
            raise InputFileError("<pulse vector>", "one vector of 21 voltages per call (use predict() for many)")
    else:
        if model.input_kind != "leaf-window":
            raise InputFileError("<time series>", f"model {model.name!r} takes the 21 voltages U1..U21")
        lo_q, hi_q = model.capacity_range_Ah
        if nominal_capacity_Ah is None and lo_q != hi_q:
            raise InputFileError("<time series>", f"model {model.name!r} was trained on {lo_q:g}-{hi_q:g} Ah: "
                                                  "give nominal_capacity_Ah")
        cap = float(lo_q) if nominal_capacity_Ah is None else float(nominal_capacity_Ah)
        f = window_features(ts_or_arrays, nominal_capacity_Ah=cap)
        x = np.array([[f[k] for k in model.feature_names]])
        nominal_capacity_Ah = cap
    out = predict(model, x, soc_pct=soc_pct, nominal_capacity_Ah=nominal_capacity_Ah)
    reasons = out["reasons"][0]
    if reasons:
        soh, lo, hi = float("nan"), float("nan"), float("nan")
    else:
        soh, lo, hi = (float(out[k][0]) for k in ("soh_pct", "lo_pct", "hi_pct"))
    return SohEstimate(soh_pct=soh, soh_interval_pct=(lo, hi), coverage_nominal=model.coverage_nominal,
                       ood=bool(reasons), ood_reasons=reasons, model_name=model.name, model_version=model.version)
