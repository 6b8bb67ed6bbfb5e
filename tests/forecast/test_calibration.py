"""Conformal calibration: shifts, coverage on held-out data, non-crossing."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import norm

from aiguilleur.forecast.calibration import (
    apply_shifts,
    non_crossing,
    quantile_shifts,
    rolling_shifts,
)

Q = np.array([0.05, 0.1, 0.5, 0.9, 0.95])


def test_shifts_recover_the_error_quantiles() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    actual = rng.normal(0.0, 2.0, n)
    pred = np.zeros((n, Q.size))  # a forecaster that always says 0
    shifts = quantile_shifts(actual, pred, np.ones(n), Q)
    np.testing.assert_allclose(shifts, norm.ppf(Q, scale=2.0), atol=0.03)


def test_calibrated_intervals_cover_held_out_data() -> None:
    """Overconfident raw quantiles, calibrated on the past, cover new data as stated."""
    rng = np.random.default_rng(1)
    n_days = 400
    level = np.full((n_days, 24), 1000.0)
    actual = level + rng.normal(0, 40, (n_days, 24))
    raw = level[..., None] + norm.ppf(Q)[None, None, :] * 15.0  # far too narrow
    usable = np.maximum(np.arange(n_days) - 1, 0)  # days up to D-2
    sh = rolling_shifts(actual, raw, level, Q, usable, 90)
    pred = apply_shifts(raw, level, sh[:, None, :])
    test = slice(100, None)
    inside80 = (actual[test] >= pred[test][..., 1]) & (actual[test] <= pred[test][..., 3])
    inside90 = (actual[test] >= pred[test][..., 0]) & (actual[test] <= pred[test][..., 4])
    raw80 = (actual[test] >= raw[test][..., 1]) & (actual[test] <= raw[test][..., 3])
    assert raw80.mean() < 0.6
    assert abs(inside80.mean() - 0.8) < 0.02
    assert abs(inside90.mean() - 0.9) < 0.02


def test_rolling_shifts_use_only_usable_days() -> None:
    rng = np.random.default_rng(2)
    n_days = 30
    actual = rng.normal(0, 1, (n_days, 24))
    pred = np.zeros((n_days, 24, Q.size))
    level = np.ones((n_days, 24))
    usable = np.maximum(np.arange(n_days) - 1, 0)
    a = rolling_shifts(actual, pred, level, Q, usable, 10)
    future = actual.copy()
    future[20:] += 1e6  # outcomes from day 20 on: unusable for days <= 21
    b = rolling_shifts(future, pred, level, Q, usable, 10)
    np.testing.assert_array_equal(a[:22], b[:22])
    assert not np.array_equal(a[22:], b[22:])
    assert np.all(a[0] == 0)  # no past: no shift


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, (6, 5), elements=st.floats(-1e6, 1e6)),
    arrays(np.float64, (5,), elements=st.floats(-10, 10)),
)
def test_calibrated_quantiles_never_cross(pred: np.ndarray, shifts: np.ndarray) -> None:
    out = apply_shifts(pred, np.full(6, 100.0), shifts)
    assert np.all(np.diff(out, axis=-1) >= 0)
    # the rearrangement keeps the values, only their order changes
    np.testing.assert_allclose(np.sort(out, axis=-1), non_crossing(pred + 100.0 * shifts))
