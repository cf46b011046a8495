"""Arbin .res (Jet/Access database) reader.

The reader decodes the big tables with numpy from access-parser's page and column definitions; the reference here
is access-parser's own row-by-row decoder (independent code) and values printed by mdbtools' ``mdb-export``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from access_parser import AccessParser
from conftest import shared

from releaf.errors import InputFileError
from releaf.io import arbin_res, detect, read


@pytest.fixture(scope="module")
def res_path():
    return shared("cycler-formats", "cellpy", "20160805_test001_45_cc_01.res")


@pytest.fixture(scope="module")
def row_decoded(res_path):
    """Channel_Normal_Table as access-parser decodes it, row by row in Python (~1.4 s)."""
    return AccessParser(str(res_path)).parse_table("Channel_Normal_Table")


def test_numpy_decoder_equals_access_parser_row_decoder(res_path, row_decoded):
    fast = arbin_res.decode_fixed_columns(AccessParser(str(res_path)), "Channel_Normal_Table")
    slow = row_decoded
    assert set(fast) == set(slow)
    for name, values in fast.items():
        np.testing.assert_array_equal(values, np.array(slow[name], dtype=np.float64), err_msg=name)


def test_res_values(res_path):
    assert detect(res_path) == "arbin-res"
    ts = read(res_path)
    assert ts.meta.format == "arbin-res" and ts.meta.vendor == "Arbin" and ts.data.height == 10261
    first, last = ts.data.row(0, named=True), ts.data.row(-1, named=True)
    # as printed by `mdb-export file.res Channel_Normal_Table` (mdbtools 1.0.0)
    assert first["test_time_s"] == pytest.approx(300.0104819316021, abs=1e-9)
    assert first["voltage_V"] == pytest.approx(3.0976174, abs=1e-7) and first["current_A"] == 0.0
    assert last["test_time_s"] == pytest.approx(859077.2406335169, abs=1e-9)
    assert last["current_A"] == pytest.approx(-0.00030420697, rel=1e-7)
    assert last["voltage_V"] == pytest.approx(0.2940689, abs=1e-7)
    assert (first["step_index"], first["cycle_index"], last["step_index"], last["cycle_index"]) == (1, 1, 10, 18)
    # a coin cell: sub-mA currents are still charge/discharge, not rest
    assert ts.data["current_A"].abs().max() < 1e-3
    assert set(ts.data["step_type"].unique()) == {"charge", "discharge", "rest"}
    # Global_Table test record travels with the table
    assert ts.meta.channel == "3" and ts.meta.header["test_name"] == "20160805_sic006_45_cc_01-01-003"
    assert ts.meta.header["start_datetime_local"] == "2016-08-05 16:16:23"


def test_res_net_capacity_counter(res_path, row_decoded):
    ts = read(res_path)
    raw = row_decoded
    net = np.array(raw["Charge_Capacity"]) - np.array(raw["Discharge_Capacity"])
    np.testing.assert_allclose(ts.data["vendor_capacity_Ah"].to_numpy(), net)


def test_damaged_and_foreign_files(res_path, tmp_path):
    cut = tmp_path / "cut.res"
    cut.write_bytes(res_path.read_bytes()[:300_000])
    assert detect(cut) == "arbin-res"
    with pytest.raises(InputFileError, match="truncated"):
        read(cut)
    cut.write_bytes(res_path.read_bytes()[:1_000_000 // 4096 * 4096])  # whole pages, tables cut off
    with pytest.raises(InputFileError):
        arbin_res.read_arbin_res(cut)
    text = tmp_path / "fake.res"
    text.write_text("not a database\n")
    with pytest.raises(InputFileError):
        arbin_res.read_arbin_res(text)
    with pytest.raises(InputFileError, match="no Test_ID 7"):
        arbin_res.read_arbin_res(res_path, test_id=7)


def test_auxiliary_channels_become_group_voltages_and_temperatures(monkeypatch):
    aux = {"Test_ID": np.ones(6), "Data_Point": np.array([1, 2, 1, 2, 1, 2.0]),
           "Auxiliary_Index": np.array([0, 0, 1, 1, 0, 0.0]), "Data_Type": np.array([0, 0, 0, 0, 1, 1.0]),
           "X": np.array([4.1, 4.0, 4.2, 4.1, 25.0, 25.5])}
    monkeypatch.setattr(arbin_res, "decode_fixed_columns", lambda db, name, cols=None: aux)

    class Db:
        catalog: dict = {}

    columns, notes = arbin_res._auxiliary(Db(), 1, pl.Series([1, 2]))
    got = {c.name: c.to_list() for c in columns}
    assert got == {"group_voltage_V_1": [4.1, 4.0], "group_voltage_V_2": [4.2, 4.1], "temperature_C_1": [25.0, 25.5]}
    assert len(notes) == 3
