"""Every user mistake of the records audit: one line on stderr, exit code 2, and nothing written anywhere.

Each case names the mistake, the command, and a phrase the message must contain; after it, no database file
exists (or the existing one is unchanged) and no report or plot was written.
"""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest
from conftest import MODULE_FILES
from typer.testing import CliRunner

from releaf.app.cli import app

runner = CliRunner()


@pytest.fixture
def folder(tmp_path):
    """A test folder of two real ORNL module files."""
    f = tmp_path / "tests"
    f.mkdir()
    for key in ("1_0c", "2_0c"):
        shutil.copy(MODULE_FILES[key], f / MODULE_FILES[key].name)
    return f


def manifest(folder, *rows: str) -> None:
    (folder / "manifest.csv").write_text("\n".join(["file,module_serial,pack_vin,module_position", *rows]) + "\n",
                                         encoding="utf-8")


A, B = MODULE_FILES["1_0c"].name, MODULE_FILES["2_0c"].name


def half_made_with_rows(path) -> None:
    """What a release before 0.2 could leave: a table with rows and no schema version."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE packs (id INTEGER PRIMARY KEY, vin VARCHAR(32) NOT NULL UNIQUE)")
    con.execute("INSERT INTO packs (vin) VALUES ('X')")
    con.commit()
    con.close()


CASES = {  # mistake -> (setup(folder, tmp_path) -> args, phrase in the message)
    "unknown database dialect": (lambda f, t: ["run", f, "--db", "nosuch://x"], "not a database URL"),
    "not a URL at all": (lambda f, t: ["run", f, "--db", "::::"], "not a database URL"),
    "database folder missing": (lambda f, t: ["run", f, "--db", f"sqlite:///{t}/no/such/dir/x.db"],
                                "unable to open database file"),
    "file that is not a database": (lambda f, t: (t.joinpath("x.db").write_text("garbage " * 200),
                                                  ["run", f, "--db", f"sqlite:///{t}/x.db"])[1],
                                    "file is not a database"),
    "PostgreSQL unreachable": (lambda f, t: ["run", f, "--db", "postgresql+psycopg://u@127.0.0.1:1/x"],
                               "cannot open the database"),
    "half-made database with rows": (lambda f, t: (half_made_with_rows(t / "old.db"),
                                                   ["run", f, "--db", f"sqlite:///{t}/old.db"])[1],
                                     "releaf db repair"),
    "same pack and position twice": (lambda f, t: (manifest(f, f"{A},M1,VIN1,3", f"{B},M2,VIN1,3"),
                                                   ["run", f, "--db", f"sqlite:///{t}/p.db"])[1],
                                     "line 3, column 'module_position': position 3 of pack VIN1 already listed"),
    "same serial twice": (lambda f, t: (manifest(f, f"{A},M1,,", f"{B},M1,,"),
                                        ["run", f, "--db", f"sqlite:///{t}/p.db"])[1],
                          "line 3, column 'module_serial'"),
    "same file twice": (lambda f, t: (manifest(f, f"{A},M1,,", f"{A},M2,,"),
                                      ["run", f, "--db", f"sqlite:///{t}/p.db"])[1], "line 3, column 'file'"),
    "manifest path outside its folder": (lambda f, t: (manifest(f, f"../{A},M1,,"),
                                                       ["run", f, "--db", f"sqlite:///{t}/p.db"])[1],
                                         "outside the manifest's folder"),
    "absolute manifest path": (lambda f, t: (manifest(f, f"{MODULE_FILES['1_0c']},M1,,"),
                                             ["run", f, "--db", f"sqlite:///{t}/p.db"])[1],
                               "outside the manifest's folder"),
    "manifest not UTF-8": (lambda f, t: ((f / "manifest.csv").write_bytes(b"file,module_serial\n\xff\xfe,M1\n"),
                                         ["run", f, "--db", f"sqlite:///{t}/p.db"])[1], "not UTF-8"),
    "two files, one module name": (lambda f, t: (shutil.copy(f / A, f / (A[:-4] + ".txt.csv")),
                                                 (f / A).rename(f / (A[:-4] + ".dat")),
                                                 (f / (A[:-4] + ".txt.csv")).rename(f / (A[:-4] + ".csv")),
                                                 ["run", f, "--db", f"sqlite:///{t}/p.db"])[3],
                                   "would both be module"),
    "--report names a file": (lambda f, t: (t.joinpath("r.html").write_text("x"),
                                            ["run", f, "--db", f"sqlite:///{t}/p.db", "--report", t / "r.html"])[1],
                              "--report names a folder"),
    "--plots names a file": (lambda f, t: (t.joinpath("plots").write_text("x"),
                                           ["intake", f, "--plots", t / "plots"])[1], "--plots names a folder"),
}


@pytest.mark.parametrize("mistake", list(CASES))
def test_a_user_mistake_is_one_line_exit_2_and_writes_nothing(mistake, folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    setup, phrase = CASES[mistake]
    args = [str(a) for a in setup(folder, tmp_path)]
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (mistake, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], (mistake, result.stderr)
    assert "Traceback" not in result.output
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, f"{mistake}: wrote {set(after) ^ set(before) or 'into existing files'}"


def test_a_bad_database_url_in_the_environment_is_one_line(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RELEAF_DATABASE_URL", "mysql+nosuchdriver://x")
    result = runner.invoke(app, ["run", str(folder)])
    assert result.exit_code == 2 and result.stderr.startswith("error: mysql+nosuchdriver://x:")
    assert not list(tmp_path.glob("*.db"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its permissions")
def test_an_unreadable_test_file_is_one_line(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (folder / A).chmod(0)
    result = runner.invoke(app, ["run", str(folder), "--db", f"sqlite:///{tmp_path}/p.db"])
    assert result.exit_code == 2 and "cannot read the file" in result.stderr
    assert not (tmp_path / "p.db").exists()
