"""The RUL model: protocol, intervals, save/load, missing columns, and the C-MAPSS targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aiguilleur import health
from aiguilleur.errors import CaseFormatError, ValidationError
from aiguilleur.health import RULModel, RULOptions, Telemetry
from tests.health.conftest import SHARED_CMAPSS, requires_full_reference, requires_shared_cmapss

FAST = RULOptions(n_rounds=120, seeds=(0, 1))


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


def test_without_health_index(
    sample_train: Telemetry, sample_test: Telemetry, tmp_path: Path
) -> None:
    opts = RULOptions(n_rounds=40, seeds=(0,), health_index=False)
    m = health.fit(sample_train, opts)
    assert m.index_weights.size == 0
    assert not any(n.startswith("hi_") for n in m.feature_names)
    health.save_model(m, tmp_path / "m.json")
    back = health.load_model(tmp_path / "m.json")
    np.testing.assert_allclose(
        health.predict(back, sample_test).rul_cycles, health.predict(m, sample_test).rul_cycles
    )


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
    with pytest.raises(ValidationError, match="index_alphas"):
        RULOptions(index_alphas=(1.5,))
    with pytest.raises(ValidationError, match="index_windows"):
        RULOptions(index_windows=(0,))
    with pytest.raises(ValidationError, match="index_ridge"):
        RULOptions(index_ridge=-1.0)
    with pytest.raises(ValidationError, match="health_index"):
        RULOptions(health_index=1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="n_folds"):
        health.fit(
            Telemetry(
                np.array([1, 1]), np.array([1, 2]), np.zeros((2, 0)), np.ones((2, 1)), (), ("x",)
            )
        )


class IssueTargetNotMet(AssertionError):
    """The issue's FD002 target, not reached: an expected failure, distinct from a regression."""


def _full_backtest(subset: str) -> tuple[health.RULBacktest, np.ndarray]:
    train = health.read_cmapss(SHARED_CMAPSS / f"train_{subset}.txt")
    test = health.read_cmapss(SHARED_CMAPSS / f"test_{subset}.txt")
    truth = health.read_rul(SHARED_CMAPSS / f"RUL_{subset}.txt", test.units.size)
    res = health.backtest(train, test, truth)
    assert res.train_cpu_s < 600  # processor time: the wall clock depends on the load
    return res, truth


def _brier_beats_base_rate(res: health.RULBacktest, truth: np.ndarray) -> None:
    # Failure within 30 cycles: the probabilities beat the (oracle) base rate on Brier score.
    risk = health.failure_probability(res.prediction, 30.0, health.RiskOptions(cycle_duration_h=1))
    failed = (truth <= 30).astype(float)
    brier = np.mean((risk.probability - failed) ** 2)
    assert brier < 0.5 * np.mean((failed.mean() - failed) ** 2)


@pytest.mark.slow
@requires_shared_cmapss
@pytest.mark.parametrize(
    ("subset", "score_bound"),
    [
        ("FD001", 250.0),
        pytest.param(
            "FD003",
            270.0,
            marks=[
                requires_full_reference,
                pytest.mark.xfail(
                    raises=IssueTargetNotMet,
                    strict=True,
                    reason="FD003: PHM08 score 253.1, above the target of 250 (RMSE 11.48 "
                    "meets 12.0)",
                ),
            ],
        ),
    ],
)
def test_cmapss_targets(subset: str, score_bound: float) -> None:
    """The issue's targets on the full test sets: RMSE <= 12.0 and PHM08 score < 250.

    FD003's score misses 250 by a few points: the test asserts what is reached
    (a regression is a plain failure) and then the target (an expected failure;
    strict, so meeting it turns the test red until the mark is removed).
    """
    res, truth = _full_backtest(subset)
    assert res.units == 100
    assert res.rmse <= 12.0
    assert res.score < score_bound
    assert 0.7 <= res.coverage <= 1.0
    _brier_beats_base_rate(res, truth)
    if res.score >= 250.0:
        raise IssueTargetNotMet(f"{subset}: PHM08 score {res.score:.1f}")


@pytest.mark.slow
@requires_shared_cmapss
@requires_full_reference
@pytest.mark.xfail(
    raises=IssueTargetNotMet,
    strict=True,
    reason="FD002: 57 of 259 test units have a true RUL above the training cap of 125 (up to "
    "194); predicting the cap on them alone costs 18.3 cycles of RMSE (see BENCHMARKS.md)",
)
def test_cmapss_fd002_six_conditions() -> None:
    """Six operating conditions, the same options as FD001/FD003.

    First what the model reaches (a regression here is a plain failure), then the
    issue's target, RMSE <= 15.0 and score <= 1500, which it does not reach (the
    expected failure above; strict, so meeting it turns the test red until the
    mark is removed).
    """
    res, truth = _full_backtest("FD002")
    assert res.units == 259
    cap = 125.0
    # Against the truth capped as the training target is (a convention of part of
    # the literature), and on the units whose true RUL is within the cap.
    capped = np.sqrt(np.mean((res.prediction.rul_cycles - np.minimum(truth, cap)) ** 2))
    assert capped <= 11.0
    within = truth <= cap
    assert np.sqrt(np.mean((res.prediction.rul_cycles - truth)[within] ** 2)) <= 11.5
    assert res.rmse <= 24.0
    assert res.score <= 4200.0
    assert 0.7 <= res.coverage <= 1.0
    _brier_beats_base_rate(res, truth)
    if res.rmse > 15.0 or res.score > 1500.0:
        raise IssueTargetNotMet(f"FD002: RMSE {res.rmse:.2f}, score {res.score:.0f}")


def test_score_shift_undoes_a_late_bias() -> None:
    """A constant late bias of 3 cycles is taken back exactly; none is invented."""
    from aiguilleur.health.rul import _score_shift

    rng = np.random.default_rng(0)
    target = rng.uniform(0.0, 125.0, 500)
    opts = RULOptions()
    assert _score_shift(target + 3.0, target, opts) == -3.0
    assert _score_shift(target, target, opts) == 0.0
    assert _score_shift(target - 2.0, target, opts) == 0.0  # early already: no shift
    assert _score_shift(target + 3.0, target, RULOptions(max_shift_cycles=0.0)) == 0.0
    with pytest.raises(ValidationError, match="max_shift_cycles"):
        RULOptions(max_shift_cycles=-1.0)
