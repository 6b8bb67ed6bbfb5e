"""Reader of NASA's C-MAPSS turbofan degradation files.

The files are whitespace-separated text without a header, one reading per line,
26 columns: unit, cycle, three operational settings and 21 sensors (see the
NASA README). ``RUL_FDxxx.txt`` holds one integer per line: the true remaining
useful life after the last cycle of each test unit, in the order of the units.

Every format error names the file and the 1-based line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.health.telemetry import Telemetry

__all__ = [
    "CMAPSS_SENSORS",
    "CMAPSS_SETTINGS",
    "read_cmapss",
    "read_rul",
]

CMAPSS_SETTINGS: tuple[str, ...] = ("setting_1", "setting_2", "setting_3")
CMAPSS_SENSORS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 22))
_N_COLUMNS = 2 + len(CMAPSS_SETTINGS) + len(CMAPSS_SENSORS)


def _lines(path: str | Path) -> list[str]:
    """The file's lines: bounded read; folders, devices and binary files refused (one line)."""
    from aiguilleur._files import read_input_text

    if not isinstance(path, str | Path):
        raise ValidationError(f"path: expected a file name, got {type(path).__name__}")
    return read_input_text(path, encoding="ascii").splitlines()


def read_cmapss(path: str | Path) -> Telemetry:
    """Read a C-MAPSS ``train_FDxxx.txt`` or ``test_FDxxx.txt`` file.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    Telemetry
        Settings named ``setting_1`` to ``setting_3``, sensors ``s1`` to ``s21``.

    Raises
    ------
    CaseFormatError
        A line without 26 numbers, a non-integer unit or cycle, or a unit whose
        cycles are repeated, out of order or interrupted by another unit (the
        message names the file and the line).
    """
    lines = _lines(path)
    p = Path(path)
    rows: list[list[float]] = []
    line_no: list[int] = []
    for i, text in enumerate(lines, start=1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) != _N_COLUMNS:
            raise CaseFormatError(
                f"expected {_N_COLUMNS} columns (unit, cycle, 3 settings, 21 sensors), "
                f"got {len(fields)}",
                str(p),
                i,
            )
        try:
            values = [float(f) for f in fields]
        except ValueError:
            bad = next(f for f in fields if not _is_float(f))
            raise CaseFormatError(f"not a number: {_shown(bad)}", str(p), i) from None
        for j, what in ((0, "unit"), (1, "cycle")):
            if not np.isfinite(values[j]) or values[j] != round(values[j]):
                raise CaseFormatError(
                    f"{what}: expected an integer, got {_shown(fields[j])}", str(p), i
                )
        rows.append(values)
        line_no.append(i)
    if not rows:
        raise CaseFormatError("no readings in the file", str(p))
    a = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        r = int(np.argwhere(~np.isfinite(a))[0][0])
        raise CaseFormatError("not a finite number", str(p), line_no[r])
    try:
        return Telemetry(
            unit=a[:, 0].astype(np.int64),
            cycle=a[:, 1].astype(np.int64),
            settings=a[:, 2:5],
            sensors=a[:, 5:],
            setting_names=CMAPSS_SETTINGS,
            sensor_names=CMAPSS_SENSORS,
        )
    except ValidationError as e:
        if e.row is None:
            raise CaseFormatError(str(e), str(p)) from None
        msg = str(e).replace(f" at row {e.row}", "")
        raise CaseFormatError(msg, str(p), line_no[e.row]) from None


def _shown(token: str) -> str:
    text = repr(token)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_rul(path: str | Path, n_units: int | None = None) -> npt.NDArray[np.int64]:
    """Read a C-MAPSS ``RUL_FDxxx.txt`` file: the true RUL of each test unit, in order.

    Parameters
    ----------
    path
        The file.
    n_units
        The number of test units; when given, a different number of lines is an error.

    Raises
    ------
    CaseFormatError
        A line that is not one non-negative integer, or the wrong number of lines.
    """
    if n_units is not None and (
        isinstance(n_units, bool) or not isinstance(n_units, int | np.integer) or n_units < 0
    ):
        raise ValidationError(f"n_units: expected a non-negative integer, got {n_units!r}")
    lines = _lines(path)
    p = Path(path)
    out: list[int] = []
    for i, text in enumerate(lines, start=1):
        fields = text.split()
        if not fields:
            continue
        if len(fields) != 1 or not (fields[0].isascii() and fields[0].isdigit()):
            shown = text.strip()
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise CaseFormatError(
                f"expected one non-negative integer (cycles), got {shown!r}", str(p), i
            )
        if len(fields[0]) > 9:  # a billion cycles is not a remaining life; int64 stays safe
            raise CaseFormatError(f"RUL {_shown(fields[0])}: too large", str(p), i)
        out.append(int(fields[0]))
    if n_units is not None and len(out) != n_units:
        raise CaseFormatError(
            f"expected {n_units} values (one per test unit), got {len(out)}", str(p)
        )
    return np.asarray(out, dtype=np.int64)
