"""The plant report: one self-contained HTML file (inline CSS, plots as base64 PNG, no scripts, no external URLs).

:func:`summarise` turns the chain's :class:`releaf.schema.records.RunResult` into the run summary (the JSON that
``releaf run --json`` prints); :func:`write_report` draws and renders it.
"""

from __future__ import annotations

import base64
import io
import math
from collections import Counter
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import jinja2
from matplotlib.figure import Figure

from releaf.schema.records import GRADES, AssemblyStatus, RunResult

GRADE_COLOURS = {"A": "#2e7d32", "B": "#1565c0", "C": "#ef6c00", "reject": "#c62828"}
_OTHER_COLOUR = "#757575"
DASH = "—"


def fmt(value, digits: int = 2) -> str:
    """A float with ``digits`` decimals, an int as is; None, NaN and inf print as an em dash."""
    if value is None or isinstance(value, jinja2.Undefined):
        return DASH
    if isinstance(value, (bool, int)):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else DASH
    return str(value)


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _colour(grade) -> str:
    return GRADE_COLOURS.get(grade, _OTHER_COLOUR)


def grade_chart(grade_counts: dict) -> str:
    """Bar chart of modules per grade, as base64 PNG."""
    fig = Figure(figsize=(5, 2.8))
    ax = fig.add_subplot()
    names = list(GRADES) + [g for g in grade_counts if g not in GRADES]
    counts = [grade_counts.get(g, 0) or 0 for g in names]
    bars = ax.bar(names, counts, color=[_colour(g) for g in names])
    ax.bar_label(bars)
    ax.set_ylabel("modules")
    ax.set_title("Modules per grade")
    return _png(fig)


def soh_histogram(modules: list[dict]) -> str | None:
    """Stacked histogram of module SOH [%], coloured by grade; None without SOH values."""
    by_grade = {}
    for m in modules:
        soh = m.get("soh_pct")
        if isinstance(soh, (int, float)) and math.isfinite(soh):
            by_grade.setdefault(m.get("grade") or "?", []).append(soh)
    if not by_grade:
        return None
    order = [g for g in GRADES if g in by_grade] + [g for g in by_grade if g not in GRADES]
    values = [v for g in order for v in by_grade[g]]
    lo, hi = math.floor(min(values) / 2.0) * 2.0, math.ceil(max(values) / 2.0) * 2.0 + 2.0
    bins = [lo + 2.0 * k for k in range(int((hi - lo) / 2.0) + 1)]
    fig = Figure(figsize=(7, 3))
    ax = fig.add_subplot()
    ax.hist([by_grade[g] for g in order], bins=bins, stacked=True, color=[_colour(g) for g in order], label=order)
    ax.set_xlabel("state of health [%]")
    ax.set_ylabel("modules")
    ax.legend(title="grade")
    ax.set_title("Module SOH by grade")
    return _png(fig)


def use_case_names(stations: list[dict]) -> list[str]:
    """Use cases in the order they first appear in the stations' runtimes."""
    names: list[str] = []
    for s in stations:
        for name in s.get("runtimes") or {}:
            if name not in names:
                names.append(name)
    return names


