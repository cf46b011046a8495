"""Neware BTS exports: the CSV export and the binary ``.nda`` / ``.ndax`` files.

``neware-csv``: the BTS client's CSV export (``DataPoint, Cycle Index, Step Index, Step Type, Time, Cumulative
Time, Current(A), Voltage(V), Capacity(Ah), …, Chg. Cap.(Ah), DChg. Cap.(Ah), …, Date, …``). Parsed with polars;
hand-written column matching because Neware's headers vary between client versions (``Step Type`` / ``Step
Name``, ``Cumulative Time`` / ``Total Time``, ``Current(A)`` / ``Current(mA)``). ``Time`` is the time within the
step (it restarts at every step); ``Cumulative Time`` (``hh:mm:ss``, hours may exceed 24) is the test time.
Without a total-time column the test time is rebuilt from the step times.

``neware-nda``: binary ``.nda`` (``NEWARE`` magic) and ``.ndax`` (zip of XML settings and ``.ndc`` records). The
``.ndax`` records are decoded by fastnda (BSD-3, vectorised: ~5x NewareNDA's pure-Python decoder, equal values;
the tests compare with NewareNDA), ``.nda`` and the auxiliary ``.ndc`` files by NewareNDA. The step time restarts
at every step: the test time is rebuilt from it step by step. Auxiliary channels are matched to ``TestInfo.xml``
here rather than by NewareNDA or fastnda,
whose sorting of the ``data_AUX_<chl>_<type-100>_<n>.ndc`` names by number gives a channel the wrong label (in
the IFE BTS 8.5 sample it labels the all-zero auxiliary voltage ``T1``): a file is matched to the ``Aux`` entry
whose ``RealChlID`` and ``ChlType − 100`` its name carries. ``ChlType`` 103 (temperature) becomes
``temperature_C_k``, 102 (auxiliary voltage) ``group_voltage_V_k`` unless it reads 0 throughout (no sensor);
other types (e.g. 1122, which follows the chamber set-point) are listed in the metadata and not read.

Sign: Neware writes current < 0 on discharge (releaf's convention). If a file holds magnitudes only (every current
≥ 0 although discharge steps exist), the sign is taken from the step type and the metadata says so.

References
----------
Neware BTS 8 client manual, data export. NewareNDA, https://github.com/d-cogswell/NewareNDA (Apache-2.0).
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from pathlib import Path

import polars as pl

from releaf.errors import InputFileError
from releaf.io import textfile, units
from releaf.io.optional import require
from releaf.schema import SourceMeta, TimeSeries, rest_threshold_A, step_type_from_current, validate

# normalised column name (lower case, no spaces, underscores or dots, unit split off) -> role
_CSV_ROLES = {
    "datapoint": "point", "recordid": "point", "recordindex": "point",
    "cycleindex": "cycle", "cycleid": "cycle", "stepindex": "step", "stepid": "step",
    "steptype": "step_type", "stepname": "step_type", "status": "step_type",
    "time": "step_time", "steptime": "step_time", "relativetime": "step_time",
    "cumulativetime": "total_time", "totaltime": "total_time",
    "current": "current", "voltage": "voltage",
    "chgcap": "chg_cap", "chargecapacity": "chg_cap", "dchgcap": "dchg_cap", "dischargecapacity": "dchg_cap",
    "chgenergy": "chg_energy", "chargeenergy": "chg_energy", "dchgenergy": "dchg_energy",
    "dischargeenergy": "dchg_energy", "date": "date", "realtime": "date", "absolutetime": "date",
    "temperature": "temperature", "t1": "temperature",
}
# role -> dimension (releaf.io.units); a name without a unit is in the canonical one
_DIMENSIONS = {"step": "count", "cycle": "count", "current": "current", "voltage": "voltage", "chg_cap": "charge",
               "dchg_cap": "charge", "chg_energy": "energy", "dchg_energy": "energy", "temperature": "temperature"}
# the binary files' fixed units (NewareNDA's and fastnda's columns): mA, mAh, mWh
_MA, _MAH, _MWH = (units.conversion(u, d)[0] for u, d in (("mA", "current"), ("mAh", "charge"), ("mWh", "energy")))
_CLOCK = r"^(?:(\d+)-)?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)$"  # [d-]hh:mm:ss[.fff], hours may exceed 24
AUX_TEMPERATURE, AUX_VOLTAGE = "103", "102"


def _key(name: str) -> tuple[str, str | None]:
    """Lower-case name without spaces, underscores or dots, and the unit in parentheses (lower case)."""
    base, unit = units.split_unit(name, styles=("()",))
    return re.sub(r"[\s_.]+", "", base.lower()), (unit.lower() or None) if unit is not None else None


def sniff(head: textfile.Head) -> str | None:
    """``neware-csv``, ``neware-nda`` or None, from the first bytes of a file."""
    if head.raw.startswith(b"NEWARE"):
        return "neware-nda"
    if head.raw.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(head.path) as zf:
                names = set(zf.namelist())
        except (zipfile.BadZipFile, OSError):  # a cut-short .ndax still shows its member names up front
            return "neware-nda" if b"data.ndc" in head.raw or b"TestInfo.xml" in head.raw else None
        return "neware-nda" if "data.ndc" in names else None
    if head.is_binary:
        return None
    roles = {_CSV_ROLES.get(_key(n)[0]) for n in head.first_line.split(",")}
    if {"point", "step_type", "current", "voltage"} <= roles and roles & {"chg_cap", "dchg_cap", "total_time"}:
        return "neware-csv"
    return None




def step_type_from_status(status: pl.Expr, current_A: pl.Expr, threshold_A: float = 1e-3) -> pl.Expr:
    """``charge`` / ``discharge`` / ``rest`` from Neware's step type (``CC Chg``, ``CC_DChg``, ``Rest``, …),
    else from the current's sign (``Control``, ``SIM``, ``Pause``, …)."""
    s = status.str.to_lowercase()
    return (
        pl.when(s.str.contains(r"(^|[\s_])dchg")).then(pl.lit("discharge"))
        .when(s.str.contains(r"(^|[\s_])chg")).then(pl.lit("charge"))
        .when(s.is_in(["rest", "ocv"])).then(pl.lit("rest"))
        .otherwise(step_type_from_current(current_A, threshold_A))
    )


