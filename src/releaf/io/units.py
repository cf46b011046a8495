"""Units as cycler exports write them, and how every reader takes them to releaf's canonical units.

One table for all readers: ``UNITS[dimension][spelling] = (factor, offset)`` takes a value written in
``spelling`` to the canonical unit of its dimension, ``canonical = value * factor + offset``.

=========== ========= ================================================================================
dimension   canonical spellings (lower case, as found in brackets or after a slash)
=========== ========= ================================================================================
time        s         s, sec, second(s), ms, min, minutes, h, hr, hour(s), decimal hours, d, day
current     A         a, ma, ua, µa, ka
voltage     V         v, mv, kv
charge      Ah        ah, a.h, a·h, a h, mah, ma.h, ma·h, c (coulomb), as (ampere-second)
energy      Wh        wh, w.h, w·h, mwh, mw.h, kwh, j
temperature degC      degc, °c, c, celsius, k (kelvin), degf, °f
power       W         w
resistance  Ohm       ohm
count       1         1, (empty), -
=========== ========= ================================================================================

A reader knows the dimension of each column it takes (a current, a capacity), so ``C`` is a coulomb in a charge
column and a degree Celsius in a temperature column. What a reader does with a unit it does not know (refuse the
file, fall back to the vendor's default) and how it names its columns stay in the reader.

References
----------
BIPM, The International System of Units (SI), 9th edition (2019): prefixes and the non-SI units accepted for use
with the SI (min, h, d; the watt hour and ampere hour as products of accepted units).
"""

from __future__ import annotations

import re

from releaf.errors import InputFileError

UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "time": {"s": (1.0, 0.0), "sec": (1.0, 0.0), "second": (1.0, 0.0), "seconds": (1.0, 0.0), "ms": (1e-3, 0.0),
             "min": (60.0, 0.0), "minutes": (60.0, 0.0), "h": (3600.0, 0.0), "hr": (3600.0, 0.0),
             "hour": (3600.0, 0.0), "hours": (3600.0, 0.0), "decimal hours": (3600.0, 0.0), "d": (86400.0, 0.0),
             "day": (86400.0, 0.0)},
    "current": {"a": (1.0, 0.0), "ma": (1e-3, 0.0), "ua": (1e-6, 0.0), "µa": (1e-6, 0.0), "ka": (1e3, 0.0)},
    "voltage": {"v": (1.0, 0.0), "mv": (1e-3, 0.0), "kv": (1e3, 0.0)},
    "charge": {"ah": (1.0, 0.0), "a.h": (1.0, 0.0), "a·h": (1.0, 0.0), "a h": (1.0, 0.0), "mah": (1e-3, 0.0),
               "ma.h": (1e-3, 0.0), "ma·h": (1e-3, 0.0), "c": (1 / 3600, 0.0), "as": (1 / 3600, 0.0)},
    "energy": {"wh": (1.0, 0.0), "w.h": (1.0, 0.0), "w·h": (1.0, 0.0), "mwh": (1e-3, 0.0), "mw.h": (1e-3, 0.0),
               "kwh": (1e3, 0.0), "j": (1 / 3600, 0.0)},
    "temperature": {"degc": (1.0, 0.0), "°c": (1.0, 0.0), "c": (1.0, 0.0), "celsius": (1.0, 0.0),
                    "k": (1.0, -273.15), "degf": (5 / 9, -32 * 5 / 9), "°f": (5 / 9, -32 * 5 / 9)},
    "power": {"w": (1.0, 0.0)},
    "resistance": {"ohm": (1.0, 0.0)},
    "count": {"1": (1.0, 0.0), "": (1.0, 0.0), "-": (1.0, 0.0)},
}
CANONICAL_UNIT = {"time": "s", "current": "A", "voltage": "V", "charge": "Ah", "energy": "Wh", "temperature": "degC",
                  "power": "W", "resistance": "Ohm", "count": "1"}

# the notations of a unit in a column header: trailing (unit), trailing [unit], or "name / unit" (BDF, BioLogic)
_STYLES = {
    "()": re.compile(r"^\s*(?P<name>.*?)\s*\((?P<unit>[^()]*)\)\s*$"),
    "[]": re.compile(r"^\s*(?P<name>.*?)\s*\[(?P<unit>[^\[\]]*)\]\s*$"),
    "/": re.compile(r"^\s*(?P<name>[^/]+?)\s*/\s*(?P<unit>.+?)\s*$"),
}