def station_chart(stations: list[dict]) -> str | None:
    """Usable energy per station and median runtime per use case (min–max whiskers), as base64 PNG."""
    if not stations:
        return None
    fig = Figure(figsize=(10, 3.2))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    wh = [s.get("usable_Wh") if isinstance(s.get("usable_Wh"), (int, float)) else 0.0 for s in stations]
    ax1.bar(range(len(stations)), wh, color=[_colour(s.get("grade")) for s in stations])
    if len(stations) <= 24:
        ax1.set_xticks(range(len(stations)), [str(s.get("serial")) for s in stations], rotation=90, fontsize=6)
    else:  # serials would overprint; the table above names every station in the same order
        ax1.set_xlabel("stations, strongest first (same order as the table)")
    ax1.set_ylabel("usable energy [Wh]")
    ax1.set_title("Usable energy per station (colour = grade)")
    names = use_case_names(stations)
    med, lo, hi = [], [], []
    for n in names:
        r = sorted(v["runtime_h"] for s in stations
                   if isinstance(v := (s.get("runtimes") or {}).get(n), dict)
                   and isinstance(v.get("runtime_h"), (int, float)))
        m = r[len(r) // 2] if r else 0.0
        med.append(m)
        lo.append(m - r[0] if r else 0.0)
        hi.append(r[-1] - m if r else 0.0)
    if names:
        ax2.barh(names, med, xerr=[lo, hi], color="#546e7a", capsize=3)
        ax2.invert_yaxis()
        ax2.set_xlabel("runtime [h]")
        ax2.set_title("Runtime per use case (median, min–max)")
    else:
        ax2.set_axis_off()
    fig.tight_layout()
    return _png(fig)


def curves_chart(curves: dict) -> str | None:
    """Module voltage, current and series-group voltages against time in hours; None without data."""
    t = curves.get("test_time_s") or []
    if not t:
        return None
    hours = [x / 3600.0 for x in t]
    fig = Figure(figsize=(9, 6.5))
    ax_v, ax_i, ax_g = fig.subplots(3, 1, sharex=True)
    ax_v.plot(hours, curves.get("voltage_V") or [float("nan")] * len(t), lw=1)
    ax_v.set_ylabel("voltage [V]")
    ax_i.plot(hours, curves.get("current_A") or [float("nan")] * len(t), lw=1, color="#6a1b9a")
    ax_i.set_ylabel("current [A]\n(+ = charge)")
    for k, g in enumerate(curves.get("group_voltage_V") or [], start=1):
        ax_g.plot(hours, g, lw=1, label=f"group {k}")
    if curves.get("group_voltage_V"):
        ax_g.legend(fontsize=8)
    ax_g.set_ylabel("group voltage [V]")
    ax_g.set_xlabel("test time [h]")
    ax_v.set_title(str(curves.get("title", "")))
    for ax in (ax_v, ax_i, ax_g):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _template() -> jinja2.Template:
    text = resources.files("releaf.app").joinpath("templates", "report.html").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["fmt"] = fmt
    return env.from_string(text)


def pairing_note(result: RunResult) -> str:
    """One line on the matching: stations, energy, method, and every module not built into a station."""
    p = result.pairing
    head = "Matching: no modules to match" if p is None else (
        f"Matching: {len(p.stations)} stations, {p.total_usable_Wh:.0f} Wh in total"
        f"{f', {p.total_series_capacity_Ah:.1f} Ah of series capacity' if p.total_series_capacity_Ah else ''} "
        f"({p.method}{'' if p.optimal else ', optimal over the restricted graph'})")
    unmatched = [m.serial for m in result.by_status(AssemblyStatus.UNMATCHED)]
    refused = [m.serial for m in result.by_status(AssemblyStatus.REFUSED)]
    built = result.by_status(AssemblyStatus.ALREADY_BUILT)
    parts = [head, f"unmatched: {', '.join(unmatched) or 'none'}",
             f"rejected: {len(result.by_status(AssemblyStatus.REJECTED))}"]
    if refused:
        parts.append(f"refused by the design: {', '.join(refused)} (see each module's reason)")
    if built:
        parts.append(f"already in stations: {len(built)}")
    other = Counter(m.grade.destination for m in result.by_status(AssemblyStatus.OTHER_DESTINATION))
    if other:
        parts.append("kept for other destinations: " + ", ".join(f"{d} {n}" for d, n in sorted(other.items())))
    if result.duplicates:
        parts.append(f"duplicate test files (same bytes as a known test, not new modules): {len(result.duplicates)}")
    if result.flagged:
        parts.append("stations flagged for disassembly: " + ", ".join(sorted({f.station for f in result.flagged})))
    return "; ".join(parts) + "."


def summarise(result: RunResult, *, database: str, title: str, notes=(), curves=None) -> dict:
    """The run summary: what ``releaf run --json`` prints and what the HTML report shows.

    Every module is listed with its grade and its assembly ``status`` (matched, unmatched, rejected, refused,
    already_built) and ``assembly_reason``; stations with their usable energy and runtimes per use case.
    """
    notes = [*notes, pairing_note(result)]
    stations = [
        {"serial": st.serial, "modules": list(st.modules), "grade": st.grade.value, "usable_Wh": st.usable_Wh,
         "runtimes": {u.name: {"runtime_h": u.runtime_h, "units": u.units, "unit_name": u.unit_name}
                      for u in st.certification.use_cases}}
        for st in result.stations
    ]
    return {
        "title": title,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database,
        "grade_counts": result.grade_counts(),
        "use_cases": list(stations[0]["runtimes"]) if stations else [],
        "modules": [
            {"serial": r.serial, "pack_vin": r.entry.pack_vin, "file": str(r.entry.path),
             "generated": r.entry.generated, "grade": r.grade.grade.value, "reasons": list(r.grade.reasons),
             "destination": r.grade.destination, "failed_safety": r.grade.failed_safety,
             "soh_pct": r.diagnosis.soh_pct, "capacity_Ah": r.diagnosis.capacity_Ah,
             "energy_Wh": r.diagnosis.energy_Wh, "r0_mOhm": r.diagnosis.r0_mOhm,
             "weakest_group": r.diagnosis.weakest_group,
             "status": None if r.status is None else r.status.value, "assembly_reason": r.reason,
             "station": r.station}
            for r in result.modules
        ],
        "stations": stations,
        "duplicates": [{"file": str(d.entry.path), "module_serial": d.entry.module_serial, "sha256": d.sha256,
                        "same_as": d.same_as, "reason": d.reason} for d in result.duplicates],
        "flagged_stations": [{"station": f.station, "module": f.module, "reason": f.reason}
                             for f in result.flagged],
        "reference": [
            {"file": Path(d.file).name, "capacity_Ah": d.capacity_Ah, "energy_Wh": d.energy_Wh, "r0_mOhm": d.r0_mOhm,
             "weakest_group": d.weakest_group,
             "groups": [{"group": g.group, "end_voltage_V": g.end_voltage_V, "r0_mOhm": g.r0_mOhm,
                         "capacity_Ah": g.capacity_Ah} for g in d.groups]}
            for d in result.reference
        ],
        "curves": curves,
        "notes": notes,
    }


def render_report(summary: dict) -> str:
    """The report as an HTML string (see :func:`write_report` for the ``summary`` schema)."""
    modules = summary.get("modules") or []
    stations = summary.get("stations") or []
    counts = dict(summary.get("grade_counts") or {})
    charts = {
        "grades": grade_chart(counts),
        "soh": soh_histogram(modules),
        "stations": station_chart(stations),
        "curves": curves_chart(summary.get("curves") or {}),
    }
    return _template().render(
        s=summary, modules=modules, stations=stations, reference=summary.get("reference") or [],
        notes=summary.get("notes") or [], curves=summary.get("curves") or {}, charts=charts,
        grade_counts=[(g, counts.get(g, 0)) for g in GRADES] + [(g, n) for g, n in counts.items() if g not in GRADES],
        total=sum(n or 0 for n in counts.values()), use_cases=use_case_names(stations),
        n_generated=sum(1 for m in modules if m.get("generated")),
        grade_colours=GRADE_COLOURS,
    )


def write_report(out_dir, summary: dict) -> Path:
    """Write the plant report ``<out_dir>/report.html``: one self-contained file.

    Parameters
    ----------
    out_dir : folder to write into (created if missing)
    summary : what the pipeline found, with these keys (units in the names; None prints as "—")::

        {"title": str, "generated_at": ISO 8601 str, "database": str,
         "grade_counts": {"A": int, "B": int, "C": int, "reject": int},
         "modules": [{"serial", "pack_vin", "file", "generated": bool, "grade", "reasons": [str],
                      "destination": str | None, "failed_safety": bool,
                      "soh_pct", "capacity_Ah", "energy_Wh", "r0_mOhm", "weakest_group"}],
         "stations": [{"serial", "modules": [serial, serial], "grade", "usable_Wh",
                       "runtimes": {use_case: {"runtime_h": float, "units": float | None,
                                               "unit_name": str | None}}}],
         "reference": [{"file", "capacity_Ah", "energy_Wh", "r0_mOhm", "weakest_group",
                        "groups": [{"group", "end_voltage_V", "r0_mOhm", "capacity_Ah"}]}],
         "curves": {"title": str, "test_time_s": [...], "voltage_V": [...], "current_A": [...],
                    "group_voltage_V": [[...], ...]},
         "notes": [str]}

        ``modules[*].generated`` marks simulated modules (``releaf.sim.fleet``); ``reference`` holds real ORNL
        module-string measurements. All text is HTML-escaped.

    Returns
    -------
    Path of the written ``report.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(render_report(summary), encoding="utf-8")
    return path
