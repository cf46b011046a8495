"""GENERATED fleet-scale table: one row of grading features per retired Nissan Leaf module (not measurements).

``releaf.sim.fleet`` simulates a few packs as cycler time series; this module skips the time series and draws the
per-module features the fleet engine (``releaf.fleet``) grades and pairs, for up to the whole retired fleet
(>650,000 Leafs sold = 31.2 million modules at 48 per pack) in seconds per million modules. Each module has two
series groups (the Leaf module's 2s2p); every value is float32 unless stated.

Columns
-------
``module_id`` (int64, ``pack_id * 48 + position``), ``pack_id`` (int64), ``position`` (int8, 0-47),
``soh_pct`` [%] (weakest group's capacity / 65 Ah), ``capacity_Ah`` [Ah] (the weakest group's),
``group_capacity_Ah_1``/``_2`` [Ah], ``r0_mOhm`` [mOhm] (module, the sum of the groups'),
``group_r0_mOhm_1``/``_2`` [mOhm], ``group_capacity_imbalance_pct`` [%] ((max - min) / max of the groups),
``group_end_voltage_spread_V`` [V], ``min_group_voltage_V`` [V] (lowest group voltage seen on arrival or in the
test), ``max_temperature_C`` [°C] (hottest reading of the test), ``self_discharge_pct_per_day`` [% of capacity per
day] (equivalent self-discharge over a rest), ``has_lifetime_data`` (bool: the car's BMS history was read),
``visual_damage`` (bool: the inspector set a damage flag). Missing measurements are null (not NaN).

The columns are the inputs :func:`releaf.grading_table.grade_table` reads, so the fleet engine grades them as
they are: the self-discharge in %/day (the policy's unit; converting an open-circuit voltage drop in mV/day needs
the OCV slope at the rest SOC, which a feature table does not carry), and the inspection as one bool (every flag
drawn here, swelling, corrosion or casing damage, is a damage flag of the packaged policy; a list-of-strings
column costs ~10x more to read and screen at 31 M rows).

Fleet model (all drawn from one seed; every number below is a releaf ASSUMPTION chosen to look like the retired
first-generation fleet, not a fitted value):

- pack age uniform 4-14 years; a quarter of the packs from hot climates. SOH fade per year lognormal around
  2.6 %/year (temperate) or 4.0 %/year (hot), sd 20 %; pack SOH clipped to 35-98 %. Gao et al. (2024) found most
  of >100 retired first-generation packs at 60-67 % SOH.
- modules scatter around their pack: N(0, 2 points), the middle stack (positions 12-35) 1 point lower in hot packs;
  group mismatch N(0, 0.5 %) per group, 6 % of modules with one weak group (-3 ... -12 %).
- R0 per group 0.9 mOhm new, grown as ``R = R_new * (1 + 2 * (1 - SOH_group))`` (as ``releaf.sim.fleet``, after
  Drallmeier et al. 2022), times a pack factor (lognormal 10 %) and a module factor (lognormal 6 %); 2 % of
  modules high (x1.5-3, corroded busbar or tab).
- end-voltage spread grows with the group imbalance (15 mV per % plus |N(0, 10 mV)|).
- abuse: 1 % of packs left deeply discharged (30 % of their modules had a group below 2.5 V), 0.3 % of modules
  over-discharged alone; 0.2 % of modules ran hot in the test (60-80 °C); self-discharge lognormal around
  0.1 %/day (sd 40 %; healthy cells lose a few % per month), 1 % with a soft short (2.5-25 %/day); visual damage
  on 2.5 % of modules, whole packs for the 0.2 % of flooded cars (corrosion).
- BMS history (lifetime data, IEC 63338) read for 35 % of the packs.
- missing: 0.5 % no full discharge (no SOH, capacity), 2 % no pulse (no R0), 1 % no group taps (no group values).

References
----------
Gao, Cao, Vosoughi Kurdkandi, Fu, Mi, "Evaluation of the second-life potential of the first-generation Nissan Leaf
battery packs in energy storage systems", eTransportation 20 (2024) 100313.
Drallmeier, Wong, Solbrig, Siegel, Stefanopoulou, "A Fast Diagnostic to Inform Screening of Discarded or Retired
Batteries", arXiv:2203.12376 (2022).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

MODULES_PER_PACK = 48
NOMINAL_Ah = 65.0
LEAF_PACKS_SOLD = 650_000
DEFAULT_PACKS_PER_FILE = 20_834  # 1,000,032 modules per Parquet file
COLUMNS = ("module_id", "pack_id", "position", "soh_pct", "capacity_Ah", "group_capacity_Ah_1", "group_capacity_Ah_2",
           "r0_mOhm", "group_r0_mOhm_1", "group_r0_mOhm_2", "group_capacity_imbalance_pct",
           "group_end_voltage_spread_V", "min_group_voltage_V", "max_temperature_C", "self_discharge_pct_per_day",
           "has_lifetime_data", "visual_damage")


def _null_where(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    out = values.astype(np.float32)
    out[missing] = np.nan
    return out


def generate_packs(first_pack: int, n_packs: int, *, seed: int = 2026) -> pl.DataFrame:
    """The features of the modules of packs ``first_pack`` ... ``first_pack + n_packs - 1``.

    Parameters
    ----------
    first_pack : id of the first pack
    n_packs : number of packs (48 modules each)
    seed : seed of the fleet; the same (seed, first_pack, n_packs) gives the same table

    Returns
    -------
    One row per module, the columns of the module docstring in that order.
    """
    rng = np.random.default_rng([seed, first_pack, n_packs])
    n = n_packs * MODULES_PER_PACK
    pack_id = np.repeat(np.arange(first_pack, first_pack + n_packs, dtype=np.int64), MODULES_PER_PACK)
    position = np.tile(np.arange(MODULES_PER_PACK, dtype=np.int8), n_packs)
    per_pack = np.repeat  # pack-level draw -> one value per module

    age_y = rng.uniform(4.0, 14.0, n_packs)
    hot = rng.random(n_packs) < 0.25
    fade = np.where(hot, 4.0, 2.6) * rng.lognormal(0.0, 0.2, n_packs)
    pack_soh = np.clip(100.0 - fade * age_y, 35.0, 98.0)
    pack_r = rng.lognormal(0.0, 0.10, n_packs)
    deep_pack = rng.random(n_packs) < 0.01
    flooded = rng.random(n_packs) < 0.002
    lifetime = rng.random(n_packs) < 0.35

    middle = (position >= 12) & (position < 36)
    soh = per_pack(pack_soh, MODULES_PER_PACK) + rng.normal(0.0, 2.0, n) - np.where(
        per_pack(hot, MODULES_PER_PACK) & middle, 1.0, 0.0)
    group_soh = soh[:, None] * (1.0 + rng.normal(0.0, 0.005, (n, 2)))
    weak = rng.random(n) < 0.06
    which = rng.integers(0, 2, n)
    group_soh[np.arange(n), which] *= np.where(weak, 1.0 - rng.uniform(0.03, 0.12, n), 1.0)
    group_soh = np.clip(group_soh, 5.0, 106.0)
    group_cap = group_soh / 100.0 * NOMINAL_Ah
    cap = group_cap.min(axis=1)
    imbalance = (group_cap.max(axis=1) - cap) / group_cap.max(axis=1) * 100.0

    high_r = np.where(rng.random(n) < 0.02, rng.uniform(1.5, 3.0, n), 1.0)
    group_r0 = (0.9 * (1.0 + 2.0 * (1.0 - group_soh / 100.0)) * per_pack(pack_r, MODULES_PER_PACK)[:, None]
                * rng.lognormal(0.0, 0.06, (n, 2)))
    group_r0[np.arange(n), which] *= high_r
    spread = 0.015 * imbalance + np.abs(rng.normal(0.0, 0.010, n)) + 0.001

    min_v = np.clip(rng.normal(2.98, 0.02, n), 2.85, 3.10)
    over = (per_pack(deep_pack, MODULES_PER_PACK) & (rng.random(n) < 0.30)) | (rng.random(n) < 0.003)
    min_v = np.where(over, rng.uniform(0.8, 2.49, n), min_v)
    temp = 25.0 + rng.normal(0.0, 1.5, n) + 1.5 * (group_r0.sum(axis=1) - 2.0)
    temp = np.where(rng.random(n) < 0.002, rng.uniform(60.5, 80.0, n), temp)
    self_dis = rng.lognormal(math.log(0.1), 0.4, n)
    self_dis = np.where(rng.random(n) < 0.01, rng.uniform(2.5, 25.0, n), self_dis)
    visual = (rng.random(n) < 0.025) | per_pack(flooded, MODULES_PER_PACK)

    no_discharge = rng.random(n) < 0.005
    no_pulse = rng.random(n) < 0.02
    no_taps = rng.random(n) < 0.01
    cap32 = _null_where(cap, no_discharge)
    return pl.DataFrame({
        "module_id": pack_id * MODULES_PER_PACK + position,
        "pack_id": pack_id,
        "position": position,
        "soh_pct": _null_where(cap32.astype(np.float64) / NOMINAL_Ah * 100.0, no_discharge),
        "capacity_Ah": cap32,
        "group_capacity_Ah_1": _null_where(group_cap[:, 0], no_discharge | no_taps),
        "group_capacity_Ah_2": _null_where(group_cap[:, 1], no_discharge | no_taps),
        "r0_mOhm": _null_where(group_r0.sum(axis=1), no_pulse),
        "group_r0_mOhm_1": _null_where(group_r0[:, 0], no_pulse | no_taps),
        "group_r0_mOhm_2": _null_where(group_r0[:, 1], no_pulse | no_taps),
        "group_capacity_imbalance_pct": _null_where(imbalance, no_discharge | no_taps),
        "group_end_voltage_spread_V": _null_where(spread, no_discharge | no_taps),
        "min_group_voltage_V": _null_where(min_v, no_taps),
        "max_temperature_C": temp.astype(np.float32),
        "self_discharge_pct_per_day": self_dis.astype(np.float32),
        "has_lifetime_data": per_pack(lifetime, MODULES_PER_PACK),
        "visual_damage": visual,
    }).with_columns(pl.selectors.float().fill_nan(None))


def write_fleet(path: str | Path, n_packs: int = LEAF_PACKS_SOLD, *, seed: int = 2026,
                packs_per_file: int = DEFAULT_PACKS_PER_FILE, row_group_size: int = 250_000) -> list[Path]:
    """Write the generated fleet of ``n_packs`` packs as a directory of Parquet files (``part-00000.parquet``, ...).

    Parameters
    ----------
    path : output directory (created; existing ``part-*.parquet`` files in it are replaced)
    n_packs : packs (48 modules each); the default is the >650,000 Leafs sold (31.2 M modules)
    seed : seed of the fleet
    packs_per_file : packs per file (the default makes files of ~1 M modules, one Dask partition each)
    row_group_size : rows per Parquet row group (the unit of parallel and streaming reads)

    Returns
    -------
    The files written, in pack order.
    """
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("part-*.parquet"):
        old.unlink()
    files = []
    for k, first in enumerate(range(0, n_packs, packs_per_file)):
        frame = generate_packs(first, min(packs_per_file, n_packs - first), seed=seed)
        file = out / f"part-{k:05d}.parquet"
        frame.write_parquet(file, compression="zstd", compression_level=1, row_group_size=row_group_size)
        files.append(file)
    return files
