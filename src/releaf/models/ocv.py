"""Open-circuit voltage as a function of state of charge.

The tables are packaged CSV files in ``releaf/profiles_data`` (``soc_pct,ocv_V``; lines starting with ``#`` carry
the source and method). OCV is piecewise linear between the table points, which is what ``np.interp`` does and
what the integrals here assume.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from releaf.errors import InputFileError

DEFAULT_OCV_TABLE = "leaf_cell_ocv_25C"


@functools.lru_cache(maxsize=16)
def _read_table(name: str) -> tuple[np.ndarray, np.ndarray]:
    fname = f"{name}.csv"
    try:
        text = resources.files("releaf.parameters").joinpath("leaf-24kwh", fname).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(fname, f"no packaged OCV table named {name!r}") from None
    soc, ocv = [], []
    header_seen = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not header_seen:
            if [c.strip() for c in line.split(",")] != ["soc_pct", "ocv_V"]:
                raise InputFileError(fname, f"expected header 'soc_pct,ocv_V', found {line!r}", line=lineno)
            header_seen = True
            continue
        try:
            s, v = (float(x) for x in line.split(","))
        except ValueError:
            raise InputFileError(fname, f"expected two numbers, found {line!r}", line=lineno) from None
        soc.append(s)
        ocv.append(v)
    soc_pct, ocv_v = np.array(soc), np.array(ocv)
    if soc_pct.size < 2:
        raise InputFileError(fname, "an OCV table needs at least two points")
    # strictly increasing in both columns: the curve must be invertible (SOC at a given voltage)
    if np.any(np.diff(soc_pct) <= 0) or np.any(np.diff(ocv_v) <= 0):
        raise InputFileError(fname, "soc_pct and ocv_V must both increase strictly")
    soc_pct.flags.writeable = False
    ocv_v.flags.writeable = False
    return soc_pct, ocv_v


def load_ocv_table(name: str = DEFAULT_OCV_TABLE) -> tuple[np.ndarray, np.ndarray]:
    """Read a packaged OCV–SOC table.

    Parameters
    ----------
    name : table name, the file ``releaf/profiles_data/<name>.csv``

    Returns
    -------
    soc_pct : state of charge [%], strictly increasing (read-only array)
    ocv_V : open-circuit voltage [V], strictly increasing (read-only array)

    Raises
    ------
    InputFileError : unknown table, bad header, non-numeric or non-monotonic rows

    References
    ----------
    ``leaf_cell_ocv_25C``: ORNL 2013 Nissan Leaf cell HPPC at 25 °C, Wiggins, Allu, Wang,
    doi:10.5281/zenodo.2580327 (see the CSV header for the derivation).
    """
    return _read_table(name)


def _table(table):
    return load_ocv_table() if table is None else table


def ocv_V(soc_pct, table: tuple[np.ndarray, np.ndarray] | None = None):
    """Open-circuit voltage at a state of charge (linear between table points, clamped at the ends).

    Parameters
    ----------
    soc_pct : state of charge [%], scalar or array
    table : ``(soc_pct, ocv_V)`` as returned by :func:`load_ocv_table`; default the Leaf cell at 25 °C

    Returns
    -------
    Open-circuit voltage [V], same shape as ``soc_pct``.
    """
    soc_tab, ocv_tab = _table(table)
    return np.interp(soc_pct, soc_tab, ocv_tab)


def soc_pct_at_ocv(voltage_V, table: tuple[np.ndarray, np.ndarray] | None = None):
    """State of charge at which the open-circuit voltage equals ``voltage_V`` (inverse of :func:`ocv_V`).

    Parameters
    ----------
    voltage_V : open-circuit voltage [V], scalar or array; clamped to the table's range
    table : ``(soc_pct, ocv_V)``; default the Leaf cell at 25 °C

    Returns
    -------
    State of charge [%].
    """
    soc_tab, ocv_tab = _table(table)
    return np.interp(voltage_V, ocv_tab, soc_tab)


def mean_ocv_V(soc_low_pct: float, soc_high_pct: float, table: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """Mean open-circuit voltage over a SOC window: ``∫ OCV dSOC / ΔSOC``, exact for the piecewise-linear table.

    Multiplied by the charge moved [Ah] it gives the energy of a loss-free (R0 = 0) discharge [Wh].

    Parameters
    ----------
    soc_low_pct, soc_high_pct : window [%], ``soc_low_pct < soc_high_pct``
    table : ``(soc_pct, ocv_V)``; default the Leaf cell at 25 °C

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
