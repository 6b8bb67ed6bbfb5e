"""Day-ahead quantile forecasters: gradient-boosted quantiles and a seasonal-naive reference.

``"lightgbm"`` (the default) trains one LightGBM model per quantile (pinball
loss) on the features of :mod:`aiguilleur.forecast.features`, the target
divided by its recent level. ``"seasonal_naive"`` forecasts each hour by the
same hour one week earlier. Both are calibrated the same way
(:mod:`aiguilleur.forecast.calibration`): :func:`fit` holds out the last
``calibration_days`` of the history, forecasts them with a model trained on
what precedes them, takes the quantile shifts from those out-of-sample
errors, then trains the final model on the whole history.

A fitted :class:`Forecaster` saves to a JSON file (format version, settings,
feature list, LightGBM model text) and loads back; a file whose features
this version cannot build, or a series without the columns the model needs,
is a clear error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from aiguilleur._files import atomic_write_bytes
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.forecast.calibration import apply_shifts, quantile_shifts
from aiguilleur.forecast.features import (
    FEATURES,
    DayAheadFeatures,
    TemperatureMode,
    day_ahead_features,
    feature_names,
)
from aiguilleur.forecast.io import HourlySeries, _as_unit, _expect

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FORMAT_VERSION",
    "ForecastSettings",
    "Forecaster",
    "fit",
    "load_model",
    "predict",
    "predict_quantiles",
    "save_model",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ModelKind = Literal["lightgbm", "seasonal_naive"]

#: Version of the saved-model format; a file of another version is refused.
FORMAT_VERSION = 1
_FORMAT = "aiguilleur.forecast.model"
DEFAULT_QUANTILES = (0.05, 0.1, 0.5, 0.9, 0.95)
_HOUR = np.timedelta64(1, "h")
#: Bounds of the LightGBM settings: beyond them a run would not end or would exhaust the machine.
MAX_THREADS = 256
MAX_TREES = 100_000


@dataclass(frozen=True)
class ForecastSettings:
    """Settings of a day-ahead forecaster.

    Parameters
    ----------
    model
        ``"lightgbm"`` (quantile gradient boosting) or ``"seasonal_naive"``
        (same hour one week before).
    temperature
        ``"ex-ante"`` (past weather only), ``"ex-post"`` (the observed
        temperature of day D stands for a perfect forecast) or ``"none"``.
    quantiles
        Quantile levels, increasing, in (0, 1), including 0.5.
    issue_hour
        Hour of day D-1 at which the forecast of day D is issued.
    calibration_days
        Days of out-of-sample forecasts that calibrate the quantiles (0: none).
    training_days
        Train on at most this many days before the issue time (``None``: all).
    n_estimators, learning_rate, num_leaves, min_data_in_leaf
        LightGBM's boosting rounds, shrinkage, leaves per tree, rows per leaf
        (the quantiles other than the median).
    median_n_estimators, median_learning_rate, median_num_leaves
        The same for the median's model, which carries the point forecast.
    median_loss
        ``"l2+quantile"`` (default): the median is the average of two models,
        one fitted with squared error and one with absolute (pinball) loss;
        ``"l2"`` or ``"quantile"``: one of them alone. On GEFCom2014-E (ex-post,
        2014) the average scored a MAPE of 1.77 % against 1.80 % (squared error)
        and 1.82 % (absolute loss). The calibration moves the median onto the
        median of its past errors either way.
    num_threads
        LightGBM threads.
    seed
        LightGBM's random seed (training is deterministic for a given seed).
    holiday_country, holiday_subdiv
        Region of the public holidays (``holidays`` package codes).
    """

    model: ModelKind = "lightgbm"
    temperature: TemperatureMode = "ex-ante"
    quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    issue_hour: int = 12
    calibration_days: int = 90
    training_days: int | None = None
    n_estimators: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 31
    median_n_estimators: int = 1000
    median_learning_rate: float = 0.03
    median_num_leaves: int = 63
    median_loss: Literal["l2+quantile", "l2", "quantile"] = "l2+quantile"
    min_data_in_leaf: int = 50
    num_threads: int = 1
    seed: int = 0
    holiday_country: str = "US"
    holiday_subdiv: str | None = None

    def __post_init__(self) -> None:
        if self.model not in ("lightgbm", "seasonal_naive"):
            raise ValidationError(
                f"model: expected 'lightgbm' or 'seasonal_naive', got {self.model!r}"
            )
        if not isinstance(self.temperature, str):
            raise ValidationError(
                f"temperature: expected 'ex-ante', 'ex-post' or 'none', got {self.temperature!r}"
            )
        feature_names(self.temperature)
        if isinstance(self.quantiles, str) or not isinstance(self.quantiles, tuple | list):
            raise ValidationError(f"quantiles: expected a tuple of numbers, got {self.quantiles!r}")
        if not all(
            isinstance(x, int | float | np.floating) and not isinstance(x, bool)
            for x in self.quantiles
        ):
            raise ValidationError(f"quantiles: expected numbers, got {self.quantiles!r}")
        q = tuple(float(x) for x in self.quantiles)
        object.__setattr__(self, "quantiles", q)
        if not q or any(not 0.0 < x < 1.0 for x in q) or list(q) != sorted(set(q)):
            raise ValidationError(f"quantiles: expected increasing levels in (0, 1), got {q}")
        if 0.5 not in q:
            raise ValidationError("quantiles: the median (0.5) is needed")
        for name, lo in (
            ("issue_hour", 0),
            ("calibration_days", 0),
            ("n_estimators", 1),
            ("num_leaves", 2),
            ("median_n_estimators", 1),
            ("median_num_leaves", 2),
            ("min_data_in_leaf", 1),
            ("num_threads", 1),
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValidationError(f"{name}: expected an integer >= {lo}, got {v!r}")
        for name, hi in (
            ("num_threads", MAX_THREADS),
            ("n_estimators", MAX_TREES),
            ("median_n_estimators", MAX_TREES),
            ("num_leaves", 1 << 17),
            ("median_num_leaves", 1 << 17),
        ):
            if getattr(self, name) > hi:
                raise ValidationError(f"{name}: expected at most {hi:,}, got {getattr(self, name)}")
        for name in ("holiday_country", "holiday_subdiv"):
            v = getattr(self, name)
            if not (isinstance(v, str) or (v is None and name == "holiday_subdiv")):
                raise ValidationError(f"{name}: expected a region code, got {v!r}")
        from aiguilleur.forecast.features import _holiday_set

        _holiday_set(self.holiday_country, self.holiday_subdiv, 2000, 2000)  # unknown: one line
        if self.issue_hour > 23:
            raise ValidationError(f"issue_hour: expected 0..23, got {self.issue_hour}")
        if self.training_days is not None and (
            isinstance(self.training_days, bool)
            or not isinstance(self.training_days, int)
            or self.training_days < 14
        ):
            raise ValidationError(
                f"training_days: expected None or an integer >= 14, got {self.training_days!r}"
            )
        for name in ("learning_rate", "median_learning_rate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 < v <= 1.0:
                raise ValidationError(f"{name}: expected a number in (0, 1], got {v!r}")
        if self.median_loss not in ("l2+quantile", "l2", "quantile"):
            raise ValidationError(
                f"median_loss: expected 'l2+quantile', 'l2' or 'quantile', got {self.median_loss!r}"
            )

    @property
    def median_index(self) -> int:
        """Position of the median among the quantiles."""
        return self.quantiles.index(0.5)


@dataclass(frozen=True)
class Forecaster:
    """A fitted day-ahead forecaster (see :func:`fit`).

    Attributes
    ----------
    settings
        The settings it was fitted with.
    features
        The feature columns its models read, in order.
    boosters
        One LightGBM booster per quantile, then the second median model when
        ``median_loss`` is ``"l2+quantile"`` (empty for the seasonal-naive model).
    shifts
        Conformal shift of each quantile, relative to the level.
    target_name, temperature_name
        Columns of the series it was fitted on.
    trained_until
        The first hour not used for training or calibration.
    """

    settings: ForecastSettings
    features: tuple[str, ...]
    boosters: tuple[Any, ...]
    shifts: FloatArray
    target_name: str
    temperature_name: str | None
    trained_until: np.datetime64
    format_version: int = field(default=FORMAT_VERSION)


# -- training and raw prediction ------------------------------------------------------------


def _midnights(series: HourlySeries) -> IntArray:
    hours = (series.time - series.time.astype("datetime64[D]")).astype(np.int64)
    return np.flatnonzero(hours == 0).astype(np.int64)


def _features(
    series: HourlySeries, temperature: FloatArray | None, days: IntArray, s: ForecastSettings
) -> DayAheadFeatures:
    return day_ahead_features(
        series.time[0],
        series.target,
        temperature,
        days,
        s.temperature,
        issue_hour=s.issue_hour,
        holiday_country=s.holiday_country,
        holiday_subdiv=s.holiday_subdiv,
    )


def _check_columns(series: HourlySeries, s: ForecastSettings, want: str | None = None) -> None:
    if s.temperature != "none" and series.temperature is None:
        name = f" {want!r}" if want else ""
        raise ValidationError(
            f"the {s.temperature} model needs the temperature column{name}; the series has none",
            component="series",
        )


def booster_count(s: ForecastSettings) -> int:
    """How many boosters a LightGBM forecaster has: one per quantile, and the second
    median model with ``median_loss="l2+quantile"`` (0 for the seasonal-naive model)."""
    if s.model != "lightgbm":
        return 0
    return len(s.quantiles) + (1 if s.median_loss == "l2+quantile" else 0)


def _train_boosters(
    series: HourlySeries, days: IntArray, s: ForecastSettings, which: Sequence[int] | None = None
) -> tuple[Any, ...]:
    """One LightGBM quantile model per level, trained on the target days ``days``
    (only the boosters ``which``, in that order, when given)."""
    import lightgbm as lgb

    f = _features(series, series.temperature, days, s)
    y = series.target[f.target_index] / f.level
    ok = np.isfinite(y) & np.isfinite(f.level)
    if ok.sum() < 24 * 14:
        raise ValidationError(
            f"training: {int(ok.sum())} usable hours; at least two weeks of "
            "complete days with a week of history before each are needed"
        )
    out = []
    jobs = [
        (q, "regression" if q == 0.5 and s.median_loss != "quantile" else "quantile")
        for q in s.quantiles
    ]
    if s.median_loss == "l2+quantile":
        jobs.append((0.5, "quantile"))  # the second median model, averaged with the first
    if which is not None:
        jobs = [jobs[k] for k in which]
    for q, objective in jobs:
        med = q == 0.5
        params = {
            "objective": objective,
            "alpha": q,
            "learning_rate": s.median_learning_rate if med else s.learning_rate,
            "num_leaves": s.median_num_leaves if med else s.num_leaves,
            "min_data_in_leaf": s.min_data_in_leaf,
            "feature_fraction": 0.9,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "num_threads": s.num_threads,
            "seed": s.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        ds = lgb.Dataset(f.X[ok], label=y[ok], feature_name=list(f.names), free_raw_data=True)
        rounds = s.median_n_estimators if med else s.n_estimators
        out.append(lgb.train(params, ds, num_boost_round=rounds))
    return tuple(out)


def _raw_predict(
    boosters: tuple[Any, ...],
    s: ForecastSettings,
    series: HourlySeries,
    temperature: FloatArray | None,
    days: IntArray,
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Uncalibrated relative quantiles ``(n_days, 24, n_q)``, level and target positions."""
    f = _features(series, temperature, days, s)
    nq = len(s.quantiles)
    if s.model == "seasonal_naive":
        k = f.names.index("load_lag_168h")
        rel = np.repeat(f.X[:, k : k + 1], nq, axis=1)
    else:
        if f.X.shape[0]:
            rel = np.column_stack([b.predict(f.X, num_threads=s.num_threads) for b in boosters])
            if s.median_loss == "l2+quantile":
                m = s.median_index
                rel[:, m] = 0.5 * (rel[:, m] + rel[:, nq])
                rel = rel[:, :nq]
        else:
            rel = np.zeros((0, nq))
    return (
        rel.reshape(days.size, 24, nq),
        f.level.reshape(days.size, 24),
        f.target_index.reshape(days.size, 24),
    )


