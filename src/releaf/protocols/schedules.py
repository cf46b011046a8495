"""Cycler files for the fast pulse test: a Maccor procedure (``.000``) and an Arbin schedule (``.sdu``).

Both writers turn the cycler-neutral step list ``releaf.protocols.fast_pulse.FAST_PULSE_STEPS`` (rest / 1C discharge /
rest /
1C charge / rest / 2C discharge / rest, 60 s) into the text of a vendor file, with the currents in A for the unit's
nominal capacity, a step-time end on every step, a data record every 0.1 s and voltage safety ends that stop the
test. They are pure functions of their arguments (no clock, no randomness): the same call writes the same bytes.

What was learned from where (read, not copied; see the function docstrings for the details):

- Maccor: the procedure files shipped by TRI-AMDD/beep (Apache-2.0) under ``beep/protocol/procedure_templates/``
  (``EXP.000``, ``BioTest_000001.000``, ``diagnosticV1.000`` ... ``diagnosticV5.000``, ``drivingV1.000``; 647 steps
  in all), ``beep/tests/test_files/xTESLADIAG_000004_CH69.000`` and ``goto_end_example.000``. ``EXP.000`` is bundled
  unmodified as ``tests/fixtures/maccor_procedure/EXP.000`` and the tests compare the generated structure with it.
- Arbin: ``beep/protocol/schedule_templates/20170630-3_6C_9per_5C.sdu`` (a schedule saved by MITS Pro 7.00, "Schedule
  Version 7.00.13") and ``beep/tests/test_files/Iris_000100.sdu`` (a schedule beep wrote from a Maccor procedure,
  the one place a ``Current(A)`` step was seen).

Nothing here has been loaded into Maccor MIMS or Arbin MITS Pro: releaf has neither. See
``docs/fast-test-protocol.md`` for what an operator should check before the first run.
"""

from __future__ import annotations

import math
import re
from xml.sax.saxutils import escape

from releaf.errors import InputFileError
from releaf.protocols.fast_pulse import (
    FAST_PULSE_STEPS,
    GROUP_V_LIMITS_V,
    MAX_C_RATE,
    SAMPLE_PERIOD_S,
    protocol_duration_s,
)

_WHERE = "<cycler schedule>"

# --- Maccor ----------------------------------------------------------------------------------------------------------

# header of every real procedure file compared (all 8 beep templates: MIMS build 1.5.7006.32043, BTVersion 11;
# files saved by later MIMS releases 7062 and 7746 seen in public search excerpts also carry BTVersion 11)
MACCOR_BUILD = ("1", "5", "7006", "32043")
MACCOR_BT_VERSION = "11"
# the fixed-width (8 character) codes exactly as they appear in the real files
MACCOR_STEP_TYPES = {"rest": "  Rest  ", "charge": " Charge ", "discharge": "Dischrge", "end": "  End   "}
MACCOR_CURRENT_MODE = "Current "
MACCOR_NO_MODE = " " * 8
MACCOR_RANGE = "A"


def maccor_time(duration_s: float) -> str:
    """A duration as Maccor procedure files write it.

    Whole seconds as ``hh:mm:ss`` (``00:00:05``, ``03:00:00`` in the real files); durations below one second as
    ``::.f`` (the real files have ``::.01`` for 10 ms records, so 0.1 s is written ``::.1`` by analogy; that exact
    string was not seen in a real file).

    Parameters
    ----------
    duration_s : duration [s]; whole seconds up to 99:59:59, or a fraction of a second (>= 1 ms)

    Returns
    -------
    The text of a ``<Value>`` element.
    """
    d = float(duration_s)
    if not (math.isfinite(d) and d > 0):
        raise InputFileError(_WHERE, f"a step time must be a positive number of seconds, got {duration_s!r}")
    if d < 1.0:
        ms = round(d * 1000.0)
        if ms < 1 or abs(ms - d * 1000.0) > 1e-6:
            raise InputFileError(_WHERE, f"sub-second times are written to 1 ms, got {d!r} s")
        return "::" + f"{ms / 1000.0:.3f}".rstrip("0")[1:]
    whole = round(d)
    if abs(whole - d) > 1e-9 or whole >= 100 * 3600:
        raise InputFileError(_WHERE, f"step time {d!r} s: releaf writes whole seconds below 100 h or a fraction "
                                       "below 1 s (the two forms seen in real procedure files)")
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _num(x: float) -> str:
    """A number as the real files write it: shortest decimal with a point (``1.0``, ``0.1429``, ``4.25``)."""
    return repr(float(round(x, 4)) + 0.0)


