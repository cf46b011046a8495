"""The ``releaf`` command line: a thin shell over ``releaf.app.run`` and the chain (contract in DESIGN.md).

User errors (every ``releaf.errors.ReleafError``: a bad input file, bad configuration, not found, conflict) print
one line ``error: <where>, line N, column 'X': <what>`` to stderr and exit with code 2; no traceback. Each command
imports only what it uses, so that ``releaf read`` of a small file costs little more than the parse.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from releaf.errors import ConfigError, ReleafError
from releaf.parameters import DEFAULT_BATTERY_PROFILE

app = typer.Typer(
    name="releaf",
    help="Grade, match and certify retired Nissan Leaf battery modules.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from releaf import __version__

        sys.stdout.write(f"releaf {__version__}\n")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
):
    """Grade, match and certify retired Nissan Leaf battery modules."""
console = Console()
if not console.is_terminal:  # pipes and CI: wide enough for the station table, no wrapping of serials
    console = Console(width=140)
err_console = Console(stderr=True)

USER_ERROR_EXIT = 2


def user_errors(func):
    """Turn releaf's own errors into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ReleafError as err:
            err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(USER_ERROR_EXIT) from None

    return wrapper


def output_folder(path: Path, option: str) -> Path:
    """``path`` as a folder to write into, created now: a file in the way is a user error before any work."""
    if path.exists() and not path.is_dir():
        raise ConfigError(path, f"{option} names a folder to write into, but a file is there")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(path, f"{option}: cannot create the folder ({err.strerror or err})") from None
    return path


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")


