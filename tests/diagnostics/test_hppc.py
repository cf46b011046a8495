from __future__ import annotations

import functools

import numpy as np
import polars as pl
import pytest
from conftest import shared
from hypothesis import given, settings
from hypothesis import strategies as st

import releaf.io
from releaf.diagnostics import hppc
from releaf.errors import InputFileError
from releaf.models.ocv import load_ocv_table, ocv_V

ORNL_HPPC = {10.0: "cell-low-current-hppc-10c.csv", 25.0: "cell-low-current-hppc-25c-2.csv",
             40.0: "cell-low-current-hppc-40c-1.csv"}


@functools.lru_cache(maxsize=4)
def _read(name: str):
    return releaf.io.read(shared("ornl-leaf", name))


def _synthetic_hppc(r0_mOhm, r1_mOhm, tau_s, dt=0.1):
    """Rest, CC charge to 'full', rest, then one level: -30 A 30 s, rest 40 s, +20 A 10 s, -10 A 600 s, rest;
    an ideal 1-RC cell with a flat OCV (so every voltage change is the circuit's)."""
    segs = [(0.0, 10.0, 1), (10.0, 100.0, 2), (0.0, 1500.0, 3), (-30.0, 30.0, 4), (0.0, 40.0, 5), (20.0, 10.0, 6),
            (-10.0, 600.0, 7), (0.0, 60.0, 8)]
    t, i, s = [0.0], [0.0], [1]
    for cur, dur, step in segs:
        n = int(round(dur / dt))
        t.extend(t[-1] + dt * np.arange(1, n + 1))
        i.extend([cur] * n)
        s.extend([step] * n)
    t, i = np.round(np.array(t), 9), np.array(i)
    v1 = np.zeros(t.size)
    for k in range(t.size - 1):
        a = np.exp(-(t[k + 1] - t[k]) / tau_s)
        v1[k + 1] = v1[k] * a + r1_mOhm / 1000 * (1 - a) * i[k + 1]
    v = 3.8 + i * r0_mOhm / 1000 + v1
    return pl.DataFrame({"test_time_s": t, "voltage_V": v, "current_A": i, "step_index": np.array(s)})


@settings(max_examples=25, deadline=None)
@given(st.floats(0.5, 5.0), st.floats(0.1, 3.0), st.floats(2.0, 30.0))
def test_pulse_resistances_of_a_known_circuit(r0, r1, tau):
    df = _synthetic_hppc(r0, r1, tau)
    tab = hppc.hppc_table(df, temperature_C=25.0)
    assert tab["direction"].to_list() == ["discharge", "charge"]
    assert tab["level"].to_list() == [1, 1]
    dis, chg = tab.row(0, named=True), tab.row(1, named=True)
    # the first sample is dt = 0.1 s after the step: R0 plus what the RC pair built in 0.1 s
    assert dis["r0_mOhm"] == pytest.approx(r0 + r1 * (1 - np.exp(-0.1 / tau)), rel=1e-6)
    for x, key in ((1.0, "r_1s_mOhm"), (10.0, "r_10s_mOhm"), (30.0, "r_30s_mOhm")):
        assert dis[key] == pytest.approx(r0 + r1 * (1 - np.exp(-x / tau)), rel=1e-6)
    assert chg["r_30s_mOhm"] is None  # 10 s pulse
    # charge pulse from a not-fully relaxed state: ΔV also holds the decay of the discharge polarisation
    assert chg["r0_mOhm"] > 0
    # SOC: 100 % at the end of the charge; 1000 As charged, pulse at the top
    assert dis["soc_pct"] == pytest.approx(100.0)
    assert dis["current_A"] == -30.0 and dis["temperature_C"] == 25.0


