"""The durability suite's harness: kill ``releaf run`` at every phase, run two at once, and audit what is left.

A plant database must never break, duplicate or lie, whatever happens to the process writing it. This module runs
``releaf run`` as a real separate process (so ``kill -9`` is real) and compares the database it leaves with the
database of one clean run of the same folder (the *reference*):

- after the kill, the database must be exactly **as before** (no records) or **complete** (equal to the
  reference); anything in between is *partial*;
- the database must then be **usable**: a second ``releaf run`` of the same folder succeeds;
- the final database must pass :func:`releaf.store.repair.check` (engine integrity check, foreign keys, every
  record once, no orphans) and equal the reference record for record: nothing **lost**, nothing **duplicated**,
  nothing **wrong** (grades, diagnoses' headline numbers, stations and their members).

Used by ``tests/store/test_durability.py`` (short form, in ``make test``; on PostgreSQL in ``.ci/run``) and
``benchmarks/durability.py`` (the full suite, with its table).
"""

from __future__ import annotations

import contextlib
import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from releaf.store.checkpoints import KILL_AT_ENV

KILLED = -signal.SIGKILL


def releaf_run(folder, url: str, *, kill_at: str | None = None, kill_after_s: float | None = None,
               timeout_s: float = 600.0) -> subprocess.CompletedProcess:
    """``releaf run FOLDER --db URL --json`` in a new process; killed (SIGKILL) at a checkpoint or after a delay.

    Returns
    -------
    The finished process (``returncode == -9`` when it was killed), its stdout and stderr as text.
    """
    env = {**os.environ, "PYBAMM_DISABLE_TELEMETRY": "true", "MPLBACKEND": "Agg"}
    env.pop(KILL_AT_ENV, None)
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    cmd = [sys.executable, "-m", "releaf.app.cli", "run", str(folder), "--db", url, "--json"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # files, not pipes: a full pipe would block the run while the harness waits for the kill delay
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
        try:
            proc.wait(timeout=kill_after_s if kill_after_s is not None else timeout_s)
        except subprocess.TimeoutExpired:
            if kill_after_s is None:
                raise
            proc.send_signal(signal.SIGKILL)
        return _completed(proc, proc.wait(timeout=timeout_s), out, err)


def _completed(proc: subprocess.Popen, code: int, out, err) -> subprocess.CompletedProcess:
    """The finished process with what it wrote to its output files."""
    out.seek(0)
    err.seek(0)
    return subprocess.CompletedProcess(proc.args, code, out.read(), err.read())


def snapshot(url: str) -> dict:
    """The database's records in a canonical form (independent of row ids and timestamps).

    Returns
    -------
    ``{}`` for a database without releaf records; otherwise ``packs`` (VIN → model), ``modules`` (serial → (VIN,
    position)), ``tests`` (sha256 → module serial), ``diagnoses`` (sha256 → (capacity_Ah, soh_pct, r0_mOhm)),
    ``grades`` (sorted (serial, sha256, grade, policy version)), ``stations`` (serial → (members in series order,
    status)) and ``rows`` (rows per table, to spot duplicates the keys would hide).
    """
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            tables = set(sa.inspect(c).get_table_names())
            if "modules" not in tables or "alembic_version" not in tables:
                return {"tables": sorted(tables)} if tables - {"alembic_version"} else {}
            q = lambda sql: list(c.execute(sa.text(sql)))  # noqa: E731
            rows = {t: q(f'SELECT count(*) FROM "{t}"')[0][0] for t in
                    ("packs", "modules", "tests", "diagnoses", "grades", "stations", "station_modules")}
            if not any(rows.values()):
                return {}
            has_status = any(col["name"] == "status" for col in sa.inspect(c).get_columns("stations"))
            status_sql = "status" if has_status else "NULL"
            members: dict[str, list] = {}
            for serial, _position, module in q("SELECT s.serial, l.series_position, m.serial FROM stations s "
                                              "JOIN station_modules l ON l.station_id = s.id JOIN modules m ON "
                                              "m.id = l.module_id ORDER BY s.serial, l.series_position"):
                members.setdefault(serial, []).append(module)
            return {
                "rows": rows,
                "packs": dict(q("SELECT vin, model FROM packs")),
                "modules": {s: (v, p) for s, v, p in q("SELECT m.serial, p.vin, m.position FROM modules m "
                                                        "LEFT JOIN packs p ON p.id = m.pack_id")},
                "tests": dict(q("SELECT t.sha256, m.serial FROM tests t LEFT JOIN modules m ON m.id = t.module_id")),
                "diagnoses": {sha: (cap, soh, r0) for sha, cap, soh, r0 in q(
                    "SELECT t.sha256, d.\"capacity_Ah\", d.soh_pct, d.\"r0_mOhm\" FROM diagnoses d "
                    "JOIN tests t ON t.id = d.test_id")},
                "grades": sorted(tuple(r) for r in q(
                    "SELECT m.serial, t.sha256, g.grade, g.policy_version FROM grades g JOIN modules m ON "
                    "m.id = g.module_id JOIN diagnoses d ON d.id = g.diagnosis_id JOIN tests t ON t.id = d.test_id")),
                "stations": {s: (tuple(members.get(s, ())), status)
                             for s, status in q(f"SELECT serial, {status_sql} FROM stations")},
            }
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Audit:
    """One database compared with the reference: what is lost, duplicated or wrong (empty tuples: none)."""

    lost: tuple[str, ...] = ()
    duplicated: tuple[str, ...] = ()
    wrong: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # releaf db check

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.wrong or self.problems)


