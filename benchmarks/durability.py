"""The full durability suite: kill -9 at random and at every phase boundary, a migration killed midway, concurrent
runs on overlapping folders; every database audited against one clean run of the same folder.

    .venv/bin/python benchmarks/durability.py [--packs 6] [--random 24] [--pairs 10] [--db sqlite|postgresql]
        [--workdir /tmp/releaf-durability] [--json-out results.json]

The corpus is ``--packs`` generated packs of 48 module tests (``releaf.sim.fleet``) plus the independent protocol
corpus's files (``tests/fixtures/protocol_corpus``, made apart from releaf's simulator). PostgreSQL: set
``RELEAF_TEST_POSTGRES_URL`` to an admin URL (``.ci/postgres.sh`` prints one); each trial gets a new database.

Prints the durability table (trials per phase; after the kill: before / complete / partial; then unusable, lost,
duplicated, wrong) and the concurrency result. The short form of the same checks runs in ``make test``
(``tests/store/test_durability.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import uuid
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa

from releaf.store import durability as d
from releaf.store.repair import check

REPO = Path(__file__).resolve().parents[1]


def _urls(kind: str, workdir: Path):
    """A factory of fresh database URLs (and a cleanup)."""
    if kind == "sqlite":
        return lambda tag: f"sqlite:///{workdir / f'{tag}-{uuid.uuid4().hex[:8]}.db'}", lambda: None
    admin = sa.make_url(os.environ["RELEAF_TEST_POSTGRES_URL"])
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    made = []

    def new(tag: str) -> str:
        name = f"releaf_dur_{uuid.uuid4().hex[:10]}"
        with engine.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return admin.set(database=name).render_as_string(hide_password=False)

    def cleanup():
        with engine.connect() as c:
            for name in made:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return new, cleanup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packs", type=int, default=6)
    ap.add_argument("--random", type=int, default=16, help="kill trials at random moments of the run")
    ap.add_argument("--random-rows", type=int, default=10, help="kill trials at random rows of the write")
    ap.add_argument("--pairs", type=int, default=10, help="pairs of concurrent runs")
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/releaf-durability"))
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    new_url, cleanup = _urls(args.db, args.workdir)
    extra = sorted(p for p in (REPO / "tests" / "fixtures" / "protocol_corpus").iterdir()
                   if p.name not in ("SOURCE.txt", "truth.csv"))
    corpus = args.workdir / "corpus"
    d.make_corpus(corpus, packs=args.packs, extra=extra)
    files = args.packs * 48 + len(extra)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; database: {args.db}; corpus: {files} test files")

    try:
        ref_url = new_url("reference")
        p, run_s = d.timed(lambda: d.releaf_run(corpus, ref_url))
        assert p.returncode == 0, p.stderr
        reference = d.snapshot(ref_url)
        assert check(ref_url).ok
        print(f"reference run: {run_s:.1f} s; rows {reference['rows']}")

        trials: list[d.Trial] = []
        for point in d.phase_points(files):
            trials.append(d.kill_trial(corpus, new_url("phase"), reference, phase=point, kill_at=point))
            print(f"  {point}: {trials[-1].after_kill}, usable {trials[-1].usable}, ok {trials[-1].final.ok}")
        for k, delay in enumerate(d.random_delays(args.random, run_s, seed=2026)):
            trials.append(d.kill_trial(corpus, new_url("random"), reference, phase="random moment",
                                       kill_after_s=delay))
            print(f"  random {k + 1} ({delay:.2f} s): {trials[-1].after_kill}, killed {trials[-1].killed}, "
                  f"ok {trials[-1].final.ok}")
        for point in d.random_rows(args.random_rows, files, seed=2027):
            trials.append(d.kill_trial(corpus, new_url("row"), reference, phase="random row of the write",
                                       kill_at=point))
            print(f"  {point}: {trials[-1].after_kill}, ok {trials[-1].final.ok}")
        if args.db == "sqlite":  # an older database (revision 0001) with a plant's records, killed while migrating
            from alembic import command

            from releaf.store.db import alembic_config, make_engine

            for k in (1, 3, 5, 8):
                url = new_url("old")
                assert d.releaf_run(corpus, url).returncode == 0
                engine = make_engine(url)
                command.downgrade(alembic_config(engine), "0001")
                engine.dispose()
                trials.append(d.kill_trial(corpus, url, reference, phase="migration 0001→head",
                                           kill_at=f"migrate:ddl#{k}", before=d.snapshot(url)))

        table = defaultdict(lambda: defaultdict(int))
        for t in trials:
            row = table["migrate:ddl" if t.phase.startswith("migrate:ddl") else
                        "ingest:row" if t.phase.startswith("ingest:row") else t.phase]
            row["trials"] += 1
            row["killed"] += t.killed
            row[t.after_kill] += 1
            row["unusable"] += not t.usable
            row["lost"] += bool(t.final.lost)
            row["duplicated"] += bool(t.final.duplicated)
            row["wrong"] += bool(t.final.wrong or t.final.problems)
        cols = ("trials", "killed", "before", "complete", "partial", "unusable", "lost", "duplicated", "wrong")
        print(f"\nkill -9 trials ({len(trials)}):")
        print(f"{'phase':<22}" + "".join(f"{c:>11}" for c in cols))
        for phase, row in table.items():
            print(f"{phase:<22}" + "".join(f"{row[c]:>11}" for c in cols))
        total = {c: sum(r[c] for r in table.values()) for c in cols}
        print(f"{'all':<22}" + "".join(f"{total[c]:>11}" for c in cols))

        pairs = []
        half = files // 2
        a = d.subset(corpus, args.workdir / "a", slice(0, half + files // 6))
        b = d.subset(corpus, args.workdir / "b", slice(half - files // 6, files))
        for k in range(args.pairs):
            url = new_url("pair")
            done = d.concurrent_runs([a, b], url)
            snap = d.snapshot(url)
            same = all(snap.get(kind) == reference.get(kind)
                       for kind in ("packs", "modules", "tests", "diagnoses", "grades"))
            members = [m for ms, _ in snap.get("stations", {}).values() for m in ms]
            pairs.append({"exit_codes": [p.returncode for p in done], "records_equal_one_run": same,
                          "module_in_two_stations": len(members) != len(set(members)),
                          "check_ok": check(url).ok, "stations": len(snap.get("stations", {})),
                          "stations_one_run": len(reference["stations"])})
            print(f"  pair {k + 1}: {pairs[-1]}")
        ok = sum(p["exit_codes"] == [0, 0] and p["records_equal_one_run"] and p["check_ok"]
                 and not p["module_in_two_stations"] for p in pairs)
        print(f"\nconcurrent runs on overlapping folders ({half + files // 6} and "
              f"{files - half + files // 6} files, {files // 3} shared): {ok}/{len(pairs)} pairs both finished, "
              "every record once, equal to one run, integrity check clean")
        if args.json_out:
            args.json_out.write_text(json.dumps({"trials": [t.__dict__ | {"final": t.final.__dict__} for t in trials],
                                                 "pairs": pairs, "reference_run_s": run_s, "files": files},
                                                default=str, indent=1))
    finally:
        cleanup()


if __name__ == "__main__":
    main()
