"""Several operating conditions: regimes on real FD002, normalisation and health index from
training readings only, and the regime features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiguilleur import health
from aiguilleur.health import RULModel, RULOptions, Telemetry
from aiguilleur.health._features import (
    find_regimes,
    fit_health_index,
    health_index,
    regime_history,
)
from tests.health.conftest import sample_path

FAST = RULOptions(n_rounds=80, seeds=(0,))


@pytest.fixture(scope="module")
def fd002_train() -> Telemetry:
    return health.read_cmapss(sample_path("train", "FD002"))


@pytest.fixture(scope="module")
def fd002_test() -> Telemetry:
    return health.read_cmapss(sample_path("test", "FD002"))


@pytest.fixture(scope="module")
def fd002_model(fd002_train: Telemetry) -> RULModel:
    return health.fit(fd002_train, FAST)


def _conditions(tel: Telemetry) -> np.ndarray:
    """The flight condition of each reading by rounding the settings (an independent reference:
    altitude to 1,000 ft, Mach number to 0.01, throttle angle to 1)."""
    key = np.round(tel.settings * np.array([1.0, 100.0, 1.0])).astype(np.int64)
    _, lab = np.unique(key, axis=0, return_inverse=True)
    return np.asarray(lab).ravel()


def test_six_regimes_on_fd002_one_on_fd001(fd002_train: Telemetry) -> None:
    reg = find_regimes(fd002_train)
    assert reg.n_regimes == 6
    # Same partition as rounding the settings (up to the labels).
    ours, ref = reg.assign(fd002_train.settings), _conditions(fd002_train)
    assert np.unique(ref).size == 6
    pairs = pd.crosstab(ours, ref).to_numpy()
    assert np.all((pairs > 0).sum(axis=1) == 1) and np.all((pairs > 0).sum(axis=0) == 1)
    assert find_regimes(health.read_cmapss(sample_path("train"))).n_regimes == 1


def test_regime_statistics_are_the_training_ones(
    fd002_model: RULModel, fd002_train: Telemetry
) -> None:
    """The stored per-regime means and spreads equal pandas' on the training readings."""
    reg = fd002_model.regimes
    df = pd.DataFrame(fd002_train.sensors, columns=list(fd002_train.sensor_names))
    df["cond"] = reg.assign(fd002_train.settings)
    names = list(reg.sensor_names)
    want_mean = df.groupby("cond")[names].mean().sort_index().to_numpy()
    want_std = df.groupby("cond")[names].std(ddof=0).sort_index().to_numpy()
    np.testing.assert_allclose(reg.mean, want_mean, rtol=1e-10)
    np.testing.assert_allclose(reg.std, want_std, rtol=1e-10)


def test_prediction_does_not_depend_on_other_test_units(
    fd002_model: RULModel, fd002_test: Telemetry
) -> None:
    """Nothing is fitted on the test readings: a unit's prediction is the same alone, with the
    other test units, and when another unit's sensors are shifted far away. (A normalisation
    or health index refitted on the telemetry given to ``predict`` fails this.)"""
    full = health.predict(fd002_model, fd002_test)
    first = fd002_test.unit == fd002_test.unit[0]
    alone = health.predict(fd002_model, _rows(fd002_test, first))
    np.testing.assert_allclose(alone.rul_cycles, full.rul_cycles[:1], rtol=1e-12)
    np.testing.assert_allclose(alone.quantiles, full.quantiles[:1], rtol=1e-12)
    shifted = Telemetry(
        fd002_test.unit,
        fd002_test.cycle,
        fd002_test.settings,
        np.where(first[:, None], fd002_test.sensors, fd002_test.sensors * 1.5 + 1000.0),
        fd002_test.setting_names,
        fd002_test.sensor_names,
    )
    again = health.predict(fd002_model, shifted)
    assert again.rul_cycles[0] == pytest.approx(full.rul_cycles[0], rel=1e-12)
    # ...while the shifted units' own predictions do move (the test can fail).
    assert not np.allclose(again.rul_cycles[1:], full.rul_cycles[1:])


def test_health_index_per_regime(fd002_model: RULModel, fd002_train: Telemetry) -> None:
    w = fd002_model.index_weights
    assert w.shape == (6, len(fd002_model.sensor_names) + 1)
    # The wear response differs by flight condition: the weights are not one row repeated.
    assert np.ptp(w[:, 1:], axis=0).max() > 0.1 * np.abs(w[:, 1:]).max()
    reg = fd002_model.regimes
    h = health_index(reg.normalise(fd002_train), reg.assign(fd002_train.settings), w)
    y = np.minimum(health.rul_target(fd002_train), fd002_model.options.cap_cycles)
    assert np.corrcoef(h, y)[0, 1] > 0.8


def test_health_index_recovers_a_linear_law() -> None:
    """Noise-free per-regime linear responses: the ridge fit (no penalty) is exact."""
    rng = np.random.default_rng(5)
    n, p, k = 600, 4, 3
    z = rng.normal(size=(n, p))
    g = rng.integers(0, k, n)
    true_w = rng.normal(size=(k, p + 1))
    y = true_w[g, 0] + (z * true_w[g, 1:]).sum(axis=1)
    w = fit_health_index(z, g, y, k, ridge=0.0)
    np.testing.assert_allclose(w, true_w, atol=1e-9)
    np.testing.assert_allclose(health_index(z, g, w), y, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    k=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
def test_regime_history_is_a_running_share(lengths: list[int], k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    unit = np.repeat(np.arange(len(lengths)), lengths)
    cycle = np.concatenate([np.arange(1, m + 1) for m in lengths])
    n = unit.size
    tel = Telemetry(unit, cycle, np.zeros((n, 0)), np.zeros((n, 1)), (), ("x",))
    g = rng.integers(0, k, n)
    share = regime_history(tel, g, k)
    np.testing.assert_allclose(share.sum(axis=1), 1.0)
    ref = (
        pd.get_dummies(pd.Series(g).astype(pd.CategoricalDtype(list(range(k)))))
        .astype(float)
        .groupby(unit)
        .expanding()
        .mean()
        .to_numpy()
    )
    np.testing.assert_allclose(share, ref, atol=1e-12)


def test_fd002_sample_backtest(fd002_train: Telemetry, fd002_test: Telemetry) -> None:
    """Ten training engines in six conditions: the model still tracks wear on held-out units."""
    truth = health.read_rul(sample_path("RUL", "FD002"), 10)
    res = health.backtest(fd002_train, fd002_test, truth, FAST)
    assert res.units == 10
    # For scale: predicting the mean of these ten true RULs gives 48.9 cycles RMSE.
    assert res.rmse < 35.0
    assert np.all(res.prediction.lower_cycles <= res.prediction.upper_cycles)


def _rows(tel: Telemetry, keep: np.ndarray) -> Telemetry:
    return Telemetry(
        tel.unit[keep],
        tel.cycle[keep],
        tel.settings[keep],
        tel.sensors[keep],
        tel.setting_names,
        tel.sensor_names,
    )