def compare(found: dict, reference: dict) -> Audit:
    """What ``found`` lacks, repeats or has wrong against ``reference`` (both from :func:`snapshot`)."""
    lost, dup, wrong = [], [], []
    for kind in ("packs", "modules", "tests", "diagnoses", "stations"):
        f, r = found.get(kind, {}), reference.get(kind, {})
        lost += [f"{kind}: {k}" for k in r if k not in f]
        wrong += [f"{kind}: {k} is {f[k]!r}, not {r[k]!r}" for k in r if k in f and f[k] != r[k]]
        wrong += [f"{kind}: unexpected {k}" for k in f if k not in r]
    fg, rg = Counter(found.get("grades", [])), Counter(reference.get("grades", []))
    lost += [f"grade {g}" for g in rg - fg]
    extra = fg - rg
    dup += [f"grade {g}" for g in extra if g in rg]
    wrong += [f"grade {g}" for g in extra if g not in rg]
    for table, n in found.get("rows", {}).items():
        if n > reference.get("rows", {}).get(table, 0):
            dup.append(f"{table}: {n} rows, {reference['rows'][table]} in the reference")
    return Audit(tuple(lost), tuple(dup), tuple(wrong))


def audit(url: str, reference: dict) -> Audit:
    """:func:`compare` of the database at ``url`` with ``reference``, plus ``releaf db check``'s problems."""
    from releaf.store.repair import check

    found = compare(snapshot(url), reference)
    return Audit(found.lost, found.duplicated, found.wrong, check(url).problems)


@dataclass(frozen=True)
class Trial:
    """One kill trial: where the process was killed, what the database held then, and after a second run."""

    phase: str
    killed: bool                 # False: the run finished before the kill came
    after_kill: str              # "before", "complete" or "partial"
    usable: bool                 # the next run succeeded
    final: Audit = field(default_factory=Audit)
    detail: str = ""


def kill_trial(folder, url: str, reference: dict, *, phase: str, kill_at: str | None = None,
               kill_after_s: float | None = None, before: dict | None = None) -> Trial:
    """Kill a run of ``folder`` into ``url``, classify the database it leaves, run again, audit the result.

    ``before`` is the database's snapshot before the run (``{}`` for a new database).
    """
    before = {} if before is None else before
    p = releaf_run(folder, url, kill_at=kill_at, kill_after_s=kill_after_s)
    killed = p.returncode == KILLED
    if not killed and p.returncode != 0:
        return Trial(phase, False, "failed", False, detail=p.stderr.strip()[-300:])
    try:
        now = snapshot(url)
    except sa.exc.DBAPIError as err:
        return Trial(phase, killed, "unreadable", False, detail=str(err.orig)[:300])
    state = "before" if now == before else "complete" if compare(now, reference) == Audit() else "partial"
    again = releaf_run(folder, url)
    if again.returncode != 0:
        return Trial(phase, killed, state, False, detail=again.stderr.strip()[-300:])
    return Trial(phase, killed, state, True, audit(url, reference))


