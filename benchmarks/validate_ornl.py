"""Validate the 2-RC ECM fitted on the ORNL Leaf cell HPPC at 25 °C against the ORNL 1C, 2C and 3C discharges.

The ECM is fitted on whole HPPC levels: both pulses, the 10 A constant-current SOC step and the 1 h relaxation
after it (``fit_ecm_2rc(..., fit_soc_step=True)``); ``--pulses-only`` fits the pulses and relaxations only, as
releaf's packaged fits do, for comparison.

Prints, per C-rate and discharge, the voltage RMSE (goal <= 20 mV; ``rmse_mV`` over the measured discharge to
the measured cut-off with the model continued past its own cut-off, ``rmse_both_above_cutoff_mV`` over the
samples where both are above the cut-off, ``rmse_time_weighted_mV`` with each sample weighted by the time it
stands for: the files log every 1 s in a step's first minute and every 60 s after, so ``rmse_mV`` is mostly the
first minute) and the capacity error to the 3.0 V cut-off (goal <= 2 %), for the 25 °C model and for the
temperature-corrected variant (Arrhenius resistances through the 10/25/40 °C fits, driven by the mid-cell
thermocouple TC2 of the .lvm files) and for the
"ECM + Butler-Volmer" variant (first RC pair a symmetric Butler-Volmer element, I0 fitted on the 25 °C HPPC
pulses only), and for the electro-thermal variant (Butler-Volmer + Arrhenius resistances + a lumped thermal model
fitted on the 1C thermocouple trace only, heated by the model's own overpotential: no measured temperature needed,
every discharge predicted; its predicted temperature is compared with TC2 where the .lvm covers); prints the
temperature trend of R0 and R0+R1+R2 at 50 % SOC; writes a PNG of measured vs predicted voltage.

    .venv/bin/python benchmarks/validate_ornl.py [--data DIR] [--png FILE] [--pulses-only]

No voltage of a discharge file is fitted (the electro-thermal variant's two thermal parameters come from the 1C
thermocouple trace and the 1C file's measured heat). Data: Wiggins, Allu, Wang, doi:10.5281/zenodo.2580327 (MIT).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from releaf.models import validation

ROOT = Path(__file__).resolve().parents[1]
GOAL_RMSE_MV = 20.0
GOAL_CAPACITY_PCT = 2.0


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 5), sharey=True)
    for ax, (c_rate, preds) in zip(axes, result["plain"].items(), strict=True):
        d = next(p for p in preds if p.from_full)
        t0 = d.t_s[0]
        ax.plot((d.t_s - t0) / 60, d.measured_V, "k-", label="measured")
        ax.plot((d.t_s - t0) / 60, d.predicted_V, "C0--", label="ECM 25 °C")
        bv = next(p for p in result["butler_volmer"][c_rate] if p.index == d.index)
        ax.plot((bv.t_s - t0) / 60, bv.predicted_V, "C2-", lw=1,
                label=f"ECM + Butler-Volmer: RMSE {bv.rmse_mV:.0f} mV, capacity {bv.capacity_error_pct:+.1f} %")
        et = next(p for p in result["electrothermal"][c_rate] if p.index == d.index)
        ax.plot((et.t_s - t0) / 60, et.predicted_V, "C1-", lw=1,
                label=f"+ Arrhenius + thermal model: RMSE {et.rmse_mV:.0f} mV, capacity {et.capacity_error_pct:+.1f} %")
        th = [p for p in result["thermal"][c_rate] if p.index == d.index]
        if not th and result["thermal"][c_rate]:
            th = result["thermal"][c_rate][:1]
            ax.plot((th[0].t_s - th[0].t_s[0]) / 60, th[0].measured_V, "k:", lw=0.8,
                    label=f"measured (discharge {th[0].index})")
        if th:
            ax.plot((th[0].t_s - th[0].t_s[0]) / 60, th[0].predicted_V, "C3-.",
                    label=f"ECM + Arrhenius(TC2), discharge {th[0].index}")
        ax.set_title(f"{c_rate}C, discharge {d.index}: RMSE {d.rmse_mV:.0f} mV, capacity {d.capacity_error_pct:+.1f} %")
        ax.set_xlabel("time [min]")
        ax.axhline(validation.CUTOFF_V, color="grey", lw=0.5)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("cell voltage [V]")
    fig.suptitle("ORNL 2013 Nissan Leaf cell: 2-RC ECM fitted on the 25 °C HPPC (whole levels) vs measured discharges")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def temperature_check(result: dict, data_dir: Path) -> pl.DataFrame:
    """Electro-thermal variant: predicted against measured (TC2) temperature where the .lvm trace covers the
    discharge."""
    rows = []
    for c_rate, preds in result["electrothermal"].items():
        t_T, temps = validation.read_lvm_temperatures(data_dir / "ornl-leaf" / validation.LVM_FILES[c_rate])
        for d in preds:
            if d.t_s[-1] > t_T[-1]:
                continue
            measured = np.interp(d.t_s, t_T, temps[:, validation.LVM_MID_CELL])
            rows.append({"c_rate": c_rate, "discharge": d.index, "measured_peak_C": float(measured.max()),
                         "predicted_peak_C": float(d.predicted_temperature_C.max()),
                         "rmse_K": float(np.sqrt(np.mean((d.predicted_temperature_C - measured) ** 2)))})
    return pl.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    parser.add_argument("--png", type=Path, default=ROOT / "benchmarks" / "validate_ornl.png")
    parser.add_argument("--pulses-only", action="store_true",
                        help="fit the HPPC pulses and relaxations only (the SOC steps simulated, not fitted)")
    args = parser.parse_args(argv)
    pl.Config.set_tbl_rows(50)
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(200)
    t0 = time.perf_counter()
    result = validation.validate_ornl(args.data, fit_soc_step=not args.pulses_only)
    elapsed = time.perf_counter() - t0
    print("Temperature trend at 50 % SOC (2-RC fits of the 10/25/40 degC HPPC files):")
    print(validation.temperature_trend(result["fits"]))
    bv = result["bv_fit"]
    print(f"\nButler-Volmer first RC pair (25 degC HPPC only): I0 = {bv.i0_A:.2f} A, fit RMSE {bv.rmse_mV:.3f} mV "
          f"(linear limit {bv.rmse_linear_mV:.3f} mV)")
    print(bv.profile.with_columns(pl.col("rmse_mV").round(4)))
    th = result["thermal_fit"]
    print(f"\nLumped thermal model (fitted on the 1C temperature trace only: {th.source}): tau {th.tau_s:.0f} s, "
          f"R_th {th.r_th_K_per_W:.3f} K/W, C_th {th.heat_capacity_J_per_K:.0f} J/K, fit RMSE {th.rmse_K:.2f} K")
    print(temperature_check(result, args.data).with_columns(pl.col(pl.Float64).round(2)))
    for label, key in (("25 degC model", "plain"), ("25 degC model + Arrhenius resistances (TC2)", "thermal"),
                       ("25 degC model, ECM + Butler-Volmer", "butler_volmer"),
                       ("25 degC model, ECM + Butler-Volmer + Arrhenius + lumped thermal model", "electrothermal")):
        tab = validation.summary_table(result[key])
        print(f"\n{label}: per discharge")
        print(tab.with_columns(pl.col(pl.Float64).round(2)))
        agg = (tab.filter(pl.col("from_full")).group_by("c_rate").agg(
            pl.len().alias("n"), pl.col("rmse_mV").mean().alias("rmse_mV"),
            pl.col("rmse_both_above_cutoff_mV").mean().alias("rmse_both_above_cutoff_mV"),
            pl.col("rmse_to_90pct_mV").mean().alias("rmse_to_90pct_mV"),
            pl.col("rmse_time_weighted_mV").mean().alias("rmse_time_weighted_mV"),
            pl.col("capacity_error_pct").mean().alias("capacity_error_pct"),
            pl.col("capacity_error_pct").abs().max().alias("max_abs_capacity_error_pct")).sort("c_rate"))
        agg = agg.with_columns((pl.col("rmse_mV") <= GOAL_RMSE_MV).alias("rmse_goal_met"),
                               (pl.col("max_abs_capacity_error_pct") <= GOAL_CAPACITY_PCT).alias("capacity_goal_met"))
        print(f"{label}: mean over discharges from full (goals: RMSE <= {GOAL_RMSE_MV:g} mV, |capacity error| <= "
              f"{GOAL_CAPACITY_PCT:g} %)")
        print(agg.with_columns(pl.col(pl.Float64).round(2)))
    plot(result, args.png)
    print(f"\nfits + predictions in {elapsed:.2f} s; wrote {args.png}")


if __name__ == "__main__":
    main()