def _training_days(series: HourlySeries, first_issue: int, s: ForecastSettings) -> IntArray:
    """Target days fully observed before the issue position ``first_issue``."""
    days = _midnights(series)
    days = days[(days + 24 <= first_issue) & (days >= 168)]
    if s.training_days is not None:
        days = days[-s.training_days :]
    return days


# -- public API -----------------------------------------------------------------------------


def fit(history: HourlySeries, settings: ForecastSettings | None = None) -> Forecaster:
    """Fit a day-ahead forecaster on a history and calibrate its quantiles.

    The last ``settings.calibration_days`` complete days are forecast out of
    sample by a model trained on the days before them; the quantiles are
    shifted by those errors (:mod:`~aiguilleur.forecast.calibration`). The
    final model is then trained on every complete day. The two are independent:
    :func:`fit_part` computes either alone (e.g. in two processes) and
    :func:`assemble` joins them into the same forecaster.

    Raises :class:`~aiguilleur.errors.ValidationError` when the history is too
    short or lacks the temperature the setting needs.
    """
    shifts = fit_part(history, settings, "calibration")
    final = fit_part(history, settings, "final")
    return assemble(history, settings, shifts, final)


FitPart = Literal["calibration", "final"]


def fit_part(
    history: HourlySeries,
    settings: ForecastSettings | None,
    part: FitPart,
    boosters: Sequence[int] | None = None,
) -> FloatArray | tuple[Any, ...]:
    """One of the two independent halves of :func:`fit`.

    ``"calibration"``: the conformal shift of each quantile (a model trained
    before the calibration days, forecasting them out of sample);
    ``"final"``: the boosters trained on every complete day (empty for the
    seasonal-naive model), or only those numbered ``boosters`` (0 to
    :func:`booster_count` - 1; each is trained independently of the others). Each
    is exactly what :func:`fit` computes.
    """
    _expect(history, HourlySeries, "history")
    _expect(settings, ForecastSettings, "settings", optional=True)
    s = settings or ForecastSettings()
    _check_columns(history, s)
    if part not in ("calibration", "final"):
        raise ValidationError(f"part: expected 'calibration' or 'final', got {part!r}")
    n = len(history)
    days = _training_days(history, n, s)
    q = np.array(s.quantiles)
    if s.calibration_days > 0 and days.size <= s.calibration_days + 14:
        raise ValidationError(
            f"history: {days.size} complete days; calibration needs more than "
            f"{s.calibration_days + 14} (or set calibration_days lower)"
        )
    if part == "final":
        if boosters is not None:
            nb = booster_count(s)
            if any(
                isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < nb for k in boosters
            ):
                raise ValidationError(
                    f"boosters: expected numbers from 0 to {nb - 1}, got {boosters!r}"
                )
        return _train_boosters(history, days, s, boosters) if s.model == "lightgbm" else ()
    shifts = np.zeros(q.size)
    if s.calibration_days > 0:
        cal = days[-s.calibration_days :]
        first_issue = int(cal[0]) - 24 + s.issue_hour
        trained: tuple[Any, ...] = ()
        if s.model == "lightgbm":
            trained = _train_boosters(history, _training_days(history, first_issue, s), s)
        rel, level, t = _raw_predict(trained, s, history, history.temperature, cal)
        actual = history.target[t]
        shifts = quantile_shifts(
            actual.reshape(-1), (rel * level[..., None]).reshape(-1, q.size), level.reshape(-1), q
        )
    return np.asarray(shifts, dtype=np.float64)


