"""Parameter sets (releaf.parameters): the packaged Leaf set, the one loader and its errors."""

from __future__ import annotations

import numpy as np
import pytest

from releaf import parameters
from releaf.errors import ConfigError
from releaf.parameters import (
    BATTERY_PROFILES,
    DEFAULT_BATTERY_PROFILE,
    LEAF_CELL,
    LEAF_MODULE,
    PORTABLE_2S,
    STATION_PROFILES,
    battery_profile,
    load_parameter_set,
    station_profile,
)


def test_leaf_set_is_data_with_sources():
    s = load_parameter_set("leaf-24kwh")
    assert (s.name, s.version, s.default_unit) == ("leaf-24kwh", "1.0.0", "leaf-24kwh-module")
    assert list(s.units) == ["leaf-24kwh-module", "leaf-24kwh-cell"] == list(BATTERY_PROFILES)
    assert list(s.stations) == ["portable-2s"] == list(STATION_PROFILES)
    assert list(s.use_cases) == ["phone", "guitar-amp", "fridge"]
    assert s.policy == "leaf-default" and s.soh_model == "leaf-module-pulse"
    assert set(s.ecm_tables) == {"leaf_cell_ecm_25C", "leaf_cell_ecm2_10C", "leaf_cell_ecm2_25C", "leaf_cell_ecm2_40C"}
    for item in (*s.units.values(), *s.stations.values(), *s.ocv_tables.values(), *s.ecm_tables.values(),
                 *s.use_cases.values()):
        source = item["source"] if isinstance(item, dict) else item.source
        assert source.strip(), item
    assert "doi:10.5281/zenodo.2580327" in LEAF_MODULE.source


def test_packaged_names_as_before():
    assert DEFAULT_BATTERY_PROFILE == "leaf-24kwh-module" == load_parameter_set().default_unit
    assert (LEAF_MODULE.series_groups, LEAF_MODULE.parallel_cells, LEAF_MODULE.nominal_capacity_Ah) == (2, 2, 65.0)
    assert (LEAF_CELL.nominal_capacity_Ah, LEAF_CELL.group_v_min_V, LEAF_CELL.group_v_max_V) == (33.1, 3.0, 4.2)
    assert PORTABLE_2S.module is LEAF_MODULE and PORTABLE_2S.series_groups == 4
    assert battery_profile("leaf-24kwh-module") is LEAF_MODULE
    assert battery_profile("leaf-24kwh") is LEAF_MODULE  # a set name stands for its default unit
    assert battery_profile(LEAF_CELL) is LEAF_CELL
    assert station_profile("portable-2s") is PORTABLE_2S and station_profile(PORTABLE_2S) is PORTABLE_2S


def test_units_carry_their_ocv_table():
    table = LEAF_MODULE.ocv_table
    assert table is LEAF_CELL.ocv_table is parameters.ocv_table("leaf_cell_ocv_25C")
    assert table.name == "leaf_cell_ocv_25C" and "ORNL" in table.source
    soc, v = table  # unpacks as the (soc_pct, ocv_V) pair the OCV functions take
    assert soc[0] == 0.0 and soc[-1] == 100.0 and v[-1] == pytest.approx(4.182)
    assert not soc.flags.writeable and not v.flags.writeable


def test_packaged_files_through_one_loader():
    label, text = parameters.ecm_table_text("leaf_cell_ecm_25C")
    assert label == "releaf/parameters/leaf-24kwh/leaf_cell_ecm_25C.csv" and "soc_pct,r0_mOhm" in text
    label, text = parameters.policy_text("leaf-default")
    assert label == "releaf/parameters/policies/leaf-default.yaml" and "name: leaf-default" in text
    meta, arrays = parameters.soh_model_files("leaf-module-pulse")
    assert meta.name == "leaf-module-pulse.json" and arrays.name == "leaf-module-pulse.npz"
    assert parameters.soh_models() == ("leaf-module-pulse", "retired-cells-pulse")


@pytest.mark.parametrize(("call", "where", "text"), [
    (lambda: battery_profile("nope"), "battery profile", "known: leaf-24kwh-module, leaf-24kwh-cell"),
    (lambda: station_profile("3s"), "station design", "known: portable-2s"),
    (lambda: load_parameter_set("nope"), "parameter set", "packaged: leaf-24kwh"),
    (lambda: parameters.ocv_table("nope"), "nope.csv", "no packaged OCV table named 'nope'"),
    (lambda: parameters.ecm_table_text("nope"), "nope", "no packaged ECM table named 'nope'"),
    (lambda: parameters.policy_text("nope"), "nope", "packaged: leaf-default"),
    (lambda: parameters.soh_model_files("nope"), "nope.json", "packaged: leaf-module-pulse"),
])
def test_unknown_names_are_config_errors_without_cli_flags(call, where, text):
    with pytest.raises(ConfigError, match=text) as err:
        call()
    assert err.value.where == where and "--" not in str(err.value)


