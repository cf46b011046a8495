"""Fast SOH estimator: packaged models, the GP prediction against scikit-learn, the 60 s window, OOD flags."""

import functools
import os

import numpy as np
import polars as pl
import pytest
from conftest import shared
from hypothesis import given, settings
from hypothesis import strategies as st

from releaf.diagnostics import soh
from releaf.errors import ConfigError, InputFileError
from releaf.parameters import LEAF_MODULE
from releaf.protocols import fast_pulse as fast_protocol

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")


@functools.lru_cache(maxsize=1)
def pouch31():
    from releaf.training.soh_trainer import load_retired_cells

    shared("retired-cells-pulse", "data_Pouch31.xlsx")
    return load_retired_cells().filter(pl.col("workbook") == "Pouch31")


@functools.lru_cache(maxsize=1)
def fresh_leaf_windows():
    """Generated windows from a seed the packaged model was not trained on (it used 2026)."""
    from releaf.training.soh_trainer import generate_leaf_dataset

    return generate_leaf_dataset(8, socs_per_state=1, seed=7)


def test_packaged_models_load_and_describe_themselves():
    for name, kind in (("leaf-module-pulse", "leaf-window"), ("retired-cells-pulse", "u21")):
        m = soh.load_model(name)
        assert m.input_kind == kind and m.coverage_nominal == 0.9
        assert m.x_train.shape == (m.alpha.size, len(m.feature_names))
        assert m.conformal_halfwidth_pct > 0 and m.info["n_rows"] == m.alpha.size
    with pytest.raises(ConfigError, match="leaf-module-pulse"):
        soh.load_model("no-such-model")


