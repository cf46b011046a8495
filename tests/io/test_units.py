"""The shared unit table and header splitter (releaf.io.units), and that readers take their scales from it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from releaf.io import units


@pytest.mark.parametrize(("header", "styles", "expected"), [
    ("Current(mA)", ("()", "[]", "/"), ("Current", "mA")),
    ("Current [mA]", ("()", "[]", "/"), ("Current", "mA")),
    ("Current / mA", ("()", "[]", "/"), ("Current", "mA")),
    ("  Test Time ( s ) ", ("()",), ("Test Time", "s")),
    ("I/mA", ("/",), ("I", "mA")),
    ("(Q-Qo)/mA.h", ("/",), ("(Q-Qo)", "mA.h")),
    ("dQ/dV(mAh/V)", ("()", "/"), ("dQ/dV", "mAh/V")),  # parentheses are tried first
    ("dV/dt", ("()",), ("dV/dt", None)),  # a reader that leaves "/" out keeps slashes in names
    ("Cycle_Index", ("()", "[]", "/"), ("Cycle_Index", None)),
    ("Voltage ()", ("()",), ("Voltage", "")),
])
def test_split_unit(header, styles, expected):
    assert units.split_unit(header, styles) == expected


def test_conversion_is_by_dimension():
    assert units.conversion("mA", "current") == (1e-3, 0.0)
    assert units.conversion(" MAH ", "charge") == (1e-3, 0.0)
    assert units.conversion("[h]", "time") == (3600.0, 0.0)
    # the same spelling in two dimensions: a coulomb in a charge column, a degree Celsius in a temperature column
    assert units.conversion("C", "charge") == (1 / 3600, 0.0) and units.conversion("C", "temperature") == (1.0, 0.0)
    assert units.conversion("V", "current") is None and units.conversion("furlong", "time") is None
    assert units.conversion(None, "count") == (1.0, 0.0)
    assert set(units.UNITS) == set(units.CANONICAL_UNIT)
    for dimension, table in units.UNITS.items():  # the canonical unit itself is always a spelling, factor 1
        assert table[units.CANONICAL_UNIT[dimension].lower()] == (1.0, 0.0)


def test_temperatures_with_an_offset():
    values = pl.Series([273.15, 300.0])
    kelvin, note = units.convert(values, "K", "temperature", "T1 [K]")
    np.testing.assert_allclose(kelvin.to_numpy(), [0.0, 26.85])
    assert note == "'T1 [K]' x 1 -273.15 -> degC"
    fahrenheit, _ = units.convert(np.array([32.0, 212.0]), "degF", "temperature", "T")
    np.testing.assert_allclose(fahrenheit, [0.0, 100.0], atol=1e-12)


def test_note_and_apply():
    assert units.note("Current(mA)", 1e-3, 0.0, "current") == "'Current(mA)' x 0.001 -> A"
    assert units.note("Voltage(V)", 1.0, 0.0, "voltage") is None
    same = pl.Series([-0.0, 1.5])
    assert units.apply(same, 1.0, 0.0) is same  # nothing to do: the values are returned as they are
    assert units.apply(pl.Series([2.0]), 60.0).to_list() == [120.0]
    with pytest.raises(KeyError):
        units.convert(same, "furlong", "time", "t")


def test_readers_hold_no_unit_table_of_their_own():
    """Every reader resolves units through releaf.io.units: no module of releaf.io but units defines one."""
    import releaf.io as rio

    for module in rio.reader_modules():
        for name, value in vars(module).items():
            if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
                spellings = {k.lower() for k in value}
                assert not {"ma", "mah", "mv"} & spellings, f"{module.__name__}.{name} looks like a unit table"
