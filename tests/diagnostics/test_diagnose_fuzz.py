"""``diagnose`` on generated canonical tables: no traceback on any input (issue 10, item 4).

Every outcome is either a :class:`releaf.errors.ReleafError` (from ``validate`` or ``diagnose``) or a
:class:`releaf.schema.records.Diagnosis` whose numbers are finite or None, a None capacity with a warning that
says why. The tables are random step sequences (CC/CV charges, rests, discharges, pulses, a truncated last step,
time gaps, noise), with or without the optional columns and with 0-4 group voltage columns; most are small, some
are one generated block repeated up to ~10^6 rows. ``benchmarks/fuzz_diagnose.py`` runs the same strategy with
10,000+ examples.
"""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from releaf.diagnostics import diagnose
from releaf.errors import ReleafError
from releaf.parameters import battery_profile
from releaf.protocols import fast_pulse
from releaf.schema import SourceMeta, TimeSeries, step_type_from_current, validate

PROFILES = {name: battery_profile(name) for name in ("leaf-24kwh-module", "leaf-24kwh-cell")}
KINDS = ("rest", "cc_charge", "cv_charge", "discharge", "pulse_discharge", "pulse_charge", "fast_pulse")
MAX_ROWS = 1_000_000

segment = st.tuples(
    st.sampled_from(KINDS),
    st.integers(1, 300),                                          # samples
    st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0, 10.0, 60.0]),       # dt [s]; 0 = repeated timestamps
    st.floats(0.0, 3.0),                                          # C-rate
    st.one_of(st.just(0.0), st.floats(0.0, 2e5)),                 # time gap before the segment [s]
)

tables = st.fixed_dictionaries({
    "profile": st.sampled_from(sorted(PROFILES)),
    "segments": st.lists(segment, min_size=1, max_size=12),
    "soc0": st.floats(0.0, 1.0),
    "soh": st.floats(0.3, 1.2),
    "n_groups": st.integers(0, 4),           # group voltage columns; 0 = none
    "series": st.integers(1, 4),             # groups in series when there are no group columns
    "noise_V": st.sampled_from([0.0, 1e-3, 0.02, 0.3]),
    "spread": st.floats(0.0, 0.2),           # SOC spread between groups
    "optional": st.sets(st.sampled_from(
        ["step_index", "cycle_index", "temperature_C", "step_type", "vendor_capacity_Ah", "step_nulls",
         "temperature_nulls", "temperature_C_1", "fit_ecm"])),
    "truncate": st.floats(0.0, 1.0),         # fraction of the last segment kept
    # most tables small; one in 25 repeated up to ~10^5 rows, one in 50 up to ~10^6 (capped at MAX_ROWS)
    "repeat": st.integers(0, 49).flatmap(
        lambda k: st.just(1) if k < 47 else st.integers(2, 500 if k < 49 else 50_000)),
    "seed": st.integers(0, 2**32 - 1),
})


def _ocv(soc: np.ndarray) -> np.ndarray:
    """A Leaf-like group OCV [V] (3.0 V empty, 4.15 V full), enough to reach the top of charge and the cut-off."""
    s = np.clip(soc, 0.0, 1.0)
    return 3.0 + 0.5 * s + 0.65 * s**2


