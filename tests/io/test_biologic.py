"""BioLogic readers (.mpr via galvani, .mpt text, BT-Lab CSV) against independent parses of the raw files.

The ``.mpt`` files here are GENERATED from a real ``.mpr`` (galvani's parse of
``tests/fixtures/biologic/col_27_issue_74.mpr``) with the documented EC-Lab text-export header; no original
EC-Lab ``.mpt`` is in the shared data.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from conftest import shared
from galvani import BioLogic

from releaf.errors import InputFileError
from releaf.io import detect, read

COL27 = Path(__file__).parents[1] / "fixtures" / "biologic" / "col_27_issue_74.mpr"


def write_mpt(path: Path, columns: dict[str, np.ndarray], *, decimal: str = ".") -> Path:
    """An EC-Lab text export ("EC-Lab ASCII FILE", "Nb header lines : N", tab-separated, trailing tab)."""
    preamble = ["EC-Lab ASCII FILE", "", "", "Galvanostatic Cycling with Potential Limitation", "",
                "Run on channel : 1 (SN 1234)", "Acquisition started on : 07/28/2022 17:20:49.000"]
    lines = [*preamble, "\t".join(columns) + "\t"]
    lines[1] = f"Nb header lines : {len(lines)}"
    n = len(next(iter(columns.values())))
    for i in range(n):
        fields = [repr(float(v[i])) for v in columns.values()]
        lines.append("\t".join(f.replace(".", decimal) for f in fields) + "\t")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return path


def test_mpr_column_27_and_no_current_column():
    ts = read(COL27)
    raw = BioLogic.MPRfile(str(COL27)).data
    assert ts.meta.format == "biologic-mpr" and ts.data.height == len(raw) == 20
    # 3-electrode cell: the cell voltage is Ewe - Ece (column 27), not Ewe
    np.testing.assert_array_equal(ts.data["voltage_V"].to_numpy(), raw["Ewe-Ece/V"].astype(np.float64))
    np.testing.assert_array_equal(ts.data["test_time_s"].to_numpy(), raw["time/s"])
    # no I/mA in this file: the current is the recorded charge step over the time step
    current = ts.data["current_A"].to_numpy()
    galvanostatic = (raw["flags"] & 0x03) == 1  # mode bits: 1 galvanostatic, 3 rest
    assert current[0] == 0.0 and (current[~galvanostatic] == 0).all() and galvanostatic.sum() == 14
    np.testing.assert_allclose(current[galvanostatic], raw["control/mA"][galvanostatic] * 1e-3, rtol=2e-3)
    assert (current[galvanostatic] < 0).all() and ts.data["step_type"][-1] == "discharge"
    np.testing.assert_allclose(ts.data["vendor_capacity_Ah"].to_numpy(), raw["(Q-Qo)/mA.h"] * 1e-3)
    assert any("dq/mA.h" in c for c in ts.meta.conversions)
    assert ts.meta.header["start_datetime_local"].startswith("2022-07-28")


def test_mpr_half_cell_with_eis_rows_dropped():
    path = shared("cycler-formats", "cellpy", "biol.mpr")
    raw = BioLogic.MPRfile(str(path)).data
    ts = read(path)
    keep = raw["freq/Hz"] == 0
    assert ts.data.height == int(keep.sum()) == 23251
    np.testing.assert_array_equal(ts.data["current_A"].to_numpy(), raw["I/mA"][keep].astype(np.float64) * 1e-3)
    np.testing.assert_array_equal(ts.data["voltage_V"].to_numpy(), raw["Ewe/V"][keep].astype(np.float64))
    assert "310 impedance (EIS) rows with freq/Hz > 0 dropped" in ts.meta.conversions
    # + I (anodic at the working electrode) raises Ewe: charge in releaf's convention, no sign change
    charging = ts.data.filter(ts.data["current_A"] > 1e-4)
    assert charging["voltage_V"].diff().drop_nulls().mean() > 0


def test_mpt_generated_from_the_mpr_gives_the_same_table(tmp_path):
    raw = BioLogic.MPRfile(str(COL27)).data
    columns = {n: raw[n] for n in ("time/s", "control/mA", "Ewe-Ece/V", "Ewe/V", "Ece/V", "dq/mA.h",
                                   "(Q-Qo)/mA.h", "Ns")}
    mpt = write_mpt(tmp_path / "col27.mpt", columns)
    assert detect(mpt) == "biologic-mpt"
    from_text, from_binary = read(mpt), read(COL27)
    np.testing.assert_allclose(from_text.data["voltage_V"].to_numpy(), from_binary.data["voltage_V"].to_numpy())
    np.testing.assert_allclose(from_text.data["current_A"].to_numpy(), from_binary.data["current_A"].to_numpy())
    np.testing.assert_array_equal(from_text.data["step_index"].to_numpy(), raw["Ns"])
    assert from_text.meta.channel == "1 (SN 1234)"
    comma = read(write_mpt(tmp_path / "comma.mpt", columns, decimal=","))
    assert comma.data.equals(from_text.data)


def test_mpt_with_a_current_column_and_eis_only(tmp_path):
    t = np.arange(5.0)
    ts = read(write_mpt(tmp_path / "cc.mpt", {"time/s": t, "Ewe/V": 3.7 + 0.01 * t, "I/mA": np.full(5, 250.0),
                                              "cycle number": np.ones(5)}))
    np.testing.assert_allclose(ts.data["current_A"].to_numpy(), 0.25)
    assert ts.data["cycle_index"].to_list() == [1] * 5
    eis = write_mpt(tmp_path / "peis.mpt", {"freq/Hz": np.logspace(5, 0, 5), "Re(Z)/Ohm": t, "-Im(Z)/Ohm": t,
                                            "time/s": t, "<Ewe>/V": np.full(5, 3.7), "<I>/mA": np.zeros(5)})
    with pytest.raises(InputFileError, match="impedance"):
        read(eis)


def test_mpt_errors(tmp_path):
    t = np.arange(5.0)
    good = write_mpt(tmp_path / "g.mpt", {"time/s": t, "Ewe/V": t + 3, "I/mA": t})
    lines = good.read_bytes().split(b"\r\n")
    bad = tmp_path / "bad.mpt"
    bad.write_bytes(b"\r\n".join(lines[:10] + [lines[10].replace(b"\t", b"\tx", 1)] + lines[11:]))
    with pytest.raises(InputFileError) as err:
        read(bad)
    assert err.value.line == 11 and err.value.column == "Ewe/V"
    short = tmp_path / "short.mpt"
    short.write_bytes(b"\r\n".join(lines[:5]))
    with pytest.raises(InputFileError, match="truncated"):
        read(short)


def test_bt_lab_csv_values_match_the_raw_file():
    path = shared("cycler-formats", "beep-TRI-AMDD", "test_loopsnewoutput_MB_CE1_short10k.csv")
    assert detect(path) == "biologic-csv"
    ts = read(path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    assert ts.meta.format == "biologic-csv" and ts.data.height == len(rows) == 9999
    np.testing.assert_array_equal(ts.data["voltage_V"].to_numpy(), [float(r["Ecell/V"]) for r in rows])
    np.testing.assert_allclose(ts.data["current_A"].to_numpy(), [float(r["I/mA"]) * 1e-3 for r in rows])
    stamps = [datetime.strptime(r["time/s"], "%m/%d/%Y %H:%M:%S.%f") for r in rows]
    np.testing.assert_allclose(ts.data["test_time_s"].to_numpy(), [(s - stamps[0]).total_seconds() for s in stamps])
    assert ts.data["cycle_index"].to_list() == [int(r["cycle number"]) for r in rows]
    # the .mpl log beside it gives the date order and the channel
    assert ts.meta.header["Time format"] == "Absolute MMDDYYYY" and ts.meta.channel == "E1 (SN 0600)"
    # BT-Lab I/mA > 0 on a full cell raises Ecell: charge, no sign change
    assert ts.data.filter(ts.data["current_A"] > 1)["step_type"].unique().to_list() == ["charge"]


def test_bt_lab_csv_errors(tmp_path):
    header = ";mode;time/s;Ecell/V;I/mA;Ns"
    rows = ["0;1;05/05/2021 15:36:22.757;3.8;0.0;0", "1;1;05/05/2021 15:36:23.757;3.9;2500.0;1"]
    path = tmp_path / "bt.csv"
    path.write_text("\n".join([header, *rows]))
    ts = read(path)
    np.testing.assert_allclose(ts.data["current_A"].to_numpy(), [0.0, 2.5])
    assert "no .mpl beside the file" in ts.meta.conversions[0]
    path.write_text("\n".join([header, rows[0], rows[1].replace("3.9", "3,9,")]))
    with pytest.raises(InputFileError) as err:
        read(path)
    assert err.value.line == 3 and err.value.column == "Ecell/V"
    path.write_text("\n".join([header, rows[0], rows[1].replace("15:36", "3pm")]))
    with pytest.raises(InputFileError) as err:
        read(path)
    assert err.value.line == 3 and err.value.column == "time/s"
    path.write_text("\n".join([header, rows[0], rows[1][:20]]))
    with pytest.raises(InputFileError, match="truncated"):
        read(path)


def test_damaged_mpr(tmp_path):
    data = COL27.read_bytes()
    cut = tmp_path / "cut.mpr"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="galvani could not read it"):
        read(cut)
