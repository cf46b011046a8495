"""The plant's chain: read → diagnose → grade → match → certify → store (like pvlib's ModelChain).

Each stage is a topical module of pure functions; this module only strings them together, keeps the whole run
one database transaction, and shows progress. CLI, API and fleet call these functions.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from releaf import assembly, grading, io
from releaf.diagnostics import diagnose
from releaf.errors import InputFileError
from releaf.io.manifest import Entry, discover
from releaf.parameters import battery_profile, station_profile
from releaf.schema.records import Diagnosis
from releaf.station import twin as station
from releaf.store import open_store, queries

_stderr = Console(stderr=True)


def progress_bar(enabled: bool = True):
    """A Rich progress bar on stderr (a no-op context when disabled, e.g. for ``--json`` output)."""
    if not enabled:
        return nullcontext(None)
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=_stderr, transient=False,
    )


def _track(progress, items, description: str):
    if progress is None:
        yield from items
        return
    task = progress.add_task(description, total=len(items))
    for item in items:
        yield item
        progress.advance(task)


def _estimated_rows(path) -> int:
    """Rows of a text export, estimated from its size and the mean line length of its first 64 KiB."""
    head = io.textfile.head_of(Path(path))
    lines = max(head.raw.count(b"\n"), 1)
    return max(1, int(Path(path).stat().st_size / (len(head.raw) / lines)))


def read_summary(path, format: str | None = None, *, parquet_out=None, progress: bool = False,
                 batch_rows: int = 1_000_000, mapping=None) -> dict:
    """What ``releaf read`` prints: format, vendor, rows, duration, ranges, columns and the reader's conversions.

    The file is read batch by batch (bounded memory for formats with a streaming reader, e.g. multi-GB Arbin
    CSVs); with ``parquet_out`` the canonical table is written to that Parquet file as it streams.
    """
    path = Path(path)
    fmt = "mapped-csv" if mapping is not None else (format or io.detect(path))
    rows, first_t, last_t, meta, columns, writer = 0, None, None, None, None, None
    v_min = v_max = i_min = i_max = None
    streamed = fmt in io.STREAMERS
    try:
        with progress_bar(progress) as bar:
            task = bar.add_task(f"reading {path.name}", total=_estimated_rows(path) if streamed else None) \
                if bar else None
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
                if bar:
                    bar.update(task, completed=rows)
            if bar:
                bar.update(task, total=rows, completed=rows)
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


def diagnose_file(path, profile: str, format: str | None = None, mapping=None, *, fit_ecm: bool = False) -> Diagnosis:
    """Read and diagnose one test file (``fit_ecm``: also the two-RC fit of an HPPC test)."""
    ts = io.read(path, format=format, mapping=mapping, wall_clock=False)  # the diagnosis needs no wall clock
    return diagnose(ts, battery_profile(profile), fit_ecm=fit_ecm)


def diagnose_files(paths, profile: str, format: str | None = None, progress: bool = True,
                   mapping=None, *, fit_ecm: bool = False) -> list[Diagnosis]:
    """Diagnose several files, with a progress bar over them."""
    battery_profile(profile)  # fail on a bad profile before reading anything
    paths = list(paths)
    with progress_bar(progress and len(paths) > 1) as bar:
        return [diagnose_file(p, profile, format, mapping, fit_ecm=fit_ecm)
                for p in _track(bar, paths, "diagnosing")]


@dataclass
class ModuleResult:
    """One module's way through the run."""

    entry: Entry
    diagnosis: Diagnosis
    grade: grading.Grade


@dataclass
class RunResult:
    """A run over one folder: per module results, the stations built and the report summary."""

    modules: list[ModuleResult]
    stations: list[dict]
    summary: dict
    reference: list[Diagnosis] = field(default_factory=list)


def _station_serial(serials) -> str:
    digest = hashlib.sha256("+".join(sorted(serials)).encode()).hexdigest()[:10].upper()
    return f"PS-{digest}"


def analyse(entries: list[Entry], *, profile: str, policy, progress=None) -> list[ModuleResult]:
    """Read, diagnose and grade every entry (no database); the first bad file stops the run."""
    prof = battery_profile(profile)
    out = []
    for e in _track(progress, entries, "reading + diagnosing"):
        d = diagnose(io.read(e.path, wall_clock=False), prof)
        out.append(ModuleResult(e, d, grading.grade(d, policy)))
    return out


