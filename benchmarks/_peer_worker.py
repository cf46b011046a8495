"""One ingest measurement in a fresh process (run by ``bench_ingest.py``; not meant to be used on its own).

    PYTHON benchmarks/_peer_worker.py TOOL PATH [--repeat N] [--opts JSON]

TOOL is ``polars`` (bare ``pl.read_csv``, the floor), ``releaf`` (``releaf.io.read``), ``releaf-stream``
(iterate :func:`releaf.io.arbin.iter_arbin_csv` batches, count rows and sum the current, never holding the table),
``beep`` (``<Datapath>.from_file``) or ``cellpy`` (``cellpy.get(..., auto_summary=False)``). ``--opts`` is a JSON
object with the tool's arguments (polars ``read_csv`` options, BEEP class, cellpy instrument/model ...).

Runs with either interpreter: releaf's venv for ``polars``/``releaf``/``releaf-stream``, the peers' venv for
``beep``/``cellpy``, so it imports nothing of releaf at module level and only the standard library otherwise.
Only the parse-to-table call is timed (best of ``--repeat``); the import time is reported separately, and the
peak RSS (``ru_maxrss``) of the process is per measurement because every measurement is its own process.
BEEP and cellpy read a private copy of the file (made before each call, untimed) in a scratch folder under the
working directory, never the original (see :func:`_private_copy`).
Prints one line ``RESULT_JSON {...}`` on stdout (peers may print their own chatter before it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

MARKER = "RESULT_JSON "
PEERS = ("beep", "cellpy")  # they get a private copy of the file: cellpy deletes its "temporary" input file


def _private_copy(path: Path, into: Path) -> Path:
    """Copy ``path`` and its sidecars (``<stem>_*``, ``<stem>.*``: Arbin test record, BioLogic .mpl) into ``into``.

    Peers run on the copy, never on the original: with ``refuse_copying=True`` cellpy treats the file it was given
    as its temporary copy and removes it after loading (``biologics_mpr``), or writes next to it (``arbin_res``).
    """
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    for sibling in path.parent.iterdir():
        name = sibling.name
        if sibling.is_file() and (sibling == path or name.startswith((path.stem + "_", path.stem + "."))):
            shutil.copyfile(sibling, into / name)
    return into / path.name


def _rss_mb() -> float:
    """Current resident set size of this process, MB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return 0.0


class _RssSampler:
    """Peak anonymous and file-backed RSS, sampled every ``interval`` s on a daemon thread (Linux /proc only).

    ``ru_maxrss`` counts the pages of a memory-mapped input file too (polars maps the CSV it parses); the
    anonymous part is the memory the tool itself allocates (tables, buffers), which is what "bounded" is about.
    """

    def __init__(self, interval: float = 0.01):
        import threading

        self.interval, self.peak_anon, self.peak_file = interval, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        self.peak_anon = max(self.peak_anon, int(line.split()[1]) * 1024 / 1e6)
                    elif line.startswith("RssFile:"):
                        self.peak_file = max(self.peak_file, int(line.split()[1]) * 1024 / 1e6)
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6  # bytes on macOS, KiB on Linux


# Each tool: setup(opts) -> (parse(path) -> result, rows(result) -> int, columns(result) -> int). The imports happen
# in setup (timed as import time); parse is the timed call.

def _polars(opts):
    import polars as pl

    def parse(path):
        return pl.read_csv(path, **opts.get("read_csv", {}))

    return parse, lambda df: df.height, lambda df: df.width


def _releaf(opts):
    import releaf.io

    def parse(path):
        return releaf.io.read(path)

    return parse, lambda ts: ts.data.height, lambda ts: ts.data.width


