"""Plausibility before trust: each wrong input gives the right result or a clear refusal (issue 10, item 5).

The cases are built from the real ORNL module-string files (three Leaf modules, 6 group taps) by the damage a
plant's data can take: two files joined, a group column in mV or reversed, the current sign inverted, the time in
ms, and a module profile given to a string.
"""

from __future__ import annotations

import polars as pl
import pytest
from conftest import MODULE_FILES

from releaf import io
from releaf.diagnostics import diagnose
from releaf.errors import InputFileError
from releaf.parameters import battery_profile

MODULE = battery_profile("leaf-24kwh-module")


@pytest.fixture(scope="module")
def ornl():
    return io.read(MODULE_FILES["1_0c"])


@pytest.fixture(scope="module")
def reference(ornl):
    return diagnose(ornl, MODULE)


def test_reference_is_a_string_of_three_modules(reference):
    assert reference.capacity_Ah == pytest.approx(55.3003, abs=1e-4)
    assert reference.units_in_series == 3
    assert any("a string of 3 leaf-24kwh-module units" in w for w in reference.warnings)
    c = reference.capacity_conditions
    assert c.charge_end == "not_logged" and c.end_reason == "group_voltage_limit"
    assert len(c.end_group_voltages_V) == 6 and min(c.end_group_voltages_V) == pytest.approx(3.0, abs=0.05)


def test_two_files_joined_are_not_summed(ornl, reference):
    """The second file starts at rest at the top with no charge logged: it is measured on its own."""
    d = ornl.data
    second = d.with_columns(pl.col("test_time_s") + d["test_time_s"][-1] + 60.0)
    joined = ornl.with_data(pl.concat([d, second]))
    out = diagnose(joined, MODULE)
    assert out.capacity_Ah == pytest.approx(reference.capacity_Ah, rel=1e-9)  # not 110 Ah
    assert len([x for x in out.discharges if x.is_full]) == 2
    assert any("recharged outside the log" in w for w in out.warnings)


@pytest.mark.parametrize(("change", "message"), [
    (pl.col("group_voltage_V_2") * 1000, "a series-group voltage of 4"),       # a column in mV
    (-pl.col("group_voltage_V_2"), "a series-group voltage of -"),             # a reversed tap
    (pl.lit(1e300), r"a series-group voltage of 1e\+300 V"),
])
def test_implausible_group_voltages_are_refused_naming_the_column(ornl, change, message):
    bad = ornl.with_data(ornl.data.with_columns(change.alias("group_voltage_V_2")))
    with pytest.raises(InputFileError, match=message) as err:
        diagnose(bad, MODULE)
    assert err.value.column == "group_voltage_V_2"


def test_inverted_current_sign_gives_no_negative_resistance(ornl):
    bad = ornl.with_data(ornl.data.with_columns(-pl.col("current_A")))
    d = diagnose(bad, MODULE)
    assert d.r0_mOhm is None or d.r0_mOhm > 0
    assert d.capacity_Ah is None  # the discharge now looks like a charge: nothing to measure
    assert all(g.r0_mOhm is None or g.r0_mOhm > 0 for g in d.groups)


def test_time_in_ms_is_refused_not_reported_as_a_huge_soh(ornl):
    bad = ornl.with_data(ornl.data.with_columns(pl.col("test_time_s") * 1000))
    d = diagnose(bad, MODULE)
    assert d.capacity_Ah is None and d.soh_pct is None
    assert any("130 % ceiling" in w and "time axis in ms" in w for w in d.warnings)
