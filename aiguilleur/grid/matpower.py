"""Read and write MATPOWER v2 case files as PGLib-OPF uses them.

The reader accepts the subset of MATLAB that MATPOWER case files use: a
``function mpc = NAME`` line, ``mpc.version``, ``mpc.baseMVA`` and numeric
matrices ``mpc.NAME = [ ... ];`` whose rows end with ``;`` or a new line, with
``%`` comments anywhere. Matrices other than ``bus``, ``gen``, ``branch`` and
``gencost`` (``areas`` and the like) are kept verbatim; cell arrays such as
``bus_name`` are skipped. Every defect is a :class:`CaseFormatError` naming the
file, the line and what was expected.

Writing then reading gives back an equal :class:`Network` (floats are written
with their shortest round-trip representation).
"""

from __future__ import annotations

import io
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from aiguilleur._files import atomic_write_bytes, read_input_text
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.grid._checks import check_network, check_path
from aiguilleur.grid.network import BranchTable, BusTable, GenCostTable, GenTable, Network
from aiguilleur.grid.schema import BRANCH_SCHEMA, BUS_SCHEMA, GEN_SCHEMA, Schema

__all__ = ["read_matpower", "read_matpower_string", "write_matpower", "write_matpower_string"]

_ASSIGN = re.compile(r"^\s*mpc\.([A-Za-z]\w*)\s*=\s*(.*)$", re.ASCII)
# A MATLAB real literal as case files write them (ASCII digits only: Python's float()
# would also take "1_000" or non-ASCII digits, which MATLAB rejects).
_NUMBER = re.compile(r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[Ii]nf|NaN|nan)$")
# Integers beyond 2**53 cannot be stored exactly in a MATPOWER (double) matrix.
_MAX_INT = 2**53
_RESERVED = frozenset({"bus", "gen", "branch", "gencost", "version", "baseMVA"})
_TableT = TypeVar("_TableT", BusTable, GenTable, BranchTable)
_FUNCTION = re.compile(r"^\s*function\b")
_FUNCTION_LINE = re.compile(
    r"^\s*function\s+(?:[A-Za-z]\w*\s*=\s*)?([A-Za-z]\w*)\s*(?:\(\s*\))?\s*;?\s*$", re.ASCII
)
_INT_COLS = {
    "bus": {0, 1, 6, 10},
    "gen": {0, 7},
    "branch": {0, 1, 10},
}


@dataclass
class _Matrix:
    name: str
    start_line: int
    rows: list[list[float]]
    row_lines: list[int]
    closed: bool = False


def _strip_comment(line: str) -> str:
    pos = line.find("%")
    return line if pos < 0 else line[:pos]


def _parse_values(text: str, path: str, line_no: int, matrix: str) -> list[float]:
    out: list[float] = []
    for tok in text.replace(",", " ").split():
        if _NUMBER.match(tok) is None:
            raise CaseFormatError(
                f"mpc.{matrix}: {tok[:40]!r} is not a number, expected a real number",
                path,
                line_no,
            )
        out.append(float(tok))
    return out


def _split_lines(text: str) -> list[str]:
    # Only LF (or CRLF) ends a line in MATLAB; str.splitlines() would also split on
    # form feeds, U+2028 and the like, which may sit inside comments.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def read_matpower(path: str | os.PathLike[str]) -> Network:
    """Read a MATPOWER v2 case file (``.m``).

    Parameters
    ----------
    path
        The case file.

    Returns
    -------
    Network
        The case, tables in the file's row order.

    Raises
    ------
    CaseFormatError
        When the file is missing, unreadable or malformed; the message names
        the file, the line and what was expected.
    """
    check_path(path, "read_matpower")
    p = Path(path)
    # bounded: a device (/dev/zero), a folder or a binary file is one line naming it
    text = read_input_text(p, encoding="utf-8-sig")
    return read_matpower_string(text, source=str(p), default_name=p.stem)