def total_time_from_step_time(step_time_s: pl.Series, step: pl.Series | None = None) -> pl.Series:
    """Test time [s] from a step time that restarts at every step: each step is shifted by the summed lengths
    (last step time) of the steps before it. A new step starts where ``step`` changes or the step time falls."""
    new = (step_time_s.diff() < 0).fill_null(False)
    if step is not None:
        new = new | (step != step.shift(1)).fill_null(False)
    run = new.cast(pl.Int64).cum_sum()
    ends = pl.DataFrame({"run": run, "t": step_time_s}).group_by("run", maintain_order=True).agg(pl.col("t").last())
    offsets = ends["t"].cum_sum().shift(1, fill_value=0.0)
    return (step_time_s + offsets.gather(run)).alias("test_time_s")


def _clock_seconds(path, raw: pl.Series, name: str, first_line_no: int, unit: str | None) -> pl.Series:
    text = raw.str.strip_chars()
    if unit not in (None, "hh:mm:ss", "h:min:s.ms", "h:mm:ss", "hh:mm:ss.ms") and \
            (scale := units.conversion(unit, "time")) is not None:
        seconds = textfile.to_float(path, raw.to_frame("c"), "c", source_name=name, first_line_no=first_line_no)
        return units.apply(seconds, *scale)
    parts = text.str.extract_groups(_CLOCK)
    seconds = (parts.struct.field("1").cast(pl.Float64).fill_null(0.0) * 86400
               + parts.struct.field("2").cast(pl.Float64) * 3600
               + parts.struct.field("3").cast(pl.Float64) * 60 + parts.struct.field("4").cast(pl.Float64))
    bad = seconds.is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InputFileError(path, f"text {text[i]!r} where a time hh:mm:ss was expected",
                               line=first_line_no + i, column=name)
    return seconds


def _signed_by_step_type(current_A: pl.Series, step_type: pl.Series, conversions: list, source: str) -> pl.Series:
    discharge = step_type == "discharge"
    if discharge.any() and (current_A >= 0).all() and (current_A.filter(discharge) > 0).any():
        conversions.append(f"'{source}' holds magnitudes: sign taken from the step type (discharge -> negative)")
        return pl.when(discharge).then(-current_A).otherwise(current_A)
    return current_A


