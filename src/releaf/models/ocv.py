"""Open-circuit voltage as a function of state of charge.

A table is ``(soc_pct, ocv_V)``, both strictly increasing, for one cell (= one series group: parallel cells share
one voltage). It comes with the battery: ``profile.ocv_table`` of a :class:`releaf.parameters.BatteryProfile`
(an :class:`releaf.parameters.OcvTable`, which unpacks as that pair), or a packaged table by name through
:func:`load_ocv_table`. The functions here take the table as an argument and hold no battery of their own.
OCV is piecewise linear between the table points, which is what ``np.interp`` does and what the integrals here
assume.
"""

from __future__ import annotations

import numpy as np

from releaf import parameters


def load_ocv_table(name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a packaged OCV–SOC table (through :func:`releaf.parameters.ocv_table`).

    Parameters
    ----------
    name : table name (``"leaf_cell_ocv_25C"``, listed under ``ocv_tables`` of a packaged parameter set);
        None: the table of the default battery profile (``releaf.parameters.DEFAULT_BATTERY_PROFILE``)

    Returns
    -------
    soc_pct : state of charge [%], strictly increasing (read-only array)
    ocv_V : open-circuit voltage [V], strictly increasing (read-only array)

    Raises
    ------
    ConfigError : unknown table, bad header, non-numeric or non-monotonic rows

    References
    ----------
    ``leaf_cell_ocv_25C``: ORNL 2013 Nissan Leaf cell HPPC at 25 °C, Wiggins, Allu, Wang,
    doi:10.5281/zenodo.2580327 (see the CSV header for the derivation).
    """
    if name is None:
        table = parameters.battery_profile(parameters.DEFAULT_BATTERY_PROFILE).ocv_table
    else:
        table = parameters.ocv_table(name)
    return table.soc_pct, table.ocv_V


def _table(table) -> tuple[np.ndarray, np.ndarray]:
    if table is None:
        raise TypeError("an OCV table is needed: the profile's ocv_table (releaf.parameters) or a (soc_pct, ocv_V) "
                        "pair; releaf assumes no battery")
    soc_tab, ocv_tab = table
    return soc_tab, ocv_tab


def ocv_V(soc_pct, table):
    """Open-circuit voltage at a state of charge (linear between table points, clamped at the ends).

    Parameters
    ----------
    soc_pct : state of charge [%], scalar or array
    table : ``(soc_pct, ocv_V)`` of one cell, e.g. ``profile.ocv_table`` or :func:`load_ocv_table`

    Returns
    -------
    Open-circuit voltage [V], same shape as ``soc_pct``.
    """
    soc_tab, ocv_tab = _table(table)
    return np.interp(soc_pct, soc_tab, ocv_tab)


def soc_pct_at_ocv(voltage_V, table):
    """State of charge at which the open-circuit voltage equals ``voltage_V`` (inverse of :func:`ocv_V`).

    Parameters
    ----------
    voltage_V : open-circuit voltage [V], scalar or array; clamped to the table's range
    table : ``(soc_pct, ocv_V)`` of one cell

    Returns
    -------
    State of charge [%].
    """
    soc_tab, ocv_tab = _table(table)
    return np.interp(voltage_V, ocv_tab, soc_tab)


def mean_ocv_V(soc_low_pct: float, soc_high_pct: float, table) -> float:
    """Mean open-circuit voltage over a SOC window: ``∫ OCV dSOC / ΔSOC``, exact for the piecewise-linear table.

    Multiplied by the charge moved [Ah] it gives the energy of a loss-free (R0 = 0) discharge [Wh].

    Parameters
    ----------
    soc_low_pct, soc_high_pct : window [%], ``soc_low_pct < soc_high_pct``
    table : ``(soc_pct, ocv_V)`` of one cell

    Returns
    -------
    Mean open-circuit voltage [V].
    """
    soc_tab, _ = _table(table)
    if not soc_high_pct > soc_low_pct:
        raise ValueError("soc_high_pct must exceed soc_low_pct")
    inner = soc_tab[(soc_tab > soc_low_pct) & (soc_tab < soc_high_pct)]
    s = np.concatenate(([soc_low_pct], inner, [soc_high_pct]))
    v = ocv_V(s, table)
    # trapezoids are exact on a piecewise-linear curve when every breakpoint is a node
    return float(np.sum((v[1:] + v[:-1]) * np.diff(s)) / 2.0 / (soc_high_pct - soc_low_pct))
