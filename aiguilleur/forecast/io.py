"""Hourly series in and out: reading, checking the time axis, reporting gaps.

A :class:`HourlySeries` holds one target (load in MW, or normalised power) and
optionally one temperature on a regular hourly axis. The axis is a clock
without daylight-saving jumps: naive timestamps are taken as they are (a
fixed-offset local clock, as GEFCom2014-E is), timestamps with UTC offsets are
converted to the fixed offset of the first row. Each stamp is the *start* of
its hour.

What the reader does with bad input:

* a missing column: :class:`~aiguilleur.errors.CaseFormatError` naming it;
* an unreadable value or timestamp, a timestamp not on the hour, a duplicated
  or an out-of-order timestamp: :class:`~aiguilleur.errors.CaseFormatError`
  naming the file line; a duplicate or a one-hour hole at a spring/autumn
  daylight-saving change says so and asks for UTC offsets;
* missing hours and empty cells: gaps. They stay missing (``NaN``) and are
  listed in :attr:`HourlySeries.gaps`; they are filled by linear interpolation
  in time only when asked (``impute=True``). The time axis itself is never
  shifted.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import CaseFormatError, ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Gap",
    "HourlySeries",
    "read_series",
    "sample_series",
    "sample_series_path",
    "series_from_frame",
]

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]

_HOUR = np.timedelta64(1, "h")


def _expect(
    value: object, kind: type | tuple[type, ...], name: str, *, optional: bool = False
) -> None:
    """Raise :class:`ValidationError` when ``value`` is not a ``kind`` (public input check)."""
    if value is None and optional:
        return
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValidationError(f"{name}: expected {names}, got {type(value).__name__}")


def _as_unit(when: object, unit: str) -> np.datetime64:
    """``when`` (a string, date or datetime64) as a ``datetime64`` of ``unit``."""
    out: Any = np.array(when, dtype=f"datetime64[{unit}]")[()]
    return out  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Gap:
    """A run of missing hours in one column.

    Attributes
    ----------
    column
        The column concerned (the target's or the temperature's name).
    start
        The first missing hour (start of the hour).
    hours
        How many consecutive hours are missing.
    """

    column: str
    start: np.datetime64
    hours: int

    def __str__(self) -> str:
        return f"{self.column}: {self.hours} h missing from {self.start}"


@dataclass(frozen=True)
class HourlySeries:
    """A target and a temperature on one regular hourly axis.

    Attributes
    ----------
    time
        Start of each hour, ``datetime64[h]``, strictly increasing by one hour.
    target
        The series to forecast (``NaN`` where missing).
    temperature
        The temperature in the same hours (``NaN`` where missing), or ``None``.
    target_name, temperature_name
        Column names, used in messages and saved models.
    gaps
        Runs of missing values inside the span of the data, per column.
    imputed_hours
        How many values were filled by interpolation (0 unless asked).
    """

    time: TimeArray
    target: FloatArray
    temperature: FloatArray | None = None
    target_name: str = "load"
    temperature_name: str | None = None
    gaps: tuple[Gap, ...] = field(default=())
    imputed_hours: int = 0

    def __post_init__(self) -> None:
        try:
            t = np.asarray(self.time).astype("datetime64[h]")
        except (TypeError, ValueError, OverflowError):
            raise ValidationError(
                "time: expected hourly timestamps (datetime64 or ISO strings)", component="series"
            ) from None
        object.__setattr__(self, "time", t)
        try:
            y = np.asarray(self.target, dtype=np.float64)
            if self.temperature is not None:
                np.asarray(self.temperature, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise ValidationError(
                "target and temperature: expected numbers (NaN where missing)", component="series"
            ) from None
        if not isinstance(self.target_name, str) or not (
            self.temperature_name is None or isinstance(self.temperature_name, str)
        ):
            raise ValidationError("target_name, temperature_name: expected column names")
        object.__setattr__(self, "target", y)
        if t.ndim != 1 or y.ndim != 1:
            raise ValidationError("time and target: expected 1-D arrays", component="series")
        if y.shape != t.shape:
            raise ValidationError(
                f"{self.target_name}: {y.shape[0]} values for {t.shape[0]} timestamps",
                component="series",
            )
        if self.temperature is not None:
            temp = np.asarray(self.temperature, dtype=np.float64)
            object.__setattr__(self, "temperature", temp)
            if temp.shape != t.shape:
                raise ValidationError(
                    f"{self.temperature_name}: {temp.shape[0]} values for {t.shape[0]} timestamps",
                    component="series",
                )
        if t.size > 1:
            step = np.diff(t)
            bad = np.flatnonzero(step != _HOUR)
            if bad.size:
                k = int(bad[0]) + 1
                raise ValidationError(
                    f"time: row {k} ({t[k]}) is not one hour after the previous row "
                    f"({t[k - 1]}); an HourlySeries needs a regular hourly axis",
                    component="series",
                    row=k,
                )

    def __len__(self) -> int:
        return int(self.time.size)

    @property
    def start(self) -> np.datetime64:
        """The first hour."""
        return self.time[0]  # type: ignore[no-any-return]

    @property
    def end(self) -> np.datetime64:
        """The hour after the last one."""
        return self.time[-1] + _HOUR  # type: ignore[no-any-return]

    def index_of(self, when: np.datetime64 | str) -> int:
        """Position of the hour starting at ``when`` (may lie outside the series)."""
        w = _as_unit(when, "h")
        return int((w - self.time[0]) // _HOUR)

    def slice_time(self, start: np.datetime64 | str, end: np.datetime64 | str) -> HourlySeries:
        """The hours in ``[start, end)``, gaps recomputed."""
        i0 = max(self.index_of(start), 0)
        i1 = min(self.index_of(end), len(self))
        if i1 <= i0:
            raise ValidationError(f"no hour of the series lies in [{start}, {end})")
        temp = None if self.temperature is None else self.temperature[i0:i1]
        out = replace(
            self,
            time=self.time[i0:i1],
            target=self.target[i0:i1],
            temperature=temp,
        )
        return replace(out, gaps=_find_gaps(out))

    def to_frame(self) -> pd.DataFrame:
        """The series as a table: ``timestamp``, the target, the temperature."""
        import pandas as pd

        cols: dict[str, object] = {"timestamp": self.time.astype("datetime64[ns]")}
        cols[self.target_name] = self.target
        if self.temperature is not None:
            cols[self.temperature_name or "temperature"] = self.temperature
        return pd.DataFrame(cols)


def _runs(missing: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, length) of each run of True."""
    if not missing.any():
        return []
    m = np.concatenate(([False], missing, [False])).astype(np.int8)
    d = np.diff(m)
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return [(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def _find_gaps(s: HourlySeries) -> tuple[Gap, ...]:
    out: list[Gap] = []
    cols: list[tuple[str, FloatArray]] = [(s.target_name, s.target)]
    if s.temperature is not None:
        cols.append((s.temperature_name or "temperature", s.temperature))
    for name, v in cols:
        out.extend(Gap(name, s.time[a], n) for a, n in _runs(~np.isfinite(v)))
    return tuple(out)


def _interpolate(v: FloatArray) -> tuple[FloatArray, int]:
    ok = np.isfinite(v)
    n = int((~ok).sum())
    if n == 0 or not ok.any():
        return v, 0
    x = np.arange(v.size, dtype=np.float64)
    lo, hi = int(np.argmax(ok)), int(v.size - 1 - np.argmax(ok[::-1]))
    inside = ~ok & (x >= lo) & (x <= hi)
    out = v.copy()
    out[inside] = np.interp(x[inside], x[ok], v[ok])
    return out, int(inside.sum())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: object, limit: int = 40) -> str:
    """``repr`` of an offending token, cut short: a message never echoes a whole file."""
    return _cut(repr(value), limit)


def _dst_hint(t: np.datetime64) -> str:
    """A note when ``t`` falls where a daylight-saving clock change could."""
    import pandas as pd

    ts = pd.Timestamp(t)
    if ts.month in (3, 4, 10, 11) and ts.dayofweek == 6 and 0 <= ts.hour <= 3:
        return (
            " (this looks like a daylight-saving clock change: give timestamps with "
            "UTC offsets, e.g. 2014-11-02T01:00-04:00, or in UTC)"
        )
    return ""


def series_from_frame(
    frame: pd.DataFrame,
    target: str = "load",
    temperature: str | None = None,
    *,
    time_column: str | None = None,
    impute: bool = False,
    path: str | None = None,
    first_line: int = 2,
) -> HourlySeries:
    """Build an :class:`HourlySeries` from a table, checking its time axis.

    Parameters
    ----------
    frame
        One row per hour. The time is either a ``timestamp`` column (or
        ``time_column``) giving the start of each hour, naive or with UTC
        offsets, or GEFCom's pair ``Date`` + ``Hour`` with the hour *ending*
        1..24.
    target, temperature
        Column names of the target and of the temperature (``None``: none).
    time_column
        Name of the timestamp column when it is not ``timestamp``, ``time``,
        ``datetime`` or ``date`` (case-insensitive).
    impute
        Fill gaps inside the data by linear interpolation in time (reported in
        :attr:`HourlySeries.imputed_hours`). Off by default: gaps stay missing.
    path, first_line
        The file and the line of the first row, for messages.

    Rows before the first and after the last value of the target are dropped.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ValidationError(f"frame: expected a pandas DataFrame, got {type(frame).__name__}")
    for arg, v in (("target", target), ("temperature", temperature), ("time_column", time_column)):
        if v is not None and not isinstance(v, str):
            raise ValidationError(f"{arg}: expected a column name, got {type(v).__name__}")
    if not isinstance(target, str):
        raise ValidationError("target: expected a column name, got None")
    where = path or "table"
    cols = {str(c): c for c in frame.columns}
    lower = {k.lower(): k for k in cols}
    for need in (target, temperature):
        if need is not None and need not in cols:
            have = _cut(", ".join(map(str, frame.columns)), 200)
            raise CaseFormatError(f"no column {_shown(need)} (columns: {have})", path)

    def line(row: int) -> int:
        return first_line + row

    if len(frame) == 0:
        raise CaseFormatError("no data rows", path)

    stamps: pd.Series
    name: str | None
    if time_column is not None:
        if time_column not in cols:
            raise CaseFormatError(f"no column {time_column!r} for the time", path)
        name = time_column
    elif "date" in lower and "hour" in lower:
        name = None
    else:
        found = [lower[k] for k in ("timestamp", "datetime", "time", "date") if k in lower]
        if not found:
            raise CaseFormatError(
                "no time column: expected 'timestamp' (start of each hour) or 'Date' + 'Hour' "
                "(hour ending 1..24)",
                path,
            )
        name = found[0]

    if name is None:  # GEFCom: Date + Hour ending 1..24
        date_raw = frame[cols[lower["date"]]]
        hour = pd.to_numeric(frame[cols[lower["hour"]]], errors="coerce")
        bad = hour.isna() | (hour < 1) | (hour > 24) | (hour != hour.round())
        if bad.any():
            r = int(np.flatnonzero(bad.to_numpy())[0])
            got = _shown(frame.iloc[r][cols[lower["hour"]]])
            raise CaseFormatError(
                f"Hour: expected an hour ending 1..24, got {got}",
                path,
                line(r),
            )
        dates = pd.to_datetime(date_raw, errors="coerce", format="mixed")
        if dates.isna().any():
            r = int(np.flatnonzero(dates.isna().to_numpy())[0])
            raise CaseFormatError(f"Date: cannot read {_shown(date_raw.iloc[r])}", path, line(r))
        stamps = dates + pd.to_timedelta(hour - 1, unit="h")
    else:
        raw = frame[cols[name]]
        parsed = pd.to_datetime(raw.astype(str), errors="coerce", format="mixed", utc=True)
        if parsed.isna().any():
            r = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise CaseFormatError(
                f"{name}: cannot read timestamp {_shown(raw.iloc[r])}", path, line(r)
            )
        has_offset = raw.astype(str).str.contains(r"(?:[+-]\d\d:?\d\d|Z)$", regex=True)
        if has_offset.any() and not has_offset.all():
            r = int(np.flatnonzero(~has_offset.to_numpy())[0])
            raise CaseFormatError(
                f"{name}: {_shown(raw.iloc[r])} has no UTC offset while other rows do",
                path,
                line(r),
            )
        if has_offset.all():
            first = pd.Timestamp(str(raw.iloc[0]))
            offset = first.utcoffset() or pd.Timedelta(0)
            stamps = parsed.dt.tz_localize(None) + offset
        else:
            stamps = parsed.dt.tz_localize(None)

    t = stamps.to_numpy().astype("datetime64[m]")
    off_hour = t != t.astype("datetime64[h]")
    if off_hour.any():
        r = int(np.flatnonzero(off_hour)[0])
        raise CaseFormatError(
            f"timestamp {t[r]} is not on the hour (hourly data expected)", path, line(r)
        )
    th = t.astype("datetime64[h]")
    if th.size == 0:
        raise CaseFormatError("no data rows", path)
    step = np.diff(th).astype(np.int64)
    dup = np.flatnonzero(step == 0)
    back = np.flatnonzero(step < 0)
    if dup.size and (not back.size or dup[0] < back[0]):
        r = int(dup[0]) + 1
        raise CaseFormatError(
            f"duplicated timestamp {th[r]} (also on line {line(r - 1)}){_dst_hint(th[r])}",
            path,
            line(r),
        )
    if back.size:
        r = int(back[0]) + 1
        raise CaseFormatError(
            f"timestamps out of order: {th[r]} comes after {th[r - 1]}; sort the file by time",
            path,
            line(r),
        )
    hole = np.flatnonzero(step == 2)
    for k in hole:
        hint = _dst_hint(th[int(k)] + _HOUR)
        if hint:
            raise CaseFormatError(
                f"one hour missing at {th[int(k)] + _HOUR}{hint}", path, line(int(k) + 1)
            )

    def numbers(col: str) -> FloatArray:
        raw = frame[cols[col]]
        v = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(v) & raw.notna().to_numpy() & (raw.astype(str).str.strip() != "").to_numpy()
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise CaseFormatError(
                f"{col}: cannot read {_shown(raw.iloc[r])} as a number", path, line(r)
            )
        if np.isinf(v).any():
            r = int(np.flatnonzero(np.isinf(v))[0])
            raise CaseFormatError(f"{col}: infinite value", path, line(r))
        return v

    y = numbers(target)
    temp = numbers(temperature) if temperature is not None else None
    ok = np.flatnonzero(np.isfinite(y))
    if ok.size == 0:
        raise CaseFormatError(f"{target}: no value in {where}", path)
    i0, i1 = int(ok[0]), int(ok[-1]) + 1
    th, y = th[i0:i1], y[i0:i1]
    temp = temp[i0:i1] if temp is not None else None

    # Regular axis: missing hours become NaN rows, never a shift of the others.
    n = int((th[-1] - th[0]) // _HOUR) + 1
    pos = ((th - th[0]) // _HOUR).astype(np.int64)
    time = th[0] + np.arange(n) * _HOUR
    y_full = np.full(n, np.nan)
    y_full[pos] = y
    t_full: FloatArray | None = None
    if temp is not None:
        t_full = np.full(n, np.nan)
        t_full[pos] = temp
    s = HourlySeries(
        time=time,
        target=y_full,
        temperature=t_full,
        target_name=target,
        temperature_name=temperature,
    )
    s = replace(s, gaps=_find_gaps(s))
    if impute and s.gaps:
        y_i, n_y = _interpolate(s.target)
        n_t = 0
        t_i = s.temperature
        if t_i is not None:
            t_i, n_t = _interpolate(t_i)
        s = replace(s, target=y_i, temperature=t_i, imputed_hours=n_y + n_t)
        s = replace(s, gaps=_find_gaps(s))
    return s


def read_series(
    path: str | Path,
    target: str = "load",
    temperature: str | None = None,
    *,
    time_column: str | None = None,
    impute: bool = False,
) -> HourlySeries:
    """Read an hourly CSV file (see :func:`series_from_frame` for the columns).

    Raises :class:`~aiguilleur.errors.CaseFormatError` naming the file and line
    of the first problem.
    """
    import io

    import pandas as pd

    from aiguilleur._files import read_input_text

    if not isinstance(path, str | Path):
        raise ValidationError(f"path: expected a file name, got {type(path).__name__}")
    p = Path(path)
    text = read_input_text(p, encoding="utf-8-sig")  # bounded; folders, devices, binary refused
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise CaseFormatError(
            "empty file (a header line and hourly rows expected)", str(p)
        ) from None
    except (pd.errors.ParserError, ValueError, OverflowError) as e:
        msg = _cut(" ".join(str(e).split()), 160)
        raise CaseFormatError(f"not a readable CSV file ({msg})", str(p)) from None
    return series_from_frame(
        frame,
        target,
        temperature,
        time_column=time_column,
        impute=impute,
        path=str(p),
        first_line=2,
    )


_SAMPLE = "gefcom2014e_sample.csv"


def sample_series_path() -> Path:
    """Path of the bundled sample (GEFCom2014-E load and temperature, 2013-06 to 2014-02).

    See ``aiguilleur/data/load/README.md`` for its source and licence.
    """
    from importlib.resources import files

    entry = files("aiguilleur.data").joinpath("load", _SAMPLE)
    p = Path(str(entry))
    if not p.is_file():
        raise ValidationError(f"the bundled sample {_SAMPLE} is missing from this installation")
    return p


def sample_series(impute: bool = False) -> HourlySeries:
    """The bundled sample series: target ``load`` (MW), temperature ``T`` (degrees F)."""
    return read_series(sample_series_path(), "load", "T", impute=impute)