def assemble(
    history: HourlySeries,
    settings: ForecastSettings | None,
    shifts: FloatArray | tuple[Any, ...],
    boosters: FloatArray | tuple[Any, ...],
) -> Forecaster:
    """The forecaster of :func:`fit` from its two halves (:func:`fit_part`)."""
    s = settings or ForecastSettings()
    if not isinstance(shifts, np.ndarray) or shifts.shape != (len(s.quantiles),):
        raise ValidationError("shifts: expected the 'calibration' part, one shift per quantile")
    if not isinstance(boosters, tuple):
        raise ValidationError("boosters: expected the 'final' part (a tuple of boosters)")
    return Forecaster(
        settings=s,
        features=feature_names(s.temperature),
        boosters=boosters,
        shifts=np.asarray(shifts, dtype=np.float64),
        target_name=history.target_name,
        temperature_name=history.temperature_name,
        trained_until=history.end,
    )


def _issue_time(history: HourlySeries, issue_hour: int, when: object) -> np.datetime64:
    if when is None:
        last = history.end  # the first unknown hour
        day = last.astype("datetime64[D]")
        t = day.astype("datetime64[h]") + np.timedelta64(issue_hour, "h")
        return t if t <= last else t - np.timedelta64(24, "h")  # type: ignore[no-any-return]
    try:
        t = _as_unit(when if isinstance(when, np.datetime64) else str(when), "h")
    except ValueError:
        raise ValidationError(f"issue time: cannot read {when!r}") from None
    hour = int((t - t.astype("datetime64[D]")).astype(np.int64))
    if hour != issue_hour:
        raise ValidationError(
            f"issue time {t}: forecasts are issued at {issue_hour:02d}:00 on the day before"
        )
    return t