def _fmt(x, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


@app.command()
@user_errors
def read(
    file: Path,
    format: Annotated[str | None, typer.Option("--format", help="reader name; detected if omitted")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable summary")] = False,
    parquet: Annotated[Path | None, typer.Option(help="also write the canonical table to this Parquet file")] = None,
    mapping: Annotated[Path | None, typer.Option(help="YAML column mapping for a CSV no reader knows")] = None,
):
    """Detect the format of FILE, parse it into the canonical table and summarise it.

    Large files are streamed in batches (bounded memory) with a progress bar; ``--parquet`` writes the
    canonical table as it streams.
    """
    from releaf import filedigest

    # a large file's sha256 starts now, beside the imports of polars and the readers, and its reader takes it over;
    # the comma count is the CSV readers' check of the field counts
    filedigest.start(file, count=b",")
    from releaf.app.run import read_summary

    summary = read_summary(file, format=format, parquet_out=parquet, progress=not as_json, mapping=mapping)
    if as_json:
        _print_json(summary)
        return
    table = Table(show_header=False, box=None)
    for key, value in summary.items():
        table.add_row(key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
    console.print(table)


@app.command()
@user_errors
def diagnose(
    files: Annotated[list[Path], typer.Argument(help="cycler test files")],
    profile: Annotated[str, typer.Option(help="battery profile of the unit under test")] = DEFAULT_BATTERY_PROFILE,
    format: Annotated[str | None, typer.Option("--format", help="reader name; detected if omitted")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="a JSON list, one record per file")] = False,
    mapping: Annotated[Path | None, typer.Option(help="YAML column mapping for a CSV no reader knows")] = None,
    ecm: Annotated[bool, typer.Option("--ecm", help="also fit a two-RC equivalent circuit to HPPC tests")] = False,
):
    """Capacity, energy, DC resistance (per HPPC level), per-group state and SOH of each test file."""
    from releaf.app.run import diagnose_files

    diagnoses = diagnose_files(files, profile=profile, format=format, progress=not as_json, mapping=mapping,
                                        fit_ecm=ecm)
    if as_json:
        _print_json([d.to_dict() for d in diagnoses])
        return
    for d in diagnoses:
        console.rule(Path(d.file).name)
        console.print(
            f"capacity {_fmt(d.capacity_Ah)} Ah   energy {_fmt(d.energy_Wh, 1)} Wh   SOH {_fmt(d.soh_pct, 1)} %   "
            f"R0 {_fmt(d.r0_mOhm)} mOhm (at {_fmt(d.r0_soc_pct, 0)} % SOC)   weakest group {d.weakest_group or '—'}"
        )
        if d.groups:
            table = Table("group", "capacity Ah", "R0 mOhm", "R 1 s mOhm", "R 10 s mOhm", "end V", "min V")
            for g in d.groups:
                table.add_row(
                    str(g.group), _fmt(g.capacity_Ah), _fmt(g.r0_mOhm, 3), _fmt(g.r_1s_mOhm, 3),
                    _fmt(g.r_10s_mOhm, 3), _fmt(g.end_voltage_V, 3), _fmt(g.min_voltage_V, 3),
                )
            console.print(table)
        if d.hppc:
            table = Table("SOC %", "pulse", "A", "R0 mOhm", "R 1 s", "R 10 s", "R 30 s", box=box.SIMPLE_HEAD,
                          title="HPPC resistance per level")
            for r in d.hppc:
                table.add_row(_fmt(r["soc_pct"], 1), r["direction"], _fmt(r["current_A"], 1), _fmt(r["r0_mOhm"], 3),
                              _fmt(r["r_1s_mOhm"], 3), _fmt(r["r_10s_mOhm"], 3), _fmt(r["r_30s_mOhm"], 3))
            console.print(table)
        if d.ecm:
            console.print(f"2-RC fit: {len(d.ecm['levels'])} levels, RMSE median {d.ecm['rmse_mV_median']:.2f} mV, "
                          f"max {d.ecm['rmse_mV_max']:.2f} mV (parameters in --json)")
        if d.soh_estimate:
            e = d.soh_estimate
            lo, hi = e.soh_interval_pct
            console.print(f"fast SOH estimate: {_fmt(e.soh_pct, 1)} % [{_fmt(lo, 1)}, {_fmt(hi, 1)}]"
                          + ("  [red]outside the training domain[/]" if e.ood else ""))
        for w in d.warnings:
            console.print(f"[yellow]warning:[/] {w}")


@app.command()
@user_errors
def cycles(
    files: Annotated[list[Path], typer.Argument(help="cycler test files")],
    format: Annotated[str | None, typer.Option("--format", help="reader name; detected if omitted")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="a JSON list, one record per file")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="one CSV: a file column, then the cycle fields")] = False,
    mapping: Annotated[Path | None, typer.Option(help="YAML column mapping for a CSV no reader knows")] = None,
):
    """Per-cycle charge and discharge capacity and energy, efficiencies, mean voltages and temperature."""
    import csv
    import dataclasses

    from releaf.diagnostics.cycles import cycle_report
    from releaf.errors import ConfigError
    from releaf.io import read as read_file
    from releaf.schema.records import CycleSummary, jsonable

    if as_json and as_csv:
        raise ConfigError("--json/--csv", "choose one output format")
    reports = [cycle_report(read_file(f, format=format, mapping=mapping)) for f in files]
    if as_json:
        _print_json([r.to_dict() for r in reports])
        return
    fields = [f.name for f in dataclasses.fields(CycleSummary)]
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["file", *fields])
        for r in reports:
            for c in r.cycles:
                row = jsonable(c)
                writer.writerow([r.file, *("" if row[k] is None else row[k] for k in fields)])
        return
    for r in reports:
        console.rule(Path(r.file).name)
        table = Table("cycle", "charge Ah", "discharge Ah", "charge Wh", "discharge Wh", "CE %", "EE %",
                      "mean V ch", "mean V dis", "max degC", "duration h", "complete", box=box.SIMPLE_HEAD)
        for c in r.cycles:
            table.add_row(
                str(c.cycle_index), _fmt(c.charge_capacity_Ah, 4), _fmt(c.discharge_capacity_Ah, 4),
                _fmt(c.charge_energy_Wh, 4), _fmt(c.discharge_energy_Wh, 4),
                _fmt(None if c.coulombic_efficiency is None else 100 * c.coulombic_efficiency, 2),
                _fmt(None if c.energy_efficiency is None else 100 * c.energy_efficiency, 2),
                _fmt(c.mean_charge_voltage_V, 3), _fmt(c.mean_discharge_voltage_V, 3), _fmt(c.max_temperature_C, 1),
                _fmt(c.duration_s / 3600, 2), "yes" if c.complete else "no",
            )
        console.print(table)
        for w in r.warnings:
            console.print(f"[yellow]warning:[/] {w}")


