"""The command line as a user meets it: real subprocesses for the exit codes, CliRunner for the rest."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MODULE_FILES
from typer.testing import CliRunner

from releaf.app.cli import app

RELEAF = [str(Path(sys.executable).with_name("releaf"))]
runner = CliRunner()


def releaf(*args, cwd=None):
    return subprocess.run([*RELEAF, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_diagnose_json_has_the_contract_fields():
    out = releaf("diagnose", MODULE_FILES["1_0c"], MODULE_FILES["2_0c"], "--json")
    assert out.returncode == 0, out.stderr
    records = json.loads(out.stdout)
    assert len(records) == 2
    for rec in records:
        for key in ("file", "format", "capacity_Ah", "energy_Wh", "soh_pct", "r0_mOhm", "groups", "weakest_group",
                    "warnings"):
            assert key in rec
        assert len(rec["groups"]) == 6
        assert {"capacity_Ah", "r0_mOhm", "end_voltage_V"} <= set(rec["groups"][0])
        assert rec["weakest_group"] == 1


def test_read_summary():
    result = runner.invoke(app, ["read", str(MODULE_FILES["2_75c"]), "--json"])
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["format"] == "bitrode-module" and summary["series_groups"] == 6


def corrupt_variants(tmp: Path) -> dict[str, Path]:
    good = MODULE_FILES["1_0c"].read_text()
    lines = good.split("\n")
    header = lines[17].split(",")
    header[header.index("Current")] = "Amps"
    variants = {
        "truncated": good[: len(good) // 2].rsplit(",", 7)[0],
        "wrong-columns": "\n".join([*lines[:17], ",".join(header), *lines[18:]]),
        "empty": "",
        "binary": "\x00\x01\x02garbage" * 50,
    }
    out = {}
    for name, text in variants.items():
        path = tmp / f"{name}.csv"
        path.write_text(text)
        out[name] = path
    return out


@pytest.mark.parametrize("variant", ["truncated", "wrong-columns", "empty", "binary"])
def test_corrupt_file_exit_2_one_line_nothing_in_database(tmp_path, variant):
    bad = corrupt_variants(tmp_path)[variant]
    out = releaf("diagnose", bad)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and bad.name in lines[0]
    assert "Traceback" not in out.stderr

    # the same file in a folder run next to a good one: exit 2 and the database holds nothing
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(MODULE_FILES["2_75c"], folder / "good.csv")
    shutil.copy(bad, folder / bad.name)
    db = tmp_path / "plant.db"
    out = releaf("run", folder, "--db", f"sqlite:///{db}")
    assert out.returncode == 2 and bad.name in out.stderr and "Traceback" not in out.stderr
    if db.exists():
        with sqlite3.connect(db) as con:
            assert con.execute("select count(*) from tests").fetchone()[0] == 0


def test_user_errors_without_traceback(tmp_path):
    for args in (["diagnose", tmp_path / "missing.csv"], ["diagnose", MODULE_FILES["1_0c"], "--profile", "nope"],
                 ["run", tmp_path / "nowhere"]):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 2, args
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_run_twice_is_idempotent(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for key in ("1_0c", "2_0c"):
        shutil.copy(MODULE_FILES[key], folder)
    db = f"sqlite:///{tmp_path / 'plant.db'}"
    for _ in range(2):
        result = runner.invoke(app, ["run", str(folder), "--db", db, "--json"])
        assert result.exit_code == 0, result.output
    with sqlite3.connect(tmp_path / "plant.db") as con:
        assert con.execute("select count(*) from tests").fetchone()[0] == 2
        assert con.execute("select count(*) from diagnoses").fetchone()[0] == 2
        assert con.execute("select count(*) from grades").fetchone()[0] == 2


def test_mapped_csv_through_the_cli(tmp_path):
    from conftest import REPO

    fixture = REPO / "tests" / "fixtures" / "mapped"
    result = runner.invoke(app, ["read", str(fixture / "example_eu.csv"), "--mapping", str(fixture / "example_eu.yaml"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 300
    bad = tmp_path / "bad.yaml"
    bad.write_text((fixture / "example_eu.yaml").read_text().replace("columns:", "colums:"))
    result = runner.invoke(app, ["read", str(fixture / "example_eu.csv"), "--mapping", str(bad)])
    assert result.exit_code == 2


def test_intake_json_and_heatmap(tmp_path):
    from conftest import REPO

    logs = REPO / "tests" / "fixtures" / "leafspy" / "2020-leaf-splus-62kwh"
    result = runner.invoke(app, ["intake", str(logs), "--json", "--plots", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (pack,) = json.loads(result.stdout)
    assert 90 < pack["latest"]["soh_pct"] <= 100
    assert pack["inspect_first"] and Path(pack["heatmap"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_intake_of_a_cycler_file_is_a_user_error():
    result = runner.invoke(app, ["intake", str(MODULE_FILES["1_0c"])])
    assert result.exit_code == 2


def test_diagnose_json_has_the_diagnostics_fields_of_issue_4():
    result = runner.invoke(app, ["diagnose", str(MODULE_FILES["2_75c"]), "--json"])
    (rec,) = json.loads(result.stdout)
    for key in ("ocv_table", "hppc", "ecm", "soh_method", "soh_interval_pct", "ood", "soh_estimate"):
        assert key in rec
    assert rec["soh_method"] == "capacity" and rec["ocv_table"] == "leaf_cell_ocv_25C"


def test_train_soh_help_and_bad_data_folder(tmp_path):
    assert runner.invoke(app, ["train-soh", "--help"]).exit_code == 0
    result = runner.invoke(app, ["train-soh", "--model", "retired-cells-pulse", "--data", str(tmp_path),
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2


def test_version_and_public_api():
    import releaf as pkg

    out = releaf("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"releaf {pkg.__version__}"
    assert set(pkg.__all__) >= {"read", "diagnose", "PlantChain", "__version__"}
    d = pkg.diagnose(MODULE_FILES["1_0c"])  # a path, the Leaf module profile by default
    assert d.profile == "leaf-24kwh-module" and d.capacity_Ah == pytest.approx(55.3, abs=0.05)


def test_import_releaf_and_read_pull_in_no_heavy_stage():
    """``import releaf`` loads nothing heavy; reading a file loads no SciPy, HiGHS, SQLAlchemy or scikit-learn."""
    code = ("import sys, releaf; light = not {'polars', 'numpy', 'pydantic'} & set(sys.modules); "
            f"releaf.read({str(MODULE_FILES['1_0c'])!r}); "
            "heavy = sorted({'scipy', 'highspy', 'sqlalchemy', 'alembic', 'sklearn', 'matplotlib', 'pybamm'} "
            "& {m.split('.')[0] for m in sys.modules}); print(light, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "[]"], out.stderr


def test_schema_lists_records_and_prints_a_json_schema():
    listing = runner.invoke(app, ["schema"])
    assert listing.exit_code == 0 and "Diagnosis 1.1.0" in listing.stdout and "RunResult 1.1.0" in listing.stdout
    out = runner.invoke(app, ["schema", "Grade"])
    schema = json.loads(out.stdout)
    assert schema["properties"]["grade"] == {"$ref": "#/$defs/GradeClass"}
    assert schema["$defs"]["GradeClass"]["enum"] == ["A", "B", "C", "reject"]
    bad = releaf("schema", "Nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: record: unknown record 'Nope'")
