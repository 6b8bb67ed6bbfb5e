"""fit / predict / save / load of the day-ahead forecaster, on the bundled sample."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.forecast import (
    Forecaster,
    ForecastSettings,
    HourlySeries,
    fit,
    load_model,
    predict,
    sample_series,
    save_model,
)
from aiguilleur.forecast.models import predict_quantiles

from ._util import FAST

ISSUE = "2014-02-20T12"


@cache
def history() -> HourlySeries:
    return sample_series().slice_time("2013-06-01T00", "2014-02-10T00")


@cache
def model(mode: str = "ex-ante") -> Forecaster:
    return fit(history(), replace(FAST, temperature=mode))  # type: ignore[arg-type]


def test_predict_is_a_tidy_frame_of_non_crossing_quantiles() -> None:
    s = sample_series()
    frame = predict(model(), s, ISSUE)
    assert list(frame.columns) == ["timestamp", "quantile", "value"]
    assert len(frame) == 24 * 5
    wide = frame.pivot(index="timestamp", columns="quantile", values="value")
    assert str(wide.index[0]) == "2014-02-21 00:00:00"
    assert str(wide.index[-1]) == "2014-02-21 23:00:00"
    assert list(wide.columns) == [0.05, 0.1, 0.5, 0.9, 0.95]
    assert (np.diff(wide.to_numpy(), axis=1) >= 0).all()
    # A sane forecast of the day: the median within 15 % of the outcome every hour.
    day = s.slice_time("2014-02-21T00", "2014-02-22T00").target
    assert np.all(np.abs(wide[0.5].to_numpy() / day - 1) < 0.15)


@pytest.mark.parametrize("mode", ["ex-ante", "ex-post"])
def test_no_leakage_through_predict(mode: str) -> None:
    """Every value after the issue time changed: the forecast does not move."""
    s = sample_series()
    m = model(mode)
    i = s.index_of(ISSUE)
    rng = np.random.default_rng(3)
    y = s.target.copy()
    y[i:] = rng.uniform(0, 1e5, y.size - i)
    temp = s.temperature.copy()  # type: ignore[union-attr]
    end_d = i + 36 if mode == "ex-post" else i  # ex-post: the weather forecast of D is input
    temp[end_d:] = rng.uniform(-50, 150, temp.size - end_d)
    s2 = replace(s, target=y, temperature=temp)
    _, a = predict_quantiles(m, s, ISSUE)
    _, b = predict_quantiles(m, s2, ISSUE)
    np.testing.assert_array_equal(a, b)
    # and a history cut at the issue time gives the same forecast (ex-ante)
    if mode == "ex-ante":
        cut = s.slice_time(s.start, ISSUE)
        _, c = predict_quantiles(m, cut, ISSUE)
        np.testing.assert_array_equal(a, c)


def test_ex_post_needs_the_temperature_of_day_d() -> None:
    s = sample_series()
    m = model("ex-post")
    cut = s.slice_time(s.start, ISSUE)
    with pytest.raises(ValidationError, match="temperature_forecast"):
        predict(m, cut, ISSUE)
    with pytest.raises(ValidationError, match="expected 36"):
        predict(m, cut, ISSUE, temperature_forecast=np.zeros(24))
    i = s.index_of(ISSUE)
    assert s.temperature is not None
    a = predict(m, cut, ISSUE, temperature_forecast=s.temperature[i : i + 36])
    b = predict(m, s, ISSUE)
    np.testing.assert_array_equal(a["value"], b["value"])


def test_save_load_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "m.json"
    m = model()
    save_model(m, p)
    m2 = load_model(p)
    assert m2.features == m.features and m2.settings == m.settings
    s = sample_series()
    np.testing.assert_array_equal(
        predict(m, s, ISSUE)["value"].to_numpy(), predict(m2, s, ISSUE)["value"].to_numpy()
    )


def test_load_refuses_missing_features_and_other_versions(tmp_path: Path) -> None:
    p = tmp_path / "m.json"
    save_model(model(), p)
    doc = json.loads(p.read_text())
    bad = dict(doc, features=[*doc["features"], "humidity_lag_24h"])
    (tmp_path / "f.json").write_text(json.dumps(bad))
    with pytest.raises(CaseFormatError, match="humidity_lag_24h"):
        load_model(tmp_path / "f.json")
    short = dict(doc, features=doc["features"][:-1])
    (tmp_path / "s.json").write_text(json.dumps(short))
    with pytest.raises(CaseFormatError, match="not in the model"):
        load_model(tmp_path / "s.json")
    (tmp_path / "v.json").write_text(json.dumps(dict(doc, format_version=99)))
    with pytest.raises(CaseFormatError, match="format version 99"):
        load_model(tmp_path / "v.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(CaseFormatError, match=r"x\.json"):
        load_model(tmp_path / "x.json")


def test_predict_without_the_temperature_column_is_a_clear_error() -> None:
    s = sample_series()
    no_temp = replace(s, temperature=None, temperature_name=None)
    with pytest.raises(ValidationError, match="needs the temperature column 'T'"):
        predict(model(), no_temp, ISSUE)


def test_issue_time_must_be_at_the_issue_hour() -> None:
    with pytest.raises(ValidationError, match="issued at 12:00"):
        predict(model(), sample_series(), "2014-02-20T09")


def test_seasonal_naive_median_is_last_weeks_value_plus_a_constant_shift() -> None:
    s = history()
    m = fit(s, replace(FAST, model="seasonal_naive"))
    assert m.boosters == ()
    full = sample_series()
    t, pred = predict_quantiles(m, full, ISSUE)
    i = full.index_of(t[0])
    week_ago = full.target[i - 168 : i - 168 + 24]
    i_iss = full.index_of(ISSUE)
    level = np.mean(full.target[i_iss - 168 : i_iss])
    np.testing.assert_allclose(pred[:, 2], week_ago + level * m.shifts[2], rtol=1e-12)


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"quantiles": (0.1, 0.9)}, "median"),
        ({"quantiles": (0.5, 0.1)}, "increasing"),
        ({"model": "prophet"}, "model"),
        ({"temperature": "forecast"}, "temperature mode"),
        ({"issue_hour": 24}, "issue_hour"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"training_days": 3}, "training_days"),
    ],
)
def test_settings_are_validated(kw: dict[str, object], msg: str) -> None:
    with pytest.raises(ValidationError, match=msg):
        ForecastSettings(**kw)  # type: ignore[arg-type]


def test_too_short_a_history_is_a_clear_error() -> None:
    s = sample_series().slice_time("2013-06-01T00", "2013-07-01T00")
    with pytest.raises(ValidationError, match="calibration needs"):
        fit(s, FAST)
