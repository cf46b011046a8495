"""Battery Data Format (BDF) CSV of the Battery Data Alliance (Linux Foundation Energy).

A BDF table has one header row of preferred labels ``Quantity / unit`` (``Test Time / s``, ``Voltage / V``,
``Current / A`` required; ``Unix Time / s``, ``Cycle Count / 1``, ``Step Count / 1``, ``Ambient Temperature /
degC`` recommended; capacities, energies, ``Temperature Tk / degC`` ... optional) or of their machine-readable
names (``test_time_second``, ``voltage_volt``, ``current_ampere``, ...), one row per sample. The spec fixes the
units, but files in the wild carry others (``Test Time / h``, ``Current / mA``): the unit after the slash decides
the scale here (:mod:`releaf.io.units`), and the metadata says what was converted.

Sign: BDF's current is **positive on charge** (``Charging Capacity`` is the integral of max(I, 0)), which is
releaf's. Some writers (the BattMo simulation export read by cellpy) write the opposite; the reader checks the
file's own evidence, ``Step Type`` (discharge rows with positive current) or the counters (``Discharge
Capacity`` growing while the current is positive), flips the current when the evidence says so, and reports it.

Mapped: ``Step ID`` (else a legacy ``Step Index / 1`` that is a program step, else ``Step Count / 1``) ->
``step_index``; ``Cycle Count`` -> ``cycle_index``; BDF has no step time: where the charge and discharge counters
read 0 at every step's first sample, ``step_time_s`` is the time since that sample (the step began there);
``Step Type`` -> ``step_type``; ``Unix Time`` ->
``datetime``; charge minus discharge counters (or ``Net Capacity``/``Net Energy``) -> ``vendor_capacity_Ah`` /
``vendor_energy_Wh``; ``Temperature Tk`` (or ``Surface Temperature Tk``) -> ``temperature_C_k`` and the first
of them -> ``temperature_C``; ``Ambient Temperature`` -> ``ambient_temperature_C``. releaf's own extension
columns written by :func:`releaf.io.export.write_bdf` are read back: ``Group Voltage k / V`` ->
``group_voltage_V_k``, ``Step Time / s`` -> ``step_time_s`` (BDF has no step-time quantity), ``Cycler Net
Capacity / Ah`` and ``Cycler Net Energy / Wh`` (the cycler's counters, preferred over the integrals in the BDF
columns).

Hand-written on polars (the ``bdf`` package of the Alliance pins numpy<2 and pulls pint and rdflib; its rules
are small enough to restate here).

References
----------
Battery Data Alliance, Battery Data Format, github.com/battery-data-alliance/battery-data-format (README: required,
recommended and optional quantities; ``src/bdf/data/bdf-ontology-snapshot.ttl``, ontology 1.2.0: definitions of
``charging_capacity_ah`` = 1/3600 ∫ max(I, 0) dt, ``step_id``, ``step_count``, ``step_index``).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import polars as pl

from releaf.errors import InputFileError
from releaf.io import textfile, units
from releaf.io.mapped import decode, numbers, quantity, read_delimited
from releaf.schema import SourceMeta, TimeSeries, step_type_from_current, validate

# base (slug) -> (role, dimension); the role is the canonical target or a counter name
_BASES = {
    "test_time": ("test_time_s", "time"), "voltage": ("voltage_V", "voltage"), "current": ("current_A", "current"),
    "unix_time": ("unix_time", "time"), "cycle_count": ("cycle_index", "count"),
    "step_id": ("step_id", "count"), "step_count": ("step_count", "count"), "step_index": ("step_index", "count"),
    "step_type": ("step_type", None), "step_time": ("step_time_s", "time"),
    "charging_capacity": ("q_charge", "charge"), "charge_capacity": ("q_charge", "charge"),
    "discharging_capacity": ("q_discharge", "charge"), "discharge_capacity": ("q_discharge", "charge"),
    "net_capacity": ("q_net", "charge"), "cycler_net_capacity": ("q_cycler", "charge"),
    "charging_energy": ("e_charge", "energy"), "charge_energy": ("e_charge", "energy"),
    "discharging_energy": ("e_discharge", "energy"), "discharge_energy": ("e_discharge", "energy"),
    "net_energy": ("e_net", "energy"), "cycler_net_energy": ("e_cycler", "energy"),
    "ambient_temperature": ("ambient_temperature_C", "temperature"),
}
# machine-readable names (the ontology's notations) -> (base, unit)
_NOTATIONS = {
    "test_time_second": ("test_time", "s"), "test_time_millisecond": ("test_time", "ms"),
    "voltage_volt": ("voltage", "V"), "current_ampere": ("current", "A"), "unix_time_second": ("unix_time", "s"),
    "cycle_count": ("cycle_count", "1"), "step_count": ("step_count", "1"), "step_id": ("step_id", "1"),
    "step_index": ("step_index", "1"), "step_type": ("step_type", "1"),
    "charging_capacity_ah": ("charging_capacity", "Ah"), "discharging_capacity_ah": ("discharging_capacity", "Ah"),
    "net_capacity_ah": ("net_capacity", "Ah"), "charging_energy_wh": ("charging_energy", "Wh"),
    "discharging_energy_wh": ("discharging_energy", "Wh"), "net_energy_wh": ("net_energy", "Wh"),
    "ambient_temperature_celsius": ("ambient_temperature", "degC"),
}
_TEMPERATURE_K = re.compile(r"^(surface_)?temperature_t(\d+)$")
_GROUP_K = re.compile(r"^group_voltage_(\d+)$")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _parse_name(name: str) -> tuple[str, str | None] | None:
    """``(role, unit)`` of one header name, or None for a column releaf does not use."""
    label, unit = units.split_unit(name, styles=("/",))  # the preferred label 'Quantity / unit'
    if unit is not None:
        base = _slug(label)
    elif _slug(name) in _NOTATIONS:
        base, unit = _NOTATIONS[_slug(name)]
    else:
        base, unit = _slug(name), None
    if base in _BASES:
        return _BASES[base][0], unit
    t = _TEMPERATURE_K.match(base)
    if t:
        return f"temperature_C_{int(t.group(2))}", unit
    g = _GROUP_K.match(base)
    if g:
        return f"group_voltage_V_{int(g.group(1))}", unit
    return None


def _dimension(role: str) -> str | None:
    if role.startswith("temperature_C_"):
        return "temperature"
    if role.startswith("group_voltage_V_"):
        return "voltage"
    return next((dim for r, dim in _BASES.values() if r == role), None)


def _roles(names: list[str]) -> dict[str, tuple[int, str, str | None]]:
    """role -> (column position, name as in the file, unit); the first column of a role wins."""
    out = {}
    for i, name in enumerate(names):
        parsed = _parse_name(name)
        if parsed and parsed[0] not in out:
            out[parsed[0]] = (i, name, parsed[1])
    return out


def sniff(head: textfile.Head) -> str | None:
    """``bdf-csv`` when the header names Test Time, Voltage and Current the BDF way, else None."""
    if head.is_binary:
        return None
    names = next(csv.reader([head.first_line]), [])
    slashed = sum(1 for n in names if units.split_unit(n, styles=("/",))[1] is not None)
    roles = _roles([n.strip() for n in names])
    if {"test_time_s", "voltage_V", "current_A"} <= roles.keys():
        labels = (roles["test_time_s"][1], roles["voltage_V"][1], roles["current_A"][1])
        if slashed >= 3 or all(_slug(n) in _NOTATIONS for n in labels):
            return "bdf-csv"
    return None


def read_bdf_csv(path) -> TimeSeries:
    """Read a BDF CSV file into the canonical table.

    Parameters
    ----------
    path : a ``.bdf`` / ``.bdf.csv`` / ``.csv`` file with a BDF header

    Returns
    -------
    TimeSeries with ``test_time_s`` [s], ``voltage_V`` [V], ``current_A`` [A, + = charge], and where the file has
    them ``step_index``, ``cycle_index``, ``step_time_s`` [s], ``step_type``, ``datetime`` [UTC],
    ``vendor_capacity_Ah`` [Ah, charge − discharge], ``vendor_energy_Wh`` [Wh], ``temperature_C`` /
    ``temperature_C_k`` [degC],
    ``ambient_temperature_C`` [degC], ``group_voltage_V_k`` [V]. ``meta.header["ignored_columns"]`` lists the
    file's columns releaf does not use.

    Raises
    ------
    InputFileError
        no BDF header, a missing required column, a unit that does not fit its quantity, a line with the wrong
        number of fields, or a non-number (naming the line and the column as the file calls it).
    """
    path = Path(path)
    text = decode(path, textfile.read_bytes(path))
    names, raw, first = read_delimited(path, text)
    roles = _roles(names)
    for need, label in (("test_time_s", "Test Time / s"), ("voltage_V", "Voltage / V"), ("current_A", "Current / A")):
        if need not in roles:
            raise InputFileError(path, f"not a BDF file: no {label!r} column in the header (found: "
                                         f"{', '.join(names[:12])})", line=1)
    units_found, conversions = {}, []

    def num(role: str, *, allow_empty: bool = True) -> pl.Series:
        i, name, unit = roles[role]
        return quantity(path, raw, f"c{i}", name=name, unit=unit, dimension=_dimension(role), first_line_no=first,
                        units_found=units_found, conversions=conversions, allow_empty=allow_empty)

    columns = {"test_time_s": num("test_time_s", allow_empty=False), "voltage_V": num("voltage_V", allow_empty=False),
               "current_A": num("current_A", allow_empty=False)}
    step_source = _step_source(path, raw, roles, first, conversions)
    if step_source:
        columns["step_index"] = num(step_source).cast(pl.Int64)
    if "cycle_index" in roles:
        columns["cycle_index"] = num("cycle_index").cast(pl.Int64)
    if "step_time_s" in roles:
        columns["step_time_s"] = num("step_time_s")
    if "step_type" in roles:
        step_type = raw[f"c{roles['step_type'][0]}"].str.strip_chars().str.to_lowercase().replace("", None)
    else:
        step_type = None
    if "unix_time" in roles:
        columns["datetime"] = (num("unix_time") * 1e6).round().cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
    q_charge = num("q_charge") if "q_charge" in roles else None
    q_discharge = num("q_discharge") if "q_discharge" in roles else None
    began = (_steps_begin_at_first_sample(columns["step_index"], q_charge, q_discharge)
             if "step_time_s" not in columns and "step_index" in columns else None)
    if began is not None:
        columns["step_time_s"] = columns["test_time_s"] - columns["test_time_s"].gather(began)
        conversions.append("step_time_s = time since the step's first sample: the charge and discharge counters "
                           "read 0 at every step's first sample, so the step began there")
    for target, cycler, plus, minus, net in (("vendor_capacity_Ah", "q_cycler", "q_charge", "q_discharge", "q_net"),
                                             ("vendor_energy_Wh", "e_cycler", "e_charge", "e_discharge", "e_net")):
        if cycler in roles:
            columns[target] = num(cycler)
        elif plus in roles and minus in roles:
            columns[target] = (q_charge - q_discharge) if plus == "q_charge" else num(plus) - num(minus)
        elif net in roles:
            columns[target] = num(net)
    temperatures = sorted((r for r in roles if r.startswith("temperature_C_")), key=lambda r: int(r.rsplit("_", 1)[1]))
    for role in temperatures:
        columns[role] = num(role)
    if temperatures:
        columns["temperature_C"] = columns[temperatures[0]]
    if "ambient_temperature_C" in roles:
        columns["ambient_temperature_C"] = num("ambient_temperature_C")
    for role in sorted((r for r in roles if r.startswith("group_voltage_V_")), key=lambda r: int(r.rsplit("_", 1)[1])):
        columns[role] = num(role, allow_empty=False)

    flip = _inverted_sign(columns["current_A"], step_type, q_charge, q_discharge)
    if flip:
        columns["current_A"] = -columns["current_A"]
        conversions.append(f"'{roles['current_A'][1]}' sign flipped: {flip}; BDF and releaf use + = charge")
    df = pl.DataFrame(columns)
    current_type = step_type_from_current(pl.col("current_A"))
    df = df.with_columns(current_type.alias("step_type") if step_type is None
                         else pl.lit(step_type).fill_null(current_type).alias("step_type"))
    used = {v[0] for v in roles.values()}
    meta = SourceMeta(
        path=str(path), sha256=textfile.sha256_of(path), format="bdf-csv", vendor="Battery Data Format",
        units_found=units_found, conversions=tuple(conversions),
        header={"ignored_columns": ", ".join(n for i, n in enumerate(names) if i not in used)},
    )
    return validate(TimeSeries(df, meta), line_of_row=lambda i: first + i)


def _steps_begin_at_first_sample(step: pl.Series, q_charge: pl.Series | None,
                                 q_discharge: pl.Series | None) -> pl.Series | None:
    """Per row, the row where its step began, when the file shows that every step began at its first sample;
    else None.

    BDF has no step time. A writer whose counters restart at every step and read exactly 0 at a step's first
    sample logged that sample when the step began (cellpy's BattMo export, ``batmo_bdf.csv``: its first
    discharge sample comes 60 s after the rest's last, with the counters at 0); booking that interval to the new
    step would add up to 1.5 % to a discharge. The counters only date the step start; the charge is still
    integrated from the current.
    """
    if q_charge is None or q_discharge is None or step.null_count():
        return None
    new = step.ne(step.shift(1)).fill_null(True)
    starts = new.arg_true()
    later = starts.filter(starts > 0)
    if later.len() == 0 or q_charge.null_count() or q_discharge.null_count():
        return None
    at_start = (q_charge.gather(later) == 0) & (q_discharge.gather(later) == 0)
    moves = bool((q_charge != 0).any() or (q_discharge != 0).any())
    if not (moves and at_start.all()):
        return None
    return starts.gather(new.cast(pl.Int64).cum_sum() - 1)


def _step_source(path, raw: pl.DataFrame, roles: dict, first: int, conversions: list) -> str | None:
    """Which column becomes ``step_index``: Step ID, a legacy program-step Step Index, else Step Count."""
    if "step_id" in roles:
        return "step_id"
    if "step_index" in roles:
        i, name, _ = roles["step_index"]
        values = numbers(path, raw, f"c{i}", source_name=name, first_line_no=first, allow_empty=True)
        d = values.diff()
        # BDF defines Step Index as the 1-based point counter within a step (+1 per row, back to 1 at a new step);
        # older writers (cellpy's BattMo export) put the program step there
        is_point_counter = bool(((d == 1) | (values == 1)).fill_null(True).all())
        if not is_point_counter:
            conversions.append(f"'{name}' holds program step numbers (not BDF's within-step point counter): "
                               "-> step_index")
            return "step_index"
        conversions.append(f"'{name}' is BDF's within-step point counter: not used as step_index")
    if "step_count" in roles:
        return "step_count"
    return None


def _inverted_sign(current: pl.Series, step_type: pl.Series | None, q_charge, q_discharge) -> str | None:
    """Why the file's current is positive on discharge, or None when it follows BDF (+ = charge)."""
    moving = current.abs() > 0
    if step_type is not None:
        dis = (step_type == "discharge") & moving
        chg = (step_type == "charge") & moving
        n_dis, n_chg = int(dis.sum()), int(chg.sum())
        if n_dis + n_chg:
            wrong = int((dis & (current > 0)).sum()) + int((chg & (current < 0)).sum())
            if wrong > 0.5 * (n_dis + n_chg):
                return f"{wrong} of {n_dis + n_chg} charge/discharge rows carry the opposite sign in 'Step Type'"
            return None
    if q_discharge is not None:
        # only intervals with one direction throughout: where the current changes sign, an integrated counter may
        # grow either way (a trapezoid of -2 A then +1 A discharges)
        steady = (current * current.shift(1) > 0).fill_null(False)
        growing = (q_discharge.diff() > 0).fill_null(False) & steady
        if growing.any() and int((growing & (current > 0)).sum()) > 0.5 * int(growing.sum()):
            return "the discharge capacity grows while the current is positive"
    return None


FORMATS = {"bdf-csv": read_bdf_csv}
