"""Reading a cycler file pays only for the readers: no library of the plant's other stages is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ARBIN = Path(__file__).parents[1] / "fixtures" / "arbin" / "FastCharge_000025_CH8.csv"
# the stages' libraries (models, store, app) and the rare formats' optional ones; yaml only for --mapping,
# pyarrow only for Parquet output
NOT_FOR_READING = ("scipy", "sklearn", "sqlalchemy", "alembic", "highspy", "matplotlib", "pybamm", "rich", "typer",
                   "jinja2", "yaml", "pyarrow", "pandas", "NewareNDA", "fastnda", "fastexcel", "access_parser",
                   "galvani")


def test_import_and_read_import_no_heavy_library():
    code = ("import json, sys, releaf.io\n"
            f"ts = releaf.io.read({str(ARBIN)!r})\n"
            f"print(json.dumps([ts.data.height, sorted(m for m in {list(NOT_FOR_READING)!r} if m in sys.modules)]))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    rows, imported = json.loads(out.stdout)
    assert rows > 0 and imported == []
