"""Day-ahead features: what is known at the issue time, and nothing more."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from aiguilleur.forecast import feature_names
from aiguilleur.forecast.features import day_ahead_features

T0 = np.datetime64("2013-06-01T00", "h")
N = 24 * 40


def series(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = np.arange(N)
    y = 3000 + 500 * np.sin(2 * np.pi * h / 24) + rng.normal(0, 50, N)
    temp = 60 + 15 * np.sin(2 * np.pi * (h - 6) / 24) + rng.normal(0, 2, N)
    return y, temp


def feats(y: np.ndarray, temp: np.ndarray, day: int, mode: str) -> np.ndarray:
    f = day_ahead_features(T0, y, temp, np.array([24 * day]), mode)  # type: ignore[arg-type]
    return np.concatenate([f.X.reshape(-1), f.level])


@settings(max_examples=40, deadline=None)
@given(
    day=st.integers(min_value=16, max_value=38),
    offset=st.integers(min_value=0, max_value=24 * 40),
    scale=st.floats(min_value=-1e4, max_value=1e4, allow_nan=False).filter(lambda x: x != 0),
    which=st.sampled_from(["target", "temperature", "both"]),
    mode=st.sampled_from(["ex-ante", "ex-post", "none"]),
)
def test_no_leakage_perturbing_after_the_issue_time(
    day: int, offset: int, scale: float, which: str, mode: str
) -> None:
    """Perturbing any value after the issue time leaves the features unchanged.

    In the ex-post setting the temperature from the issue time to the end of
    day D is the (perfect) weather forecast, so only temperatures after day D
    are perturbed there.
    """
    y, temp = series()
    issue = 24 * day - 24 + 12  # 12:00 on D-1: first unknown hour
    start_t = 24 * day + 24 if mode == "ex-post" else issue
    base = feats(y, temp, day, mode)
    y2, t2 = y.copy(), temp.copy()
    ky = issue + offset % (N - issue)
    kt = start_t + offset % max(N - start_t, 1)
    if which in ("target", "both"):
        y2[ky:] += scale
        y2[ky] = np.nan
    if which in ("temperature", "both") and kt < N:
        t2[kt:] += scale
    np.testing.assert_array_equal(feats(y2, t2, day, mode), base)


def test_perturbing_before_the_issue_time_does_change_features() -> None:
    # The mask is not hiding everything: the last known hour is used.
    y, temp = series()
    day = 20
    issue = 24 * day - 12
    y2 = y.copy()
    y2[issue - 1] += 100.0
    assert not np.array_equal(feats(y, temp, day, "ex-ante"), feats(y2, temp, day, "ex-ante"))


def test_lags_against_pandas_shift() -> None:
    """Target lags from an independent pandas computation on a timestamp index."""
    y, temp = series(1)
    day = 30
    f = day_ahead_features(T0, y, temp, np.array([24 * day]), "ex-post")
    X = pd.DataFrame(f.X, columns=f.names)
    idx = pd.date_range(str(T0), periods=N, freq="h")
    s = pd.Series(y, index=idx)
    target_hours = idx[24 * day : 24 * day + 24]
    issue = target_hours[0] - pd.Timedelta(hours=12)
    level = s[(s.index >= issue - pd.Timedelta(hours=168)) & (s.index < issue)].mean()
    np.testing.assert_allclose(f.level, level)
    lag24 = s.shift(24).reindex(target_hours).to_numpy()
    lag48 = s.shift(48).reindex(target_hours).to_numpy()
    latest = np.where(target_hours.hour < 12, lag24, lag48)  # D-1 is known until 12:00
    np.testing.assert_allclose(X["load_same_hour_latest"] * level, latest)
    np.testing.assert_allclose(X["load_lag_168h"] * level, s.shift(168).reindex(target_hours))
    np.testing.assert_allclose(X["load_last"] * level, s[issue - pd.Timedelta(hours=1)])
    tt = pd.Series(temp, index=idx)
    np.testing.assert_allclose(X["temp"], tt.reindex(target_hours))
    np.testing.assert_allclose(X["temp_lag_3h"], tt.shift(3).reindex(target_hours))
    np.testing.assert_allclose(X["temp_day_mean"], tt.reindex(target_hours).mean())
    np.testing.assert_allclose(
        X["temp_mean_6h"], tt.rolling(6).mean().reindex(target_hours), rtol=1e-12
    )
    ema = tt.ewm(alpha=0.02, adjust=False).mean()
    np.testing.assert_allclose(X["temp_ema_slow"], ema.reindex(target_hours), rtol=1e-9)
    np.testing.assert_allclose(X["hdd"], np.maximum(65 - tt.reindex(target_hours), 0))


def test_calendar_and_holidays() -> None:
    y, temp = series()
    # 2013-07-04 (Independence Day, a Thursday) is day 33 of the series.
    f = day_ahead_features(T0, y, temp, np.array([24 * 33, 24 * 34]), "ex-ante")
    X = pd.DataFrame(f.X, columns=f.names)
    assert list(X["holiday"].iloc[[0, 24]]) == [1.0, 0.0]
    assert X["holiday_before"].iloc[24] == 1.0
    assert list(X["weekday"].iloc[[0, 24]]) == [3.0, 4.0]  # Thursday, Friday
    assert X["day_of_year"].iloc[0] == pd.Timestamp("2013-07-04").dayofyear - 1
    assert list(X["hour"].iloc[:24]) == list(range(24))


def test_feature_sets_nest() -> None:
    none, ante, post = (set(feature_names(m)) for m in ("none", "ex-ante", "ex-post"))
    assert none < ante < post
    assert "temp" not in ante and "temp" in post
