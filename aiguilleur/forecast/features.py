"""Features of a day-ahead forecast, built from what is known at the issue time.

A forecast is issued at ``issue_hour`` (12:00 by default, when the day-ahead
auction closes) on day D-1 for the 24 hours of day D: lead times 13 to 36 h.
One row per target hour. Every value read from the series is read through a
mask that returns ``NaN`` for any hour at or after the issue time (the hour
ending at the issue time is the last one known), so that no feature can see
the future, whatever the index arithmetic; the leakage test perturbs every
value after the issue time and checks that the forecast does not move.

Temperature settings:

``"ex-ante"``
    no temperature after the issue time: the model forecasts from past weather
    (latest, smoothed and lagged temperatures, degree-days of the last day).
``"ex-post"``
    the observed temperature from the issue time to the end of day D stands in
    for a perfect weather forecast (as in GEFCom): temperature of the target
    hour, its lags, smoothed forms and the day's mean, minimum and maximum.
``"none"``
    no temperature at all (calendar and lagged target only).

Load features are divided by the *level*, the mean of the target over the
week before the issue time, and the model learns the target divided by the
same level: the models are scale-free, which carries them across years of
load growth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import numpy.typing as npt

from aiguilleur.errors import ValidationError

__all__ = [
    "FEATURES",
    "DayAheadFeatures",
    "TemperatureMode",
    "day_ahead_features",
    "feature_names",
    "holiday_dates",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
TemperatureMode = Literal["ex-ante", "ex-post", "none"]

# Base temperature of heating and cooling degrees (degrees Fahrenheit, as in GEFCom).
BASE_TEMPERATURE_F = 65.0
_EMA_FAST = 0.15  # about 6 h
_EMA_SLOW = 0.02  # about 2 days
_LEVEL_HOURS = 168

_CALENDAR = [
    "hour",
    "weekday",
    "day_of_year",
    "weekend",
    "holiday",
    "holiday_before",
    "holiday_after",
]
_LOAD = [
    "load_same_hour_latest",
    "load_lag_48h",
    "load_lag_168h",
    "load_lag_336h",
    "load_last",
    "load_mean_24h",
    "load_max_d2",
    "load_min_d2",
]
_TEMP_PAST = [
    "temp_last",
    "temp_mean_24h",
    "temp_same_hour_latest",
    "temp_ema_fast_issue",
    "temp_ema_slow_issue",
    "temp_mean_d2",
    "temp_lag_168h",
    "hdd_mean_24h",
    "cdd_mean_24h",
]
_TEMP_FUTURE = [
    "temp",
    "temp_lag_1h",
    "temp_lag_2h",
    "temp_lag_3h",
    "temp_lag_6h",
    "temp_lag_24h",
    "temp_lag_48h",
    "temp_mean_3h",
    "temp_mean_6h",
    "temp_mean_12h",
    "temp_ema_fast",
    "temp_ema_slow",
    "temp_day_mean",
    "temp_day_max",
    "temp_day_min",
    "temp_prev_day_mean",
    "hdd",
    "cdd",
    "hdd_ema_slow",
    "cdd_ema_slow",
    "temp_change_same_hour_latest",
    "temp_change_168h",
    "temp_day_mean_change",
]

#: The features of each temperature setting, in column order.
FEATURES: dict[str, tuple[str, ...]] = {
    "none": tuple(_CALENDAR + _LOAD),
    "ex-ante": tuple(_CALENDAR + _LOAD + _TEMP_PAST),
    "ex-post": tuple(_CALENDAR + _LOAD + _TEMP_PAST + _TEMP_FUTURE),
}


def feature_names(mode: TemperatureMode) -> tuple[str, ...]:
    """The feature columns of a temperature setting."""
    if not isinstance(mode, str) or mode not in FEATURES:
        raise ValidationError(
            f"temperature mode: expected one of {', '.join(FEATURES)}, got {mode!r}"
        )
    return FEATURES[mode]


@dataclass(frozen=True)
class DayAheadFeatures:
    """The feature matrix of some target days, one row per target hour.

    Attributes
    ----------
    X
        ``(n_days * 24, n_features)``; ``NaN`` where a value is unknown.
    names
        Column names of ``X``.
    level
        The target's mean over the week before each issue time, per row.
    target_index
        Position in the series of each row's target hour.
    """

    X: FloatArray
    names: tuple[str, ...]
    level: FloatArray
    target_index: IntArray


@cache
def _holiday_set(country: str, subdiv: str | None, y0: int, y1: int) -> npt.NDArray[np.datetime64]:
    import holidays

    try:
        cal = holidays.country_holidays(country, subdiv=subdiv, years=range(y0, y1 + 1))
    except (NotImplementedError, KeyError, ValueError, TypeError) as e:
        msg = " ".join(str(e).split())[:120]
        raise ValidationError(f"holidays: {msg}") from None
    return np.array(sorted(cal.keys()), dtype="datetime64[D]")


def holiday_dates(
    country: str, subdiv: str | None, first: np.datetime64, last: np.datetime64
) -> npt.NDArray[np.datetime64]:
    """Public holidays of a region between two dates (the ``holidays`` package)."""
    y0 = int(str(np.array(first, dtype="datetime64[Y]")))
    y1 = int(str(np.array(last, dtype="datetime64[Y]")))
    return _holiday_set(country, subdiv, y0 - 1, y1 + 1)


def _ema(v: FloatArray, alpha: float) -> FloatArray:
    """Causal exponential smoothing; a missing value holds the previous one."""
    from scipy.signal import lfilter

    x = v.copy()
    ok = np.isfinite(x)
    if not ok.any():
        return x
    idx = np.where(ok, np.arange(x.size), 0)
    np.maximum.accumulate(idx, out=idx)
    x = x[idx]
    first = int(np.argmax(ok))
    x[:first] = x[first]  # before the first value: the first value (series start only)
    out, _ = lfilter([alpha], [1.0, alpha - 1.0], x, zi=[(1.0 - alpha) * x[0]])
    return np.asarray(out, dtype=np.float64)


def _take(v: FloatArray, idx: IntArray, limit: IntArray) -> FloatArray:
    """``v[idx]``, NaN outside the series and at or after ``limit`` (the mask)."""
    ok = (idx >= 0) & (idx < v.size) & (idx < limit)
    out = np.full(idx.shape, np.nan)
    out[ok] = v[idx[ok]]
    return out


def _window_mean(v: FloatArray, end: IntArray, n: int, limit: IntArray) -> FloatArray:
    """Mean of the known values of ``v[end - n : end]`` (end clipped to ``limit``)."""
    e = np.clip(np.minimum(end, limit), 0, v.size)
    s = np.clip(e - n, 0, v.size)
    ok = np.isfinite(v)
    cs = np.concatenate(([0.0], np.cumsum(np.where(ok, v, 0.0))))
    cn = np.concatenate(([0], np.cumsum(ok)))
    cnt = cn[e] - cn[s]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (cs[e] - cs[s]) / np.maximum(cnt, 1), np.nan)


def _window_ext(v: FloatArray, start: IntArray, n: int, limit: IntArray, fn: str) -> FloatArray:
    """Max or min of ``v[start : start + n]`` over known values (rows of a day)."""
    idx = start[:, None] + np.arange(n)[None, :]
    vals = _take(v, idx, limit[:, None])
    allnan = np.all(np.isnan(vals), axis=1)
    vals = np.where(np.isnan(vals), -np.inf if fn == "max" else np.inf, vals)
    out = vals.max(axis=1) if fn == "max" else vals.min(axis=1)
    return np.where(allnan, np.nan, out)


def day_ahead_features(
    time0: np.datetime64,
    target: FloatArray,
    temperature: FloatArray | None,
    day_starts: IntArray,
    mode: TemperatureMode,
    *,
    issue_hour: int = 12,
    holiday_country: str = "US",
    holiday_subdiv: str | None = None,
) -> DayAheadFeatures:
    """Features of the target days starting at ``day_starts`` (positions of midnights).

    Parameters
    ----------
    time0
        Start of the first hour of the arrays.
    target, temperature
        The hourly series (only what lies before each issue time is read; in
        the ex-post setting the temperature up to the end of day D too).
    day_starts
        Position of 00:00 of each target day D.
    mode
        ``"ex-ante"``, ``"ex-post"`` or ``"none"`` (see the module notes).
    issue_hour
        Hour of day D-1 at which the forecast is issued (0..23).
    holiday_country, holiday_subdiv
        Region of the public holidays (``holidays`` package codes).
    """
    names = feature_names(mode)
    if mode != "none" and temperature is None:
        raise ValidationError(f"the {mode} setting needs a temperature series")
    if not 0 <= issue_hour <= 23:
        raise ValidationError(f"issue hour: expected 0..23, got {issue_hour}")
    d0 = np.asarray(day_starts, dtype=np.int64)
    n_days = d0.size
    h = np.tile(np.arange(24, dtype=np.int64), n_days)
    D = np.repeat(d0, 24)
    t = D + h  # target positions
    iss = D - 24 + issue_hour  # first unknown position
    y = np.asarray(target, dtype=np.float64)

    cols: dict[str, FloatArray] = {}
    # Calendar of day D (known in advance).
    day = (np.array(time0, dtype="datetime64[h]") + D.astype("timedelta64[h]")).astype(
        "datetime64[D]"
    )
    weekday = ((day.astype(np.int64) + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
    year_start = day.astype("datetime64[Y]").astype("datetime64[D]")
    hol = holiday_dates(holiday_country, holiday_subdiv, day.min(), day.max()) if n_days else None
    one = np.timedelta64(1, "D")
    cols["hour"] = h.astype(np.float64)
    cols["weekday"] = weekday
    cols["day_of_year"] = (day - year_start).astype(np.float64)
    cols["weekend"] = (weekday >= 5).astype(np.float64)
    if hol is not None:
        cols["holiday"] = np.isin(day, hol).astype(np.float64)
        cols["holiday_before"] = np.isin(day - one, hol).astype(np.float64)
        cols["holiday_after"] = np.isin(day + one, hol).astype(np.float64)
    else:
        cols["holiday"] = cols["holiday_before"] = cols["holiday_after"] = np.zeros(0)

    # Target lags, all masked at the issue time.
    k_latest = -(-(h + 25 - issue_hour) // 24)  # smallest k with t - 24 k < iss
    raw: dict[str, FloatArray] = {
        "load_same_hour_latest": _take(y, t - 24 * k_latest, iss),
        "load_lag_48h": _take(y, t - 48, iss),
        "load_lag_168h": _take(y, t - 168, iss),
        "load_lag_336h": _take(y, t - 336, iss),
        "load_last": _take(y, iss - 1, iss),
        "load_mean_24h": _window_mean(y, iss, 24, iss),
        "load_max_d2": _window_ext(y, D - 48, 24, iss, "max"),
        "load_min_d2": _window_ext(y, D - 48, 24, iss, "min"),
    }
    level = _window_mean(y, iss, _LEVEL_HOURS, iss)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, v in raw.items():
            cols[k] = v / level

    if temperature is not None and mode != "none":
        T = np.asarray(temperature, dtype=np.float64)
        fast, slow = _ema(T, _EMA_FAST), _ema(T, _EMA_SLOW)
        m24 = _window_mean(T, iss, 24, iss)
        cols["temp_last"] = _take(T, iss - 1, iss)
        cols["temp_mean_24h"] = m24
        cols["temp_same_hour_latest"] = _take(T, t - 24 * k_latest, iss)
        cols["temp_ema_fast_issue"] = _take(fast, iss - 1, iss)
        cols["temp_ema_slow_issue"] = _take(slow, iss - 1, iss)
        cols["temp_mean_d2"] = _window_mean(T, D - 24, 24, iss)
        cols["temp_lag_168h"] = _take(T, t - 168, iss)
        cols["hdd_mean_24h"] = np.maximum(BASE_TEMPERATURE_F - m24, 0.0)
        cols["cdd_mean_24h"] = np.maximum(m24 - BASE_TEMPERATURE_F, 0.0)
        if mode == "ex-post":
            lim = D + 24  # the weather "forecast" covers the issue time to the end of D
            temp = _take(T, t, lim)
            cols["temp"] = temp
            for lag in (1, 2, 3, 6, 24, 48):
                cols[f"temp_lag_{lag}h"] = _take(T, t - lag, lim)
            for w in (3, 6, 12):
                cols[f"temp_mean_{w}h"] = _window_mean(T, t + 1, w, lim)
            cols["temp_ema_fast"] = _take(fast, t, lim)
            cols["temp_ema_slow"] = es = _take(slow, t, lim)
            cols["temp_day_mean"] = _window_mean(T, D + 24, 24, lim)
            cols["temp_day_max"] = _window_ext(T, D, 24, lim, "max")
            cols["temp_day_min"] = _window_ext(T, D, 24, lim, "min")
            cols["temp_prev_day_mean"] = _window_mean(T, D, 24, lim)
            cols["hdd"] = np.maximum(BASE_TEMPERATURE_F - temp, 0.0)
            cols["cdd"] = np.maximum(temp - BASE_TEMPERATURE_F, 0.0)
            cols["hdd_ema_slow"] = np.maximum(BASE_TEMPERATURE_F - es, 0.0)
            cols["cdd_ema_slow"] = np.maximum(es - BASE_TEMPERATURE_F, 0.0)
            # Changes since the hours the load lags come from (trees split poorly on differences).
            cols["temp_change_same_hour_latest"] = temp - cols["temp_same_hour_latest"]
            cols["temp_change_168h"] = temp - cols["temp_lag_168h"]
            cols["temp_day_mean_change"] = cols["temp_day_mean"] - m24

    X = np.column_stack([cols[n] for n in names]) if n_days else np.zeros((0, len(names)))
    return DayAheadFeatures(X=X, names=names, level=level, target_index=t)