def _releaf_stream(opts):
    from releaf.io.arbin import iter_arbin_csv

    batch_rows = int(opts.get("batch_rows", 1_000_000))

    def parse(path):
        rows, current_sum, width = 0, 0.0, 0
        for batch in iter_arbin_csv(path, batch_rows=batch_rows):
            rows += batch.data.height
            current_sum += float(batch.data["current_A"].sum())
            width = batch.data.width
        return {"rows": rows, "current_sum_A": current_sum, "width": width}

    return parse, lambda r: r["rows"], lambda r: r["width"]


def _beep(opts):
    import importlib

    module = importlib.import_module(f"beep.structure.{opts['module']}")
    cls = getattr(module, opts["class"])

    def parse(path):
        return cls.from_file(str(Path(path).resolve()))  # BEEP wants absolute str paths (path.replace, isabs)

    return parse, lambda dp: len(dp.raw_data), lambda dp: dp.raw_data.shape[1]


def _cellpy(opts):
    import cellpy

    log_dir = tempfile.mkdtemp(prefix="cellpy-log-", dir=os.getcwd())  # cellpy writes log files: not in the repo

    def parse(path):
        kwargs = {"instrument": opts["instrument"], "auto_summary": False, "refuse_copying": True,
                  "custom_log_dir": log_dir}
        if opts.get("model"):
            kwargs["model"] = opts["model"]
        kwargs.update(opts.get("kwargs", {}))
        cell = cellpy.get(str(path), **kwargs)
        if cell is None:
            raise RuntimeError("cellpy.get returned None (cellpy: 'Could not load file')")
        if cell.data.raw is None or len(cell.data.raw) == 0:
            raise RuntimeError("cellpy.get returned an empty raw table")
        return cell

    return parse, lambda c: len(c.data.raw), lambda c: c.data.raw.shape[1]


TOOLS = {"polars": _polars, "releaf": _releaf, "releaf-stream": _releaf_stream, "beep": _beep, "cellpy": _cellpy}


def _short_error(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


def _repeat(parse, rows_of, cols_of, tool, path: Path, repeat, scratch: Path, times: list, out: dict) -> None:
    for _ in range(repeat):
        target = _private_copy(path, scratch / "in") if tool in PEERS else path  # not timed
        gc.collect()
        t = time.perf_counter()
        result = parse(target)
        times.append(time.perf_counter() - t)
        out["rows"], out["columns"] = int(rows_of(result)), int(cols_of(result))
        del result


def measure(tool: str, path: str, repeat: int, opts: dict) -> dict:
    out = {"tool": tool, "path": path, "python": sys.executable, "repeat": repeat, "opts": opts}
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    try:
        parse, rows_of, cols_of = TOOLS[tool](opts)
    except Exception as err:  # noqa: BLE001 - a peer that cannot even import is a result, not a crash
        out.update(ok=False, stage="import", error=_short_error(err), traceback=traceback.format_exc()[-2000:])
        return out
    out["import_s"] = time.perf_counter() - t0
    out["rss_after_import_MB"] = _rss_mb()
    out["rss_interpreter_MB"] = rss0
    times: list[float] = []
    scratch = Path(tempfile.mkdtemp(prefix="ingest-", dir=os.getcwd()))
    sampler = _RssSampler()
    try:
        with sampler:
            _repeat(parse, rows_of, cols_of, tool, Path(path), repeat, scratch, times, out)
    except Exception as err:  # noqa: BLE001 - "cannot read (reason)" is what the benchmark reports
        out.update(ok=False, stage="parse", error=_short_error(err), traceback=traceback.format_exc()[-2000:])
    else:
        out.update(ok=True, times_s=times, best_s=min(times))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out.update(peak_rss_MB=_peak_rss_mb(), peak_anon_MB=sampler.peak_anon, peak_file_MB=sampler.peak_file)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="one ingest measurement (see bench_ingest.py)")
    parser.add_argument("tool", choices=sorted(TOOLS))
    parser.add_argument("path")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--opts", default="{}", help="JSON object of tool arguments")
    args = parser.parse_args()
    result = measure(args.tool, args.path, args.repeat, json.loads(args.opts))
    sys.stdout.flush()
    print(MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
