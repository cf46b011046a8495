"""A user's own battery as a parameter-set YAML file: loaded, used by the diagnosis, accepted by the CLI.

The example is a real non-Leaf cell: TRI's PreDiag Maccor file (a C/7 discharge 4.2 -> 2.7 V from a CC-CV charge,
then a C/7 CC-CV charge), with the parameter set in tests/fixtures/parameters/ (illustrative numbers, the OCV
table derived from the same file by scripts/derive_example_cell_ocv.py).
"""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest
from conftest import REPO, shared

from releaf.diagnostics import diagnose
from releaf.io import read
from releaf.parameters import LEAF_CELL, battery_profile

FIXTURES = REPO / "tests" / "fixtures" / "parameters"
EXAMPLE = FIXTURES / "tri-prediag-cell.yaml"
PREDIAG = ("cycler-formats", "beep-TRI-AMDD", "PreDiag_000229_000229_truncated.034")


def test_example_set_loads_with_its_own_ocv_table():
    p = battery_profile(str(EXAMPLE))
    assert (p.name, p.series_groups, p.parallel_cells) == ("tri-prediag-cell", 1, 1)
    assert (p.nominal_capacity_Ah, p.group_v_min_V, p.group_v_max_V) == (4.84, 2.7, 4.2)
    assert "ILLUSTRATIVE" in p.source and p.soh_model is None
    assert p.ocv_table.name == "tri-prediag-cell-ocv" and "ILLUSTRATIVE" in p.ocv_table.source  # the CSV header
    assert p.ocv_table.soc_pct[0] == 0.0 and p.ocv_table.ocv_V[-1] == 4.2
    assert battery_profile(EXAMPLE) is p  # read once while the file is unchanged


def test_example_ocv_table_regenerates_from_the_real_file():
    spec = importlib.util.spec_from_file_location("derive_example_cell_ocv",
                                                  REPO / "scripts" / "derive_example_cell_ocv.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = shared(*PREDIAG)
    assert script.render(path, *script.derive(path)) == (FIXTURES / "tri-prediag-cell-ocv.csv").read_text()


def test_the_docs_example_is_a_valid_set_with_another_top_of_charge(tmp_path):
    text = (REPO / "docs" / "parameter-sets.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(name: example-nmc-18650.*?)```", text, re.S).group(1)
    (tmp_path / "nmc.yaml").write_text(block)
    nmc = battery_profile(tmp_path / "nmc.yaml")
    assert (nmc.name, nmc.nominal_capacity_Ah, nmc.group_v_min_V) == ("example-nmc-18650", 3.0, 2.5)
    assert nmc.ocv_table.name == "example-nmc-18650-ocv"
    # its own window, not the Leaf's: a full charge of this cell reaches 3.95 V or more, its cut-off is 2.5 V
    assert nmc.full_charge_floor_V == pytest.approx(3.95) and nmc.module_cutoff_ceiling_V == pytest.approx(2.72)


def test_diagnose_a_non_leaf_cell_with_its_parameter_set():
    ts = read(shared(*PREDIAG))
    p = battery_profile(EXAMPLE)
    d = diagnose(ts, p)
    assert d.profile == "tri-prediag-cell" and d.ocv_table == "tri-prediag-cell-ocv" and d.series_groups == 1
    (dis,) = d.discharges
    assert dis.is_full and dis.start_voltage_V == pytest.approx(4.177, abs=1e-3)
    # the integral agrees with the cycler's own counter over the one-step discharge
    assert d.capacity_Ah == pytest.approx(dis.vendor_capacity_Ah, rel=1e-4)
    assert d.capacity_Ah == pytest.approx(4.7628, abs=1e-4)
    assert d.soh_pct == pytest.approx(100 * d.capacity_Ah / 4.84)
    assert d.warnings == ()
    # rest is judged on the file's own currents, not on C/100 of the profile's capacity: even under the Leaf
    # cell's profile (33.1 Ah) the CV tail of this 4.84 Ah cell's charge stays charge (it used to be swallowed,
    # giving 4.588 Ah against the counter's 4.763 Ah)
    leaf = diagnose(ts, LEAF_CELL)
    assert leaf.capacity_Ah == pytest.approx(dis.vendor_capacity_Ah, rel=1e-4)
    assert d.capacity_conditions.charge_end == "cv_taper" and d.capacity_conditions.end_reason == "voltage_limit"
    assert d.capacity_conditions.charge_voltage_V == pytest.approx(4.2, abs=0.01)


def test_a_discharge_without_its_charge_in_the_log_is_not_a_capacity():
    """The same real test cut in the middle of its discharge: no charge before it, so no capacity, and it says so."""
    ts = read(shared(*PREDIAG))
    own = battery_profile(EXAMPLE)
    v, step = ts.data["voltage_V"].to_numpy(), ts.data["step_index"].to_numpy()
    k = int(np.flatnonzero((step == 6) & (v < 4.1))[0])
    late = ts.with_data(ts.data.slice(k))
    for profile in (own, LEAF_CELL):
        d = diagnose(late, profile)
        assert d.capacity_Ah is None
        assert any("no charge before it in the log" in w for w in d.warnings)
