"""Fleet engine: grade and pair millions of modules from a Parquet dataset of per-module features.

The plant chain (``releaf.chain``) grades one diagnosis at a time and matches a lot in process; the whole
retired Leaf fleet (>650,000 cars, 31.2 million modules) needs columnar kernels instead. This module holds them, as
pure functions over polars frames, and two engines that run them over a dataset (a directory of Parquet files with
the columns of ``releaf.sim.fleet_table``):

- ``local``: polars, lazy scan with projection pushdown and the streaming engine for the graded table, then an
  in-memory sort for the pairing (:func:`grade_and_assemble_local`);
- ``dask``: Dask dataframes on a ``distributed.Client`` (:func:`grade_and_assemble_dask`); the global capacity order
  within a grade is made without collecting the modules in one process (see :func:`pair_partition`).

Both give the same grades and the same stations (the order is a total order on ``(grade, capacity_Ah,
module_id)``); ``tests/test_fleet.py`` checks it.

Grading
-------
One kernel: :func:`releaf.grading_table.grade_table` (the vectorised twin of ``releaf.grading.grade``, tested equal
to it), in its fast form (no screen names, the boolean ``visual_damage``). :func:`fleet_features` maps the
dataset's columns to its inputs at the edge and :func:`grade_frame` runs it; destinations are the policy's. The
policy's IEC 63338 lifetime-data requirement stays on (a module without ``has_lifetime_data`` goes to recycling)
unless the caller waives it with a reason (``run_fleet(waive_lifetime_data=...)``, ``releaf fleet ...
--waive-lifetime-data REASON``), which the policy name in the summary records.

Pairing (portable-2s stations)
------------------------------
A station design names the destinations it is built from (``portable-2s``: ``portable-station``, grade C under
the packaged policy); as in ``releaf.chain.PlantChain.assemble`` only modules whose destination is one of them are
paired, the other reusable modules are left for their own line (``other_destination``); a design without
destinations pairs every reusable grade. Within each paired grade the stations maximise the total series
capacity, the sum over stations of the smaller capacity of the two modules: sort by ``(capacity_Ah, module_id)``,
drop the smallest module when the count is odd, pair ranks ``2k`` and ``2k + 1``. This is optimal for a sum of
minima (docs/assembly-optimality.md), the objective of the plant's ``releaf.assembly.match_pairs``, which adds an
R0 tie-break among equally good pairings and each station's usable energy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from releaf.errors import ConfigError, InputFileError
from releaf.grading_table import grade_table
from releaf.parameters import StationProfile, station_profile
from releaf.policy import Policy
from releaf.schema.records import GRADES

GRADE_DTYPE = pl.Enum(list(GRADES))
REJECT_CODE = GRADES.index("reject")
REUSABLE = tuple(g for g in GRADES if g != "reject")
GRADE_INPUT_COLUMNS = ("module_id", "capacity_Ah", "soh_pct", "group_capacity_Ah_1", "group_capacity_Ah_2",
                       "r0_mOhm", "group_capacity_imbalance_pct", "group_end_voltage_spread_V", "min_group_voltage_V",
                       "max_temperature_C", "self_discharge_pct_per_day", "has_lifetime_data", "visual_damage")
"""The dataset columns the fleet reads (``module_id``, ``soh_pct`` and ``capacity_Ah`` required; any other missing
column counts as not measured, as in :func:`releaf.grading_table.grade_table`)."""
GRADES_OUTPUT_COLUMNS = ("module_id", "grade", "destination", "failed_safety")
STATION_COLUMNS = ("module_a", "module_b", "grade", "series_capacity_Ah")
UNASSIGNED_REASONS = ("other_destination", "odd_one_out", "no_capacity", "recycling")
"""Why a module is in no station: its destination is not the design's; the odd module of a paired grade (its
smallest); reusable but without a capacity to pair on; graded reject."""
_GROUP_CAPS = ("group_capacity_Ah_1", "group_capacity_Ah_2")


# --------------------------------------------------------------------------------------------------- grading
def destinations(policy: Policy) -> tuple[str, ...]:
    """The policy's destinations, each once, in grade order (A's first, recycling last)."""
    return tuple(dict.fromkeys(policy.destination(g) for g in GRADES))


def destination_dtype(policy: Policy) -> pl.Enum:
    return pl.Enum(list(destinations(policy)))


def fleet_features(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """The dataset's columns as :func:`releaf.grading_table.grade_table` inputs (plus ``module_id``, ``capacity_Ah``).

    The generated dataset (``releaf.sim.fleet_table``) already holds grade_table's columns; one is recomputed: the
    group capacity imbalance from the two group capacities in float64, as ``releaf.grading.grading_metrics`` does
    (the dataset's own column is the same value rounded to float32, which can fall on the other side of a
    threshold). Without the group capacities the dataset's column is used.
    """
    names = frame.collect_schema().names()
    keep = [c for c in GRADE_INPUT_COLUMNS if c in names and c not in _GROUP_CAPS]
    if all(c in names for c in _GROUP_CAPS):
        a, b = (pl.col(c).cast(pl.Float64).fill_nan(None) for c in _GROUP_CAPS)
        hi, lo = pl.max_horizontal(a, b), pl.min_horizontal(a, b)
        imbalance = pl.when(a.is_not_null() & b.is_not_null() & (hi > 0)).then((hi - lo) / hi * 100.0)
        return frame.select(*(c for c in keep if c != "group_capacity_imbalance_pct"),
                            imbalance.alias("group_capacity_imbalance_pct"))
    return frame.select(keep)


def grade_frame(frame: pl.DataFrame | pl.LazyFrame, policy: Policy) -> pl.DataFrame | pl.LazyFrame:
    """Grade every module of a dataset table with :func:`releaf.grading_table.grade_table` (the one kernel).

    Parameters
    ----------
    frame : dataset rows (``releaf.sim.fleet_table`` columns; see :data:`GRADE_INPUT_COLUMNS`)
    policy : from ``releaf.grading.load_policy`` (or ``waive_lifetime_data`` of one)

    Returns
    -------
    :func:`fleet_features` of the frame (lazy if given lazy) plus ``grade`` (:data:`GRADE_DTYPE`), ``destination``
    (:func:`destination_dtype`: the policy's) and ``failed_safety`` (bool: a safety screen rejected the module).
    Reasons are not produced at fleet scale: grade one module with ``releaf.grading.grade`` to see them.
    """
    graded = grade_table(fleet_features(frame), policy, screens_out=False)
    return graded.with_columns(pl.col("grade").cast(GRADE_DTYPE),
                               pl.col("destination").cast(destination_dtype(policy)))


def paired_grades(policy: Policy, design: str | StationProfile | None) -> tuple[str, ...]:
    """The grades a design's stations are built from: the reusable grades whose destination the design names (all
    reusable grades for a design without destinations, or no design), as ``PlantChain.assemble`` decides.

    Raises
    ------
    ConfigError : unknown design, or one that is not two modules in series (the only pairing made here)
    """
    if design is None:
        return REUSABLE
    d = station_profile(design)
    if (d.modules_in_series, d.modules_in_parallel) != (2, 1):
        raise ConfigError(d.name, f"the fleet engine pairs two modules in series; {d.name} has "
                                  f"{d.modules_in_series}s{d.modules_in_parallel}p")
    if not d.destinations:
        return REUSABLE
    return tuple(g for g in REUSABLE if policy.destination(g) in d.destinations)


# --------------------------------------------------------------------------------------------------- pairing
def pair_stations(graded: pl.DataFrame | pl.LazyFrame, grades: Sequence[str] = REUSABLE) -> pl.DataFrame:
    """Portable-2s stations within each grade maximising the total series capacity (sum of the pairs' minima).

    Parameters
    ----------
    graded : ``module_id``, ``grade`` (:data:`GRADE_DTYPE`), ``capacity_Ah`` [Ah] (the weakest group's); modules
        without a capacity are left out
    grades : the grades to pair (:func:`paired_grades`: those of the design's destinations); never ``reject``

    Returns
    -------
    One row per station, in order of grade then capacity: ``module_a`` (the weaker), ``module_b``, ``grade``,
    ``series_capacity_Ah`` [Ah] (the station's capacity: the smaller of the two).

    Notes
    -----
    Within a grade the modules are sorted by ``(capacity_Ah, module_id)``; with an odd count the first is left
    out; ranks ``2k`` and ``2k + 1`` form station ``k``. When every capacity is >= 0 and every ``module_id`` lies
    in [0, 2**31) (the generated fleet, and any fleet numbered from 0), the three keys are packed into one
    uint64 (grade in 2 bits, the float32 capacity's bit pattern, which orders like the value for non-negative
    floats, in 31, the id in 31) and one single-key sort replaces the three-key sort (10x faster at 10 M modules).

    References
    ----------
    docs/assembly-optimality.md: adjacent pairs in sorted order maximise the sum of minima.
    """
    usable = (graded.lazy().filter(_pairable(grades))
              .select("module_id", "grade", pl.col("capacity_Ah").cast(pl.Float32)).collect())
    grade = usable["grade"].to_physical().to_numpy().astype(np.uint64)
    cap = usable["capacity_Ah"].to_numpy() + np.float32(0.0)  # -0.0 -> +0.0 (same value, sign bit cleared)
    mid = usable["module_id"].to_numpy()
    del usable
    if mid.size and (mid.min() < 0 or mid.max() >= 2**31 or np.nanmin(cap) < 0 or np.isnan(cap).any()):
        return _pair_stations_sorted(graded, grades)
    key = cap.view(np.uint32).astype(np.uint64)
    key <<= np.uint64(31)
    key |= mid.astype(np.uint64)
    key |= grade << np.uint64(62)
    del cap, mid, grade
    key = pl.Series(key).sort().to_numpy()  # polars' sort is multithreaded; numpy's is not
    bounds = np.searchsorted(key, np.arange(len(GRADES), dtype=np.uint64) << np.uint64(62))
    low31 = np.uint64(2**31 - 1)
    parts = []
    for code in range(REJECT_CODE):
        lo, hi = int(bounds[code]), int(bounds[code + 1])
        lo += (hi - lo) % 2
        a, b = key[lo:hi:2], key[lo + 1:hi:2]
        parts.append(pl.DataFrame({
            "module_a": (a & low31).astype(np.int64), "module_b": (b & low31).astype(np.int64),
            "grade": pl.Series([GRADES[code]], dtype=GRADE_DTYPE).gather(np.zeros(a.size, np.int64)),
            "series_capacity_Ah": ((a >> np.uint64(31)) & low31).astype(np.uint32).view(np.float32)}))
    return pl.concat(parts)


def _pairable(grades: Sequence[str]) -> pl.Expr:
    return (pl.col("grade").cast(pl.String).is_in([g for g in grades if g != "reject"])
            & pl.col("capacity_Ah").fill_nan(None).is_not_null())


def _pair_stations_sorted(graded: pl.DataFrame | pl.LazyFrame, grades: Sequence[str] = REUSABLE) -> pl.DataFrame:
    """:func:`pair_stations` with a three-key sort (any module_id, any capacity)."""
    usable = (graded.lazy().filter(_pairable(grades))
              .select("module_id", "grade", pl.col("capacity_Ah").cast(pl.Float32))
              .sort("grade", "capacity_Ah", "module_id"))
    rank = pl.int_range(pl.len(), dtype=pl.Int64).over("grade") - pl.len().over("grade").cast(pl.Int64) % 2
    return (usable.with_columns(rank=rank).filter(pl.col("rank") >= 0)
            .with_columns(module_b=pl.col("module_id").shift(-1))
            .filter(pl.col("rank") % 2 == 0)
            .select(module_a="module_id", module_b="module_b", grade="grade", series_capacity_Ah="capacity_Ah")
            .collect())


def pair_partition(part, bucket_first_rank: np.ndarray, bucket_grade: np.ndarray, grade_drop: np.ndarray):
    """The pairing of one range partition of the distributed engine (pandas in, pandas out).

    Parameters
    ----------
    part : ``module_id``, ``capacity_Ah`` [Ah], ``grade_code`` (0 = A ... 2 = C) and ``bucket``; every module of a
        bucket is in this partition, and a bucket holds one grade's modules in a capacity range
    bucket_first_rank : per bucket, the rank within its grade of its first module (counts of the lower buckets)
    bucket_grade : per bucket, its grade code
    grade_drop : per grade code, 1 when the grade has an odd count (its smallest module is left out)

    Returns
    -------
    ``module_a``, ``module_b``, ``grade_code``, ``pair`` (k of ranks 2k, 2k + 1), ``capacity_a``, ``capacity_b``:
    one row per station whose two modules are both here, and one row per module whose partner is in a neighbouring
    bucket (the other side -1 and NaN), to be joined on ``(grade_code, pair)`` by the caller.
    """
    import pandas as pd

    bucket = (part["bucket"] if "bucket" in part.columns else part.index).to_numpy().astype(np.int64)
    cap = part["capacity_Ah"].to_numpy()
    mid = part["module_id"].to_numpy()
    order = np.lexsort((mid, cap, bucket))
    bucket, cap, mid = bucket[order], cap[order], mid[order]
    n = bucket.size
    new = np.ones(n, bool)
    new[1:] = bucket[1:] != bucket[:-1]
    starts = np.flatnonzero(new)
    local = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
    grade = bucket_grade[bucket]
    k = bucket_first_rank[bucket] + local - grade_drop[grade]
    same_next = np.zeros(n, bool)
    same_next[:-1] = ~new[1:]
    first = (k >= 0) & (k % 2 == 0)
    inside = first & same_next
    half_a = first & ~same_next
    half_b = (k >= 0) & (k % 2 == 1) & new  # its partner (rank k - 1) is the last module of the bucket below
    nxt = np.minimum(np.arange(n) + 1, n - 1)
    none_i = np.full(n, -1, np.int64)
    none_f = np.full(n, np.nan, np.float32)
    rows = inside | half_a | half_b
    out = pd.DataFrame({
        "module_a": np.where(half_b, none_i, mid)[rows],
        "module_b": np.where(inside, mid[nxt], np.where(half_b, mid, none_i))[rows],
        "grade_code": grade[rows].astype(np.int8),
        "pair": (k // 2)[rows],
        "capacity_a": np.where(half_b, none_f, cap)[rows].astype(np.float32),
        "capacity_b": np.where(inside, cap[nxt], np.where(half_b, cap, none_f))[rows].astype(np.float32),
    })
    return out


def plan_buckets(fine_counts: np.ndarray, target_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge consecutive fine capacity bins of each grade into buckets of about ``target_rows`` modules.

    Parameters
    ----------
    fine_counts : modules per (grade code, fine bin), shape (grades, bins)
    target_rows : modules per bucket to aim at (a bucket is one range partition)

    Returns
    -------
    ``bucket_of`` (grades, bins): bucket id of each fine bin; ``bucket_grade``: grade code of each bucket;
    ``bucket_first_rank``: rank within its grade of each bucket's first module.
    """
    bucket_of = np.zeros(fine_counts.shape, np.int64)
    grade_of, first_rank = [], []
    for g in range(fine_counts.shape[0]):
        done, fill = 0, None
        for b, count in enumerate(fine_counts[g]):
            if fill is None or (fill >= target_rows and count > 0):
                grade_of.append(g)
                first_rank.append(done)
                fill = 0
            bucket_of[g, b] = len(grade_of) - 1
            fill += int(count)
            done += int(count)
    return bucket_of, np.array(grade_of, np.int64), np.array(first_rank, np.int64)


# --------------------------------------------------------------------------------------------------- engines
@dataclass
class FleetSummary:
    """What a fleet run decided (counts per grade and destination, stations, capacity)."""

    engine: str
    policy: str
    modules: int
    grades: dict[str, int]
    destinations: dict[str, int]
    failed_safety: int
    design: str | None = None
    paired_grades: list[str] = field(default_factory=list)
    stations: dict[str, int] = field(default_factory=dict)
    series_capacity_Ah: dict[str, float] = field(default_factory=dict)
    unassigned: dict[str, int] | None = None
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def dataset_files(dataset: str | Path) -> list[Path]:
    """The Parquet files of a dataset (a directory of ``*.parquet`` or one file), sorted.

    Raises
    ------
    InputFileError : no such directory or file, or no Parquet file in it
    """
    path = Path(dataset)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputFileError(path, "no such dataset (a directory of Parquet files or one Parquet file)")
    files = sorted(path.glob("*.parquet"))
    if not files:
        raise InputFileError(path, "no *.parquet file in this directory")
    return files


def _check_columns(files: list[Path], needed: Sequence[str]) -> list[str]:
    names = pl.scan_parquet(files[0]).collect_schema().names()
    missing = [c for c in ("module_id", "soh_pct", "capacity_Ah") if c not in names]
    if missing:
        raise InputFileError(files[0], f"missing column(s) {', '.join(missing)} (see releaf.sim.fleet_table)")
    return [c for c in needed if c in names]


def _prepare_out(out: Path | None, *subdirs: str) -> None:
    if out is None:
        return
    if out.exists() and not out.is_dir():
        raise ConfigError(out, "the output must be a directory (it holds grades/, stations/, summary.json)")
    for sub in subdirs:
        d = out / sub
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("part-*.parquet"):  # only what an earlier run wrote
            old.unlink()


def _count_dict(frame: pl.DataFrame, column: str, names: Sequence[str]) -> dict[str, int]:
    counts = dict(frame.group_by(column).len().select(pl.col(column).cast(pl.String), "len").iter_rows())
    return {k: int(counts.get(k, 0)) for k in names}


def _destination_counts(grades: dict[str, int], policy: Policy) -> dict[str, int]:
    out = dict.fromkeys(destinations(policy), 0)
    for g, n in grades.items():
        out[policy.destination(g)] += n
    return out


def _unassigned(grades: dict[str, int], pairable: dict[str, int], stations: dict[str, int],
                paired: Sequence[str]) -> dict[str, int]:
    """Modules in no station, by reason (:data:`UNASSIGNED_REASONS`), and their total."""
    out = {"other_destination": sum(grades[g] for g in REUSABLE if g not in paired),
           "odd_one_out": sum(pairable.get(g, 0) - 2 * stations.get(g, 0) for g in paired),
           "no_capacity": sum(grades[g] - pairable.get(g, 0) for g in paired),
           "recycling": grades["reject"]}
    out["total"] = sum(out.values())
    return out


def _station_totals(stations: pl.DataFrame) -> tuple[dict[str, int], dict[str, float]]:
    per = stations.group_by("grade").agg(n=pl.len(), cap=pl.col("series_capacity_Ah").cast(pl.Float64).sum())
    rows = {str(g): (int(n), float(c)) for g, n, c in per.iter_rows()}
    counts = {g: rows.get(g, (0, 0.0))[0] for g in GRADES[:-1]}
    caps = {g: round(rows.get(g, (0, 0.0))[1], 3) for g in GRADES[:-1]}
    counts["total"] = sum(counts.values())
    caps["total"] = round(sum(rows.get(g, (0, 0.0))[1] for g in GRADES[:-1]), 3)
    return counts, caps


def grade_and_assemble_local(dataset: str | Path, policy: Policy, *, out: Path | None = None,
                             assemble: bool = True, design: str | StationProfile | None = "portable-2s"
                             ) -> FleetSummary:
    """Grade (and pair) a dataset with polars in this process.

    Parameters
    ----------
    dataset : directory of Parquet files (``releaf.sim.fleet_table`` columns)
    policy : grading policy
    out : directory for ``grades/part-00000.parquet`` (module_id, grade, destination, failed_safety) and, with
        ``assemble``, ``stations/part-00000.parquet`` and ``summary.json``; None writes nothing
    assemble : also pair the graded modules into stations
    design : station design (``releaf.parameters.station_profile``): only the grades of its destinations are
        paired (:func:`paired_grades`); None pairs every reusable grade

    Returns
    -------
    :class:`FleetSummary`
    """
    t0 = time.perf_counter()
    paired = paired_grades(policy, design) if assemble else ()
    files = dataset_files(dataset)
    columns = _check_columns(files, GRADE_INPUT_COLUMNS)
    _prepare_out(out, "grades", *(("stations",) if assemble else ()))
    graded = (grade_frame(pl.scan_parquet(files).select(columns), policy)
              .select(*GRADES_OUTPUT_COLUMNS, "capacity_Ah")
              .collect(engine="streaming"))
    grades = _count_dict(graded, "grade", GRADES)
    summary = FleetSummary(engine="local (polars)", policy=f"{policy.name} {policy.version}", modules=graded.height,
                           grades=grades, destinations=_destination_counts(grades, policy),
                           failed_safety=int(graded["failed_safety"].sum()))
    if out is not None:
        graded.select(GRADES_OUTPUT_COLUMNS).write_parquet(out / "grades" / "part-00000.parquet")
        summary.outputs["grades"] = str(out / "grades")
    if assemble:
        pairable = _count_dict(graded.filter(_pairable(paired)), "grade", REUSABLE)
        stations = pair_stations(graded, paired)
        del graded
        summary.design, summary.paired_grades = _design_name(design), list(paired)
        summary.stations, summary.series_capacity_Ah = _station_totals(stations)
        summary.unassigned = _unassigned(grades, pairable, summary.stations, paired)
        if out is not None:
            stations.write_parquet(out / "stations" / "part-00000.parquet")
            summary.outputs["stations"] = str(out / "stations")
    summary.seconds = round(time.perf_counter() - t0, 3)
    if out is not None:
        (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    return summary


def _grade_partition(part, policy: Policy, columns: Sequence[str]):
    """Grade one pandas partition with :func:`grade_frame` (the same kernel as the local engine)."""
    frame = pl.from_pandas(part[list(columns)], nan_to_null=True)
    out = grade_frame(frame, policy).select(
        "module_id", "capacity_Ah",
        grade_code=pl.col("grade").to_physical().cast(pl.Int8),
        failed_safety="failed_safety")
    return out.to_pandas()


def _design_name(design: str | StationProfile | None) -> str | None:
    return None if design is None else station_profile(design).name


def _pairable_mask(codes: np.ndarray, cap: np.ndarray, paired_codes: np.ndarray) -> np.ndarray:
    return np.isin(codes, paired_codes) & ~np.isnan(cap)


def _fine_counts(part, lo: float, hi: float, bins: int, paired_codes: np.ndarray):
    codes = part["grade_code"].to_numpy()
    cap = part["capacity_Ah"].to_numpy()
    ok = _pairable_mask(codes, cap, paired_codes)
    fine = _fine_bin(cap[ok], lo, hi, bins)
    return np.bincount(codes[ok].astype(np.int64) * bins + fine, minlength=REJECT_CODE * bins).reshape(REJECT_CODE,
                                                                                                         bins)


def _fine_bin(cap: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    # monotonic in the capacity, computed identically wherever it is used: equal capacities share a bin, so a
    # bucket boundary never separates ties
    scaled = (cap.astype(np.float64) - lo) * (bins / (hi - lo)) if hi > lo else np.zeros(cap.size)
    return np.clip(scaled.astype(np.int64), 0, bins - 1)


def _assign_buckets(part, lo: float, hi: float, bins: int, bucket_of: np.ndarray, paired_codes: np.ndarray):
    codes = part["grade_code"].to_numpy()
    cap = part["capacity_Ah"].to_numpy()
    ok = _pairable_mask(codes, cap, paired_codes)
    sel = part.loc[ok, ["module_id", "capacity_Ah", "grade_code"]]
    sel["bucket"] = bucket_of[codes[ok].astype(np.int64), _fine_bin(cap[ok], lo, hi, bins)]
    return sel


def _station_frame(part):
    import pandas as pd

    keep = (part["module_a"] >= 0) & (part["module_b"] >= 0)
    p = part[keep]
    return pd.DataFrame({
        "module_a": p["module_a"].to_numpy(), "module_b": p["module_b"].to_numpy(),
        "grade": pd.Categorical.from_codes(p["grade_code"].to_numpy(), categories=list(GRADES)),
        "series_capacity_Ah": np.minimum(p["capacity_a"].to_numpy(), p["capacity_b"].to_numpy()),
    })


def grade_and_assemble_dask(dataset: str | Path, policy: Policy, client, *, out: Path | None = None,
                            assemble: bool = True, design: str | StationProfile | None = "portable-2s",
                            fine_bins: int = 8192, target_rows: int = 2_000_000) -> FleetSummary:
    """Grade (and pair) a dataset with Dask dataframes on a ``distributed.Client``.

    The grading maps :func:`grade_frame` over the partitions. The pairing needs each module's rank within its grade
    in capacity order, made without gathering the modules: (1) a histogram of the usable modules per grade over
    ``fine_bins`` capacity bins (one pass, exact counts); (2) consecutive bins merged into buckets of about
    ``target_rows`` (:func:`plan_buckets`), whose counts give each bucket's first rank; (3) a shuffle that puts every
    bucket in one partition; (4) :func:`pair_partition` sorts each bucket by ``(capacity_Ah, module_id)`` and pairs
    ranks ``2k, 2k + 1``; the few pairs that straddle two buckets come back as halves and are joined here.

    Parameters
    ----------
    dataset : directory of Parquet files
    policy : grading policy
    client : a ``distributed.Client`` (its scheduler runs the graph)
    out : directory for ``grades/`` and ``stations/`` (Parquet, one file per partition) and ``summary.json``
    assemble : also pair
    design : station design: only the grades of its destinations are paired (:func:`paired_grades`)
    fine_bins : capacity bins of the histogram (resolution of the range partitioning)
    target_rows : modules per bucket

    Returns
    -------
    :class:`FleetSummary`
    """
    import dask
    import dask.dataframe as dd
    import pandas as pd

    t0 = time.perf_counter()
    paired = paired_grades(policy, design) if assemble else ()
    paired_codes = np.array([GRADES.index(g) for g in paired], np.int8)
    files = dataset_files(dataset)
    columns = _check_columns(files, GRADE_INPUT_COLUMNS)
    _prepare_out(out, "grades", *(("stations",) if assemble else ()))
    ddf = dd.read_parquet([str(f) for f in files], columns=columns)
    meta = pd.DataFrame({"module_id": pd.Series(dtype="int64"), "capacity_Ah": pd.Series(dtype="float32"),
                         "grade_code": pd.Series(dtype="int8"), "failed_safety": pd.Series(dtype="bool")})
    graded = ddf.map_partitions(_grade_partition, policy, columns, meta=meta).persist()
    codes, failed, n = dask.compute(graded["grade_code"].value_counts(), graded["failed_safety"].sum(),
                                    graded.shape[0])
    grades = {g: int(codes.get(i, 0)) for i, g in enumerate(GRADES)}
    summary = FleetSummary(engine=f"dask ({client.scheduler.address})", policy=f"{policy.name} {policy.version}",
                           modules=int(n), grades=grades, destinations=_destination_counts(grades, policy),
                           failed_safety=int(failed))
    if out is not None:
        dests = list(destinations(policy))
        dest_code = np.array([dests.index(policy.destination(g)) for g in GRADES], np.int8)

        def to_grades(part):
            codes = part["grade_code"].to_numpy()
            return pd.DataFrame({
                "module_id": part["module_id"].to_numpy(),
                "grade": pd.Categorical.from_codes(codes, categories=list(GRADES)),
                "destination": pd.Categorical.from_codes(dest_code[codes], categories=dests),
                "failed_safety": part["failed_safety"].to_numpy()})
        graded.map_partitions(to_grades).to_parquet(
            str(out / "grades"), name_function=lambda i: f"part-{i:05d}.parquet", write_index=False,
            write_metadata_file=False)
        summary.outputs["grades"] = str(out / "grades")
    if assemble:
        usable_mask = graded["grade_code"].isin(paired_codes.tolist()) & graded["capacity_Ah"].notnull()
        lo, hi = dask.compute(graded["capacity_Ah"][usable_mask].min(), graded["capacity_Ah"][usable_mask].max())
        lo, hi = float(lo) if pd.notna(lo) else 0.0, float(hi) if pd.notna(hi) else 0.0
        fine = np.sum(dask.compute(*[dask.delayed(_fine_counts)(p, lo, hi, fine_bins, paired_codes)
                                     for p in graded.to_delayed()]), axis=0)
        bucket_of, bucket_grade, bucket_first_rank = plan_buckets(fine, target_rows)
        per_grade = fine.sum(axis=1)
        grade_drop = (per_grade % 2).astype(np.int64)
        bucket_meta = meta[["module_id", "capacity_Ah", "grade_code"]].assign(bucket=pd.Series(dtype="int64"))
        buckets = graded.map_partitions(_assign_buckets, lo, hi, fine_bins, bucket_of, paired_codes,
                                        meta=bucket_meta)
        nb = max(1, bucket_grade.size)
        # range partitioning on the bucket id: partition i holds bucket i (and only it)
        ranged = buckets.set_index("bucket", divisions=tuple(range(nb + 1)))
        pair_meta = pd.DataFrame({"module_a": pd.Series(dtype="int64"), "module_b": pd.Series(dtype="int64"),
                                  "grade_code": pd.Series(dtype="int8"), "pair": pd.Series(dtype="int64"),
                                  "capacity_a": pd.Series(dtype="float32"),
                                  "capacity_b": pd.Series(dtype="float32")})
        pairs = ranged.map_partitions(pair_partition, bucket_first_rank, bucket_grade, grade_drop,
                                      meta=pair_meta).persist()
        halves = pairs[(pairs["module_a"] < 0) | (pairs["module_b"] < 0)].compute()
        a = halves[halves["module_b"] < 0][["grade_code", "pair", "module_a", "capacity_a"]]
        b = halves[halves["module_a"] < 0][["grade_code", "pair", "module_b", "capacity_b"]]
        joined = a.merge(b, on=["grade_code", "pair"], how="inner", validate="one_to_one")
        if len(joined) != len(a) or len(joined) != len(b):
            raise RuntimeError("fleet pairing: a station straddling two buckets lost its partner")  # a bug, not input
        edge = _station_frame(joined)
        stations = pairs.map_partitions(_station_frame, meta=_station_frame(pair_meta))
        per = (stations.assign(c=stations["series_capacity_Ah"].astype("float64"))  # float32 sums would round
               .groupby("grade", observed=True)["c"].agg(["count", "sum"]))
        inner_totals = per.compute()
        counts, caps = {}, {}
        for g in GRADES[:-1]:
            e = edge[edge["grade"] == g]
            counts[g] = int(inner_totals["count"].get(g, 0)) + len(e)
            caps[g] = float(inner_totals["sum"].get(g, 0.0)) + float(e["series_capacity_Ah"].astype(np.float64).sum())
        summary.stations = {**counts, "total": sum(counts.values())}
        summary.series_capacity_Ah = {**{g: round(c, 3) for g, c in caps.items()}, "total": round(sum(caps.values()),
                                                                                                     3)}
        summary.design, summary.paired_grades = _design_name(design), list(paired)
        summary.unassigned = _unassigned(grades, {g: int(per_grade[GRADES.index(g)]) for g in REUSABLE},
                                         summary.stations, paired)
        if out is not None:
            stations.to_parquet(str(out / "stations"), name_function=lambda i: f"part-{i:05d}.parquet",
                                write_index=False, write_metadata_file=False)
            edge.to_parquet(out / "stations" / "part-edges.parquet", index=False)
            summary.outputs["stations"] = str(out / "stations")
    summary.seconds = round(time.perf_counter() - t0, 3)
    if out is not None:
        (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    return summary


def run_fleet(dataset: str | Path, *, policy: str | Policy = "leaf-default", scheduler: str | None = None,
              out: Path | None = None, assemble: bool = True, workers: int = 2,
              design: str | StationProfile | None = "portable-2s",
              waive_lifetime_data: str | None = None) -> FleetSummary:
    """Grade (and pair) a dataset on the engine the user named: what ``releaf fleet grade|assemble`` runs.

    Parameters
    ----------
    dataset : directory of Parquet files
    policy : policy name or YAML path (``releaf.grading.load_policy``), or a loaded policy
    scheduler : None = the local polars engine; ``"local"`` = Dask on a ``LocalCluster`` of ``workers`` processes
        (one thread each) started for this run; ``"tcp://host:port"`` = Dask on that running scheduler
    out : output directory (see :func:`grade_and_assemble_local`), or None
    assemble : also pair into stations
    workers : worker processes of the ``"local"`` cluster
    design : station design whose destinations are paired (:func:`paired_grades`); None: every reusable grade
    waive_lifetime_data : None keeps the policy's IEC 63338 lifetime-data requirement (modules without
        ``has_lifetime_data`` go to recycling); a reason switches it off (``releaf.policy.waive_lifetime_data``:
        the policy name gets ``+no-lifetime-data``, which the summary shows)

    Raises
    ------
    ConfigError : Dask asked for but not installed, or the scheduler cannot be reached
    InputFileError : the dataset is missing or lacks the needed columns
    """
    from releaf.policy import load_policy
    from releaf.policy import waive_lifetime_data as waive

    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    if waive_lifetime_data is not None:
        pol = waive(pol, waive_lifetime_data)
    if assemble:
        paired_grades(pol, design)  # an unknown or unpairable design is reported before any work
    if scheduler is None:
        return grade_and_assemble_local(dataset, pol, out=out, assemble=assemble, design=design)
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(scheduler, "the Dask engine needs dask[distributed]: pip install 'releaf[fleet]'") \
            from None
    dataset_files(dataset)  # a missing dataset is reported before a cluster starts
    # the p2p shuffle logs every shuffle's start and end at WARNING level on the scheduler
    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    if scheduler == "local":
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            return grade_and_assemble_dask(dataset, pol, client, out=out, assemble=assemble, design=design)
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(scheduler, f"cannot reach this Dask scheduler: {exc}") from None
    with client:
        return grade_and_assemble_dask(dataset, pol, client, out=out, assemble=assemble, design=design)