def read_matpower_string(
    text: str, source: str = "<string>", default_name: str = "case"
) -> Network:
    """Parse the text of a MATPOWER v2 case file.

    Parameters
    ----------
    text
        The content of the file.
    source
        Name of the file (or other source) used in error messages.
    default_name
        Case name when the text has no ``function`` line.

    Returns
    -------
    Network
        The case, tables in the text's row order.

    Raises
    ------
    CaseFormatError
        When the text is malformed; see :func:`read_matpower`.
    """
    if not isinstance(text, str):
        raise ValidationError(
            f"read_matpower_string: text must be a str, got {type(text).__name__}"
        )
    lines = _split_lines(text)
    header_lines: list[str] = []
    in_header = True
    name: str | None = None
    version: str | None = None
    version_line = 0
    base_mva: float | None = None
    matrices: dict[str, _Matrix] = {}
    current: _Matrix | None = None
    in_cell: tuple[str, int] | None = None

    for i, raw in enumerate(lines):
        ln = i + 1
        if current is not None:
            body = _strip_comment(raw)
            end = body.find("]")
            if end >= 0:
                rest = body[end + 1 :].strip()
                body = body[:end]
            _add_rows(current, body, source, ln)
            if end >= 0:
                if rest not in ("", ";"):
                    raise CaseFormatError(
                        f"unexpected {rest[:40]!r} after the end of mpc.{current.name}, "
                        "expected '];'",
                        source,
                        ln,
                    )
                _close(current, source)
                current = None
            continue
        if in_cell is not None:
            if "}" in _strip_comment(raw):
                in_cell = None
            continue
        stripped = raw.strip()
        if in_header:
            if stripped.startswith("%") or (not stripped and header_lines):
                header_lines.append(raw)
                continue
            if not stripped:
                continue
            in_header = False
        if not stripped or stripped.startswith("%"):
            continue
        if _FUNCTION.match(raw):
            if name is not None:
                raise CaseFormatError("a second 'function' line, expected one", source, ln)
            fm = _FUNCTION_LINE.match(_strip_comment(raw))
            if fm is None:
                raise CaseFormatError(
                    f"malformed function line {stripped[:40]!r}, expected 'function mpc = NAME'",
                    source,
                    ln,
                )
            name = fm.group(1)
            continue
        am = _ASSIGN.match(_strip_comment(raw))
        if am is None:
            raise CaseFormatError(
                f"unexpected statement {stripped[:40]!r}; expected 'mpc.NAME = ...'", source, ln
            )
        field_name, rhs = am.group(1), am.group(2).strip()
        if rhs.startswith("["):
            if field_name in matrices:
                raise CaseFormatError(
                    f"mpc.{field_name} is defined twice (first at line "
                    f"{matrices[field_name].start_line})",
                    source,
                    ln,
                )
            mat = _Matrix(field_name, ln, [], [])
            matrices[field_name] = mat
            body = rhs[1:]
            end = body.find("]")
            if end >= 0:
                rest = body[end + 1 :].strip()
                _add_rows(mat, body[:end], source, ln)
                if rest not in ("", ";"):
                    raise CaseFormatError(
                        f"unexpected {rest[:40]!r} after the end of mpc.{field_name}, "
                        "expected '];'",
                        source,
                        ln,
                    )
                _close(mat, source)
            else:
                _add_rows(mat, body, source, ln)
                current = mat
        elif rhs.startswith("{"):
            if "}" not in rhs:
                in_cell = (field_name, ln)
        elif field_name == "version":
            m = re.match(r"^'([^']*)'\s*;?\s*$", rhs)
            if m is None:
                raise CaseFormatError(
                    f"mpc.version: expected a quoted string such as '2', got {rhs[:40]!r}",
                    source,
                    ln,
                )
            version, version_line = m.group(1), ln
        elif field_name == "baseMVA":
            m = re.match(r"^([^;]+);?\s*$", rhs)
            tok = m.group(1).strip() if m else ""
            base_mva = float(tok) if _NUMBER.match(tok) else math.nan
            if not math.isfinite(base_mva) or base_mva <= 0:
                raise CaseFormatError(
                    f"mpc.baseMVA: expected a positive number, got {rhs[:40]!r}", source, ln
                )
        # other scalar fields are not part of the network model; they are skipped

    n_lines = len(lines)
    if current is not None:
        raise CaseFormatError(
            f"mpc.{current.name} opened at line {current.start_line} is not closed by '];' "
            "(truncated file?)",
            source,
            n_lines,
        )
    if in_cell is not None:
        raise CaseFormatError(
            f"mpc.{in_cell[0]} opened at line {in_cell[1]} is not closed by '}};' "
            "(truncated file?)",
            source,
            n_lines,
        )
    if version is None:
        raise CaseFormatError("missing mpc.version; expected mpc.version = '2';", source)
    if version != "2":
        raise CaseFormatError(
            f"mpc.version is {version!r}; only MATPOWER case format version '2' is supported",
            source,
            version_line,
        )
    if base_mva is None:
        raise CaseFormatError("missing mpc.baseMVA", source)
    for required in ("bus", "gen", "branch"):
        if required not in matrices:
            raise CaseFormatError(f"missing matrix mpc.{required}", source)

    bus = _table(BusTable, BUS_SCHEMA, matrices["bus"], source)
    gen = _table(GenTable, GEN_SCHEMA, matrices["gen"], source)
    branch = _table(BranchTable, BRANCH_SCHEMA, matrices["branch"], source)
    gencost = _gencost(matrices["gencost"], source) if "gencost" in matrices else None
    extras = tuple((nm, _as_array(m)) for nm, m in matrices.items() if nm not in _RESERVED)
    while header_lines and not header_lines[-1].strip():
        header_lines.pop()
    try:
        return Network(
            name=name or default_name,
            base_mva=base_mva,
            bus=bus,
            gen=gen,
            branch=branch,
            gencost=gencost,
            extras=extras,
            header="\n".join(header_lines),
            version=version,
        )
    except ValidationError as e:
        line = None
        if e.component in matrices and e.row is not None:
            mat = matrices[e.component]
            if 0 <= e.row < len(mat.row_lines):
                line = mat.row_lines[e.row]
        raise CaseFormatError(str(e), source, line) from None


