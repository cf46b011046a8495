"""The optional ``manifest.csv`` of a test folder: which file tested which module of which pack.

Columns: ``file`` (required, relative to the folder), ``module_serial`` (required), ``pack_vin``, ``pack_model``,
``module_position`` (1-based slot in the pack), ``generated`` (true for releaf's demo data). Other columns are
kept but not interpreted. Without a manifest every test file in the folder is its own module, named after the file.

A manifest is refused, with the line and column, when it lists a module serial, a file, or a pack's position twice
(a retest is a later run with the new file), or when a file lies outside the manifest's folder (``../x.csv``, an
absolute path, a symbolic link out) unless the caller allows it (``releaf run --allow-outside``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from releaf.errors import InputFileError
from releaf.schema.records import ModuleEntry

MANIFEST_NAME = "manifest.csv"
# Files in a test folder that are not test data.
IGNORED_SUFFIXES = (".txt", ".md", ".html", ".json", ".yaml", ".yml", ".db", ".png", ".pdf")
IGNORED_NAME_ENDINGS = ("_metadata.csv",)  # Arbin test records, read beside their data file


def _truthy(text: str | None) -> bool:
    return (text or "").strip().lower() in {"1", "true", "yes", "y"}


def _inside(file: Path, folder: Path) -> bool:
    return file.resolve().is_relative_to(folder.resolve())


def read_manifest(path: Path, *, allow_outside: bool = False) -> list[ModuleEntry]:
    """Parse a manifest; a clear error names the line and column of anything wrong.

    Parameters
    ----------
    allow_outside : accept files outside the manifest's folder (refused by default)
    """
    folder = path.parent
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputFileError(path, f"not UTF-8 text ({err.reason})") from None
    except OSError as err:
        raise InputFileError(path, f"cannot read the manifest: {err.strerror or err}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise InputFileError(path, "manifest is empty")
    header = [h.strip() for h in rows[0]]
    for required in ("file", "module_serial"):
        if required not in header:
            raise InputFileError(path, f"required column {required!r} missing (found: {', '.join(header)})", line=1)
    col = {name: k for k, name in enumerate(header)}
    entries = []
    first_line: dict[tuple, int] = {}  # (kind, value) -> line it was first listed on

    def once(kind: str, value, lineno: int, column: str, what: str) -> None:
        earlier = first_line.setdefault((kind, value), lineno)
        if earlier != lineno:
            raise InputFileError(path, f"{what} already listed on line {earlier}", line=lineno, column=column)

    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputFileError(path, f"{len(row)} fields where the header has {len(header)}", line=lineno)

        def get(name: str, row=row) -> str | None:
            return row[col[name]].strip() or None if name in col else None

        position = get("module_position")
        if position is not None:
            try:
                position = int(position)
            except ValueError:
                raise InputFileError(
                    path, f"{position!r} where a whole number was expected", line=lineno, column="module_position"
                ) from None
        if not get("file") or not get("module_serial"):
            missing = "file" if not get("file") else "module_serial"
            raise InputFileError(path, "empty value", line=lineno, column=missing)
        file = folder / get("file")
        if not allow_outside and not _inside(file, folder):
            raise InputFileError(path, f"{get('file')!r} is outside the manifest's folder; list files inside it, "
                                       "or allow it with --allow-outside", line=lineno, column="file")
        if not file.is_file():
            raise InputFileError(path, f"listed file {get('file')!r} does not exist", line=lineno, column="file")
        once("serial", get("module_serial"), lineno, "module_serial",
             f"module {get('module_serial')!r} (one line per module; a retest is a later run)")
        once("file", file.resolve(), lineno, "file", f"file {get('file')!r}")
        if get("pack_vin") and position is not None:
            once("slot", (get("pack_vin"), position), lineno, "module_position",
                 f"position {position} of pack {get('pack_vin')}")
        entries.append(
            ModuleEntry(file, get("module_serial"), get("pack_vin"), get("pack_model"), position,
                        _truthy(get("generated")))
        )
    return entries


def discover(folder: Path, *, allow_outside: bool = False) -> list[ModuleEntry]:
    """The test files of a folder: the manifest's entries, else every data file in it (sorted by name).

    Raises
    ------
    InputFileError : not a folder, no test files, a bad manifest, or two files that would be one module (same
        name, other extension)
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "not a folder")
    manifest = folder / MANIFEST_NAME
    if manifest.is_file():
        return read_manifest(manifest, allow_outside=allow_outside)
    files = sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".")
        and p.suffix.lower() not in IGNORED_SUFFIXES
        and not p.name.lower().endswith(IGNORED_NAME_ENDINGS)
    )
    if not files:
        raise InputFileError(folder, "no test files in the folder")
    by_stem: dict[str, Path] = {}
    for p in files:
        if p.stem in by_stem:
            raise InputFileError(folder, f"{by_stem[p.stem].name} and {p.name} would both be module {p.stem!r}: "
                                         "add a manifest.csv that names each file's module")
        by_stem[p.stem] = p
    return [ModuleEntry(p, p.stem) for p in files]