def concurrent_runs(folders: Sequence, url: str) -> list[subprocess.CompletedProcess]:
    """Start ``releaf run`` on every folder at the same moment into one database; wait for all.

    Output goes to temporary files, not pipes: a run's JSON summary can exceed a pipe's buffer, and a process
    blocked on a full pipe while the harness waits for another would never finish.
    """
    env = {**os.environ, "PYBAMM_DISABLE_TELEMETRY": "true", "MPLBACKEND": "Agg"}
    env.pop(KILL_AT_ENV, None)
    with contextlib.ExitStack() as stack:
        outs = [(stack.enter_context(tempfile.TemporaryFile("w+")), stack.enter_context(tempfile.TemporaryFile("w+")))
                for _ in folders]
        procs = [subprocess.Popen([sys.executable, "-m", "releaf.app.cli", "run", str(f), "--db", url, "--json"],
                                  env=env, stdout=o, stderr=e, text=True)
                 for f, (o, e) in zip(folders, outs, strict=True)]
        codes = [p.wait(timeout=900) for p in procs]
        return [_completed(p, code, o, e) for p, code, (o, e) in zip(procs, codes, outs, strict=True)]


def make_corpus(folder, *, packs: int = 1, modules_per_pack: int = 48, extra: Sequence[Path] = (),
                seed: int = 2031) -> Path:
    """A test folder for the suite: a generated fleet (``releaf.sim.fleet``) plus ``extra`` files made apart
    from it (e.g. the independent protocol corpus), each its own module in the manifest."""
    from releaf.sim.fleet import generate_fleet

    folder = Path(folder)
    manifest = generate_fleet(folder, packs=packs, modules_per_pack=modules_per_pack, seed=seed)
    with open(manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    for k, path in enumerate(extra, start=1):
        shutil.copy(path, folder / path.name)
        # simulated as well (by the independent corpus generator), so marked generated: IEC 63338's lifetime-data
        # screen is waived for a lot of generated modules only
        rows.append({**dict.fromkeys(fields, ""), "file": path.name, "module_serial": f"EXT-{k:03d}-{path.stem}",
                     "generated": "true"})
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return manifest


def subset(corpus: Path, out, rows: slice) -> Path:
    """A folder holding a slice of ``corpus``'s manifest rows (files copied: same bytes, same sha256)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(corpus / "manifest.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, chosen = reader.fieldnames, list(reader)[rows]
    for r in chosen:
        shutil.copy(corpus / r["file"], out / r["file"])
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(chosen)
    return out


def phase_points(rows: int, ddl: Sequence[int] = (1, 8, 16, 24, 32)) -> list[str]:
    """The checkpoints to kill at: each phase boundary, DDL statements from the first to the last (a new database
    takes 32 up to revision 0003), the first, middle and last module's rows."""
    return ["migrate:begin", *(f"migrate:ddl#{k}" for k in ddl), "migrate:end", "ingest:begin",
            "ingest:row#1", f"ingest:row#{max(1, rows // 2)}", f"ingest:row#{rows}", "commit:before",
            "commit:after"]


def random_delays(n: int, run_s: float, seed: int = 0) -> list[float]:
    """``n`` kill delays spread uniformly over 1.2 times a run's duration (seeded), so that some come after it."""
    rng = random.Random(seed)
    return [rng.uniform(0.0, 1.2 * run_s) for _ in range(n)]


def random_rows(n: int, rows: int, seed: int = 0) -> list[str]:
    """``n`` kill points at random rows of the write (seeded): random moments inside the write transaction, which
    is a small part of a run's time (most of it is reading and diagnosing)."""
    rng = random.Random(seed)
    return [f"ingest:row#{rng.randint(1, rows)}" for _ in range(n)]


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """``fn()`` and its wall time [s]."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start
