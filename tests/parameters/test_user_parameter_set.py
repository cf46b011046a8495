"""A user's own battery as a parameter-set YAML file: loaded, used by the diagnosis, accepted by the CLI.

The example is a real non-Leaf cell: TRI's PreDiag Maccor file (a C/7 discharge 4.2 -> 2.7 V from a CC-CV charge,
then a C/7 CC-CV charge), with the parameter set in tests/fixtures/parameters/ (illustrative numbers, the OCV
table derived from the same file by scripts/derive_example_cell_ocv.py).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re

import numpy as np
import pytest
from conftest import REPO, shared
from typer.testing import CliRunner

from releaf import parameters
from releaf.app.cli import app
from releaf.diagnostics import capacity, diagnose
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
    # the threshold comes from the table passed: the NMC's OCV at 90 % is not the Leaf's
    assert capacity.top_of_charge_voltage_V(1, nmc.ocv_table) == pytest.approx(4.09)
    assert capacity.top_of_charge_voltage_V(1, LEAF_CELL.ocv_table) == pytest.approx(4.0882)


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
    # the Leaf cell's parameters misread this cell: C/100 of 33.1 Ah swallows the end of its CV charge, so the
    # discharge segment starts before it and the net charge falls short of the cycler's counter
    leaf = diagnose(ts, LEAF_CELL)
    assert leaf.capacity_Ah < d.capacity_Ah - 0.05
    assert any("capacity counter" in w for w in leaf.warnings)


def test_top_of_charge_detection_uses_the_profiles_own_ocv():
    ts = read(shared(*PREDIAG))
    own = battery_profile(EXAMPLE)
    leaf_ocv = dataclasses.replace(own, ocv_table=LEAF_CELL.ocv_table)  # the same cell with the Leaf's OCV
    top_own = capacity.top_of_charge_voltage_V(1, own.ocv_table)
    top_leaf = capacity.top_of_charge_voltage_V(1, LEAF_CELL.ocv_table)
    assert top_leaf < top_own - 0.015  # 4.088 V vs 4.108 V
    # the real test from the first discharge sample below this cell's top of charge (but above the Leaf's)
    v, step = ts.data["voltage_V"].to_numpy(), ts.data["step_index"].to_numpy()
    k = int(np.flatnonzero((step == 6) & (v < top_own))[0])
    assert top_leaf < v[k] < top_own
    late = ts.with_data(ts.data.slice(k))
    d_own, d_leaf = diagnose(late, own), diagnose(late, leaf_ocv)
    # with its own OCV the cell is not full there: no capacity, and the warning quotes its own threshold
    assert d_own.capacity_Ah is None and d_own.ocv_table == "tri-prediag-cell-ocv"
    assert any(f"needs >= {top_own:.3f} V per group" in w for w in d_own.warnings)
    # the Leaf's OCV would take the same partial discharge for a capacity measurement
    assert d_leaf.capacity_Ah is not None and d_leaf.ocv_table == "leaf_cell_ocv_25C"
    assert d_leaf.capacity_Ah < 4.7628 - 0.1  # the first 2.4 % of the cell's charge is missing from it


def test_cli_diagnose_accepts_a_parameter_set_file():
    runner = CliRunner()
    result = runner.invoke(app, ["diagnose", str(shared(*PREDIAG)), "--profile", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    (rec,) = json.loads(result.stdout)
    assert rec["profile"] == "tri-prediag-cell" and rec["ocv_table"] == "tri-prediag-cell-ocv"
    assert rec["capacity_Ah"] == pytest.approx(4.7628, abs=1e-4)
    assert rec["soh_pct"] == pytest.approx(100 * 4.7628 / 4.84, abs=0.01)


def test_cli_names_file_and_key_of_a_bad_parameter_set(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("nominal_capacity_Ah: 4.84", "nominal_capacity_Ah: -4.84")
                   .replace("file: tri-prediag-cell-ocv.csv", f"file: {FIXTURES / 'tri-prediag-cell-ocv.csv'}"))
    result = CliRunner().invoke(app, ["diagnose", str(shared(*PREDIAG)), "--profile", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml, column 'nominal_capacity_Ah': must be > 0" in result.stderr
    result = CliRunner().invoke(app, ["diagnose", str(shared(*PREDIAG)), "--profile", "nope"])
    assert result.exit_code == 2 and "battery profile: unknown profile 'nope'" in result.stderr
    assert parameters.DEFAULT_BATTERY_PROFILE in result.stderr