def split_unit(header: str, styles: tuple[str, ...] = ("()", "[]", "/")) -> tuple[str, str | None]:
    """A column header split into its name and the unit written in it.

    ``'Current(mA)'``, ``'Current [mA]'`` and ``'Current / mA'`` → ``('Current', 'mA')``; ``'Cycle_Index'`` →
    ``('Cycle_Index', None)``. Both parts keep their case and lose surrounding spaces; each reader normalises
    names its own way.

    Parameters
    ----------
    header : the column name as written in the file
    styles : notations to try, in order: ``"()"`` a unit in trailing parentheses, ``"[]"`` in trailing square
        brackets, ``"/"`` after the first slash. A reader whose names contain slashes (``dV/dt``) leaves ``"/"``
        out.

    Returns
    -------
    ``(name, unit)``; ``unit`` is None when the header carries none in these styles (``''`` for empty brackets).
    """
    for style in styles:
        m = _STYLES[style].match(header)
        if m:
            return m.group("name"), m.group("unit").strip()
    return header.strip(), None


def conversion(unit: str | None, dimension: str) -> tuple[float, float] | None:
    """``(factor, offset)`` taking a value in ``unit`` to the canonical unit of ``dimension``.

    Parameters
    ----------
    unit : the unit as written (any case; surrounding spaces and square brackets are ignored); None is no unit
    dimension : a key of :data:`UNITS` (``"current"``, ``"time"`` ...)

    Returns
    -------
    ``(factor, offset)`` with ``canonical = value * factor + offset``, or None when the table does not know the unit.
    """
    key = (unit or "").strip().lower().replace("[", "").replace("]", "")
    return UNITS[dimension].get(key)


def note(name: str, factor: float, offset: float, dimension: str) -> str | None:
    """The sentence a reader puts in ``SourceMeta.conversions`` for a scaled column, None when nothing changes.

    ``note("Current(mA)", 1e-3, 0.0, "current")`` → ``"'Current(mA)' x 0.001 -> A"``.
    """
    if factor == 1.0 and offset == 0.0:
        return None
    return f"'{name}' x {factor:g}" + (f" {offset:+g}" if offset else "") + f" -> {CANONICAL_UNIT[dimension]}"


def resolve(where, name: str, unit: str | None, dimension: str | None, *, units_found: dict, conversions: list,
            line: int = 1, vendor: str | None = None) -> tuple[float, float]:
    """``(factor, offset)`` of one column, with the unit recorded and any scaling noted (what every reader does).

    Parameters
    ----------
    where : the file (or file and sheet) named in an error
    name : the column as written; unit : its unit as written, None when the header gives none
    dimension : a key of :data:`UNITS`; None: a column whose unit releaf cannot convert
    units_found : ``{column: unit}`` of the reader's ``SourceMeta``; a count column is not recorded
    conversions : the reader's list of conversion sentences (:func:`note`)
    line : header line of the column, for the error
    vendor : a unit-less column is in this vendor's default, the canonical unit (recorded as such); None: the
        unit must be given

    Raises
    ------
    InputFileError : a unit the table does not know for the dimension (naming file, line and column)
    """
    found = None
    if dimension is not None and (unit is not None or vendor is not None):
        found = conversion(unit or CANONICAL_UNIT[dimension], dimension)
    if found is None:
        raise InputFileError(where, f"unit {unit!r} not understood", line=line, column=name)
    if dimension != "count":
        units_found[name] = unit or f"(none; {vendor} default {CANONICAL_UNIT[dimension]})"
    if (text := note(name, *found, dimension)) is not None:
        conversions.append(text)
    return found


def apply(values, factor: float, offset: float = 0.0):
    """``values * factor + offset`` (a polars Series or expression, or a numpy array), skipping a no-op step."""
    if factor != 1.0:
        values = values * factor
    return values + offset if offset else values


def convert(values, unit: str | None, dimension: str, name: str):
    """Values in the canonical unit, and the sentence saying what was done (None when nothing was).

    Raises
    ------
    KeyError
        for a unit the table does not know (check with :func:`conversion` first to raise a user error).
    """
    found = conversion(unit, dimension)
    if found is None:
        raise KeyError(f"unit {unit!r} not in the {dimension} table")
    return apply(values, *found), note(name, *found, dimension)
