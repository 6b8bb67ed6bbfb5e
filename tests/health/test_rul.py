"""The RUL model: protocol, intervals, save/load, missing columns, and the C-MAPSS targets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from aiguilleur import health
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.health import RULModel, RULOptions, Telemetry
from tests.health.conftest import SHARED_CMAPSS, requires_shared_cmapss

FAST = RULOptions(n_rounds=120)


@pytest.fixture(scope="module")
def model(sample_train: Telemetry) -> RULModel:
    return health.fit(sample_train, FAST)


def test_phm08_score_by_hand() -> None:
    # d = -13 (early): e^1 - 1; d = +10 (late): e^1 - 1; d = 0: 0.
    assert health.phm08_score([7, 30, 5], [20, 20, 5]) == pytest.approx(2 * (np.e - 1))
    assert health.phm08_score([0], [0]) == 0.0


def test_rul_target_is_cycles_to_the_end(sample_train: Telemetry) -> None:
    y = health.rul_target(sample_train)
    last = sample_train.last_rows
    assert np.all(y[last] == 0)
    assert y[0] == sample_train.cycle[last[0]] - 1
    y2 = health.rul_target(sample_train, np.arange(10))
    assert y2[last].tolist() == list(range(10))


def test_predict_shapes_and_intervals(model: RULModel, sample_test: Telemetry) -> None:
    pred = health.predict(model, sample_test)
    assert pred.unit.tolist() == list(range(1, 11))
    assert np.array_equal(pred.cycle, sample_test.cycle[sample_test.last_rows])
    assert np.all((pred.rul_cycles >= 0) & (pred.rul_cycles <= 125))
    assert np.all(pred.lower_cycles <= pred.upper_cycles)
    assert np.all(pred.lower_cycles >= 0)
    assert np.all(np.diff(pred.quantiles, axis=1) >= -1e-9)
    wider = health.predict(model, sample_test, level=0.95)
    assert np.all(wider.lower_cycles <= pred.lower_cycles + 1e-9)
    assert np.all(wider.upper_cycles >= pred.upper_cycles - 1e-9)
    every = health.predict(model, sample_test, at="all")
    assert every.unit.size == sample_test.n_readings
    np.testing.assert_allclose(every.rul_cycles[sample_test.last_rows], pred.rul_cycles)
    frame = pred.to_frame()
    assert list(frame.columns) == ["unit", "cycle", "rul_cycles", "lower_cycles", "upper_cycles"]


def test_model_tracks_degradation(model: RULModel, sample_train: Telemetry) -> None:
    """On run-to-failure units the prediction falls towards 0 at failure (OOF check is in fit)."""
    assert model.oof_rmse < 30.0  # capped-target RMSE on held-out units of the sample
    pred = health.predict(model, sample_train, at="all")
    y = np.minimum(health.rul_target(sample_train), 125)
    assert np.corrcoef(pred.rul_cycles, y)[0, 1] > 0.9
    assert np.all(pred.rul_cycles[sample_train.last_rows] < 40)


def test_save_load_round_trip(model: RULModel, sample_test: Telemetry, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    health.save_model(model, path)
    back = health.load_model(path)
    a = health.predict(model, sample_test)
    b = health.predict(back, sample_test)
    np.testing.assert_allclose(a.rul_cycles, b.rul_cycles, rtol=1e-12)
    np.testing.assert_allclose(a.quantiles, b.quantiles, rtol=1e-12)
    assert back.feature_names == model.feature_names
    assert back.options == model.options


def test_load_errors(model: RULModel, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    health.save_model(model, path)
    doc = json.loads(path.read_text())
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc, "version": 99}))
    with pytest.raises(CaseFormatError, match="model version 99"):
        health.load_model(bad)
    del doc["feature_names"]
    bad.write_text(json.dumps(doc))
    with pytest.raises(CaseFormatError, match=r"bad\.json: missing field 'feature_names'"):
        health.load_model(bad)
    bad.write_text("{not json")
    with pytest.raises(CaseFormatError, match="not a model file"):
        health.load_model(bad)
    with pytest.raises(CaseFormatError, match="no such file"):
        health.load_model(tmp_path / "absent.json")


def test_missing_sensor_column_is_named(model: RULModel, sample_test: Telemetry) -> None:
    keep = [j for j, n in enumerate(sample_test.sensor_names) if n != "s11"]
    cut = Telemetry(
        sample_test.unit,
        sample_test.cycle,
        sample_test.settings,
        sample_test.sensors[:, keep],
        sample_test.setting_names,
        tuple(sample_test.sensor_names[j] for j in keep),
    )
    with pytest.raises(ValidationError, match=r"sensor column.* missing .*: s11"):
        health.predict(model, cut)
    no_settings = Telemetry(
        sample_test.unit, sample_test.cycle, np.zeros((sample_test.n_readings, 0)),
        sample_test.sensors, (), sample_test.sensor_names,
    )  # fmt: skip
    with pytest.raises(ValidationError, match=r"setting column.* missing"):
        health.predict(model, no_settings)


def test_settings_validated() -> None:
    with pytest.raises(ValidationError, match="level"):
        RULOptions(level=1.0)
    with pytest.raises(ValidationError, match="windows"):
        RULOptions(windows=())
    with pytest.raises(ValidationError, match="alphas"):
        RULOptions(alphas=(0.0,))
    with pytest.raises(ValidationError, match="n_folds"):
        health.fit(
            Telemetry(
                np.array([1, 1]), np.array([1, 2]), np.zeros((2, 0)), np.ones((2, 1)), (), ("x",)
            )
        )


@pytest.mark.slow
@requires_shared_cmapss
@pytest.mark.parametrize("subset", ["FD001", "FD003"])
def test_cmapss_targets(subset: str) -> None:
    """The issue's targets on the full test sets: RMSE <= 12.0 and PHM08 score < 250."""
    train = health.read_cmapss(SHARED_CMAPSS / f"train_{subset}.txt")
    test = health.read_cmapss(SHARED_CMAPSS / f"test_{subset}.txt")
    truth = health.read_rul(SHARED_CMAPSS / f"RUL_{subset}.txt", test.units.size)
    t0 = time.perf_counter()
    res = health.backtest(train, test, truth)
    assert time.perf_counter() - t0 < 600
    assert res.units == 100
    assert res.rmse <= 12.0
    assert res.score < 250.0
    assert 0.7 <= res.coverage <= 1.0
    # Failure within 30 cycles: the probabilities beat the (oracle) base rate on Brier score.
    risk = health.failure_probability(res.prediction, 30.0, health.RiskOptions(cycle_duration_h=1))
    failed = (truth <= 30).astype(float)
    brier = np.mean((risk.probability - failed) ** 2)
    assert brier < 0.5 * np.mean((failed.mean() - failed) ** 2)
