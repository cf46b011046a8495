"""Errors a user can act on."""

from __future__ import annotations


class ReleafError(Exception):
    """Base class of releaf's own errors."""


class ReleafInputError(ReleafError):
    """Bad input: says which file, which line or column, and what was expected.

    Parameters
    ----------
    file : path or name of the offending file
    message : what is wrong and what was expected
    line : 1-based line number in the file, if known
    column : column name (or 1-based index), if known
    """

    def __init__(self, file, message: str, *, line: int | None = None, column: str | int | None = None):
        self.file = str(file)
        self.line = line
        self.column = column
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"