def _add_rows(mat: _Matrix, body: str, source: str, ln: int) -> None:
    for chunk in body.split(";"):
        if not chunk.strip():
            continue
        mat.rows.append(_parse_values(chunk, source, ln, mat.name))
        mat.row_lines.append(ln)


def _close(mat: _Matrix, source: str) -> None:
    """Mark ``mat`` complete; every row must have as many values as most rows have."""
    mat.closed = True
    if not mat.rows:
        return
    # Blame the odd row out, not the row that happens to follow it.
    width = Counter(len(r) for r in mat.rows).most_common(1)[0][0]
    for k, row in enumerate(mat.rows):
        if len(row) != width:
            raise CaseFormatError(
                f"mpc.{mat.name} row {k + 1} has {len(row)} values, expected {width} "
                "like the other rows",
                source,
                mat.row_lines[k],
            )
    if mat.name in _RESERVED:
        return  # the component tables report a NaN with its column name
    bad = [k for k, row in enumerate(mat.rows) if any(math.isnan(v) for v in row)]
    if bad:
        k = bad[0]
        raise CaseFormatError(
            f"mpc.{mat.name} row {k + 1}: NaN, expected a number", source, mat.row_lines[k]
        )


def _as_array(mat: _Matrix) -> npt.NDArray[np.float64]:
    if not mat.rows:
        return np.zeros((0, 0))
    return np.array(mat.rows, dtype=np.float64)


def _table(cls: type[_TableT], schema: Schema, mat: _Matrix, source: str) -> _TableT:
    arr = _as_array(mat)
    if not mat.rows:
        if schema.component == "bus":
            raise CaseFormatError(
                "mpc.bus is empty, expected one row per bus", source, mat.start_line
            )
        # A network may have no generator or no branch (the writer writes them so).
        arr = np.zeros((0, len(schema)))
    ncols = arr.shape[1]
    if ncols < schema.required:
        raise CaseFormatError(
            f"mpc.{mat.name} has {ncols} columns, expected at least {schema.required} "
            f"({', '.join(schema.names[: schema.required])})",
            source,
            mat.row_lines[0],
        )
    nan_rows, nan_cols = np.nonzero(np.isnan(arr))
    if nan_rows.size:
        r, c = int(nan_rows[0]), int(nan_cols[0])
        label = schema.names[c] if c < len(schema) else f"column {c + 1}"
        raise CaseFormatError(
            f"mpc.{mat.name} row {r + 1}: {label} is NaN, expected a number",
            source,
            mat.row_lines[r],
        )
    for c in sorted(_INT_COLS[schema.component]):
        if c >= ncols:
            continue
        colv = arr[:, c]
        bad = ~np.isfinite(colv) | (colv != np.round(colv)) | (np.abs(colv) > _MAX_INT)
        if np.any(bad):
            r = int(np.flatnonzero(bad)[0])
            raise CaseFormatError(
                f"mpc.{mat.name} row {r + 1}: {schema.names[c]} = {_fmt(float(colv[r]))}, "
                f"expected an integer of at most {_MAX_INT} in magnitude",
                source,
                mat.row_lines[r],
            )
    # The table classes cast each column to its schema dtype.
    kwargs: dict[str, Any] = {}
    for j, col in enumerate(schema.columns):
        if j < ncols:
            kwargs[col.name] = arr[:, j]
        else:
            kwargs[col.name] = np.full(arr.shape[0], col.default, dtype=np.float64)
    kwargs["extra"] = arr[:, len(schema) :] if ncols > len(schema) else np.zeros((arr.shape[0], 0))
    return cls(**kwargs)


