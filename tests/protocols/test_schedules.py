"""Cycler files of the fast pulse test: values of every step, and the layout of the real files they imitate."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from itertools import groupby
from pathlib import Path

import pytest
from typer.testing import CliRunner

from releaf.app.cli import app
from releaf.errors import InputFileError
from releaf.protocols import schedules
from releaf.protocols.fast_pulse import FAST_PULSE_STEPS, Step

REAL_PROCEDURE = Path(__file__).parents[1] / "fixtures" / "maccor_procedure" / "EXP.000"  # TRI-AMDD/beep, Apache-2.0


def _seconds(value: str) -> float:
    """Inverse of the two time forms of the real files: hh:mm:ss and ::.ff."""
    h, m, s = value.split(":")
    return int(h or 0) * 3600 + int(m or 0) * 60 + float(s)


def _steps(xml_text: str):
    root = ET.fromstring(xml_text.encode())
    return root, root.find("ProcSteps").findall("TestStep")


def _ends(step):
    return [(e.findtext("EndType"), e.findtext("Oper"), e.findtext("Step"), e.findtext("Value"),
             e.findtext("ChanSafetyEnd")) for e in step.iter("EndEntry")]


# --- Maccor: values ---------------------------------------------------------------------------------------------------

def test_maccor_every_step_of_a_leaf_module():
    root, steps = _steps(schedules.maccor_procedure_xml(65.0))
    assert root.tag == "MaccorTestProcedure" and len(steps) == 8
    assert [s.findtext("StepType") for s in steps] == ["  Rest  ", "Dischrge", "  Rest  ", " Charge ", "  Rest  ",
                                                       "Dischrge", "  Rest  ", "  End   "]
    assert [s.findtext("StepMode") for s in steps[:7]] == ["        ", "Current "] * 3 + ["        "]
    # magnitudes in A; the step type carries the sign: -65, +65, -130 A for a 65 Ah module (1C, 1C, 2C)
    sign = {"Dischrge": -1.0, " Charge ": 1.0}
    signed = [sign[s.findtext("StepType")] * float(s.findtext("StepValue")) if s.findtext("StepValue") else 0.0
              for s in steps[:7]]
    assert signed == [0.0, -65.0, 0.0, 65.0, 0.0, -130.0, 0.0]
    for k, s in enumerate(steps[:7], start=1):
        step_time, v_high, v_low = _ends(s)
        assert step_time[:3] == ("StepTime", " = ", f"{k + 1:03d}")  # goto the next step
        assert v_high == ("Voltage ", ">= ", "008", "8.4", "True" if k == 1 else None)  # 2 x 4.2 V -> End step
        assert v_low == ("Voltage ", "<= ", "008", "6.0", "True" if k == 1 else None)   # 2 x 3.0 V -> End step
        assert [(r.findtext("ReportType"), r.findtext("Value")) for r in s.iter("ReportEntry")] == [("StepTime",
                                                                                                     "::.1")]
        assert s.find("Limits") is not None and len(s.find("Limits")) == 0
        assert s.findtext("Range") == "A" and [s.findtext(f"Option{i}") for i in (1, 2, 3)] == ["N"] * 3
    assert [_seconds(_ends(s)[0][3]) for s in steps[:7]] == [5, 10, 10, 10, 10, 5, 10]
    assert [_ends(s)[0][3] for s in steps[:2]] == ["00:00:05", "00:00:10"]
    assert sum(_seconds(_ends(s)[0][3]) for s in steps[:7]) == 60
    end = steps[7]
    assert len(end.find("Ends")) == 0 and len(end.find("Reports")) == 0 and end.findtext("StepValue") == ""


def test_maccor_other_unit_and_limits():
    _, steps = _steps(schedules.maccor_procedure_xml(20.0, series_groups=1))
    assert [s.findtext("StepValue") for s in steps[:7]] == ["", "20.0", "", "20.0", "", "40.0", ""]
    assert {_ends(s)[1][3] for s in steps[:7]} == {"4.2"} and {_ends(s)[2][3] for s in steps[:7]} == {"3.0"}


def test_maccor_file_text():
    text = schedules.maccor_procedure_xml(65.0)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\r\n'
                           '<?maccor-application progid="Maccor Procedure File"?>\r\n<MaccorTestProcedure>\r\n')
    assert text.endswith("</MaccorTestProcedure>\r\n") and "\n" not in text.replace("\r\n", "")
    assert text.isascii() and "<Oper>&gt;= </Oper>" in text and "<Oper>&lt;= </Oper>" in text
    assert schedules.maccor_procedure_xml(65.0) == text  # pure: same call, same bytes
    root = ET.fromstring(text.encode())
    assert [root.findtext(f"header/BuildTestVersion/{t}") for t in ("major", "minor", "release", "build")] == [
        "1", "5", "7006", "32043"]
    assert root.findtext("header/FileFormatVersion/BTVersion") == "11"
    assert "65 Ah" in root.findtext("header/ProcDesc/desc")


@pytest.mark.parametrize(("seconds", "text"), [(5, "00:00:05"), (10.0, "00:00:10"), (10800, "03:00:00"),
                                               (1080, "00:18:00"), (0.01, "::.01"), (0.1, "::.1"), (0.25, "::.25")])
def test_maccor_time(seconds, text):
    assert schedules.maccor_time(seconds) == text
    assert _seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", [0, -1, 1.5, float("nan"), 0.0001, 100 * 3600])
def test_maccor_time_refuses_forms_not_seen_in_real_files(bad):
    with pytest.raises(InputFileError):
        schedules.maccor_time(bad)


def test_bad_input():
    for kwargs in ({"nominal_capacity_Ah": 0.0}, {"nominal_capacity_Ah": float("inf")}, {"series_groups": 0},
                   {"group_voltage_limits_V": (4.2, 3.0)}, {"steps": ()},
                   {"steps": (Step("discharge", 5.0, 3.0, "above 2C"),)},
                   {"steps": (Step("rest", 2.5, 0.0, "half seconds are not a form seen in the real files"),)}):
        with pytest.raises(InputFileError):
            schedules.maccor_procedure_xml(**{"nominal_capacity_Ah": 65.0, **kwargs})


# --- Maccor: structure against a real procedure file ----------------------------------------------------------------

def _shape(path_or_text):
    """Element paths (with child order), fixed-width codes and the indentation of every element, of one file."""
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    root = ET.fromstring(text.encode())
    paths, child_orders = set(), set()

    def walk(e, p):
        q = f"{p}/{e.tag}"
        paths.add(q)
        child_orders.add((q, tuple(tag for tag, _ in groupby(c.tag for c in e))))  # repeats collapsed
        for c in e:
            walk(c, q)

    walk(root, "")
    codes = {tag: {e.text for e in root.iter(tag)} for tag in ("StepType", "StepMode", "EndType", "Oper",
                                                               "SpecialType", "ReportType", "Range", "Option1")}
    indents = {(len(m.group(1)), m.group(2)) for m in re.finditer(r"^( *)<(\w+)", text, re.M)}
    self_closed = set(re.findall(r"<(\w+)/>", text))
    return text.splitlines()[:2], paths, child_orders, codes, indents, self_closed


def test_maccor_structure_matches_a_real_procedure_file():
    real_head, real_paths, real_orders, real_codes, real_indents, real_closed = _shape(REAL_PROCEDURE)
    head, paths, orders, codes, indents, closed = _shape(schedules.maccor_procedure_xml(65.0))
    assert head == real_head  # XML declaration and the maccor-application processing instruction
    assert paths == real_paths - {"/MaccorTestProcedure/ProcSteps/TestStep/Limits/Current",
                                  "/MaccorTestProcedure/ProcSteps/TestStep/Limits/Voltage"}  # no CV steps here
    assert orders - real_orders == set()  # every element's children in an order the real file uses
    real_codes["Range"].add("A")  # EXP.000 has only range 4; "A" is the range of the pulse steps in beep's
    # diagnosticV1.000 ... diagnosticV5.000 and BioTest_000001.000 (not bundled)
    for tag, values in codes.items():
        assert values <= real_codes[tag], tag  # "  Rest  ", "Dischrge", "Current ", "Voltage ", ">= ", ...
    assert indents <= real_indents and closed == real_closed == {"Limits", "Ends", "Reports"}


def test_real_file_routes_voltage_safety_ends_to_its_end_step_as_ours_do():
    for text in (REAL_PROCEDURE.read_text(), schedules.maccor_procedure_xml(65.0)):
        _, steps = _steps(text)
        end_number = f"{len(steps):03d}"
        assert steps[-1].findtext("StepType") == "  End   "
        upper = [[e for e in _ends(s) if e[:2] == ("Voltage ", ">= ")][-1] for s in steps[:-1] if _ends(s)
                 and "Loop" not in s.findtext("StepType")]
        assert {e[2] for e in upper} == {end_number}
        assert [e[4] for e in _ends(steps[0]) if e[0] == "Voltage "] == ["True", "True"]  # ChanSafetyEnd on step 1
        assert all(e[4] is None for s in steps[1:] for e in _ends(s))


# --- Arbin ------------------------------------------------------------------------------------------------------------

# The layout of a schedule saved by MITS Pro 7.00 ("Schedule Version 7.00.13"), key names and order as in
# TRI-AMDD/beep beep/protocol/schedule_templates/20170630-3_6C_9per_5C.sdu; values and the GUID are made up here.
STEP_KEYS = ["m_uLimitNum", "m_szLabel", "m_szStepCtrlType", "m_szCurrentRange", "m_szVoltageRange", "m_szCtrlValue",
             "m_szExtCtrlValue1", "m_szExtCtrlValue2", "m_szExtDef", "m_uStepCtrlTypeExtFlag", "m_szAddIn",
             "m_bSampleClockStretch", "m_szUnitType", "m_szExUnitType1", "m_bSynchronizedStart", "m_bAutoPidTips",
             "m_nExtra1", "m_szExtDef1", "m_bBurstModeEnable"]
LIMIT_KEYS = ["m_bStepLimit", "m_bLogDataLimit", "m_szGotoStep", "Equation0_szLeft", "Equation0_szCompareSign",
              "Equation0_szRight", "Equation1_szLeft", "Equation1_szCompareSign", "Equation1_szRight",
              "Equation2_szLeft", "Equation2_szCompareSign", "Equation2_szRight"]
TEMPLATE = "\r\n".join([
    "[Version Section]", "Current_Version=Schedule Version 7.00.13",
    "[Signature Section]", "Signature={00000000-0000-0000-0000-000000000000}",
    "[Schedule]", "m_uMUID=1", "m_szCreator=", "m_bCheckCurrentSafety=0", "m_CurrentSafetyScope=-5.000000^10.000000",
    "m_bCheckVoltageSafety=1", "m_VoltageSafetyScope=1.800000^4.000000", "m_uStepNum=1",
    "m_szOriginalInfo=\xff\xfeMITS PRO VERSION: 7.00\xff\xfe", "m_fIrMax=10",
    "[Schedule_Step0]", *(f"{k}=" for k in STEP_KEYS),
    "[Schedule_Step0_Limit0]", *(f"{k}=" for k in LIMIT_KEYS),
    "[Schedule_UserDefineSafety0]", "m_szSafetyType=", "m_fMinValue=0", "m_fMaxValue=0"]) + "\r\n"


def _sections(text):
    out = {}
    for block in re.split(r"\r\n(?=\[)", text.rstrip("\r\n")):
        head, *lines = block.split("\r\n")
        out[head.strip("[]")] = [tuple(line.split("=", 1)) for line in lines]
    return out


def test_arbin_every_step_of_a_leaf_module():
    text = schedules.arbin_schedule_sdu(TEMPLATE, 65.0)
    sec = _sections(text)
    assert list(sec)[:3] == ["Version Section", "Signature Section", "Schedule"]
    assert list(sec)[-1] == "Schedule_UserDefineSafety0"  # kept, after the steps, as in the real file
    assert sec["Signature Section"] == [("Signature", "{00000000-0000-0000-0000-000000000000}")]
    head = dict(sec["Schedule"])
    assert head["m_uStepNum"] == "7" and head["m_CurrentSafetyScope"] == "-130.000000^130.000000"
    assert head["m_VoltageSafetyScope"] == "6.000000^8.400000" and head["m_bCheckCurrentSafety"] == "1"
    assert head["m_szOriginalInfo"] == "\xff\xfeMITS PRO VERSION: 7.00\xff\xfe" and head["m_fIrMax"] == "10"
    steps = [dict(sec[f"Schedule_Step{k}"]) for k in range(7)]
    assert all([key for key, _ in sec[f"Schedule_Step{k}"]] == STEP_KEYS for k in range(7))
    assert [s["m_szStepCtrlType"] for s in steps] == ["Rest", "Current(A)"] * 3 + ["Rest"]
    assert [float(s["m_szCtrlValue"] or 0) for s in steps] == [0.0, -65.0, 0.0, 65.0, 0.0, -130.0, 0.0]
    assert {s["m_szCurrentRange"] for s in steps} == {"Range1"} and {s["m_uLimitNum"] for s in steps} == {"4"}
    durations = []
    for k in range(7):
        limits = [dict(sec[f"Schedule_Step{k}_Limit{j}"]) for j in range(4)]
        assert all([key for key, _ in sec[f"Schedule_Step{k}_Limit{j}"]] == LIMIT_KEYS for j in range(4))
        t, hi, lo, log = limits
        assert (t["Equation0_szLeft"], t["Equation0_szCompareSign"], t["m_bStepLimit"]) == ("PV_CHAN_Step_Time", ">=",
                                                                                            "1")
        assert t["m_szGotoStep"] == ("End Test" if k == 6 else "Next Step")
        durations.append(float(t["Equation0_szRight"]))
        assert (hi["Equation0_szLeft"], hi["Equation0_szCompareSign"], hi["Equation0_szRight"],
                hi["m_szGotoStep"]) == ("PV_CHAN_Voltage", ">=", "8.4", "End Test")
        assert (lo["Equation0_szCompareSign"], lo["Equation0_szRight"], lo["m_szGotoStep"]) == ("<=", "6.0",
                                                                                                "End Test")
        assert (log["Equation0_szLeft"], log["Equation0_szCompareSign"], log["Equation0_szRight"],
                log["m_bStepLimit"], log["m_bLogDataLimit"]) == ("DV_Time", ">", "0.1", "0", "1")
    assert durations == [5, 10, 10, 10, 10, 5, 10]
    assert "\n" not in text.replace("\r\n", "") and text.endswith("\r\n")  # the template's line separator


def test_arbin_refuses_a_layout_it_has_not_seen():
    other = TEMPLATE.replace("m_bBurstModeEnable=\r\n", "")
    with pytest.raises(InputFileError, match="m_bBurstModeEnable"):
        schedules.arbin_schedule_sdu(other, 65.0)
    for bad in ("not a schedule", TEMPLATE.replace("[Version Section]", "[Versions]")):
        with pytest.raises(InputFileError):
            schedules.arbin_schedule_sdu(bad, 65.0)
    with pytest.raises(InputFileError):
        schedules.arbin_schedule_sdu(TEMPLATE, -65.0)
    with pytest.raises(InputFileError):
        schedules.arbin_schedule_sdu(TEMPLATE, 65.0, current_range="Range1\r\n[Evil]")


# --- CLI --------------------------------------------------------------------------------------------------------------

def test_cli_writes_both_files(tmp_path):
    template = tmp_path / "site.sdu"
    template.write_bytes(TEMPLATE.encode("latin-1"))
    result = CliRunner().invoke(app, ["fast-protocol", "--capacity-Ah", "65", "--maccor", str(tmp_path / "f.000"),
                                      "--arbin", str(tmp_path / "f.sdu"), "--arbin-template", str(template)])
    assert result.exit_code == 0, result.output
    _, steps = _steps((tmp_path / "f.000").read_text())
    assert [s.findtext("StepValue") for s in steps[:7]] == ["", "65.0", "", "65.0", "", "130.0", ""]
    sec = _sections((tmp_path / "f.sdu").read_bytes().decode("latin-1"))
    assert [dict(sec[f"Schedule_Step{k}"])["m_szCtrlValue"] for k in range(7)] == [
        "", "-65.0", "", "65.0", "", "-130.0", ""]
    assert sec["Signature Section"] == [("Signature", "{00000000-0000-0000-0000-000000000000}")]  # the site's
    assert "-130" in result.output


def test_cli_bad_input_exit_2(tmp_path):
    runner = CliRunner()
    for args in (["--capacity-Ah", "0", "--maccor", str(tmp_path / "f.000")], ["--arbin", str(tmp_path / "f.sdu")],
                 ["--arbin", str(tmp_path / "f.sdu"), "--arbin-template", str(tmp_path / "missing.sdu")],
                 ["--maccor", str(tmp_path / "no" / "such" / "dir" / "f.000")]):
        result = runner.invoke(app, ["fast-protocol", *args])
        assert result.exit_code == 2, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "f.000").exists()


def test_default_steps_are_the_fast_protocol():
    _, steps = _steps(schedules.maccor_procedure_xml())
    assert len(steps) == len(FAST_PULSE_STEPS) + 1
