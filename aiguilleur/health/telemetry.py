"""Asset telemetry: one frozen value holding the readings of a fleet, unit by unit.

A :class:`Telemetry` holds, for every reading, the asset (``unit``), its time
index (``cycle``, an integer that increases strictly within a unit), the
operating settings under which it was taken and the sensor values. Rows are
grouped by unit and sorted by cycle inside each unit; the constructor checks
that and names the first offending row, so that no feature is ever computed on
a shuffled time axis.

Gaps in the cycle count (a cycle with no reading) are allowed and reported by
:meth:`Telemetry.gaps`; nothing is imputed. Features that depend on time use
the cycle numbers, not the row positions, where it matters (slopes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Gap", "Telemetry"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Gap:
    """Missing cycles in a unit's readings.

    Parameters
    ----------
    unit
        The asset.
    after_cycle
        The last cycle read before the gap.
    missing_cycles
        How many cycles have no reading.
    """

    unit: int
    after_cycle: int
    missing_cycles: int


def _expect(
    value: object, kind: type | tuple[type, ...], name: str, *, optional: bool = False
) -> None:
    """Raise :class:`ValidationError` when ``value`` is not a ``kind`` (public input check)."""
    if value is None and optional:
        return
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValidationError(f"{name}: expected {names}, got {type(value).__name__}")


def _as_2d(name: str, value: object, n: int) -> FloatArray:
    try:
        a = np.array(value, dtype=np.float64)  # a copy: the value is frozen, not the caller's
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(f"{name}: expected a 2-D array of numbers") from None
    if a.ndim == 1 and n == 0:
        a = a.reshape(0, 0)
    if a.ndim != 2 or a.shape[0] != n:
        raise ValidationError(f"{name}: expected a 2-D array with {n} rows, got shape {a.shape}")
    return a


@dataclass(frozen=True)
class Telemetry:
    """Readings of a fleet of assets, grouped by unit and sorted by cycle.

    Parameters
    ----------
    unit
        Asset id of each reading (integers).
    cycle
        Time index of each reading, strictly increasing within a unit.
    settings
        Operating settings of each reading, shape ``(n, len(setting_names))``.
    sensors
        Sensor values of each reading, shape ``(n, len(sensor_names))``. NaN
        is allowed (a missing value) only where the model tolerates it; the
        RUL model and the anomaly detector reject it naming the row.
    setting_names, sensor_names
        Column names, unique.

    Raises
    ------
    ValidationError
        When shapes disagree, names repeat, or a unit's readings are not
        contiguous and strictly increasing in cycle (the message names the row,
        0-based, and the unit).
    """

    unit: IntArray
    cycle: IntArray
    settings: FloatArray
    sensors: FloatArray
    setting_names: tuple[str, ...]
    sensor_names: tuple[str, ...]

    def __post_init__(self) -> None:
        unit = np.asarray(self.unit)
        cycle = np.asarray(self.cycle)
        for name, arr in (("unit", unit), ("cycle", cycle)):
            if arr.ndim != 1:
                raise ValidationError(f"{name}: expected a 1-D array, got shape {arr.shape}")
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                try:
                    as_float = arr.astype(np.float64)
                except (TypeError, ValueError, OverflowError):
                    raise ValidationError(f"{name}: expected integers", "telemetry") from None
                with np.errstate(invalid="ignore"):
                    wrong = ~np.isfinite(as_float) | (as_float != np.round(as_float))
                    wrong |= np.abs(as_float) > 2.0**53
                if np.any(wrong):
                    bad = int(np.flatnonzero(wrong)[0])
                    raise ValidationError(
                        f"{name}: expected integers, got {arr[bad]!r} at row {bad}",
                        "telemetry",
                        bad,
                    )
        unit = unit.astype(np.int64)
        cycle = cycle.astype(np.int64)
        n = unit.shape[0]
        if cycle.shape[0] != n:
            raise ValidationError(
                f"cycle: expected {n} values (one per reading), got {cycle.shape[0]}"
            )
        settings = _as_2d("settings", self.settings, n)
        sensors = _as_2d("sensors", self.sensors, n)
        for label, names_ in (
            ("setting_names", self.setting_names),
            ("sensor_names", self.sensor_names),
        ):
            if isinstance(names_, str) or not isinstance(names_, tuple | list):
                raise ValidationError(f"{label}: expected a tuple of column names, got {names_!r}")
        setting_names = tuple(str(s) for s in self.setting_names)
        sensor_names = tuple(str(s) for s in self.sensor_names)
        if settings.shape[1] != len(setting_names):
            raise ValidationError(
                f"settings: {settings.shape[1]} columns but {len(setting_names)} setting names"
            )
        if sensors.shape[1] != len(sensor_names):
            raise ValidationError(
                f"sensors: {sensors.shape[1]} columns but {len(sensor_names)} sensor names"
            )
        names = setting_names + sensor_names
        if len(set(names)) != len(names):
            dup = sorted({x for x in names if names.count(x) > 1})
            raise ValidationError(f"column names repeat: {', '.join(dup)}")
        if not np.all(np.isfinite(settings)):
            r, c = np.argwhere(~np.isfinite(settings))[0]
            raise ValidationError(
                f"setting {setting_names[c]!r} is not a finite number at row {r} (unit {unit[r]})",
                "telemetry",
                int(r),
            )
        if n > 1:
            same = unit[1:] == unit[:-1]
            back = same & (cycle[1:] <= cycle[:-1])
            if np.any(back):
                r = int(np.flatnonzero(back)[0]) + 1
                what = "repeats" if cycle[r] == cycle[r - 1] else "goes back from"
                raise ValidationError(
                    f"unit {unit[r]}: cycle {cycle[r]} at row {r} {what} cycle {cycle[r - 1]} "
                    "of the previous row (a unit's readings must be in increasing cycle order)",
                    "telemetry",
                    r,
                )
            starts = np.flatnonzero(np.r_[True, ~same])
            seen = unit[starts]
            if np.unique(seen).size != seen.size:
                order = np.argsort(seen, kind="stable")
                dup_pos = order[1:][seen[order[1:]] == seen[order[:-1]]]
                r = int(starts[dup_pos.min()])
                raise ValidationError(
                    f"unit {unit[r]}: readings resume at row {r} after another unit's "
                    "(a unit's readings must be contiguous)",
                    "telemetry",
                    r,
                )
        for field, value in (
            ("unit", unit),
            ("cycle", cycle),
            ("settings", settings),
            ("sensors", sensors),
            ("setting_names", setting_names),
            ("sensor_names", sensor_names),
        ):
            object.__setattr__(self, field, value)
        for frozen in (unit, cycle, settings, sensors):
            frozen.setflags(write=False)

    # -- views -----------------------------------------------------------------------------

    @property
    def n_readings(self) -> int:
        """Number of readings (rows)."""
        return int(self.unit.shape[0])

    @property
    def units(self) -> IntArray:
        """The unit ids, in the order they appear."""
        if self.n_readings == 0:
            return np.zeros(0, dtype=np.int64)
        return self.unit[self.starts]

    @property
    def starts(self) -> IntArray:
        """Row of the first reading of each unit."""
        if self.n_readings == 0:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.r_[True, self.unit[1:] != self.unit[:-1]]).astype(np.int64)

    @property
    def last_rows(self) -> IntArray:
        """Row of the last reading of each unit."""
        if self.n_readings == 0:
            return np.zeros(0, dtype=np.int64)
        rows: IntArray = np.r_[self.starts[1:] - 1, self.n_readings - 1].astype(np.int64)
        return rows

    def sensor(self, name: str) -> FloatArray:
        """The values of one sensor column, by name."""
        try:
            return self.sensors[:, self.sensor_names.index(name)]
        except ValueError:
            raise ValidationError(f"no sensor column {name!r}", "telemetry") from None

    def gaps(self) -> list[Gap]:
        """Cycles with no reading inside each unit's record (nothing is imputed)."""
        if self.n_readings < 2:
            return []
        same = self.unit[1:] == self.unit[:-1]
        step = self.cycle[1:] - self.cycle[:-1]
        rows = np.flatnonzero(same & (step > 1))
        return [Gap(int(self.unit[r]), int(self.cycle[r]), int(step[r] - 1)) for r in rows.tolist()]

    def select_units(self, units: npt.ArrayLike) -> Telemetry:
        """The readings of the given units only (in their original order)."""
        keep = np.isin(self.unit, np.asarray(units, dtype=np.int64))
        return self.take(np.flatnonzero(keep))

    def take(self, rows: npt.ArrayLike) -> Telemetry:
        """The readings at ``rows`` (which must keep units contiguous and sorted)."""
        r = np.asarray(rows, dtype=np.int64)
        return dataclasses.replace(
            self,
            unit=self.unit[r],
            cycle=self.cycle[r],
            settings=self.settings[r],
            sensors=self.sensors[r],
        )

    def truncate(self, last_cycle: dict[int, int]) -> Telemetry:
        """Each unit's readings up to and including ``last_cycle[unit]`` (others kept whole)."""
        limit = np.array([last_cycle.get(int(u), np.iinfo(np.int64).max) for u in self.units])
        per_row = np.repeat(limit, np.diff(np.r_[self.starts, self.n_readings]))
        return self.take(np.flatnonzero(self.cycle <= per_row))

    def to_frame(self) -> pd.DataFrame:
        """One row per reading: ``unit``, ``cycle``, the settings, the sensors."""
        import pandas as pd

        data: dict[str, npt.NDArray[np.generic]] = {"unit": self.unit, "cycle": self.cycle}
        for j, nm in enumerate(self.setting_names):
            data[nm] = self.settings[:, j]
        for j, nm in enumerate(self.sensor_names):
            data[nm] = self.sensors[:, j]
        return pd.DataFrame(data)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        sensors: tuple[str, ...] | list[str],
        settings: tuple[str, ...] | list[str] = (),
        unit: str = "unit",
        cycle: str = "cycle",
        sort: bool = False,
    ) -> Telemetry:
        """Build from a table with one row per reading.

        Parameters
        ----------
        frame
            The readings.
        sensors, settings
            The sensor and operating-setting columns to use.
        unit, cycle
            The asset id and time-index columns.
        sort
            Sort by unit and cycle first (a stable sort; repeated cycles are
            still an error). Off by default: unsorted input is an error naming
            the row, so that a shuffled file is noticed rather than repaired.
        """
        missing = [c for c in (unit, cycle, *settings, *sensors) if c not in frame.columns]
        if missing:
            raise ValidationError(f"missing column(s): {', '.join(map(str, missing))}", "telemetry")
        if sort:
            frame = frame.sort_values([unit, cycle], kind="stable")
        n = len(frame)
        return cls(
            unit=frame[unit].to_numpy(),
            cycle=frame[cycle].to_numpy(),
            settings=frame[list(settings)].to_numpy(dtype=np.float64).reshape(n, len(settings)),
            sensors=frame[list(sensors)].to_numpy(dtype=np.float64).reshape(n, len(sensors)),
            setting_names=tuple(settings),
            sensor_names=tuple(sensors),
        )
