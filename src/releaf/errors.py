"""Errors a user can act on, one class per kind, so that a shell or a service can map them.

=================== ============================================= ========= ==========
class               what went wrong                               CLI exit  HTTP
=================== ============================================= ========= ==========
``InputFileError``  a test file, log or manifest is malformed      2         422
``ConfigError``     a parameter set, policy, design, option or     2         422
                    database URL is wrong or missing
``NotFoundError``   a named record (module, station) does not      2         404
                    exist
``ConflictError``   the request contradicts what is stored         2         409
``OverrideRefused`` a grade override that the policy forbids       2         422
                    (a safety failure put back into a product),
                    or one without user or reason
=================== ============================================= ========= ==========

Every error prints as one line, ``<where>[, line N][, column 'X']: <what was expected>``.
"""

from __future__ import annotations


class ReleafError(Exception):
    """Base class of releaf's own errors: a user error with the place it was found.

    Parameters
    ----------
    where : the file, record or setting that is wrong (a path, a name)
    message : what is wrong and what was expected
    line : 1-based line number in the file, if known
    column : column or key name (or 1-based index), if known
    """

    http_status = 400

    def __init__(self, where, message: str, *, line: int | None = None, column: str | int | None = None):
        self.file = str(where)
        self.line = line
        self.column = column
        self.message = message
        super().__init__(str(self))

    @property
    def where(self) -> str:
        return self.file

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict:
        """The error as JSON for an API response."""
        return {"error": type(self).__name__, "where": self.file, "line": self.line,
                "column": self.column, "message": self.message}


class InputFileError(ReleafError):
    """Bad input: says which file, which line or column, and what was expected."""

    http_status = 422


class ConfigError(ReleafError):
    """Bad configuration: an unknown or malformed parameter set, policy, design, use case, option or URL."""

    http_status = 422


class NotFoundError(ReleafError):
    """A named record (module, station, test) that does not exist."""

    http_status = 404


class ConflictError(ReleafError):
    """A request that contradicts what is already stored (e.g. one serial for two different modules)."""

    http_status = 409


class OverrideRefused(ReleafError):  # noqa: N818 (the name the override CLI and API are written against)
    """A person's grade override that is refused: a module that failed a safety screen can only go to recycling,
    and every override names its user and its reason."""

    http_status = 422