def read_neware_csv(path) -> TimeSeries:
    """Read a Neware BTS CSV export into the canonical table.

    Parameters
    ----------
    path : path of the CSV export

    Returns
    -------
    TimeSeries with ``test_time_s`` [s, from ``Cumulative Time``], ``voltage_V`` [V], ``current_A`` [A, + =
    charge], ``step_index``, ``cycle_index``, ``step_time_s`` [s, ``Time``], ``step_type`` (from ``Step Type``),
    ``vendor_capacity_Ah`` [Ah, ``Chg. Cap.`` − ``DChg. Cap.``], ``vendor_energy_Wh`` [Wh], ``temperature_C``
    [degC] where present. The
    ``Date`` column is local wall-clock time without a zone: it is kept in the metadata (first and last
    sample), not as ``datetime``.

    Raises
    ------
    InputFileError
        missing columns, a line with the wrong number of fields, a non-number or a malformed time.
    """
    path = Path(path)
    data = textfile.read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = textfile.split_lines(data)
    header = lines[0].decode("utf-8", errors="replace").split(",")
    if sniff(textfile.Head(path, lines[0], lines[0].decode("latin-1"))) != "neware-csv":
        raise InputFileError(path, "not a Neware CSV export: the header needs DataPoint, Step Type, Current, "
                                     "Voltage and Cumulative Time or Chg./DChg. Cap. columns", line=1)
    body = lines[1:]
    if not body:
        raise InputFileError(path, "header but no data rows", line=1)
    textfile.check_field_counts(path, body, 2, len(header))
    cols = [f"c{i}" for i in range(len(header))]
    raw = textfile.frame_from_lines(path, body, cols)
    found: dict[str, tuple[str, str, str | None]] = {}
    for c, name in zip(cols, header, strict=True):
        base, unit = _key(name)
        if base in _CSV_ROLES:
            found.setdefault(_CSV_ROLES[base], (c, name.strip(), unit))
    units_found, conversions = {}, []

    def num(role: str, *, allow_empty: bool = False) -> pl.Series:
        c, name, unit = found[role]
        scale = units.resolve(path, name, unit, _DIMENSIONS[role], units_found=units_found,
                              conversions=conversions, vendor="Neware")
        values = textfile.to_float(path, raw, c, source_name=name, first_line_no=2, allow_empty=allow_empty)
        return units.apply(values, *scale)

    for role in ("current", "voltage"):
        if role not in found:
            raise InputFileError(path, f"no {role} column in the header", line=1)
    columns = {"voltage_V": num("voltage"), "current_A": num("current")}
    for role, target in (("step", "step_index"), ("cycle", "cycle_index")):
        if role in found:
            columns[target] = num(role).cast(pl.Int64)
    step_time = None
    if "step_time" in found:
        c, name, unit = found["step_time"]
        step_time = _clock_seconds(path, raw[c], name, 2, unit)
        units_found[name] = unit or "hh:mm:ss"
    if "total_time" in found:
        c, name, unit = found["total_time"]
        columns["test_time_s"] = _clock_seconds(path, raw[c], name, 2, unit)
        units_found[name] = unit or "hh:mm:ss"
    elif step_time is not None:
        columns["test_time_s"] = total_time_from_step_time(step_time, columns.get("step_index"))
        conversions.append(f"test_time_s rebuilt from the step time '{found['step_time'][1]}' (no total-time "
                           "column)")
    else:
        raise InputFileError(path, "no time column (Cumulative Time, Total Time or Time) in the header", line=1)
    if step_time is not None:
        columns["step_time_s"] = step_time.alias("step_time_s")
    if "chg_cap" in found and "dchg_cap" in found:
        columns["vendor_capacity_Ah"] = num("chg_cap", allow_empty=True) - num("dchg_cap", allow_empty=True)
    if "chg_energy" in found and "dchg_energy" in found:
        columns["vendor_energy_Wh"] = num("chg_energy", allow_empty=True) - num("dchg_energy", allow_empty=True)
    if "temperature" in found:
        columns["temperature_C"] = num("temperature", allow_empty=True)
    df = pl.DataFrame(columns)
    if "step_type" in found:
        status = raw[found["step_type"][0]].str.strip_chars()
        df = df.with_columns(step_type_from_status(pl.lit(status), pl.col("current_A"),
                                                  rest_threshold_A(df["current_A"])).alias("step_type"))
    else:
        df = df.with_columns(step_type_from_current(pl.col("current_A"), rest_threshold_A(df["current_A"]))
                             .alias("step_type"))
    df = df.with_columns(_signed_by_step_type(df["current_A"], df["step_type"], conversions,
                                              found["current"][1]).alias("current_A"))
    record = {}
    if "date" in found:
        dates = raw[found["date"][0]].str.strip_chars()
        record = {"start_datetime_local": dates[0], "end_datetime_local": dates[-1]}
    df = df.select("test_time_s", *(c for c in df.columns if c != "test_time_s"))
    meta = SourceMeta(path=str(path), sha256=textfile.sha256_of(path), format="neware-csv", vendor="Neware",
                      units_found=units_found, conversions=tuple(conversions), header=record)
    return validate(TimeSeries(df, meta), line_of_row=lambda i: 2 + i)


