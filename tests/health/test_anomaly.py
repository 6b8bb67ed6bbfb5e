"""Streaming anomaly detection: delays on injected faults, false alarms on clean data.

The truth is known on simulated fleets (Gaussian readings around each asset's
own level, faults injected at a known reading), so detection delays and the
false-alarm rate are measured against it, not against the detector itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from aiguilleur import health
from aiguilleur.errors import ValidationError
from aiguilleur.health import AnomalyDetector, AnomalyOptions, Telemetry

N_UNITS, LENGTH, P = 150, 250, 10
FAULT_AT = 100  # cycle of the first faulty reading


def _fleet(seed: int) -> Telemetry:
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(1, N_UNITS + 1), LENGTH)
    cycle = np.tile(np.arange(1, LENGTH + 1), N_UNITS)
    level = np.repeat(rng.normal(scale=2.0, size=(N_UNITS, P)), LENGTH, axis=0)
    noise = rng.normal(size=(unit.size, P)) * rng.uniform(0.5, 2.0, size=P)
    op = np.zeros((unit.size, 1))
    names = tuple(f"x{j}" for j in range(P))
    return Telemetry(unit, cycle, op, level + noise, ("op",), names)


def _with_fault(tel: Telemetry, sensor: int, kind: str, size: float) -> Telemetry:
    """``size`` in units of that sensor's noise std: a step, or a drift per reading."""
    x = tel.sensors.copy()
    sigma = np.std(np.diff(x[:, sensor])) / np.sqrt(2)
    after = tel.cycle >= FAULT_AT
    k = (tel.cycle - FAULT_AT + 1).astype(float)
    x[after, sensor] += size * sigma * (1.0 if kind == "step" else k[after])
    return Telemetry(tel.unit, tel.cycle, tel.settings, x, tel.setting_names, tel.sensor_names)


def _delays(scores: health.AnomalyScores) -> np.ndarray:
    """Readings from the fault to the first alarm at or after it, per unit (inf: never)."""
    out = np.full(N_UNITS, np.inf)
    hit = scores.alarm & (scores.cycle >= FAULT_AT)
    for i, u in enumerate(range(1, N_UNITS + 1)):
        rows = np.flatnonzero(hit & (scores.unit == u))
        if rows.size:
            out[i] = scores.cycle[rows[0]] - FAULT_AT + 1
    return out


@pytest.fixture(scope="module")
def clean() -> Telemetry:
    return _fleet(11)


@pytest.fixture(scope="module")
def detector(clean: Telemetry) -> AnomalyDetector:
    return health.fit_detector(clean)


def test_false_alarm_rate_on_clean_data(detector: AnomalyDetector) -> None:
    """Target 0.1 % per reading; measured about 0.16 % (estimated baselines), bounded at 0.3 %."""
    fresh = _fleet(12)  # other assets than the ones the fleet statistics came from
    sc = health.score(detector, fresh)
    watched = fresh.cycle > detector.options.baseline_readings
    rate = sc.alarm[watched].mean()
    assert rate <= 3 * detector.options.false_alarm_rate
    assert not sc.alarm[~watched].any()  # baseline readings never alarm


@pytest.mark.parametrize("sensor", [0, 7])
def test_step_fault_detected(detector: AnomalyDetector, clean: Telemetry, sensor: int) -> None:
    """A 3-sigma step in one sensor: flagged within 8 readings on 95 % of assets, all within 15.

    Measured: 4 readings (median), 7 for 90 % of assets.
    """
    d = _delays(health.score(detector, _with_fault(clean, sensor, "step", 3.0)))
    assert np.mean(d <= 8) >= 0.95
    assert np.all(d <= 15)
    sc = health.score(detector, _with_fault(clean, sensor, "step", 3.0))
    first = sc.alarm & (sc.cycle >= FAULT_AT)
    assert np.mean(sc.sensor[first] == sensor) > 0.9  # the right sensor is named


def test_drift_fault_detected(detector: AnomalyDetector, clean: Telemetry) -> None:
    """A drift of 0.1 sigma per reading: flagged within 28 readings on 95 % of assets, all in 40.

    Measured: 20 readings (median), 26 for 95 % of assets, 33 at most.
    """
    d = _delays(health.score(detector, _with_fault(clean, 3, "drift", 0.1)))
    assert np.mean(d <= 28) >= 0.95
    assert np.all(d <= 40)


def test_streaming_equals_batch(detector: AnomalyDetector, clean: Telemetry) -> None:
    faulty = _with_fault(clean, 2, "step", 2.0)
    one = faulty.select_units([7])
    batch = health.score(detector, one)
    nb = detector.options.baseline_readings
    base = health.baseline(detector, one)
    state = health.start_stream(detector)
    for i in range(nb, one.n_readings):
        reading = dict(zip(one.sensor_names, one.sensors[i].tolist(), strict=True))
        state, s, alarm = health.update(detector, base, state, reading, {"op": 0.0})
        assert s == pytest.approx(batch.score[i], rel=1e-9, abs=1e-12)
        assert alarm == bool(batch.alarm[i])
    assert state.n_seen == one.n_readings - nb


def test_bad_readings_named(detector: AnomalyDetector, clean: Telemetry) -> None:
    one = clean.select_units([1])
    base = health.baseline(detector, one)
    reading = dict(zip(one.sensor_names, one.sensors[40].tolist(), strict=True))
    del reading["x4"]
    with pytest.raises(ValidationError, match="sensor 'x4' missing"):
        health.update(detector, base, health.start_stream(detector), reading, {"op": 0.0})
    reading["x4"] = float("nan")
    with pytest.raises(ValidationError, match="sensor 'x4' is not a finite number"):
        health.update(detector, base, health.start_stream(detector), reading, {"op": 0.0})
    with pytest.raises(ValidationError, match="the baseline needs 30"):
        health.baseline(detector, one.take(np.arange(10)))
    with pytest.raises(ValidationError, match="one asset"):
        health.baseline(detector, clean.select_units([1, 2]))
    with pytest.raises(ValidationError, match="smoothing"):
        AnomalyOptions(smoothing=0.0)


def test_cmapss_sample_alarms_late_not_early(sample_train: Telemetry) -> None:
    """Run-to-failure engines: few alarms early in life, nearly all readings alarm at the end.

    C-MAPSS engines drift from the start (0.2-0.4 std over their first 60
    cycles), so early alarms there are partly true; the false-alarm rate is
    measured on the simulated clean fleet above.
    """
    det = health.fit_detector(sample_train)
    sc = health.score(det, sample_train)
    y = health.rul_target(sample_train)
    early = (sample_train.cycle > 30) & (sample_train.cycle <= 60)
    assert sc.alarm[early].mean() < 0.1
    assert sc.alarm[y < 15].mean() > 0.9
    assert all(c is not None for c in sc.first_alarm().values())