def predict_quantiles(
    model: Forecaster,
    history: HourlySeries,
    issue_time: object = None,
    temperature_forecast: npt.ArrayLike | None = None,
) -> tuple[npt.NDArray[np.datetime64], FloatArray]:
    """The 24 hourly timestamps of day D and their quantiles ``(24, n_q)``.

    See :func:`predict`; this is the same forecast as arrays.
    """
    _expect(model, Forecaster, "model")
    _expect(history, HourlySeries, "history")
    s = model.settings
    _check_columns(history, s, model.temperature_name)
    if s.model == "lightgbm" and not model.boosters:
        raise ValidationError("the model has no trained booster")
    issue = _issue_time(history, s.issue_hour, issue_time)
    day0 = issue + np.timedelta64(24 - s.issue_hour, "h")
    i_iss = history.index_of(issue)
    i_day = history.index_of(day0)
    if i_iss <= 0:
        raise ValidationError(f"issue time {issue}: the history starts at {history.start}")
    if i_iss > len(history) + 24 * 7:  # nothing known in the week before: never a huge table
        raise ValidationError(
            f"issue time {issue}: more than a week after the history ends ({history.end}); "
            f"no value of {history.target_name!r} in the week before it"
        )
    n = i_day + 24
    time = history.time[0] + np.arange(n) * _HOUR
    y = np.full(n, np.nan)
    k = min(i_iss, len(history))
    y[:k] = history.target[:k]  # nothing at or after the issue time
    temp: FloatArray | None = None
    if s.temperature != "none":
        assert history.temperature is not None
        temp = np.full(n, np.nan)
        temp[:k] = history.temperature[:k]
        if s.temperature == "ex-post":
            span = n - i_iss
            if temperature_forecast is not None:
                tf = np.asarray(temperature_forecast, dtype=np.float64).reshape(-1)
                if tf.size != span:
                    raise ValidationError(
                        f"temperature forecast: expected {span} hourly values from {issue} "
                        f"to the end of {day0.astype('datetime64[D]')}, got {tf.size}"
                    )
                temp[i_iss:] = tf
            else:
                m = min(n, len(history))
                temp[i_iss:m] = history.temperature[i_iss:m]
                if m < n or np.isnan(temp[i_iss:]).any():
                    raise ValidationError(
                        "the ex-post model needs the temperature from the issue time to the "
                        f"end of {day0.astype('datetime64[D]')}: pass temperature_forecast"
                    )
    series = HourlySeries(
        time=time,
        target=y,
        temperature=temp,
        target_name=history.target_name,
        temperature_name=history.temperature_name,
    )
    rel, level, _ = _raw_predict(model.boosters, s, series, temp, np.array([i_day]))
    if not np.isfinite(level).all():
        raise ValidationError(
            f"issue time {issue}: no value of {history.target_name!r} in the week before it"
        )
    pred = apply_shifts(rel[0] * level[0][:, None], level[0], model.shifts)
    if not np.isfinite(pred).all():  # never a silent hole in the forecast
        bad = int(np.flatnonzero(~np.isfinite(pred).all(axis=1))[0])
        raise ValidationError(
            f"issue time {issue}: no forecast could be made for {time[i_day + bad]} "
            "(missing history or temperature the model needs)"
        )
    return time[i_day : i_day + 24], pred


