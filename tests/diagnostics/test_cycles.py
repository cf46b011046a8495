"""Per-cycle summary against the cyclers' own counters, parsed from the raw files with polars (not through releaf)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import shared
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from releaf.app.cli import app
from releaf.diagnostics.cycles import cycle_report, cycle_summary, derived_cycle_index
from releaf.io import read
from releaf.schema import SourceMeta, TimeSeries
from releaf.schema.records import RECORDS, CycleReport

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NEWARE_EXCERPT = FIXTURES / "neware" / "neware_uio_rows3301-3900.csv"
BDF_HEAD = FIXTURES / "bdf" / "batmo_bdf_head1000.csv"
MACCOR_052 = FIXTURES / "maccor" / "PredictionDiagnostics_000151_test.052"
ARBIN = FIXTURES / "arbin" / "FastCharge_000025_CH8.csv"
runner = CliRunner()


def _per_cycle_from_step_counters(cycle, step, *counters) -> dict[int, list[float]]:
    """Per cycle, the sum over its steps of each counter's last value in the step (the counters restart at 0 in
    every step: Neware, BDF, Maccor). A file that starts inside a step: its first step counts from its first value.
    """
    cycle, step = np.asarray(cycle), np.asarray(step)
    counters = [np.asarray(c, dtype=float) for c in counters]
    change = np.concatenate(([True], (cycle[1:] != cycle[:-1]) | (step[1:] != step[:-1])))
    starts = np.flatnonzero(change)
    ends = np.concatenate((starts[1:], [cycle.size])) - 1
    out: dict[int, list[float]] = {}
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        sums = out.setdefault(int(cycle[a]), [0.0] * len(counters))
        for j, c in enumerate(counters):
            sums[j] += c[b] - (c[a] if k == 0 else 0.0)
    return out


def _releaf(path) -> dict[int, list[float]]:
    return {c.cycle_index: [c.charge_capacity_Ah, c.discharge_capacity_Ah, c.charge_energy_Wh, c.discharge_energy_Wh]
            for c in cycle_summary(read(path))}


def _assert_cycles_match(got, vendor, *, rel, abs_):
    assert set(vendor) <= set(got)
    for k, values in vendor.items():
        assert got[k][: len(values)] == pytest.approx(values, rel=rel, abs=abs_), f"cycle {k}"


def _neware_counters(path):
    raw = pl.read_csv(path, infer_schema_length=None)
    return _per_cycle_from_step_counters(raw["Cycle Index"], raw["Step Index"], raw["Chg. Cap.(Ah)"],
                                         raw["DChg. Cap.(Ah)"], raw["Chg. Energy(Wh)"], raw["DChg. Energy(Wh)"])


@pytest.mark.parametrize("path", [NEWARE_EXCERPT, "shared"], ids=["excerpt", "whole-file"])
def test_neware_cycles_match_the_per_step_counters(path):
    # The Neware counters restart in every step and are written with 8 decimals of Ah; releaf's integral agrees to
    # 0.01 % (a few 1e-8 Ah): the counters' resolution, not a method difference.
    if path == "shared":
        path = shared("cycler-formats", "cellpy", "neware_uio.csv")
    vendor = _neware_counters(path)
    got = _releaf(path)
    assert len(got) == len(vendor)
    _assert_cycles_match(got, vendor, rel=1e-3, abs_=2e-7)


def _maccor_counters(path):
    raw = pl.read_csv(path, separator="\t", skip_rows=1, infer_schema_length=0).filter(pl.col("Cyc#").is_not_null())
    state = raw["State"]
    ah, wh = raw["Amp-hr"].cast(float), raw["Watt-hr"].cast(float)
    return _per_cycle_from_step_counters(raw["Cyc#"].cast(int), raw["Step"].cast(int), ah * (state == "C"),
                                         ah * (state == "D"), wh * (state == "C"), wh * (state == "D"))


@pytest.mark.parametrize("path", [MACCOR_052, "shared"], ids=["PredictionDiagnostics-052", "PreDiag-034"])
def test_maccor_cycles_match_amp_hr_and_watt_hr(path):
    # Maccor's Amp-hr / Watt-hr are per-step magnitudes on C and D rows. 0.1 %, and 1e-5 Ah absolute: the last cycle
    # of the .034 holds a few microampere-hours of a rest current that Maccor does not count on R rows.
    if path == "shared":
        path = shared("cycler-formats", "beep-TRI-AMDD", "PreDiag_000229_000229_truncated.034")
    _assert_cycles_match(_releaf(path), _maccor_counters(path), rel=1e-3, abs_=1e-5)


def _bdf(path):
    raw = pl.read_csv(path, infer_schema_length=None)
    cycle, step = raw["Cycle Count / 1"].to_numpy(), raw["Step Index / 1"].to_numpy()
    return _per_cycle_from_step_counters(cycle, step, raw["Charge Capacity / Ah"], raw["Discharge Capacity / Ah"])


def _bdf_paths():
    return [BDF_HEAD, "shared"]


def _bdf_path(path):
    return shared("cycler-formats", "cellpy", "batmo_bdf.csv") if path == "shared" else path


@pytest.mark.parametrize("path", _bdf_paths(), ids=["head1000", "whole-file"])
def test_bdf_cycles_match_the_per_step_counters_exactly(path):
    # The BDF counters count a step from its start to its last logged sample; the time between that sample and the
    # next step's start (up to 500 s here, with current flowing) is counted by neither step, and releaf books none
    # of it (capacity.interval_weights). Summed per cycle, the counters and releaf agree.
    _assert_cycles_match(_releaf(_bdf_path(path)), _bdf(_bdf_path(path)), rel=1e-3, abs_=1e-7)


def test_arbin_cycle_matches_charge_and_discharge_capacity_counters():
    # Arbin's Charge_Capacity / Discharge_Capacity accumulate over a cycle; this excerpt is one cycle (0)
    raw = pl.read_csv(ARBIN, infer_schema_length=None)
    got = _releaf(ARBIN)
    assert list(got) == sorted(raw["Cycle_Index"].unique().to_list())
    for k, part in raw.group_by("Cycle_Index"):
        expected = [float(part[c].max() - part[c].min()) for c in
                    ("Charge_Capacity", "Discharge_Capacity", "Charge_Energy", "Discharge_Energy")]
        assert got[k[0]] == pytest.approx(expected, rel=1e-3, abs=1e-6)


def test_arbin_res_cycles_match_the_counters_that_restart_every_cycle():
    # Arbin's Charge_/Discharge_Capacity and _Energy restart at 0 in each cycle (they are ~1e-9 at a cycle's first
    # sample): a cycle's values are the counters' maxima. Read with access-parser, not through releaf's reader.
    access_parser = pytest.importorskip("access_parser")
    path = shared("cycler-formats", "cellpy", "20160805_test001_45_cc_01.res")
    table = access_parser.AccessParser(str(path)).parse_table("Channel_Normal_Table")
    names = ("Charge_Capacity", "Discharge_Capacity", "Charge_Energy", "Discharge_Energy")
    raw = pl.DataFrame({k: table[k] for k in ("Data_Point", "Cycle_Index", *names)}).sort("Data_Point")
    vendor = {k[0]: [float(part[c].max()) for c in names] for k, part in raw.group_by("Cycle_Index")}
    got = _releaf(path)
    assert sorted(got) == sorted(vendor)
    _assert_cycles_match(got, vendor, rel=1e-3, abs_=1e-8)


def test_arbin_without_cycle_index_derives_one_cycle_matching_the_counters():
    path = shared("cycler-formats", "beep-TRI-AMDD", "2017-05-09_test-TC-contact_CH33.csv")
    raw = pl.read_csv(path, infer_schema_length=None)
    report = cycle_report(read(path))
    assert any("derived from the current" in w for w in report.warnings)
    charge = float(raw["Charge_Capacity"].max() - raw["Charge_Capacity"][0])  # the file starts inside a charge
    assert sum(c.charge_capacity_Ah for c in report.cycles) == pytest.approx(charge, rel=2e-3)


def _ts(t, i, v=None, **columns) -> TimeSeries:
    v = np.full(len(t), 3.7) if v is None else v
    data = pl.DataFrame({"test_time_s": t, "voltage_V": v, "current_A": i, **columns})
    return TimeSeries(data, SourceMeta(path="synthetic.csv", sha256="", format="synthetic", vendor="test"))


def test_derived_cycles_start_at_the_first_charge_after_a_discharge():
    #        charge  rest  discharge  rest  charge  discharge
    i = np.array([0, 2, 2, 0, -2, -2, 0, 0, 2, 2, -2, -2, 0.0])
    t = np.arange(i.size) * 10.0
    cycles = cycle_summary(_ts(t, i))
    assert [c.cycle_index for c in cycles] == [1, 2]
    assert [c.complete for c in cycles] == [True, True]  # the file ends at rest
    assert cycles[0].charge_capacity_Ah == pytest.approx(40 / 3600)  # trapezoids without steps: 10 + 20 + 10 A s
    assert cycles[0].mean_charge_voltage_V == pytest.approx(3.7)
    assert cycles[0].max_temperature_C is None
    cut = cycle_summary(_ts(t[:-1], i[:-1]))
    assert [c.complete for c in cut] == [True, False]  # cut while current flows
    np.testing.assert_array_equal(derived_cycle_index(i > 0, i < 0), [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2])


def test_a_cycle_without_discharge_is_incomplete_and_temperature_is_the_highest_sensor():
    t = np.arange(6) * 60.0
    i = np.array([0, 1, 1, 1, 0, 0.0])
    ts = _ts(t, i, cycle_index=[0] * 6, temperature_C=[25.0, 26.0, 27.0, None, 25.0, 25.0],
             temperature_C_1=[25.0, 25.0, 25.0, 31.0, 25.0, 25.0], ambient_temperature_C=[40.0] * 6)
    (c,) = cycle_summary(ts)
    assert not c.complete and c.coulombic_efficiency == 0.0 and c.mean_discharge_voltage_V is None
    assert c.max_temperature_C == 31.0 and c.duration_s == 300.0


@st.composite
def stepped_test(draw):
    """Constant-current steps with random samples inside, random cycle numbers (or none) per step."""
    n_steps = draw(st.integers(1, 8))
    t, i, step, cyc = [0.0], [0.0], [0], [0]
    positive = 0.0
    cycle = 0
    for k in range(1, n_steps + 1):
        current = draw(st.one_of(st.just(0.0), st.floats(-50, 50, allow_nan=False)))
        length = draw(st.floats(1, 5000))
        cycle += draw(st.integers(0, 1))
        start = t[-1]
        for frac in [*sorted(draw(st.lists(st.floats(0.01, 0.99), max_size=4))), 1.0]:
            t.append(start + frac * length)
            i.append(current)
            step.append(k)
            cyc.append(cycle)
        positive += max(current, 0.0) * length / 3600
    columns = {"step_index": step}
    if draw(st.booleans()):
        columns["cycle_index"] = cyc
    return _ts(np.array(t), np.array(i), **columns), positive, t[-1]


@settings(max_examples=200, deadline=None)
@given(stepped_test())
def test_per_cycle_charge_adds_up_to_the_integral_of_positive_current(case):
    ts, positive_Ah, duration_s = case
    cycles = cycle_summary(ts)
    assert sum(c.charge_capacity_Ah for c in cycles) == pytest.approx(positive_Ah, rel=1e-9, abs=1e-12)
    assert sum(c.duration_s for c in cycles) == pytest.approx(duration_s, rel=1e-12)


def test_cycle_report_is_a_registered_record_that_round_trips():
    report = cycle_report(read(NEWARE_EXCERPT))
    assert RECORDS["CycleReport"] is CycleReport
    assert CycleReport.from_dict(report.to_dict()).cycles[1].cycle_index == 2
    assert "cycles" in CycleReport.json_schema()["properties"]


def test_cli_cycles_json_csv_and_table():
    out = runner.invoke(app, ["cycles", str(NEWARE_EXCERPT), str(MACCOR_052), "--json"])
    assert out.exit_code == 0, out.output
    records = json.loads(out.stdout)
    assert [Path(r["file"]).name for r in records] == [NEWARE_EXCERPT.name, MACCOR_052.name]
    assert records[0]["cycles"][1]["discharge_capacity_Ah"] == pytest.approx(0.0016953, rel=1e-3)
    assert records[1]["cycles"][0]["cycle_index"] == 37

    out = runner.invoke(app, ["cycles", str(NEWARE_EXCERPT), "--csv"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("file,cycle_index,charge_capacity_Ah,discharge_capacity_Ah")
    assert len(lines) == 3

    out = runner.invoke(app, ["cycles", str(NEWARE_EXCERPT)])
    assert out.exit_code == 0 and "discharge Ah" in out.stdout

    assert runner.invoke(app, ["cycles", str(NEWARE_EXCERPT), "--csv", "--json"]).exit_code == 2
    assert runner.invoke(app, ["cycles", "no-such-file.csv"]).exit_code == 2
