"""Regimes and window features, checked against pandas and numpy references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiguilleur.health import Telemetry
from aiguilleur.health._features import (
    ewma,
    feature_matrix,
    find_regimes,
    rolling_stats,
    unit_starts,
)

# Six flight conditions as in C-MAPSS FD002/FD004 (altitude kft, Mach, TRA).
CONDITIONS = np.array(
    [[0, 0, 100], [10, 0.25, 100], [20, 0.7, 100], [25, 0.62, 60], [35, 0.84, 100], [42, 0.84, 100]]
)


def _fleet(n_units: int, lengths: list[int], p: int, rng: np.random.Generator) -> Telemetry:
    unit = np.repeat(np.arange(1, n_units + 1), lengths)
    cycle = np.concatenate(
        [np.sort(rng.choice(np.arange(1, 3 * n + 1), n, replace=False)) for n in lengths]
    )
    return Telemetry(
        unit,
        cycle,
        np.zeros((unit.size, 0)),
        rng.normal(size=(unit.size, p)),
        (),
        tuple(f"x{j}" for j in range(p)),
    )


def test_rolling_stats_match_pandas_and_polyfit() -> None:
    rng = np.random.default_rng(3)
    tel = _fleet(3, [7, 25, 12], 2, rng)
    start = unit_starts(tel.unit)
    t = tel.cycle.astype(float)
    w = 5
    mean, std, slope = rolling_stats(tel.sensors, t, start, w)
    df = pd.DataFrame(tel.sensors, columns=["a", "b"]).assign(u=tel.unit)
    ref_mean = df.groupby("u")[["a", "b"]].rolling(w, min_periods=1).mean().to_numpy()
    ref_std = df.groupby("u")[["a", "b"]].rolling(w, min_periods=1).std(ddof=0).fillna(0).to_numpy()
    np.testing.assert_allclose(mean, ref_mean, atol=1e-10)
    np.testing.assert_allclose(std, ref_std, atol=1e-7)
    for i in range(tel.n_readings):
        lo = max(start[i], i - w + 1)
        if i - lo + 1 >= 2:
            ref = np.polyfit(t[lo : i + 1], tel.sensors[lo : i + 1], 1)[0]
            np.testing.assert_allclose(slope[i], ref, atol=1e-8)
        else:
            assert np.all(slope[i] == 0)


def test_ewma_matches_pandas_adjust() -> None:
    rng = np.random.default_rng(4)
    tel = _fleet(2, [9, 14], 3, rng)
    e = ewma(tel.sensors, unit_starts(tel.unit), 0.3)
    df = pd.DataFrame(tel.sensors).assign(u=tel.unit)
    ref = df.groupby("u")[[0, 1, 2]].transform(lambda s: s.ewm(alpha=0.3, adjust=True).mean())
    np.testing.assert_allclose(e, ref.to_numpy(), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 39))
def test_features_are_causal(seed: int, cut: int) -> None:
    """Changing a unit's later readings (or another unit's) leaves earlier features unchanged."""
    rng = np.random.default_rng(seed)
    tel = _fleet(2, [40, 30], 3, rng)
    args = ((5, 10), (4, 8), (0.2,), 6)
    x0, _ = feature_matrix(tel.sensors, tel, *args)
    changed = tel.sensors.copy()
    changed[cut:40] += rng.normal(scale=5.0, size=(40 - cut, 3))
    changed[40:] += 3.0
    tel2 = Telemetry(tel.unit, tel.cycle, tel.settings, changed, (), tel.sensor_names)
    x1, _ = feature_matrix(tel2.sensors, tel2, *args)
    np.testing.assert_array_equal(x0[:cut], x1[:cut])


def test_regimes_found_and_normalised() -> None:
    rng = np.random.default_rng(5)
    conds = CONDITIONS
    lab = rng.integers(0, 6, size=3000)
    s = conds[lab] + rng.normal(scale=[0.003, 0.0003, 0.0], size=(3000, 3))
    level = rng.normal(size=(6, 2)) * 50 + 500
    x = level[lab] + rng.normal(size=(3000, 2))
    x = np.c_[x, np.full(3000, 7.0)]  # a constant sensor is dropped
    tel = Telemetry(
        np.ones(3000, dtype=np.int64), np.arange(1, 3001), s, x, ("a", "b", "c"), ("x", "y", "k")
    )
    reg = find_regimes(tel)
    assert reg.n_regimes == 6
    assert reg.sensor_names == ("x", "y")
    found = reg.assign(s)
    # Same partition as the truth (labels may be permuted).
    assert len({(int(a), int(b)) for a, b in zip(lab, found, strict=True)}) == 6
    z = reg.normalise(tel)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=0.05)
    # One noisy condition is one regime.
    tel1 = Telemetry(
        np.ones(500, dtype=np.int64),
        np.arange(1, 501),
        rng.normal(scale=0.002, size=(500, 3)),
        rng.normal(size=(500, 2)),
        ("a", "b", "c"),
        ("x", "y"),
    )
    assert find_regimes(tel1).n_regimes == 1


def test_non_finite_sensor_names_the_row() -> None:
    x = np.ones((4, 1))
    x[:, 0] = [1.0, 2.0, np.nan, 3.0]
    tel = Telemetry(np.ones(4, dtype=np.int64), np.arange(1, 5), np.zeros((4, 0)), x, (), ("x",))
    from aiguilleur.errors import ValidationError

    with pytest.raises(ValidationError, match="sensor 'x' is not a finite number at row 2"):
        find_regimes(tel)


def test_multi_regime_normalisation_recovers_single_regime(sample_train: Telemetry) -> None:
    """FD001 readings moved into six flight conditions normalise back to (nearly) the same z."""
    rng = np.random.default_rng(8)
    conds = CONDITIONS
    n = sample_train.n_readings
    lab = rng.integers(0, 6, size=n)
    settings = conds[lab] + rng.normal(scale=[0.003, 0.0003, 0.0], size=(n, 3))
    base = find_regimes(sample_train)
    cols = [sample_train.sensor_names.index(s) for s in base.sensor_names]
    x = sample_train.sensors.copy()
    # Each condition shifts and scales every sensor (as altitude and Mach do).
    shift = rng.normal(scale=50.0, size=(6, x.shape[1]))
    gain = rng.uniform(0.5, 2.0, size=(6, x.shape[1]))
    moved = x * gain[lab] + shift[lab]
    multi = Telemetry(
        sample_train.unit, sample_train.cycle, settings, moved,
        sample_train.setting_names, sample_train.sensor_names,
    )  # fmt: skip
    reg = find_regimes(multi)
    assert reg.n_regimes == 6
    assert reg.sensor_names == base.sensor_names
    z_multi = reg.normalise(multi)
    z_one = base.normalise(sample_train)
    for j in range(len(cols)):
        assert np.corrcoef(z_multi[:, j], z_one[:, j])[0, 1] > 0.97
