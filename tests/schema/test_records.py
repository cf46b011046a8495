"""Stage records: versioned, JSON only at the edges, JSON Schema generated from the code and honoured by it."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import MODULE_FILES

import releaf
from releaf.errors import InputFileError
from releaf.schema.records import RECORDS, Diagnosis, GradeClass, RunResult


@pytest.fixture(scope="module")
def ornl_diagnosis() -> Diagnosis:
    return releaf.diagnose(releaf.read(MODULE_FILES["1_0c"]))


@pytest.fixture(scope="module")
def run() -> RunResult:
    from test_chain import LOT, diagnosis, entry, lab_chain

    return lab_chain().run_from_diagnoses(
        [(entry(s), diagnosis(s, c, r, n)) for s, (c, r, n) in LOT.items()])


def test_every_record_has_a_version_and_a_valid_schema():
    for name, cls in RECORDS.items():
        schema = cls.json_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        assert "schema_version" in schema["properties"], name
        assert cls.__dataclass_fields__["schema_version"].default.count(".") == 2


def test_real_diagnosis_json_validates_against_its_schema(ornl_diagnosis):
    full = ornl_diagnosis.to_dict(full=True)
    jsonschema.validate(full, Diagnosis.json_schema())
    assert full["schema_version"] == "1.1.0"
    assert json.loads(json.dumps(full, allow_nan=False)) == full  # plain JSON: no numpy, NaN or tuples


def test_diagnosis_round_trips_through_json(ornl_diagnosis):
    back = Diagnosis.from_dict(json.loads(json.dumps(ornl_diagnosis.to_dict(full=True))))
    # the JSON edge rounds to 6 significant digits; the headline values survive that
    assert back.capacity_Ah == pytest.approx(ornl_diagnosis.capacity_Ah, rel=1e-5)
    assert back.groups[0].r0_mOhm == pytest.approx(ornl_diagnosis.groups[0].r0_mOhm, rel=1e-5)
    assert len(back.discharges) == len(ornl_diagnosis.discharges) and back.discharges[0].is_full


def test_run_result_json_validates_and_round_trips(run):
    data = json.loads(json.dumps(run.to_dict()))
    jsonschema.validate(data, RunResult.json_schema())
    back = RunResult.from_dict(data)
    assert [m.status for m in back.modules] == [m.status for m in run.modules]
    assert [s.serial for s in back.stations] == [s.serial for s in run.stations]
    assert back.stations[0].grade is GradeClass.A


def test_from_dict_refuses_another_major_version_and_bad_fields(ornl_diagnosis):
    data = ornl_diagnosis.to_dict(full=True)
    with pytest.raises(InputFileError, match="schema_version 2.0.0"):
        Diagnosis.from_dict({**data, "schema_version": "2.0.0"})
    with pytest.raises(InputFileError, match="capacity_Ah"):
        Diagnosis.from_dict({**data, "capacity_Ah": "lots"})


def test_grade_class_is_one_str_enum():
    assert list(GradeClass) == ["A", "B", "C", "reject"]
    assert GradeClass.worst("A", "C", "B") == "C" and GradeClass("reject").rank == 3
    assert json.dumps({"g": GradeClass.B}) == '{"g": "B"}'
