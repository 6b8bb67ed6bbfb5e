"""Argument checks shared by the public functions of the grid package (private).

A wrong argument type is reported as one :class:`~aiguilleur.errors.ValidationError`
naming the function and the argument, not as an ``AttributeError`` from deep inside.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError

if TYPE_CHECKING:
    from aiguilleur.grid.network import Network

__all__ = [
    "check_flag",
    "check_network",
    "check_options",
    "check_path",
    "check_row",
    "check_rows",
]

T = TypeVar("T")


def _kind(x: object) -> str:
    return type(x).__name__


def check_network(x: object, where: str, arg: str = "net", *, solve: bool = False) -> Network:
    """``x`` itself when it is a :class:`Network`, else a one-line error.

    With ``solve``, also :meth:`Network.check_solvable` (ratings, unit limits,
    magnitudes), for the functions that solve the network.
    """
    from aiguilleur.grid.network import Network

    if not isinstance(x, Network):
        raise ValidationError(
            f"{where}: {arg} must be a Network (e.g. from read_matpower), got {_kind(x)}"
        )
    if solve:
        x.check_solvable()
    return x


def check_options(x: object, cls: type[T], where: str, arg: str = "options") -> T:
    """``x`` when it is an instance of ``cls``, ``cls()`` when it is None."""
    if x is None:
        return cls()
    if not isinstance(x, cls):
        raise ValidationError(f"{where}: {arg} must be {cls.__name__} or None, got {_kind(x)}")
    return x


def check_path(x: object, where: str, arg: str = "path") -> str | os.PathLike[str]:
    """``x`` when it names a file (a ``str`` or a path-like object)."""
    if isinstance(x, bool) or not isinstance(x, (str, os.PathLike)):
        raise ValidationError(f"{where}: {arg} must be a file path (str or Path), got {_kind(x)}")
    if isinstance(x, str) and not x.strip():
        raise ValidationError(f"{where}: {arg} is empty")
    return x


def check_row(x: object, n: int, what: str, where: str) -> int:
    """A 0-based row of a table of ``n`` rows: an integer, not a bool or a float."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise ValidationError(f"{where}: {what} row must be an integer (0-based), got {x!r}")
    i = int(x)
    if not 0 <= i < n:
        raise ValidationError(f"{where}: {what} row {i} out of range 0..{n - 1}")
    return i


def check_rows(x: npt.ArrayLike, n: int, what: str, where: str) -> npt.NDArray[np.int64]:
    """0-based rows of a table of ``n`` rows: integers only (1.5 or True are refused)."""
    try:
        a = np.atleast_1d(np.asarray(x))
    except (TypeError, ValueError):
        raise ValidationError(f"{where}: {what} rows must be integers (0-based)") from None
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        bad: Any = a.ravel()[0].item() if a.size else x
        raise ValidationError(
            f"{where}: {what} rows must be integers (0-based), got {bad!r}"
            if a.ndim == 1
            else f"{where}: {what} rows must be a flat list of integers"
        )
    idx = a.astype(np.int64)
    out = idx[(idx < 0) | (idx >= n)]
    if out.size:
        raise ValidationError(f"{what} index {int(out[0])} out of range 0..{n - 1}")
    return idx


def check_flag(x: object, where: str, arg: str) -> int:
    """1 or 0 from ``True``/``False``/``1``/``0``; anything else (``"no"``) is refused."""
    if isinstance(x, (bool, np.bool_)):
        return int(x)
    if isinstance(x, (int, np.integer)) and int(x) in (0, 1):
        return int(x)
    raise ValidationError(f"{where}: {arg} must be True/False or 1/0, got {x!r}")
