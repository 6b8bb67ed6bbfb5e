"""Failure probability within a horizon: the CDF read against scipy, and its monotonicity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from aiguilleur import health
from aiguilleur.errors import ValidationError
from aiguilleur.health import RiskOptions, RULOptions, RULPrediction, Telemetry
from aiguilleur.health.risk import quantile_cdf

LEVELS = np.linspace(0.0, 1.0, 201)


def _prediction(quantiles: np.ndarray) -> RULPrediction:
    n = quantiles.shape[0]
    mid = quantiles[:, 100]
    return RULPrediction(
        unit=np.arange(1, n + 1),
        cycle=np.full(n, 50),
        rul_cycles=mid,
        lower_cycles=quantiles[:, 20],
        upper_cycles=quantiles[:, 180],
        level=0.8,
        levels=LEVELS,
        quantiles=quantiles,
    )


def test_cdf_matches_scipy_normal() -> None:
    inner = LEVELS[1:-1]
    q = norm.ppf(inner, loc=[[40.0], [80.0]], scale=[[10.0], [25.0]])
    for x in (20.0, 35.0, 40.0, 61.0, 64.0):
        got = quantile_cdf(q, inner, x)
        want = norm.cdf(x, loc=[40.0, 80.0], scale=[10.0, 25.0])
        np.testing.assert_allclose(got, want, atol=0.003)
    # Beyond the stored quantiles: the last level, and 0 below the first.
    assert quantile_cdf(q, inner, 1e6).tolist() == [inner[-1], inner[-1]]
    assert quantile_cdf(q, inner, -1e6).tolist() == [0.0, 0.0]


def test_horizon_in_hours_uses_the_cycle_duration() -> None:
    q = np.tile(np.linspace(0.0, 200.0, 201), (1, 1))  # RUL uniform on [0, 200] cycles
    pred = _prediction(q)
    one = health.failure_probability(pred, 24.0, RiskOptions(cycle_duration_h=1.0))
    day = health.failure_probability(pred, 24.0, RiskOptions(cycle_duration_h=24.0))
    assert one.probability[0] == pytest.approx(24 / 200)
    assert day.probability[0] == pytest.approx(1 / 200)
    frame = one.to_frame()
    assert list(frame.columns) == ["unit", "horizon_h", "probability", "from_rul", "from_anomaly"]


def test_anomaly_term() -> None:
    q = np.tile(np.linspace(500.0, 700.0, 201), (3, 1))  # far from failure by RUL
    pred = _prediction(q)
    s = RiskOptions(anomaly_hazard_per_h=0.02)
    r = health.failure_probability(pred, 10.0, s, anomaly_score={1: 0.5, 2: 2.0})
    assert r.from_rul.tolist() == [0.0, 0.0, 0.0]
    assert r.probability[0] == 0.0  # below the alarm threshold: no contribution
    assert r.probability[1] == pytest.approx(1 - np.exp(-0.02 * 1.0 * 10.0))
    assert r.probability[2] == 0.0  # no score given for unit 3
    with pytest.raises(ValidationError, match="horizon_h"):
        health.failure_probability(pred, -1.0)
    with pytest.raises(ValidationError, match="cycle_duration_h"):
        RiskOptions(cycle_duration_h=0.0)


_rows = st.lists(
    st.lists(st.floats(0.0, 400.0), min_size=201, max_size=201).map(sorted),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(
    _rows,
    st.floats(0.0, 500.0),
    st.floats(0.0, 500.0),
    st.floats(0.0, 5.0),
    st.floats(0.0, 5.0),
    st.floats(0.1, 48.0),
)
def test_monotone_and_bounded(
    rows: list[list[float]], h1: float, h2: float, a1: float, a2: float, cycle_h: float
) -> None:
    pred = _prediction(np.asarray(rows))
    s = RiskOptions(cycle_duration_h=cycle_h, anomaly_hazard_per_h=0.05)
    lo_h, hi_h = sorted((h1, h2))
    lo_a, hi_a = sorted((a1, a2))
    units = pred.unit.tolist()
    p_lo = health.failure_probability(pred, lo_h, s, {u: lo_a for u in units}).probability
    p_hi = health.failure_probability(pred, hi_h, s, {u: lo_a for u in units}).probability
    p_an = health.failure_probability(pred, lo_h, s, {u: hi_a for u in units}).probability
    for p in (p_lo, p_hi, p_an):
        assert np.all((p >= 0.0) & (p <= 1.0))
    assert np.all(p_hi >= p_lo - 1e-12)  # longer horizon, no smaller probability
    assert np.all(p_an >= p_lo - 1e-12)  # higher anomaly score, no smaller probability
    # Shifting the whole RUL distribution later never raises the probability.
    later = _prediction(np.asarray(rows) + 10.0)
    p_later = health.failure_probability(later, lo_h, s, {u: lo_a for u in units}).probability
    assert np.all(p_later <= p_lo + 1e-12)


def test_asset_failure_risk_from_readings(sample_train: Telemetry, sample_test: Telemetry) -> None:
    """The per-asset chain equals its parts: RUL at the last reading, anomaly score, mapping."""
    model = health.fit(sample_train, RULOptions(n_rounds=60, seeds=(0,)))
    det = health.fit_detector(sample_train)
    opts = RiskOptions(cycle_duration_h=2.0, anomaly_hazard_per_h=0.05)
    risk = health.asset_failure_risk(model, sample_test, 60.0, opts, det)
    pred = health.predict(model, sample_test, at="last")
    scores = health.score(det, sample_test).last_score()
    want = health.failure_probability(pred, 60.0, opts, scores)
    np.testing.assert_array_equal(risk.unit, want.unit)
    np.testing.assert_allclose(risk.probability, want.probability)
    # One asset from its own readings alone gets the same number as in the fleet call.
    u = int(sample_test.unit[0])
    mine = sample_test.unit == u
    alone = Telemetry(
        sample_test.unit[mine], sample_test.cycle[mine], sample_test.settings[mine],
        sample_test.sensors[mine], sample_test.setting_names, sample_test.sensor_names,
    )  # fmt: skip
    one = health.asset_failure_risk(model, alone, 60.0, opts, det)
    assert one.probability_of(u) == pytest.approx(risk.probability_of(u), abs=1e-12)
    doc = risk.to_dict()
    assert doc["horizon_h"] == 60.0
    assert [a["unit"] for a in doc["assets"]] == risk.unit.tolist()
    with pytest.raises(ValidationError, match="unit 999"):
        risk.probability_of(999)
    # Without a detector only the RUL term counts.
    plain = health.asset_failure_risk(model, sample_test, 60.0, opts)
    assert np.all(plain.from_anomaly == 0.0)
    np.testing.assert_allclose(plain.from_rul, risk.from_rul)
