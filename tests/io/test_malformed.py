"""A corpus of malformed files made from real exports: every one must give a clear InputFileError.

Each variant is one realistic way a file goes wrong in a plant (a copy cut short, a spreadsheet saved with
semicolons or comma decimals, UTF-16, a renamed or missing column, mV written under a V header, NaN/inf/text
values, time going backwards, duplicated or ragged lines, empty or binary files). The error must name the file,
and the line where one line is at fault; through the CLI it is one line on stderr and exit code 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import MODULE_FILES, REPO, SHARED_DATA
from typer.testing import CliRunner

from releaf.app.cli import app
from releaf.errors import InputFileError
from releaf.io import read

FIXTURES = REPO / "tests" / "fixtures"


@dataclass(frozen=True)
class Source:
    """A real text export and where its columns are."""

    path: Path
    header_line: int | None  # 0-based line of the column names; None: no header row
    first_data_line: int  # 0-based
    time: int
    voltage: int
    current: int
    sep: bytes = b","


SOURCES = [
    Source(MODULE_FILES["1_0c"], 17, 18, 0, 8, 7),
    Source(MODULE_FILES["2_75c"], 17, 18, 0, 8, 7),
    Source(REPO / "tests" / "fixtures" / "arbin" / "FastCharge_000025_CH8.csv", 0, 1, 1, 7, 6),
    Source(SHARED_DATA / "ornl-leaf" / "cell-discharge-bitrode-1c.csv", 0, 1, 1, 9, 8),
    Source(SHARED_DATA / "ornl-leaf" / "cell-low-current-hppc-10c.csv", None, 0, 1, 9, 8),
    Source(SHARED_DATA / "cycler-formats" / "beep-TRI-AMDD" / "2017-05-09_test-TC-contact_CH33.csv", 0, 1, 1, 7, 6),
    Source(FIXTURES / "maccor" / "PredictionDiagnostics_000151_test.052", 1, 2, 3, 8, 7, b"\t"),
    Source(FIXTURES / "neware" / "neware_uio_rows3301-3900.csv", 0, 1, 5, 7, 6),
    Source(FIXTURES / "bdf" / "batmo_bdf_head1000.csv", 0, 1, 0, 2, 1),
    Source(FIXTURES / "pec" / "Test25209.csv", 45, 46, 9, 16, 17),
]
# binary exports: damage that a reader must notice (zeroed data inside a valid container may be undetectable)
BINARY_SOURCES = [
    FIXTURES / "biologic" / "col_27_issue_74.mpr",
    SHARED_DATA / "cycler-formats" / "cellpy" / "20160805_test001_45_cc_01.res",
    SHARED_DATA / "cycler-formats" / "cellpy" / "20260302_IFE_BTS85_2_9_8_1.ndax",
    SHARED_DATA / "cycler-formats" / "cellpy" / "biol.mpr",
]
BINARY_VARIANTS = {
    "truncated-half": lambda data: data[: len(data) // 2],
    "truncated-header": lambda data: data[:100],
    "garbled-magic": lambda data: b"\x00\xffNOT-A-CYCLER-FILE" + data[20:],
}


def _lines(data: bytes) -> tuple[list[bytes], bytes]:
    # split on LF only: a CRLF line keeps its CR, and files that mix both (ORNL 2.75C) stay as they were
    return data.split(b"\n"), b"\n"


def _set_field(line: bytes, k: int, value: bytes, sep: bytes = b",") -> bytes:
    fields = line.split(sep)
    fields[k] = value
    return sep.join(fields)


def _mutate_lines(src: Source, fn) -> bytes:
    lines, eol = _lines(src.path.read_bytes())
    return eol.join(fn(lines, src))


def _mid(src: Source, lines) -> int:
    return src.first_data_line + (len(lines) - src.first_data_line) // 2


def _drop_column(lines, src):
    out = []
    for i, ln in enumerate(lines):
        if i == src.header_line or i >= src.first_data_line and ln.count(src.sep) > src.current:
            fields = ln.split(src.sep)
            del fields[src.current]
            ln = src.sep.join(fields)
        out.append(ln)
    return out


def _scale_voltage(lines, src):
    out = list(lines)
    for i in range(src.first_data_line, len(lines)):
        if lines[i].count(src.sep) > src.voltage:  # not the trailer line of some VisuaLCN exports
            v = float(lines[i].split(src.sep)[src.voltage])
            out[i] = _set_field(lines[i], src.voltage, f"{v * 1000:.1f}".encode(), src.sep)
    return out


def _at_mid(transform):
    def fn(lines, src):
        out = list(lines)
        k = _mid(src, lines)
        out[k] = transform(out[k], src)
        return out

    return fn


def _setter(which: str, value: bytes):
    return lambda ln, src: _set_field(ln, getattr(src, which), value, src.sep)


def _swap_mid(lines, src):
    out = list(lines)
    k = _mid(src, lines)
    out[k], out[k + 1] = out[k + 1], out[k]
    return out


def _duplicate_mid(lines, src):
    k = _mid(src, lines)
    return [*lines[: k + 1], lines[k], *lines[k + 1 :]]


def _truncate(data: bytes) -> bytes:
    cut = len(data) * 3 // 5
    while data[cut : cut + 1] in (b"\n", b"\r", b","):
        cut += 1
    return data[:cut]


# name -> (how to make it from a Source, does one line carry the fault)
VARIANTS = {
    "truncated": (lambda s: _truncate(s.path.read_bytes()), True),
    "header-only": (lambda s: _mutate_lines(s, lambda lines, src: lines[: src.first_data_line]), False),
    "semicolons": (lambda s: s.path.read_bytes().replace(s.sep, b";"), False),
    "comma-decimals": (lambda s: re.sub(rb"(\d)\.(\d)", rb"\1,\2", s.path.read_bytes()), False),
    "utf16": (lambda s: s.path.read_bytes().decode("latin-1").encode("utf-16"), False),
    "missing-current": (lambda s: _mutate_lines(s, _drop_column), False),
    "renamed-current": (lambda s: _mutate_lines(s, lambda lines, src: [
        _set_field(ln, src.current, b"Curr_x", src.sep) if i == src.header_line else ln for i, ln in enumerate(lines)]),
        False),
    "voltage-in-mV": (lambda s: _mutate_lines(s, _scale_voltage), True),
    "nan-voltage": (lambda s: _mutate_lines(s, _at_mid(_setter("voltage", b"NaN"))), True),
    "inf-current": (lambda s: _mutate_lines(s, _at_mid(_setter("current", b"inf"))), True),
    "text-current": (lambda s: _mutate_lines(s, _at_mid(_setter("current", b"n/a"))), True),
    "time-backwards": (lambda s: _mutate_lines(s, _swap_mid), True),
    "duplicated-row": (lambda s: _mutate_lines(s, _duplicate_mid), True),
    "extra-field": (lambda s: _mutate_lines(s, _at_mid(lambda ln, src: ln.rstrip(b"\r") + src.sep + b"7")), True),
    "missing-field": (lambda s: _mutate_lines(s, _at_mid(lambda ln, src: ln.rsplit(src.sep, 2)[0])), True),
    "empty": (lambda s: b"", False),
    "blank-lines": (lambda s: b"\n\n\n", False),
    "binary-garbage": (lambda s: bytes(range(256)) * 40, False),
}
NEEDS_HEADER = {"renamed-current", "header-only"}
# mV under a V header is caught by the physical range check only where 1000x the voltage is impossible; the
# Neware sample is a 0.6 V half cell, and 600 "V" is a plausible pack voltage
UNDETECTABLE = {("neware_uio_rows3301-3900.csv", "voltage-in-mV")}
CASES = [(src, name) for src in SOURCES for name in VARIANTS
         if (src.header_line is not None or name not in NEEDS_HEADER) and (src.path.name, name) not in UNDETECTABLE]


def _ids(case):
    src, name = case
    return f"{src.path.name}:{name}"


BINARY_CASES = [(path, name) for path in BINARY_SOURCES for name in BINARY_VARIANTS]


def test_corpus_is_large_enough():
    assert len(CASES) + len(BINARY_CASES) >= 60
    bundled = [c for c in CASES if c[0].path.is_relative_to(REPO)]
    assert len(bundled) >= 60  # enough run even in a clone without the shared data folder


@pytest.mark.parametrize("case", BINARY_CASES, ids=[f"{p.name}:{n}" for p, n in BINARY_CASES])
def test_damaged_binary_file_gives_a_clear_error(case, tmp_path):
    src, name = case
    if not src.exists():
        pytest.skip(f"shared data not present: {src}")
    path = tmp_path / f"{name}__{src.name}"
    path.write_bytes(BINARY_VARIANTS[name](src.read_bytes()))
    with pytest.raises(InputFileError) as err:
        read(path)
    assert path.name in str(err.value)
    assert runner.invoke(app, ["diagnose", str(path)]).exit_code == 2


@pytest.fixture(params=CASES, ids=[_ids(c) for c in CASES])
def malformed(request, tmp_path):
    src, name = request.param
    if not src.path.exists():
        pytest.skip(f"shared data not present: {src.path}")
    make, line_specific = VARIANTS[name]
    path = tmp_path / f"{name}__{src.path.name}"
    path.write_bytes(make(src))
    return path, line_specific


def test_malformed_file_gives_a_clear_error(malformed):
    path, line_specific = malformed
    with pytest.raises(InputFileError) as err:
        read(path)
    message = str(err.value)
    assert path.name in message
    assert len(message.splitlines()) == 1
    if line_specific:
        assert err.value.line is not None, message


runner = CliRunner()


def test_malformed_file_through_the_cli_exits_2(malformed):
    path, _ = malformed
    result = runner.invoke(app, ["diagnose", str(path)])
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)


# ---- header-only files of every format, single-row, rest-only and charge-only tests, through the CLI --------------

def _head(path: Path, lines: int) -> bytes:
    """The first ``lines`` lines of a file (everything before its first data row)."""
    return b"".join(path.read_bytes().splitlines(keepends=True)[:lines])


def _mpt(tmp_path, rows: int) -> Path:
    import numpy as np
    from test_biologic import write_mpt

    t = np.arange(rows, dtype=float)
    return write_mpt(tmp_path / "header-only.mpt", {"time/s": t, "Ewe/V": t + 3.0, "I/mA": t})


def _batteryarchive(tmp_path) -> Path:
    from test_batteryarchive import HEADER

    path = tmp_path / "header-only_timeseries.csv"
    path.write_text(",".join(HEADER) + "\n")
    return path


def _xlsx(tmp_path) -> Path:
    from test_arbin_excel import EXCEL_HEADER, arbin_workbook

    path = arbin_workbook(tmp_path / "header-only.xlsx", mutate=None)
    import xlsxwriter  # the same workbook, with the channel sheet's header row and no data

    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("Info").write_row(0, 0, ["Test_Name"])
    wb.add_worksheet("Channel_8_1").write_row(0, 0, list(EXCEL_HEADER.values()))
    wb.close()
    return path


BEEP = SHARED_DATA / "cycler-formats" / "beep-TRI-AMDD"
# format -> (real file, lines before its first data row) or a function of tmp_path writing the header-only file
HEADER_ONLY = {
    "arbin-csv": (FIXTURES / "arbin" / "FastCharge_000025_CH8.csv", 1),
    "bitrode-module": (MODULE_FILES["1_0c"], 18),
    "bitrode-cell": (SHARED_DATA / "ornl-leaf" / "cell-discharge-bitrode-1c.csv", 1),
    "maccor": (FIXTURES / "maccor" / "PredictionDiagnostics_000151_test.052", 2),
    "maccor-041": (FIXTURES / "maccor" / "maccor_test_file_4267-66-6519.041", 2),
    "novonix": (FIXTURES / "novonix" / "test_Nova_Form-CH01-01_head200.csv", 58),
    "pec": (FIXTURES / "pec" / "Test25209.csv", 46),
    "neware-csv": (FIXTURES / "neware" / "neware_uio_rows3301-3900.csv", 1),
    "bdf-csv": (FIXTURES / "bdf" / "batmo_bdf_head1000.csv", 1),
    "biologic-csv": (BEEP / "test_loopsnewoutput_MB_CE1_short10k.csv", 1),
    "biologic-mpt": lambda tmp_path: _mpt(tmp_path, 0),
    "batteryarchive-csv": _batteryarchive,
    "arbin-xlsx": _xlsx,
}


def _header_only(fmt: str, tmp_path) -> Path:
    source = HEADER_ONLY[fmt]
    if callable(source):
        return source(tmp_path)
    src, lines = source
    if not src.exists():
        pytest.skip(f"shared data not present: {src}")
    path = tmp_path / f"header-only__{src.name}"
    path.write_bytes(_head(src, lines))
    return path


def _one_line_error(result, path: Path) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and path.name in lines[0], result.output
    return lines[0]


@pytest.mark.parametrize("command", ["read", "diagnose"])
@pytest.mark.parametrize("fmt", sorted(HEADER_ONLY))
def test_header_only_file_is_one_line_and_exit_2(fmt, command, tmp_path):
    path = _header_only(fmt, tmp_path)
    line = _one_line_error(runner.invoke(app, [command, str(path)]), path)
    assert "no data" in line or "truncated" in line or "empty" in line, line


def test_header_only_mapped_csv(tmp_path):
    src = FIXTURES / "mapped" / "example_eu.csv"
    path = tmp_path / "header-only__example_eu.csv"
    path.write_bytes(_head(src, 3))
    mapping = str(FIXTURES / "mapped" / "example_eu.yaml")
    for command in ("read", "diagnose"):
        _one_line_error(runner.invoke(app, [command, str(path), "--mapping", mapping]), path)


# real exports cut to their header and one data row
SINGLE_ROW = ["arbin-csv", "bitrode-module", "maccor", "novonix", "pec", "neware-csv", "bdf-csv"]


@pytest.mark.parametrize("fmt", SINGLE_ROW)
def test_single_row_file_is_one_line_and_exit_2(fmt, tmp_path):
    src, lines = HEADER_ONLY[fmt]
    path = tmp_path / f"single-row__{src.name}"
    path.write_bytes(_head(src, lines + 1))
    line = _one_line_error(runner.invoke(app, ["diagnose", str(path)]), path)
    assert "only one data row" in line, line


def _filtered(src: Path, header_lines: int, current: int, name: str, keep, tmp_path) -> Path:
    """A real export with only the data rows whose current passes ``keep`` (the cycler's own lines, unchanged)."""
    if not src.exists():
        pytest.skip(f"shared data not present: {src}")
    lines = src.read_bytes().split(b"\n")
    kept = [ln for ln in lines[header_lines:] if ln.count(b",") > current and keep(float(ln.split(b",")[current]))]
    assert len(kept) > 10
    path = tmp_path / f"{name}__{src.name}"
    path.write_bytes(b"\n".join(lines[:header_lines] + kept) + b"\n")
    return path


# (real export, header lines, current column, rows kept); the Arbin fixture is a real rest-only file as it is
ONLY = {
    "rest-only-arbin": (FIXTURES / "arbin" / "FastCharge_000025_CH8.csv", 1, 6, lambda i: True),
    "rest-only-ornl-module": (MODULE_FILES["1_0c"], 18, 7, lambda i: abs(i) < 0.1),  # the ORNL rest reads -0.02 A
    "rest-only-bdf": (FIXTURES / "bdf" / "batmo_bdf_head1000.csv", 1, 1, lambda i: i == 0),
    "charge-only-bdf": (FIXTURES / "bdf" / "batmo_bdf_head1000.csv", 1, 1, lambda i: i > 0),
}


@pytest.mark.parametrize("case", sorted(ONLY))
def test_rest_or_charge_only_gives_a_diagnosis_without_capacity(case, tmp_path):
    import json

    src, header_lines, current, keep = ONLY[case]
    path = _filtered(src, header_lines, current, case, keep, tmp_path)
    result = runner.invoke(app, ["diagnose", str(path), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    record = record[0] if isinstance(record, list) else record
    assert record["capacity_Ah"] is None and record["soh_pct"] is None
    assert any("no discharge" in w and "capacity" in w for w in record["warnings"]), record["warnings"]