def read_neware_nda(path) -> TimeSeries:
    """Read a Neware ``.nda`` or ``.ndax`` binary file into the canonical table (via NewareNDA).

    Parameters
    ----------
    path : path of the binary file (the kind is judged by its content, not its extension)

    Returns
    -------
    TimeSeries with ``test_time_s`` [s, summed step times], ``voltage_V`` [V], ``current_A`` [A, + = charge],
    ``step_index`` (program step), ``cycle_index`` (as the cycler wrote it), ``step_time_s`` [s], ``step_type``
    (from the status),
    ``datetime`` [UTC, ``.ndax`` only, where the file stores a Unix time], ``vendor_capacity_Ah`` [Ah],
    ``vendor_energy_Wh`` [Wh], ``temperature_C`` / ``temperature_C_k`` [degC] from auxiliary temperature channels.
    NewareNDA keeps values as float32 (times to ~1/64 s at 250 000 s).

    Raises
    ------
    InputFileError
        a damaged, truncated or empty file.
    ConfigError
        NewareNDA (or, for ``.ndax``, fastnda) is not installed (``pip install 'releaf[neware]'``).
    """
    path = Path(path)
    require("NewareNDA", path=path, format="neware-nda")
    from NewareNDA.NewareNDA import read_nda

    textfile.read_bytes(path)  # clear error for a missing or empty file
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        require("fastnda", path=path, format="neware-nda")
    with open(path, "rb") as f:
        if not is_zip and f.read(4) == b"PK\x03\x04":
            raise InputFileError(path, "a damaged or truncated .ndax (zip) file: its member list cannot be read")
    conversions = ["'Current(mA)' x 0.001 -> A", "'Charge/Discharge_Capacity(mAh)' x 0.001 -> Ah (net)",
                   "'Charge/Discharge_Energy(mWh)' x 0.001 -> Wh (net)",
                   "test_time_s = step time 'Time' summed over steps"]
    try:
        if is_zip:
            fast = _read_ndax_fast(path, conversions)
            pdf = None
        else:
            pdf = read_nda(str(path), software_cycle_number=False)
    except Exception as err:  # the decoders raise bare ValueError/KeyError/struct.error/NotImplementedError
        raise InputFileError(path, f"could not be read as a Neware .{'ndax' if is_zip else 'nda'} "
                                     f"file: {type(err).__name__}: {err}") from None
    if (fast.height if is_zip else len(pdf)) == 0:
        raise InputFileError(path, "no data records in the Neware file")
    if is_zip:
        nda = pl.DataFrame({
            "Index": fast["index"], "Cycle": fast["cycle_count"], "Step": fast["step_count"],
            "Step_Index": fast["step_index"], "Status": fast["step_type"].cast(pl.String),
            "Time": fast["step_time_s"], "Voltage": fast["voltage_V"], "Current(mA)": fast["current_mA"],
        })
        net_Ah, net_Wh = fast["capacity_mAh"].cast(pl.Float64) * _MAH, fast["energy_mWh"].cast(pl.Float64) * _MWH
    else:
        base_cols = ["Index", "Cycle", "Step", "Step_Index", "Status", "Time", "Voltage", "Current(mA)",
                     "Charge_Capacity(mAh)", "Discharge_Capacity(mAh)", "Charge_Energy(mWh)", "Discharge_Energy(mWh)"]
        nda = pl.from_pandas(pdf[base_cols].astype({"Status": str}))
        net_Ah = (nda["Charge_Capacity(mAh)"].cast(pl.Float64) - nda["Discharge_Capacity(mAh)"].cast(pl.Float64)) * _MAH
        net_Wh = (nda["Charge_Energy(mWh)"].cast(pl.Float64) - nda["Discharge_Energy(mWh)"].cast(pl.Float64)) * _MWH
    step_time = nda["Time"].cast(pl.Float64)
    df = pl.DataFrame({
        "test_time_s": total_time_from_step_time(step_time, nda["Step"].cast(pl.Int64)),
        "voltage_V": nda["Voltage"].cast(pl.Float64),
        "current_A": nda["Current(mA)"].cast(pl.Float64) * _MA,
        "step_index": nda["Step_Index"].cast(pl.Int64),
        "cycle_index": nda["Cycle"].cast(pl.Int64),
        "step_time_s": step_time,
        "vendor_capacity_Ah": net_Ah,
        "vendor_energy_Wh": net_Wh,
    })
    df = df.with_columns(step_type_from_status(pl.lit(nda["Status"]), pl.col("current_A"),
                                                  rest_threshold_A(df["current_A"])).alias("step_type"))
    df = df.with_columns(_signed_by_step_type(df["current_A"], df["step_type"], conversions, "Current(mA)")
                         .alias("current_A"))
    header = {}
    if is_zip:  # the .ndax stores a Unix time
        df = df.with_columns((fast["unix_time_s"] * 1e6).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))
                             .alias("datetime"))
    else:
        stamp = pdf["Timestamp"]
        if getattr(stamp.dt, "tz", None) is not None:
            df = df.with_columns(pl.from_pandas(stamp.dt.tz_convert("UTC")).dt.cast_time_unit("us")
                                 .alias("datetime"))
        else:  # .nda: the tester's local wall clock, no zone
            header["start_datetime_local"] = str(stamp.iloc[0])
    if is_zip:
        aux, aux_notes, info = _ndax_aux(path, nda["Index"])
        df = df.with_columns(aux)
        conversions += aux_notes
        header.update(info)
    else:
        df = df.with_columns(_nda_aux(pdf, conversions))
    if "temperature_C" not in df.columns and "temperature_C_1" in df.columns:
        df = df.with_columns(pl.col("temperature_C_1").alias("temperature_C"))
    meta = SourceMeta(path=str(path), sha256=textfile.sha256_of(path), format="neware-nda", vendor="Neware",
                      channel=header.get("channel"),
                      units_found={"Time": "s (step time)", "Voltage": "V", "Current(mA)": "mA",
                                   "Charge_Capacity(mAh)": "mAh", "Charge_Energy(mWh)": "mWh"},
                      conversions=tuple(conversions), header=header)
    return validate(TimeSeries(df, meta), line_of_row=lambda i: i + 1)