@app.command()
@user_errors
def intake(
    logs: Annotated[list[Path], typer.Argument(help="LeafSpy Pro logs, BMS history CSVs, or folders of them")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON record per pack")] = False,
    plots: Annotated[Path, typer.Option(help="folder for the per-pack heat maps")] = Path("intake-plots"),
):
    """Pack pre-screen from the car's own BMS logs: SOH/Hx/AHr history, module spread and sag, what to inspect."""
    from releaf import intake as intake_mod

    output_folder(plots, "--plots")
    reports = intake_mod.intake_logs(logs)
    records = []
    for r in reports:
        record = r.to_dict()
        if r.modules:
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in r.pack_id)
            record["heatmap"] = str(intake_mod.heatmap(r, plots / f"intake-{safe}.png"))
        records.append(record)
    if as_json:
        _print_json(records)
        return
    for rec in records:
        latest = rec["latest"]
        console.rule(f"pack {rec['pack_id']} ({rec['layout_label']})")
        console.print(
            f"latest {latest.get('date') or latest.get('datetime') or '—'}: SOH {_fmt(latest.get('soh_pct'), 2)} %   "
            f"Hx {_fmt(latest.get('hx_pct'), 2)} %   AHr {_fmt(latest.get('ahr_Ah'), 2)} Ah   "
            f"trend {_fmt(rec['soh_trend_pct_per_year'], 1)} SOH-%/year   history points {len(rec['history'])}"
        )
        if rec["inspect_first"]:
            table = Table(rec["unit"], "score", "reasons", box=box.SIMPLE_HEAD)
            for m in rec["inspect_first"]:
                table.add_row(str(m[rec["unit"]]), _fmt(m.get("score"), 1), "; ".join(m.get("reasons", [])))
            table.title = f"{rec['unit']}s to inspect first"
            console.print(table)
        if rec["mapping_uncertain"]:
            console.print(f"[yellow]note:[/] cell-pair -> {rec['unit']} mapping assumed: {rec['mapping']}")
        for w in rec["warnings"]:
            console.print(f"[yellow]warning:[/] {w}")
        if "heatmap" in rec:
            console.print(f"heat map: {rec['heatmap']}")


