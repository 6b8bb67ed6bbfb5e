"""One status vocabulary for every result of aiguilleur.

Every result says what happened with one of these words, and ``ok`` says
whether it met what was asked. A result that left something undone names it
(unserved MW, dropped required orders, rejected measurements, overloads left)
beside its status; the command line's exit code follows ``ok``.

=================  ====  ============================================================
status             ok    meaning
=================  ====  ============================================================
``optimal``        yes   solved to optimality; everything asked was met
``feasible``       yes   everything asked was met, optimality not proven
``partial``        no    a usable answer that leaves something undone (named)
``infeasible``     no    what was asked cannot be met; the reason is named
``not_converged``  no    an iterative method stopped without converging
``time_limit``     no    the deadline passed; the best answer so far is returned
``error``          no    the computation failed; the message says why
=================  ====  ============================================================
"""

from __future__ import annotations

from typing import Literal

__all__ = ["OK_STATUSES", "STATUSES", "Status", "exit_code", "is_ok"]

Status = Literal[
    "optimal", "feasible", "partial", "infeasible", "not_converged", "time_limit", "error"
]
STATUSES: tuple[str, ...] = (
    "optimal",
    "feasible",
    "partial",
    "infeasible",
    "not_converged",
    "time_limit",
    "error",
)
OK_STATUSES = frozenset({"optimal", "feasible"})

#: Exit codes of the command line: 0 ok, 1 the result did not meet what was asked,
#: 2 bad input or an error (see the README's table), 130 interrupted.
EXIT_OK, EXIT_NOT_MET, EXIT_ERROR = 0, 1, 2


def is_ok(status: str) -> bool:
    """True when ``status`` means that what was asked was met."""
    return status in OK_STATUSES


def exit_code(ok: bool) -> int:
    """The command line's exit code for a result (0 when ``ok``, else 1)."""
    return EXIT_OK if ok else EXIT_NOT_MET