def build(spec: dict) -> tuple[TimeSeries, object]:
    """The canonical table a spec describes (not yet validated) and its profile."""
    profile = PROFILES[spec["profile"]]
    rng = np.random.default_rng(spec["seed"])
    segs = list(spec["segments"])
    kind, n, dt, c, gap = segs[-1]
    segs[-1] = (kind, max(1, int(n * spec["truncate"])), dt, c, gap)
    fast_t, fast_i = fast_pulse.current_profile(profile.nominal_capacity_Ah)
    cap = profile.nominal_capacity_Ah * spec["soh"]
    t_parts, i_parts, cv_parts, step_parts = [], [], [], []
    t0 = 0.0
    for k, (kind, n, dt, c, gap) in enumerate(segs):
        amp = c * profile.nominal_capacity_Ah
        t = t0 + gap + dt * np.arange(n)
        if kind == "fast_pulse":  # the fast-SOH protocol (0.1 s sampling, or slower by dt), scaled by c
            keep = len(fast_t) if k < len(segs) - 1 else max(1, int(len(fast_t) * spec["truncate"]))
            t = t0 + gap + fast_t[:keep] * max(dt, 0.1) / 0.1
            i, n = c * fast_i[:keep], keep
        elif kind == "rest":
            i = np.zeros(n)
        elif kind == "cc_charge":
            i = np.full(n, amp)
        elif kind == "cv_charge":
            i = amp * np.exp(-np.arange(n) / max(n / 4, 1))
        elif kind == "discharge":
            i = np.full(n, -amp)
        elif kind == "pulse_discharge":
            i = np.where(np.arange(n) < max(n // 3, 1), -amp, 0.0)
        else:
            i = np.where(np.arange(n) < max(n // 3, 1), amp, 0.0)
        t_parts.append(t)
        i_parts.append(i)
        cv_parts.append(np.full(n, kind == "cv_charge"))
        step_parts.append(np.full(n, k + 1, dtype=np.int64))
        t0 = float(t[-1]) + dt
    t, i = np.concatenate(t_parts), np.concatenate(i_parts)
    cv, step = np.concatenate(cv_parts), np.concatenate(step_parts)
    reps = max(1, min(spec["repeat"], MAX_ROWS // len(t)))
    if reps > 1:
        span = float(t[-1] - t[0]) + 1.0
        t = np.concatenate([t + r * span for r in range(reps)])
        i, cv = np.tile(i, reps), np.tile(cv, reps)
        step = np.concatenate([step + r * len(segs) for r in range(reps)])
    dq = np.concatenate([[0.0], np.diff(t) * i[:-1] / 3600.0])
    soc = np.clip(spec["soc0"] + np.cumsum(dq) / cap, 0.0, 1.0)
    n_groups = spec["n_groups"]
    groups = max(n_groups, 1) if n_groups else spec["series"]
    r_group = 0.002 if profile.series_groups > 1 else 0.001
    group_v = []
    for g in range(groups):
        soc_g = np.clip(soc - spec["spread"] * g / max(groups, 1), 0.0, 1.0)
        v = np.where(cv, 4.15, _ocv(soc_g) + r_group * i)
        if spec["noise_V"]:
            v = v + rng.normal(0.0, spec["noise_V"], len(v))
        group_v.append(v)
    data = {"test_time_s": t, "voltage_V": np.sum(group_v, axis=0), "current_A": i}
    for g in range(n_groups):
        data[f"group_voltage_V_{g + 1}"] = group_v[g]
    opt = spec["optional"]
    if "step_index" in opt:
        data["step_index"] = step
    if "cycle_index" in opt:
        data["cycle_index"] = step // max(len(segs), 1) + 1
    if "temperature_C" in opt:
        data["temperature_C"] = 25.0 + rng.normal(0.0, 0.5, len(t))
        if "temperature_nulls" in opt:
            data["temperature_C"] = np.where(np.arange(len(t)) % 5 == 2, np.nan, data["temperature_C"])
    if "temperature_C_1" in opt:
        data["temperature_C_1"] = 30.0 + rng.normal(0.0, 0.5, len(t))
    if "vendor_capacity_Ah" in opt:
        data["vendor_capacity_Ah"] = np.cumsum(np.abs(dq))
    df = pl.DataFrame(data)
    if "temperature_nulls" in opt and "temperature_C" in df.columns:  # a reader's empty cells are nulls
        df = df.with_columns(pl.col("temperature_C").fill_nan(None))
    if "step_type" in opt:
        df = df.with_columns(step_type_from_current(pl.col("current_A")).alias("step_type"))
    if "step_nulls" in opt and "step_index" in df.columns:
        df = df.with_columns(pl.when(pl.int_range(pl.len()) % 7 == 3).then(None)
                             .otherwise(pl.col("step_index")).alias("step_index"))
    meta = SourceMeta(path="fuzz.csv", sha256="0" * 64, format="fuzz", vendor="hypothesis")
    return TimeSeries(df, meta), profile


def _non_finite(value, path="diagnosis"):
    """Paths of the non-finite floats inside a result (dataclasses, dicts, sequences)."""
    if isinstance(value, float | np.floating):
        return [] if math.isfinite(value) else [path]
    if is_dataclass(value):
        return [p for f in fields(value) for p in _non_finite(getattr(value, f.name), f"{path}.{f.name}")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{path}[{k!r}]")]
    if isinstance(value, list | tuple):
        return [p for k, v in enumerate(value) for p in _non_finite(v, f"{path}[{k}]")]
    return []


def check(spec: dict) -> str:
    """Run one spec; return ``"error"`` or ``"diagnosis"``, raise AssertionError on a broken contract."""
    ts, profile = build(spec)
    try:
        d = diagnose(validate(ts), profile, fit_ecm="fit_ecm" in spec["optional"])
    except ReleafError:
        return "error"
    bad = _non_finite(d)
    assert not bad, f"non-finite values: {bad}"
    if d.capacity_Ah is None:
        assert any("capacity" in w for w in d.warnings), f"no capacity and no warning why: {d.warnings}"
    return "diagnosis"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables)
def test_diagnose_never_raises_a_traceback(spec):
    check(spec)


def _spec(segments, **over) -> dict:
    spec = {"profile": "leaf-24kwh-cell", "segments": segments, "soc0": 0.0, "soh": 1.0, "n_groups": 0,
            "series": 1, "noise_V": 0.0, "spread": 0.0, "optional": set(), "truncate": 1.0, "repeat": 1, "seed": 0}
    return spec | over


# The shrunk inputs of the crashes the fuzzer found, kept as regressions.
REGRESSIONS = {
    # groups.diagnose_groups: np.argmin of no end voltages (a 2-group string without group columns)
    "discharge without group voltages": _spec([("rest", 1, 1.0, 0.0, 0.0), ("discharge", 200, 10.0, 1.0, 0.0)],
                                              series=2),
    # capacity.full_discharges: a discharge whose charge lies in a time gap had mean current and C-rate NaN
    "one discharge sample after a gap": _spec([("rest", 1, 0.0, 0.0, 0.0), ("discharge", 1, 0.0, 3.0, 120.0)]),
    # hppc._pulse_rows: ZeroDivisionError for the mean temperature of a one-sample pulse; resistance: r_end NaN
    # for a step that ends at its starting current
    "one-sample pulses at repeated timestamps": _spec(
        [("rest", 1, 0.0, 0.0, 0.0)] * 11 + [("discharge", 1, 0.0, 1.0, 61.0)], truncate=0.0, repeat=12,
        optional={"temperature_C", "step_nulls", "step_index", "cycle_index"}),
    "one-sample pulses, no temperature": _spec(
        [("rest", 1, 0.0, 0.0, 0.0)] * 11 + [("discharge", 1, 0.0, 1.0, 61.0)], truncate=0.0, repeat=12,
        optional={"step_nulls", "step_index", "cycle_index"}),
    # models.ecm_fit._windows: np.flatnonzero(...)[-1] of an HPPC level without a sample above the rest current
    "ECM fit of a level without load": _spec(
        [("rest", n, 0.0, 0.0, 0.0) for n in (1, 1, 2, 35, 88, 100, 255)]
        + [("fast_pulse", 1, 0.0, 0.0, 0.0), ("discharge", 286, 0.0, 1.0, 0.0), ("discharge", 1, 0.0, 2.0, 1853.0),
           ("rest", 278, 0.1, 0.0, 0.0), ("cc_charge", 1, 0.0, 1.0, 0.0)],
        soc0=1.0, noise_V=0.001, truncate=0.0,
        optional={"cycle_index", "temperature_C", "fit_ecm", "step_nulls", "step_type", "vendor_capacity_Ah",
                  "temperature_nulls", "temperature_C_1", "step_index"}),
    # models.ecm_fit._fit_fast_pair: no fast time constant below the slow one copied from another level (TypeError)
    "ECM fit, noisy fast pulses": _spec(
        [("rest", 1, 0.0, 0.0, 0.0), ("rest", 21, 0.0, 0.0, 0.0), ("fast_pulse", 1, 0.0, 1.15625, 0.0),
         ("rest", 165, 0.0, 0.0, 0.0), ("fast_pulse", 1, 0.0, 1.0, 4021.0)], noise_V=0.3,
        optional={"step_index", "temperature_C_1", "temperature_C", "step_nulls", "step_type", "fit_ecm",
                  "vendor_capacity_Ah", "temperature_nulls", "cycle_index"}),
    # diagnose._fast_soh: a refused (out-of-distribution) fast SOH estimate carried NaN SOH and interval
    "refused fast SOH estimate": _spec([("rest", 1, 0.0, 0.0, 0.0)] * 4 + [("fast_pulse", 1, 0.0, 1.0, 1.0)],
                                       noise_V=0.001),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions_found_by_the_fuzzer(name):
    assert check(REGRESSIONS[name]) == "diagnosis"