@app.command()
@user_errors
def run(
    directory: Annotated[Path, typer.Argument(help="folder of test files (and an optional manifest.csv)")],
    db: Annotated[str | None, typer.Option(help="database URL; default $RELEAF_DATABASE_URL or ./releaf.db")] = None,
    profile: Annotated[str, typer.Option(help="battery profile of the modules")] = DEFAULT_BATTERY_PROFILE,
    policy: Annotated[str, typer.Option(help="grading policy name or YAML file")] = "leaf-default",
    design: Annotated[str, typer.Option(help="station design")] = "portable-2s",
    report: Annotated[Path | None, typer.Option(help="also write the HTML report into this folder")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the run summary as JSON")] = False,
    allow_outside: Annotated[bool, typer.Option(
        "--allow-outside", help="let manifest.csv name files outside its folder")] = False,
):
    """The whole pipeline over a folder: read, diagnose, grade, match into stations, certify, store.

    Two runs at once (or on overlapping folders) take turns at the database and never duplicate a record; a file
    whose bytes are already a module's test is reported, not made into a second module.
    """
    from releaf.app.report import write_report
    from releaf.app.run import run_directory
    from releaf.store.db import preflight

    if report is not None:
        output_folder(report, "--report")
    preflight(db)  # a wrong database is said before any file is read, and nothing is written
    _, summary = run_directory(directory, db_url=db, profile=profile, policy=policy, design=design,
                               progress=not as_json, allow_outside=allow_outside)
    path = write_report(report, summary) if report else None
    if as_json:
        _print_json(summary)
        return
    _print_run(summary)
    if path:
        console.print(f"report: {path}")


@app.command()
@user_errors
def assemble(
    modules: Annotated[Path, typer.Option("--modules", help="graded lot CSV: module_id, capacity_Ah, r0_mOhm, grade "
                                                             "[, group_capacity_Ah_<k>, group_r0_mOhm_<k>]")],
    design: Annotated[str, typer.Option(help="packaged station design (portable-2s) or <N>s<M>p (12s1p, 8s2p)")] = (
        "portable-2s"),
    allow_mixed_grades: Annotated[bool, typer.Option(help="allow modules of different grades together (default: "
                                                          "the policy's assembly.allow_mixed_grades)")] = False,
    policy: Annotated[str, typer.Option(help="grading policy name or YAML file: its assembly section gives the "
                                             "defaults of the tolerances")] = "leaf-default",
    group_capacity_tolerance: Annotated[float | None, typer.Option(
        help="NsMp: largest relative capacity spread in a parallel group (default: the policy's)")] = None,
    group_r0_tolerance: Annotated[float | None, typer.Option(
        help="NsMp: largest relative R0 spread in a parallel group (default: the policy's)")] = None,
    improve_s: Annotated[float, typer.Option(
        "--improve-s", min=0.0,
        help="NsMp with M >= 2: seconds of polishing after the heuristic (annealing over the whole lot, then exact "
             "re-solving of adjacent packs with HiGHS); 0 = none")
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="print the assembly as JSON")] = False,
):
    """Assemble a graded lot (CSV) into stations or NsMp packs, maximising the total series capacity."""
    from releaf.app.lot_csv import read_module_lot
    from releaf.assembly import assemble_lot, resolve_design
    from releaf.parameters import DEFAULT_BATTERY_PROFILE, StationProfile, battery_profile
    from releaf.policy import load_policy

    pol = load_policy(policy)
    des = resolve_design(design)
    module = des.module if isinstance(des, StationProfile) else battery_profile(DEFAULT_BATTERY_PROFILE)
    lot = read_module_lot(modules, module.series_groups)
    ct = pol.group_capacity_tolerance if group_capacity_tolerance is None else group_capacity_tolerance
    rt = pol.group_r0_tolerance if group_r0_tolerance is None else group_r0_tolerance
    result = assemble_lot(lot, des, module=module, allow_mixed_grades=allow_mixed_grades or pol.allow_mixed_grades,
                          group_capacity_tolerance=ct, group_r0_tolerance=rt, improve_s=improve_s)
    if as_json:
        _print_json(result.to_dict())
        return
    table = Table("#", "members (series order)", "grade", "capacity Ah", "usable Wh", box=box.SIMPLE_HEAD,
                  title=f"{len(result.stations)} x {result.design} from {modules.name}")
    for k, st in enumerate(result.stations, start=1):
        table.add_row(str(k), " | ".join(" + ".join(g) for g in st.groups), str(st.grade),
                      _fmt(st.series_capacity_Ah), _fmt(st.usable_Wh, 0))
    console.print(table)
    console.print(f"total {result.total_series_capacity_Ah:.2f} Ah (bound {result.upper_bound_Ah:.2f} Ah), "
                  f"{result.total_usable_Wh:.0f} Wh; {len(result.unassigned)} modules unassigned")
    console.print(f"method: {result.method}", markup=False, highlight=False)
    for serial, why in result.unassigned:
        console.print(f"  {serial}: {why}", markup=False, highlight=False)


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option(help="folder for the demo database, fleet files and report")] = Path(
        "demo-output"
    ),
):
    """The plant demo: real ORNL Leaf module tests plus a generated fleet of 3 retired packs → HTML report."""
    from releaf.app.demo import demo as run_demo

    os.environ.setdefault("MPLBACKEND", "Agg")
    _, summary, report_path = run_demo(out)
    _print_run(summary)
    console.print(f"\nreport: [bold]{report_path.resolve()}[/]")


@app.command()
@user_errors
def schema(
    record: Annotated[str | None, typer.Argument(help="record name; omit to list them")] = None,
):
    """Print the JSON Schema of a stage record (Diagnosis, Grade, Pairing, Certification, StationBuild, ...)."""
    from releaf.errors import ConfigError
    from releaf.schema.records import RECORDS

    if record is None:
        for name, cls in RECORDS.items():
            version = cls.__dataclass_fields__["schema_version"].default
            console.print(f"{name} {version}", highlight=False)
        return
    if record not in RECORDS:
        raise ConfigError("record", f"unknown record {record!r}; known: {', '.join(RECORDS)}")
    _print_json(RECORDS[record].json_schema())


