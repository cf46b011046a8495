"""Reader of a graded lot as a CSV file (the input of ``releaf assemble``).

Columns (header on line 1, one module per line after it):

========================= ======== ====================================================================
column                    required what
========================= ======== ====================================================================
``module_id``             yes      module serial, unique in the file
``capacity_Ah``           yes      module capacity [Ah] (stands for every group when no group columns)
``r0_mOhm``               yes      module ohmic resistance [mOhm] (split evenly over the groups when no
                                   group columns)
``grade``                 yes      ``A``, ``B``, ``C`` or ``reject`` (a reject may leave numbers empty)
``group_capacity_Ah_<k>`` no       capacity of series group k = 1, 2, ... [Ah]
``group_r0_mOhm_<k>``     no       resistance of series group k [mOhm]
``failed_safety``         no       ``true`` when the module failed a safety screen: never assembled,
                                   whatever its grade (``grade_table`` writes this column)
========================= ======== ====================================================================

Group columns, when present, must run 1..G with G the module's series groups; a module's capacity in a string is
then its weakest group's.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

from releaf.assembly import ModuleCandidate
from releaf.errors import InputFileError
from releaf.schema.records import GRADES

REQUIRED = ("module_id", "capacity_Ah", "r0_mOhm", "grade")
_GROUP = re.compile(r"^group_(capacity_Ah|r0_mOhm)_(\d+)$")


def _number(text: str, path: Path, line: int, column: str, *, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputFileError(str(path), f"text {text!r} where a number was expected", line=line,
                             column=column) from None
    if not math.isfinite(value) or (value <= 0 if positive else value < 0):
        raise InputFileError(str(path), f"{value:g} is not a {'positive' if positive else 'non-negative'} number",
                             line=line, column=column)
    return value


def read_module_lot(path: str | Path, series_groups: int) -> list[ModuleCandidate]:
    """Read a graded lot from a CSV file.

    Parameters
    ----------
    path : the CSV file
    series_groups : series groups of one module of the design (a Leaf module: 2)

    Returns
    -------
    One :class:`releaf.assembly.ModuleCandidate` per line, in file order.

    Raises
    ------
    InputFileError : unreadable file, missing column, group columns that do not run 1..series_groups, a text or
        non-positive value where a number is expected, an unknown grade, a module_id listed twice (each with the
        file, line and column)
    """
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputFileError(str(path), f"cannot read the lot: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        for name in REQUIRED:
            if name not in header:
                raise InputFileError(str(path), f"missing column {name!r} (need {', '.join(REQUIRED)})", line=1,
                                     column=name)
        col = {h: i for i, h in enumerate(header)}
        groups = {kind: sorted(int(m.group(2)) for h in header if (m := _GROUP.match(h)) and m.group(1) == kind)
                  for kind in ("capacity_Ah", "r0_mOhm")}
        for kind, ks in groups.items():
            if ks and ks != list(range(1, series_groups + 1)):
                raise InputFileError(str(path), f"group_{kind}_<k> columns {ks}: a module of this design has "
                                                f"{series_groups} groups, so k must run 1..{series_groups}", line=1,
                                     column=f"group_{kind}_{ks[0]}")
        seen: dict[str, int] = {}
        lot = []
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < len(header):
                raise InputFileError(str(path), f"{len(row)} fields; the header has {len(header)}", line=line)
            cell = {h: row[i].strip() for h, i in col.items()}
            serial = cell["module_id"]
            if not serial:
                raise InputFileError(str(path), "empty module_id", line=line, column="module_id")
            if serial in seen:
                raise InputFileError(str(path), f"module_id {serial!r} already on line {seen[serial]}", line=line,
                                     column="module_id")
            seen[serial] = line
            grade = cell["grade"]
            if grade not in GRADES:
                raise InputFileError(str(path), f"grade {grade!r}: expected one of {', '.join(GRADES)}", line=line,
                                     column="grade")
            unsafe = cell.get("failed_safety", "").lower()
            if unsafe not in ("", "true", "false", "1", "0"):
                raise InputFileError(str(path), f"failed_safety {cell['failed_safety']!r}: expected true or false",
                                     line=line, column="failed_safety")
            unsafe = unsafe in ("true", "1")
            if (grade == "reject" or unsafe) and not (cell["capacity_Ah"] and cell["r0_mOhm"]):
                lot.append(ModuleCandidate(serial, grade, failed_safety=unsafe))
                continue

            def num(name, positive, line=line, cell=cell):
                return _number(cell[name], path, line, name, positive=positive)

            capacity, r0 = num("capacity_Ah", True), num("r0_mOhm", False)
            caps = (tuple(num(f"group_capacity_Ah_{k}", True) for k in groups["capacity_Ah"])
                    or (capacity,) * series_groups)
            r0s = (tuple(num(f"group_r0_mOhm_{k}", False) for k in groups["r0_mOhm"])
                   or (r0 / series_groups,) * series_groups)
            lot.append(ModuleCandidate(serial, grade, caps, r0s, failed_safety=unsafe))
    return lot