def _check_steps(nominal_capacity_Ah, series_groups, steps, record_every_s, group_voltage_limits_V, max_c_rate):
    if not (isinstance(nominal_capacity_Ah, int | float) and math.isfinite(nominal_capacity_Ah)
            and nominal_capacity_Ah > 0):
        raise InputFileError(_WHERE, f"nominal capacity must be a positive number of Ah, got {nominal_capacity_Ah!r}")
    if not (isinstance(series_groups, int) and series_groups >= 1):
        raise InputFileError(_WHERE, f"series groups must be a whole number >= 1, got {series_groups!r}")
    v_lo, v_hi = (float(v) * series_groups for v in group_voltage_limits_V)
    if not (0 < v_lo < v_hi):
        raise InputFileError(_WHERE, f"group voltage limits must be 0 < low < high, got {group_voltage_limits_V!r}")
    if not 1 <= len(steps) <= 998:
        raise InputFileError(_WHERE, f"a schedule needs 1 to 998 steps, got {len(steps)}")
    maccor_time(record_every_s)
    for k, s in enumerate(steps, start=1):
        if s.kind not in ("rest", "charge", "discharge"):
            raise InputFileError(_WHERE, f"step {k}: kind must be rest, charge or discharge, got {s.kind!r}")
        maccor_time(s.duration_s)
        if s.kind != "rest" and not 0 < s.c_rate <= max_c_rate + 1e-12:
            raise InputFileError(_WHERE, f"step {k}: C-rate {s.c_rate:g} outside (0, {max_c_rate:g}] "
                                           f"(|I| <= {max_c_rate:g}C = {max_c_rate * nominal_capacity_Ah:g} A)")
    return v_lo, v_hi


def _step_note(s) -> str:
    return f"rest {s.duration_s:g} s" if s.kind == "rest" else f"{s.kind} {s.c_rate:g}C {s.duration_s:g} s"