def test_ornl_25c_levels_and_independent_edge_values():
    ts = _read(ORNL_HPPC[25.0])
    tab = hppc.hppc_table(ts)
    assert tab.height == 20 and tab["level"].max() == 10
    assert tab.filter(pl.col("direction") == "discharge")["current_A"].to_list() == [-30.0] * 10
    # independent: ΔV/ΔI across the first sample of each cycler step 6 (the 30 A discharge pulse)
    df = ts.data
    s = df["step_index"].to_numpy()
    v, i, t = df["voltage_V"].to_numpy(), df["current_A"].to_numpy(), df["test_time_s"].to_numpy()
    first = np.flatnonzero((s[1:] == 6) & (s[:-1] != 6)) + 1
    expected = 1000 * (v[first] - v[first - 1]) / (i[first] - i[first - 1])
    got = tab.filter(pl.col("direction") == "discharge")["r0_mOhm"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.all(t[first] - t[first - 1] <= 1.0)
    # the packaged OCV table (scripts/derive_leaf_ocv.py: dense, anchored on these rests by its own coulomb count)
    # passes through the rested voltage before each level's pulse
    table = load_ocv_table()
    levels = tab.filter(pl.col("direction") == "discharge").sort("soc_pct")
    np.testing.assert_allclose(ocv_V(levels["soc_pct"].to_numpy(), table), levels["rest_voltage_V"].to_numpy(),
                               atol=1.5e-3)


def test_voltage_limited_regen_pulse_is_one_pulse():
    # at 100 % SOC the 22.5 A regen pulse hits 4.2 V: it ramps and tapers, yet it is one 10 s pulse
    tab = hppc.hppc_table(_read(ORNL_HPPC[25.0]))
    top = tab.filter((pl.col("level") == 1) & (pl.col("direction") == "charge")).row(0, named=True)
    assert top["duration_s"] == pytest.approx(10.0, abs=0.2)
    assert top["r_10s_mOhm"] is not None


def test_group_columns_from_a_real_cell_as_a_two_group_module():
    df = _read(ORNL_HPPC[25.0]).data
    v = df["voltage_V"]
    module = df.with_columns((2 * v).alias("voltage_V"), v.alias("group_voltage_V_1"),
                             (v + 0.01).alias("group_voltage_V_2"))
    cell = hppc.hppc_table(df)
    mod = hppc.hppc_table(module)
    for q in hppc.QUANTITIES:
        a, b = cell[q].to_numpy(), mod[q].to_numpy()
        ok = ~_is_null(a)
        np.testing.assert_allclose(b[ok], 2 * a[ok], rtol=1e-9)
        np.testing.assert_allclose(mod[f"{q}_g1"].to_numpy()[ok], a[ok], rtol=1e-9)
        np.testing.assert_allclose(mod[f"{q}_g2"].to_numpy()[ok], a[ok], rtol=1e-9)


def _is_null(a):
    return np.array([x is None or (isinstance(x, float) and np.isnan(x)) for x in a])


def test_r0_needs_samples_within_one_second():
    df = _read(ORNL_HPPC[25.0]).data
    s = df["step_index"].to_numpy()
    starts = np.flatnonzero((s[1:] == 6) & (s[:-1] != 6)) + 1
    drop = np.zeros(s.size, dtype=bool)
    for k in starts:
        drop[k : k + 3] = True  # the first pulse sample is now 2 s after the last rest sample
    tab = hppc.hppc_table(df.filter(pl.Series(~drop)))
    assert tab.filter(pl.col("direction") == "discharge")["r0_mOhm"].null_count() == 10


def test_summary_over_temperature_shows_the_expected_trend():
    tables = [hppc.hppc_table(_read(name), temperature_C=T) for T, name in ORNL_HPPC.items()]
    summary = hppc.hppc_summary(tables)
    assert set(summary["temperature_C"].to_list()) == {10.0, 25.0, 40.0}
    for q in ("r0_mOhm", "r_30s_mOhm"):
        m = hppc.resistance_map(summary, quantity=q).filter(pl.col("soc_pct") == 50.0).row(0, named=True)
        assert m[f"{q}_10C"] > m[f"{q}_25C"] > m[f"{q}_40C"]
    with pytest.raises(InputFileError, match="temperature_C"):
        hppc.hppc_summary([hppc.hppc_table(_read(ORNL_HPPC[25.0]))])


def test_missing_column_is_a_user_error():
    with pytest.raises(InputFileError, match="current_A"):
        hppc.hppc_table(pl.DataFrame({"test_time_s": [0.0, 1.0], "voltage_V": [3.7, 3.7]}))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0.0, -1.0, 5.0, -5.0, 2.0, 0.01, -0.01, float("nan")]), min_size=2, max_size=80),
       st.lists(st.integers(0, 2), min_size=80, max_size=80), st.booleans(), st.sampled_from([0.0, 0.05, 1.0]))
def test_pulse_end_from_breaks_equals_a_scan_from_the_pulse_start(current, steps, with_steps, rest):
    """Pulse ends found from neighbour-to-neighbour breaks equal scanning every later sample against the first one
    (every pulse from rest that ``hppc_pulses`` finds, none dropped for its length)."""
    from releaf.diagnostics.resistance import current_steps

    i = np.asarray(current)
    step_index = np.asarray(steps[: len(i)]) if with_steps else None
    steps_by_start = {s.before: s for s in current_steps(i, min_step_A=1.0, step_index=step_index)}
    pulses = hppc.hppc_pulses(i, np.arange(len(i), dtype=float), step_index, min_step_A=1.0, rest_A=rest,
                              max_pulse_s=np.inf)
    for _, pulse in pulses:
        s = steps_by_start[pulse.before]
        a = s.before + 1
        same = (np.sign(i[a:]) == np.sign(i[a])) & (np.abs(i[a:]) > rest)
        if step_index is not None:
            same &= step_index[a:] == step_index[a]
        off = np.flatnonzero(~same)
        last = a + (int(off[0]) - 1 if off.size else len(same) - 1)
        assert pulse.last == max(last, s.last)


def test_records_are_the_table_rows_and_min_levels_drops_a_single_level():
    one_level = _synthetic_hppc(2.0, 1.0, 10.0)
    assert hppc.hppc_records(one_level, temperature_C=25.0) == hppc.hppc_table(one_level, temperature_C=25.0).to_dicts()
    assert hppc.hppc_records(one_level, temperature_C=25.0, min_levels=2) == []
    ten_levels = _read(ORNL_HPPC[25.0])
    rows = hppc.hppc_records(ten_levels, min_levels=2)
    assert rows == hppc.hppc_table(ten_levels).to_dicts() and len({r["level"] for r in rows}) == 10