def predict(
    model: Forecaster,
    history: HourlySeries,
    issue_time: object = None,
    temperature_forecast: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """Forecast the 24 hours of day D, issued at ``issue_hour`` on day D-1.

    Parameters
    ----------
    model
        A fitted forecaster (:func:`fit` or :func:`load_model`).
    history
        The series; only the values before the issue time are read (the
        target never after it; the temperature after it only in the ex-post
        setting, as a weather forecast, when ``temperature_forecast`` is not
        given).
    issue_time
        When the forecast is issued (a timestamp at ``issue_hour``); default:
        the latest issue time the history reaches.
    temperature_forecast
        Ex-post only: the hourly temperature from the issue time to the end of
        day D (36 values with the default issue hour).

    Returns
    -------
    A tidy table with columns ``timestamp`` (start of the hour), ``quantile``
    and ``value``: 24 hours times the quantiles, never crossing.
    """
    import pandas as pd

    time, pred = predict_quantiles(model, history, issue_time, temperature_forecast)
    q = np.array(model.settings.quantiles)
    return pd.DataFrame(
        {
            "timestamp": np.repeat(time.astype("datetime64[ns]"), q.size),
            "quantile": np.tile(q, time.size),
            "value": pred.reshape(-1),
        }
    )


# -- files ------------------------------------------------------------------------------------


def save_model(model: Forecaster, path: str | Path) -> None:
    """Write a fitted forecaster to a JSON file (atomically)."""
    _expect(model, Forecaster, "model")
    _expect(path, (str, Path), "path")
    doc = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "settings": asdict(model.settings),
        "features": list(model.features),
        "target": model.target_name,
        "temperature": model.temperature_name,
        "shifts": [float(x) for x in model.shifts],
        "trained_until": str(model.trained_until),
        "boosters": [b.model_to_string() for b in model.boosters],
    }
    from aiguilleur._files import check_output_file

    # Replacing an existing file is the caller's choice; never a folder, a device or a
    # pipe (a rename over /dev/full would replace the device), never a missing folder.
    target = check_output_file(path, force=True)
    try:
        atomic_write_bytes(target, json.dumps(doc).encode())
    except OSError as e:
        raise ValidationError(f"{path}: cannot write ({e.strerror or e})") from None


