from __future__ import annotations

import math
from itertools import pairwise

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from releaf.errors import InputFileError
from releaf.schema import REQUIRED, SourceMeta, TimeSeries, validate
from releaf.schema.timeseries import MAX_ABS_CURRENT_A, MAX_ABS_VOLTAGE_V, TEMPERATURE_RANGE_C

META = SourceMeta(path="x.csv", sha256="0" * 64, format="test", vendor="test")


def table(**cols):
    base = {"test_time_s": [0.0, 1.0, 2.0], "voltage_V": [4.0, 3.9, 3.8], "current_A": [0.0, -10.0, -10.0]}
    base.update(cols)
    return TimeSeries(pl.DataFrame({k: v for k, v in base.items() if v is not None}), META)


def test_valid_table_passes_and_is_cast():
    ts = validate(table(step_index=[1, 2, 2]))
    assert ts.data.schema["test_time_s"] == pl.Float64


@pytest.mark.parametrize("missing", REQUIRED)
def test_missing_required_column(missing):
    with pytest.raises(InputFileError, match=missing):
        validate(table(**{missing: None}))


def test_time_backwards_names_the_line():
    with pytest.raises(InputFileError) as err:
        validate(table(test_time_s=[0.0, 2.0, 1.0]), line_of_row=lambda i: i + 10)
    assert err.value.line == 12 and err.value.column == "test_time_s"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_required_values(bad):
    with pytest.raises(InputFileError, match="finite"):
        validate(table(voltage_V=[4.0, bad, 3.8]))


@pytest.mark.parametrize("col, values, hint", [("voltage_V", [4000.0, 3900.0, 3800.0], "mV"),
                                               ("current_A", [0.0, -10000.0, -10000.0], "mA"),
                                               ("temperature_C", [298.0, 298.0, 298.0], "K")])
def test_impossible_units_are_named(col, values, hint):
    with pytest.raises(InputFileError, match=hint):
        validate(table(**{col: values}))


def test_empty_table():
    empty = TimeSeries(pl.DataFrame({c: pl.Series([], dtype=pl.Float64) for c in REQUIRED}), META)
    with pytest.raises(InputFileError, match="no data rows"):
        validate(empty)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50))
def test_sorted_times_always_pass(times):
    times = sorted(set(times))  # repeated (time, V, I) rows are duplicates, tested above
    n = len(times)
    validate(TimeSeries(pl.DataFrame({"test_time_s": times, "voltage_V": [3.7] * n, "current_A": [0.0] * n}), META))


def test_duplicated_row_is_named_but_a_shared_time_stamp_is_not():
    with pytest.raises(InputFileError, match="duplicated row") as err:
        validate(table(test_time_s=[0.0, 1.0, 1.0], voltage_V=[4.0, 3.9, 3.9], current_A=[0.0, -10.0, -10.0]),
                 line_of_row=lambda i: i + 2)
    assert err.value.line == 4
    # a step change logged at the same instant (different current) is a real sample
    validate(table(test_time_s=[0.0, 1.0, 1.0], current_A=[0.0, -10.0, 0.0]))


_VALUES = st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1.0, 2.0, 200.0, -70.0, 2000.5, math.nan, math.inf,
                                                 -math.inf]))


def _has_problem(t, v, i, g, temp, step) -> bool:
    """The checks of ``validate`` written out on plain Python values (None = null)."""
    if any(x is None or not math.isfinite(x) for col in (t, v, i, g) for x in col):
        return True
    if any(b < a for a, b in pairwise(t)):
        return True
    rows = list(zip(t, v, i, step, strict=True))
    if any(a == b for a, b in pairwise(rows)):  # None == None: a repeated row, as polars' eq_missing
        return True
    if any(abs(x) > MAX_ABS_VOLTAGE_V for x in v) or any(abs(x) > MAX_ABS_CURRENT_A for x in i):
        return True
    lo, hi = TEMPERATURE_RANGE_C
    return any(x is not None and not lo <= x <= hi for x in temp)  # a NaN temperature is out of range


@given(st.integers(1, 6).flatmap(lambda n: st.tuples(*(st.lists(_VALUES, min_size=n, max_size=n) for _ in range(5)),
                                                     st.lists(st.one_of(st.none(), st.integers(0, 1)), min_size=n,
                                                              max_size=n))))
def test_validate_rejects_exactly_the_tables_with_a_problem(cols):
    """Through the numpy shortcut or the polars checks, whichever decides: never a bad table passed, never a good
    one rejected."""
    t, v, i, g, temp, step = cols
    df = pl.DataFrame({"test_time_s": t, "voltage_V": v, "current_A": i, "group_voltage_V_1": g,
                       "temperature_C": temp, "step_index": step},
                      schema={**dict.fromkeys(("test_time_s", "voltage_V", "current_A", "group_voltage_V_1",
                                               "temperature_C"), pl.Float64), "step_index": pl.Int64})
    try:
        validate(TimeSeries(df, META))
        rejected = False
    except InputFileError:
        rejected = True
    assert rejected == _has_problem(*cols)


def test_rest_mask_is_one_definition():
    import numpy as np

    from releaf.schema import rest_mask, rest_threshold_A, step_type_from_current

    i = np.array([0.0, 0.0008, -0.0012, 5.0, -65.0, 0.65, -0.65])
    assert rest_threshold_A(i) == rest_threshold_A(pl.Series(i)) == 1e-3  # 0.1 % of 65 A is above 1 mA
    np.testing.assert_array_equal(rest_mask(i), [True, True, False, False, False, False, False])
    # a diagnostic's own threshold (capacity: C/100 of 65 Ah), the same comparison
    np.testing.assert_array_equal(rest_mask(i, 0.65), [True, True, True, False, False, True, True])
    assert rest_mask(-0.5, 0.65) and not rest_mask(-0.7, 0.65)
    # the readers' step_type from the current agrees with the mask
    kinds = pl.DataFrame({"current_A": i}).select(step_type_from_current(pl.col("current_A"), rest_threshold_A(i)))
    np.testing.assert_array_equal(kinds.to_series().to_numpy() == "rest", rest_mask(i))
    # the cycler's own rest state wins when no threshold is given (a sensor offset at rest is still rest)
    step_type = pl.Series(["rest", "rest", "rest", "charge", "discharge", None, "rest"])
    np.testing.assert_array_equal(rest_mask(i, step_type=step_type), [True, True, True, False, False, False, True])
    np.testing.assert_array_equal(rest_mask(i, 0.65, step_type=step_type), rest_mask(i, 0.65))


def test_rest_threshold_of_a_coin_cell_follows_its_currents():
    from releaf.schema import rest_threshold_A

    assert rest_threshold_A(pl.Series([0.0, 2e-4, -2e-4])) == pytest.approx(2e-7)
    assert rest_threshold_A(pl.Series([0.0, 0.0])) == 1e-3
    assert rest_threshold_A([float("nan"), 0.5]) == pytest.approx(5e-4)