@app.command("train-soh")
@user_errors
def train_soh(
    out: Annotated[Path | None, typer.Option(
        help="folder for the model files; default $RELEAF_HOME/soh-models, else $XDG_DATA_HOME/releaf/soh-models, "
             "else ~/.local/share/releaf/soh-models (never the installed package)")] = None,
    data: Annotated[Path | None, typer.Option(help="folder of the retired-cells-pulse workbooks")] = None,
    model: Annotated[list[str] | None, typer.Option(help="model(s) to train: retired-cells-pulse, leaf-module-pulse")]
    = None,
    states: Annotated[int, typer.Option(help="aged states in the generated Leaf set")] = 200,
    seed: Annotated[int, typer.Option(help="seed of everything random")] = 2026,
):
    """Re-train the fast SOH estimator(s) into a folder of your own and print their validation (leave-one-workbook-
    out; held-out states). The packaged models are not changed; RELEAF_SOH_MODELS=<folder> makes releaf use these."""
    import shlex

    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
    from releaf.diagnostics.soh import MODELS_ENV
    from releaf.training.soh_trainer import train_soh_model, user_models_dir

    which = tuple(model) if model else ("retired-cells-pulse", "leaf-module-pulse")
    folder = out if out is not None else user_models_dir()
    report = train_soh_model(folder, data_dir=data, which=which, n_states=states, seed=seed, verbose=True)
    for name, r in report.items():
        console.print(f"{name}: wrote {', '.join(r['files'])}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"The packaged models are unchanged. To estimate SOH with these, set {MODELS_ENV} to their folder, "
                  f"e.g. {MODELS_ENV}={shlex.quote(str(Path(folder).resolve()))} releaf diagnose FILE (in Python: "
                  "releaf.diagnostics.soh.load_model(name, folder=...)).", markup=False, highlight=False,
                  soft_wrap=True)


@app.command("fast-protocol")
@user_errors
def fast_protocol(
    capacity_Ah: Annotated[float, typer.Option("--capacity-Ah", help="nominal capacity of the unit [Ah]; 1C = this "
                                                                       "many A")] = 65.0,
    series_groups: Annotated[int, typer.Option(help="cell groups in series (voltage limits are per group)")] = 2,
    maccor: Annotated[Path | None, typer.Option(help="write the test as a Maccor MIMS procedure file (.000)")] = None,
    arbin: Annotated[Path | None, typer.Option(help="write the test as an Arbin MITS Pro schedule (.sdu); needs "
                                                    "--arbin-template")] = None,
    arbin_template: Annotated[Path | None, typer.Option(help="a schedule saved by the MITS Pro that will run the "
                                                             "test; its signature and settings are kept")] = None,
    arbin_current_range: Annotated[str, typer.Option(help="current range of every Arbin step (e.g. Range1, "
                                                          "Parallel-High): one that carries 2C")] = "Range1",
):
    """The 60 s fast pulse test: print its steps for this unit and write them as cycler files.

    The files follow the layout of real published Maccor procedures and Arbin schedules but have not been loaded
    into MIMS or MITS Pro by releaf: check them in the vendor editor before the first run (docs/fast-test-protocol.md).
    """
    from releaf.errors import ConfigError, InputFileError
    from releaf.protocols import fast_pulse as fp
    from releaf.protocols import schedules

    files: list[tuple[Path, bytes]] = []
    if maccor is not None:
        text = schedules.maccor_procedure_xml(capacity_Ah, series_groups=series_groups)
        files.append((maccor, text.encode("utf-8")))
    if arbin is not None:
        if arbin_template is None:
            raise ConfigError("--arbin", "needs --arbin-template, a schedule saved by your MITS Pro")
        try:
            template = arbin_template.read_bytes().decode("latin-1")
        except OSError as err:
            raise InputFileError(arbin_template, f"cannot read the template: {err.strerror}") from None
        text = schedules.arbin_schedule_sdu(template, capacity_Ah, series_groups=series_groups,
                                            current_range=arbin_current_range, template_name=arbin_template)
        files.append((arbin, text.encode("latin-1")))
    if maccor is None and arbin is None:
        fp.current_profile(capacity_Ah)  # validates the capacity like the writers do
    table = Table("step", "kind", "current A", "duration s", "record every s", box=box.SIMPLE_HEAD,
                  title=f"fast pulse test, {capacity_Ah:g} Ah unit, {fp.protocol_duration_s():g} s")
    for row in fp.step_table(capacity_Ah):
        table.add_row(str(row["step"]), row["kind"], f"{row['current_A']:g}", f"{row['duration_s']:g}",
                      f"{row['record_every_s']:g}")
    console.print(table)
    for path, data in files:
        try:
            path.write_bytes(data)
        except OSError as err:
            raise InputFileError(path, f"cannot write: {err.strerror}") from None
        console.print(f"wrote {path}")


db_app = typer.Typer(help="The plant database: check its integrity, repair a half-made one.", no_args_is_help=True)
app.add_typer(db_app, name="db")
DB_OPTION = typer.Option(help="database URL; default $RELEAF_DATABASE_URL or ./releaf.db")


