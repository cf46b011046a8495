"""Rare formats' libraries are optional extras: imported only when such a file is read, and a clear ConfigError
(naming the extra) when one is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from releaf.errors import ConfigError
from releaf.io import detect, read

FIXTURES = Path(__file__).parents[1] / "fixtures"
OPTIONAL_MODULES = ("NewareNDA", "fastnda", "fastexcel", "access_parser", "galvani")


def _rare_files(folder: Path) -> dict[str, Path]:
    """One small file per rare format, enough for detection (the readers stop at the missing library)."""
    files = {"biologic-mpr": FIXTURES / "biologic" / "col_27_issue_74.mpr"}
    nda = folder / "run.nda"
    nda.write_bytes(b"NEWARE" + bytes(200))
    ndax = folder / "run.ndax"
    with zipfile.ZipFile(ndax, "w") as zf:
        zf.writestr("data.ndc", b"\x00" * 64)
        zf.writestr("TestInfo.xml", "<root/>")
    res = folder / "run.res"
    res.write_bytes(b"\x00\x01\x00\x00Standard Jet DB\x00" + bytes(100) + "Channel_Normal_Table".encode("utf-16-le"))
    xlsx = folder / "run.xlsx"
    with zipfile.ZipFile(xlsx, "w") as zf:
        zf.writestr("xl/workbook.xml", '<workbook><sheets><sheet name="Channel_1_1" sheetId="1"/></sheets></workbook>')
        zf.writestr("xl/sharedStrings.xml", "<sst><si><t>Data_Point</t></si><si><t>Test_Time(s)</t></si></sst>")
    files.update({"neware-nda": nda, "neware-ndax": ndax, "arbin-res": res, "arbin-xlsx": xlsx})
    return files


@pytest.mark.parametrize(("kind", "missing", "package", "extra"), [
    ("neware-nda", "NewareNDA", "NewareNDA", "neware"),
    ("neware-ndax", "NewareNDA", "NewareNDA", "neware"),
    ("neware-ndax", "fastnda", "fastnda", "neware"),
    ("arbin-res", "access_parser", "access-parser", "arbin"),
    ("arbin-xlsx", "fastexcel", "fastexcel", "arbin"),
    ("biologic-mpr", "galvani", "galvani", "biologic"),
])
def test_a_missing_library_is_a_config_error_naming_the_extra(tmp_path, monkeypatch, kind, missing, package, extra):
    path = _rare_files(tmp_path)[kind]
    fmt = kind.replace("neware-ndax", "neware-nda")
    assert detect(path) == fmt  # detection needs none of the libraries
    monkeypatch.setitem(sys.modules, missing, None)  # what an environment without the package looks like
    with pytest.raises(ConfigError) as err:
        read(path)
    assert err.value.message == f"reading {fmt} needs the optional package {package}: pip install 'releaf[{extra}]'"
    assert err.value.file == str(path)


def test_the_cli_reports_a_missing_library_in_one_line(tmp_path, monkeypatch):
    from releaf.app.cli import app

    path = _rare_files(tmp_path)["biologic-mpr"]
    monkeypatch.setitem(sys.modules, "galvani", None)
    result = CliRunner().invoke(app, ["read", str(path), "--json"])
    assert result.exit_code == 2
    assert "pip install 'releaf[biologic]'" in result.output and "Traceback" not in result.output


def test_import_and_detection_import_no_optional_library(tmp_path):
    """In a fresh interpreter: ``import releaf.io`` and detecting every rare format import none of them."""
    files = _rare_files(tmp_path)
    code = ("import json, sys, releaf.io\n"
            f"formats = [releaf.io.detect(p) for p in {[str(p) for p in files.values()]!r}]\n"
            f"print(json.dumps([formats, sorted(m for m in {list(OPTIONAL_MODULES)!r} if m in sys.modules)]))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    formats, imported = json.loads(out.stdout)
    assert formats == ["biologic-mpr", "neware-nda", "neware-nda", "arbin-res", "arbin-xlsx"]
    assert imported == []