def _gencost(mat: _Matrix, source: str) -> GenCostTable:
    arr = _as_array(mat)
    if not mat.rows:
        arr = np.zeros((0, 4))
    if arr.shape[1] < 4:
        raise CaseFormatError(
            f"mpc.gencost has {arr.shape[1]} columns, expected at least 4 "
            "(model, startup, shutdown, n) and the cost terms",
            source,
            mat.row_lines[0],
        )
    nan_rows = np.flatnonzero(np.any(~np.isfinite(arr), axis=1))
    if nan_rows.size:
        r = int(nan_rows[0])
        raise CaseFormatError(
            f"mpc.gencost row {r + 1}: a value is not a finite number, expected a number",
            source,
            mat.row_lines[r],
        )
    for c, nm in ((0, "model"), (3, "n")):
        colv = arr[:, c]
        bad = (colv != np.round(colv)) | (np.abs(colv) > _MAX_INT)
        if np.any(bad):
            r = int(np.flatnonzero(bad)[0])
            raise CaseFormatError(
                f"mpc.gencost row {r + 1}: {nm} = {_fmt(float(colv[r]))}, expected an integer",
                source,
                mat.row_lines[r],
            )
    return GenCostTable(
        model=arr[:, 0].astype(np.int64),
        startup=arr[:, 1],
        shutdown=arr[:, 2],
        ncost=arr[:, 3].astype(np.int64),
        params=arr[:, 4:],
    )


# -- writer -------------------------------------------------------------------------

_COLUMN_NOTES = {
    "bus": "bus_i\ttype\tPd\tQd\tGs\tBs\tarea\tVm\tVa\tbaseKV\tzone\tVmax\tVmin",
    "gen": "bus\tPg\tQg\tQmax\tQmin\tVg\tmBase\tstatus\tPmax\tPmin",
    "gencost": "2\tstartup\tshutdown\tn\tc(n-1)\t...\tc0",
    "branch": "fbus\ttbus\tr\tx\tb\trateA\trateB\trateC\tratio\tangle\tstatus\tangmin\tangmax",
}
_IDENTIFIER = re.compile(r"^[A-Za-z]\w*$", re.ASCII)


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _check_writable(component: str, arr: npt.NDArray[np.float64], int_cols: Iterable[int]) -> None:
    """Refuse values that a MATPOWER file cannot carry back unchanged."""
    if arr.ndim != 2:
        raise ValidationError(f"mpc.{component}: expected a 2-D matrix, got {arr.ndim}-D")
    nan_rows = np.flatnonzero(np.any(np.isnan(arr), axis=1))
    if nan_rows.size:
        r = int(nan_rows[0])
        raise ValidationError(
            f"{component} row {r + 1}: NaN cannot be written, expected a number", component, r
        )
    for c in int_cols:
        if c < arr.shape[1]:
            big = np.flatnonzero(np.abs(arr[:, c]) > _MAX_INT)
            if big.size:
                r = int(big[0])
                raise ValidationError(
                    f"{component} row {r + 1}: integer in column {c + 1} exceeds {_MAX_INT} in "
                    "magnitude and cannot be written exactly",
                    component,
                    r,
                )


