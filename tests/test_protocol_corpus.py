"""releaf's diagnosis on the committed subset of the independent protocol corpus (``benchmarks/protocol_corpus.py``).

GENERATED module tests with known truth (``tests/fixtures/protocol_corpus/truth.csv``): an OCV from PyBaMM's
Mohtat2020 set, not releaf's table, and cycler protocols releaf did not choose. Per file: no crash, and capacity
within 1 % of the truth (with group voltages also the weakest group and group R0 within 15 %). A partial
discharge (stopped on charge or time) has no capacity to measure: there releaf must refuse (capacity None, with a
warning) or, if it estimates one, come within 1 % of the module's true capacity to 3.0 V per group. A file releaf
does not handle goes into ``NOT_YET`` (a strict xfail) with what fails.
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

NOT_YET: dict[str, str] = {}  # every committed case is handled (issue 10); a new case releaf misses goes here


def _cases():
    for name in TRUTH:
        marks = [pytest.mark.xfail(strict=True, reason=NOT_YET[name])] if name in NOT_YET else []
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
    assert d.capacity_conditions.charge_voltage_V == pytest.approx(float(truth["charge_V_per_group"]), abs=0.03)
    if truth["has_group_voltages"] == "True":
        assert d.weakest_group == int(truth["weakest_group"])
        for k in (1, 2):
            assert d.groups[k - 1].r0_mOhm == pytest.approx(float(truth[f"group_{k}_r0_mOhm"]), rel=0.15)


@pytest.mark.parametrize("name", list(TRUTH))
def test_every_file_reads(name):
    """Each layout is one releaf reads (detect + parse); group voltages where the layout has them."""
    ts = releaf.read(CORPUS / name)
    assert len(ts.group_columns) == (2 if TRUTH[name]["has_group_voltages"] == "True" else 0)