UNIT = """\
name: test-cell
source: a test
series_groups: 1
parallel_cells: 1
nominal_capacity_Ah: 3.0
nominal_voltage_V: 3.6
group_v_min_V: 2.5
group_v_max_V: 4.2
chemistry: NMC / graphite
ocv_table:
  soc_pct: [0, 50, 100]
  ocv_V: [3.0, 3.7, 4.2]
"""


@pytest.mark.parametrize(("old", "new", "key", "text"), [
    ("nominal_capacity_Ah: 3.0\n", "", "nominal_capacity_Ah", "missing"),
    ("nominal_capacity_Ah: 3.0", "nominal_capacity_Ah: -3", "nominal_capacity_Ah", "must be > 0"),
    ("nominal_capacity_Ah: 3.0", "nominal_capacity_Ah: three", "nominal_capacity_Ah", "expected a number"),
    ("series_groups: 1", "series_groups: 1.5", "series_groups", "expected a whole number"),
    ("group_v_max_V: 4.2", "group_v_max_V: 2.0", "group_v_max_V", "must exceed group_v_min_V"),
    ("chemistry:", "chemestry:", "chemestry", "unknown key"),
    ("ocv_V: [3.0, 3.7, 4.2]", "ocv_V: [3.0, 3.7, 3.6]", "ocv_table", "must both increase strictly"),
    ("ocv_V: [3.0, 3.7, 4.2]", "ocv_V: [3.0, 3.7]", "ocv_table", "one value each per point"),
    ("  soc_pct: [0, 50, 100]\n", "", "ocv_table.soc_pct", "missing"),
])
def test_malformed_user_file_names_file_and_key(tmp_path, old, new, key, text):
    f = tmp_path / "cell.yaml"
    f.write_text(UNIT.replace(old, new))
    with pytest.raises(ConfigError, match=text) as err:
        battery_profile(str(f))
    assert err.value.where == str(f.resolve()) and err.value.column == key


def test_yaml_syntax_error_names_the_line(tmp_path):
    f = tmp_path / "cell.yaml"
    f.write_text(UNIT.replace("chemistry: NMC / graphite", "chemistry: [NMC"))
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        battery_profile(f)
    assert err.value.line is not None


def test_missing_file_and_bad_csv(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        battery_profile(str(tmp_path / "missing.yaml"))
    (tmp_path / "ocv.csv").write_text("soc,ocv\n0,3.0\n100,4.2\n")
    f = tmp_path / "cell.yaml"
    f.write_text(UNIT.split("ocv_table:")[0] + "ocv_table: ocv.csv\n")
    with pytest.raises(ConfigError, match="expected header 'soc_pct,ocv_V'") as err:
        battery_profile(f)
    assert err.value.where == str(tmp_path.resolve() / "ocv.csv") and err.value.line == 1


def test_user_file_reread_when_changed(tmp_path):
    f = tmp_path / "cell.yaml"
    f.write_text(UNIT)
    assert battery_profile(f).nominal_capacity_Ah == 3.0
    f.write_text(UNIT.replace("nominal_capacity_Ah: 3.0", "nominal_capacity_Ah: 2.50"))
    assert battery_profile(f).nominal_capacity_Ah == 2.5
    p = battery_profile(f)
    assert p.ocv_table.name == "test-cell-ocv" and p.soh_model is None
    np.testing.assert_array_equal(p.ocv_table.ocv_V, [3.0, 3.7, 4.2])


def test_bad_use_case_in_a_set_is_a_config_error(tmp_path):
    text = parameters.resource("leaf-24kwh", "parameters.yaml").read_text(encoding="utf-8")
    (tmp_path / "leaf_cell_ocv_25C.csv").write_text(
        parameters.resource("leaf-24kwh", "leaf_cell_ocv_25C.csv").read_text(encoding="utf-8"))
    f = tmp_path / "set.yaml"
    f.write_text(text.replace("duty_cycle: 0.30", "duty_cycle: 1.30"))
    with pytest.raises(ConfigError, match="duty_cycle must be in") as err:
        parameters.use_cases(f)
    assert err.value.column == "use_cases.fridge"
    assert battery_profile(f).name == "leaf-24kwh-module"  # a whole set as a user file: its default unit