def _load_json(path: str | Path, what: str) -> Any:
    """A JSON document from a file: bounded read, one-line errors (nesting too deep included)."""
    from aiguilleur._files import read_input_text

    if not isinstance(path, str | Path):
        raise ValidationError(f"path: expected a file name, got {type(path).__name__}")
    p = str(path)
    text = read_input_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CaseFormatError(f"not {what} (JSON: {e.msg})", p, e.lineno) from None
    except RecursionError:
        raise CaseFormatError(f"not {what} (JSON nested too deeply)", p) from None


def load_model(path: str | Path) -> Forecaster:
    """Read a forecaster written by :func:`save_model`.

    Raises :class:`~aiguilleur.errors.CaseFormatError` for a file of another
    format or version, a missing or malformed field (named), or one needing a
    feature that this version does not build.
    """
    import lightgbm as lgb

    p = str(path)
    doc = _load_json(path, "a saved forecaster")
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise CaseFormatError("not a saved aiguilleur forecaster", p)
    if doc.get("format_version") != FORMAT_VERSION:
        raise CaseFormatError(
            f"saved with format version {str(doc.get('format_version'))[:20]}; this version "
            f"of aiguilleur reads version {FORMAT_VERSION}",
            p,
        )

    def need(key: str, kind: type | tuple[type, ...], what: str) -> Any:
        if key not in doc:
            raise CaseFormatError(f"field {key!r}: missing", p)
        v = doc[key]
        if not isinstance(v, kind) or isinstance(v, bool):
            raise CaseFormatError(f"field {key!r}: expected {what}, got {type(v).__name__}", p)
        return v

    raw = dict(need("settings", dict, "an object"))
    known_fields = {f.name for f in fields(ForecastSettings)}
    unknown = sorted(str(k)[:40] for k in raw if k not in known_fields)
    if unknown:
        raise CaseFormatError(f"field 'settings': unknown key(s) {', '.join(unknown)}", p)
    qs = raw.get("quantiles", DEFAULT_QUANTILES)
    if not isinstance(qs, list | tuple) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in qs
    ):
        raise CaseFormatError("field 'settings.quantiles': expected a list of numbers", p)
    raw["quantiles"] = tuple(qs)
    try:
        settings = ForecastSettings(**raw)
    except ValidationError as e:
        raise CaseFormatError(f"field 'settings': {e}", p) from None
    except (TypeError, ValueError) as e:  # a value of the wrong type deep inside
        raise CaseFormatError(f"field 'settings': bad value ({type(e).__name__})", p) from None
    feats = need("features", list, "a list of names")
    if not all(isinstance(x, str) for x in feats):
        raise CaseFormatError("field 'features': expected a list of names", p)
    features = tuple(feats)
    sh = need("shifts", list, "a list of numbers")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in sh):
        raise CaseFormatError("field 'shifts': expected a list of numbers", p)
    shifts = np.asarray(sh, dtype=np.float64)
    if not np.isfinite(shifts).all():
        raise CaseFormatError("field 'shifts': a value is not finite", p)
    model_strings = need("boosters", list, "a list of LightGBM models")
    if not all(isinstance(x, str) and x.startswith("tree\n") for x in model_strings):
        raise CaseFormatError("field 'boosters': expected a list of LightGBM model strings", p)
    target = need("target", str, "a column name")
    temperature = doc.get("temperature")
    if temperature is not None and not isinstance(temperature, str):
        raise CaseFormatError("field 'temperature': expected a column name or null", p)
    tu = need("trained_until", str, "a timestamp")
    try:
        trained_until = np.datetime64(tu, "h")
    except ValueError:
        raise CaseFormatError(f"field 'trained_until': cannot read {tu[:40]!r}", p) from None
    known = FEATURES[settings.temperature]
    missing = [f for f in features if f not in known]
    if missing:
        raise CaseFormatError(
            f"the model needs feature(s) {', '.join(m[:40] for m in missing[:5])} that this "
            f"version of aiguilleur does not build for the {settings.temperature} setting",
            p,
        )
    if features != known:
        absent = [f for f in known if f not in features]
        raise CaseFormatError(
            f"the model's features differ from this version's {settings.temperature} set "
            f"(not in the model: {', '.join(absent) or 'none'}; order differs otherwise)",
            p,
        )
    if settings.temperature != "none" and temperature is None:
        raise CaseFormatError(
            f"field 'temperature': the {settings.temperature} model needs a temperature column", p
        )
    want = len(settings.quantiles) + (settings.median_loss == "l2+quantile")
    if settings.model == "lightgbm" and len(model_strings) != want:
        raise CaseFormatError(f"{len(model_strings)} boosters where {want} were expected", p)
    try:
        boosters = tuple(lgb.Booster(model_str=m) for m in model_strings)
    except Exception as e:  # LightGBM raises its own error type on a corrupt model string
        msg = " ".join(str(e).split())[:80]
        raise CaseFormatError(f"field 'boosters': not a LightGBM model ({msg})", p) from None
    for b in boosters:
        if tuple(b.feature_name()) != features:
            raise CaseFormatError("a booster's features differ from the listed ones", p)
    if shifts.shape != (len(settings.quantiles),):
        raise CaseFormatError("shifts: one per quantile expected", p)
    return Forecaster(
        settings=settings,
        features=features,
        boosters=boosters,
        shifts=shifts,
        target_name=target,
        temperature_name=temperature,
        trained_until=trained_until,
    )