@db_app.command("check")
@user_errors
def db_check(
    db: Annotated[str | None, DB_OPTION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
):
    """Integrity check: the engine's own checks, every record once, no orphans, no rejected member kept in service.

    Exit 0 when the database is sound, 1 when a problem was found (each printed on one line).
    """
    from releaf.store.repair import check

    r = check(db)
    if as_json:
        _print_json({"url": r.url, "version": r.version, "ok": r.ok, "counts": r.counts, "problems": list(r.problems)})
    else:
        console.print(f"{r.url}: schema {r.version or 'none'}; "
                      + ", ".join(f"{t} {n}" for t, n in r.counts.items()), highlight=False)
        for p in r.problems:
            console.print(f"problem: {p}", markup=False, highlight=False)
        console.print("ok" if r.ok else f"{len(r.problems)} problem(s)")
    if not r.ok:
        raise typer.Exit(1)


@db_app.command("repair")
@user_errors
def db_repair(db: Annotated[str | None, DB_OPTION] = None):
    """Repair a half-made database from an older release (tables without a recorded schema version)."""
    from releaf.store.repair import repair

    r = repair(db)
    console.print(f"{r.url}: {r.action}" + "".join(f"; {d}" for d in r.details), highlight=False)


fleet_app = typer.Typer(name="fleet", no_args_is_help=True,
                        help="The whole retired fleet from a Parquet dataset of per-module features (releaf.fleet).")
app.add_typer(fleet_app)

FleetOut = Annotated[Path | None, typer.Option(help="output directory (Parquet grades/, stations/, summary.json)")]
FleetScheduler = Annotated[str | None, typer.Option(
    help="omit for the local polars engine; 'local' = Dask on a local cluster; tcp://host:port = that scheduler")]
FleetPolicy = Annotated[str, typer.Option(help="grading policy name or YAML file")]
FleetWorkers = Annotated[int, typer.Option(help="worker processes of --scheduler local")]
FleetJson = Annotated[bool, typer.Option("--json", help="print the summary as JSON")]
FleetWaive = Annotated[str | None, typer.Option(
    "--waive-lifetime-data", metavar="REASON",
    help="switch off the policy's IEC 63338 lifetime-data requirement (modules without BMS history are otherwise "
         "recycled), saying why; the policy name then ends in +no-lifetime-data")]
FleetDesign = Annotated[str, typer.Option(
    help="station design: only modules whose destination the design names are paired (portable-2s: "
         "portable-station)")]


@fleet_app.command("grade")
@user_errors
def fleet_grade(dataset: Annotated[Path, typer.Argument(help="directory of Parquet files, one row per module")],
                out: FleetOut = None, scheduler: FleetScheduler = None, policy: FleetPolicy = "leaf-default",
                workers: FleetWorkers = 2, waive_lifetime_data: FleetWaive = None, as_json: FleetJson = False):
    """Grade every module of DATASET under the policy: counts per grade and destination."""
    from releaf.fleet import run_fleet

    _print_fleet(run_fleet(dataset, policy=policy, scheduler=scheduler, out=out, assemble=False, workers=workers,
                           waive_lifetime_data=waive_lifetime_data).to_dict(), as_json)


@fleet_app.command("assemble")
@user_errors
def fleet_assemble(dataset: Annotated[Path, typer.Argument(help="directory of Parquet files, one row per module")],
                   out: FleetOut = None, scheduler: FleetScheduler = None, policy: FleetPolicy = "leaf-default",
                   workers: FleetWorkers = 2, design: FleetDesign = "portable-2s",
                   waive_lifetime_data: FleetWaive = None, as_json: FleetJson = False):
    """Grade DATASET and pair the modules of the design's destinations into stations (two in series), within each
    grade, maximising the total series capacity."""
    from releaf.fleet import run_fleet

    _print_fleet(run_fleet(dataset, policy=policy, scheduler=scheduler, out=out, assemble=True, workers=workers,
                           design=design, waive_lifetime_data=waive_lifetime_data).to_dict(), as_json)


def _print_fleet(s: dict, as_json: bool) -> None:
    if as_json:
        _print_json(s)
        return
    console.print(f"{s['modules']:,} modules graded under {s['policy']} ({s['engine']}, {s['seconds']:.1f} s)",
                  highlight=False)
    table = Table("grade", "modules", "stations", "series Ah", box=box.SIMPLE_HEAD)
    for g, n in s["grades"].items():
        st = s["stations"].get(g) if g in s["paired_grades"] else None
        table.add_row(g, f"{n:,}", "—" if st is None else f"{st:,}",
                      "—" if st is None else f"{s['series_capacity_Ah'][g]:,.0f}")
    console.print(table)
    console.print("destinations: " + ", ".join(f"{d} {n:,}" for d, n in s["destinations"].items()),
                  highlight=False)
    console.print(f"failed a safety screen: {s['failed_safety']:,}", highlight=False)
    if s["unassigned"] is not None:
        u = s["unassigned"]
        console.print(f"{s['design']} stations {s['stations']['total']:,} (grades {', '.join(s['paired_grades'])}), "
                      f"total series capacity {s['series_capacity_Ah']['total']:,.0f} Ah; in no station "
                      f"{u['total']:,}: other destination {u['other_destination']:,}, odd one out "
                      f"{u['odd_one_out']:,}, no capacity {u['no_capacity']:,}, recycling {u['recycling']:,}",
                      highlight=False)
    for name, path in s["outputs"].items():
        console.print(f"{name}: {path}", highlight=False)


grade_app = typer.Typer(help="A module's grade: a person's override, and its audit trail.", no_args_is_help=True)
app.add_typer(grade_app, name="grade")


@grade_app.command("override")
@user_errors
def grade_override(
    module: Annotated[str, typer.Argument(help="module serial")],
    grade: Annotated[str, typer.Option("--grade", help="A, B, C, reject (or recycling)")],
    reason: Annotated[str, typer.Option("--reason", help="why: kept with the grade and in the audit trail")],
    user: Annotated[str, typer.Option("--as", help="who overrides (a person)")],
    role: Annotated[str, typer.Option("--role", help="in what capacity, e.g. quality, plant-engineer")] = "",
    db: Annotated[str | None, DB_OPTION] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the audit record as JSON")] = False,
):
    """Override a module's newest grade. The policy's grade is kept; a safety failure can never be overridden into a
    product; a built station the override makes the module ineligible for is flagged for disassembly."""
    from releaf.app.run import override_grade

    record = override_grade(db, module, grade, reason=reason, user=user, role=role)
    if as_json:
        _print_json(record)
        return
    console.print(f"module {record['module']}: {record['from']} -> {record['to']} "
                  f"(destination {record['to_destination'] or '—'}), by {record['by']}"
                  f"{' (' + record['role'] + ')' if record['role'] else ''} at {record['at']}; policy grade "
                  f"{record['policy_grade']} kept ({record['policy']})", highlight=False, markup=False)
    if record["station_flagged"]:
        console.print(f"station {record['station_flagged']} flagged for disassembly", highlight=False)


@grade_app.command("history")
@user_errors
def grade_history(
    module: Annotated[str, typer.Argument(help="module serial")],
    db: Annotated[str | None, DB_OPTION] = None,
):
    """Every grade of a module (newest last) and every audit event on it, as JSON."""
    from releaf.app.run import grade_history as history

    _print_json(history(db, module))


def _print_run(s: dict) -> None:
    counts = s["grade_counts"]
    console.print(
        f"{len(s['modules'])} modules graded: "
        + ", ".join(f"{g} {n}" for g, n in counts.items())
        + f"; {len(s['stations'])} stations built; database {s['database']}"
    )
    for d in s.get("duplicates", []):
        console.print(f"duplicate: {d['reason']}", markup=False, highlight=False)
    for f in s.get("flagged_stations", []):
        console.print(f"[bold red]flagged for disassembly[/]: station {f['station']}: {f['reason']}",
                      highlight=False)
    if s["stations"]:
        first = s["stations"][0]["runtimes"]
        heads = [first[u]["unit_name"] if first[u]["unit_name"] else f"{u} h" for u in s["use_cases"]]
        table = Table("station", "modules", "grade", "usable Wh", *heads, box=box.SIMPLE_HEAD)
        for st in s["stations"][:10]:
            cells = []
            for u in s["use_cases"]:
                r = st["runtimes"][u]
                cells.append(_fmt(r["units"], 1) if r["unit_name"] else _fmt(r["runtime_h"], 1))
            table.add_row(st["serial"], "+".join(st["modules"]), st["grade"], _fmt(st["usable_Wh"], 0), *cells)
        if len(s["stations"]) > 10:
            table.caption = f"strongest 10 of {len(s['stations'])} stations; all in the report and the database"
        console.print(table)


def main() -> None:  # pragma: no cover - console-script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
