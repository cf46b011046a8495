from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, shared
from hypothesis import given
from hypothesis import strategies as st

from releaf.models import ocv
from releaf.parameters import LEAF_CELL

LEAF = LEAF_CELL.ocv_table


def test_packaged_table_regenerates_from_the_real_hppc_and_c15_files():
    folder = shared("ornl-leaf")
    spec = importlib.util.spec_from_file_location("derive_leaf_ocv", REPO / "scripts" / "derive_leaf_ocv.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    text = script.render(*script.derive(folder))
    packaged = (REPO / "src" / "releaf" / "parameters" / "leaf-24kwh" / "leaf_cell_ocv_25C.csv").read_text()
    assert text == packaged


def test_table_endpoints_are_the_cell_window():
    soc, v = ocv.load_ocv_table()
    assert soc[0] == 0 and soc[-1] == 100
    # 0 %: above the 1 h rests at 3.07 V that the 10/40 degC files reach below their own 0 %, below the 6 % rest
    assert 3.07 < v[0] < 3.25 and 4.15 < v[-1] <= 4.2
    assert soc.size > 100 and np.max(np.diff(soc)) <= 1.2 and np.max(np.diff(soc[soc <= 10])) <= 0.6


def test_table_passes_through_the_hppc_rest_points():
    # independent: the rested voltages found by releaf.diagnostics.hppc in the 25 degC HPPC file
    import releaf.io
    from releaf.diagnostics import hppc

    ts = releaf.io.read(shared("ornl-leaf", "cell-low-current-hppc-25c-2.csv"))
    firsts = hppc.hppc_table(ts).group_by("level", maintain_order=True).first()
    np.testing.assert_allclose(ocv.ocv_V(firsts["soc_pct"].to_numpy(), LEAF), firsts["rest_voltage_V"].to_numpy(),
                               atol=1.5e-3)


def test_c15_pseudo_ocv_alone_is_within_a_few_mV_of_the_rest_points():
    # the C/15 charge/discharge average, before anchoring, against the HPPC rests it covers (6-58 %)
    spec = importlib.util.spec_from_file_location("derive_leaf_ocv", REPO / "scripts" / "derive_leaf_ocv.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rests, cap, _ = script.hppc_rest_points(shared("ornl-leaf", "cell-low-current-hppc-25c-2.csv"))
    p_soc, p_v, info = script.pseudo_ocv(shared("ornl-leaf", "cell-cycling-10c-24c-40c.csv"), cap)
    covered = [(s, v) for s, v in rests if info["cc_top_pct"] >= s >= p_soc[0]]
    assert len(covered) >= 5
    for s, v in covered:
        assert abs(np.interp(s, p_soc, p_v) - v) < 8e-3


@given(st.floats(0, 100))
def test_inverse_round_trip(soc_pct):
    assert ocv.soc_pct_at_ocv(ocv.ocv_V(soc_pct, LEAF), LEAF) == pytest.approx(soc_pct, abs=1e-9)


def test_mean_ocv_against_dense_numeric_integral():
    s = np.linspace(10, 90, 200001)
    dense = np.trapezoid(ocv.ocv_V(s, LEAF), s) / 80
    assert ocv.mean_ocv_V(10, 90, LEAF) == pytest.approx(dense, rel=1e-7)


def test_unknown_table_is_a_clear_error():
    with pytest.raises(Exception, match="no packaged OCV table"):
        ocv.load_ocv_table("nope")


def test_packaged_file_exists_in_package():
    assert Path(ocv.__file__).parents[1].joinpath("parameters", "leaf-24kwh", "leaf_cell_ocv_25C.csv").is_file()
