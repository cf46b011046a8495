"""releaf's diagnosis on the committed subset of the independent protocol corpus (``benchmarks/protocol_corpus.py``).

GENERATED module tests with known truth (``tests/fixtures/protocol_corpus/truth.csv``): an OCV from PyBaMM's
Mohtat2020 set, not releaf's table, and cycler protocols releaf did not choose. Per file: no crash, and capacity
within 1 % of the truth (with group voltages also the weakest group and group R0 within 15 %). A partial
discharge (stopped on charge or time) has no capacity to measure: there releaf must refuse (capacity None, with a
warning) or, if it estimates one, come within 1 % of the module's true capacity to 3.0 V per group. The files releaf
does not handle yet are xfail (not strict) with what fails; remove a mark when the diagnosis learns the case.
The whole corpus and its table: ``benchmarks/validate_protocols.py``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import releaf

CORPUS = Path(__file__).resolve().parent / "fixtures" / "protocol_corpus"
with open(CORPUS / "truth.csv", newline="") as _f:
    TRUTH = {row["file"]: row for row in csv.DictReader(_f)}

_NOT_FROM_FULL = "charged to {v} V per group: below the Leaf OCV at 90 % SOC (4.088 V), refused as not from full"
NOT_YET = {
    "c00_arbin.csv": _NOT_FROM_FULL.format(v="4.0") + " (C/20 discharge to a module cut-off of 6.0 V)",
    "c30_maccor.041": "no group voltages and a module cut-off at 6.0 V (= 3.0 V per group on average, so the "
                      "discharge counts as reaching the cut-off): ValueError 'argmin of an empty sequence' in "
                      "releaf.diagnostics.groups.diagnose_groups (a crash, not a ReleafError)",
}


def _cases():
    for name in TRUTH:
        marks = [pytest.mark.xfail(strict=False, reason=NOT_YET[name])] if name in NOT_YET else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_cases()))
def test_diagnosis_matches_truth(name):
    truth = TRUTH[name]
    d = releaf.diagnose(CORPUS / name)  # a crash fails here
    if truth["full_discharge"] != "True":
        module_Ah = min(float(truth["group_1_capacity_Ah"]), float(truth["group_2_capacity_Ah"]))
        assert d.capacity_Ah is None and d.warnings or d.capacity_Ah == pytest.approx(module_Ah, rel=0.01)
        return
    assert d.capacity_Ah is not None, d.warnings
    assert d.capacity_Ah == pytest.approx(float(truth["capacity_Ah_true"]), rel=0.01)
    if truth["has_group_voltages"] == "True":
        assert d.weakest_group == int(truth["weakest_group"])
        for k in (1, 2):
            assert d.groups[k - 1].r0_mOhm == pytest.approx(float(truth[f"group_{k}_r0_mOhm"]), rel=0.15)


@pytest.mark.parametrize("name", list(TRUTH))
def test_every_file_reads(name):
    """Each layout is one releaf reads (detect + parse); group voltages where the layout has them."""
    ts = releaf.read(CORPUS / name)
    assert len(ts.group_columns) == (2 if TRUTH[name]["has_group_voltages"] == "True" else 0)
