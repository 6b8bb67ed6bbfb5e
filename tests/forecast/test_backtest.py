"""Rolling-origin backtest on the sample; metrics against direct formulas."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aiguilleur.errors import ValidationError
from aiguilleur.forecast import (
    BacktestResult,
    BacktestSettings,
    backtest,
    pinball_loss,
    sample_series,
    scores,
)

from ._util import FAST

OPTS = BacktestSettings(start="2014-01-20", end="2014-02-28", refit="monthly")


@cache
def result() -> BacktestResult:
    return backtest(sample_series(), FAST, OPTS)


def test_backtest_covers_every_day_and_beats_seasonal_naive() -> None:
    r = result()
    assert r.days[0] == np.datetime64("2014-01-20") and r.days[-1] == np.datetime64("2014-02-28")
    assert r.days.size == 40 and r.pred.shape == (40, 24, 5)
    assert r.refits == 3  # December (warm-up days), January, February
    assert r.baseline is not None
    assert r.model.mape_pct < r.baseline.mape_pct
    assert r.model.pinball < r.baseline.pinball
    assert np.all(np.diff(r.pred, axis=-1) >= 0)
    s = sample_series()
    i = s.index_of("2014-01-20T00")
    np.testing.assert_array_equal(r.actual.reshape(-1), s.target[i : i + 40 * 24])


def test_scores_against_direct_formulas() -> None:
    r = result()
    a = r.actual.reshape(-1)
    p = r.pred.reshape(-1, 5)
    med = p[:, 2]
    assert r.model.mape_pct == pytest.approx(100 * np.mean(np.abs(med - a) / a))
    assert r.model.rmse == pytest.approx(np.sqrt(np.mean((med - a) ** 2)))
    pin = np.mean(
        [
            np.mean([max(q * (y - v), (q - 1) * (y - v)) for y, v in zip(a, p[:, j], strict=True)])
            for j, q in enumerate(r.quantiles)
        ]
    )
    assert r.model.pinball == pytest.approx(pin)
    assert r.model.coverage_80 == pytest.approx(np.mean((a >= p[:, 1]) & (a <= p[:, 3])))
    assert r.model.coverage_90 == pytest.approx(np.mean((a >= p[:, 0]) & (a <= p[:, 4])))
    by_hour = pd.DataFrame({"h": np.tile(np.arange(24), 40), "e": np.abs(med - a) / a})
    np.testing.assert_allclose(
        r.model.mape_by_hour_pct, 100 * by_hour.groupby("h")["e"].mean().to_numpy()
    )


def test_pinball_of_a_perfect_forecast_is_zero_and_crps_of_a_point() -> None:
    y = np.array([1.0, 2.0, 3.0])
    q = np.array([0.1, 0.5, 0.9])
    assert np.all(pinball_loss(y, np.repeat(y[:, None], 3, axis=1), q) == 0)
    # a point forecast off by 1: pinball 0.9, 0.5, 0.1 for q = 0.1, 0.5, 0.9 -> mean 0.5
    sc = scores(np.array([[1.0]]), np.array([[[2.0, 2.0, 2.0]]]), q)
    assert sc.pinball == pytest.approx(0.5)
    assert sc.crps == pytest.approx(1.0)  # CRPS of a point forecast is its absolute error


def test_model_trained_only_on_the_past() -> None:
    """Changing the outcomes of the last test month leaves earlier forecasts unchanged."""
    s = sample_series()
    i = s.index_of("2014-02-01T00")
    y = s.target.copy()
    y[i:] *= 1.5
    r2 = backtest(replace(s, target=y), FAST, OPTS)
    r = result()
    # January 20-31 forecast from data before Feb 1 (issue at noon on Jan 31 for Feb 1).
    np.testing.assert_array_equal(r.pred[:12], r2.pred[:12])
    assert not np.array_equal(r.pred[13:], r2.pred[13:])


def test_plots_are_svg(tmp_path: Path) -> None:
    paths = result().write_plots(tmp_path / "plots", week_start="2014-02-03")
    assert [p.name for p in paths] == ["fan_chart.svg", "error_by_hour.svg"]
    for p in paths:
        root = ET.fromstring(p.read_text())
        assert root.tag.endswith("svg")
    fan = paths[0].read_text()
    assert "2014-02-03" in fan and "2014-02-09" in fan and fan.count("<polygon") == 2
    assert paths[1].read_text().count("<rect") >= 1 + 48


def test_to_frame_is_tidy() -> None:
    f = result().to_frame()
    assert list(f.columns) == ["timestamp", "quantile", "value", "actual"]
    assert len(f) == 40 * 24 * 5


def test_bad_periods() -> None:
    s = sample_series()
    with pytest.raises(ValidationError, match="before start"):
        backtest(s, FAST, BacktestSettings(start="2014-02-10", end="2014-02-01"))
    with pytest.raises(ValidationError, match="starts 2013-06-01"):
        backtest(s, FAST, BacktestSettings(start="2013-07-01", end="2013-07-10"))
    with pytest.raises(ValidationError, match="no full calendar year"):
        backtest(s, FAST)
    with pytest.raises(ValidationError, match="refit"):
        BacktestSettings(refit="hourly")  # type: ignore[arg-type]