def _format_rows(arr: npt.NDArray[np.float64], int_cols: Iterable[int]) -> list[str]:
    ints = set(int_cols)
    cols: list[list[str]] = []
    for j in range(arr.shape[1]):
        colv = arr[:, j]
        if j in ints:
            cols.append([str(int(v)) for v in colv.tolist()])
        else:
            cols.append([_fmt(v) for v in colv.tolist()])
    return ["\t" + "\t".join(vals) + ";" for vals in zip(*cols, strict=True)] if cols else []


def _header_lines(header: str) -> list[str]:
    # Every header line must stay a comment, or the file would not parse.
    out = []
    for line in _split_lines(header):
        if line.strip() and not line.lstrip().startswith("%"):
            line = "% " + line
        out.append(line)
    return out


def write_matpower_string(net: Network) -> str:
    """The MATPOWER v2 text of ``net``.

    Parameters
    ----------
    net
        The network to write.

    Returns
    -------
    str
        The file content; :func:`read_matpower_string` gives back an equal network.

    Raises
    ------
    ValidationError
        When ``net`` holds something a MATPOWER file cannot carry: a NaN in an
        extra column or matrix, an integer beyond 2**53, or an extra matrix whose
        name is not a MATLAB identifier or clashes with a standard one.

    Notes
    -----
    A case name that is not a MATLAB identifier is written with its other
    characters replaced by ``_``; header lines that are not comments are
    written as comments.
    """
    check_network(net, "write_matpower_string")
    sections: list[tuple[str, npt.NDArray[np.float64], tuple[int, ...]]] = [
        ("bus", net.bus.matrix(), tuple(sorted(_INT_COLS["bus"]))),
        ("gen", net.gen.matrix(), tuple(sorted(_INT_COLS["gen"]))),
    ]
    if net.gencost is not None:
        gc = net.gencost
        m = np.column_stack([gc.model, gc.startup, gc.shutdown, gc.ncost, gc.params])
        sections.append(("gencost", m.astype(np.float64), (0, 3)))
    sections.append(("branch", net.branch.matrix(), tuple(sorted(_INT_COLS["branch"]))))
    seen: set[str] = set()
    for nm, arr in net.extras:
        if _IDENTIFIER.match(nm) is None or nm in _RESERVED or nm in seen:
            raise ValidationError(
                f"extra matrix name {nm!r}: expected a unique MATLAB identifier other than "
                f"{', '.join(sorted(_RESERVED))}"
            )
        seen.add(nm)
        sections.append((nm, arr, ()))
    for nm, arr, ints in sections:
        _check_writable(nm, arr, ints)

    name = net.name
    if _IDENTIFIER.match(name) is None:
        # MATLAB function names are identifiers; keep what can be kept.
        name = re.sub(r"\W", "_", name, flags=re.ASCII)
        name = name if name[:1].isascii() and name[:1].isalpha() else f"case_{name}"
    out = io.StringIO()
    for line in _header_lines(net.header):
        out.write(line + "\n")
    out.write(f"function mpc = {name}\n")
    out.write(f"mpc.version = '{net.version}';\n")
    out.write(f"mpc.baseMVA = {_fmt(net.base_mva)};\n")
    for nm, arr, ints in sections:
        out.write(f"\n%% {nm} data\n")
        if nm in _COLUMN_NOTES:
            out.write(f"%\t{_COLUMN_NOTES[nm]}\n")
        out.write(f"mpc.{nm} = [\n")
        for row in _format_rows(arr, ints):
            out.write(row + "\n")
        out.write("];\n")
    return out.getvalue()


def write_matpower(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net`` as a MATPOWER v2 case file (UTF-8).

    The file is written to a temporary name beside ``path`` and renamed into
    place, so a failure never leaves a half-written case behind.

    Parameters
    ----------
    net
        The network to write.
    path
        Destination file; replaced if it exists.

    Raises
    ------
    ValidationError
        See :func:`write_matpower_string`.
    CaseFormatError
        When the file cannot be written.
    """
    check_network(net, "write_matpower")
    check_path(path, "write_matpower")
    p = Path(path)
    try:
        data = write_matpower_string(net).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValidationError(
            f"the case name or header holds characters UTF-8 cannot encode ({e.reason})"
        ) from None
    try:
        atomic_write_bytes(p, data)
    except OSError as e:
        raise CaseFormatError(f"cannot write: {e.strerror}", str(p)) from None
