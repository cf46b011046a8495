"""The app around the chain: read files, run :class:`releaf.chain.PlantChain`, store what it returns.

Everything with a side effect lives here (files, the database, progress bars); the chain itself is pure. A run
reads, diagnoses, grades, matches and certifies every file before it opens the database for writing, and the
whole write is one transaction: a bad file or a conflict leaves the database as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from releaf import io
from releaf.app.progress import progress_bar
from releaf.parameters import battery_profile

if TYPE_CHECKING:  # the chain (SciPy, HiGHS) and the records are imported by the commands that use them
    from releaf.chain import PlantChain
    from releaf.schema.records import Diagnosis, RunResult


def _estimated_rows(path) -> int:
    """Rows of a text export, estimated from its size and the mean line length of its first 64 KiB."""
    head = io.textfile.head_of(Path(path))
    lines = max(head.raw.count(b"\n"), 1)
    return max(1, int(Path(path).stat().st_size / (len(head.raw) / lines)))


# rows per batch of the streamed read: small batches stay in the CPU cache and reuse freed memory (10 M-row
# Arbin CSV: 100k-row batches take ~12 % less CPU than 1M-row ones, at half the peak memory); with Parquet
# output every batch is a row group, so that path keeps 1M-row batches
SUMMARY_BATCH_ROWS, PARQUET_BATCH_ROWS = 100_000, 1_000_000


def read_summary(path, format: str | None = None, *, parquet_out=None, progress: bool = False,
                 batch_rows: int | None = None, mapping=None) -> dict:
    """What ``releaf read`` prints: format, vendor, rows, duration, ranges, columns and the reader's conversions.

    The file is read batch by batch (bounded memory for formats with a streaming reader, e.g. multi-GB Arbin
    CSVs); with ``parquet_out`` the canonical table is written to that Parquet file as it streams.
    ``batch_rows``: rows per batch (default :data:`SUMMARY_BATCH_ROWS`, or :data:`PARQUET_BATCH_ROWS` with
    ``parquet_out``: the Parquet file's row groups).
    """
    path = Path(path)
    if batch_rows is None:
        batch_rows = SUMMARY_BATCH_ROWS if parquet_out is None else PARQUET_BATCH_ROWS
    fmt = "mapped-csv" if mapping is not None else (format or io.detect(path))
    rows, first_t, last_t, meta, columns, writer = 0, None, None, None, None, None
    v_min = v_max = i_min = i_max = None
    streamed = fmt in io.STREAMERS
    total = _estimated_rows(path) if streamed else 0
    try:
        with progress_bar(progress) as report:
            for batch in io.stream(path, None if mapping is not None else fmt, batch_rows=batch_rows,
                                   mapping=mapping):
                d = batch.data
                meta, columns = batch.meta, d.columns
                if d.height:
                    first_t = d["test_time_s"][0] if first_t is None else first_t
                    last_t = d["test_time_s"][-1]
                    v_min = _min(v_min, d["voltage_V"].min())
                    v_max = _max(v_max, d["voltage_V"].max())
                    i_min = _min(i_min, d["current_A"].min())
                    i_max = _max(i_max, d["current_A"].max())
                rows += d.height
                if parquet_out is not None:
                    writer = _write_parquet_batch(writer, parquet_out, batch)
                report(f"reading {path.name}", rows, max(total, rows) if streamed else 0)
            report(f"reading {path.name}", rows, rows)
    finally:
        if writer is not None:
            writer.close()
    return {
        "file": str(path),
        "format": meta.format,
        "vendor": meta.vendor,
        "sha256": meta.sha256,
        "rows": rows,
        "duration_s": float(last_t - first_t) if rows else 0.0,
        "voltage_range_V": [v_min, v_max],
        "current_range_A": [i_min, i_max],
        "series_groups": sum(c.startswith("group_voltage_V_") for c in columns),
        "columns": columns,
        "conversions": list(meta.conversions),
        "streamed": streamed,
        **({"parquet": str(parquet_out)} if parquet_out is not None else {}),
    }


def _min(a, b):
    return b if a is None else min(a, b)


def _max(a, b):
    return b if a is None else max(a, b)


def _write_parquet_batch(writer, out, batch):
    from releaf.io.parquet import ParquetSink  # self-describing: source metadata and column units in the file

    if writer is None:
        writer = ParquetSink(out)
    writer.write(batch)
    return writer


def diagnose_file(path, profile="leaf-24kwh-module", format: str | None = None, mapping=None, *,
                  fit_ecm: bool = False) -> Diagnosis:
    """Read and diagnose one test file (``fit_ecm``: also the two-RC fit of an HPPC test).

    ``profile`` is a profile name, the path of a parameter-set YAML, or a profile object.
    """
    from releaf.diagnostics import diagnose

    ts = io.read(path, format=format, mapping=mapping, wall_clock=False)  # the diagnosis needs no wall clock
    return diagnose(ts, battery_profile(profile), fit_ecm=fit_ecm)


def diagnose_files(paths, profile="leaf-24kwh-module", format: str | None = None, progress: bool = True,
                   mapping=None, *, fit_ecm: bool = False) -> list[Diagnosis]:
    """Diagnose several files, with a progress bar over them."""
    prof = battery_profile(profile)  # fail on a bad profile before reading anything
    paths = list(paths)
    out = []
    with progress_bar(progress and len(paths) > 1) as report:
        for k, p in enumerate(paths, start=1):
            out.append(diagnose_file(p, prof, format, mapping, fit_ecm=fit_ecm))
            report("diagnosing", k, len(paths))
    return out


def diagnose_entries(chain: PlantChain, entries, progress) -> list[tuple]:
    """``(entry, diagnosis)`` for each entry, each file read and diagnosed in turn (the first bad file stops)."""
    out = []
    for k, e in enumerate(entries, start=1):
        out.append((e, chain.diagnose(io.read(e.path, wall_clock=False))))  # the diagnosis needs no wall clock
        progress("reading + diagnosing", k, len(entries))
    return out


def store_run(db_url: str | None, result: RunResult) -> str:
    """Write a run in ONE transaction (nothing is written if any part fails); idempotent by file sha256."""
    from releaf.store import open_store
    from releaf.store.checkpoints import checkpoint
    from releaf.store.db import retrying

    store = open_store(db_url)
    try:
        def attempt():
            with store.transaction() as s:
                checkpoint("ingest:begin")
                write_result(s, result)
                checkpoint("commit:before")
            checkpoint("commit:after")

        retrying(attempt, what="releaf run")
        return str(store.engine.url.render_as_string(hide_password=True))
    finally:
        store.close()


def write_result(s, result: RunResult, *, actor: str = "releaf run") -> None:
    """Write a run's records in the caller's transaction: packs, modules, tests, diagnoses, grades, stations, flags.

    Every record is found or inserted by its natural key (VIN, serial, sha256, (module, diagnosis, policy
    version)), so a repeated run adds nothing and a concurrent one cannot duplicate anything.
    """
    from releaf.store import queries
    from releaf.store.checkpoints import checkpoint

    for r in result.modules:
        e = r.entry
        pack = None
        if e.pack_vin:
            pack = queries.get_or_create_pack(s, e.pack_vin, e.pack_model or "unknown", generated=e.generated)
        module = queries.get_or_create_module(s, e.module_serial, pack, e.module_position,
                                              profile=r.diagnosis.profile)
        diag = _store_test(s, r.diagnosis, module)
        queries.add_grade(s, module, diag, r.grade.policy_grade, r.grade.reasons, r.grade.policy_name,
                          r.grade.policy_version, record=r.grade)
        checkpoint("ingest:row")
    for d in result.reference:
        _store_test(s, d, None)
    policy_of = {r.serial: (r.grade.policy_name, r.grade.policy_version) for r in result.modules}
    method = result.pairing.method if result.pairing is not None else None
    for st in result.stations:
        if queries.find_station(s, st.serial) is None:
            queries.add_station(s, st.serial, st.design, list(st.modules), st.certification.to_dict(),
                                grade=st.grade, policy=policy_of.get(st.modules[0]), assembly_method=method)
    for flag in result.flagged:
        queries.flag_station(s, flag.station, flag.reason, actor=actor)


def _store_test(s, d: Diagnosis, module):
    from releaf.store import queries

    test = queries.add_test(s, sha256=d.sha256, format=d.format, raw_path=d.file, rows=d.rows,
                            duration_s=d.duration_s, module=module)
    return queries.add_diagnosis(s, test, d)


GENERATED_LOT_WHY = ("releaf's generated demo modules (manifest generated=true): simulated packs have no BMS "
                     "history, so IEC 63338's lifetime-data requirement cannot apply to them")


def for_generated_lot(chain: PlantChain, entries) -> PlantChain:
    """The chain with IEC 63338's lifetime-data requirement waived when every module is releaf's generated data.

    Simulated packs have no BMS history by construction; the waiver is recorded in every grade (policy name
    ``<name>+no-lifetime-data`` and the ``lifetime_data`` screen's reason). Real modules are never waived here.
    """
    from releaf.grading import waive_lifetime_data

    if entries and all(e.generated for e in entries) and chain.policy.lifetime_data.required:
        return chain.replace(policy=waive_lifetime_data(chain.policy, GENERATED_LOT_WHY))
    return chain


def stored_intake(s, entries) -> dict[str, dict]:
    """Each module's intake row (``releaf intake``) from its pack's stored pre-screen, by module serial.

    A module gets its pack's row at its ``module_position`` (series order); a pack whose pre-screen has no
    per-module rows (BMS history only) still gives an empty row: its lifetime data is recorded.
    """
    import sqlalchemy as sa

    from releaf.store.models import Pack

    vins = {e.pack_vin for e in entries if e.pack_vin}
    if not vins:
        return {}
    packs = {p.vin: p.intake for p in s.scalars(sa.select(Pack).where(Pack.vin.in_(vins))) if p.intake}
    out = {}
    for e in entries:
        report = packs.get(e.pack_vin)
        if report is None:
            continue
        rows = report.get("modules") or []
        k = (e.module_position or 0) - 1
        out[e.module_serial] = dict(rows[k]) if 0 <= k < len(rows) else {}
    return out


def same_test_overrides(s, chain: PlantChain, diagnoses) -> dict:
    """The stored overrides that still apply: on the same test file, graded under the same policy version."""
    from releaf.store import queries

    sha = {e.module_serial: d.sha256 for e, d in diagnoses}
    stored = queries.stored_overrides(s, list(sha))
    return {serial: o.override for serial, o in stored.items()
            if o.test_sha256 == sha[serial] and (o.policy_name, o.policy_version) == (chain.policy.name,
                                                                                    chain.policy.version)}


def run_directory(directory, *, db_url=None, profile=None, policy="leaf-default", design="portable-2s",
                  progress: bool = True, allow_outside: bool = False) -> tuple[RunResult, dict]:
    """``releaf run DIR``: every test in the folder through the chain, stored in one transaction.

    Every file is read and diagnosed before the database is opened (a bad file writes nothing). Then one write
    transaction holds the database's write lock while it reads what is stored (the tests known by sha256, the
    modules already in stations), grades and assembles against it, and writes: two runs at once take turns and
    the second sees the first's records. Overrides stored for the same tests under the same policy version are
    re-applied (:func:`same_test_overrides`).

    A module's lifetime data (IEC 63338) is its pack's stored intake pre-screen (:func:`stored_intake`); a folder
    of releaf's generated modules is graded with the requirement waived (:func:`for_generated_lot`).

    Parameters
    ----------
    allow_outside : let the manifest name files outside its folder

    Returns
    -------
    The chain's :class:`RunResult` and the run summary (what ``--json`` prints and the report shows).
    """
    from releaf.app.report import summarise
    from releaf.chain import PlantChain
    from releaf.io.manifest import discover
    from releaf.store import open_store, queries
    from releaf.store.checkpoints import checkpoint
    from releaf.store.db import retrying

    chain = PlantChain.from_parameters(profile=profile, policy=policy, design=design)
    entries = discover(Path(directory), allow_outside=allow_outside)
    chain = for_generated_lot(chain, entries)
    with progress_bar(progress) as report:
        diagnoses = diagnose_entries(chain, entries, report)
        store = open_store(db_url)
        try:
            def attempt() -> RunResult:
                with store.transaction() as s:
                    checkpoint("ingest:begin")
                    known = queries.owners_of_tests(s, [d.sha256 for _, d in diagnoses])
                    result = chain.run_from_diagnoses(diagnoses, intake=stored_intake(s, entries),
                                                      already_built=queries.station_places(s), known_tests=known,
                                                      overrides=same_test_overrides(s, chain, diagnoses),
                                                      progress=report)
                    write_result(s, result)
                    checkpoint("commit:before")
                checkpoint("commit:after")
                return result

            result = retrying(attempt, what=f"releaf run {directory}")
            database = store.engine.url.render_as_string(hide_password=True)
        finally:
            store.close()
    return result, summarise(result, database=database, title=f"releaf run: {directory}")


def override_grade(db_url, module: str, grade: str, *, reason: str, user: str, role: str = "") -> dict:
    """``releaf grade override``: one transaction; returns the audit record as JSON-ready data."""
    import sqlalchemy as sa

    from releaf.store import open_store, queries
    from releaf.store.db import preflight, retrying
    from releaf.store.models import Module

    preflight(db_url)
    store = open_store(db_url)
    try:
        def attempt() -> dict:
            with store.transaction() as s:
                known = s.scalar(sa.select(Module).where(Module.serial == module))
                earlier = queries.latest_grade(s, known) if known is not None else None
                before = earlier.effective_grade if earlier is not None else None
                row = queries.override_grade(s, module, grade, user, reason, role=role)
                link = row.module.station_link
                flagged = link.station.serial if link is not None and link.station.status != "built" else None
                return {"module": module, "from": before,
                        "policy_grade": row.grade, "policy": f"{row.policy_name} {row.policy_version}",
                        "to": row.override_grade, "to_destination": row.override_destination, "by": user,
                        "role": role or None, "reason": reason, "at": row.overridden_at.isoformat(),
                        "station_flagged": flagged}

        return retrying(attempt, what="releaf grade override")
    finally:
        store.close()


def grade_history(db_url, module: str) -> dict:
    """A module's grades (policy's and overrides) and the audit events on it, oldest first."""
    import sqlalchemy as sa

    from releaf.errors import NotFoundError
    from releaf.store import open_store
    from releaf.store.db import preflight
    from releaf.store.models import AuditEvent, Module

    preflight(db_url)
    store = open_store(db_url)
    try:
        with store.transaction(write=False) as s:
            m = s.scalar(sa.select(Module).where(Module.serial == module))
            if m is None:
                raise NotFoundError(f"module {module}", "unknown module")
            grades = [{"grade": g.grade, "destination": g.destination, "failed_safety": g.failed_safety,
                       "policy": f"{g.policy_name} {g.policy_version}", "test_sha256": g.diagnosis.test.sha256,
                       "reasons": list(g.reasons), "created_at": g.created_at.isoformat(),
                       "override": None if g.override_grade is None else {
                           "grade": g.override_grade, "destination": g.override_destination, "by": g.override_by,
                           "role": g.override_role, "why": g.override_why, "at": g.overridden_at.isoformat()}}
                      for g in m.grades]
            events = [{"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "detail": e.detail}
                      for e in s.scalars(sa.select(AuditEvent).where(AuditEvent.entity == "module",
                                                                     AuditEvent.entity_id == module)
                                         .order_by(AuditEvent.id))]
            station = m.station_link.station if m.station_link is not None else None
            return {"module": module, "station": None if station is None else {
                "serial": station.serial, "status": station.status, "reason": station.status_reason},
                "grades": grades, "audit": events}
    finally:
        store.close()
