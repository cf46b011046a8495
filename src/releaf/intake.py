"""Pack pre-screen at intake, from the car's own BMS readings (LeafSpy Pro logs and hand-copied histories).

Before a retired pack is opened, its BMS logs already tell a lot: the BMS's capacity estimate (``AHr``), its
``SOH`` and ``Hx`` and how they moved over time, and, from the 96 cell-pair voltages, which modules sit low at
rest, which sag most under load, and which the balancer keeps bleeding. :func:`prescreen` turns the logs of one
pack into a :class:`PackReport`; :func:`intake_logs` groups files by pack and calls it; :func:`heatmap` draws
the modules.

Cell pair -> module mapping
---------------------------
A 24 kWh (ZE0/AZE0) and a 30 kWh (AZE0) pack are 96 series groups of 2 parallel cells ("cell pairs") in 48
modules of 2 series groups each (2S2P); the BMS reports the 96 pair voltages in series order (LeafSpy
``CP1..CP96``). releaf assumes **module m = cell pairs 2m-1 and 2m** (m = 1..48, series order from CP1). This is
the usual community reading of LeafSpy data, not a Nissan document: no source in reach states where the pair
numbering starts inside a module, nor which physical slot module m occupies. Every report therefore carries
``mapping_uncertain = True`` and a data check (``mapping_check``: the correlation of neighbouring pairs'
deviations inside an assumed module against across a module boundary; a real pairing shows the former higher).
Module numbers are positions in series order, not physical positions in the pack.
A 62 kWh (ZE1 e+) pack is 96 series groups of 3 parallel cells (288 cells); its module layout (groups per module)
is not established here, so it is reported per cell pair (96 units), not per module.

Resistance proxy
----------------
``sag_mOhm``: voltage sag per ampere of a module, ΔV/ΔI between a load sample (|I| >= ``load_A``) and the nearest
rest sample (|I| < ``rest_A``) of the same log within ``max_gap_s``; the median over all such pairs, with their
count. With 5 s logging this is a ~5-30 s pulse resistance (ohmic + fast polarisation), above the ~1 s R0 of a
lab test. Logs sampled every few minutes give no such pairs (``sag_samples = 0``). ``excess_sag_mOhm``: the
least-squares slope of the module's voltage minus the pack-median module voltage against current (with SOC as
covariate), over all rows: how much more (or less) the module sags than the pack's median module; available for
every log and used for ranking.

References
----------
Nissan Leaf 2011-2014 service manual, section EVB, "Li-ion Battery": "Four cells are integrated into a single
module. The Li-ion battery consists of 48 modules placed in series." (2S2P: two parallel pairs in series, 7.5 V).
"Nissan LEAF Module Gen 2 Details", ogsolarstore.com: the 2016 (30 kWh) module is again 4 cells, 2S2P.
LeafSpy Pro Help v1.2.1 (Turbo3): 96 cell-pair voltages read from the Li-ion battery controller.
Rousseeuw & Croux (1993), "Alternatives to the median absolute deviation", JASA 88:1273, doi:10.2307/2291267
(robust z-scores: median and 1.4826 x MAD).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from releaf.errors import ConfigError, InputFileError
from releaf.io import textfile
from releaf.io.leafspy import LeafSpyLog, cp_columns, read_bms_history, read_leafspy, sniff_leafspy

N_PAIRS = 96


@dataclass(frozen=True)
class PackLayout:
    """How a Leaf pack's 96 cell pairs group into the units reported (modules, or cell pairs).

    ``new_ahr_Ah``: the BMS ``AHr`` of a new pack, estimated as ``AHr / SOH`` from real logs (used only to tell
    the pack sizes apart; the bands between them are wide).
    """

    name: str
    label: str
    new_ahr_Ah: float
    cells_per_pair: int
    pairs_per_unit: int
    unit: str
    mapping: str
    mapping_uncertain: bool

    @property
    def units(self) -> int:
        return N_PAIRS // self.pairs_per_unit

    def unit_of_pair(self) -> np.ndarray:
        """0-based unit index of each of the 96 cell pairs (CP1 first)."""
        return np.arange(N_PAIRS) // self.pairs_per_unit


_PAIRS_2 = ("module m = cell pairs 2m-1 and 2m (series order from CP1); community assumption, no Nissan "
            "document found: uncertain")
LAYOUTS = (
    PackLayout("leaf-24kwh", "Nissan Leaf 24 kWh (ZE0/AZE0), 48 modules 2S2P", 65.4, 2, 2, "module", _PAIRS_2, True),
    PackLayout("leaf-30kwh", "Nissan Leaf 30 kWh (AZE0), 48 modules 2S2P", 81.0, 2, 2, "module", _PAIRS_2, True),
    PackLayout("leaf-62kwh", "Nissan Leaf 62 kWh (ZE1 e+), 96 series groups of 3 cells", 176.4, 3, 1,
               "cell_pair", "reported per cell pair: module layout of the 62 kWh pack not established", False),
)


def identify_pack(new_ahr_Ah: float) -> PackLayout:
    """The layout whose new-pack ``AHr`` is nearest (on a log scale) to ``new_ahr_Ah`` = AHr / SOH [Ah].

    Raises
    ------
    InputFileError
        when ``new_ahr_Ah`` is more than 25 % from every known pack (a 40 kWh pack, unknown here, or bad data).
    """
    best = min(LAYOUTS, key=lambda lay: abs(math.log(new_ahr_Ah / lay.new_ahr_Ah)))
    if abs(math.log(new_ahr_Ah / best.new_ahr_Ah)) > math.log(1.25):
        raise InputFileError("<pack>", f"AHr/SOH = {new_ahr_Ah:.1f} Ah matches no known Leaf pack "
                                         f"({', '.join(f'{x.name}: {x.new_ahr_Ah} Ah' for x in LAYOUTS)})")
    return best


@dataclass
class PackReport:
    """The pre-screen of one pack. ``to_dict()`` gives the JSON form (ISO datetimes, NaN -> null)."""

    pack_id: str
    grouped_by: str
    layout: str
    layout_label: str
    unit: str
    mapping: str
    mapping_uncertain: bool
    files: list[dict]
    latest: dict
    history: list[dict]
    soh_trend_pct_per_year: float | None
    pack: dict
    modules: list[dict]
    inspect_first: list[dict]
    mapping_check: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return _jsonable(asdict(self))


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, datetime):
        return x.isoformat()
    if hasattr(x, "isoformat"):
        return x.isoformat()
    return x


# --- history ------------------------------------------------------------------------------------------------

def merge_bms_history(histories) -> tuple[pl.DataFrame, int]:
    """Concatenate hand-copied histories, one row per date (the first file's row wins).

    Returns
    -------
    (rows sorted by date with a ``file`` column, number of repeated dates removed)
    """
    if not histories:
        return pl.DataFrame(), 0
    rows = pl.concat([h.data.with_columns(pl.lit(Path(h.path).name).alias("file")) for h in histories])
    merged = rows.unique("date", keep="first", maintain_order=True).sort("date")
    return merged, rows.height - merged.height


def _history(logs: list[LeafSpyLog], merged: pl.DataFrame) -> list[dict]:
    out = []
    for log in logs:
        d = log.data
        last = d.select(pl.col("datetime").last(), *[pl.col(c).drop_nulls().last() for c in (
            "soh_pct", "hx_pct", "ahr_Ah", "odometer_km", "qc_count", "l1l2_count")]).row(0, named=True)
        out.append({"datetime": last.pop("datetime"), "source": "log", "file": log.name, **last})
    for r in merged.iter_rows(named=True):
        when = datetime(r["date"].year, r["date"].month, r["date"].day, tzinfo=UTC)
        out.append({"datetime": when, "source": "bms-history", "file": r["file"],
                    **{k: r[k] for k in ("soh_pct", "hx_pct", "ahr_Ah", "odometer_km", "qc_count", "l1l2_count")}})
    return sorted(out, key=lambda e: e["datetime"])


def _soh_trend(history: list[dict]) -> float | None:
    """Least-squares slope of SOH against time [%/year]; rows without AHr (nominal new rows) are skipped."""
    pts = [(e["datetime"].timestamp(), e["soh_pct"]) for e in history
           if e["soh_pct"] is not None and e["ahr_Ah"] is not None]
    if len(pts) < 3:
        return None
    t, soh = np.array(pts).T
    if t.max() - t.min() < 90 * 86400:
        return None
    return float(np.polyfit(t / (365.25 * 86400), soh, 1)[0])


# --- module statistics ----------------------------------------------------------------------------------------

def _robust_z(x: np.ndarray, floor: float) -> np.ndarray:
    med = np.nanmedian(x)
    scale = max(1.4826 * np.nanmedian(np.abs(x - med)), floor)
    return (x - med) / scale


def _sag_pairs(frame: pl.DataFrame, rest_A: float, load_A: float, max_gap_s: float) -> pl.DataFrame:
    """Each load row joined to the nearest rest row of the same log within ``max_gap_s``."""
    cols = ["log", "epoch_s", "pack_current_A", "pack_voltage_V", *cp_columns()]
    rest = frame.filter(pl.col("pack_current_A").abs() < rest_A).select(cols).sort("epoch_s")
    load = frame.filter(pl.col("pack_current_A").abs() >= load_A).select(cols).sort("epoch_s")
    if rest.is_empty() or load.is_empty():
        return load.head(0).join(rest.head(0), on=["log", "epoch_s"], suffix="_rest")
    rest = rest.with_columns(pl.col("epoch_s").alias("epoch_s_rest"))
    joined = load.join_asof(rest, on="epoch_s", by="log", strategy="nearest", tolerance=max_gap_s,
                            suffix="_rest", check_sortedness=False)
    return joined.drop_nulls("epoch_s_rest")


def _module_stats(logs, layout: PackLayout, rest_A, load_A, max_gap_s, low_soc_pct):
    frame = pl.concat([lg.data.select("epoch_s", "soc_pct", "pack_current_A", "pack_voltage_V", *cp_columns())
                       .with_columns(pl.lit(i).alias("log")) for i, lg in enumerate(logs)])
    v = frame.select(cp_columns()).to_numpy().astype(float)
    current = frame["pack_current_A"].to_numpy()
    soc = frame["soc_pct"].to_numpy()
    shunt = np.vstack([lg.shunt_mask for lg in logs])
    ppu, n_units = layout.pairs_per_unit, layout.units
    unit_v = v.reshape(len(v), n_units, ppu).sum(axis=2)  # [mV], pairs are contiguous in series order
    ref = np.median(v, axis=1, keepdims=True) * ppu  # pack-median unit voltage per row
    dev = unit_v - ref
    rest = np.abs(current) < rest_A
    load = np.abs(current) >= load_A
    low = rest & (soc < low_soc_pct)

    def med(a, mask):
        return np.median(a[mask], axis=0) if mask.sum() >= 3 else np.full(n_units, np.nan)

    # excess sag: dev = a + b*I + c*SOC over all rows, all units at once
    design = np.column_stack([np.ones_like(current), current, soc])
    coef, *_ = np.linalg.lstsq(design, dev, rcond=None)
    excess = coef[1]  # V = OCV + R*I with I > 0 on charge: the slope dV/dI is the resistance, on either side

    pairs = _sag_pairs(frame, rest_A, load_A, max_gap_s)
    if pairs.height:
        d_i = (pairs["pack_current_A"] - pairs["pack_current_A_rest"]).to_numpy()
        dv = (pairs.select(cp_columns()).to_numpy() - pairs.select([c + "_rest" for c in cp_columns()]).to_numpy())
        sag = np.median(dv.reshape(len(dv), n_units, ppu).sum(axis=2) / d_i[:, None], axis=0)
        pack_sag = float(np.median((pairs["pack_voltage_V"] - pairs["pack_voltage_V_rest"]).to_numpy() / d_i) * 1e3)
    else:
        sag, pack_sag = np.full(n_units, np.nan), None
    grouped = v.reshape(len(v), n_units, ppu)
    spread = grouped.max(axis=2) - grouped.min(axis=2)  # zero for one pair per unit (reported as n/a below)
    stats = {
        "rest_deviation_mV": med(dev, rest),
        "low_soc_rest_deviation_mV": med(dev, low),
        "load_deviation_mV": med(dev, load),
        "pair_spread_rest_mV": med(spread, rest) if ppu > 1 else np.full(n_units, np.nan),
        "pair_spread_p95_mV": np.percentile(spread, 95, axis=0) if ppu > 1 else np.full(n_units, np.nan),
        "sag_mOhm": sag,
        "excess_sag_mOhm": excess,
        "shunt_fraction": shunt.reshape(len(v), n_units, ppu).mean(axis=(0, 2)),
    }
    pack = {
        "rows": int(len(v)), "rest_rows": int(rest.sum()), "load_rows": int(load.sum()),
        "low_soc_rest_rows": int(low.sum()), "sag_samples": int(pairs.height),
        "pack_sag_mOhm": pack_sag, "sum_of_unit_sag_mOhm": float(np.nansum(sag)) if pairs.height else None,
        "cp_spread_rest_mV": float(np.median(v[rest].max(axis=1) - v[rest].min(axis=1))) if rest.any() else None,
        "cp_mean_rest_mV": float(np.median(v[rest].mean(axis=1))) if rest.any() else None,
        "shunt_fraction": float(shunt.mean()),
        "rest_A": rest_A, "load_A": load_A, "max_gap_s": max_gap_s,
    }
    return stats, pack, dev, rest


# metric, direction (+1: high is bad), weight, floor of the robust scale, unit, words
_RANKING = (
    ("excess_sag_mOhm", +1, 1.0, 0.02, "mOhm", "sags more under load than the pack median"),
    ("low_soc_rest_deviation_mV", -1, 1.0, 1.0, "mV", "sits low at rest at low SOC (capacity)"),
    ("rest_deviation_mV", -1, 0.5, 1.0, "mV", "sits low at rest"),
    ("pair_spread_rest_mV", +1, 0.5, 1.0, "mV", "its two cell pairs disagree at rest"),
    ("shunt_fraction", +1, 0.25, 0.02, "", "balancing shunt often active (bled more than others)"),
)


def _rank(stats: dict, n_units: int, top: int, unit: str) -> tuple[np.ndarray, list[list[str]], list[dict]]:
    """Combined score per unit (weighted sum of the robust z-scores on the bad side) and the reasons.

    A metric at >= 3 robust SD on the bad side is a reason of its unit; a unit in ``inspect_first`` without such
    a reason is given its largest contribution, marked ``mild``.
    """
    score = np.zeros(n_units)
    reasons: list[list[str]] = [[] for _ in range(n_units)]
    largest: list[tuple[float, str]] = [(0.0, "") for _ in range(n_units)]
    for name, sign, weight, floor, u, words in _RANKING:
        x = stats[name]
        if np.isnan(x).all():
            continue
        z = np.nan_to_num(sign * _robust_z(x, floor))
        score += weight * np.clip(z, 0, None)
        med = np.nanmedian(x)
        for i in np.flatnonzero(z > 0):
            text = (f"{words}: {name} = {x[i]:.3g} {u} vs pack median {med:.3g} {u} "
                    f"({z[i]:.1f} robust SD on the bad side)")
            text = text.replace(" ,", ",").replace("  ", " ")
            if z[i] >= 3:
                reasons[i].append(text)
            if weight * z[i] > largest[i][0]:
                largest[i] = (weight * z[i], text)
    order = np.argsort(-score, kind="stable")
    first = [{unit: int(i + 1), "score": float(score[i]),
              "reasons": reasons[i] or ([f"mild: {largest[i][1]}"] if largest[i][1] else ["no deviation"])}
             for i in order[:top]]
    return score, reasons, first


def _mapping_check(dev_pairs: np.ndarray) -> dict:
    """Correlation of neighbouring pairs' deviations: inside an assumed module vs across a module boundary."""
    x = dev_pairs - dev_pairs.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # a pair that never deviates has no correlation: NaN,
        c = np.corrcoef(x.T)                              # which the nanmean below skips
    adjacent = np.array([c[k, k + 1] for k in range(N_PAIRS - 1)])
    within, across = float(np.nanmean(adjacent[0::2])), float(np.nanmean(adjacent[1::2]))
    return {"rows": int(len(x)), "within_module_r": within, "across_boundary_r": across,
            "supports_mapping": bool(within > across)}


def prescreen(logs, history=(), *, pack_id: str = "pack", grouped_by: str = "folder", rest_A: float = 2.0,
              load_A: float = 10.0, max_gap_s: float = 30.0, low_soc_pct: float = 30.0, top: int = 5) -> PackReport:
    """Pre-screen one pack from its LeafSpy logs and/or hand-copied BMS histories.

    Parameters
    ----------
    logs : :class:`releaf.io.leafspy.LeafSpyLog` of this pack (any order)
    history : :class:`releaf.io.leafspy.BmsHistory` of this pack (boundary rows repeated across files are merged)
    pack_id, grouped_by : identity of the pack and how it was found (``vin`` or ``folder``)
    rest_A : |pack current| below which a row counts as rest [A]
    load_A : |pack current| from which a row counts as load [A]
    max_gap_s : largest time between a load row and its rest row for ΔV/ΔI [s]
    low_soc_pct : rest rows below this SOC give ``low_soc_rest_deviation_mV`` [%]
    top : length of ``inspect_first``

    Returns
    -------
    :class:`PackReport`: ``latest`` and ``history`` of SOH [%], Hx [%], AHr [Ah] (one entry per log, at its last
    row, and one per history row), ``modules`` (per unit: ``cell_pairs``, ``rest_deviation_mV``,
    ``low_soc_rest_deviation_mV``, ``load_deviation_mV``, ``pair_spread_rest_mV``, ``pair_spread_p95_mV``,
    ``sag_mOhm`` with ``sag_samples``, ``excess_sag_mOhm``, ``shunt_fraction``, ``score``, ``reasons``),
    ``inspect_first`` (worst first) and ``pack`` (row counts, pack ΔV/ΔI [mOhm], cell-pair spread at rest [mV]).
    """
    logs = sorted(logs, key=lambda lg: lg.data["epoch_s"][0])
    merged, repeated = merge_bms_history(list(history))
    if not logs and merged.is_empty():
        raise InputFileError(pack_id, "no LeafSpy log and no BMS history for this pack")
    hist = _history(logs, merged)
    warnings = [f"{repeated} repeated history row(s) (same date in two files) merged"] if repeated else []
    ratio = [e["ahr_Ah"] / e["soh_pct"] * 100 for e in hist if e["ahr_Ah"] and e["soh_pct"]]
    layout = identify_pack(float(np.median(ratio)))
    latest = next((e for e in reversed(hist) if e["soh_pct"] is not None), hist[-1])
    files = [{"file": lg.meta.path, "kind": "log", "variant": lg.meta.variant, "rows": lg.data.height,
              "start": lg.data["datetime"].min(), "end": lg.data["datetime"].max(),
              "line_ending": lg.meta.line_ending, "datetime_source": lg.meta.datetime_source,
              "repaired": list(lg.meta.repaired), "dropped": list(lg.meta.dropped)} for lg in logs]
    files += [{"file": h.path, "kind": "bms-history", "rows": h.data.height} for h in history]
    report = PackReport(pack_id=pack_id, grouped_by=grouped_by, layout=layout.name, layout_label=layout.label,
                        unit=layout.unit, mapping=layout.mapping, mapping_uncertain=layout.mapping_uncertain,
                        files=files, latest=latest, history=hist, soh_trend_pct_per_year=_soh_trend(hist),
                        pack={}, modules=[], inspect_first=[], warnings=warnings)
    if not logs:
        report.warnings.append("BMS history only: no cell-pair voltages, so no per-module pre-screen")
        return report
    stats, pack, _, rest = _module_stats(logs, layout, rest_A, load_A, max_gap_s, low_soc_pct)
    score, reasons, first = _rank(stats, layout.units, top, layout.unit)
    pairs = layout.unit_of_pair()
    report.modules = [{layout.unit: u + 1, "cell_pairs": [int(k + 1) for k in np.flatnonzero(pairs == u)],
                       **{k: float(v[u]) for k, v in stats.items()}, "sag_samples": pack["sag_samples"],
                       "score": float(score[u]), "reasons": reasons[u]} for u in range(layout.units)]
    pack["units_with_outliers"] = sum(bool(r) for r in reasons)
    report.pack, report.inspect_first = pack, first
    if pack["units_with_outliers"] == 0:
        report.warnings.append(f"no {layout.unit.replace('_', ' ')} is beyond 3 robust SD on any metric: "
                               "inspect_first orders near-equal units")
    if layout.pairs_per_unit == 2:
        v = np.vstack([lg.cell_pairs_mV() for lg in logs])
        dev = v - np.median(v, axis=1, keepdims=True)
        report.mapping_check = _mapping_check(dev[rest] if rest.sum() >= 50 else dev)
        if not report.mapping_check["supports_mapping"]:
            report.warnings.append("the data do not support the assumed cell-pair -> module pairing")
    if layout.mapping_uncertain:
        report.warnings.append(f"cell pair -> module mapping is an assumption ({layout.mapping})")
    if pack["sag_samples"] == 0:
        report.warnings.append(f"no load row within {max_gap_s:g} s of a rest row (log interval too long?): "
                               "sag_mOhm unavailable; ranking uses excess_sag_mOhm")
    if pack["rest_rows"] < 3:
        report.warnings.append("fewer than 3 rest rows: rest deviations unavailable")
    return report


# --- files -> packs -----------------------------------------------------------------------------------------

_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


def vin_is_real(vin: str | None) -> bool:
    """True for a plausible 17-character VIN; False for empty, several, or masked ones (``SJNXXXXXXXXXXXXXX``)."""
    return bool(vin) and bool(_VIN.match(vin)) and "XXXXX" not in vin


def _car_folder(f: Path, root: Path | None) -> Path:
    """The folder that stands for a car: the first folder below the named one (a fleet folder holds one folder
    per car, each perhaps with trip subfolders), the named folder for files directly in it, else the parent."""
    if root is None:
        return f.parent
    rel = f.relative_to(root).parts
    return root / rel[0] if len(rel) > 1 else root


def _layout_of(history: list[dict]) -> str | None:
    """The pack layout the BMS readings of one file point to (AHr/SOH), or None when they cannot tell."""
    ratio = [e["ahr_Ah"] / e["soh_pct"] * 100 for e in history if e["ahr_Ah"] and e["soh_pct"]]
    if not ratio:
        return None
    try:
        return identify_pack(float(np.median(ratio))).name
    except InputFileError:
        return None


def intake_logs(paths, **options) -> list[PackReport]:
    """Pre-screen every pack found in ``paths`` (files, or folders searched recursively).

    Files are recognised by content (:func:`releaf.io.leafspy.sniff_leafspy`); a named file that is neither a
    LeafSpy log nor a BMS history is an error, a file inside a named folder that is neither is skipped.

    One pack per car and pack layout: a log goes to the pack of its VIN when the VIN is real (not masked);
    otherwise, and for BMS histories, to its car's folder (the first folder below the named folder that holds it,
    so that a fleet folder of one folder per car gives one pack per car; the named folder itself for files
    directly in it; the parent folder for a named file). Within a VIN or a folder, files whose BMS readings point
    to different pack layouts (AHr/SOH: 24, 30 or 62 kWh) are different packs: two VINs or two layouts are never
    merged. ``options`` go to :func:`prescreen`.

    Returns
    -------
    One :class:`PackReport` per pack, sorted by ``pack_id``. ``pack_id`` is the VIN or the folder name, with
    ``/<layout>`` appended when one VIN or folder holds logs of more than one layout.
    """
    found: list[tuple[Path, Path | None]] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += [(f, p) for f in sorted(p.rglob("*")) if f.is_file() and sniff_leafspy(textfile.head_of(f))]
        elif not p.exists():
            raise InputFileError(p, "file not found")
        else:
            if not sniff_leafspy(textfile.head_of(p)):
                raise InputFileError(p, "neither a LeafSpy log (header 'Date/Time,...,SOC,AHr,...') nor a "
                                          "LeafSpy BMS history ('Date,Odometer (km),...')", line=1)
            found.append((p, None))
    if not found:
        raise InputFileError(", ".join(map(str, paths)), "no LeafSpy log or BMS history found")
    groups: dict[tuple[str, str, str | None], dict] = {}
    for f, root in found:
        folder = str(_car_folder(f.resolve(), root.resolve() if root else None))
        if sniff_leafspy(textfile.head_of(f)) == "leafspy-log":
            item, kind = read_leafspy(f), "logs"
            how, ident = ("vin", item.meta.vin) if vin_is_real(item.meta.vin) else ("folder", folder)
            layout = _layout_of(_history([item], pl.DataFrame()))
        else:
            item, kind = read_bms_history(f), "history"
            how, ident = "folder", folder
            layout = _layout_of(_history([], merge_bms_history([item])[0]))
        g = groups.setdefault((how, ident, layout), {"logs": [], "history": [], "root": root, "names": {ident}})
        g[kind].append(item)
    _adopt_unknown_layouts(groups)
    _join_trip_folders(groups)
    layouts_per_ident: dict[tuple[str, str], int] = {}
    for how, ident, _ in groups:
        layouts_per_ident[how, ident] = layouts_per_ident.get((how, ident), 0) + 1
    reports = []
    for (how, ident, layout), g in groups.items():
        pack_id = ident if how == "vin" else "+".join(sorted(Path(n).name for n in g["names"]))
        if how == "folder" and len(g["names"]) > 1 and sum(k[:2] == ("folder", k[1]) and groups[k]["root"] ==
                                                          g["root"] for k in groups) == 1:
            pack_id = Path(g["root"]).name  # the named folder is one car: all its trip folders joined
        if layouts_per_ident[how, ident] > 1:
            pack_id += f"/{layout or 'unknown-layout'}"
        reports.append(prescreen(g["logs"], g["history"], pack_id=pack_id, grouped_by=how, **options))
    return sorted(reports, key=lambda r: r.pack_id)


def _span(g: dict) -> tuple[datetime, datetime, float | None, float | None] | None:
    """First and last reading of a pack's files: times and odometers [km] (None where not read)."""
    hist = _history(g["logs"], merge_bms_history(g["history"])[0])
    if not hist:
        return None
    odo = [e["odometer_km"] for e in hist if e.get("odometer_km") is not None]
    return hist[0]["datetime"], hist[-1]["datetime"], (odo[0] if odo else None), (odo[-1] if odo else None)


def _join_trip_folders(groups: dict) -> None:
    """Sibling folders (below the same named folder, same layout, no VIN) that are one car's trips become one pack.

    They are one car when their readings follow each other: the earlier folder's last reading is before the
    later one's first, and the odometer did not go back between them. Two cars' logs overlap in time or disagree
    on the odometer, and stay apart; without an odometer nothing is joined.
    """
    keys = sorted((k for k in groups if k[0] == "folder" and groups[k]["root"] is not None),
                  key=lambda k: (str(groups[k]["root"]), str(k[2])))
    spans = {k: _span(groups[k]) for k in keys}
    keys = sorted((k for k in keys if spans[k] is not None), key=lambda k: spans[k][0])
    for k in keys:
        for j in [j for j in keys if j != k and j in groups and k in groups]:
            (_, end_k, _, odo_end_k), (start_j, _, odo_start_j, _) = spans[k], spans[j]
            same_car = (groups[j]["root"] == groups[k]["root"] and j[2] == k[2] and end_k < start_j
                        and odo_end_k is not None and odo_start_j is not None and odo_end_k <= odo_start_j)
            if same_car:
                g = groups.pop(j)
                for kind in ("logs", "history"):
                    groups[k][kind] += g[kind]
                groups[k]["names"] |= g["names"]
                spans[k] = _span(groups[k])


def _adopt_unknown_layouts(groups: dict) -> None:
    """Files whose readings name no layout (no SOH, say) join their VIN's or folder's pack when it has exactly
    one layout; otherwise they stay a pack of their own (and its pre-screen says what is missing)."""
    for how, ident, _ in [k for k in groups if k[2] is None]:
        known = [k for k in groups if k[:2] == (how, ident) and k[2] is not None]
        if len(known) == 1:
            g = groups.pop((how, ident, None))
            for kind in ("logs", "history"):
                groups[known[0]][kind] += g[kind]
            groups[known[0]]["names"] |= g["names"]


# --- plot ---------------------------------------------------------------------------------------------------

_GRIDS = {48: (6, 8), 96: (8, 12), 24: (4, 6)}


def heatmap(report: PackReport, path, metric: str | None = None) -> Path:
    """Write a PNG heat map of the pack's units (48 modules as 6 x 8, 96 cell pairs as 8 x 12) coloured by ``metric``.

    Units are laid out in series order (unit 1 top left, row by row): not their physical place in the pack.
    Each cell is labelled with the unit number and value; the ``inspect_first`` units are outlined.
    ``metric`` is any numeric key of ``report.modules``; by default ``sag_mOhm`` where rest/load pairs exist,
    else ``excess_sag_mOhm``. Returns the path written.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    if not report.modules:
        raise InputFileError(report.pack_id, "no per-module data to plot (BMS history only)")
    if metric is None:
        metric = "sag_mOhm" if report.pack.get("sag_samples") else "excess_sag_mOhm"
    if metric not in report.modules[0] or isinstance(report.modules[0][metric], list):
        raise ConfigError(report.pack_id, f"unknown heat-map metric {metric!r}")
    values = np.array([m[metric] if m[metric] is not None else np.nan for m in report.modules], dtype=float)
    rows, cols = _GRIDS.get(len(values), (int(math.ceil(len(values) / 8)), 8))
    grid = np.full(rows * cols, np.nan)
    grid[: len(values)] = values
    grid = grid.reshape(rows, cols)
    fig = Figure(figsize=(1.15 * cols + 1.5, 0.8 * rows + 1.2))
    ax = fig.add_subplot()
    cmap = "RdYlGn" if "deviation" in metric else "RdYlGn_r"
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto")
    worst = {m[report.unit] for m in report.inspect_first}
    prefix = "M" if report.unit == "module" else "CP"
    for i in range(len(values)):
        r, c = divmod(i, cols)
        text = f"{prefix}{i + 1}\n" + ("n/a" if np.isnan(values[i]) else f"{values[i]:.3g}")
        ax.text(c, r, text, ha="center", va="center", fontsize=7, fontweight="bold" if i + 1 in worst else None)
        if i + 1 in worst:
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(f"{report.pack_id}: {metric} per {report.unit.replace('_', ' ')} (series order, "
                 f"not physical position){' - mapping assumed' if report.mapping_uncertain else ''}", fontsize=9)
    path = Path(path)
    fig.savefig(path, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return path