def test_gp_mean_matches_scikit_learn():
    """The JSON/NPZ predictor against scikit-learn's GP with the same (fixed) kernel, refitted on the same rows."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    m = soh.load_model("leaf-module-pulse")
    noise = float(m.info["kernel"].split("noise_level=")[1].rstrip(")"))
    kernel = ConstantKernel(m.signal_var, "fixed") * RBF(m.length_scale, "fixed") + WhiteKernel(noise, "fixed")
    # recover the training targets from alpha: y_std * (K + noise I) alpha + y_mean
    k = m.signal_var * np.exp(-0.5 * ((m.x_train[:, None] - m.x_train[None]) ** 2).sum(2) / m.length_scale ** 2)
    y = m.y_mean + m.y_std * (k + noise * np.eye(len(m.alpha))) @ m.alpha
    assert 0.5 < y.min() and y.max() < 1.01  # they are SOH fractions of the generated set
    gp = GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None).fit(m.x_train, y)
    rng = np.random.default_rng(0)
    xs = m.x_train[rng.choice(len(y), 20)] + rng.normal(0, 0.3, (20, m.x_train.shape[1]))
    ours = soh.predict(m, xs * m.x_scale + m.x_mean)["soh_pct"]
    assert np.allclose(ours, 100 * gp.predict(xs), atol=1e-6)


def test_leaf_window_on_unseen_generated_modules():
    ds = fresh_leaf_windows()
    m = soh.load_model("leaf-module-pulse")
    out = soh.predict(m, ds["features"], soc_pct=ds["soc_pct"], nominal_capacity_Ah=65.0)
    err = out["soh_pct"] - 100 * ds["soh"]
    inside = (100 * ds["soh"] >= out["lo_pct"]) & (100 * ds["soh"] <= out["hi_pct"])
    assert np.mean(np.abs(err)) < 6.0       # held-out MAE of the validation was ~3 points
    assert inside.sum() >= 6                # 90 % intervals: at most a couple of misses in 8
    assert np.allclose(out["hi_pct"] - out["lo_pct"], 2 * m.conformal_halfwidth_pct)


def test_estimate_from_a_time_series_window():
    from releaf.training.soh_trainer import LEAF_MODULE_Ah, fresh_module_test

    window = fresh_module_test(50.0)  # the generator's NEW stand-in module (SOH 100 %), noise-free, at 50 % SOC
    t, i = window["test_time_s"], window["current_A"]
    df = pl.DataFrame(window)
    est = soh.estimate_soh(df, nominal_capacity_Ah=LEAF_MODULE_Ah)
    assert est.model_name == "leaf-module-pulse" and not est.ood
    assert est.soh_interval_pct[0] < est.soh_pct < est.soh_interval_pct[1]
    assert est.soh_interval_pct[1] > 97.0     # a new cell (SOH ~100 %) lies inside its interval
    # more than 60 s is refused, as is a different pulse sequence
    longer = pl.DataFrame({"test_time_s": np.r_[t, 60.1], "voltage_V": np.r_[df["voltage_V"], 7.5],
                           "current_A": np.r_[i, 0.0]})
    with pytest.raises(InputFileError, match="at most 60 s"):
        soh.estimate_soh(longer)
    with pytest.raises(InputFileError, match="pulse"):
        soh.estimate_soh(df.with_columns(pl.col("current_A") * 0.5))


def test_retired_cells_vector_and_ood_flags():
    df = pouch31()
    row = df.row(20, named=True)
    u = [row[f"U{k}"] for k in range(1, 22)]
    est = soh.estimate_soh(u, soc_pct=row["SOC"], nominal_capacity_Ah=row["Qn"])
    assert est.model_name == "retired-cells-pulse" and not est.ood
    lo, hi = est.soh_interval_pct
    assert lo < 100 * row["SOH"] < hi        # a training row: inside its interval
    est = soh.estimate_soh(u, soc_pct=row["SOC"], nominal_capacity_Ah=65.0)
    assert est.ood and np.isnan(est.soh_pct) and "nominal capacity" in est.ood_reasons[0]
    est = soh.estimate_soh(u, soc_pct=90.0, nominal_capacity_Ah=row["Qn"])
    assert est.ood and "SOC" in est.ood_reasons[0]
    garbage = list(np.array(u) + np.linspace(0, 0.5, 21))
    est = soh.estimate_soh(garbage, soc_pct=row["SOC"], nominal_capacity_Ah=row["Qn"])
    assert est.ood and "Mahalanobis" in est.ood_reasons[0]
    with pytest.raises(InputFileError):
        soh.estimate_soh(u[:20], soc_pct=20.0, nominal_capacity_Ah=3.1)
    with pytest.raises(InputFileError):
        soh.estimate_soh(u)


@settings(max_examples=25, deadline=None)
@given(st.floats(-0.5, 0.5))
def test_u21_features_ignore_a_common_voltage_offset(offset_V):
    """Only voltage differences enter: an offset of every U (a different OCV) changes nothing."""
    u = np.array([[3.7, 3.72, 3.73, 3.71, 3.70, 3.68, 3.67, 3.69, 3.70, 3.74, 3.75, 3.72, 3.71, 3.66, 3.65,
                   3.69, 3.70, 3.76, 3.77, 3.72, 3.71]])
    assert np.allclose(soh.u21_features(u + offset_V, None, None), soh.u21_features(u, None, None), atol=1e-9)


def test_window_features_read_the_resistance_of_an_ohmic_load():
    """A pure resistor of 10 mOhm on 7.6 V: every step over current reads 10 mOhm x 65 Ah = 0.65 Ohm Ah."""
    t, i = fast_protocol.current_profile(65.0)
    f = soh.window_features({"test_time_s": t, "voltage_V": 7.6 + 0.010 * i, "current_A": i},
                            nominal_capacity_Ah=LEAF_MODULE.nominal_capacity_Ah)
    assert f["ocv_V"] == pytest.approx(7.6)
    for k in (1, 2, 3):
        for name in ("r_first", "r_1s", "r_end", "r_off"):
            assert f[f"p{k}_{name}"] == pytest.approx(0.65, rel=1e-9)
        assert f[f"p{k}_r_relax"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("soc_pct", [30.0, 50.0, 70.0])
def test_ornl_leaf_module_is_in_domain(soc_pct):
    """The fast test on releaf's ECM fitted to the MEASURED ORNL Leaf cell HPPC (25 degC), as a 2s2p module.

    Before the Leaf calibration of the generated set this was refused (Mahalanobis 7.8-8.4). Measured with the
    shipped model: in domain (Mahalanobis 1.9-2.4 vs 4.25), estimate 98.7 / 98.4 / 98.1 % at 30 / 50 / 70 % SOC,
    interval about +/- 8.1 points. The reference: the ORNL cell held 30.5 Ah, so the module 61.0 of 65 Ah = 93.9 %;
    the point estimate is ~4.5 points high, the interval contains the reference. Not tuned on this check.
    """
    from releaf.models.ecm_fit import load_fitted_ecm
    from releaf.training.soh_trainer import LEAF_MODULE_Ah, ornl_ecm_module_test

    est = soh.estimate_soh(pl.DataFrame(ornl_ecm_module_test(soc_pct)), nominal_capacity_Ah=LEAF_MODULE_Ah)
    assert not est.ood, est.ood_reasons
    lo, hi = est.soh_interval_pct
    assert lo < est.soh_pct < hi
    reference_pct = 100 * 2 * load_fitted_ecm("leaf_cell_ecm2_25C").capacity_Ah / LEAF_MODULE_Ah
    assert reference_pct == pytest.approx(93.9, abs=0.1)
    assert lo <= reference_pct <= hi