def maccor_procedure_xml(nominal_capacity_Ah: float = 65.0, *, series_groups: int = 2, steps=FAST_PULSE_STEPS,
                         record_every_s: float = SAMPLE_PERIOD_S, group_voltage_limits_V=GROUP_V_LIMITS_V,
                         max_c_rate: float = MAX_C_RATE, description: str | None = None,
                         newline: str = "\r\n") -> str:
    """The fast pulse test as a Maccor MIMS procedure file (``.000``, XML).

    One ``TestStep`` per step of ``steps`` and a final ``End`` step. Each step: type ``Rest`` / ``Charge`` /
    ``Dischrge``, mode ``Current`` with the current magnitude in A (``c_rate * nominal_capacity_Ah``; the step type
    gives the sign), no ``Limits``, three end entries (step time ``=`` the duration, goto the next step; voltage
    ``>=`` the upper and ``<=`` the lower module limit, goto the End step), one report entry (step time, every
    ``record_every_s``), range ``A``, options ``N``. The voltage ends of the first step carry
    ``<ChanSafetyEnd>True</ChanSafetyEnd>`` as in every real file compared; the meaning of that flag (a channel
    safety limit) is inferred from its name, not from vendor documentation.

    Parameters
    ----------
    nominal_capacity_Ah : nominal capacity of the unit [Ah] (a Leaf module: 65, so 1C = 65 A)
    series_groups : cell groups in series in the unit (a Leaf module: 2); the voltage limits are per group
    steps : the step list (``releaf.protocols.fast_pulse.Step``); default the 60 s fast pulse test
    record_every_s : data record interval [s] on every step
    group_voltage_limits_V : lower, upper voltage per series group [V] (3.0, 4.2 -> module 6.0, 8.4 V)
    max_c_rate : largest C-rate allowed in a step [1/h]; a step above it is refused (|I| <= 2C = 130 A)
    description : text of ``<desc>`` in the header; default names the test and the capacity
    newline : line separator; CRLF as in the ``diagnosticV1.000`` ... ``V5.000`` templates (``EXP.000`` and
        ``BioTest_000001.000`` use LF; XML readers accept both)

    Returns
    -------
    The whole file as text (ASCII, declared UTF-8); write it with ``newline=""`` or as bytes.

    Notes
    -----
    Layout and encodings follow the real procedure files of TRI-AMDD/beep (Apache-2.0):
    ``beep/protocol/procedure_templates/EXP.000`` (bundled unmodified as ``tests/fixtures/maccor_procedure/EXP.000``,
    the structural reference of the tests), ``BioTest_000001.000``, ``diagnosticV1.000`` ... ``diagnosticV5.000``,
    ``drivingV1.000`` (beep 2026.2.7 wheel) and ``beep/tests/test_files/xTESLADIAG_000004_CH69.000``:

    - line 1 ``<?xml version="1.0" encoding="UTF-8"?>``, line 2 ``<?maccor-application progid="Maccor Procedure
      File"?>``, root ``MaccorTestProcedure`` with ``header`` (``BuildTestVersion`` 1.5.7006.32043,
      ``FileFormatVersion/BTVersion`` 11, ``ProcDesc/desc``) and ``ProcSteps``; two-space indentation; ``<Limits/>``
      ``<Ends/>`` ``<Reports/>`` self-closed when empty, other empty elements written open/close;
    - the 8-character codes ``"  Rest  "``, ``" Charge "``, ``"Dischrge"``, ``"  End   "``, ``"Current "``,
      ``"StepTime"``, ``"Voltage "``; ``SpecialType`` a single space; operators ``" = "`` (every one of the 184
      step-time ends in those files; none uses ``>=`` for time), ``">= "``, ``"<= "`` (escaped ``&gt;``, ``&lt;``);
      goto step numbers three digits (``002``); times ``hh:mm:ss`` / ``::.01`` (see :func:`maccor_time`);
    - safety voltage ends on every step going to the End step, as in ``EXP.000`` (the diagnostic templates send
      them to a recovery step instead).

    Not verified (no MIMS here): that MIMS loads the file; that ``::.1`` means a 0.1 s record interval (only
    ``::.01`` was seen); that range ``A`` (seen next to ``4`` in the real files) suits a 130 A channel; line-ending
    and note-length tolerance of MIMS. A current safety limit is not written into the file (the real files carry
    none on current-controlled steps): set the channel's current limit in MIMS.

    References
    ----------
    TRI-AMDD/beep, https://github.com/TRI-AMDD/beep (procedure templates and ``beep/protocol/maccor.py``).
    """
    v_lo, v_hi = _check_steps(nominal_capacity_Ah, series_groups, steps, record_every_s, group_voltage_limits_V,
                              max_c_rate)
    n = len(steps)
    end_step = f"{n + 1:03d}"
    if description is None:
        description = (f"releaf fast SOH pulse test, {protocol_duration_s(steps):g} s, {nominal_capacity_Ah:g} Ah, "
                       f"{v_lo:g}-{v_hi:g} V")
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<?maccor-application progid="Maccor Procedure File"?>',
           "<MaccorTestProcedure>", "  <header>", "    <BuildTestVersion>"]
    out += [f"      <{tag}>{v}</{tag}>" for tag, v in zip(("major", "minor", "release", "build"), MACCOR_BUILD,
                                                             strict=True)]
    out += ["    </BuildTestVersion>", "    <FileFormatVersion>", f"      <BTVersion>{MACCOR_BT_VERSION}</BTVersion>",
            "    </FileFormatVersion>", "    <ProcDesc>", f"      <desc>{escape(description)}</desc>",
            "    </ProcDesc>", "  </header>", "  <ProcSteps>"]

    def end_entry(end_type, oper, goto, value, safety=False):
        lines = ["        <EndEntry>", f"          <EndType>{end_type}</EndType>",
                 "          <SpecialType> </SpecialType>", f"          <Oper>{escape(oper)}</Oper>",
                 f"          <Step>{goto}</Step>", f"          <Value>{value}</Value>"]
        if safety:
            lines.append("          <ChanSafetyEnd>True</ChanSafetyEnd>")
        return lines + ["        </EndEntry>"]

    for k, s in enumerate(steps, start=1):
        rest = s.kind == "rest"
        out += ["    <TestStep>", f"      <StepType>{MACCOR_STEP_TYPES[s.kind]}</StepType>",
                f"      <StepMode>{MACCOR_NO_MODE if rest else MACCOR_CURRENT_MODE}</StepMode>",
                f"      <StepValue>{'' if rest else _num(abs(s.current_A(nominal_capacity_Ah)))}</StepValue>",
                "      <Limits/>", "      <Ends>"]
        out += end_entry("StepTime", " = ", f"{k + 1:03d}", maccor_time(s.duration_s))
        out += end_entry("Voltage ", ">= ", end_step, _num(v_hi), safety=k == 1)
        out += end_entry("Voltage ", "<= ", end_step, _num(v_lo), safety=k == 1)
        out += ["      </Ends>", "      <Reports>", "        <ReportEntry>",
                "          <ReportType>StepTime</ReportType>",
                f"          <Value>{maccor_time(record_every_s)}</Value>", "        </ReportEntry>", "      </Reports>",
                f"      <Range>{MACCOR_RANGE}</Range>",
                "      <Option1>N</Option1>", "      <Option2>N</Option2>", "      <Option3>N</Option3>",
                f"      <StepNote>{escape(_step_note(s))}</StepNote>", "    </TestStep>"]
    out += ["    <TestStep>", f"      <StepType>{MACCOR_STEP_TYPES['end']}</StepType>",
            f"      <StepMode>{MACCOR_NO_MODE}</StepMode>", "      <StepValue></StepValue>", "      <Limits/>",
            "      <Ends/>", "      <Reports/>", "      <Range></Range>", "      <Option1></Option1>",
            "      <Option2></Option2>", "      <Option3></Option3>", "      <StepNote></StepNote>", "    </TestStep>",
            "  </ProcSteps>", "</MaccorTestProcedure>"]
    return newline.join(out) + newline


