"""Read releaf's fast-test cycler files with BEEP's own parsers and print the steps BEEP sees.

    .venv/bin/releaf fast-protocol --maccor /tmp/fast.000 --arbin /tmp/fast.sdu --arbin-template SITE.sdu
    /tmp/peers/bin/python benchmarks/check_schedules_beep.py /tmp/fast.000 /tmp/fast.sdu

Runs under a separate interpreter with BEEP installed (``python -m venv /tmp/peers && /tmp/peers/bin/pip install
beep``; BEEP is not a releaf dependency). BEEP (TRI-AMDD, Apache-2.0) generates the Maccor procedures and Arbin
schedules that ran on TRI's cyclers, so its parsers are an independent reader of both formats: not the vendor
software, but a check that the files parse into the intended steps, values and limits. Exits 1 when a file does
not parse or its steps differ from the protocol's (rest 5 s, -1C 10 s, rest 10 s, +1C 10 s, rest 10 s, -2C 5 s,
rest 10 s; the 1C current is read from the first discharge step).
"""

from __future__ import annotations

import sys

from beep.protocol.arbin import Schedule
from beep.protocol.maccor import Procedure

# (kind, sign of the current in 1C, seconds) of the fast pulse test (releaf.protocols.fast_pulse.FAST_PULSE_STEPS)
EXPECTED = [("rest", 0, 5), ("discharge", -1, 10), ("rest", 0, 10), ("charge", 1, 10), ("rest", 0, 10),
            ("discharge", -2, 5), ("rest", 0, 10)]


def _seconds(text: str) -> float:
    """Maccor's ``HH:MM:SS[.f]`` or Arbin's plain seconds [s]."""
    *hm, s = text.split(":")
    return sum(60 ** (len(hm) - k) * float(x) for k, x in enumerate(hm)) + float(s)


def maccor_steps(path: str) -> list[tuple[str, float, float]]:
    """(kind, signed current [A], duration [s]) of each step before ``End``, as BEEP's Procedure parses them."""
    kinds = {"Rest": "rest", "Dischrge": "discharge", "Charge": "charge"}
    steps = Procedure.from_file(path)["MaccorTestProcedure"]["ProcSteps"]["TestStep"]
    out = []
    for s in steps:
        if s["StepType"] == "End":
            break
        ends = s["Ends"]["EndEntry"]
        ends = ends if isinstance(ends, list) else [ends]
        time_end = next(e for e in ends if e["EndType"] == "StepTime")
        amps = float(s["StepValue"]) if s["StepMode"] == "Current" else 0.0
        kind = kinds[s["StepType"]]
        out.append((kind, -amps if kind == "discharge" else amps, _seconds(time_end["Value"])))
        print(f"  maccor {kind:9s} {out[-1][1]:8.1f} A {out[-1][2]:5.1f} s  ends: "
              + ", ".join(f"{e['EndType']} {e['Oper']} {e['Value']} -> {e['Step']}" for e in ends))
    return out


def arbin_steps(path: str) -> list[tuple[str, float, float]]:
    """(kind, signed current [A], duration [s]) of each schedule step, as BEEP's Schedule parses them."""
    schedule = Schedule.from_file(path)["Schedule"]
    out = []
    for key in sorted((k for k in schedule if k.startswith("Step")), key=lambda k: int(k.removeprefix("Step"))):
        step = schedule[key]
        amps = float(step["m_szCtrlValue"]) if step["m_szStepCtrlType"] == "Current(A)" else 0.0
        limits = [v for k, v in step.items() if k.startswith("Limit")]
        time_limit = next(lim for lim in limits if lim.get("Equation0_szLeft") == "PV_CHAN_Step_Time")
        kind = "rest" if amps == 0 else ("charge" if amps > 0 else "discharge")
        out.append((kind, amps, _seconds(time_limit["Equation0_szRight"])))
        print(f"  arbin  {kind:9s} {amps:8.1f} A {out[-1][2]:5.1f} s  label {step.get('m_szLabel')!r}, "
              f"{len(limits)} limits")
    return out


def matches(steps: list[tuple[str, float, float]]) -> bool:
    if len(steps) != len(EXPECTED):
        return False
    one_c = abs(steps[1][1])
    return one_c > 0 and all(k == ek and abs(a - s * one_c) < 1e-6 and abs(d - ed) < 1e-6
                             for (k, a, d), (ek, s, ed) in zip(steps, EXPECTED, strict=True))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    ok = True
    for name, read, path in (("Maccor", maccor_steps, argv[0]), ("Arbin", arbin_steps, argv[1])):
        print(f"{name}: {path}")
        try:
            good = matches(read(path))
        except Exception as err:  # any parse failure is the finding
            print(f"  BEEP could not read it: {type(err).__name__}: {err}")
            good = False
        print(f"  -> {'the protocol steps' if good else 'NOT the protocol steps'}")
        ok &= good
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
