from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, shared
from hypothesis import given
from hypothesis import strategies as st

from releaf import ocv


def test_packaged_table_regenerates_from_the_real_hppc_file():
    path = shared("ornl-leaf", "cell-low-current-hppc-25c-2.csv")
    spec = importlib.util.spec_from_file_location("derive_leaf_ocv", REPO / "scripts" / "derive_leaf_ocv.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    text = script.render(*script.derive(path))
    packaged = (REPO / "src" / "releaf" / "profiles_data" / "leaf_cell_ocv_25C.csv").read_text()
    assert text == packaged


def test_table_endpoints_are_the_cell_window():
    soc, v = ocv.load_ocv_table()
    assert soc[0] == 0 and soc[-1] == 100
    assert 3.0 <= v[0] < 3.1 and 4.15 < v[-1] <= 4.2


@given(st.floats(0, 100))
def test_inverse_round_trip(soc_pct):
    assert ocv.soc_pct_at_ocv(ocv.ocv_V(soc_pct)) == pytest.approx(soc_pct, abs=1e-9)


def test_mean_ocv_against_dense_numeric_integral():
    s = np.linspace(10, 90, 200001)
    dense = np.trapezoid(ocv.ocv_V(s), s) / 80
    assert ocv.mean_ocv_V(10, 90) == pytest.approx(dense, rel=1e-7)


def test_unknown_table_is_a_clear_error():
    with pytest.raises(Exception, match="no packaged OCV table"):
        ocv.load_ocv_table("nope")


def test_packaged_file_exists_in_package():
    assert Path(ocv.__file__).with_name("profiles_data").joinpath("leaf_cell_ocv_25C.csv").is_file()
