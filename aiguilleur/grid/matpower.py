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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.grid.network import BranchTable, BusTable, GenCostTable, GenTable, Network
from aiguilleur.grid.schema import BRANCH_SCHEMA, BUS_SCHEMA, GEN_SCHEMA, Schema

__all__ = ["read_matpower", "read_matpower_string", "write_matpower", "write_matpower_string"]

_ASSIGN = re.compile(r"^\s*mpc\.(\w+)\s*=\s*(.*)$")
_FUNCTION = re.compile(r"^\s*function\s+(?:\w+\s*=\s*)?(\w+)")
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
        try:
            out.append(float(tok))
        except ValueError:
            raise CaseFormatError(
                f"mpc.{matrix}: {tok!r} is not a number", path, line_no
            ) from None
    return out


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
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise CaseFormatError("no such file", str(p)) from None
    except IsADirectoryError:
        raise CaseFormatError("is a directory, expected a MATPOWER .m file", str(p)) from None
    except UnicodeDecodeError as e:
        raise CaseFormatError(f"not a text file ({e.reason} at byte {e.start})", str(p)) from None
    except OSError as e:
        raise CaseFormatError(f"cannot read: {e.strerror}", str(p)) from None
    return read_matpower_string(text, source=str(p), default_name=p.stem)


def read_matpower_string(text: str, source: str = "<string>", default_name: str = "case") -> Network:
    """Parse the text of a MATPOWER v2 case file; see :func:`read_matpower`."""
    lines = text.splitlines()
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
                current.closed = True
                if rest not in ("", ";"):
                    raise CaseFormatError(
                        f"unexpected {rest!r} after the end of mpc.{current.name}", source, ln
                    )
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
        fm = _FUNCTION.match(raw)
        if fm:
            if name is not None:
                raise CaseFormatError("a second 'function' line", source, ln)
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
                raise CaseFormatError(f"mpc.{field_name} is defined twice", source, ln)
            mat = _Matrix(field_name, ln, [], [])
            matrices[field_name] = mat
            body = rhs[1:]
            end = body.find("]")
            if end >= 0:
                rest = body[end + 1 :].strip()
                _add_rows(mat, body[:end], source, ln)
                mat.closed = True
                if rest not in ("", ";"):
                    raise CaseFormatError(
                        f"unexpected {rest!r} after the end of mpc.{field_name}", source, ln
                    )
            else:
                _add_rows(mat, body, source, ln)
                current = mat
        elif rhs.startswith("{"):
            if "}" not in rhs:
                in_cell = (field_name, ln)
        elif field_name == "version":
            m = re.match(r"^'([^']*)'\s*;?\s*$", rhs)
            if m is None:
                raise CaseFormatError(f"mpc.version: expected a quoted string, got {rhs!r}", source, ln)
            version, version_line = m.group(1), ln
        elif field_name == "baseMVA":
            m = re.match(r"^([^;]+);?\s*$", rhs)
            try:
                base_mva = float(m.group(1)) if m else math.nan
            except ValueError:
                base_mva = math.nan
            if not math.isfinite(base_mva) or base_mva <= 0:
                raise CaseFormatError(f"mpc.baseMVA: expected a positive number, got {rhs!r}", source, ln)
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
            f"mpc.{in_cell[0]} opened at line {in_cell[1]} is not closed by '}};' (truncated file?)",
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
    extras = tuple(
        (nm, _as_array(m)) for nm, m in matrices.items() if nm not in ("bus", "gen", "branch", "gencost")
    )
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
        vals = _parse_values(chunk, source, ln, mat.name)
        if mat.rows and len(vals) != len(mat.rows[0]):
            raise CaseFormatError(
                f"mpc.{mat.name} row {len(mat.rows) + 1} has {len(vals)} values, expected "
                f"{len(mat.rows[0])} like the rows above it",
                source,
                ln,
            )
        mat.rows.append(vals)
        mat.row_lines.append(ln)


def _as_array(mat: _Matrix) -> npt.NDArray[np.float64]:
    if not mat.rows:
        return np.zeros((0, 0))
    return np.array(mat.rows, dtype=np.float64)