def _read_ndax_fast(path: Path, conversions: list[str]) -> pl.DataFrame:
    """The main records of an ``.ndax`` decoded by fastnda (vectorised; about 5x NewareNDA's Python decoder).

    Values equal NewareNDA's (voltage, current, step time, step, cycle exactly; capacity and energy to float32).
    fastnda's own auxiliary columns are not used: like NewareNDA it attaches the aux files to channels by sort
    order, which mislabels this vendor's files (see :func:`_ndax_aux`). Its warnings (e.g. the wall clock
    jumping backwards) are kept in ``conversions`` instead of being printed.
    """
    import logging

    import fastnda

    class _Keep(logging.Handler):
        def emit(self, record):
            conversions.append(f"fastnda: {record.getMessage()}")

    logger = logging.getLogger("fastnda")
    handler, propagate = _Keep(), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        return fastnda.read(str(path), cycle_mode="raw")
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _nda_aux(pdf, conversions: list) -> list[pl.Series]:
    """``T<k>`` / ``V<k>`` columns NewareNDA reads from ``.nda`` records (the aux id is in each record)."""
    out = []
    for name in pdf.columns:
        m = re.fullmatch(r"([TV])(\d+)", str(name))
        if not m:
            continue
        values = pl.from_pandas(pdf[name]).cast(pl.Float64)
        if m.group(1) == "V" and (values.fill_null(0.0) == 0).all():
            conversions.append(f"aux voltage '{name}' reads 0 throughout (no sensor): not read")
            continue
        target = "temperature_C_" if m.group(1) == "T" else "group_voltage_V_"
        out.append(values.alias(target + m.group(2)))
    return out