# --- Arbin -----------------------------------------------------------------------------------------------------------

# key order of a step and of a step limit in "Schedule Version 7.00.13" files (the MITS Pro 7.00 schedule in beep)
ARBIN_STEP_KEYS = ("m_uLimitNum", "m_szLabel", "m_szStepCtrlType", "m_szCurrentRange", "m_szVoltageRange",
                   "m_szCtrlValue", "m_szExtCtrlValue1", "m_szExtCtrlValue2", "m_szExtDef", "m_uStepCtrlTypeExtFlag",
                   "m_szAddIn", "m_bSampleClockStretch", "m_szUnitType", "m_szExUnitType1", "m_bSynchronizedStart",
                   "m_bAutoPidTips", "m_nExtra1", "m_szExtDef1", "m_bBurstModeEnable")
ARBIN_LIMIT_KEYS = ("m_bStepLimit", "m_bLogDataLimit", "m_szGotoStep",
                    *(f"Equation{i}_sz{part}" for i in range(3) for part in ("Left", "CompareSign", "Right")))
ARBIN_SCHEDULE_KEYS_SET = ("m_uStepNum", "m_bCheckCurrentSafety", "m_CurrentSafetyScope", "m_bCheckVoltageSafety",
                           "m_VoltageSafetyScope")
_STEP_SECTION = re.compile(r"Schedule_Step\d+(_Limit\d+)?")


