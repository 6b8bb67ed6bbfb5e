"""Day-ahead probabilistic forecasts of demand and wind power.

``fit`` trains a forecaster on an hourly history, ``predict`` issues the
forecast of the next day at the issue hour (12:00 on D-1 by default) as a tidy
table of quantiles, ``backtest`` replays every day of a test period with
rolling refits and calibration. Wind power from numerical weather forecasts is
in :mod:`aiguilleur.forecast.wind`.

This package is a leaf: it imports neither ``grid``, ``logistics`` nor ``health``.
"""

from __future__ import annotations

from aiguilleur.forecast.backtest import (
    BacktestResult,
    BacktestSettings,
    Scores,
    backtest,
    pinball_loss,
    scores,
)
from aiguilleur.forecast.features import FEATURES, feature_names
from aiguilleur.forecast.io import (
    Gap,
    HourlySeries,
    read_series,
    sample_series,
    sample_series_path,
    series_from_frame,
)
from aiguilleur.forecast.models import (
    Forecaster,
    ForecastSettings,
    fit,
    load_model,
    predict,
    save_model,
)

__all__ = [
    "FEATURES",
    "BacktestResult",
    "BacktestSettings",
    "ForecastSettings",
    "Forecaster",
    "Gap",
    "HourlySeries",
    "Scores",
    "backtest",
    "feature_names",
    "fit",
    "load_model",
    "pinball_loss",
    "predict",
    "read_series",
    "sample_series",
    "sample_series_path",
    "save_model",
    "scores",
    "series_from_frame",
]
