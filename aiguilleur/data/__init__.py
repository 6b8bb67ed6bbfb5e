"""Small data bundled with aiguilleur, with its licence and attribution.

The PGLib-OPF v23.07 cases that the demo and the tests use ship under
``aiguilleur/data/cases`` (CC BY 4.0; see ``aiguilleur/data/README.md``).
A bundled case is named by its short name (``case14_ieee``), its size alone
(``case14``) or its file name (``pglib_opf_case14_ieee`` or
``pglib_opf_case14_ieee.m``).
"""

from __future__ import annotations

import atexit
import contextlib
import re
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

from aiguilleur.errors import ValidationError

__all__ = ["bundled_case_path", "bundled_cases", "bundled_profile_path"]

_PREFIX = "pglib_opf_"
_SUFFIX = ".m"
_SIZE = re.compile(r"^case(\d+)")


@cache
def _extracted() -> contextlib.ExitStack:
    """Holds files extracted from a zipped install until the interpreter exits."""
    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    return stack


def _size_key(short: str) -> tuple[int, str]:
    m = _SIZE.match(short)
    return (int(m.group(1)) if m else 0, short)


@cache
def _files() -> dict[str, str]:
    """Short name -> file name of every bundled case."""
    out: dict[str, str] = {}
    for entry in files(__name__).joinpath("cases").iterdir():
        nm = entry.name
        if entry.is_file() and nm.startswith(_PREFIX) and nm.endswith(_SUFFIX):
            out[nm[len(_PREFIX) : -len(_SUFFIX)]] = nm
    return dict(sorted(out.items(), key=lambda kv: _size_key(kv[0])))


def bundled_cases() -> tuple[str, ...]:
    """Short names of the bundled cases, smallest grid first.

    Returns
    -------
    tuple of str
        For example ``("case14_ieee", "case118_ieee", "case1888_rte")``.
    """
    return tuple(_files())


def _resolve(name: str) -> str | None:
    key = name.strip().lower()
    key = key.removesuffix(_SUFFIX).removeprefix(_PREFIX)
    available = _files()
    if key in available:
        return available[key]
    # "case14" names the one case whose short name is "case14_<source>".
    matches = [f for short, f in available.items() if short.split("_", 1)[0] == key]
    return matches[0] if len(matches) == 1 else None


def bundled_case_path(name: str) -> Path:
    """The path of a bundled case file.

    Parameters
    ----------
    name
        ``"case14"``, ``"case14_ieee"``, ``"pglib_opf_case14_ieee"`` or
        ``"pglib_opf_case14_ieee.m"`` (case-insensitive).

    Returns
    -------
    pathlib.Path
        The ``.m`` file, readable with :func:`aiguilleur.grid.read_matpower`.

    Raises
    ------
    ValidationError
        When no bundled case has that name; the message lists the available ones.
    """
    filename = _resolve(name)
    if filename is None:
        raise ValidationError(
            f"unknown bundled case {name!r}; available: {', '.join(bundled_cases())}"
        )
    resource = files(__name__).joinpath("cases", filename)
    if isinstance(resource, Path):
        return resource
    # A zipped install has no file on disk: extract it once and keep it.
    return Path(_extracted().enter_context(as_file(resource)))


def bundled_profile_path(name: str) -> Path:
    """The path of a bundled time-series profile or storage table (``profiles/<name>.csv``).

    Parameters
    ----------
    name
        ``"case118_24h"`` (24 hourly steps of load and wind on case118) or
        ``"case118_storage"`` (two storage units for it); ``.csv`` optional.

    Raises
    ------
    ValidationError
        When there is no such file; the message lists the available ones.
    """
    folder = files(__name__).joinpath("profiles")
    avail = sorted(e.name.removesuffix(".csv") for e in folder.iterdir() if e.name.endswith(".csv"))
    key = name.strip().removesuffix(".csv")
    if key not in avail:
        raise ValidationError(f"unknown bundled profile {name!r}; available: {', '.join(avail)}")
    resource = folder.joinpath(f"{key}.csv")
    if isinstance(resource, Path):
        return resource
    return Path(_extracted().enter_context(as_file(resource)))