def _parse_sdu(text: str, where: str) -> list[tuple[str, list[list[str]]]]:
    sections: list[tuple[str, list[list[str]]]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith("[") and line.rstrip().endswith("]"):
            sections.append((line.strip()[1:-1], []))
        elif sections and "=" in line:
            sections[-1][1].append(line.split("=", 1))
        else:
            raise InputFileError(where, "not an Arbin schedule: expected [Section] or key=value", line=n)
    return sections


def arbin_schedule_sdu(template: str, nominal_capacity_Ah: float = 65.0, *, series_groups: int = 2,
                       steps=FAST_PULSE_STEPS, record_every_s: float = SAMPLE_PERIOD_S,
                       group_voltage_limits_V=GROUP_V_LIMITS_V, max_c_rate: float = MAX_C_RATE,
                       current_range: str = "Range1", template_name: str = "<Arbin template>") -> str:
    """The fast pulse test as an Arbin MITS Pro schedule (``.sdu``), written into the site's own schedule file.

    A schedule saved by MITS Pro carries installation data (``[Signature Section]`` GUID, ``m_uMUID``,
    ``m_szOriginalInfo`` with the software build, customer and serial number) that releaf cannot make up. So the
    writer takes ``template``, the text of any schedule saved by the MITS Pro that will run the test, keeps every
    section and key of it, and replaces only the step sections and the global safety keys (``m_uStepNum``,
    ``m_CurrentSafetyScope`` = +/- ``max_c_rate`` x capacity, ``m_VoltageSafetyScope`` = module limits, both checks
    on). The ``[Schedule_UserDefineSafety...]`` and other sections stay as they were.

    Each step: ``m_szStepCtrlType`` ``Rest`` or ``Current(A)`` with the signed current in A (negative =
    discharge), four limits: ``PV_CHAN_Step_Time >=`` duration (goto ``Next Step``, ``End Test`` after the last
    step), ``PV_CHAN_Voltage >=`` upper and ``<=`` lower module limit (goto ``End Test``), and a log-only limit
    ``DV_Time >`` ``record_every_s``. Labels ``"<n>-<what>"`` as in beep's converted schedules.

    Parameters
    ----------
    template : text of a schedule saved by the site's MITS Pro (decode the file as latin-1); it must contain
        ``[Version Section]``, ``[Schedule]`` and at least one step whose keys are the "Schedule Version 7.00" step
        layout (:data:`ARBIN_STEP_KEYS`); another layout is refused rather than guessed
    nominal_capacity_Ah : nominal capacity of the unit [Ah] (a Leaf module: 65)
    series_groups : cell groups in series (a Leaf module: 2); voltage limits are per group
    steps : the step list; default the 60 s fast pulse test
    record_every_s : data log interval [s]
    group_voltage_limits_V : lower, upper voltage per series group [V]
    max_c_rate : largest C-rate [1/h]; steps above it are refused, and it sets the current safety scope
    current_range : ``m_szCurrentRange`` of every step (real files: ``Range1`` ... ``Range4``,
        ``Parallel-High``); channel-specific: pick the range that carries 130 A on your hardware
    template_name : file name for error messages

    Returns
    -------
    The schedule text with the template's line separator; encode as latin-1 (as MITS Pro files are read by beep).

    Notes
    -----
    Learned from TRI-AMDD/beep (Apache-2.0): ``beep/protocol/schedule_templates/20170630-3_6C_9per_5C.sdu`` (saved by
    MITS Pro 7.00, "Schedule Version 7.00.13": section and key names and order, ``Rest``, ``PV_CHAN_Step_Time``,
    ``DV_Time``, ``Next Step``, ``End Test``, ``%.6f^%.6f`` safety scopes), ``beep/tests/test_files/Iris_000100.sdu``
    (a schedule beep generated from a Maccor procedure: ``Current(A)`` with a signed value in A, ``PV_CHAN_Voltage``
    limits) and ``beep/protocol/protocol_schemas/arbin_schedule_schema.yaml``.

    Not verified (no MITS Pro here): that MITS Pro accepts a schedule whose steps were replaced while its
    ``[Signature Section]`` was kept (beep does the same, but whether the signature covers the content is not
    documented in what was read); ``Current(A)`` was seen only in a beep-generated file, not in one saved by MITS
    Pro; the current range name for a 130 A channel.
    """
    v_lo, v_hi = _check_steps(nominal_capacity_Ah, series_groups, steps, record_every_s, group_voltage_limits_V,
                              max_c_rate)
    if not re.fullmatch(r"[A-Za-z0-9_ -]{1,32}", current_range):
        raise InputFileError(_WHERE, f"current range must be a range name such as Range1, got {current_range!r}")
    sections = _parse_sdu(template, template_name)
    names = [name for name, _ in sections]
    for need in ("Version Section", "Schedule", "Schedule_Step0"):
        if need not in names:
            raise InputFileError(template_name, f"not a usable Arbin schedule template: no [{need}] section")
    step0 = [k for k, _ in sections[names.index("Schedule_Step0")][1]]
    if tuple(step0) != ARBIN_STEP_KEYS:
        missing = sorted(set(ARBIN_STEP_KEYS) - set(step0))
        extra = sorted(set(step0) - set(ARBIN_STEP_KEYS))
        raise InputFileError(template_name, "step layout differs from the MITS Pro 7.00 layout releaf writes "
                                              f"(missing {missing or 'none'}, extra {extra or 'none'}, or reordered)")
    header = dict(sections[names.index("Schedule")][1])
    absent = [k for k in ARBIN_SCHEDULE_KEYS_SET if k not in header]
    if absent:
        raise InputFileError(template_name, f"[Schedule] lacks {', '.join(absent)}")
    i_max = max_c_rate * nominal_capacity_Ah
    new_header = {"m_uStepNum": str(len(steps)), "m_bCheckCurrentSafety": "1",
                  "m_CurrentSafetyScope": f"{-i_max:.6f}^{i_max:.6f}", "m_bCheckVoltageSafety": "1",
                  "m_VoltageSafetyScope": f"{v_lo:.6f}^{v_hi:.6f}"}

    def limit(step_limit, goto, left, sign, right):
        body = dict.fromkeys(ARBIN_LIMIT_KEYS, "")
        body.update(m_bStepLimit=step_limit, m_bLogDataLimit="1", m_szGotoStep=goto, Equation0_szLeft=left,
                    Equation0_szCompareSign=sign, Equation0_szRight=right)
        return list(body.items())

    new_steps: list[tuple[str, list]] = []
    for k, s in enumerate(steps):
        rest = s.kind == "rest"
        body = dict.fromkeys(ARBIN_STEP_KEYS, "")
        body.update(m_uLimitNum="4", m_szLabel=f"{k + 1}-{_step_note(s)}",
                    m_szStepCtrlType="Rest" if rest else "Current(A)", m_szCurrentRange=current_range,
                    m_szVoltageRange="High", m_szCtrlValue="" if rest else _num(s.current_A(nominal_capacity_Ah)),
                    m_uStepCtrlTypeExtFlag="0", m_bSampleClockStretch="0", m_bSynchronizedStart="0",
                    m_bAutoPidTips="0", m_nExtra1="0", m_bBurstModeEnable="0")
        new_steps.append((f"Schedule_Step{k}", list(body.items())))
        last = k == len(steps) - 1
        limits = [limit("1", "End Test" if last else "Next Step", "PV_CHAN_Step_Time", ">=", _num(s.duration_s)),
                  limit("1", "End Test", "PV_CHAN_Voltage", ">=", _num(v_hi)),
                  limit("1", "End Test", "PV_CHAN_Voltage", "<=", _num(v_lo)),
                  limit("0", "Next Step", "DV_Time", ">", _num(record_every_s))]
        new_steps += [(f"Schedule_Step{k}_Limit{j}", lim) for j, lim in enumerate(limits)]

    out_sections: list[tuple[str, list]] = []
    inserted = False
    for name, body in sections:
        if _STEP_SECTION.fullmatch(name):
            if not inserted:
                out_sections += new_steps
                inserted = True
            continue
        if name == "Schedule":
            body = [[k, new_header.get(k, v)] for k, v in body]
        out_sections.append((name, body))
    sep = "\r\n" if "\r\n" in template else "\n"
    lines = []
    for name, body in out_sections:
        lines.append(f"[{name}]")
        lines += [f"{k}={v}" for k, v in body]
    return sep.join(lines) + sep
