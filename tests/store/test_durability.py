"""Durability, short form: kill -9 at every phase boundary and at random, two runs at once, the same file under two
names, a retest to reject. Each on a SQLite file, and on PostgreSQL when ``.ci/run`` started one.

The whole suite (more trials, a few hundred files) is ``benchmarks/durability.py``.
"""

from __future__ import annotations

import csv
import shutil

import pytest
import sqlalchemy as sa
from conftest import REPO

from releaf.store import durability as d
from releaf.store.repair import check

PROTOCOL_CORPUS = sorted(p for p in (REPO / "tests" / "fixtures" / "protocol_corpus").iterdir()
                         if p.name not in ("SOURCE.txt", "truth.csv"))


def add_manifest_row(folder, **values):
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as f:
        fields = next(csv.reader(f))
    with open(folder / "manifest.csv", "a", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, fieldnames=fields).writerow({k: values.get(k, "") for k in fields})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """12 generated module tests and the independent protocol corpus's files (made apart from releaf.sim)."""
    folder = tmp_path_factory.mktemp("corpus")
    d.make_corpus(folder, packs=1, modules_per_pack=12, extra=PROTOCOL_CORPUS[:4])
    return folder


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}"
    p = d.releaf_run(corpus, url)
    assert p.returncode == 0, p.stderr
    snap = d.snapshot(url)
    assert snap["rows"]["modules"] == 16 and snap["stations"], snap["rows"]
    assert check(url).ok
    return snap


@pytest.mark.parametrize("point", ["migrate:begin", "migrate:ddl#3", "migrate:ddl#28", "migrate:end",
                                   "ingest:begin", "ingest:row#8", "commit:before", "commit:after"])
def test_a_kill_at_each_phase_leaves_the_database_before_or_complete(corpus, reference, db_url, point):
    trial = d.kill_trial(corpus, db_url, reference, phase=point, kill_at=point)
    assert trial.killed, trial
    expected = "complete" if point == "commit:after" else "before"
    assert trial.after_kill == expected, trial
    assert trial.usable and trial.final.ok, trial


def test_random_kills_never_leave_a_partial_database(corpus, reference, tmp_path):
    delays = d.random_delays(3, 4.0, seed=7)
    for k, delay in enumerate(delays):
        url = f"sqlite:///{tmp_path / f'r{k}.db'}"
        trial = d.kill_trial(corpus, url, reference, phase="random", kill_after_s=delay)
        assert trial.after_kill in ("before", "complete") and trial.usable and trial.final.ok, trial


def test_a_kill_while_migrating_an_older_database_keeps_its_records(corpus, reference, tmp_path):
    """A database at revision 0001 holding a plant's records is either left at 0001 intact, or fully migrated."""
    from alembic import command

    from releaf.store.db import alembic_config, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    assert d.releaf_run(corpus, url).returncode == 0
    engine = make_engine(url)
    command.downgrade(alembic_config(engine), "0001")
    engine.dispose()
    old = d.snapshot(url)
    assert old["rows"] == reference["rows"]
    shutil.copy(tmp_path / "old.db", tmp_path / "old-copy.db")
    trial = d.kill_trial(corpus, url, reference, phase="migrate 0001→head", kill_at="migrate:ddl#2", before=old)
    assert trial.killed and trial.after_kill == "before" and trial.usable and trial.final.ok, trial


def test_two_runs_at_once_on_overlapping_folders_both_finish_with_every_record_once(corpus, reference, db_url,
                                                                                       tmp_path):
    a = d.subset(corpus, tmp_path / "a", slice(0, 11))
    b = d.subset(corpus, tmp_path / "b", slice(5, 16))
    done = d.concurrent_runs([a, b], db_url)
    assert [p.returncode for p in done] == [0, 0], [p.stderr[-400:] for p in done]
    snap = d.snapshot(db_url)
    for kind in ("packs", "modules", "tests", "diagnoses", "grades"):
        assert snap[kind] == reference[kind], kind       # the same records as one run of the union, once each
    assert snap["rows"]["tests"] == 16 and check(db_url).ok
    members = [m for ms, _ in snap["stations"].values() for m in ms]
    assert len(members) == len(set(members))            # no module in two stations


def test_the_same_file_under_two_names_is_one_test(corpus, tmp_path):
    folder = d.subset(corpus, tmp_path / "dup", slice(0, 4))
    first = next(p for p in folder.glob("*.csv") if p.name != "manifest.csv" and "Metadata" not in p.name)
    shutil.copy(first, folder / "copy-of-first.csv")
    add_manifest_row(folder, file="copy-of-first.csv", module_serial="GEN-COPY-M99")
    url = f"sqlite:///{tmp_path / 'dup.db'}"
    p = d.releaf_run(folder, url)
    assert p.returncode == 0, p.stderr
    snap = d.snapshot(url)
    assert "GEN-COPY-M99" not in snap["modules"] and snap["rows"]["tests"] == 4
    assert "same bytes" in p.stdout and check(url).ok


def test_a_retest_to_reject_flags_the_station_and_is_counted(corpus, tmp_path):
    """A module built into a station, retested with a file of a dead module: reject, its station flagged."""
    url = f"sqlite:///{tmp_path / 'retest.db'}"
    first = d.subset(corpus, tmp_path / "first", slice(0, 12))
    assert d.releaf_run(first, url).returncode == 0
    snap = d.snapshot(url)
    station, (members, status) = next(iter(snap["stations"].items()))
    assert status == "built"
    retest = tmp_path / "retest"
    retest.mkdir()
    dead = next(p for p in PROTOCOL_CORPUS if p.suffix == ".csv")
    shutil.copy(dead, retest / "retest.csv")
    # c00: a module test that took the groups down to 2.60 V (over-discharged); simulated, so marked generated
    (retest / "manifest.csv").write_text(f"file,module_serial,generated\nretest.csv,{members[0]},true\n",
                                         encoding="utf-8")
    p = d.releaf_run(retest, url)
    assert p.returncode == 0, p.stderr
    import json

    summary = json.loads(p.stdout)
    (module,) = summary["modules"]
    assert module["grade"] == "reject", module  # c00: SOH ~63 %, groups 0.8 V apart at the end: below C
    assert module["status"] == "rejected" and "flagged for disassembly" in module["assembly_reason"]
    assert not any("IEC 63338" in r for r in module["reasons"]), module["reasons"]  # rejected on its numbers
    assert summary["flagged_stations"][0]["station"] == station
    after = d.snapshot(url)
    assert after["stations"][station][1] == "disassemble" and check(url).ok
    engine = sa.create_engine(url)
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM audit_events WHERE action = 'flag_disassembly'")).scalar() == 1
    engine.dispose()