def build_stations(results: list[ModuleResult], *, design: str, policy,
                   already_built: frozenset[str] = frozenset()) -> tuple[list[dict], assembly.Pairing]:
    """Pair the graded modules into stations (maximum total usable energy) and certify each one.

    Modules in ``already_built`` (serials already in a station in the database) are not offered again.
    """
    prof = station_profile(design)
    candidates = []
    for r in results:
        if r.entry.module_serial in already_built or r.diagnosis.series_groups != prof.module.series_groups:
            continue  # already in a station, or not one module (e.g. a string of three)
        if r.grade.grade == "reject":
            candidates.append(assembly.ModuleCandidate(r.entry.module_serial, "reject"))
            continue
        try:
            state = station.module_state_from_diagnosis(r.entry.module_serial, r.diagnosis)
        except InputFileError:
            continue  # nothing to certify without capacity and resistance; grading already said why
        candidates.append(assembly.ModuleCandidate(state.serial, r.grade.grade, state.group_capacity_Ah,
                                                   state.group_r0_mOhm))
    pairing = assembly.match_pairs(
        candidates, prof, allow_mixed_grades=bool(policy.assembly.get("allow_mixed_grades", False))
    )
    by_serial = {c.serial: c.state for c in candidates if c.grade != "reject"}
    stations = []
    for pair, grade in zip(pairing.stations, pairing.station_grades, strict=True):
        cert = station.certify([by_serial[m] for m in pair], prof)
        stations.append({"serial": _station_serial(pair), "modules": list(pair), "grade": grade,
                         "certification": cert.to_dict(), "usable_Wh": cert.usable_Wh,
                         "runtimes": {u.name: {"runtime_h": u.runtime_h, "units": u.units, "unit_name": u.unit_name}
                                      for u in cert.use_cases}})
    stations.sort(key=lambda st: -st["usable_Wh"])
    return stations, pairing


def store_run(db_url: str | None, results: list[ModuleResult], stations: list[dict], reference=()) -> str:
    """Write a run in ONE transaction (nothing is written if any part fails); idempotent by file sha256."""
    store = open_store(db_url)
    try:
        with store.transaction() as s:
            for r in results:
                e = r.entry
                pack = None
                if e.pack_vin:
                    pack = queries.get_or_create_pack(s, e.pack_vin, e.pack_model or "unknown", generated=e.generated)
                module = queries.get_or_create_module(s, e.module_serial, pack, e.module_position,
                                                      profile=r.diagnosis.profile)
                test, diag = _store_test(s, r.diagnosis, module)
                latest = queries.latest_grade(s, module)
                if latest is None or latest.diagnosis_id != diag.id or latest.policy_version != r.grade.policy_version:
                    queries.add_grade(s, module, diag, r.grade.grade, r.grade.reasons, r.grade.policy_name,
                                      r.grade.policy_version)
            for d in reference:
                _store_test(s, d, None)
            for st in stations:
                if queries.find_station(s, st["serial"]) is None:
                    queries.add_station(s, st["serial"], st["certification"]["design"], st["modules"],
                                        st["certification"])
        return str(store.engine.url)
    finally:
        store.close()


def modules_in_stations(db_url: str | None) -> frozenset[str]:
    """Serials of the modules already built into a station (they are not matched again)."""
    store = open_store(db_url)
    try:
        with store.transaction() as s:
            return frozenset(queries.module_serials_in_stations(s))
    finally:
        store.close()


def _store_test(s, d: Diagnosis, module):
    test = queries.add_test(s, sha256=d.sha256, format=d.format, raw_path=d.file, rows=d.rows,
                            duration_s=d.duration_s, module=module)
    return test, queries.add_diagnosis(s, test, d)


def summarise(results, stations, reference, *, database: str, title: str, notes=(), curves=None) -> dict:
    """The run summary: what ``--json`` prints and what the HTML report shows (schema in ``releaf.app.report``)."""
    counts = dict.fromkeys(("A", "B", "C", "reject"), 0)
    for r in results:
        counts[r.grade.grade] += 1
    use_cases = list(stations[0]["runtimes"]) if stations else []
    return {
        "title": title,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database,
        "grade_counts": counts,
        "use_cases": use_cases,
        "modules": [
            {"serial": r.entry.module_serial, "pack_vin": r.entry.pack_vin, "file": str(r.entry.path),
             "generated": r.entry.generated, "grade": r.grade.grade, "reasons": list(r.grade.reasons),
             "soh_pct": r.diagnosis.soh_pct, "capacity_Ah": r.diagnosis.capacity_Ah,
             "energy_Wh": r.diagnosis.energy_Wh, "r0_mOhm": r.diagnosis.r0_mOhm,
             "weakest_group": r.diagnosis.weakest_group}
            for r in results
        ],
        "stations": [{k: v for k, v in st.items() if k != "certification"} for st in stations],
        "reference": [
            {"file": Path(d.file).name, "capacity_Ah": d.capacity_Ah, "energy_Wh": d.energy_Wh, "r0_mOhm": d.r0_mOhm,
             "weakest_group": d.weakest_group,
             "groups": [{"group": g.group, "end_voltage_V": g.end_voltage_V, "r0_mOhm": g.r0_mOhm,
                         "capacity_Ah": g.capacity_Ah} for g in d.groups]}
            for d in reference
        ],
        "curves": curves,
        "notes": list(notes),
    }


