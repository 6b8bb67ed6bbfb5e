"""The exception hierarchy of aiguilleur.

Every error that aiguilleur raises on purpose derives from
:class:`AiguilleurError`. Messages name the place (file, line, field or id)
and what was expected, so that the command line can print them as one line.
"""

from __future__ import annotations

__all__ = [
    "AiguilleurError",
    "CaseFormatError",
    "InfeasibleError",
    "SolverError",
    "ValidationError",
]


class AiguilleurError(Exception):
    """Root of every error aiguilleur raises on purpose."""


class CaseFormatError(AiguilleurError):
    """A case file is malformed.

    Parameters
    ----------
    message
        What was wrong and what was expected.
    path
        The file, when known.
    line
        The 1-based line number, when known.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(f"{where}{message}")


class ValidationError(AiguilleurError):
    """A value, id or option is outside what is allowed.

    Parameters
    ----------
    message
        What was wrong and what was expected.
    component
        The table concerned (``bus``, ``gen``, ``branch``, ...), when known.
    row
        The 0-based row of that table, when known.
    """

    def __init__(self, message: str, component: str | None = None, row: int | None = None) -> None:
        self.component = component
        self.row = row
        super().__init__(message)


class InfeasibleError(AiguilleurError):
    """A request cannot be met and no degraded answer makes sense."""


class SolverError(AiguilleurError):
    """A numerical solver failed in a way that leaves no usable result."""
