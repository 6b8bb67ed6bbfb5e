"""Rolling-origin backtest of day-ahead forecasts, metrics and plots.

Protocol: for every day D of the test period, a forecast issued at
``issue_hour`` on D-1 for the 24 hours of D, from what is known at the issue
time. The model is refitted at the start of each refit period (a month by
default) on the days fully observed before the first issue time of that
period, so every forecast comes from a model trained only on earlier data.
The quantiles of day D are calibrated on the out-of-sample forecasts of the
``calibration_days`` days before it whose outcome was known at its issue time
(days up to D-2); forecasting starts that many days before the test period so
that its first day already has a full window. The seasonal-naive reference
(same hour one week before, calibrated the same way) runs on the same days.

Metrics (per model): MAPE (%) and RMSE of the median, pinball loss averaged
over the quantiles, CRPS approximated by twice the mean pinball loss over the
quantiles, and the coverage of the central 80 % (P10-P90) and 90 % (P05-P95)
intervals.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from aiguilleur._files import atomic_write_bytes
from aiguilleur.errors import ValidationError
from aiguilleur.forecast.calibration import apply_shifts, rolling_shifts
from aiguilleur.forecast.io import HourlySeries, _expect
from aiguilleur.forecast.models import (
    ForecastSettings,
    _check_columns,
    _midnights,
    _raw_predict,
    _train_boosters,
    _training_days,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BacktestResult",
    "BacktestSettings",
    "Scores",
    "backtest",
    "pinball_loss",
    "scores",
]

FloatArray = npt.NDArray[np.float64]
Refit = Literal["daily", "weekly", "monthly", "quarterly", "yearly", "once"]


@dataclass(frozen=True)
class BacktestSettings:
    """The test period and how often the model is refitted.

    Parameters
    ----------
    start, end
        First and last target day (inclusive, ``YYYY-MM-DD``). Default: the
        last full calendar year of the series.
    refit
        Refit the model at the start of each ``"daily"``, ``"weekly"``,
        ``"monthly"``, ``"quarterly"`` or ``"yearly"`` period, or ``"once"``.
    baseline
        Also run the seasonal-naive reference.
    """

    start: str | None = None
    end: str | None = None
    refit: Refit = "monthly"
    baseline: bool = True

    def __post_init__(self) -> None:
        if self.refit not in ("daily", "weekly", "monthly", "quarterly", "yearly", "once"):
            raise ValidationError(f"refit: unknown period {self.refit!r}")
        for name in ("start", "end"):
            v = getattr(self, name)
            if v is not None and not isinstance(v, str):
                raise ValidationError(f"{name}: expected a date YYYY-MM-DD, got {v!r}")
            if v is not None:
                try:
                    np.datetime64(v, "D")
                except ValueError:
                    raise ValidationError(
                        f"{name}: expected a date YYYY-MM-DD, got {v[:40]!r}"
                    ) from None
        if (
            self.start is not None
            and self.end is not None
            and np.datetime64(self.end, "D") < np.datetime64(self.start, "D")
        ):
            raise ValidationError(
                f"end {self.end} is before start {self.start}: an empty test period"
            )
        if not isinstance(self.baseline, bool):
            raise ValidationError(f"baseline: expected True or False, got {self.baseline!r}")


@dataclass(frozen=True)
class Scores:
    """Accuracy of one model over the backtest.

    Attributes
    ----------
    mape_pct
        Mean absolute percentage error of the median, in percent.
    rmse
        Root mean square error of the median, in the target's unit.
    mae
        Mean absolute error of the median.
    pinball
        Pinball loss averaged over the quantiles and hours.
    crps
        CRPS approximated from the quantiles (twice the mean pinball loss).
    coverage_80, coverage_90
        Fractions of outcomes inside P10-P90 and P05-P95 (``NaN`` if absent).
    mape_by_hour_pct
        MAPE of the median by hour of day (24 values).
    """

    mape_pct: float
    rmse: float
    mae: float
    pinball: float
    crps: float
    coverage_80: float
    coverage_90: float
    mape_by_hour_pct: FloatArray

    def as_dict(self) -> dict[str, Any]:
        """The scores as a plain dictionary (the per-hour MAPE as a list)."""
        return {
            "mape_pct": self.mape_pct,
            "rmse": self.rmse,
            "mae": self.mae,
            "pinball": self.pinball,
            "crps": self.crps,
            "coverage_80": self.coverage_80,
            "coverage_90": self.coverage_90,
            "mape_by_hour_pct": [float(x) for x in self.mape_by_hour_pct],
        }


def pinball_loss(actual: FloatArray, pred: FloatArray, quantiles: FloatArray) -> FloatArray:
    """Pinball loss of each quantile forecast: ``pred`` is ``(..., n_q)``."""
    try:
        q = np.asarray(quantiles, dtype=np.float64)
        d = np.asarray(actual, dtype=np.float64)[..., None] - np.asarray(pred, dtype=np.float64)
        return np.maximum(q * d, (q - 1.0) * d)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(
            "pinball_loss: expected arrays of numbers, pred (..., n_q) matching actual (...) "
            "and n_q quantiles"
        ) from None


def _interval(actual: FloatArray, pred: FloatArray, q: FloatArray, lo: float, hi: float) -> float:
    ql = np.flatnonzero(np.isclose(q, lo))
    qh = np.flatnonzero(np.isclose(q, hi))
    if not ql.size or not qh.size:
        return float("nan")
    inside = (actual >= pred[..., ql[0]]) & (actual <= pred[..., qh[0]])
    return float(np.mean(inside))


def scores(actual: FloatArray, pred: FloatArray, quantiles: npt.ArrayLike) -> Scores:
    """Scores of quantiles ``pred`` ``(n_days, 24, n_q)`` of outcomes ``actual`` ``(n_days, 24)``.

    Hours whose outcome is missing are left out.
    """
    try:
        q = np.asarray(quantiles, dtype=np.float64)
        a = np.asarray(actual, dtype=np.float64)
        p = np.asarray(pred, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError("scores: expected arrays of numbers") from None
    if a.ndim != 2 or p.shape != (*a.shape, q.size) or q.ndim != 1:
        raise ValidationError(
            f"scores: expected actual (n_days, 24) and pred (n_days, 24, n_q), got {a.shape} "
            f"and {p.shape} with {q.size} quantile(s)"
        )
    if not np.isclose(q, 0.5).any():
        raise ValidationError("scores: the quantiles must include the median (0.5)")
    ok = np.isfinite(a) & np.all(np.isfinite(p), axis=-1)
    if not ok.any():
        raise ValidationError("scores: no hour with both an outcome and a forecast")
    med = p[..., int(np.flatnonzero(np.isclose(q, 0.5))[0])]
    err = med - a
    with np.errstate(invalid="ignore", divide="ignore"):
        ape = np.where(ok, np.abs(err) / np.abs(a), np.nan)
    pin = pinball_loss(a[ok], p[ok], q)
    with warnings.catch_warnings():  # an hour of the day with no outcome: NaN, said so by callers
        warnings.simplefilter("ignore", RuntimeWarning)
        by_hour = np.array([np.nanmean(ape[:, h]) * 100.0 for h in range(a.shape[1])])
        mape = float(np.nanmean(ape) * 100.0)
    return Scores(
        mape_pct=mape,
        rmse=float(np.sqrt(np.mean(err[ok] ** 2))),
        mae=float(np.mean(np.abs(err[ok]))),
        pinball=float(pin.mean()),
        crps=float(2.0 * pin.mean()),
        coverage_80=_interval(a[ok], p[ok], q, 0.1, 0.9),
        coverage_90=_interval(a[ok], p[ok], q, 0.05, 0.95),
        mape_by_hour_pct=by_hour,
    )


@dataclass(frozen=True)
class BacktestResult:
    """Forecasts and scores of a rolling-origin backtest.

    Attributes
    ----------
    days
        Target days, ``datetime64[D]``.
    quantiles
        Quantile levels.
    actual
        Outcomes, ``(n_days, 24)``.
    pred
        Calibrated quantiles of the model, ``(n_days, 24, n_q)``.
    raw_pred
        The same before calibration.
    baseline_pred
        Calibrated quantiles of the seasonal-naive reference (or ``None``).
    model, baseline, raw
        Scores of the model, of the reference and of the uncalibrated model.
    settings
        The forecaster's settings.
    refits
        How many times the model was trained.
    fit_time_s
        Total training time.
    """

    days: npt.NDArray[np.datetime64]
    quantiles: FloatArray
    actual: FloatArray
    pred: FloatArray
    raw_pred: FloatArray
    baseline_pred: FloatArray | None
    model: Scores
    baseline: Scores | None
    raw: Scores
    settings: ForecastSettings
    refits: int
    fit_time_s: float
    target_name: str = field(default="load")

    @property
    def missing_forecast_hours(self) -> int:
        """Test hours for which no forecast could be made (missing history or weather)."""
        return int((~np.all(np.isfinite(self.pred), axis=-1)).sum())

    @property
    def missing_outcome_hours(self) -> int:
        """Test hours whose outcome is missing from the data (not scored)."""
        return int((~np.isfinite(self.actual)).sum())

    @property
    def status(self) -> str:
        """``feasible`` when every test hour was forecast and scored, else ``partial``."""
        return (
            "partial" if self.missing_forecast_hours or self.missing_outcome_hours else "feasible"
        )

    @property
    def ok(self) -> bool:
        """True when every hour of the test period was forecast and scored."""
        return self.status == "feasible"

    def missing(self) -> list[str]:
        """What the backtest could not do, in words (empty when :attr:`ok`)."""
        out: list[str] = []
        n = self.actual.size
        if self.missing_forecast_hours:
            out.append(
                f"{self.missing_forecast_hours} of {n} test hours have no forecast "
                "(missing history or temperature before their issue time)"
            )
        if self.missing_outcome_hours:
            out.append(
                f"{self.missing_outcome_hours} of {n} test hours have no outcome in the data "
                "(not scored)"
            )
        return out

    def summary(self) -> dict[str, Any]:
        """The headline figures (the CLI's ``--json`` keys)."""
        out: dict[str, Any] = {
            "status": self.status,
            "ok": self.ok,
            "hours": int(self.actual.size),
            "missing_forecast_hours": self.missing_forecast_hours,
            "missing_outcome_hours": self.missing_outcome_hours,
            "missing": self.missing(),
            "model": self.settings.model,
            "temperature": self.settings.temperature,
            "first_day": str(self.days[0]),
            "last_day": str(self.days[-1]),
            "days": int(self.days.size),
            "mape": self.model.mape_pct,
            "rmse": self.model.rmse,
            "pinball": self.model.pinball,
            "crps": self.model.crps,
            "coverage_80": self.model.coverage_80,
            "coverage_90": self.model.coverage_90,
            "uncalibrated_coverage_80": self.raw.coverage_80,
            "refits": self.refits,
            "fit_time_s": self.fit_time_s,
        }
        if self.baseline is not None:
            out["baseline"] = "seasonal_naive"
            out["baseline_mape"] = self.baseline.mape_pct
            out["baseline_rmse"] = self.baseline.rmse
            out["baseline_pinball"] = self.baseline.pinball
        return out

    def to_frame(self) -> pd.DataFrame:
        """Tidy forecasts: ``timestamp``, ``quantile``, ``value``, ``actual``."""
        import pandas as pd

        nq = self.quantiles.size
        t = (
            self.days.astype("datetime64[h]")[:, None] + np.arange(24).astype("timedelta64[h]")
        ).reshape(-1)
        return pd.DataFrame(
            {
                "timestamp": np.repeat(t.astype("datetime64[ns]"), nq),
                "quantile": np.tile(self.quantiles, t.size),
                "value": self.pred.reshape(-1),
                "actual": np.repeat(self.actual.reshape(-1), nq),
            }
        )

    def write_plots(self, directory: str | Path, week_start: str | None = None) -> list[Path]:
        """Write ``fan_chart.svg`` (one week) and ``error_by_hour.svg``; return their paths.

        ``week_start``: the first day of the week shown (default: the week of
        the largest daily error of the median).
        """
        from aiguilleur.forecast.plots import error_by_hour_svg, fan_chart_svg

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if week_start is None:
            med = self.pred[..., int(np.flatnonzero(np.isclose(self.quantiles, 0.5))[0])]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                daily = np.nanmean(np.abs(med - self.actual), axis=1)
            worst = int(np.nanargmax(daily)) if np.isfinite(daily).any() else 0
            i0 = int(np.clip(worst - 3, 0, max(self.days.size - 7, 0)))
        else:
            i0 = int(np.searchsorted(self.days, np.datetime64(week_start, "D")))
            if i0 >= self.days.size:
                raise ValidationError(f"week start {week_start}: after the last backtest day")
        sl = slice(i0, i0 + 7)
        fan = fan_chart_svg(
            self.days[sl], self.actual[sl], self.pred[sl], self.quantiles, self.target_name
        )
        base = None if self.baseline is None else self.baseline.mape_by_hour_pct
        err = error_by_hour_svg(self.model.mape_by_hour_pct, base)
        paths = [d / "fan_chart.svg", d / "error_by_hour.svg"]
        atomic_write_bytes(paths[0], fan.encode())
        atomic_write_bytes(paths[1], err.encode())
        return paths


def _period_key(days: npt.NDArray[np.datetime64], refit: Refit) -> npt.NDArray[np.int64]:
    d = days.astype("datetime64[D]")
    if refit == "daily":
        return d.astype(np.int64)
    if refit == "weekly":
        return (d.astype(np.int64) + 3) // 7  # weeks starting on Monday
    if refit == "monthly":
        return d.astype("datetime64[M]").astype(np.int64)
    if refit == "quarterly":
        return d.astype("datetime64[M]").astype(np.int64) // 3
    if refit == "yearly":
        return d.astype("datetime64[Y]").astype(np.int64)
    return np.zeros(d.size, dtype=np.int64)


def _default_period(series: HourlySeries) -> tuple[np.datetime64, np.datetime64]:
    first = series.time[0].astype("datetime64[D]")
    last_full = (series.end.astype("datetime64[D]") - np.timedelta64(1, "D")).astype(
        "datetime64[Y]"
    )
    # the last calendar year fully inside the series
    year = last_full if series.end >= (last_full + 1).astype("datetime64[h]") else last_full - 1
    y0 = year.astype("datetime64[D]")
    y1 = (year + 1).astype("datetime64[D]") - np.timedelta64(1, "D")
    if y0 <= first:
        raise ValidationError(
            "backtest: the series holds no full calendar year after some history; "
            "give the test period (start and end)"
        )
    return y0, y1


def backtest(
    series: HourlySeries,
    settings: ForecastSettings | None = None,
    options: BacktestSettings | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Rolling-origin day-ahead backtest (see the module notes).

    Parameters
    ----------
    series
        The whole series; each forecast reads only what precedes its issue time.
    settings
        The forecaster (default: LightGBM, ex-ante).
    options
        Test period, refit frequency, reference model.
    progress
        Called as ``progress(done, total)`` after each refit.
    """
    _expect(series, HourlySeries, "series")
    _expect(settings, ForecastSettings, "settings", optional=True)
    _expect(options, BacktestSettings, "options", optional=True)
    import time as _time

    s = settings or ForecastSettings()
    o = options or BacktestSettings()
    _check_columns(series, s)
    if o.start is None and o.end is None:
        d_start, d_end = _default_period(series)
    else:
        d_start = np.datetime64(o.start or str(series.time[0].astype("datetime64[D]")), "D")
        d_end = np.datetime64(
            o.end or str((series.end - np.timedelta64(24, "h")).astype("datetime64[D]")), "D"
        )
    if d_end < d_start:
        raise ValidationError(f"backtest: end {d_end} is before start {d_start}")
    mid = _midnights(series)
    mid_day = series.time[mid].astype("datetime64[D]")
    warm = np.timedelta64(s.calibration_days, "D")
    keep = (mid_day >= d_start - warm) & (mid_day <= d_end) & (mid + 24 <= len(series))
    days = mid[keep]
    day_dates = mid_day[keep]
    test = day_dates >= d_start
    if not test.any():
        raise ValidationError(f"backtest: no complete day of the series in [{d_start}, {d_end}]")
    if mid_day[0] > d_start - warm - np.timedelta64(14, "D"):
        raise ValidationError(
            f"backtest: the series starts {mid_day[0]}; training and a "
            f"{s.calibration_days}-day calibration window need data from before "
            f"{d_start - warm - np.timedelta64(14, 'D')}"
        )

    nq = len(s.quantiles)
    q = np.array(s.quantiles)
    rel = np.full((days.size, 24, nq), np.nan)
    level = np.full((days.size, 24), np.nan)
    tidx = np.zeros((days.size, 24), dtype=np.int64)
    keys = _period_key(day_dates, o.refit)
    groups = np.flatnonzero(np.diff(keys, prepend=keys[0] - 1))
    bounds = [*groups.tolist(), days.size]
    fit_time = 0.0
    refits = 0
    for g in range(len(groups)):
        a, b = bounds[g], bounds[g + 1]
        first_issue = int(days[a]) - 24 + s.issue_hour
        boosters: tuple[Any, ...] = ()
        if s.model == "lightgbm":
            t0 = _time.perf_counter()
            boosters = _train_boosters(series, _training_days(series, first_issue, s), s)
            fit_time += _time.perf_counter() - t0
            refits += 1
        r, lv, ti = _raw_predict(boosters, s, series, series.temperature, days[a:b])
        rel[a:b], level[a:b], tidx[a:b] = r, lv, ti
        if progress is not None:
            progress(g + 1, len(groups))

    actual = series.target[tidx]
    raw_abs = rel * level[..., None]
    # Day j calibrates day i when it ended before i's issue time: j <= i - 2 days.
    issue = days - 24 + s.issue_hour
    usable = np.searchsorted(days + 24, issue, side="right").astype(np.int64)
    sh = rolling_shifts(actual, raw_abs, level, q, usable, s.calibration_days)
    pred = apply_shifts(raw_abs, level, sh[:, None, :])

    base_pred = None
    base_scores = None
    if o.baseline:
        bs = replace(s, model="seasonal_naive")
        br, blv, _ = _raw_predict((), bs, series, series.temperature, days)
        b_abs = br * blv[..., None]
        bsh = rolling_shifts(actual, b_abs, blv, q, usable, s.calibration_days)
        base_pred = apply_shifts(b_abs, blv, bsh[:, None, :])[test]
        base_scores = scores(actual[test], base_pred, q)

    return BacktestResult(
        days=day_dates[test],
        quantiles=q,
        actual=actual[test],
        pred=pred[test],
        raw_pred=np.sort(raw_abs[test], axis=-1),
        baseline_pred=base_pred,
        model=scores(actual[test], pred[test], q),
        baseline=base_scores,
        raw=scores(actual[test], np.sort(raw_abs[test], axis=-1), q),
        settings=s,
        refits=refits,
        fit_time_s=fit_time,
        target_name=series.target_name,
    )