def run_directory(directory, *, db_url=None, profile="leaf-24kwh-module", policy="leaf-default",
                  design="portable-2s", progress: bool = True) -> RunResult:
    """``releaf run DIR``: every test in the folder through the chain, stored in one transaction."""
    pol = grading.load_policy(policy)
    station_profile(design)
    entries = discover(Path(directory))
    with progress_bar(progress) as bar:
        results = analyse(entries, profile=profile, policy=pol, progress=bar)
    stations, pairing = build_stations(results, design=design, policy=pol, already_built=modules_in_stations(db_url))
    database = store_run(db_url, results, stations)
    summary = summarise(results, stations, [], database=database, title=f"releaf run: {directory}",
                        notes=[_pairing_note(pairing)])
    return RunResult(results, stations, summary)


def _pairing_note(pairing) -> str:
    return (f"Matching: {len(pairing.stations)} stations, {pairing.total_usable_Wh:.0f} Wh in total "
            f"({pairing.method}{'' if pairing.optimal else ', optimal over the restricted graph'}); "
            f"unmatched: {', '.join(pairing.unmatched) or 'none'}; rejected: {len(pairing.excluded)}.")


def write_report(result: RunResult, out_dir) -> Path:
    """Write the HTML report of a run into ``out_dir``."""
    from releaf.app import report

    return report.write_report(Path(out_dir), result.summary)


DEMO_PACKS = 3
DEMO_SEED = 2026


def bundled_ornl_dir() -> Path:
    """The real ORNL module files shipped with the project (``data/ornl-leaf``), or ``$RELEAF_DEMO_DATA``."""
    env = os.environ.get("RELEAF_DEMO_DATA")
    folder = Path(env) if env else Path(__file__).resolve().parents[3] / "data" / "ornl-leaf"
    if not any(folder.glob("module123-*.csv")):
        raise InputFileError(folder, "the bundled ORNL module files are missing; run the demo from a clone of "
                                       "the project or set RELEAF_DEMO_DATA to their folder")
    return folder


def _curves(path, title: str) -> dict:
    ts = io.read(path)
    d = ts.data
    return {"title": title, "test_time_s": d["test_time_s"].to_list(), "voltage_V": d["voltage_V"].to_list(),
            "current_A": d["current_A"].to_list(),
            "group_voltage_V": [d[c].to_list() for c in ts.group_columns]}


def demo(out_dir, *, packs: int = DEMO_PACKS, progress: bool = True) -> tuple[RunResult, Path]:
    """The plant demo: real ORNL module strings + a generated fleet → graded, matched, certified → report.

    Writes into ``out_dir``: ``fleet/`` (generated Arbin files, manifest, README), ``releaf-demo.db`` (SQLite)
    and ``report.html``. Running it again reuses the database (ingest is idempotent).
    """
    from releaf.app import report
    from releaf.sim import fleet as synth

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # the demo is a showcase: each run starts from an empty plant database and a freshly generated fleet
    (out / "releaf-demo.db").unlink(missing_ok=True)
    shutil.rmtree(out / "fleet", ignore_errors=True)
    ornl = sorted(bundled_ornl_dir().glob("module123-*.csv"))
    pol = grading.load_policy("leaf-default")
    fleet = out / "fleet"
    with progress_bar(progress) as bar:
        task = bar.add_task("generating demo fleet", total=packs * 48) if bar else None

        def tick(done, total):
            if bar:
                bar.update(task, completed=done)

        synth.generate_fleet(fleet, packs=packs, modules_per_pack=48, seed=DEMO_SEED, progress=tick)
        reference = [diagnose(io.read(p), battery_profile("leaf-24kwh-module"))
                     for p in _track(bar, ornl, "real ORNL module strings")]
        results = analyse(discover(fleet), profile="leaf-24kwh-module", policy=pol, progress=bar)
    stations, pairing = build_stations(results, design="portable-2s", policy=pol)
    database = store_run(f"sqlite:///{(out / 'releaf-demo.db').resolve()}", results, stations, reference)
    middle = sorted((r for r in results if r.diagnosis.soh_pct), key=lambda r: r.diagnosis.soh_pct)
    shown = middle[len(middle) // 2]
    notes = [
        f"Real measurements: {len(reference)} ORNL tests of a string of three 2013 Nissan Leaf modules "
        "(doi:10.5281/zenodo.2580327, MIT), diagnosed by releaf (table 'Real reference').",
        f"GENERATED data: {len(results)} modules of {packs} retired packs simulated by releaf.sim.fleet from an "
        "equivalent-circuit model fitted on the ORNL Leaf cell HPPC at 25 degC, with module-to-module spread. "
        "They are not measurements.",
        _pairing_note(pairing),
    ]
    summary = summarise(results, stations, reference, database=database, title="releaf plant demo", notes=notes,
                        curves=_curves(shown.entry.path, f"module {shown.entry.module_serial} (generated)"))
    result = RunResult(results, stations, summary, reference)
    return result, report.write_report(out, summary)