def _table(cls: type, schema: Schema, mat: _Matrix, source: str) -> object:
    arr = _as_array(mat)
    ncols = arr.shape[1] if arr.size else 0
    if not mat.rows:
        raise CaseFormatError(f"mpc.{mat.name} is empty", source, mat.start_line)
    if ncols < schema.required:
        raise CaseFormatError(
            f"mpc.{mat.name} has {ncols} columns, expected at least {schema.required} "
            f"({', '.join(schema.names[:schema.required])})",
            source,
            mat.row_lines[0],
        )
    nan_rows, nan_cols = np.nonzero(np.isnan(arr))
    if nan_rows.size:
        r, c = int(nan_rows[0]), int(nan_cols[0])
        col = schema.names[c] if c < len(schema) else f"column {c + 1}"
        raise CaseFormatError(
            f"mpc.{mat.name} row {r + 1}: {col} is NaN, expected a number", source, mat.row_lines[r]
        )
    int_cols = _INT_COLS[schema.component]
    for c in sorted(int_cols):
        if c >= ncols:
            continue
        colv = arr[:, c]
        bad = ~np.isfinite(colv) | (colv != np.round(colv)) | (np.abs(colv) > 2**53)
        if np.any(bad):
            r = int(np.flatnonzero(bad)[0])
            raise CaseFormatError(
                f"mpc.{mat.name} row {r + 1}: {schema.names[c]} = {colv[r]!r}, expected an integer",
                source,
                mat.row_lines[r],
            )
    kwargs: dict[str, object] = {}
    for j, col in enumerate(schema.columns):
        if j < ncols:
            kwargs[col.name] = arr[:, j]
        else:
            kwargs[col.name] = np.full(arr.shape[0], col.default)
    kwargs["extra"] = arr[:, len(schema) :] if ncols > len(schema) else np.zeros((arr.shape[0], 0))
    return cls(**kwargs)


def _gencost(mat: _Matrix, source: str) -> GenCostTable:
    arr = _as_array(mat)
    if not mat.rows:
        raise CaseFormatError("mpc.gencost is empty", source, mat.start_line)
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
            f"mpc.gencost row {r + 1}: a value is not a finite number", source, mat.row_lines[r]
        )
    for c, nm in ((0, "model"), (3, "n")):
        bad = arr[:, c] != np.round(arr[:, c])
        if np.any(bad):
            r = int(np.flatnonzero(bad)[0])
            raise CaseFormatError(
                f"mpc.gencost row {r + 1}: {nm} = {arr[r, c]!r}, expected an integer",
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


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _format_rows(arr: npt.NDArray[np.float64], int_cols: Iterable[int]) -> list[str]:
    ints = set(int_cols)
    cols: list[list[str]] = []
    for j in range(arr.shape[1]):
        colv = arr[:, j]
        if j in ints:
            cols.append([str(int(v)) for v in colv])
        else:
            cols.append([_fmt(v) for v in colv.tolist()])
    return ["\t" + "\t".join(vals) + ";" for vals in zip(*cols, strict=True)] if cols else []


def write_matpower_string(net: Network) -> str:
    """The MATPOWER v2 text of ``net``; see :func:`write_matpower`."""
    out = io.StringIO()
    if net.header:
        out.write(net.header + "\n")
    out.write(f"function mpc = {net.name}\n")
    out.write(f"mpc.version = '{net.version}';\n")
    out.write(f"mpc.baseMVA = {_fmt(net.base_mva)};\n")
    sections: list[tuple[str, str, npt.NDArray[np.float64], Iterable[int]]] = [
        ("bus", "bus_i\ttype\tPd\tQd\tGs\tBs\tarea\tVm\tVa\tbaseKV\tzone\tVmax\tVmin", net.bus.matrix(), _INT_COLS["bus"]),
        ("gen", "bus\tPg\tQg\tQmax\tQmin\tVg\tmBase\tstatus\tPmax\tPmin", net.gen.matrix(), _INT_COLS["gen"]),
    ]
    if net.gencost is not None:
        gc = net.gencost
        m = np.column_stack([gc.model, gc.startup, gc.shutdown, gc.ncost, gc.params]).astype(np.float64)
        sections.append(("gencost", "2\tstartup\tshutdown\tn\tc(n-1)\t...\tc0", m, (0, 3)))
    sections.append(
        (
            "branch",
            "fbus\ttbus\tr\tx\tb\trateA\trateB\trateC\tratio\tangle\tstatus\tangmin\tangmax",
            net.branch.matrix(),
            _INT_COLS["branch"],
        )
    )
    for nm, arr in net.extras:
        sections.append((nm, "", arr, ()))
    for nm, cols, arr, ints in sections:
        out.write(f"\n%% {nm} data\n")
        if cols:
            out.write(f"%\t{cols}\n")
        out.write(f"mpc.{nm} = [\n")
        for row in _format_rows(arr, ints):
            out.write(row + "\n")
        out.write("];\n")
    return out.getvalue()


def write_matpower(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net`` as a MATPOWER v2 case file.

    The file is written to a temporary name beside ``path`` and renamed into
    place, so a failure never leaves a half-written case behind.
    """
    p = Path(path)
    text = write_matpower_string(net)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CaseFormatError(f"cannot write: {e.strerror}", str(p)) from None