def _ndax_aux(path: Path, index: pl.Series) -> tuple[list[pl.Series], list[str], dict[str, str]]:
    """Auxiliary channels of an ``.ndax``, each file matched to its ``TestInfo.xml`` entry by name."""
    import xml.etree.ElementTree as ET

    from NewareNDA.NewareNDAx import read_ndc

    notes, info, out = [], {}, []
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        entries = []
        if "TestInfo.xml" in names:
            try:
                root = ET.fromstring(zf.read("TestInfo.xml").decode("gb2312", errors="replace")
                                     .replace('encoding="GB2312"', ""))
            except ET.ParseError:
                root = None
            test = root.find("config/TestInfo") if root is not None else None
            if test is not None:
                info = {k: test.attrib[k] for k in ("DevID", "UnitID", "ChlID", "StartTime", "StepName")
                        if k in test.attrib}
                info["channel"] = "-".join(test.attrib.get(k, "?") for k in ("DevID", "UnitID", "ChlID"))
                entries = [e.attrib for e in test if e.tag.startswith("Aux")]
        counts = {AUX_TEMPERATURE: 0, AUX_VOLTAGE: 0}
        with tempfile.TemporaryDirectory() as tmp:
            for fname in sorted(n for n in names if re.fullmatch(r"data_AUX_\d+_\d+_\d+\.ndc", n)):
                chl, kind, _ = map(int, re.findall(r"\d+", fname))
                match = [e for e in entries if e.get("RealChlID") == str(chl)
                         and e.get("ChlType", "").isdigit() and int(e["ChlType"]) - 100 == kind]
                if len(match) != 1:
                    notes.append(f"aux file {fname}: no single TestInfo.xml entry matches; not read")
                    continue
                chl_type = match[0]["ChlType"]
                if chl_type not in counts:
                    notes.append(f"aux file {fname} (ChlType {chl_type}, type not known to releaf): not read")
                    continue
                try:
                    aux = read_ndc(zf.extract(fname, path=tmp))
                except Exception as err:  # NewareNDA: NotImplementedError for unknown ndc versions, struct.error
                    raise InputFileError(path, f"auxiliary file {fname}: NewareNDA could not read it: "
                                                 f"{type(err).__name__}: {err}") from None
                value_col = next((c for c in ("?", "T", "V") if c in aux.columns), None)
                if value_col is None or "Index" not in aux.columns:
                    notes.append(f"aux file {fname}: no values found; not read")
                    continue
                values = pl.from_pandas(aux[["Index", value_col]]).rename({value_col: "v"})
                joined = pl.DataFrame({"Index": index}).join(values.unique("Index", keep="first"), on="Index",
                                                             how="left")["v"].cast(pl.Float64)
                if chl_type == AUX_VOLTAGE and (joined.fill_null(0.0) == 0).all():
                    notes.append(f"aux file {fname} (ChlType {chl_type}, voltage) reads 0 throughout "
                                 f"(no sensor): not read")
                    continue
                counts[chl_type] += 1
                target = ("temperature_C_" if chl_type == AUX_TEMPERATURE else "group_voltage_V_")
                target += str(counts[chl_type])
                notes.append(f"aux file {fname} (RealChlID {chl}, ChlType {chl_type}) -> {target}")
                out.append(joined.alias(target))
    return out, notes, info


FORMATS = {"neware-csv": read_neware_csv, "neware-nda": read_neware_nda}
